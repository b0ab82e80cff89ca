/**
 * The guest clock (`env.rdtsc`, `lguest_data.tsc_khz`, the kit's
 * `lg_clock_ns`) and the host random-number device, through the real CLI
 * with the `test-clock` guest.
 *
 * @module
 */

import assert from "node:assert/strict";
import { EXIT } from "../launcher/cli.ts";
import { describe, runCli } from "./helpers/run_cli.ts";

function field(out: string, re: RegExp): string {
  const m = re.exec(out);
  assert.ok(m, `no match for ${re}\n${out}`);
  return m[1];
}

Deno.test("clock: readings cost no hypercall, are monotonic and follow a sleep", async () => {
  const r = await runCli(["run", "-v", "test-clock"]);
  assert.equal(r.code, EXIT.OK, describe(r));
  assert.equal(field(r.stdout, /^tsc_khz (\d+)$/m), "1000000", describe(r));
  assert.equal(field(r.stdout, /^readings 100000 monotonic (\w+)/m), "yes", describe(r));
  // 100 000 readings: the whole run makes far fewer hypercalls than that.
  const counters = JSON.parse(field(r.stderr, /counters (\{.*\})$/m));
  assert.ok(counters.hypercalls < 1000, `hypercalls ${counters.hypercalls}\n${describe(r)}`);
  const slept = Number(field(r.stdout, /^sleep 20 ms: (\d+)$/m));
  assert.ok(slept >= 20e6 && slept < 10e9, `slept ${slept} ns\n${describe(r)}`);
  const wall = Number(field(r.stdout, /^realtime (\d+)$/m));
  assert.ok(Math.abs(wall - Date.now() / 1000) < 30, `realtime ${wall}\n${describe(r)}`);
});

Deno.test("rng: every guest has one; it gives different bytes to each run and fills big reads", async () => {
  const [a, b] = await Promise.all([runCli(["run", "test-clock"]), runCli(["run", "test-clock"])]);
  const hex = [a, b].map((r) => {
    assert.equal(r.code, EXIT.OK, describe(r));
    assert.equal(field(r.stdout, /^rng big (\d+)$/m), String(200 * 1024 - 1), describe(r));
    return field(r.stdout, /^rng ([0-9a-f]{64})$/m);
  });
  assert.notEqual(hex[0], hex[1]);
  // 32 random bytes: at least 16 distinct values (fails with odds far below 1e-20).
  const bytes = new Set(hex[0].match(/../g));
  assert.ok(bytes.size >= 16, hex[0]);
});
