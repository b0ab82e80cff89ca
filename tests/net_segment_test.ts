/**
 * Inter-guest segments at the host level (protocol §10.4b, §5.4–5.5): the
 * coherent MAC page, peer keys routed by the Futex Trick, leaving, and
 * packet capture. Guests are scripted (tests/helpers), not wasm.
 */

import assert from "node:assert/strict";
import { LHCALL_BIND_DMA, LHCALL_HALT, PAGE_SIZE } from "../abi/constants.ts";
import { PcapWriter, readPcap } from "../devices/net/pcap.ts";
import { Segment } from "../devices/net/segment.ts";
import { parseNetSpec } from "../devices/net/spec.ts";
import { UsageError } from "../devices/registry.ts";
import { closeAll, makeHost, pattern, type TestGuest } from "./helpers/guests.ts";

const ARR = 0x2000; // receive array
const BUF = 0x8000; // receive buffer
const TX = 0x3000; // transmit descriptor
const FRAME = 0x9000; // transmit data

/** Join every guest to segment "lan"; the page is the guest's last page. */
function segment(n: number) {
  const { host, guests } = makeHost(n);
  const seg = Segment.get(host, "lan");
  const page = (t: TestGuest) => t.mem.top - PAGE_SIZE;
  const slots = guests.map((t) => {
    const slot = seg.takeSlot();
    t.file.mapShared({
      start: page(t),
      length: PAGE_SIZE,
      objectId: seg.objectId,
      objectOffset: 0,
      sync: (g) => seg.sync(g),
    });
    seg.join(t.guest, slot, page(t));
    return slot;
  });
  return { host, guests, seg, page, slots };
}

function publishMac(t: TestGuest, page: number, slot: number, mac: number[]): void {
  t.mem.bytes.set(mac, page + 6 * slot);
}

Deno.test("§10.4b slots are handed out lowest first, one per member", () => {
  const { guests, slots } = segment(3);
  assert.deepEqual(slots, [0, 1, 2]);
  closeAll(guests);
});

Deno.test("§10.4b a MAC published at BIND_DMA reaches a peer at its next hypercall", () => {
  const { guests: [a, b], page } = segment(2);
  publishMac(a, page(a), 0, [2, 0, 0, 0, 0, 0]);
  assert.equal(b.mem.u8(page(b)), 0, "not yet visible");
  a.bind(page(a), ARR, 0, 0); // any BIND_DMA syncs (an unbind of nothing returns 0)
  b.call(LHCALL_BIND_DMA, page(b), ARR, 0); // B's next sync point
  assert.deepEqual([...b.mem.slice(page(b), 6)], [2, 0, 0, 0, 0, 0]);
  closeAll([a, b]);
});

Deno.test("§10.4b a halted peer's view is refreshed at HALT", () => {
  const { guests: [a, b], page } = segment(2);
  publishMac(b, page(b), 1, [2, 0, 1, 0, 0, 0]);
  b.call(LHCALL_HALT);
  a.call(LHCALL_HALT);
  assert.deepEqual([...a.mem.slice(page(a) + 6, 6)], [2, 0, 1, 0, 0, 0]);
  closeAll([a, b]);
});

Deno.test("§10.4b a guest cannot overwrite a peer's slot", () => {
  const { guests: [a, b], page, seg } = segment(2);
  publishMac(b, page(b), 1, [2, 0, 1, 0, 0, 0]);
  b.call(LHCALL_HALT);
  publishMac(a, page(a), 1, [6, 6, 6, 6, 6, 6]); // scribble over B's slot
  a.call(LHCALL_HALT);
  b.call(LHCALL_HALT);
  assert.deepEqual([...seg.page.subarray(6, 12)], [2, 0, 1, 0, 0, 0], "the canonical table");
  assert.deepEqual([...b.mem.slice(page(b) + 6, 6)], [2, 0, 1, 0, 0, 0], "B's own view");
  closeAll([a, b]);
});

