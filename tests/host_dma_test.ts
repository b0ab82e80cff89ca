/**
 * The keyed DMA engine (protocol §5) at the hypercall port: BIND_DMA,
 * SEND_DMA between guests and to the Launcher, the transfer rules, the
 * section checks and GETDMA, with our deliberate deviations of §14.
 *
 * @module
 */

import assert from "node:assert/strict";
import { ENOENT, LGUEST_MAX_DMA, LHREQ_GETDMA, PAGE_SIZE } from "../abi/constants.ts";
import { DMA_SIZE, DMA_USED_LEN } from "../abi/structs.ts";
import { canonicalKey, isShared } from "../host/dma.ts";
import {
  ARR,
  BUF,
  closeAll,
  makeHost,
  pattern,
  sharedKey,
  type TestGuest,
} from "./helpers/guests.ts";
import { ScriptCpu } from "./helpers/script_cpu.ts";
import { Host } from "../host/host.ts";
import { LHREQ_INITIALIZE } from "../abi/constants.ts";

const SHARED = 7;

/** Two guests on one shared page: `a` sends, `b` receives. */
function pair(n = 2) {
  const { host, guests } = makeHost(n, { sharedObject: SHARED });
  return { host, a: guests[0], b: guests[1], guests };
}

/** Bind `n` one-section receive buffers of `size` bytes on `t`'s shared key. */
function bindRx(t: TestGuest, n: number, irq: number, size = 64, at = ARR, key = sharedKey(t)) {
  for (let i = 0; i < n; i++) t.dma(at + i * DMA_SIZE, [[BUF + i * PAGE_SIZE, size]]);
  assert.equal(t.bind(key, at, n, irq), 1);
}

/** Put `data` at BUF of `t` and describe it at ARR + 0x800. */
function tx(t: TestGuest, data: Uint8Array, at = ARR + 0x800): number {
  t.mem.bytes.set(data, BUF + 0x10000);
  t.dma(at, [[BUF + 0x10000, data.length]]);
  return at;
}

// --- §5.1 keys ------------------------------------------------------------

Deno.test("§5.1 a key that is not a multiple of 4 kills on BIND_DMA", () => {
  const { guests: [a, b] } = makeHost(2);
  assert.equal(a.bind(0x3002, ARR, 1, 3), -1);
  assert.match(a.dead!, /BIND_DMA.*bad dma key 0x3002/);
  assert.equal(b.dead, null);
  closeAll([a, b]);
});

Deno.test("§5.1 a key at or above top kills (our added bound)", () => {
  const { guests: [a, b] } = makeHost(2);
  const top = a.mem.top;
  assert.equal(b.bind(top - 4, ARR, 1, 3), 1);
  assert.equal(b.dead, null);
  a.bind(top, ARR, 1, 3);
  assert.match(a.dead!, new RegExp(`BIND_DMA.*0x${top.toString(16)}`));
  closeAll([a, b]);
});

Deno.test("§5.1 shared keys canonicalise to the object, equal across guests at other addresses", () => {
  const { host, guests: [a, b, c] } = makeHost(3);
  a.file.mapShared({ start: 0x30000, length: 2 * PAGE_SIZE, objectId: 3, objectOffset: 0x5000 });
  b.file.mapShared({ start: 0x20000, length: PAGE_SIZE, objectId: 3, objectOffset: 0x6000 });
  const ka = canonicalKey(a.guest, 0x31010);
  const kb = canonicalKey(b.guest, 0x20010);
  assert.ok(isShared(ka));
  assert.equal(ka, kb);
  // Private memory of different guests never matches, even at equal addresses.
  const pa = canonicalKey(a.guest, 0x4000), pc = canonicalKey(c.guest, 0x4000);
  assert.ok(!isShared(pa) && !isShared(pc));
  assert.notEqual(pa, pc);
  // Same offset in another object differs.
  c.file.mapShared({ start: 0x20000, length: PAGE_SIZE, objectId: 4, objectOffset: 0x6000 });
  assert.notEqual(canonicalKey(c.guest, 0x20010), kb);
  assert.equal(host.count, 3);
  closeAll([a, b, c]);
});

Deno.test("§5.1 a private key bound by another guest is not a route between guests", () => {
  const { guests: [a, b] } = makeHost(2);
  bindRx(b, 1, 3, 64, ARR, 0x3000);
  const d = tx(a, pattern(16));
  const r = a.send(0x3000, d);
  assert.ok(r.waited, "a private-key send waits for the Launcher");
  assert.deepEqual(a.guest.pendingDma, { dma: d, key: 0x3000 });
  assert.equal(b.used(ARR), 0);
  assert.equal(b.guest.pending, 0);
  closeAll([a, b]);
});

// --- §5.2 binding table -----------------------------------------------------

Deno.test("§5.2 the chain lists the most recent binding first", () => {
  const { host, a, b, guests } = pair(3);
  const c = guests[2];
  bindRx(a, 1, 3);
  bindRx(b, 1, 4);
  bindRx(c, 1, 5);
  const chain = host.dma.chain(canonicalKey(a.guest, sharedKey(a)));
  assert.deepEqual(chain.map((x) => x.owner.id), [c.guest.id, b.guest.id, a.guest.id]);
  closeAll(guests);
});

