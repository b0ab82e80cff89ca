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
 * A run under a small host stack: its one line, no trace, nothing called damaged, and 125
 * wherever the host met it, a guest's hypercall too (README "Run your own program"; it was
 * 126 there, and from the bundle a random `guest fault: stack overflow`: tests/stack_fault_test.ts).
 */
export function assertHostStack(r: { code: number; stderr: string }, why: string): void {
  assert.equal(r.code, EXIT.USAGE, `exit ${r.code}: ${why}`);
  assert.doesNotMatch(r.stderr, /guest fault/, why);
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
