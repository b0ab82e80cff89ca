/**
 * A run whose guests all sleep with nothing to wake them stays alive, using
 * no CPU, until it is ended from outside (docs/guest-abi.md §7): Deno used
 * to abort it ("Top-level await promise never resolved", exit 1) once its
 * event loop was empty. And console input of any size reaches a guest
 * whose buffer is smaller than the 256 bytes read at a time, in order, then
 * end of input (§10): after the first partial delivery input used to stall.
 * Both with guests/test/conin.c.
 *
 * @module
 */

import assert from "node:assert/strict";
import { ConsoleDevice } from "../devices/console.ts";
import { source } from "./helpers/console_source.ts";
import type { DeviceContext } from "../devices/registry.ts";
import { startGuest } from "../mod.ts";
import { processHeld } from "../host/host.ts";
import {
  type CliResult,
  describe,
  hasStackTrace,
  type LiveProcess,
  ROOT_PATH,
  runCli,
  sleep,
  spawnCli,
  spawnProcess,
} from "./helpers/run_cli.ts";
import { cpuSeconds } from "./helpers/resources.ts";

/**
 * `p` has printed `banner` and then sleeps: it is still there a second
 * later, has used (far) less than half a second of CPU in that second,
 * and SIGTERM ends it with 143 and no stack trace.
 */
async function sleepsUntilTerm(p: LiveProcess, banner: string, what: string): Promise<void> {
  await p.waitFor(banner, 20_000);
  let ended: CliResult | null = null;
  p.result().then((r) => (ended = r));
  const cpu0 = await cpuSeconds(p.child.pid);
  await sleep(1000);
  const cpu1 = await cpuSeconds(p.child.pid);
  assert.equal(ended, null, `${what}: the run ended on its own: ${ended && describe(ended)}`);
  if (cpu0 !== null && cpu1 !== null) {
    assert.ok(cpu1 - cpu0 < 0.5, `${what}: ${cpu1 - cpu0} s of CPU in a second of sleep`);
  }
  p.kill("SIGTERM");
  const r = await p.result();
  assert.equal(r.code, 143, `${what}: ${describe(r)}`);
  assert.ok(!hasStackTrace(r.stderr) && !r.stderr.includes("never resolved"), r.stderr);
}

