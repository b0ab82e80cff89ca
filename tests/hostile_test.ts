/**
 * Hostile guests (issue 7): each runs with `lguest run -v --config` in one
 * host next to well-behaved guests — a stdio shell that must keep
 * answering (its own disk I/O, pings, `echo ok`, `poweroff`, exit 0) and
 * usually netd — and each case checks that the neighbours and the launcher
 * are unaffected and that the resources the host holds stay bounded: the
 * bindings (the guest's own view of the limit of 32, and the host's count
 * the `-v` "gone" lines print when each guest ends, down to 0), the
 * frames pending for a receiver, and the lguest process's RSS sampled
 * over the run.
 *
 * The hostile guests are in guests/test/hostile-*.c (images
 * test-hostile-*); test-netflood is the flooder. What each proves is
 * listed in docs/security.md.
 *
 * @module
 */

import assert from "node:assert/strict";
import { LHCALL_FLUSH_ASYNC, LHREQ_IRQ, PAGE_SIZE, X86_EFLAGS_IF } from "../abi/constants.ts";
import { LD_IRQ_ENABLED } from "../abi/structs.ts";
import { Segment } from "../devices/net/segment.ts";
import { LG_EV_DONE, LG_EV_WAIT, LG_EVENT } from "../engines/engine.ts";
import { ARR, BUF, closeAll, makeHost, pattern } from "./helpers/guests.ts";
import { type CliResult, describe, hasStackTrace, lines, spawnCli } from "./helpers/run_cli.ts";
import {
  assertHostEmpty,
  blockStats,
  counters,
  goneLines,
  type GuestConf,
  guestLines,
  inTempDir,
  pingSummaries,
  randomBytes,
  RssSampler,
  SANITIZERS_OFF,
  SECTOR,
  writeConfig,
} from "./helpers/resources.ts";

const NETD: GuestConf = {
  name: "a",
  image: "netd",
  memory: "16M",
  net: ["segment:lan"],
  args: "ip=10.0.0.1/24",
};

function shellConf(extra: Partial<GuestConf> = {}): GuestConf {
  return {
    name: "b",
    image: "shell",
    net: ["segment:lan"],
    args: "ip=10.0.0.2/24",
    console: "stdio",
    ...extra,
  };
}

interface Session {
  r: CliResult;
  rss: string;
}

/**
 * Run `lguest run -v --config CONFIG` with a piped stdin that `drive`
 * writes to (it ends with the shell's poweroff), sampling the process's
 * RSS over the run; asserts the RSS stayed bounded.
 */
async function session(
  config: string,
  drive: (p: ReturnType<typeof spawnCli>) => Promise<void>,
  what: string,
  killAfterMs = 60_000,
): Promise<Session> {
  const p = spawnCli(["run", "-v", "--config", config], { stdin: "piped", killAfterMs });
  const sampler = new RssSampler(p.child.pid, 200);
  try {
    await drive(p);
    await p.closeStdin();
  } catch (e) {
    p.kill("SIGKILL");
    await p.result();
    await sampler.stop();
    throw e;
  }
  const r = await p.result();
  const samples = await sampler.stop();
  const why = describe(r);
  assert.ok(!r.killed, why);
  assert.ok(!hasStackTrace(r.stdout + r.stderr), `stack trace\n${why}`);
  const rss = RssSampler.assertBounded(samples, what);
  return { r, rss };
}

/** The one line the launcher printed for NAME's end: the line after its counters. */
function reason(stderr: string, name: string): string {
  const ls = lines(stderr);
  const i = ls.findIndex((l) => l.startsWith(`lguest: ${name}: counters `));
  assert.ok(i >= 0 && i + 1 < ls.length, `no end lines for ${name}:\n${stderr.slice(-3000)}`);
  return ls[i + 1];
}

function padded(text: string): Uint8Array {
  const s = new Uint8Array(SECTOR);
  s.set(new TextEncoder().encode(text));
  return s;
}

/** The file equals `orig` except sector `sector`, which holds `text` zero-padded. */
async function assertOneSectorWritten(
  path: string,
  orig: Uint8Array,
  sector: number,
  text: string,
) {
  const want = orig.slice();
  want.set(padded(text), sector * SECTOR);
  assert.deepEqual(await Deno.readFile(path), want, `${path}: only sector ${sector} changed`);
}

