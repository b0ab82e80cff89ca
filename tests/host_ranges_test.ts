import assert from "node:assert/strict";
// Test-only dependency, named here and not in deno.json (see host_dma_property_test.ts).
// deno-lint-ignore no-import-prefix
import fc from "npm:fast-check@^3.23.2";
import { DMA_ADDR, DMA_LEN, DMA_SIZE } from "../abi/structs.ts";
import { DmaRanges, GuestMemory } from "../host/memory.ts";

/** A 64 KiB guest with an lguest_dma at 0x1000 describing `secs`. */
function guest(secs: [number, number][]): { mem: GuestMemory; dma: number } {
  const mem = new GuestMemory(new Uint8Array(1 << 16), 16);
  const dma = 0x1000;
  secs.forEach(([addr, len], i) => {
    mem.setU32(dma + DMA_ADDR + 4 * i, addr);
    mem.setU16(dma + DMA_LEN + 2 * i, len);
  });
  return { mem, dma };
}

Deno.test("ranges: the same checked sections as sections(), as (address, length) pairs", () => {
  const { mem, dma } = guest([[0x2000, 100], [0x3000, 4096], [0x5000, 1]]);
  const r = new DmaRanges();
  assert.equal(mem.ranges(dma, r), null);
  assert.equal(r.count, 3);
  assert.equal(r.total, 4197);
  const views = mem.sections(dma) as Uint8Array[];
  for (let i = 0; i < r.count; i++) {
    assert.equal(r.addr[i], views[i].byteOffset);
    assert.equal(r.len[i], views[i].length);
  }
});

Deno.test("ranges: a section past the top, or a descriptor off the end, is refused with no section left", () => {
  const r = new DmaRanges();
  const { mem, dma } = guest([[0x2000, 100], [0xfff0, 0x20]]);
  assert.match(mem.ranges(dma, r)!, /bad DMA section 32@0xfff0/);
  assert.equal(r.count, 0);
  assert.equal(r.total, 0);
  assert.match(mem.ranges(0x10000 - DMA_SIZE + 4, r)!, /bad lguest_dma address/);
  assert.equal(r.count, 0);
  // A wrapping address: 0xffffffff + 2 must not pass as small.
  const w = guest([[0xffffffff, 2]]);
  assert.match(w.mem.ranges(w.dma, r)!, /bad DMA section/);
});

Deno.test("ranges: merge joins only sections that follow each other", () => {
  const { mem, dma } = guest([[0x2000, 0x1000], [0x3000, 0x1000], [0x5000, 8], [0x5008, 8]]);
  const r = new DmaRanges();
  assert.equal(mem.ranges(dma, r), null);
  r.merge();
  assert.equal(r.count, 2);
  assert.deepEqual([r.addr[0], r.len[0], r.addr[1], r.len[1]], [0x2000, 0x2000, 0x5000, 16]);
  assert.equal(r.total, 0x2010);
});

Deno.test("ranges: view(i) is exactly section i, kept while the section names the same range", () => {
  const { mem, dma } = guest([[0x2000, 100], [0x3000, 4096]]);
  const r = new DmaRanges();
  assert.equal(mem.ranges(dma, r), null);
  const v0 = r.view(0), v1 = r.view(1);
  assert.equal(v0.buffer, mem.bytes.buffer);
  assert.deepEqual([v0.byteOffset, v0.length, v1.byteOffset, v1.length], [
    0x2000,
    100,
    0x3000,
    4096,
  ]);
  // The same descriptor again: the same views, no new ones.
  assert.equal(mem.ranges(dma, r), null);
  assert.equal(r.view(0), v0);
  assert.equal(r.view(1), v1);
  // The guest moves section 0 and shortens section 1: new views of the new ranges.
  mem.setU32(dma + DMA_ADDR, 0x4000);
  mem.setU16(dma + DMA_LEN + 2, 8);
  assert.equal(mem.ranges(dma, r), null);
  assert.notEqual(r.view(0), v0);
  assert.deepEqual([r.view(0).byteOffset, r.view(0).length], [0x4000, 100]);
  assert.deepEqual([r.view(1).byteOffset, r.view(1).length], [0x3000, 8]);
  // Views of another guest's memory are never handed out for this one.
  const other = guest([[0x4000, 100]]);
  assert.equal(other.mem.ranges(other.dma, r), null);
  assert.equal(r.view(0).buffer, other.mem.bytes.buffer);
  // Only sections the last check passed: none past count, none after a refusal.
  assert.throws(() => r.view(1), RangeError);
  const bad = guest([[0xfff0, 0x20]]);
  assert.notEqual(bad.mem.ranges(bad.dma, r), null);
  assert.throws(() => r.view(0), RangeError);
});

