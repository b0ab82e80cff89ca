/**
 * Hostile guests. Each case lets one guest (the victim) do something bad:
 * bad or wrapping addresses, odd lengths, misaligned keys or keys past top,
 * binding-table exhaustion, out-of-range num/irq, async ring abuse, DMA
 * arrays past top. Every case checks that
 *
 * - the host never throws;
 * - only the offending guest dies, with a reason naming the hypercall and
 *   the value (or, for a request that is merely refused, nobody dies);
 * - a dead guest's further hypercalls do nothing;
 * - memory past top (RAM the guest has but may not use) is untouched;
 * - two other guests still do a real inter-guest DMA afterwards.
 *
 * The guests have 64 pages of RAM but pfn_limit 60: top = 0x3c000.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  LGUEST_MAX_DMA,
  LHCALL_BIND_DMA,
  LHCALL_CRASH,
  LHCALL_FLUSH_ASYNC,
  LHCALL_LGUEST_INIT,
  LHCALL_LOAD_GDT,
  LHCALL_LOAD_IDT_ENTRY,
  LHCALL_LOAD_TLS,
  LHCALL_SEND_DMA,
  LHCALL_SET_STACK,
  LHCALL_TS,
  LHREQ_GETDMA,
  PAGE_SIZE,
} from "../abi/constants.ts";
import { DMA_SIZE } from "../abi/structs.ts";
import type { Host } from "../host/host.ts";
import { GuestMemory } from "../host/memory.ts";
import {
  addGuest,
  ARR,
  BUF,
  closeAll,
  LD,
  makeHost,
  pattern,
  sharedKey,
  type TestGuest,
} from "./helpers/guests.ts";
import { idtGate, putRing, ringStatus } from "./helpers/script_cpu.ts";

const PAGES = 64;
const PFN_LIMIT = 60;
const TOP = PFN_LIMIT * PAGE_SIZE; // 0x3c000
/** Shared object of victim, a and b: its page is at top - 4096 (0x3b000). */
const NET = 7;
/** Shared object of a and b only, for the health check, at top - 8192. */
const PRIVATE_NET = 99;
/** A's receive array on the victim's net. */
const A_RX = ARR + 0xc00;

interface World {
  host: Host;
  /** The offending guest. */
  v: TestGuest;
  a: TestGuest;
  b: TestGuest;
}

function world(): World {
  const { host, guests: [v, a, b] } = makeHost(3, {
    pages: PAGES,
    pfnLimit: PFN_LIMIT,
    sharedObject: NET,
  });
  for (const t of [a, b]) {
    t.file.mapShared({
      start: TOP - 2 * PAGE_SIZE,
      length: PAGE_SIZE,
      objectId: PRIVATE_NET,
      objectOffset: 0,
    });
  }
  // a listens on the victim's net with one free buffer.
  a.dma(A_RX, [[BUF + 0x20000, 256]]);
  assert.equal(a.bind(sharedKey(a), A_RX, 1, 5), 1);
  return { host, v, a, b };
}

/** a → b over their own net: the data must arrive intact. */
function healthCheck(a: TestGuest, b: TestGuest, round: number): void {
  const key = TOP - 2 * PAGE_SIZE + 4 * round;
  const rx = ARR + 0x400 + 4 * DMA_SIZE * (round % 2);
  const buf = BUF + 0x28000 + 0x100 * round;
  b.dma(rx, [[buf, 100]]);
  assert.equal(b.bind(key, rx, 1, 9), 1, "b binds");
  const data = pattern(100, round + 3);
  a.mem.bytes.set(data, BUF + 0x30000);
  a.dma(ARR + 0x800, [[BUF + 0x30000, 60], [BUF + 0x30000 + 60, 40]]);
  a.send(key, ARR + 0x800);
  assert.equal(a.used(ARR + 0x800), 100, "a's used_len");
  assert.equal(b.used(rx), 100, "b's used_len");
  assert.deepEqual(b.mem.slice(buf, 100), data, "b got a's bytes");
  assert.notEqual(b.guest.pending & (1 << 9), 0, "b's IRQ");
  assert.equal(b.bind(key, rx, 0, 0), 1, "b unbinds");
  assert.equal(a.dead, null);
  assert.equal(b.dead, null);
}

/** A valid descriptor of the victim's, sending 16 bytes. */
function victimTx(v: TestGuest): number {
  v.mem.bytes.set(pattern(16, 42), BUF);
  v.dma(ARR + 0x800, [[BUF, 16]]);
  return ARR + 0x800;
}