const log = (s: string) => console.log(`  ${s}`);

interface Step {
  name: string;
  fn: () => Promise<void>;
}

const steps: Step[] = [];
const exitSteps: Step[] = [];

// ---- 0. In process: the host-side limits the hostile guests run into -----------------

Deno.test(
  "segment: a member binds only its own slot's key; a peer's key is refused and the " +
    "peer keeps its frames",
  () => {
    const { host, guests } = makeHost(3);
    const seg = Segment.get(host, "lan");
    const page = guests[0].mem.top - PAGE_SIZE;
    guests.forEach((t, slot) => {
      assert.equal(seg.takeSlot(), slot);
      t.file.mapShared({
        start: page,
        length: PAGE_SIZE,
        objectId: seg.objectId,
        objectOffset: 0,
        sync: (g) => seg.sync(g),
        mayBind: (_g, off) => off === 4 * slot, // as SegmentNetDevice maps it
      });
      seg.join(t.guest, slot, page);
    });
    const [a, b, c] = guests;
    b.gate(1);
    b.dma(ARR, [[BUF, 1514]]);
    c.dma(ARR, [[BUF, 1514]]);
    assert.equal(b.bind(page + 4 * 1, ARR, 1, 1), 1, "b binds its own key");
    assert.equal(c.bind(page + 4 * 1, ARR, 1, 1), 0, "c may not bind b's key");
    assert.equal(c.bind(page + 4 * 0, ARR, 1, 1), 0, "nor a's");
    assert.equal(c.bind(page + 4 * 600, ARR, 1, 1), 0, "nor a key nobody holds");
    assert.equal(c.dead, null, "refused, not killed");
    assert.equal(c.bind(page + 4 * 2, ARR, 1, 1), 1, "its own is fine");
    const frame = pattern(60);
    a.mem.bytes.set(frame, 0x9000);
    a.dma(0x3000, [[0x9000, 60]]);
    a.send(page + 4 * 1, 0x3000);
    assert.equal(a.used(0x3000), 60);
    assert.deepEqual(b.mem.slice(BUF, 60), frame, "b got the frame meant for it");
    assert.equal(c.used(ARR), 0, "c got nothing");
    assert.equal(host.dma.bindingCount, 2);
    closeAll(guests);
    assert.equal(host.dma.bindingCount, 0);
  },
);

Deno.test(
  "nesting: interrupts taken inside interrupts without end kill the guest at 256 " +
    "levels; finished handlers may go on forever",
  () => {
    const { guests: [t, u] } = makeHost(2);
    for (const g of [t, u]) g.gate(5);
    const ie = (g: typeof t) => g.cpu.view.setU32(g.cpu.ld + LD_IRQ_ENABLED, X86_EFLAGS_IF);
    // event(), with the end of a time slice handled as read() would (resume at once).
    const event = (g: typeof t) => {
      for (;;) {
        const e = g.file.event() >>> 0;
        if (e !== LG_EV_WAIT || !g.guest.preempt) return e;
        g.guest.preempt = false;
      }
    };
    // u finishes every handler: 2000 interrupts, no limit.
    for (let i = 0; i < 2000; i++) {
      u.file.write([LHREQ_IRQ, 5]);
      assert.equal(u.file.hypercall(LHCALL_FLUSH_ASYNC, 0, 0, 0), LG_EVENT);
      assert.equal(event(u), 5);
      ie(u);
      assert.equal(event(u), (LG_EV_DONE | LHCALL_FLUSH_ASYNC) >>> 0);
    }
    assert.equal(u.dead, null);
    // t never finishes one: each level is a hypercall made inside the last handler.
    let levels = 0;
    for (; levels < 1000 && t.dead === null; levels++) {
      t.file.write([LHREQ_IRQ, 5]);
      assert.equal(t.file.hypercall(LHCALL_FLUSH_ASYNC, 0, 0, 0), LG_EVENT);
      if (event(t) !== 5) break;
      ie(t);
    }
    assert.equal(t.dead, "interrupts nested deeper than 256 levels");
    assert.equal(levels, 256);
    assert.equal(u.dead, null, "the other guest is fine");
    closeAll([t, u]);
  },
);

