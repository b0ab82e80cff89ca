/**
 * `lguest`: run lguest guests on Deno.
 *
 * This entry stays tiny so that `lguest --version` starts as fast as Deno
 * can; everything else loads on demand.
 *
 * @module
 */

import { VERSION } from "./version.ts";

if (import.meta.main) {
  const args = Deno.args;
  if (args.length === 1 && (args[0] === "--version" || args[0] === "-V")) {
    console.log(`lguest ${VERSION}`);
  } else {
    // The watchdog Worker is only needed at a terminal or with --timeout.
    if (
      args[0] === "run" &&
      (Deno.stdin.isTerminal() || args.some((a) => a.startsWith("--timeout")))
    ) {
      (await import("./launcher/supervisor.ts")).prestartWatchdog();
    }
    const { main } = await import("./launcher/cli.ts");
    Deno.exit(await main(args));
  }
}