/** Memory between top and the end of RAM, which nobody may touch. */
function pastTopIsClean(t: TestGuest): boolean {
  return t.cpu.memory.subarray(TOP).every((x) => x === 0);
}

interface Case {
  name: string;
  /** What the victim (or a, against the victim) does. */
  act(w: World): void;
  /** The victim's kill reason; absent when the victim must survive. */
  reason?: RegExp;
  /** Extra checks after the act. */
  check?(w: World): void;
}

const CASES: Case[] = [
  // --- keys ---
  {
    name: "BIND_DMA with a misaligned key",
    act: ({ v }) => void v.bind(0x3002, ARR, 1, 3),
    reason: /^BIND_DMA: bad dma key 0x3002$/,
  },
  {
    name: "BIND_DMA with a key at top",
    act: ({ v }) => void v.bind(TOP, ARR, 1, 3),
    reason: /^BIND_DMA: bad dma key 0x3c000$/,
  },
  {
    name: "BIND_DMA with key 0xfffffffc",
    act: ({ v }) => void v.bind(0xfffffffc, ARR, 1, 3),
    reason: /^BIND_DMA: bad dma key 0xfffffffc$/,
  },
  {
    name: "SEND_DMA with a misaligned key",
    act: ({ v }) => void v.send(0x3001, victimTx(v)),
    reason: /^SEND_DMA: bad sending DMA key 0x3001$/,
  },
  {
    name: "SEND_DMA with a key past top, inside RAM",
    act: ({ v }) => void v.send(TOP + 0x1000, victimTx(v)),
    reason: /^SEND_DMA: bad sending DMA key 0x3d000$/,
  },
  {
    name: "GETDMA (from the Launcher) with a misaligned key",
    act: ({ v }) => assert.equal(v.file.write([LHREQ_GETDMA, 0x3003]), -2),
    reason: /^GETDMA: .*0x3003$/,
  },
  // --- descriptors and sections ---
  {
    name: "SEND_DMA with the descriptor past top",
    act: ({ v }) => void v.send(sharedKey(v), TOP + 0x100),
    reason: /^SEND_DMA: bad address in sending DMA 0x3c100$/,
  },
  {
    name: "SEND_DMA with a descriptor wrapping past 2^32",
    act: ({ v }) => void v.send(sharedKey(v), 0xffffffc0),
    reason: /^SEND_DMA: bad address in sending DMA 0xffffffc0$/,
  },
  {
    name: "section addr 0xfffff000 len 0x2000 (wraps)",
    act: ({ v }) => {
      v.dma(ARR + 0x800, [[0xfffff000, 0x2000]]);
      v.send(sharedKey(v), ARR + 0x800);
    },
    reason: /^SEND_DMA: bad DMA entry.*: 8192@0xfffff000$/,
  },
  {
    name: "section len 4095 crossing a page",
    act: ({ v }) => {
      v.dma(ARR + 0x800, [[BUF + 2, 4095]]);
      v.send(sharedKey(v), ARR + 0x800);
    },
    reason: /^SEND_DMA: bad DMA entry.*: 4095@0x8002$/,
  },
  {
    name: "section len 4096 not page aligned",
    act: ({ v }) => {
      v.dma(ARR + 0x800, [[BUF, 16], [BUF + 0x1004, 4096]]);
      v.send(sharedKey(v), ARR + 0x800);
    },
    reason: /^SEND_DMA: bad DMA entry.*: 4096@0x9004$/,
  },
  {
    name: "section len 65535",
    act: ({ v }) => {
      v.dma(ARR + 0x800, [[BUF, 65535]]);
      v.send(sharedKey(v), ARR + 0x800);
    },
    reason: /^SEND_DMA: bad DMA entry.*: 65535@0x8000$/,
  },
  {
    name: "section ending one byte past top",
    act: ({ v }) => {
      v.dma(ARR + 0x800, [[TOP - 16, 17]]);
      v.send(sharedKey(v), ARR + 0x800);
    },
    reason: /^SEND_DMA: bad DMA entry.*: 17@0x3bff0$/,
  },
  {
    name: "receive array past top (accepted at bind, fatal at delivery)",
    act: ({ v, a }) => {
      assert.equal(v.bind(sharedKey(v, 8), TOP + 0x200, 4, 3), 1);
      a.send(sharedKey(a, 8), victimTx(a));
    },
    reason: /^SEND_DMA: bad address in registered DMA struct 0x3c200$/,
    check: ({ a }) => assert.equal(a.used(ARR + 0x800), 0),
  },
  {
    name: "receive array at 0xffffff9c (the element wraps past 2^32)",
    act: ({ v, a }) => {
      assert.equal(v.bind(sharedKey(v, 8), 0xffffff9c, 2, 3), 1);
      a.send(sharedKey(a, 8), victimTx(a));
    },
    reason: /^SEND_DMA: bad address in registered DMA struct 0xffffff9c$/,
  },
  {
    name: "receive array straddling top: element 1 is past it",
    act: ({ v, a }) => {
      v.dma(TOP - DMA_SIZE - 4, [[BUF, 64]], 1); // element 0 full
      assert.equal(v.bind(sharedKey(v, 8), TOP - DMA_SIZE - 4, 2, 3), 1);
      a.send(sharedKey(a, 8), victimTx(a));
    },
    reason: /^SEND_DMA: bad address in registered DMA struct 0x3bffc$/,
  },
  {
    name: "receive section crossing a page",
    act: ({ v, a }) => {
      v.dma(ARR, [[BUF + 0xff0, 0x20]]);
      assert.equal(v.bind(sharedKey(v, 8), ARR, 1, 3), 1);
      a.send(sharedKey(a, 8), victimTx(a));
    },
    reason: /^SEND_DMA: bad DMA entry.*: 32@0x8ff0$/,
  },
  {
    name: "GETDMA on a receive array past top",
    act: ({ v }) => {
      assert.equal(v.bind(0x3000, TOP - 8, 1, 3), 1);
      assert.equal(v.file.write([LHREQ_GETDMA, 0x3000]), -2);
    },
    reason: /^GETDMA: bad address in registered DMA struct 0x3bff8$/,
  },
  // --- other hypercalls ---
  {
    name: "LGUEST_INIT again",
    act: ({ v }) => void v.call(LHCALL_LGUEST_INIT, LD),
    reason: /^LGUEST_INIT: already have lguest_data$/,
  },
  {
    name: "CRASH with a message wrapping past 2^32",
    act: ({ v }) => void v.call(LHCALL_CRASH, 0xfffffff0),
    reason: /^CRASH: bad read address 0xfffffff0 len 128$/,
  },
  {
    name: "LOAD_GDT with a table wrapping past 2^32",
    act: ({ v }) => void v.call(LHCALL_LOAD_GDT, 0xfffffff8, 32),
    reason: /^LOAD_GDT: bad read address 0xfffffff8 len 256$/,
  },
  {
    name: "LOAD_GDT with 0xffffffff entries",
    act: ({ v }) => void v.call(LHCALL_LOAD_GDT, BUF, 0xffffffff),
    reason: /^LOAD_GDT: too many gdt entries 4294967295$/,
  },
  {
    name: "LOAD_TLS past top",
    act: ({ v }) => void v.call(LHCALL_LOAD_TLS, TOP - 8),
    reason: /^LOAD_TLS: bad read address 0x3bff8 len 24$/,
  },
  {
    name: "SET_STACK with 0xffffffff pages",
    act: ({ v }) => void v.call(LHCALL_SET_STACK, 0x69, 0, 0xffffffff),
    reason: /^SET_STACK: bad stack pages 4294967295$/,
  },
  {
    name: "SET_STACK with a ring-0 segment",
    act: ({ v }) => void v.call(LHCALL_SET_STACK, 0x68, 0, 1),
    reason: /^SET_STACK: bad stack segment 104$/,
  },
  {
    name: "LOAD_IDT_ENTRY with a present gate of type 0",
    act: ({ v }) => {
      const [lo, hi] = idtGate(0);
      v.call(LHCALL_LOAD_IDT_ENTRY, 0x30, lo, hi);
    },
    reason: /^LOAD_IDT_ENTRY: bad IDT type 0 for vector 48$/,
  },
  {
    name: "hypercall 0xdeadbeef",
    act: ({ v }) => void v.call(0xdeadbeef, 1, 2, 3),
    reason: /^Bad hypercall 3735928559$/,
  },
  // --- the async ring ---
  {
    name: "ring entry with a bad hypercall",
    act: ({ v }) => {
      putRing(v.mem, LD, 0, [LHCALL_TS, 1]);
      putRing(v.mem, LD, 1, [11]);
      putRing(v.mem, LD, 2, [LHCALL_TS, 2]);
      v.call(LHCALL_FLUSH_ASYNC);
    },
    reason: /^Bad hypercall 11$/,
    check: ({ v }) => assert.equal(v.guest.ts, 1, "entries after the bad one did not run"),
  },
  {
    name: "ring entry SEND_DMA with a bad key",
    act: ({ v }) => {
      putRing(v.mem, LD, 0, [LHCALL_SEND_DMA, 0x3003, victimTx(v)]);
      v.call(LHCALL_TS, 5);
    },
    reason: /^SEND_DMA: bad sending DMA key 0x3003$/,
    check: ({ v }) => assert.equal(v.guest.ts, 0, "the sync call did not run"),
  },
  {
    name: "ring entry LGUEST_INIT",
    act: ({ v }) => {
      putRing(v.mem, LD, 0, [LHCALL_LGUEST_INIT, LD]);
      v.call(LHCALL_FLUSH_ASYNC);
    },
    reason: /^LGUEST_INIT: already have lguest_data$/,
  },
  {
    name: "all 64 ring entries CRASH: the first kills, the rest never run",
    act: ({ v }) => {
      v.mem.bytes.set(new TextEncoder().encode("boom\0"), BUF);
      for (let i = 0; i < 64; i++) putRing(v.mem, LD, i, [LHCALL_CRASH, BUF]);
      v.call(LHCALL_TS);
    },
    reason: /^CRASH: boom$/,
    check: ({ v }) => assert.equal(v.guest.counters.asyncHypercalls, 1),
  },
  // --- refused, not fatal ---
  {
    name: "BIND_DMA with irq 32 and 255 (refused)",
    act: ({ v }) => {
      assert.equal(v.bind(sharedKey(v), ARR, 1, 32), 0);
      assert.equal(v.bind(sharedKey(v), ARR, 1, 255), 0);
      assert.equal(v.bind(0x3001, ARR, 1, 255), 0, "irq checked before the key");
    },
  },
  {
    name: "BIND_DMA with num bits 24..31 set (lost)",
    act: ({ v }) => {
      assert.equal(v.eax(LHCALL_BIND_DMA, sharedKey(v), ARR, 0xff000203), 1);
      assert.equal(v.guest.bindings[0]!.numDmas, 2);
    },
  },
  {
    name: "the 33rd binding (refused)",
    act: ({ v }) => {
      for (let i = 0; i < LGUEST_MAX_DMA; i++) assert.equal(v.bind(0x3000 + 4 * i, ARR, 1, 3), 1);
      assert.equal(v.bind(0x3100, ARR, 1, 3), 0);
      assert.equal(v.bind(sharedKey(v), ARR, 1, 3), 0);
    },
  },
  {
    name: "all 64 ring entries ready with garbage status bytes",
    act: ({ v }) => {
      for (let i = 0; i < 64; i++) putRing(v.mem, LD, i, [LHCALL_TS, i], 1 + (i * 37) % 254);
      assert.equal(v.eax(LHCALL_FLUSH_ASYNC), 0);
      assert.equal(v.guest.counters.asyncHypercalls, 64);
      for (let i = 0; i < 64; i++) assert.equal(ringStatus(v.mem, LD, i), 0xff);
    },
  },
  {
    name: "64 ring entries of inter-guest SEND_DMA",
    act: ({ v, a }) => {
      const tx = victimTx(v);
      for (let i = 0; i < 64; i++) putRing(v.mem, LD, i, [LHCALL_SEND_DMA, sharedKey(v), tx]);
      v.eax(LHCALL_FLUSH_ASYNC);
      assert.equal(a.used(A_RX), 16, "the first one filled a's only buffer");
      assert.equal(v.guest.counters.dmaDroppedFull, 63);
    },
  },
  {
    name: "section lengths 0, 1, 4095 and 4096 where they fit",
    act: ({ v, a }) => {
      for (
        const [addr, len, want] of [[BUF, 0, 0], [BUF, 1, 1], [BUF + 1, 4095, 4095], [
          BUF,
          4096,
          4096,
        ]]
      ) {
        a.mem.setU32(A_RX, 0);
        a.dma(A_RX, [[BUF + 0x20000, 4096]]);
        v.dma(ARR + 0x800, [[addr, len]]);
        v.send(sharedKey(v), ARR + 0x800);
        assert.equal(v.used(ARR + 0x800), want, `len ${len}`);
        assert.equal(a.used(A_RX), want, `len ${len}`);
      }
    },
  },
  {
    name: "receive array in a device page just below top",
    act: ({ v, a }) => {
      const dev = TOP - 3 * PAGE_SIZE; // like a device page: inside top, valid memory
      v.dma(dev, [[dev + 0x200, 64]]);
      assert.equal(v.bind(sharedKey(v, 8), dev, 1, 3), 1);
      a.mem.bytes.set(pattern(64, 5), BUF);
      a.dma(ARR + 0x800, [[BUF, 64]]);
      a.send(sharedKey(a, 8), ARR + 0x800);
      assert.equal(v.used(dev), 64);
      assert.deepEqual(v.mem.slice(dev + 0x200, 64), pattern(64, 5));
    },
  },
  {
    name: "receive sections overlapping their own descriptor",
    act: ({ v, a }) => {
      // Section 0 is the element's addr[1] field; the sender writes a bad
      // address there. The host must use the descriptor as it read it.
      v.dma(ARR, [[ARR + 8, 4], [BUF, 16]]);
      assert.equal(v.bind(sharedKey(v, 8), ARR, 1, 3), 1);
      const data = new Uint8Array(20);
      new DataView(data.buffer).setUint32(0, 0xfffff000, true);
      data.set(pattern(16, 8), 4);
      a.mem.bytes.set(data, BUF);
      a.dma(ARR + 0x800, [[BUF, 20]]);
      a.send(sharedKey(a, 8), ARR + 0x800);
      assert.equal(v.used(ARR), 20);
      assert.equal(v.mem.u32(ARR + 8), 0xfffff000, "the bytes landed in the descriptor");
      assert.deepEqual(v.mem.slice(BUF, 16), pattern(16, 8));
    },
  },
];