// ---- 1. Scribbling over device pages, the descriptor table, lguest_data ---------------

steps.push({
  name: "scribble — random bytes over its device pages, descriptor table and lguest_data " +
    "while doing I/O; its disk and net still work, the neighbours never notice",
  fn: () =>
    inTempDir(async (dir) => {
      const sImg = `${dir}/s.img`, nImg = `${dir}/n.img`;
      const sData = randomBytes(1 << 20, 11), nData = randomBytes(1 << 20, 12);
      await Deno.writeFile(sImg, sData);
      await Deno.writeFile(nImg, nData);
      const config = await writeConfig(dir, [
        NETD,
        {
          name: "s",
          image: "test-hostile-scribble",
          memory: "16M",
          net: ["segment:lan"],
          block: [sImg],
          args: "ip=10.0.0.3/24 peer=10.0.0.1 rounds=60000 seed=7",
        },
        shellConf({ block: [nImg] }),
      ]);
      const { r, rss } = await session(config, async (p) => {
        await p.write("ping 10.0.0.1 4\nblk write 0 1 from the neighbour\n");
        await p.waitFor(/\[s\] scribble: done$/m, 45_000);
        await p.write("ping 10.0.0.3 3\necho ok\npoweroff\n");
      }, "scribble");
      log(rss);
      const why = describe(r);
      assert.equal(r.code, 0, why);
      const s = guestLines(r.stdout, "s");
      const summary = s.find((l) => l.startsWith("scribble: 60000 rounds (seed 7): "));
      assert.ok(summary, why);
      log(summary);
      const [blk, frames, sends] = /: (\d+) block requests, (\d+) frames, (\d+) sends$/.exec(
        summary,
      )!.slice(1).map(Number);
      assert.ok(blk > 0 && frames > 0 && sends > 0, summary);
      assert.ok(s.includes("scribble: blk ok"), why);
      assert.ok(s.includes("scribble: ping 10.0.0.1 ok"), why);
      // The shell pinged netd while the scribbling went on, without a loss.
      const out = r.stdout;
      assert.ok(out.indexOf("PING 10.0.0.1") < out.indexOf(summary), "ping began before the end");
      assert.deepEqual(pingSummaries(out, "10.0.0.1"), [[4, 4]], why);
      assert.deepEqual(pingSummaries(out, "10.0.0.3"), [[3, 3]], why);
      assert.ok(lines(out).includes("ok"), why);
      await assertOneSectorWritten(nImg, nData, 1, "from the neighbour");
      assert.equal((await Deno.stat(sImg)).size, sData.length, "its own disk kept its size");
      const c = counters(r.stderr, "s");
      assert.equal(c.asyncHypercalls, blk, "every in-flight request went through the ring");
      assertHostEmpty(r.stderr);
    }, "lguest-hostile-"),
});

steps.push({
  name: "scribble ring=1 — garbage in its own async hypercall ring kills only it, with one reason",
  fn: () =>
    inTempDir(async (dir) => {
      const config = await writeConfig(dir, [
        NETD,
        {
          name: "s",
          image: "test-hostile-scribble",
          memory: "16M",
          net: ["segment:lan"],
          args: "ip=10.0.0.3/24 rounds=3000 seed=3 ring=1",
        },
        shellConf(),
      ]);
      const { r, rss } = await session(config, async (p) => {
        await p.write("ping 10.0.0.1 3\n");
        await p.waitFor(
          () =>
            p.stdout.includes("[s] scribble: ring survived") || /^lguest: s: gone;/m.test(p.stderr),
          30_000,
        );
        await p.write("ping 10.0.0.1 2\necho ok\npoweroff\n");
      }, "scribble ring=1");
      log(rss);
      const why = describe(r);
      assert.equal(r.code, 0, why);
      if (r.stdout.includes("[s] scribble: ring survived")) {
        log("the scribbled ring held only calls the host accepted: the guest lived");
      } else {
        const line = reason(r.stderr, "s");
        log(`scribbled ring: ${line}`);
        assert.match(line, /^lguest: s: \S/, why);
        const gone = goneLines(r.stderr).find((g) => g.name === "s")!;
        assert.deepEqual([gone.guests, gone.bindings], [2, 4], "netd and the shell keep theirs");
      }
      assert.deepEqual(pingSummaries(r.stdout, "10.0.0.1"), [[3, 3], [2, 2]], why);
      assertHostEmpty(r.stderr);
    }, "lguest-hostile-"),
});