Deno.test("§5.2 close releases every binding of the guest", () => {
  const { host, a, b } = pair();
  bindRx(b, 1, 3);
  bindRx(b, 1, 4, 64, ARR + 0x400, sharedKey(b, 8));
  b.file.close();
  assert.deepEqual(host.dma.chain(canonicalKey(a.guest, sharedKey(a))), []);
  a.send(sharedKey(a), tx(a, pattern(8)));
  assert.equal(a.guest.counters.dmaNoReceiver, 1);
  assert.equal(a.used(ARR + 0x800), 0);
  closeAll([a]);
});

// --- §5.3 BIND_DMA ----------------------------------------------------------

Deno.test("§5.3 bind returns 1 and fills the first free slot with next_dma 0", () => {
  const { a, b } = pair();
  assert.equal(a.bind(sharedKey(a), ARR, 4, 9), 1);
  const slot = a.guest.bindings[0]!;
  assert.equal(slot.dmas, ARR);
  assert.equal(slot.numDmas, 4);
  assert.equal(slot.nextDma, 0);
  assert.equal(slot.interrupt, 9);
  assert.equal(slot.owner, a.guest);
  closeAll([a, b]);
});

Deno.test("§5.3 bind: irq >= 32 returns 0 without killing", () => {
  const { a, b } = pair();
  for (const irq of [32, 33, 0xff]) {
    assert.equal(a.bind(sharedKey(a), ARR, 1, irq), 0);
    assert.equal(a.dead, null);
  }
  // The irq check comes before the key check: even a bad key does not kill.
  assert.equal(a.bind(0x3003, ARR, 1, 40), 0);
  assert.equal(a.dead, null);
  assert.ok(a.guest.bindings.every((x) => x === null));
  closeAll([a, b]);
});

Deno.test("§5.3 (num<<8)|irq packing: num is 16 bits, bits 24..31 are lost", () => {
  const { a, b } = pair();
  assert.equal(a.eax(12, sharedKey(a), ARR, 0xff000105), 1);
  assert.equal(a.guest.bindings[0]!.numDmas, 1);
  assert.equal(a.guest.bindings[0]!.interrupt, 5);
  assert.equal(a.eax(12, sharedKey(a), ARR, 0x00ffff07), 1);
  assert.equal(a.guest.bindings[1]!.numDmas, 0xffff);
  assert.equal(a.guest.bindings[1]!.interrupt, 7);
  // num 1 really limits the search: element 1 is never used.
  const { a: s, b: r } = pair();
  r.dma(ARR, [[BUF, 8]], 99);
  r.dma(ARR + DMA_SIZE, [[BUF + 64, 8]]);
  assert.equal(r.eax(12, sharedKey(r), ARR, 0xab000100 | 6), 1);
  s.send(sharedKey(s), tx(s, pattern(8)));
  assert.equal(r.used(ARR + DMA_SIZE), 0);
  assert.equal(r.guest.pending, 1 << 6, "full receiver still interrupted");
  closeAll([a, b, s, r]);
});

Deno.test("§5.3 unbind with irq 0 frees the matching slot, ignores num, else returns 0", () => {
  const { host, a, b } = pair();
  assert.equal(a.bind(sharedKey(a), ARR, 2, 3), 1);
  assert.equal(a.bind(sharedKey(a), ARR + 0x400, 2, 3), 1);
  const ck = canonicalKey(a.guest, sharedKey(a));
  assert.equal(host.dma.chain(ck).length, 2);
  // Wrong array, or wrong key: nothing to unbind.
  assert.equal(a.bind(sharedKey(a), ARR + 0x800, 0, 0), 0);
  assert.equal(a.bind(sharedKey(a, 4), ARR, 0, 0), 0);
  // num is ignored on unbind.
  assert.equal(a.bind(sharedKey(a), ARR, 77, 0), 1);
  assert.equal(a.guest.bindings[0], null);
  assert.notEqual(a.guest.bindings[1], null);
  assert.deepEqual(host.dma.chain(ck).map((x) => x.dmas), [ARR + 0x400]);
  assert.equal(a.dead, null);
  closeAll([a, b]);
});

Deno.test("§14.2 unbind matches only active slots: unbinding twice returns 0", () => {
  const { host, a, b } = pair();
  assert.equal(a.bind(sharedKey(a), ARR, 1, 3), 1);
  assert.equal(a.bind(sharedKey(a), ARR, 0, 0), 1);
  assert.equal(a.bind(sharedKey(a), ARR, 0, 0), 0);
  assert.deepEqual(host.dma.chain(canonicalKey(a.guest, sharedKey(a))), []);
  // The freed slot is reused by the next bind.
  assert.equal(a.bind(sharedKey(a), ARR + 0x400, 1, 4), 1);
  assert.equal(a.guest.bindings[0]!.dmas, ARR + 0x400);
  closeAll([a, b]);
});