Deno.test("§10.4b send to peer_key(i) lands in the buffers guest i bound there, with its IRQ", () => {
  const { guests: [a, b], page } = segment(2);
  b.gate(1);
  b.dma(ARR, [[BUF, 1514]]);
  assert.equal(b.bind(page(b) + 4 * 1, ARR, 1, 1), 1);
  const frame = pattern(60);
  a.mem.bytes.set(frame, FRAME);
  a.dma(TX, [[FRAME, 60]]);
  a.send(page(a) + 4 * 1, TX);
  assert.equal(a.used(TX), 60);
  assert.equal(b.used(ARR), 60);
  assert.deepEqual(b.mem.slice(BUF, 60), frame);
  assert.equal(b.guest.pending & 2, 2);
  closeAll([a, b]);
});

Deno.test("§10.4b leaving clears the slot so peers stop seeing the MAC", () => {
  const { guests: [a, b], page, seg } = segment(2);
  publishMac(b, page(b), 1, [2, 0, 1, 0, 0, 0]);
  b.call(LHCALL_HALT);
  seg.leave(b.guest, 1);
  a.call(LHCALL_HALT);
  assert.deepEqual([...a.mem.slice(page(a) + 6, 6)], [0, 0, 0, 0, 0, 0]);
  assert.equal(seg.takeSlot(), 1, "the slot is free again");
  closeAll([a, b]);
});

Deno.test("capture: segment frames are recorded once, a broadcast too; pcap reads back", async () => {
  const { guests: [a, b, c], page, seg } = segment(3);
  const path = await Deno.makeTempFile({ suffix: ".pcap" });
  const w = new PcapWriter(path);
  seg.capture(w);
  for (const [t, slot] of [[b, 1], [c, 2]] as const) {
    t.gate(1);
    t.dma(ARR, [[BUF, 1514]]);
    t.bind(page(t) + 4 * slot, ARR, 1, 1);
  }
  const frame = pattern(64, 3);
  frame.fill(0xff, 0, 6); // broadcast destination
  a.mem.bytes.set(frame, FRAME);
  a.dma(TX, [[FRAME, 64]]);
  a.send(page(a) + 4, TX); // to B
  a.send(page(a) + 8, TX); // to C: the same frame, one broadcast
  const second = pattern(64, 4);
  a.mem.bytes.set(second, FRAME);
  b.mem.setU32(ARR, 0); // B hands its buffer back
  a.send(page(a) + 4, TX);
  w.close();
  const { linktype, frames } = readPcap(await Deno.readFile(path));
  assert.equal(linktype, 1);
  assert.equal(frames.length, 2);
  assert.deepEqual(frames[0], frame);
  assert.deepEqual(frames[1], second);
  closeAll([a, b, c]);
});

Deno.test("capture: a file cut short by a kill still reads back up to the last whole record", async () => {
  const path = await Deno.makeTempFile({ suffix: ".pcap" });
  const w = new PcapWriter(path);
  w.frame(pattern(100));
  w.frame(pattern(200));
  w.close();
  const bytes = await Deno.readFile(path);
  const { frames } = readPcap(bytes.subarray(0, bytes.length - 50));
  assert.equal(frames.length, 1);
  assert.deepEqual(frames[0], pattern(100));
});

Deno.test("--net values: good ones parse, bad ones are one UsageError line", () => {
  assert.deepEqual(parseNetSpec("segment:lan"), { kind: "segment", name: "lan", pcap: undefined });
  assert.deepEqual(parseNetSpec("tap:tap0,ip=10.0.0.1/24,pcap=x.pcap"), {
    kind: "tap",
    ifname: "tap0",
    ip: "10.0.0.1/24",
    bridge: undefined,
    pcap: "x.pcap",
  });
  for (
    const bad of [
      "foo",
      "segment:",
      "segment:a b",
      "tap:",
      "tap:abcdefghijklmnop",
      "tap:t0,ip=1.2.3.4",
      "tap:t0,ip=1.2.3.4/24,bridge=br0",
      "tap:t0,mtu=9000",
      "segment:lan,pcap",
    ]
  ) {
    assert.throws(() => parseNetSpec(bad), UsageError, bad);
  }
});