Deno.test("ranges: mergedViews is the same bytes in the same order, adjacent sections as one view", () => {
  const { mem, dma } = guest([[0x2000, 0x1000], [0x3000, 0x1000], [0x5000, 8], [0x4ff8, 8]]);
  for (let a = 0x2000; a < 0x6000; a++) mem.setU8(a, a & 0xff);
  const r = new DmaRanges();
  assert.equal(mem.ranges(dma, r), null);
  const flat = (vs: Uint8Array[]) => vs.flatMap((v) => [...v]);
  const want = flat(mem.sections(dma) as Uint8Array[]);
  const vs = r.mergedViews();
  assert.deepEqual(vs.map((v) => [v.byteOffset, v.length]), [[0x2000, 0x2000], [0x5000, 8], [
    0x4ff8,
    8,
  ]]);
  assert.deepEqual(flat(vs), want);
  assert.equal(mem.ranges(dma, r), null);
  assert.equal(r.mergedViews()[0], vs[0]); // kept: no new view for the same buffer
});

Deno.test("ranges: kept views are always exactly what sections() gives for the descriptor now (property)", () => {
  // One guest of 16 pages whose descriptor at 0x1000 the "guest" rewrites between sends: sections
  // anywhere (some past the top, some wrapping), repeated ranges, adjacent ones. After every send,
  // each view (and each merged view) is the checked range of this send, or the send was refused.
  const mem = new GuestMemory(new Uint8Array(1 << 16), 16);
  for (let a = 0; a < 1 << 16; a++) mem.setU8(a, (a * 7) & 0xff);
  const r = new DmaRanges();
  const sec = fc.oneof(
    fc.tuple(fc.integer({ min: 0x200, max: 0x203 }).map((p) => p * 16), fc.constant(16)),
    fc.tuple(fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 1, max: 0xffff })),
    fc.tuple(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 1, max: 0xffff })),
  );
  fc.assert(
    fc.property(
      fc.array(fc.array(sec, { maxLength: 16 }), { minLength: 1, maxLength: 8 }),
      (sends) => {
        for (const secs of sends) {
          for (let i = 0; i < 16; i++) {
            mem.setU32(0x1000 + DMA_ADDR + 4 * i, secs[i]?.[0] ?? 0);
            mem.setU16(0x1000 + DMA_LEN + 2 * i, secs[i]?.[1] ?? 0);
          }
          const want = mem.sections(0x1000);
          const bad = mem.ranges(0x1000, r);
          if (typeof want === "string") {
            assert.equal(bad, want);
            assert.equal(r.count, 0);
            continue;
          }
          assert.equal(bad, null);
          assert.equal(r.count, want.length);
          for (let i = 0; i < r.count; i++) {
            const v = r.view(i);
            assert.equal(v.buffer, mem.bytes.buffer);
            assert.deepEqual([v.byteOffset, v.length], [want[i].byteOffset, want[i].length]);
            assert.ok(v.byteOffset + v.length <= mem.top);
          }
          const merged = r.mergedViews();
          assert.deepEqual(merged.flatMap((v) => [...v]), want.flatMap((v) => [...v]));
          for (const v of merged) assert.ok(v.byteOffset + v.length <= mem.top);
        }
      },
    ),
    { numRuns: 300 },
  );
});