Deno.test("§5.3 the 33rd binding fails with 0 and the guest lives", () => {
  const { a, b } = pair();
  for (let i = 0; i < LGUEST_MAX_DMA; i++) assert.equal(a.bind(sharedKey(a, 4 * i), ARR, 1, 3), 1);
  assert.equal(a.bind(sharedKey(a, 200), ARR, 1, 3), 0);
  assert.equal(a.dead, null);
  // Unbinding one makes room again.
  assert.equal(a.bind(sharedKey(a, 8), ARR, 1, 0), 1);
  assert.equal(a.bind(sharedKey(a, 200), ARR, 1, 3), 1);
  assert.equal(a.guest.bindings[2]!.key, canonicalKey(a.guest, sharedKey(a, 200)));
  closeAll([a, b]);
});

Deno.test("§5.3 the same key may be bound several times; nothing is checked at bind time", () => {
  const { host, a, b } = pair();
  assert.equal(a.bind(sharedKey(a), ARR, 1, 3), 1);
  assert.equal(a.bind(sharedKey(a), ARR, 1, 3), 1);
  assert.equal(a.bind(sharedKey(a), 0xfffff000, 0xffff, 4), 1, "array past top accepted");
  assert.equal(host.dma.chain(canonicalKey(a.guest, sharedKey(a))).length, 3);
  assert.equal(a.dead, null);
  closeAll([a, b]);
});

// --- §5.4 SEND_DMA ----------------------------------------------------------

Deno.test("§5.4 send to a private key goes to the Launcher even if the sender bound it", async () => {
  const host = new Host();
  const KEY = 0x3000, RX = 0x2000, TX = 0x2400;
  const cpu = new ScriptCpu(async (g) => {
    await g.init();
    g.mem.bytes.set(pattern(32), BUF);
    putTx(g.mem, TX, BUF, 32);
    putTx(g.mem, RX, BUF + 0x100, 64);
    assert.equal(await g.bind(KEY, RX, 1, 4), 1);
    await g.send(KEY, TX);
    // The Launcher serviced the send before the hypercall "returned".
    return [g.mem.u32(TX), g.mem.u32(RX)];
  });
  const f = host.open(cpu);
  assert.equal(f.write([LHREQ_INITIALIZE, 64, 0, 0, 0xc0000000]), 16);
  const r = await f.read();
  assert.deepEqual(r, { kind: "dma", result: 8, dma: TX, key: KEY });
  assert.equal(cpu.view.u32(RX), 0, "the sender's own binding was not used");
  cpu.view.setU32(TX, 1234); // the Launcher writes the sender's used_len
  const r2 = await f.read();
  assert.equal(r2.kind, "errno");
  assert.equal(f.guest!.dead, "guest returned from start()");
  cpu.check();
  assert.deepEqual(cpu.result, [1234, 0]);
  f.close();
});

function putTx(
  v: { setU32(a: number, x: number): void; setU16(a: number, x: number): void },
  at: number,
  addr: number,
  len: number,
) {
  v.setU32(at, 0);
  for (let i = 0; i < 16; i++) {
    v.setU32(at + 4 + 4 * i, i === 0 ? addr : 0);
    v.setU16(at + 68 + 2 * i, i === 0 ? len : 0);
  }
}

Deno.test("§5.4 a bad sending key kills the sender with the key", () => {
  const { a, b } = pair();
  a.send(0x3001, tx(a, pattern(4)));
  assert.match(a.dead!, /SEND_DMA.*bad sending DMA key 0x3001/);
  assert.equal(b.dead, null);
  closeAll([a, b]);
});

Deno.test("§5.4 shared keys route to the most recent other binder; the sender's own are skipped", () => {
  const { a, b, guests } = pair(3);
  const c = guests[2];
  bindRx(b, 1, 3);
  bindRx(c, 1, 4);
  bindRx(a, 1, 5); // most recent overall, but it is the sender's own
  const data = pattern(40, 9);
  const r = a.send(sharedKey(a), tx(a, data));
  assert.equal(r.eax, 13);
  assert.equal(c.used(ARR), 40);
  assert.deepEqual(c.mem.slice(BUF, 40), data);
  assert.equal(b.used(ARR), 0);
  assert.equal(a.used(ARR), 0);
  assert.equal(c.guest.pending, 1 << 4);
  assert.equal(b.guest.pending, 0);
  assert.equal(a.guest.pending, 0);
  assert.equal(a.used(ARR + 0x800), 40, "sender's used_len is the count");
  closeAll(guests);
});

Deno.test("§5.4 one receiver per send: no multicast, no fall-back to another guest", () => {
  const { a, b, guests } = pair(3);
  const c = guests[2];
  bindRx(b, 1, 3);
  bindRx(c, 1, 4);
  a.send(sharedKey(a), tx(a, pattern(8)));
  assert.equal(c.used(ARR), 8);
  assert.equal(b.used(ARR), 0, "no multicast");
  // c is now full: the next send still targets c only, and is dropped.
  const s = tx(a, pattern(8, 2));
  a.send(sharedKey(a), s);
  assert.equal(b.used(ARR), 0, "no fall-back to b");
  assert.equal(a.used(s), 0);
  assert.equal(a.guest.counters.dmaDroppedFull, 1);
  assert.equal(b.guest.pending, 0);
  closeAll(guests);
});

