/**
 * Console end of input (docs/guest-abi.md §10, GUIDE contract 3): the
 * Launcher delivers every byte, then exactly one input DMA with used_len 0
 * (as 2.6.23), waiting for a free buffer rather than dropping it; a console
 * without input never sends one. The kit turns it into console_read() == 0
 * and the shell powers off: `lguest run shell < script` ends.
 *
 * @module
 */

import assert from "node:assert/strict";
import { type ConsoleBackend, ConsoleDevice, LGUEST_CONSOLE_F_IN_TTY } from "../devices/console.ts";
import { source } from "./helpers/console_source.ts";
import type { DeviceContext } from "../devices/registry.ts";
import { describe, lines, runCli, sleep, spawnCli } from "./helpers/run_cli.ts";

/** A context whose guest has `free` buffers now; records every delivery. */
function fakeContext(free: { n: number }) {
  const delivered: Uint8Array[] = [];
  let wake: (() => void) | null = null;
  const ctx = {
    deliver(_key: number, data: Uint8Array) {
      if (free.n <= 0) return -1;
      free.n--;
      const n = Math.min(data.length, 256);
      delivered.push(data.slice(0, n));
      return n;
    },
    requestInput() {
      queueMicrotask(() => wake?.());
    },
    log() {},
    exit() {},
  } as unknown as DeviceContext;
  return { ctx, delivered, onRequest: (f: () => void) => (wake = f) };
}

const tick = () => new Promise((r) => setTimeout(r, 5));

/**
 * The console's deliveries from `backend`, decoded, up to the end of its
 * input (a guest with 100 free buffers); the device, still open.
 */
async function readsOf(backend: ConsoleBackend): Promise<{ dev: ConsoleDevice; got: string[] }> {
  const f = fakeContext({ n: 100 });
  const dev = new ConsoleDevice(backend);
  f.onRequest(() => dev.input(f.ctx));
  dev.init(f.ctx);
  for (let i = 0; i < 200 && !dev.eof; i++) await tick();
  for (let i = 0; i < 5; i++) await tick();
  return { dev, got: f.delivered.map((d) => new TextDecoder().decode(d)) };
}

Deno.test("console EOF: every byte, then one DMA with used_len 0, then nothing", async () => {
  const free = { n: 100 };
  const f = fakeContext(free);
  const dev = new ConsoleDevice(source(["ab", "c"]));
  f.onRequest(() => dev.input(f.ctx));
  dev.init(f.ctx);
  for (let i = 0; i < 20; i++) await tick();
  const text = f.delivered.map((d) => new TextDecoder().decode(d));
  assert.deepEqual(text, ["ab", "c", ""]);
  dev.input(f.ctx); // the Launcher polling again delivers nothing more
  assert.equal(f.delivered.length, 3);
  assert.equal(dev.hasPendingInput(), false);
  dev.close();
});

Deno.test("console EOF: waits for a free buffer instead of dropping the EOF", async () => {
  const free = { n: 0 };
  const f = fakeContext(free);
  const dev = new ConsoleDevice(source([]));
  f.onRequest(() => dev.input(f.ctx));
  dev.init(f.ctx);
  for (let i = 0; i < 5; i++) await tick();
  assert.equal(f.delivered.length, 0);
  assert.equal(dev.hasPendingInput(), true);
  free.n = 1; // the guest binds its buffer late
  for (let i = 0; i < 200 && f.delivered.length === 0; i++) await tick();
  assert.deepEqual(f.delivered.map((d) => d.length), [0]);
  dev.close();
});