for (const c of CASES) {
  Deno.test(`adversarial: ${c.name}`, () => {
    const w = world();
    const { v, a, b } = w;
    c.act(w);
    if (c.reason) {
      assert.notEqual(v.dead, null, "the victim must die");
      assert.match(v.dead!, c.reason);
    } else {
      assert.equal(v.dead, null, `the victim must live: ${v.dead}`);
    }
    c.check?.(w);
    assert.equal(a.dead, null, `a died: ${a.dead}`);
    assert.equal(b.dead, null, `b died: ${b.dead}`);
    for (const t of [v, a, b]) assert.ok(pastTopIsClean(t), "memory past top untouched");
    if (c.reason) {
      // A dead guest's hypercalls do nothing, not even a valid send.
      a.dma(A_RX + DMA_SIZE, [[BUF + 0x21000, 64]]);
      assert.equal(a.bind(sharedKey(a, 0x40), A_RX + DMA_SIZE, 1, 6), 1);
      const pending = a.guest.pending;
      const r = v.call(LHCALL_SEND_DMA, sharedKey(v, 0x40), victimTx(v));
      assert.ok(r.dead);
      assert.equal(a.used(A_RX + DMA_SIZE), 0);
      assert.equal(a.guest.pending, pending);
    }
    healthCheck(a, b, 0);
    healthCheck(b, a, 1);
    closeAll([v, a, b]);
  });
}