Deno.test("§5.4 a full receiver is retried exactly once, then the data is dropped", () => {
  const { a, b } = pair();
  b.dma(ARR, [[BUF, 64]], 5); // full
  assert.equal(b.bind(sharedKey(b), ARR, 1, 3), 1);
  let looks = 0;
  const mem = b.guest.mem;
  const u32 = mem.u32.bind(mem);
  mem.u32 = (addr: number) => {
    if (addr === ARR) looks++;
    return u32(addr);
  };
  a.send(sharedKey(a), tx(a, pattern(8)));
  assert.equal(looks, 2, "two attempts looked at the receiver's element");
  assert.equal(a.guest.counters.dmaDroppedFull, 1);
  assert.equal(b.guest.pending, 1 << 3);
  assert.equal(b.used(ARR), 5);
  closeAll([a, b]);
});

Deno.test("§5.4 no other binder: nothing happens, used_len untouched, Launcher not told", () => {
  const { a, b } = pair();
  bindRx(a, 1, 3); // only the sender itself is bound
  const s = tx(a, pattern(8));
  a.mem.setU32(s, 0xdead); // the host leaves it alone (the wrapper pre-zeroes)
  const r = a.call(13, sharedKey(a), s);
  assert.equal(r.eax, 13);
  assert.equal(a.guest.pendingDma, null);
  assert.equal(a.used(s), 0xdead);
  assert.equal(a.guest.counters.dmaNoReceiver, 1);
  assert.equal(a.guest.pending, 0);
  closeAll([a, b]);
});

// --- §5.5 transfer ----------------------------------------------------------

Deno.test("§5.5 data lands in the first free element from next_dma; used_len on both sides", () => {
  const { a, b } = pair();
  b.dma(ARR, [[BUF, 64]], 64); // full
  b.dma(ARR + DMA_SIZE, [[BUF + 0x1000, 64]]);
  b.dma(ARR + 2 * DMA_SIZE, [[BUF + 0x2000, 64]]);
  assert.equal(b.bind(sharedKey(b), ARR, 3, 3), 1);
  const data = pattern(50);
  a.send(sharedKey(a), tx(a, data));
  assert.equal(b.used(ARR + DMA_SIZE), 50);
  assert.deepEqual(b.mem.slice(BUF + 0x1000, 50), data);
  assert.equal(b.used(ARR + 2 * DMA_SIZE), 0);
  assert.equal(a.used(ARR + 0x800), 50);
  assert.equal(b.guest.pending, 1 << 3);
  assert.equal(a.guest.counters.dmaToGuest, 1);
  assert.equal(a.guest.counters.dmaBytesToGuest, 50);
  closeAll([a, b]);
});

Deno.test("§5.5 next_dma increments by one (a hint, not found + 1)", () => {
  const { a, b } = pair();
  b.dma(ARR, [[BUF, 64]], 64); // element 0 full
  b.dma(ARR + DMA_SIZE, [[BUF + 0x1000, 64]]);
  b.dma(ARR + 2 * DMA_SIZE, [[BUF + 0x2000, 64]]);
  assert.equal(b.bind(sharedKey(b), ARR, 3, 3), 1);
  const binding = b.guest.bindings[0]!;
  a.send(sharedKey(a), tx(a, pattern(8, 1)));
  assert.equal(b.used(ARR + DMA_SIZE), 8, "found element 1");
  assert.equal(binding.nextDma, 1, "next_dma 0 + 1, not found + 1 = 2");
  b.mem.setU32(ARR + DMA_SIZE, 0); // the guest consumes element 1
  a.send(sharedKey(a), tx(a, pattern(9, 2)));
  assert.equal(b.used(ARR + DMA_SIZE), 9, "search restarted at next_dma = 1");
  assert.equal(b.used(ARR + 2 * DMA_SIZE), 0);
  assert.equal(binding.nextDma, 2);
  closeAll([a, b]);
});

Deno.test("§5.5 the search is circular and next_dma counts modulo the array's length (deviation §14.16: 2.6.23's u16)", () => {
  const { a, b } = pair();
  for (let i = 0; i < 3; i++) b.dma(ARR + i * DMA_SIZE, [[BUF + i * 0x1000, 64]]);
  assert.equal(b.bind(sharedKey(b), ARR, 3, 3), 1);
  const binding = b.guest.bindings[0]!;
  binding.nextDma = 2;
  b.mem.setU32(ARR + 2 * DMA_SIZE, 1); // element 2 full: wrap to 0
  a.send(sharedKey(a), tx(a, pattern(8)));
  assert.equal(b.used(ARR), 8);
  assert.equal(binding.nextDma, 0, "by one from 2, modulo 3 (2.6.23: 3)");
  // Element 0 is full, element 1 free.
  a.send(sharedKey(a), tx(a, pattern(7)));
  assert.equal(b.used(ARR + DMA_SIZE), 7);
  assert.equal(binding.nextDma, 1);
  closeAll([a, b]);
});