steps.push({
  name: "grow — memory.grow(0) and (1) on its fixed memory while it answers pings: it goes " +
    "on, and netd, the shell's console and the launcher never notice",
  fn: () =>
    inTempDir(async (dir) => {
      const config = await writeConfig(dir, [
        NETD,
        {
          name: "g",
          image: "test-hostile-grow",
          memory: "8M",
          net: ["segment:lan"],
          args: "ip=10.0.0.3/24 pings=3",
        },
        shellConf(),
      ]);
      const { r, rss } = await session(config, async (p) => {
        await p.waitFor(/\[g\] grow: answering pings$/m, 30_000);
        await p.write("ping 10.0.0.3 3\n");
        await p.waitFor(/\[g\] grow: answered 3 pings$/m, 30_000);
        await p.write("ping 10.0.0.1 2\necho ok\npoweroff\n");
      }, "grow");
      log(rss);
      const why = describe(r);
      assert.equal(r.code, 0, why);
      const g = guestLines(r.stdout, "g");
      assert.match(
        g[0] ?? "",
        /^grow: size (\d+), grow\(0\) \1, grow\(1\) -1, grow\(65536\) -1, grow\(-1\) -1, size \1$/,
        why,
      );
      assert.ok(g.includes("grow: rng 4096 bytes, random"), why);
      assert.deepEqual(pingSummaries(r.stdout, "10.0.0.3"), [[3, 3]], why);
      assert.deepEqual(pingSummaries(r.stdout, "10.0.0.1"), [[2, 2]], why);
      assert.ok(lines(r.stdout).includes("ok"), why);
      assert.ok(!/internal error|detached/i.test(r.stderr), why);
      assertHostEmpty(r.stderr);
    }, "lguest-hostile-"),
});

// ---- 2. Rebinding ---------------------------------------------------------------------

steps.push({
  name: "rebind — 10000 bind/unbind cycles, 33+ binds, garbage arrays, the console key, its " +
    "peers' keys: the host says no past 32 and to others' keys; netd answers throughout",
  fn: () =>
    inTempDir(async (dir) => {
      const config = await writeConfig(dir, [
        NETD,
        {
          name: "r",
          image: "test-hostile-rebind",
          memory: "8M",
          net: ["segment:lan"],
          args: "peers=2 ms=3000",
        },
        shellConf(),
      ]);
      const { r, rss } = await session(config, async (p) => {
        await p.write("ping 10.0.0.1 5\n");
        await p.waitFor(/\[r\] rebind: done/m, 30_000);
        await p.write("ping 10.0.0.1 3\necho ok\npoweroff\n");
      }, "rebind");
      log(rss);
      const why = describe(r);
      assert.equal(r.code, 0, why);
      const got = guestLines(r.stdout, "r");
      const cycles = got.find((l) => / cycles of 40 binds and unbinds in 3000 ms$/.test(l));
      assert.ok(cycles, why);
      log(cycles);
      // The kit holds one binding (the console's input buffer): 31 + 1 = 32.
      assert.deepEqual(
        got.filter((l) => l !== cycles),
        [
          "rebind: 10000 bind/unbind cycles: all ok",
          "rebind: 31 binds, then refused",
          "rebind: after unbinding them: 31 binds, then refused",
          "rebind: garbage arrays: 5 of 5 bound, all unbound",
          "rebind: bad irq: refused",
          "rebind: console key 0 bound to a garbage array: 1",
          "rebind: peer slot 0 (02:00:00:00:00:00): bind refused",
          "rebind: peer slot 2 (02:00:02:00:00:00): bind refused",
          "rebind: done (30 binds free)",
        ],
        why,
      );
      // Pings during the binding storm, and after: none taken by the rebinder.
      assert.deepEqual(pingSummaries(r.stdout, "10.0.0.1"), [[5, 5], [3, 3]], why);
      assert.ok(lines(r.stdout).includes("ok"), why);
      assert.equal(counters(r.stderr, "a").dmaAbandoned, 0, why);
      assertHostEmpty(r.stderr);
    }, "lguest-hostile-"),
});