Deno.test("console: input is read from the guest's first stop on, and a turn asked for then, not before", async () => {
  // stdin /dev/null ends before the guest starts: a BREAK then would find no buffer and run the
  // Launcher's input path before the guest's first byte, and the first read of a process starts
  // a thread in Deno (boot.first_byte, docs/performance.md). Input cannot reach the guest before
  // its first stop; it waits in the pipe until then.
  const free = { n: 1 };
  const f = fakeContext(free);
  let requests = 0, reads = 0;
  const stops = new Set<() => void>();
  const guest = {
    counters: { hypercalls: 0 },
    halted: false,
    onNextStop(fn: () => void) {
      stops.add(fn);
      return () => stops.delete(fn);
    },
  };
  const ctx = { ...f.ctx, guest, requestInput: () => requests++ } as unknown as DeviceContext;
  const backend = source(["ab"]);
  const read = backend.read!.bind(backend);
  backend.read = (buf) => (reads++, read(buf));
  const dev = new ConsoleDevice(backend);
  dev.init(ctx);
  for (let i = 0; i < 5; i++) await tick();
  assert.equal(reads, 0, "nothing read before the guest has run");
  assert.equal(requests, 0, "no turn asked for before the guest has run");
  assert.equal(stops.size, 1, "one wait for the guest's first stop");
  guest.counters.hypercalls = 3; // the guest runs, binds its buffer, stops
  for (const fn of [...stops]) fn();
  stops.clear();
  for (let i = 0; i < 2; i++) await tick();
  assert.ok(reads > 0, "read from that stop on");
  assert.equal(requests, 1, "the turn is asked for once the input is read");
  dev.input(ctx);
  assert.deepEqual(f.delivered.map((d) => new TextDecoder().decode(d)), ["ab"]);
  for (let i = 0; i < 5; i++) await tick();
  assert.equal(requests, 2, "the end of input, once the guest has run: at once");
  dev.close();
});

Deno.test("console: lone 0x03 reads are data from a pipe or file, the three-Ctrl-C exit only at a terminal", async () => {
  // 2.6.23 counted them on any stdin (docs/deviations.md §10.2): three lone 0x03 reads within a
  // second ended the run and the rest of a piped binary stream was lost.
  for (const tty of [false, true]) {
    const f = fakeContext({ n: 100 });
    const exits: number[] = [];
    const ctx = { ...f.ctx, exit: (code: number) => exits.push(code) } as unknown as DeviceContext;
    const dev = new ConsoleDevice(
      source(["\x03", "\x03", "\x03", "\x03", "rest"]),
      "console: stdio",
      tty ? LGUEST_CONSOLE_F_IN_TTY : 0,
    );
    f.onRequest(() => dev.input(ctx));
    dev.init(ctx);
    for (let i = 0; i < 20; i++) await tick();
    const text = f.delivered.map((d) => new TextDecoder().decode(d));
    if (tty) {
      assert.deepEqual(exits, [130], "at a terminal: three typed Ctrl-C end the run");
      assert.deepEqual(text, ["\x03", "\x03"]);
    } else {
      assert.deepEqual(exits, [], "from a pipe: no exit");
      assert.deepEqual(text, ["\x03", "\x03", "\x03", "\x03", "rest", ""], "every byte, then EOF");
    }
    dev.close();
  }
});

Deno.test("console: piped stdin with lone 0x03 bytes a tenth of a second apart reaches the guest whole", async () => {
  // As /tmp/atk-net/repro/ctrlc_pipe.sh: each 0x03 is read alone (the guest has taken the one
  // before), five within 0.6 s; then binary data. Exit status is the guest's (0), not 130.
  const rest = crypto.getRandomValues(new Uint8Array(3000));
  const p = spawnCli(["run", "test-conin"], { stdin: "piped", killAfterMs: 30_000 });
  try {
    await sleep(1_000);
    for (let i = 0; i < 5; i++) {
      await p.write(new Uint8Array([3]));
      await sleep(150);
    }
    await p.write(rest);
  } catch { /* the run ended early: its status tells */ }
  await p.closeStdin();
  const r = await p.result();
  const data = new Uint8Array(5 + rest.length);
  data.fill(3, 0, 5);
  data.set(rest, 5);
  assert.equal(r.code, 0, describe(r));
  assert.equal(r.stderr, "", describe(r));
  const m = r.stdout.match(
    /^conin: (\d+) bytes in \d+ deliveries \(largest \d+\), fnv ([0-9a-f]{8})\n$/,
  );
  assert.ok(m, describe(r));
  assert.equal(Number(m[1]), data.length, describe(r));
  assert.equal(m[2], fnv(data), describe(r));
});