Deno.test("§5.5 full receiver still gets its IRQ", () => {
  const { a, b } = pair();
  b.dma(ARR, [[BUF, 64]], 1);
  b.dma(ARR + DMA_SIZE, [[BUF + 0x1000, 64]], 2);
  assert.equal(b.bind(sharedKey(b), ARR, 2, 9), 1);
  const before = b.mem.slice(BUF, 0x2000).slice();
  const s = tx(a, pattern(8));
  a.send(sharedKey(a), s);
  assert.equal(b.guest.pending, 1 << 9);
  assert.deepEqual([b.used(ARR), b.used(ARR + DMA_SIZE)], [1, 2]);
  assert.deepEqual(b.mem.slice(BUF, 0x2000), before);
  assert.equal(a.used(s), 0);
  assert.equal(b.guest.bindings[0]!.nextDma, 0);
  closeAll([a, b]);
});

Deno.test("§5.5 num_dmas 0 counts as full: the IRQ is still raised", () => {
  const { a, b } = pair();
  assert.equal(b.bind(sharedKey(b), ARR, 0, 11), 1);
  a.send(sharedKey(a), tx(a, pattern(8)));
  assert.equal(b.guest.pending, 1 << 11);
  assert.equal(a.guest.counters.dmaDroppedFull, 1);
  closeAll([a, b]);
});

Deno.test("§5.5 abandoned transfer raises no IRQ", async (t) => {
  await t.step("receiver's element past top: receiver killed, no IRQ", () => {
    const { a, b } = pair();
    assert.equal(b.bind(sharedKey(b), b.mem.top - 50, 1, 3), 1);
    a.send(sharedKey(a), tx(a, pattern(8)));
    assert.match(b.dead!, /bad address in registered DMA struct/);
    assert.equal(a.dead, null);
    assert.equal(b.guest.pending, 0);
    closeAll([a, b]);
  });
  await t.step("source section bad: sender killed, receiver untouched, no IRQ", () => {
    const { a, b } = pair();
    bindRx(b, 1, 3);
    const s = ARR + 0x800;
    a.dma(s, [[BUF + 0xffc, 8]]); // crosses a page
    a.send(sharedKey(a), s);
    assert.match(a.dead!, /bad DMA entry.*8@0x8ffc/);
    assert.equal(b.dead, null);
    assert.equal(b.used(ARR), 0);
    assert.equal(b.guest.pending, 0);
    assert.equal(b.guest.bindings[0]!.nextDma, 0);
    closeAll([a, b]);
  });
  await t.step("sender's descriptor unreadable: sender killed, no IRQ (our deviation)", () => {
    const { a, b } = pair();
    bindRx(b, 1, 3);
    a.send(sharedKey(a), a.mem.top - 99);
    assert.match(a.dead!, /SEND_DMA.*bad address in sending DMA/);
    assert.equal(b.guest.pending, 0);
    assert.equal(b.used(ARR), 0);
    assert.equal(b.dead, null);
    closeAll([a, b]);
  });
  await t.step("receiver with no sections: 0 bytes from a non-empty source", () => {
    const { a, b } = pair();
    b.dma(ARR, []);
    assert.equal(b.bind(sharedKey(b), ARR, 1, 3), 1);
    const s = tx(a, pattern(8));
    a.send(sharedKey(a), s);
    assert.equal(a.used(s), 0);
    assert.equal(b.used(ARR), 0);
    assert.equal(b.guest.pending, 0);
    assert.equal(b.guest.bindings[0]!.nextDma, 0);
    assert.equal(a.guest.counters.dmaAbandoned, 1);
    assert.equal(a.dead, null);
    assert.equal(b.dead, null);
    closeAll([a, b]);
  });
});

Deno.test("§5.5 empty source is a doorbell: receiver used_len 0 + IRQ", () => {
  const { a, b } = pair();
  bindRx(b, 2, 6);
  const s = ARR + 0x800;
  a.dma(s, []);
  a.mem.setU32(s, 77);
  a.send(sharedKey(a), s);
  assert.equal(a.used(s), 0);
  assert.equal(b.used(ARR), 0, "element stays free");
  assert.equal(b.guest.pending, 1 << 6);
  assert.equal(b.guest.bindings[0]!.nextDma, 1, "cursor advanced");
  assert.equal(a.dead, null);
  closeAll([a, b]);
});

Deno.test("§5.5 excess source data is silently truncated", () => {
  const { a, b } = pair();
  b.dma(ARR, [[BUF, 10], [BUF + 0x100, 6]]);
  assert.equal(b.bind(sharedKey(b), ARR, 1, 3), 1);
  const data = pattern(100);
  const s = tx(a, data);
  a.send(sharedKey(a), s);
  assert.equal(a.used(s), 16);
  assert.equal(b.used(ARR), 16);
  assert.deepEqual(b.mem.slice(BUF, 10), data.subarray(0, 10));
  assert.deepEqual(b.mem.slice(BUF + 0x100, 6), data.subarray(10, 16));
  assert.equal(b.mem.u8(BUF + 10), 0);
  assert.equal(b.mem.u8(BUF + 0x106), 0);
  closeAll([a, b]);
});

