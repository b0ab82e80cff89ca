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

Deno.test("clock: env.rdtsc counts nanoseconds, from libc's monotonic clock or, without FFI, performance.now()", async () => {
  const { rdtsc } = await import("../engines/wasm.ts");
  const a = rdtsc(), t = performance.now();
  await new Promise((r) => setTimeout(r, 20));
  const b = rdtsc(), host = (performance.now() - t) * 1e6;
  assert.equal(typeof a, "bigint");
  const ns = Number(b - a);
  assert.ok(ns >= 19e6 && ns < host + 5e6, `${ns} ns over ${host} ns of performance.now()`);
  // Without --allow-ffi (the API in a program given fewer permissions): still a clock.
  const script = `import { rdtsc } from ${
    JSON.stringify(new URL("../engines/wasm.ts", import.meta.url).href)
  };
    const a = rdtsc(); await new Promise((r) => setTimeout(r, 20)); console.log(String(rdtsc() - a));`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-config", script],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  assert.ok(Number(text) >= 19e6 && Number(text) < 5e9, `without FFI: ${text} ns`);
});

Deno.test("clock: the Host's nowMs is the same clock as rdtsc, in milliseconds, and never goes back", async () => {
  const { nowMs, nowNs } = await import("../sys/clock.ts");
  const ns = nowNs(), ms = nowMs(), ns2 = nowNs();
  assert.ok(
    ms >= Number(ns) / 1e6 - 0.001 && ms <= Number(ns2) / 1e6 + 0.001,
    `${ms} ms, ${ns}..${ns2} ns`,
  );
  let last = nowMs();
  for (let i = 0; i < 10_000; i++) {
    const t = nowMs();
    assert.ok(t >= last, `${t} after ${last}`);
    last = t;
  }
  const a = nowMs(), t = performance.now();
  await new Promise((r) => setTimeout(r, 20));
  const d = nowMs() - a, host = performance.now() - t;
  assert.ok(d >= 19 && d < host + 5, `${d} ms over ${host} ms of performance.now()`);
});
