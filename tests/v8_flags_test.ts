/**
 * V8 flags a user may give through DENO_V8_FLAGS (README "Exit codes"): a V8
 * without WebAssembly (`--jitless`) and a host stack too small for Deno's
 * and lguest's own code (`--stack-size`) are one line each and exit 125, as
 * for any host that cannot run the engine: never an uncaught error's stack
 * trace, never a payload called damaged. tests/ship_test.ts runs the same
 * against the bundle.
 *
 * @module
 */

import assert from "node:assert/strict";
import { EXIT } from "../launcher/cli.ts";
import { describe, runCli } from "./helpers/run_cli.ts";
import { assertHostStack } from "./helpers/v8_flags.ts";

Deno.test("v8 flags: --jitless (no WebAssembly) is one line and 125, not a ReferenceError's trace", async () => {
  const r = await runCli(["run", "hello"], { env: { DENO_V8_FLAGS: "--jitless" } });
  assert.equal(r.code, EXIT.USAGE, describe(r));
  assert.equal(r.stdout, "", describe(r));
  assert.equal(
    r.stderr,
    "lguest: this Deno has no WebAssembly (V8 flag --jitless?)\n",
    describe(r),
  );
});

Deno.test("v8 flags: a small --stack-size is the host's one line and 125 (was: lua's payload 'damaged')", async () => {
  // lua meets the small stack in lguest's own code. hello, which sets no timer, now reaches its
  // end and Deno's own exit path overflows outside lguest (its `Uncaught RangeError` lines, for
  // any script: README, V8 flags), so it is not a case of ours (docs/performance.md, boot).
  const r = await runCli(["run", "lua", "--", "-e", "print(1)"], {
    env: { DENO_V8_FLAGS: "--stack-size=60" },
  });
  assertHostStack(r, describe(r));
});