Deno.test("§5.5 a source section spread over several destination sections keeps its offset", () => {
  // The 2.6.23 copy_data() read src->addr[si] without adding srcoff; we copy
  // the source stream in order, as §5.5 describes.
  const { a, b } = pair();
  b.dma(ARR, [[BUF, 3], [BUF + 0x100, 5], [BUF + 0x200, 100]]);
  assert.equal(b.bind(sharedKey(b), ARR, 1, 3), 1);
  const s = ARR + 0x800;
  const d1 = pattern(12, 1), d2 = pattern(4, 2);
  a.mem.bytes.set(d1, BUF + 0x3000);
  a.mem.bytes.set(d2, BUF + 0x5ffc);
  a.dma(s, [[BUF + 0x3000, 12], [BUF + 0x5ffc, 4]]);
  a.send(sharedKey(a), s);
  const stream = new Uint8Array([...d1, ...d2]);
  assert.equal(b.used(ARR), 16);
  assert.deepEqual(b.mem.slice(BUF, 3), stream.subarray(0, 3));
  assert.deepEqual(b.mem.slice(BUF + 0x100, 5), stream.subarray(3, 8));
  assert.deepEqual(b.mem.slice(BUF + 0x200, 8), stream.subarray(8, 16));
  closeAll([a, b]);
});

Deno.test("§5.5 sections stop at the first zero length; 16 non-zero sections need no terminator", () => {
  const { a, b } = pair();
  const secs: [number, number][] = [];
  for (let i = 0; i < 16; i++) secs.push([BUF + i * 0x100, 2]);
  b.dma(ARR, secs);
  assert.equal(b.bind(sharedKey(b), ARR, 1, 3), 1);
  const s = tx(a, pattern(100));
  a.send(sharedKey(a), s);
  assert.equal(a.used(s), 32, "16 sections of 2");
  // A zero length ends the list even if sections follow it.
  b.mem.setU32(ARR, 0);
  b.dma(ARR, [[BUF, 4], [BUF + 0x100, 0], [0xfffff000, 4000]]);
  const s2 = tx(a, pattern(100, 3));
  a.send(sharedKey(a), s2);
  assert.equal(a.used(s2), 4);
  assert.equal(b.dead, null, "sections after the terminator are not checked");
  closeAll([a, b]);
});

// --- §5.6 section checks ------------------------------------------------------

Deno.test("§5.6 section crossing a page kills the owner", async (t) => {
  await t.step("destination", () => {
    const { a, b } = pair();
    b.dma(ARR, [[BUF + 4092, 8]]);
    assert.equal(b.bind(sharedKey(b), ARR, 1, 3), 1);
    const s = tx(a, pattern(8));
    a.send(sharedKey(a), s);
    assert.match(b.dead!, /bad DMA entry.*8@0x8ffc/);
    assert.equal(a.dead, null);
    assert.equal(a.used(s), 0);
    closeAll([a, b]);
  });
  await t.step("source", () => {
    const { a, b } = pair();
    bindRx(b, 1, 3);
    a.dma(ARR + 0x800, [[BUF, 8], [BUF + 0x1ff0, 0x20]]);
    a.send(sharedKey(a), ARR + 0x800);
    assert.match(a.dead!, /bad DMA entry.*32@0x9ff0/);
    assert.equal(b.dead, null);
    closeAll([a, b]);
  });
});

Deno.test("§5.6 a section longer than 4096 kills, even page aligned", () => {
  const { a, b } = pair();
  bindRx(b, 1, 3);
  a.dma(ARR + 0x800, [[BUF, 4097]]);
  a.send(sharedKey(a), ARR + 0x800);
  assert.match(a.dead!, /bad DMA entry.*4097@0x8000/);
  assert.equal(b.dead, null);
  closeAll([a, b]);
});

Deno.test("§5.6 a section past top kills; one ending exactly at top is accepted (§14.3)", () => {
  const { a, b } = pair();
  const top = b.mem.top;
  b.dma(ARR, [[top - 16, 16]]);
  assert.equal(b.bind(sharedKey(b), ARR, 1, 3), 1);
  a.send(sharedKey(a), tx(a, pattern(16)));
  assert.equal(b.used(ARR), 16);
  assert.deepEqual(b.mem.slice(top - 16, 16), pattern(16));
  assert.equal(b.dead, null);
  const { a: s, b: r } = pair();
  r.dma(ARR, [[r.mem.top - 16, 17]]);
  assert.equal(r.bind(sharedKey(r), ARR, 1, 3), 1);
  s.send(sharedKey(s), tx(s, pattern(16)));
  assert.match(r.dead!, /bad DMA entry.*17@0x3fff0/);
  closeAll([a, b, s, r]);
});

Deno.test("§5.6 the destination is checked before the source: only the receiver dies", () => {
  const { a, b } = pair();
  b.dma(ARR, [[BUF + 4095, 2]]);
  assert.equal(b.bind(sharedKey(b), ARR, 1, 3), 1);
  a.dma(ARR + 0x800, [[BUF + 4095, 2]]);
  a.send(sharedKey(a), ARR + 0x800);
  assert.notEqual(b.dead, null);
  assert.equal(a.dead, null);
  closeAll([a, b]);
});