Deno.test("idle: a guest sleeping with nothing to wake it keeps the run alive (no CPU) until SIGTERM", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // With no hostile guest at all: one built-in netd on a segment of its own.
    const config = `${dir}/netd.json`;
    await Deno.writeTextFile(
      config,
      JSON.stringify({
        guests: [{ name: "n", image: "netd", net: ["segment:lan"], args: "ip=10.0.0.1/24" }],
      }),
    );
    const opts = { stdin: "null" as const, killAfterMs: 30_000 };
    await Promise.all([
      sleepsUntilTerm(
        spawnCli(["run", "test-conin", "--", "sleep=1"], opts),
        "conin: sleeping\n",
        "run test-conin",
      ),
      sleepsUntilTerm(spawnCli(["run", "--config", config], opts), "netd: 10.0.0.1/24", "netd"),
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("idle: --timeout still ends a sleeping run (124)", async () => {
  const r = await runCli(["run", "--timeout", "1", "test-conin", "--", "sleep=1"]);
  assert.equal(r.code, 124, describe(r));
  assert.match(r.stdout, /conin: sleeping\n$/);
});

Deno.test("idle: the API: a sleeping guest holds the process until it is stopped, then lets go", async () => {
  const g = await startGuest({ image: "test-conin", args: "sleep=1" });
  try {
    g.closeInput();
    await g.expect("conin: sleeping\n");
    // It halts right after its line: give it the turn to get there.
    for (let i = 0; i < 100 && !processHeld(); i++) await sleep(10);
    assert.equal(processHeld(), true, "a sleeping guest keeps the process alive");
  } finally {
    const r = await g.stop();
    assert.equal(r.reason, "stopped");
  }
  assert.equal(processHeld(), false, "released with the last guest");
});

Deno.test("idle: a program awaiting a sleeping guest's end waits (no Deno abort) until a signal", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const script = `${dir}/wait.ts`;
    await Deno.writeTextFile(
      script,
      `import { startGuest } from ${JSON.stringify(`file://${ROOT_PATH}/mod.ts`)};\n` +
        `const g = await startGuest({ image: "test-conin", args: "sleep=1" });\n` +
        `g.closeInput();\n` +
        `await g.expect("conin: sleeping");\n` +
        `console.log("waiting");\n` +
        `console.log((await g.done).reason);\n`,
    );
    const p = spawnProcess(Deno.execPath(), ["run", "-A", "--no-lock", script], {
      stdin: "null",
      killAfterMs: 30_000,
    });
    await sleepsUntilTerm(p, "waiting\n", "API program");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** FNV-1a, as the guest computes it. */
function fnv(data: Uint8Array): string {
  let h = 2166136261;
  for (const b of data) h = Math.imul(h ^ b, 16777619) >>> 0;
  return h.toString(16).padStart(8, "0");
}

Deno.test("console input: every byte, in order, then EOF, whatever the guest's buffer (1 byte to 4 KiB, 1 to 16 sections)", async () => {
  const data = crypto.getRandomValues(new Uint8Array(3000));
  const cases = [[1, 1], [2, 2], [3, 1], [100, 3], [255, 1], [256, 1], [257, 16], [4096, 16]];
  await Promise.all(cases.map(async ([len, secs]) => {
    const r = await runCli(["run", "test-conin", "--", `len=${len}`, `secs=${secs}`], {
      stdin: data,
      killAfterMs: 30_000,
    });
    const why = `len=${len} secs=${secs}: ${describe(r)}`;
    assert.equal(r.code, 0, why);
    const m = r.stdout.match(
      /^conin: (\d+) bytes in (\d+) deliveries \(largest (\d+)\), fnv ([0-9a-f]{8})\n$/,
    );
    assert.ok(m, why);
    assert.equal(Number(m[1]), data.length, why);
    assert.ok(Number(m[3]) <= len, why);
    assert.equal(m[4], fnv(data), why);
  }));
});

Deno.test("console input: a 1-byte buffer in a --config run with a live neighbour gets all of it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const config = `${dir}/two.json`;
    await Deno.writeTextFile(
      config,
      JSON.stringify({
        guests: [
          { name: "n", image: "netd", net: ["segment:lan"], args: "ip=10.0.0.1/24" },
          { name: "c", image: "test-conin", args: "len=1", console: "stdio" },
        ],
      }),
    );
    const data = crypto.getRandomValues(new Uint8Array(2000));
    const r = await runCli(["run", "--config", config], { stdin: data, killAfterMs: 30_000 });
    assert.equal(r.code, 0, describe(r));
    assert.ok(
      r.stdout.includes(`conin: 2000 bytes in 2000 deliveries (largest 1), fnv ${fnv(data)}\n`),
      describe(r),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** A console context whose guest has `free` buffers of `size` bytes; its stops are fired by hand. */
function stoppingGuest(size: number) {
  const state = { free: 0, attempts: 0, delivered: [] as number[], eof: false };
  const stops = new Set<() => void>();
  let input: (() => void) | null = null;
  const ctx = {
    guest: {
      counters: { hypercalls: 10 },
      onNextStop(fn: () => void) {
        stops.add(fn);
        return () => stops.delete(fn);
      },
    },
    deliver(_key: number, data: Uint8Array) {
      state.attempts++;
      if (state.free <= 0) return -1;
      state.free--;
      if (data.length === 0) state.eof = true;
      const n = Math.min(size, data.length);
      state.delivered.push(...data.subarray(0, n));
      return n;
    },
    requestInput() {
      queueMicrotask(() => input?.());
    },
    log() {},
    exit() {},
  } as unknown as DeviceContext;
  const stop = () => {
    const fs = [...stops];
    stops.clear();
    for (const f of fs) f();
  };
  return { ctx, state, stops, stop, onRequest: (f: () => void) => (input = f) };
}

Deno.test("console input: a full buffer is retried only after the guest has run (no timer ticks under a sleeping guest)", async () => {
  const g = stoppingGuest(256);
  const dev = new ConsoleDevice(source(["abc"]));
  g.onRequest(() => dev.input(g.ctx));
  dev.init(g.ctx);
  for (let i = 0; i < 10; i++) await sleep(5);
  // One try, then nothing until the guest stops: it sleeps, so nothing at all.
  assert.equal(g.state.attempts, 1);
  assert.equal(g.stops.size, 1);
  g.state.free = 1; // (a run of the guest handed its buffer back) ...
  g.stop(); // ... and ended in a stop: asked again shortly after
  for (let i = 0; i < 100 && g.state.delivered.length === 0; i++) await sleep(5);
  assert.deepEqual(g.state.delivered, [...new TextEncoder().encode("abc")]);
  dev.close();
  assert.equal(g.stops.size, 0);
});

Deno.test("console input: into a 1-byte buffer, the next byte waits for the guest's next stop, none is lost", async () => {
  const g = stoppingGuest(1);
  const dev = new ConsoleDevice(source(["hello", "!"]));
  g.onRequest(() => dev.input(g.ctx));
  dev.init(g.ctx);
  const want = [...new TextEncoder().encode("hello!")];
  for (let step = 0; step < 100 && !g.state.eof; step++) {
    for (let i = 0; i < 100 && g.stops.size === 0; i++) await sleep(2);
    assert.equal(g.stops.size, 1, "waiting for the guest's next stop (once)");
    g.state.free = 1;
    g.stop();
    for (let i = 0; i < 100 && g.state.free === 1; i++) await sleep(2);
    assert.equal(g.state.free, 0, "a stop after the buffer came back: the next piece went in");
  }
  assert.deepEqual(g.state.delivered, want);
  assert.equal(g.state.eof, true);
  assert.equal(g.stops.size, 0);
  dev.close();
});
