/**
 * Test program: starts the launcher's Supervisor with a 200 ms timeout,
 * then blocks its main thread for good. Only the watchdog Worker can end
 * it (exit 124, "guest not responding"), so running this program from a
 * file, a bundle or an HTTP URL proves the Worker starts from each
 * (tests/ship_test.ts).
 *
 * @module
 */

import { Supervisor } from "../../launcher/supervisor.ts";

const supervisor = new Supervisor({ timeoutMs: 200, terminal: false });
await supervisor.ready;
console.log("blocking");
const end = Date.now() + 20_000; // a bound, should the Worker fail
while (Date.now() < end) { /* the main thread never returns to its event loop */ }
console.log("not stopped");
Deno.exit(3);