Deno.test("§5.6 the Launcher's path checks bounds only, no page rules", () => {
  const { a } = pair(1);
  a.dma(ARR, [[BUF + 4000, 5000], [BUF + 0x3000, 65535]]);
  const secs = a.mem.sections(ARR);
  assert.ok(Array.isArray(secs));
  assert.deepEqual(secs.map((x) => x.length), [5000, 65535]);
  a.dma(ARR, [[a.mem.top - 10, 11]]);
  assert.match(a.mem.sections(ARR) as string, /bad DMA section 11@0x3fff6/);
  assert.match(a.mem.sections(a.mem.top - 99) as string, /bad lguest_dma address/);
  closeAll([a]);
});

// --- §5.7 GETDMA --------------------------------------------------------------

Deno.test("§5.7 GETDMA scans circularly from next_dma (our deviation), advances it and writes irq into used_len", () => {
  const { host, a } = pair(1);
  const KEY = 0x3000;
  for (let i = 0; i < 3; i++) a.dma(ARR + i * DMA_SIZE, [[BUF + i * 0x100, 64]]);
  assert.equal(a.bind(KEY, ARR, 3, 7), 1);
  const binding = a.guest.bindings[0]!;
  binding.nextDma = 2;
  assert.equal(a.file.write([LHREQ_GETDMA, KEY]), ARR + 2 * DMA_SIZE, "from next_dma, not index 0");
  assert.equal(a.used(ARR + 2 * DMA_SIZE), 7, "irq in used_len until the Launcher fills it");
  assert.equal(binding.nextDma, 0, "by one, modulo the length");
  assert.equal(a.file.write([LHREQ_GETDMA, KEY]), ARR, "wraps to element 0");
  a.mem.setU32(ARR + 2 * DMA_SIZE, 0); // the guest frees element 2 first
  assert.equal(a.file.write([LHREQ_GETDMA, KEY]), ARR + DMA_SIZE, "element 1, not the freed 2");
  assert.equal(a.file.write([LHREQ_GETDMA, KEY]), ARR + 2 * DMA_SIZE);
  assert.equal(binding.nextDma, 0);
  // A full element at next_dma is passed over; the cursor still moves by one.
  a.mem.setU32(ARR, 0);
  a.mem.setU32(ARR + DMA_SIZE, 0);
  binding.nextDma = 2; // element 2 is full, element 0 free
  assert.equal(a.file.write([LHREQ_GETDMA, KEY]), ARR);
  assert.equal(binding.nextDma, 0, "by one from 2, not to the element after the one filled");
  assert.equal(host.dma.bindingCount, 1);
  closeAll([a]);
});

Deno.test("§5.7 input keeps its order for a guest that frees its buffers one at a time (GETDMA fills circularly)", () => {
  // The Launcher delivers numbered inputs (GETDMA, used_len = number + 1);
  // the guest takes them round-robin from the one after the last it took
  // (guests/kit/net.c rx_scan), freeing one at a time, at times of its own.
  // 2.6.23's first-free-from-0 puts a new input into a low element freed
  // while higher ones still hold older inputs: out of order.
  const { a } = pair(1);
  const KEY = 0x3000, N = 8;
  for (let i = 0; i < N; i++) a.dma(ARR + i * DMA_SIZE, [[BUF + i * 0x100, 64]]);
  assert.equal(a.bind(KEY, ARR, N, 7), 1);
  let seed = 12345;
  const rand = () => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 16;
  let sent = 0, next = 0;
  const got: number[] = [];
  for (let step = 0; step < 5000; step++) {
    if (rand() % 2 === 0) {
      const r = a.file.write([LHREQ_GETDMA, KEY]);
      if (r === -ENOENT) continue; // all full: dropped
      a.mem.setU32(r + DMA_USED_LEN, sent++ + 1); // used_len
    } else {
      for (let k = 0; k < N; k++) {
        const i = (next + k) % N;
        const used = a.used(ARR + i * DMA_SIZE);
        if (used === 0) continue;
        got.push(used - 1);
        a.mem.setU32(ARR + i * DMA_SIZE + DMA_USED_LEN, 0);
        next = (i + 1) % N;
        break; // one at a time
      }
    }
  }
  assert.ok(got.length > 1000, `${got.length} taken`);
  const late = got.filter((x, i) => i > 0 && x < got[i - 1]).length;
  assert.equal(late, 0, `${late} of ${got.length} inputs taken after a later one`);
  closeAll([a]);
});

Deno.test("§5.7 input keeps its order past 65 536 deliveries on an array whose length is not a power of two (next_dma modulo the length, not 2.6.23's u16)", () => {
  // Each input is taken (freed) before the next comes: the elements must be
  // filled 0, 1, 2, 0, 1, 2, ... for ever. With a u16 cursor, 65535 % 3 = 0
  // is followed by 0 % 3 = 0: element 0 twice, and a guest reading
  // round-robin takes an older input after a newer one.
  const { a } = pair(1);
  const KEY = 0x3000, N = 3;
  for (let i = 0; i < N; i++) a.dma(ARR + i * DMA_SIZE, [[BUF + i * 0x100, 64]]);
  assert.equal(a.bind(KEY, ARR, N, 7), 1);
  for (let k = 0; k < 70_000; k++) {
    const r = a.file.write([LHREQ_GETDMA, KEY]);
    assert.equal(r, ARR + (k % N) * DMA_SIZE, `delivery ${k}`);
    // GETDMA wrote the IRQ into used_len; the guest takes it (frees it) at once.
    a.mem.setU32(r + DMA_USED_LEN, 0);
  }
  closeAll([a]);
});