steps.push({
  name: "rebind end=garbage — its own receive key bound to an array outside its memory: the " +
    "first frame sent to it kills it; the sender just sees the frame not taken",
  fn: () =>
    inTempDir(async (dir) => {
      const config = await writeConfig(dir, [
        NETD,
        {
          name: "r",
          image: "test-hostile-rebind",
          memory: "8M",
          net: ["segment:lan"],
          args: "peers=2 ms=200 cycles=100 end=garbage",
        },
        shellConf(),
      ]);
      const { r, rss } = await session(config, async (p) => {
        await p.waitFor(/\[r\] rebind: own receive key bound to a garbage array$/m, 30_000);
        await p.write("ping 10.0.0.1 3\n");
        await p.waitFor(/^lguest: r: gone;/m, 15_000, "stderr");
        await p.write("net\necho ok\npoweroff\n");
      }, "rebind end=garbage");
      log(rss);
      const why = describe(r);
      assert.equal(r.code, 0, why);
      assert.equal(
        reason(r.stderr, "r"),
        "lguest: r: SEND_DMA: bad address in registered DMA struct 0xffffff00",
        why,
      );
      const gone = goneLines(r.stderr).find((g) => g.name === "r")!;
      assert.deepEqual([gone.guests, gone.bindings], [2, 4], "only its own bindings went");
      assert.deepEqual(pingSummaries(r.stdout, "10.0.0.1"), [[3, 3]], why);
      // Its slot was cleared when it died: the shell sees only netd.
      assert.match(r.stdout, /^ {2}peer slot 0: 02:00:00:00:00:00$/m, why);
      assert.doesNotMatch(r.stdout, /^ {2}peer slot 1:/m, why);
      assertHostEmpty(r.stderr);
    }, "lguest-hostile-"),
});

// ---- 3. Flooding a segment ---------------------------------------------------------

steps.push({
  name: "flood — 1,000,000 frames into netd: every frame taken or counted, no queue grows, " +
    "RSS bounded; the shell keeps working and netd answers",
  fn: () =>
    inTempDir(async (dir) => {
      const count = 1_000_000;
      const config = await writeConfig(dir, [
        NETD,
        {
          name: "f",
          image: "test-netflood",
          memory: "8M",
          net: ["segment:lan"],
          args: `ip=10.0.0.9/24 dst=10.0.0.1 count=${count} size=1514`,
        },
        shellConf(),
      ]);
      const { r, rss } = await session(
        config,
        async (p) => {
          await p.write("echo during\nping 10.0.0.1 3\n");
          await p.waitFor(/\[f\] netflood: .*\n/m, 60_000);
          await p.write("ping 10.0.0.1 3\necho ok\npoweroff\n");
        },
        "flood",
        90_000,
      );
      log(rss);
      const why = describe(r);
      assert.equal(r.code, 0, why);
      const m =
        /\[f\] netflood: (\d+) frames of 1514 bytes to 10\.0\.0\.1: (\d+) taken, (\d+) not taken, tx errors (\d+)$/m
          .exec(r.stdout);
      assert.ok(m, why);
      const [n, taken, notTaken, txErrors] = m.slice(1).map(Number);
      const c = counters(r.stderr, "f");
      log(`${n} frames: ${taken} taken, ${notTaken} dropped (dmaDroppedFull ${c.dmaDroppedFull})`);
      assert.equal(n, count);
      assert.equal(taken + notTaken, count, why);
      assert.equal(txErrors, c.dmaDroppedFull + c.dmaNoReceiver + c.dmaAbandoned, why);
      assert.equal(c.dmaAbandoned, 0, why);
      // The shell ran its commands during the flood and pinged netd after it.
      assert.ok(lines(r.stdout).includes("during"), why);
      const pings = pingSummaries(r.stdout, "10.0.0.1");
      assert.equal(pings.length, 2, why);
      log(`pings during the flood: ${pings[0][1]}/3 answered`);
      assert.deepEqual(pings[1], [3, 3], why);
      assertHostEmpty(r.stderr);
    }, "lguest-hostile-"),
});