/** FNV-1a, as test-conin computes it. */
function fnv(data: Uint8Array): string {
  let h = 2166136261;
  for (const b of data) h = Math.imul(h ^ b, 16777619) >>> 0;
  return h.toString(16).padStart(8, "0");
}

Deno.test("console EOF: a console without input (a config guest's) sends none", async () => {
  const free = { n: 10 };
  const f = fakeContext(free);
  const dev = new ConsoleDevice({ write() {} });
  f.onRequest(() => dev.input(f.ctx));
  dev.init(f.ctx);
  for (let i = 0; i < 5; i++) await tick();
  dev.input(f.ctx);
  assert.equal(f.delivered.length, 0);
  assert.equal(dev.hasPendingInput(), false);
  dev.close();
});

Deno.test("console EOF: `lguest run shell < script` without poweroff ends with 0", async () => {
  const cases = [
    { name: "script", stdin: "echo one\necho two\n", out: ["one", "two"] },
    { name: "last line without Enter runs", stdin: "echo one\necho last", out: ["one", "last"] },
    { name: "empty input", stdin: "", out: [] },
    { name: "large input arrives whole first", stdin: "echo x\n".repeat(3000), out: [] },
  ];
  await Promise.all(cases.map(async (c) => {
    const r = await runCli(["run", "shell"], { stdin: c.stdin, killAfterMs: 30_000 });
    const why = `${c.name}: ${describe(r)}`;
    assert.equal(r.code, 0, why);
    assert.equal(r.stderr, "", why);
    const out = lines(r.stdout).filter((l) => !l.startsWith("lguest"));
    if (c.name.startsWith("large")) assert.equal(out.filter((l) => l === "x").length, 3000, why);
    else assert.deepEqual(out.filter((l) => l !== ""), c.out, why);
  }));
});

Deno.test("console EOF: stdin closed later ends a waiting shell at once", async () => {
  const p = spawnCli(["run", "shell"], { stdin: "piped", killAfterMs: 20_000 });
  await p.write("echo waiting\n");
  await p.waitFor("waiting\n");
  await new Promise((r) => setTimeout(r, 300)); // the shell is idle, halted
  await p.closeStdin();
  const r = await p.result();
  assert.equal(r.code, 0, describe(r));
});

Deno.test("console: a closed console whose read never ends is not kept by the process (sys/clock.ts poolOps)", async () => {
  const { poolOps } = await import("../sys/clock.ts");
  const free = { n: 1 };
  const f = fakeContext(free);
  // stdin that never ends and never sends: the read stays in flight after close().
  const dev = new ConsoleDevice({ read: () => new Promise<number | null>(() => {}), write() {} });
  const before = new Set(poolOps);
  dev.init(f.ctx);
  await tick();
  const mine = [...poolOps].filter((k) => !before.has(k));
  assert.equal(mine.length, 1, "its read is marked in flight");
  dev.close();
  // Was kept (and the guest with it) until the read ended, i.e. for good: 16 idle guests a
  // sample grew memory.rss.per_guest from 49 to 68 KiB.
  assert.ok(!poolOps.has(mine[0]), "closed: no longer kept");
});