Deno.test("§5.7 giveBack: a buffer GETDMA took and left unfilled is free again and next in line", () => {
  const { host, a } = pair(1);
  const KEY = 0x3000;
  for (let i = 0; i < 3; i++) a.dma(ARR + i * DMA_SIZE, [[BUF + i * 0x100, 64]]);
  assert.equal(a.bind(KEY, ARR, 3, 7), 1);
  const binding = a.guest.bindings[0]!;
  assert.equal(a.file.write([LHREQ_GETDMA, KEY]), ARR);
  host.dma.giveBack(a.guest, KEY, ARR);
  assert.equal(a.used(ARR), 0);
  assert.equal(binding.nextDma, 0, "rewound");
  assert.equal(a.file.write([LHREQ_GETDMA, KEY]), ARR, "the next input lands there");
  a.mem.setU32(ARR + DMA_USED_LEN, 5); // filled
  // Taken, then another GETDMA: giving the first back frees it but cannot rewind.
  assert.equal(a.file.write([LHREQ_GETDMA, KEY]), ARR + DMA_SIZE);
  assert.equal(a.file.write([LHREQ_GETDMA, KEY]), ARR + 2 * DMA_SIZE);
  host.dma.giveBack(a.guest, KEY, ARR + DMA_SIZE);
  assert.equal(a.used(ARR + DMA_SIZE), 0);
  assert.equal(binding.nextDma, 0, "3 GETDMAs on 3 elements: round to 0");
  host.dma.giveBack(a.guest, KEY, ARR + 2 * DMA_SIZE);
  assert.equal(binding.nextDma, 2, "the last one taken rewinds");
  host.dma.giveBack(a.guest, KEY, ARR + 2 * DMA_SIZE);
  assert.equal(binding.nextDma, 2, "once");
  assert.equal(a.used(ARR), 5, "a filled buffer is not touched");
  assert.equal(a.dead, null);
  closeAll([a]);
});

Deno.test("§14.1 GETDMA on a full array returns ENOENT", () => {
  const { a } = pair(1);
  const KEY = 0x3000;
  a.dma(ARR, [[BUF, 64]], 10);
  a.dma(ARR + DMA_SIZE, [[BUF + 0x100, 64]], 20);
  assert.equal(a.bind(KEY, ARR, 2, 7), 1);
  assert.equal(a.file.write([LHREQ_GETDMA, KEY]), -ENOENT);
  assert.deepEqual([a.used(ARR), a.used(ARR + DMA_SIZE)], [10, 20], "nothing overwritten");
  assert.equal(a.guest.counters.getDmaNone, 1);
  assert.equal(a.dead, null);
  closeAll([a]);
});

Deno.test("§5.7 GETDMA: no binding or num_dmas 0 is ENOENT; only the guest's own bindings", () => {
  const { a, b } = pair();
  assert.equal(a.file.write([LHREQ_GETDMA, 0x3000]), -ENOENT);
  assert.equal(a.bind(0x3000, ARR, 0, 7), 1);
  assert.equal(a.file.write([LHREQ_GETDMA, 0x3000]), -ENOENT);
  // b's binding on the shared key is not a's.
  bindRx(b, 1, 3);
  assert.equal(a.file.write([LHREQ_GETDMA, sharedKey(a)]), -ENOENT);
  assert.equal(b.file.write([LHREQ_GETDMA, sharedKey(b)]), ARR);
  assert.equal(a.dead, null);
  closeAll([a, b]);
});

Deno.test("§5.7 GETDMA takes the guest's most recent binding on the key", () => {
  const { a } = pair(1);
  a.dma(ARR, [[BUF, 64]]);
  a.dma(ARR + 0x400, [[BUF + 0x100, 64]]);
  assert.equal(a.bind(0x3000, ARR, 1, 3), 1);
  assert.equal(a.bind(0x3000, ARR + 0x400, 1, 4), 1);
  assert.equal(a.file.write([LHREQ_GETDMA, 0x3000]), ARR + 0x400);
  assert.equal(a.used(ARR + 0x400), 4);
  closeAll([a]);
});

Deno.test("§5.7 GETDMA with a bad key kills the guest, though the Launcher supplied it", () => {
  const { a, b } = pair();
  assert.equal(a.file.write([LHREQ_GETDMA, 0x3002]), -ENOENT);
  assert.match(a.dead!, /GETDMA.*0x3002/);
  assert.equal(b.file.write([LHREQ_GETDMA, b.mem.top]), -ENOENT);
  assert.match(b.dead!, /GETDMA/);
  closeAll([a, b]);
});

Deno.test("§5.7 GETDMA on an array past top kills the guest", () => {
  const { a } = pair(1);
  assert.equal(a.bind(0x3000, a.mem.top - 40, 2, 3), 1);
  assert.equal(a.file.write([LHREQ_GETDMA, 0x3000]), -ENOENT);
  assert.match(a.dead!, /GETDMA.*bad address in registered DMA struct/);
  closeAll([a]);
});