// ---- 4. Malformed block requests ---------------------------------------------------

const BLKBAD = [
  "write at sector N (one past the end): error",
  "write at sector 0xFFFFFFFF: error",
  "read at sector 0x800000 (4 GiB): error",
  "write, bytes 512 but 1024 in the sections: error",
  "write, bytes 1024 but 512 in the sections: error",
  "write, 16 sections of 65535 bytes, bytes 512: error",
  "type 7: error",
  "type -1: error",
  "type 0x80000000: error",
  "write, zero sections, bytes 512: error",
  "write, zero sections, bytes 0: ok",
  "read, bytes 512 but 1024 in the reply: error",
  "read, zero sections in the reply, bytes 512: error",
  "read, reply buffer busy (used_len != 0): error",
  "read into a section crossing a page: ok",
  "write it back from there: ok",
  "read, one 8192-byte section (> a page): ok",
  "write it back from there: ok",
  "read into the device page itself: ok",
  "write from the device page, past the end: error",
  "descriptor inside the device page, past the end: error",
  "read after all that: ok",
].map((l) => `blkbad: ${l}`);

/** test-hostile-blkbad on two disks next to a shell with its own; `end` ends it. */
function blkbadCase(end: "" | "outside" | "reply"): Step {
  return {
    name: `blkbad${end ? ` end=${end}` : ""} — malformed block requests ${
      end ? `then a DMA outside memory (${end}): it dies` : "all refused or harmless"
    }; both its disk files intact, the neighbour's disk and the launcher fine`,
    fn: () =>
      inTempDir(async (dir) => {
        const d0 = `${dir}/x0.img`, d1 = `${dir}/x1.img`, nImg = `${dir}/n.img`;
        const x0 = randomBytes(1 << 20, 21), x1 = randomBytes(64 << 10, 22);
        const nData = randomBytes(256 << 10, 23);
        await Deno.writeFile(d0, x0);
        await Deno.writeFile(d1, x1);
        await Deno.writeFile(nImg, nData);
        const config = await writeConfig(dir, [
          {
            name: "x",
            image: "test-hostile-blkbad",
            memory: "8M",
            block: [d0, d1],
            args: end ? `end=${end}` : "",
          },
          { name: "b", image: "shell", block: [nImg], console: "stdio" },
        ]);
        const { r, rss } = await session(config, async (p) => {
          await p.write("blk write 0 1 the neighbour's sector\n");
          await p.waitFor(/^lguest: x: gone;/m, 30_000, "stderr");
          await p.write("blk crc 0\necho ok\npoweroff\n");
        }, `blkbad ${end}`);
        log(rss);
        const why = describe(r);
        assert.equal(r.code, 0, why);
        const got = guestLines(r.stdout, "x");
        const crc = /^blkbad: disk 0, 2048 sectors, crc32 ([0-9a-f]{8})$/.exec(got[0] ?? "");
        assert.ok(crc, why);
        assert.deepEqual(got.slice(1, 1 + BLKBAD.length), BLKBAD, why);
        assert.equal(got[1 + BLKBAD.length], `blkbad: crc32 ${crc[1]} -> ${crc[1]}`, why);
        const errors = BLKBAD.filter((l) => l.endsWith(": error")).length;
        if (end === "") {
          assert.equal(got.at(-1), "blkbad: done", why);
          assert.match(reason(r.stderr, "x"), /^lguest: x: powered off$/, why);
          assert.equal(blockStats(r.stderr, d0).errors, errors, "every refusal counted");
        } else {
          const line = reason(r.stderr, "x");
          log(line);
          assert.equal(
            line,
            end === "outside"
              ? "lguest: x: SEND_DMA to the Launcher (key 0x801000): bad DMA section 65535@0xffff0000"
              : "lguest: x: GETDMA buffer for key 0x801000: bad DMA section 512@0xffff0000",
            why,
          );
          assert.ok(!got.includes("blkbad: STILL ALIVE"), why);
        }
        assert.deepEqual(await Deno.readFile(d0), x0, "disk 0 intact");
        assert.deepEqual(await Deno.readFile(d1), x1, "disk 1 intact");
        await assertOneSectorWritten(nImg, nData, 1, "the neighbour's sector");
        assert.ok(lines(r.stdout).includes("ok"), why);
        assertHostEmpty(r.stderr);
      }, "lguest-hostile-"),
  };
}

