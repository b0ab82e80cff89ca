/**
 * Assertions for runs under V8 flags (tests/v8_flags_test.ts, tests/ship_test.ts).
 *
 * @module
 */

import assert from "node:assert/strict";
import { EXIT } from "../../launcher/cli.ts";
import { hasStackTrace, lines } from "./run_cli.ts";

/** What Deno itself prints (on stdout) under a small --stack-size, for any script (not lguest's to change). */
export const DENO_OWN_LINE = "<unknown>:-1: Uncaught RangeError: Maximum call stack size exceeded";

/**
 * A run under a small host stack: its one line, no trace, nothing called damaged; 125, or 126
 * when the line names the guest it stopped (README "Run your own program").
 */
export function assertHostStack(r: { code: number; stderr: string }, why: string): void {
  const guestNamed = /^lguest: [\w-]+: the host ran out of stack/m.test(r.stderr);
  assert.ok(
    r.code === EXIT.USAGE || (guestNamed && r.code === EXIT.GUEST_FAILED),
    `exit ${r.code}: ${why}`,
  );
  const ours = lines(r.stderr).filter((l) => l !== DENO_OWN_LINE);
  // The guest it met in a hypercall is named (lguest: lua: …); every line is lguest's own.
  assert.ok(
    ours.some((l) =>
      /^lguest: ([\w-]+: )?the host ran out of stack \(V8 --stack-size\?\)$/.test(l)
    ),
    why,
  );
  assert.ok(ours.every((l) => l.startsWith("lguest: ")), why);
  assert.ok(!hasStackTrace(ours.join("\n")), why);
  assert.doesNotMatch(r.stderr, /damaged/, why);
}