Deno.test("console: where a blocking wait may run, a polled source is read on this thread (readSync), no read left on the pool", async () => {
  const { idleWaits, poolOps } = await import("../sys/clock.ts");
  const { libc } = await import("../sys/libc.ts");
  const dir = await Deno.makeTempDir();
  const path = `${dir}/in`;
  const text = "echo l0x\n".repeat(100); // 900 bytes: several chunks, then the end
  await Deno.writeTextFile(path, text);
  const fd = libc().open(new TextEncoder().encode(`${path}\0`), 0, 0); // O_RDONLY: always readable
  assert.ok(fd >= 0);
  let poolReads = 0;
  const was = idleWaits.possible;
  idleWaits.possible = true;
  const before = new Set(poolOps);
  try {
    const { dev, got } = await readsOf({
      read: (_buf) => {
        poolReads++;
        return Promise.resolve(null);
      },
      readSync: (buf) => {
        const n = Number(libc().read(fd, buf, BigInt(buf.length)));
        return n <= 0 ? null : n;
      },
      pollFd: fd,
      write() {},
    });
    assert.equal(got.join(""), text, "every byte, in order");
    assert.equal(got[got.length - 1], "", "then the end");
    assert.equal(poolReads, 0, "no read through the pool");
    assert.deepEqual(
      [...poolOps].filter((k) => !before.has(k)),
      [],
      "no watch or read left marked",
    );
    dev.close();
  } finally {
    idleWaits.possible = was;
    libc().close(fd);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("console: the CLI's stdin read on this thread never waits: an open pipe emptied by another reader after our poll gives nothing at once", async () => {
  // What a second reader of the same pipe leaves after our poll found it readable: an open,
  // empty pipe. A blocking read(2) there held the main thread (every guest, netd's tap) until
  // the next byte; the read is in a child, bounded, so a regression fails instead of hanging.
  const script = await Deno.makeTempFile({ suffix: ".ts" });
  await Deno.writeTextFile(
    script,
    `const { stdioBackend } = await import(${
      JSON.stringify(new URL("../devices/console.ts", import.meta.url).href)
    });
    let out;
    try { out = "read " + stdioBackend().readSync(new Uint8Array(64)); }
    catch (e) { out = e.name; }
    console.log(out);`,
  );
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--no-lock", script],
    stdin: "piped", // kept open, nothing written
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  let killed = false;
  const bound = setTimeout(() => {
    killed = true;
    child.kill("SIGKILL");
  }, 20_000);
  try {
    const out = new TextDecoder().decode((await child.output()).stdout).trim();
    assert.ok(!killed, "the read returned (it waited for input that never came)");
    // WouldBlock: RWF_NOWAIT's EAGAIN (Linux 5.x+ pipes); NotSupported: a kernel without it
    // for pipes (the console then reads through the pool, not on this thread).
    assert.ok(out === "WouldBlock" || out === "NotSupported", `got ${out}`);
  } finally {
    clearTimeout(bound);
    await Deno.remove(script);
  }
});

Deno.test("console: a polled source whose readSync finds nothing polls again; one that cannot read without waiting is read through the pool from then on", async () => {
  const { idleWaits } = await import("../sys/clock.ts");
  const { libc } = await import("../sys/libc.ts");
  const dir = await Deno.makeTempDir();
  const path = `${dir}/in`;
  const text = "echo l0x\n".repeat(100); // 900 bytes: several chunks, then the end
  await Deno.writeTextFile(path, text);
  const was = idleWaits.possible;
  idleWaits.possible = true;
  try {
    for (const first of ["WouldBlock", "NotSupported"] as const) {
      const fd = libc().open(new TextEncoder().encode(`${path}\0`), 0, 0); // always readable
      assert.ok(fd >= 0);
      const raw = (buf: Uint8Array) => {
        const n = Number(libc().read(fd, buf, BigInt(buf.length)));
        return n <= 0 ? null : n;
      };
      let poolReads = 0, syncReads = 0;
      const { dev, got } = await readsOf({
        read: (buf) => {
          poolReads++;
          return Promise.resolve(raw(buf));
        },
        readSync: (buf) => {
          if (syncReads++ === 0) throw new Deno.errors[first]("test");
          return raw(buf);
        },
        pollFd: fd,
        write() {},
      });
      assert.equal(got.join(""), text, `${first}: every byte, in order`);
      assert.equal(got[got.length - 1], "", `${first}: then the end`);
      if (first === "WouldBlock") {
        assert.equal(poolReads, 0, "nothing after all: polled and read here again");
        assert.ok(syncReads > 1);
      } else {
        assert.equal(syncReads, 1, "not supported: never tried again");
        assert.ok(poolReads > 1, "the pool read the rest");
      }
      dev.close();
      libc().close(fd);
    }
  } finally {
    idleWaits.possible = was;
    await Deno.remove(dir, { recursive: true });
  }
});