exitSteps.push(blkbadCase(""), blkbadCase("outside"), blkbadCase("reply"));

// ---- 5. Guests that die mid-request ---------------------------------------------------

/** test-hostile-exit mode=MODE with its own disk, next to a shell with its own. */
function exitBlockCase(mode: "blk" | "ring" | "trap", want: string): Step {
  return {
    name: `exit mode=${mode} — dies ${
      mode === "blk"
        ? "right after a block write with no reply buffer: nothing written"
        : mode === "ring"
        ? "with a write and a CRASH in its async ring: the acknowledged write is in the file"
        : "by a trap with a write queued but never flushed: nothing written"
    }; the neighbour's disk and the launcher fine`,
    fn: () =>
      inTempDir(async (dir) => {
        const xImg = `${dir}/x.img`, nImg = `${dir}/n.img`;
        const xData = randomBytes(64 << 10, 31), nData = randomBytes(64 << 10, 32);
        await Deno.writeFile(xImg, xData);
        await Deno.writeFile(nImg, nData);
        const config = await writeConfig(dir, [
          {
            name: "x",
            image: "test-hostile-exit",
            memory: "8M",
            block: [xImg],
            args: `mode=${mode}`,
          },
          { name: "b", image: "shell", block: [nImg], console: "stdio" },
        ]);
        const { r } = await session(config, async (p) => {
          await p.waitFor(/^lguest: x: gone;/m, 15_000, "stderr");
          await p.write("blk write 0 1 still writing\necho ok\npoweroff\n");
        }, `exit ${mode}`);
        const why = describe(r);
        assert.equal(r.code, 0, why);
        assert.equal(reason(r.stderr, "x"), `lguest: x: ${want}`, why);
        assert.ok(guestLines(r.stdout, "x").includes("exit: writing sector 3"), why);
        const gone = goneLines(r.stderr).find((g) => g.name === "x")!;
        assert.equal(gone.guests, 1, why);
        assert.ok(gone.bindings <= 2, `the shell's console and disk at most: ${gone.bindings}`);
        const want3 = xData.slice();
        if (mode === "ring") {
          want3.set(new Uint8Array(SECTOR).map((_, i) => (i * 7 + 3) & 0xff), 3 * SECTOR);
        }
        assert.deepEqual(await Deno.readFile(xImg), want3, `x.img after mode=${mode}`);
        await assertOneSectorWritten(nImg, nData, 1, "still writing");
        assertHostEmpty(r.stderr);
      }, "lguest-hostile-"),
  };
}

exitSteps.push(
  exitBlockCase("blk", "CRASH: exit: right after a write with no reply buffer"),
  exitBlockCase("ring", "CRASH: exit: with a write in the async ring"),
  exitBlockCase("trap", "guest fault: unreachable"),
);

exitSteps.push({
  name: "exit mode=net — dies with 8 frames pending in its receive buffers while the shell " +
    "pings netd: no ping lost, its slot is cleared, its bindings released",
  fn: () =>
    inTempDir(async (dir) => {
      const config = await writeConfig(dir, [
        NETD,
        {
          name: "x",
          image: "test-hostile-exit",
          memory: "8M",
          net: ["segment:lan"],
          args: "mode=net",
        },
        shellConf(),
      ]);
      const { r, rss } = await session(config, async (p) => {
        await p.waitFor(/\[x\] exit: promiscuous in slot 1/m, 15_000);
        await p.write("ping 10.0.0.1 6\n");
        await p.waitFor(/^lguest: x: gone;/m, 20_000, "stderr");
        await p.write("net\nping 10.0.0.1 2\necho ok\npoweroff\n");
      }, "exit net");
      log(rss);
      const why = describe(r);
      assert.equal(r.code, 0, why);
      assert.ok(guestLines(r.stdout, "x").includes("exit: 8 frames pending"), why);
      assert.equal(reason(r.stderr, "x"), "lguest: x: CRASH: exit: with 8 frames pending", why);
      const gone = goneLines(r.stderr).find((g) => g.name === "x")!;
      assert.deepEqual([gone.guests, gone.bindings], [2, 4], "netd's and the shell's remain");
      assert.deepEqual(pingSummaries(r.stdout, "10.0.0.1"), [[6, 6], [2, 2]], why);
      assert.match(r.stdout, /^ {2}peer slot 0: 02:00:00:00:00:00$/m, why);
      assert.doesNotMatch(r.stdout, /^ {2}peer slot 1:/m, "the dead guest's slot is cleared");
      assertHostEmpty(r.stderr);
    }, "lguest-hostile-"),
});

