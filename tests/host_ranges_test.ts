import assert from "node:assert/strict";
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
