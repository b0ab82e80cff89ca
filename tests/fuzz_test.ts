/**
 * The hypercall fuzzer (issue 7, docs/security.md "Hypercall fuzzer").
 *
 * - CI-sized runs: two fixed seeds of 1 000 000 host calls each, no
 *   invariant violations.
 * - The fuzzer can fail: hosts with a fault injected (a write past top, an
 *   address check that lets ranges end past top, bindings not released on
 *   close, a kill without a reason) are caught and shrunk to a few actions
 *   that replay the violation.
 * - The host bugs the fuzzer found, pinned as plain host tests and as the
 *   fuzzer's own reproducers.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  LHCALL_BIND_DMA,
  LHCALL_FLUSH_ASYNC,
  LHCALL_LGUEST_INIT,
  LHCALL_SEND_DMA,
  PAGE_SIZE,
} from "../abi/constants.ts";
import { canonicalKey, DmaEngine } from "../host/dma.ts";
import { Guest } from "../host/guest.ts";
import { Host } from "../host/host.ts";
import { GuestMemory } from "../host/memory.ts";
import type { Action } from "../fuzz/actions.ts";
import { fuzz, type FuzzReport, replay } from "../fuzz/fuzzer.ts";
import { ARR, BUF, LD, makeHost, openGuest, sharedKey, testGuest } from "./helpers/guests.ts";
import { putRing, writeLguestData } from "./helpers/script_cpu.ts";

const CI_CALLS = 1_000_000;

function summary(r: FuzzReport): string {
  return `fuzz: ${r.calls} calls, ${r.kills} guests killed, ${r.violations} invariant violations, ` +
    `seed ${r.seed} (${(r.elapsedMs / 1000).toFixed(1)} s)` +
    (r.violation ? `\n${r.violation.kind}: ${r.violation.message}` : "");
}

for (const seed of [0x1ce5eed, 20071009]) {
  Deno.test(`fuzz: ${CI_CALLS} host calls, seed ${seed}: no invariant violation`, async () => {
    const r = await fuzz({ calls: CI_CALLS, seed, shrinkMs: 20_000 });
    console.log(summary(r));
    assert.equal(r.violations, 0, summary(r));
    assert.ok(r.calls >= CI_CALLS);
    assert.ok(r.kills > 1000, "the fuzzed guests do get killed");
    // The deep paths ran: transfers between guests, Launcher DMAs, IRQs, the ring.
    for (const k of ["inter-guest transfers", "DMAs to the Launcher", "interrupts delivered"]) {
      assert.ok((r.stats.get(k) ?? 0) > 1000, `${k}: ${r.stats.get(k)}`);
    }
    assert.ok((r.stats.get("async hypercalls") ?? 0) > 10000);
  });
}

Deno.test("fuzz: the same seed replays the same run", async () => {
  const a = await fuzz({ calls: 60_000, seed: 7 });
  const b = await fuzz({ calls: 60_000, seed: 7 });
  assert.equal(a.calls, b.calls);
  assert.equal(a.kills, b.kills);
  assert.deepEqual([...a.stats].sort(), [...b.stats].sort());
});

/**
 * Run with a fault injected (restored afterwards): the violation must be
 * one of `kinds`, shrunk to at most `max` actions, and the shrunk list must
 * replay it (still with the fault).
 */
async function caughtAndShrunk(
  inject: () => () => void,
  kinds: string[],
  max: number,
): Promise<FuzzReport> {
  const restore = inject();
  try {
    const r = await fuzz({ calls: 400_000, seed: 5, shrinkMs: 30_000 });
    assert.equal(r.violations, 1, "the fault is detected");
    const v = r.violation!;
    assert.ok(kinds.includes(v.kind), `${v.kind}: ${v.message}`);
    assert.ok(r.repro !== undefined && r.reproViolation !== undefined, "a reproducer was found");
    assert.ok(r.repro.length <= max, `reproducer of ${r.repro.length} actions`);
    assert.equal(r.reproViolation.kind, v.kind);
    const again = await replay(r.repro, v.yieldOnFull);
    assert.equal(again.violation?.kind, v.kind, "the reproducer replays");
    return r;
  } finally {
    restore();
  }
}

Deno.test("fuzz: a host that writes past top is caught and shrunk", async () => {
  // Fault: every kill also flips one byte just past the victim's top.
  const r = await caughtAndShrunk(
    () => {
      const kill = Guest.prototype.kill;
      Guest.prototype.kill = function (this: Guest, reason: string) {
        this.mem.bytes[this.mem.top] ^= 1;
        kill.call(this, reason);
      };
      return () => Guest.prototype.kill = kill;
    },
    ["guard"],
    3,
  );
  assert.match(r.violation!.message, /memory outside the guest touched/);
});

Deno.test("fuzz: an address check that lets a range end past top is caught", async () => {
  await caughtAndShrunk(
    () => {
      const ok = GuestMemory.prototype.ok;
      GuestMemory.prototype.ok = function (this: GuestMemory, addr: number, len: number) {
        return (addr >>> 0) + (len >>> 0) <= this.top + 64;
      };
      return () => GuestMemory.prototype.ok = ok;
    },
    ["guard", "bounds"],
    4,
  );
});

Deno.test("fuzz: bindings left behind by close() are caught", async () => {
  await caughtAndShrunk(
    () => {
      const releaseAll = DmaEngine.prototype.releaseAll;
      DmaEngine.prototype.releaseAll = function () {};
      return () => DmaEngine.prototype.releaseAll = releaseAll;
    },
    ["leak", "chain"],
    4,
  );
});