Deno.test("adversarial: the bounds check on wrapping and edge lengths (§0, §14.3)", () => {
  const m = new GuestMemory(new Uint8Array(PAGES * PAGE_SIZE), PFN_LIMIT);
  assert.equal(m.ok(0xfffff000, 0x2000), false, "wraps");
  assert.equal(m.ok(0xffffffff, 1), false);
  assert.equal(m.ok(1, 0xffffffff), false);
  assert.equal(m.ok(0, TOP), true, "ends exactly at top");
  assert.equal(m.ok(TOP, 0), true, "empty range at top");
  assert.equal(m.ok(TOP, 1), false);
  assert.equal(m.ok(TOP - 1, 1), true);
  for (const len of [0, 1, 4095, 4096, 65535]) {
    assert.equal(m.ok(TOP - len, len), true, `len ${len} at the end`);
    assert.equal(m.ok(TOP - len + 1, len), false, `len ${len} one past`);
  }
  assert.equal(m.ok(-1, 1), false, "negative numbers are taken as u32");
});

Deno.test("adversarial: a dozen kills in a row on one host, the others keep going", () => {
  const w = world();
  const { host, a, b } = w;
  let round = 2;
  for (const c of CASES.filter((x) => x.reason).slice(0, 12)) {
    // A fresh victim in the freed slot each time.
    w.v.file.close();
    const nv = addVictim(host);
    w.v = nv;
    c.act(w);
    assert.match(nv.dead ?? "", c.reason!, c.name);
    healthCheck(a, b, round++ % 60);
  }
  assert.equal(host.count, 3);
  closeAll([w.v, a, b]);
});

function addVictim(host: Host): TestGuest {
  return addGuest(host, { pages: PAGES, pfnLimit: PFN_LIMIT, sharedObject: NET });
}