exitSteps.push({
  name: "exit mode=ping — dies while the shell is mid-ping of it: the rest time out, the " +
    "shell goes on and still reaches netd",
  fn: () =>
    inTempDir(async (dir) => {
      const config = await writeConfig(dir, [
        NETD,
        {
          name: "x",
          image: "test-hostile-exit",
          memory: "8M",
          net: ["segment:lan"],
          args: "mode=ping ip=10.0.0.3/24 after=2",
        },
        shellConf(),
      ]);
      const { r } = await session(config, async (p) => {
        await p.waitFor(/\[x\] exit: answering pings$/m, 15_000);
        await p.write("ping 10.0.0.3 5\n");
        await p.waitFor(/^--- 10\.0\.0\.3 ping statistics ---$/m, 20_000);
        await p.write("ping 10.0.0.1 2\necho ok\npoweroff\n");
      }, "exit ping");
      const why = describe(r);
      assert.equal(r.code, 0, why);
      assert.equal(
        reason(r.stderr, "x"),
        "lguest: x: CRASH: exit: mid-ping after 2 echo replies",
        why,
      );
      assert.deepEqual(pingSummaries(r.stdout, "10.0.0.3"), [[5, 2]], why);
      assert.deepEqual(pingSummaries(r.stdout, "10.0.0.1"), [[2, 2]], why);
      assertHostEmpty(r.stderr);
    }, "lguest-hostile-"),
});

// ---- 6. Interrupts nested without end ------------------------------------------------

exitSteps.push({
  name: "nest — takes interrupts inside interrupts through the raw event protocol, never " +
    "finishing one: killed at 256 levels, the host's state for it bounded",
  fn: () =>
    inTempDir(async (dir) => {
      const config = await writeConfig(dir, [
        { name: "x", image: "test-hostile-nest", memory: "8M", args: "secs=30" },
        { name: "b", image: "shell", console: "stdio" },
      ]);
      const { r } = await session(config, async (p) => {
        await p.waitFor(/^lguest: x: gone;/m, 20_000, "stderr");
        await p.write("echo ok\npoweroff\n");
      }, "nest");
      const why = describe(r);
      assert.equal(r.code, 0, why);
      assert.equal(reason(r.stderr, "x"), "lguest: x: interrupts nested deeper than 256 levels");
      assert.ok(!r.stdout.includes("still alive"), why);
      assert.ok(lines(r.stdout).includes("ok"), why);
      assertHostEmpty(r.stderr);
    }, "lguest-hostile-"),
});

// ---- The tests ------------------------------------------------------------------------

/** Run the steps, at most `n` at a time (the machine may have 2 CPUs). */
async function pool(t: Deno.TestContext, list: Step[], n: number): Promise<void> {
  const queue = [...list];
  await Promise.all(
    Array.from({ length: n }, async () => {
      for (let st = queue.shift(); st; st = queue.shift()) {
        await t.step({ ...st, ...SANITIZERS_OFF });
      }
    }),
  );
}

Deno.test({
  name:
    "hostile guests: scribbling, rebinding, flooding — the neighbours and the launcher unaffected",
  ...SANITIZERS_OFF,
  fn: (t) => pool(t, steps, 3),
});

Deno.test({
  name: "hostile guests: malformed block requests and guests dying mid-request",
  ...SANITIZERS_OFF,
  fn: (t) => pool(t, exitSteps, 4),
});