Deno.test("fuzz: a kill without a reason is caught", async () => {
  await caughtAndShrunk(
    () => {
      const kill = Guest.prototype.kill;
      Guest.prototype.kill = function (this: Guest, reason: string) {
        kill.call(this, reason.startsWith("LOAD_GDT") ? "" : reason);
      };
      return () => Guest.prototype.kill = kill;
    },
    ["reason"],
    2,
  );
});

// --- host bugs the fuzzer found (fixed in host/host.ts) ---

/**
 * Found by the fuzzer (seed 2, shrunk to 3 actions): with an inline output
 * handler, a synchronous hypercall deferred behind a Launcher-bound DMA in
 * the async ring runs inside the handler's service, but hypercall()
 * returned the EAX it had captured before, so BIND_DMA returned 12 instead
 * of its result.
 */
Deno.test("fuzzer finding: a deferred BIND_DMA served inline returns its own result", () => {
  const { host, guests: [g] } = makeHost(1, { sharedObject: 3 });
  g.file.setOutputHandler(() => true);
  putRing(g.mem, LD, 0, [LHCALL_SEND_DMA, 0x2000, ARR + 0x400]); // a private key: the Launcher
  g.dma(ARR + 0x400, [[BUF, 16]]);
  g.dma(ARR, [[BUF + 0x1000, 64]]);
  const r = g.call(LHCALL_BIND_DMA, sharedKey(g), ARR, (1 << 8) | 2);
  assert.equal(g.dead, null);
  assert.equal(r.eax, 1, "BIND_DMA's result, not its call number");
  assert.equal(host.dma.chain(canonicalKey(g.guest, sharedKey(g))).length, 1);
  g.file.close();
});

/**
 * Found by the fuzzer (seed 1, shrunk to 13 actions): with yieldOnFull, a
 * read() that yields before the single retry of a send to a full receiver
 * went on after close(): it retried, then ran the rest of the async ring,
 * whose BIND_DMA put a binding of the closed guest on a chain for good.
 */
Deno.test("fuzzer finding: close() during a read() leaves no binding behind", async () => {
  const host = new Host({ yieldOnFull: true });
  const mk = () => {
    const { file, result } = openGuest(host);
    assert.equal(result, 16);
    const t = testGuest(file);
    file.mapShared({
      start: t.mem.top - PAGE_SIZE,
      length: PAGE_SIZE,
      objectId: 1,
      objectOffset: 0,
    });
    writeLguestData(t.cpu.view, LD);
    t.eax(LHCALL_LGUEST_INIT, LD);
    return t;
  };
  const rx = mk(), tx = mk();
  // The receiver's only buffer is full.
  rx.dma(ARR, [[BUF, 64]], 64);
  assert.equal(rx.bind(sharedKey(rx), ARR, 1, 1), 1);
  // The sender's ring: a send to the full receiver, then a bind; then it traps in.
  tx.dma(ARR + 0x400, [[BUF, 16]]);
  putRing(tx.mem, LD, 0, [LHCALL_SEND_DMA, sharedKey(tx), ARR + 0x400]);
  putRing(tx.mem, LD, 1, [LHCALL_BIND_DMA, sharedKey(tx, 12), ARR, (1 << 8) | 1]);
  const c = tx.call(LHCALL_FLUSH_ASYNC);
  assert.ok(c.waited, "the sender waits for its retry");
  const bound = canonicalKey(tx.guest, sharedKey(tx, 12));
  const p = tx.file.read();
  tx.file.close();
  await p;
  assert.deepEqual(host.dma.chain(bound), [], "no binding of the closed guest");
  assert.ok(tx.guest.bindings.every((b) => b === null));
  rx.file.close();
});

/** The fuzzer's own reproducers of the two findings replay cleanly now. */
Deno.test("fuzzer finding: the shrunk reproducers replay without violation", async () => {
  const r1: Action[] = JSON.parse(
    '[{"k":"w","g":3,"at":4180,"v":[13,8192,12392,0]},{"k":"b","g":3,"at":4116,"v":0},' +
      '{"k":"hc","g":3,"c":[12,126988,8292,1538],"nest":[[7,105,3221229568,2,13,126980,12792,0,' +
      "9,1000000,0,0],[],[]]}]",
  );
  assert.equal((await replay(r1, true)).violation, null);
  const r2: Action[] = JSON.parse(
    '[{"k":"dma","g":3,"at":12592,"used":0,"s":[89183,626]},{"k":"hc","g":3,"c":[13,126976,' +
      '12592,0]},{"k":"dma","g":3,"at":12992,"used":0,"s":[36864,1867]},{"k":"hc","g":3,"c":[13,' +
      '126976,12992,0]},{"k":"dma","g":0,"at":12692,"used":0,"s":[54997,1273,53248,2495,53248,' +
      '3499,105036,551]},{"k":"hc","g":0,"c":[13,126976,12692,0],"nest":[[12,32768,8792,1282],' +
      "[12,126980,8592,257,7,105,3221229568,0],[12,126988,8892,257,9,1000000,0,0,13,126976," +
      '12492,0]]},{"k":"hc","g":3,"c":[13,126976,12592,0]},{"k":"w","g":3,"at":4180,"v":[13,' +
      '126976,12692,0]},{"k":"b","g":3,"at":4116,"v":0},{"k":"w","g":3,"at":4196,"v":[12,' +
      '126988,8492,1027]},{"k":"b","g":3,"at":4117,"v":0},{"k":"hc","g":3,"c":[0,0,0,0]},' +
      '{"k":"closeread","g":3}]',
  );
  assert.equal((await replay(r2, true)).violation, null);
});
