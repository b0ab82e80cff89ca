/**
 * Fuzzer: the action generator. It looks at the world (which guests run,
 * wait or are dead, their top, their lguest_data) to pick sensible next
 * steps, but every action it returns carries concrete values only.
 *
 * Slots 0 and 1 are mostly well-behaved (valid binds and sends between
 * guests, so the deep paths run long) and turn hostile 10% of the time;
 * slots 2 and 3 are hostile 45% of the time. Hostile values are the
 * boundaries: 0, 1, 3, 4, top-1, top, top+1, pfn_limit, 0xFFFFF000,
 * 2^32-1, pairs that wrap past 2^32, misaligned keys, keys inside the
 * shared page, lengths 0/1/4095/4096/65535, descriptors that point at
 * themselves or at the shared page, full async rings with odd status
 * bytes, binding floods.
 *
 * @module
 */

import {
  FIRST_EXTERNAL_VECTOR,
  LHCALL_BIND_DMA,
  LHCALL_CRASH,
  LHCALL_FLUSH_ASYNC,
  LHCALL_FLUSH_TLB,
  LHCALL_HALT,
  LHCALL_LGUEST_INIT,
  LHCALL_LOAD_GDT,
  LHCALL_LOAD_IDT_ENTRY,
  LHCALL_LOAD_TLS,
  LHCALL_NEW_PGTABLE,
  LHCALL_RING_SIZE,
  LHCALL_SEND_DMA,
  LHCALL_SET_CLOCKEVENT,
  LHCALL_SET_PMD,
  LHCALL_SET_PTE,
  LHCALL_SET_STACK,
  LHCALL_TS,
  LHREQ_BREAK,
  LHREQ_GETDMA,
  LHREQ_INITIALIZE,
  LHREQ_IRQ,
  PAGE_SIZE,
} from "../abi/constants.ts";
import {
  DMA_SIZE,
  HCALL_RING_ENTRY,
  LD_BLOCKED_INTERRUPTS,
  LD_HCALL_STATUS,
  LD_HCALLS,
  LD_IRQ_ENABLED,
  LD_SIZE,
} from "../abi/structs.ts";
import type { Action, Call } from "./actions.ts";
import type { Rng } from "./rng.ts";
import {
  F_ARR,
  F_BUF,
  F_LD,
  FUZZ_PAGES,
  FUZZ_SLOTS,
  GUARD_PAGES,
  K_AREA_PAGES,
  K_RX_BUF,
  K_TX_BUF,
  type Slot,
  type World,
} from "./world.ts";

/** Values that break arithmetic: around 0, 2^31, 2^32 and page edges. */
const BOUNDARY: readonly number[] = [
  0,
  1,
  2,
  3,
  4,
  0x7f,
  0x80,
  0xff,
  0x100,
  0xfff,
  0x1000,
  0x1001,
  0xffff,
  0x10000,
  0x7fffffff,
  0x80000000,
  0xfffff000,
  0xfffffffc,
  0xffffffff,
  0xffffff9c, // 2^32 - 100: a lguest_dma that wraps
  0xffff0000,
  0xfffffffe,
];
const LENGTHS: readonly number[] = [0, 1, 2, 99, 100, 101, 4095, 4096, 4097, 8192, 65535];
/** Bind arrays a well-behaved guest uses (few, so unbinds match). */
const SANE_ARRAYS = 8;
/** Descriptors for sends start after the bind arrays. */
const DESC_BASE = F_ARR + 40 * DMA_SIZE;

/** Generator options. */
export interface GenOptions {
  /** A known-good exchange every this many steps. */
  kgEvery: number;
}

/** Produces the actions of one epoch. */
export class Generator {
  readonly #rng: Rng;
  readonly #world: World;
  readonly #opts: GenOptions;
  readonly #queue: Action[] = [];
  #step = 0;
  #kg = 0;

  constructor(rng: Rng, world: World, opts: GenOptions) {
    this.#rng = rng;
    this.#world = world;
    this.#opts = opts;
  }

  next(): Action {
    this.#step++;
    if (this.#queue.length !== 0) return this.#queue.shift()!;
    if (this.#step % this.#opts.kgEvery === 0) return this.#knownGood();
    const r = this.#rng;
    const x = r.int(1000);
    if (x < 4) return { k: "tick", ms: r.pick([0.001, 1, 4, 5, 100, 5000]) };
    if (x < 7) return this.#extra();
    const gi = r.int(FUZZ_SLOTS);
    const s = this.#world.slots[gi];
    const wild = r.chance(gi < 2 ? 0.03 : 0.3);
    const g = s.guest;
    if (s.file === null || g === null) {
      const y = r.int(10);
      if (y < 6) return this.#reopen(s);
      if (y < 8) return this.#request(s, wild);
      return { k: "read", g: gi };
    }
    if (g.dead !== null) {
      const y = r.int(20);
      if (y < 8) return this.#reopen(s);
      if (y < 13) return { k: "read", g: gi };
      if (y < 17) return this.#request(s, wild);
      return this.#getDma(s, wild);
    }
    if (s.cpu!.parked) {
      const y = r.int(100);
      if (g.breakOut && y < 50) return { k: "req", g: gi, w: [LHREQ_BREAK, 0] };
      if (g.halted && y < 30) return { k: "req", g: gi, w: [LHREQ_IRQ, r.int(wild ? 33 : 4)] };
      if (y < 58) return { k: "read", g: gi, nest: this.#nest(s, wild) };
      if (y < 67) return { k: "inflight", g: gi, a: this.#inner() };
      if (y < 71) return { k: "closeread", g: gi };
      if (y < 85) return this.#request(s, wild);
      if (y < 97) return this.#getDma(s, wild);
      return this.#reopen(s);
    }
    const y = r.int(1000);
    if (y < 300) return this.#hypercall(s, wild);
    if (y < 450) return this.#dma(s, this.#arrayElement(s, wild), wild);
    if (y < 580) {
      const at = this.#descAddr(s, wild);
      this.#queue.push({
        k: "hc",
        g: gi,
        c: [LHCALL_SEND_DMA, this.#key(s, wild), at, 0],
        nest: this.#nest(s, wild),
      });
      return this.#dma(s, at, wild);
    }
    if (y < 660) return this.#poke(s, wild);
    if (y < 700) return this.#ring(s, wild);
    if (y < 708) return this.#flood(s);
    if (y < 778) return this.#request(s, wild);
    if (y < 838) return this.#getDma(s, wild);
    if (y < 918) return { k: "read", g: gi, nest: this.#nest(s, wild) };
    if (y < 921) return { k: "closeread", g: gi };
    if (y < 923) return { k: "kill", g: gi };
    if (y < 930) return { k: "spin", g: gi, ms: r.pick([0.5, 1, 3, 4, 5, 100]) };
    if (y < 950) return { k: "inflight", g: gi, a: this.#inner() };
    if (y < 962) return this.#reopen(s);
    return this.#hypercall(s, true);
  }

  // --- values ---

  /** An address: a boundary, relative to this guest's top, or random. */
  #addr(s: Slot): number {
    const r = this.#rng;
    const t = s.top;
    const sp = t - PAGE_SIZE;
    switch (r.int(6)) {
      case 0:
        return r.pick(BOUNDARY);
      case 1:
        return r.pick([
          t - 1,
          t,
          t + 1,
          t - 4,
          t - 2,
          t - 100,
          t - 99,
          t - 101,
          t + 4096,
          2 * t,
        ]) >>>
          0;
      case 2:
        return r.pick([
          sp,
          sp + 4,
          sp - 100,
          sp - 50,
          sp + 4000,
          t >>> 12,
          F_LD,
          F_LD + LD_SIZE - 4,
        ]) >>>
          0;
      case 3:
        return r.int(Math.max(t, 1));
      case 4:
        return (r.int(Math.max(t, 4)) & ~3) >>> 0;
      default:
        return r.u32();
    }
  }

  /** A u32 argument: an address or a boundary or anything. */
  #arg(s: Slot): number {
    return this.#rng.chance(0.6) ? this.#addr(s) : this.#rng.pick(BOUNDARY);
  }

  /** A DMA key. Well-behaved: a few offsets in the shared page, or private keys. */
  #key(s: Slot, wild: boolean): number {
    const r = this.#rng;
    const sp = s.top - PAGE_SIZE;
    if (!wild) {
      if (r.chance(0.8)) return sp + 4 * r.int(4);
      return r.pick([0, F_BUF, F_ARR, sp - PAGE_SIZE]) >>> 0;
    }
    switch (r.int(4)) {
      case 0:
        return (sp + r.pick([0, 4, 8, 12, 1, 2, 3, 4092, 4094, 4095, 4096, 4100, -4])) >>> 0;
      case 1:
        return r.pick([s.top, s.top + 4, s.top - 4, 3, 0xfffffffc, 0xffffffff, 0x80000000]) >>> 0;
      default:
        return this.#addr(s);
    }
  }

  /** A DMA array to bind. */
  #array(s: Slot, wild: boolean): number {
    const r = this.#rng;
    if (!wild) return F_ARR + DMA_SIZE * r.int(SANE_ARRAYS);
    const t = s.top;
    return r.chance(0.3)
      ? (F_ARR + r.int(8000)) >>> 0 // misaligned, overlapping elements
      : r.pick([
        t - 100,
        t - 99,
        t - 200,
        t,
        0,
        1,
        F_LD,
        t - PAGE_SIZE,
        0xffffff9c,
        0xfffffff0,
        this.#addr(s),
      ]) >>> 0;
  }

  /** An element of a bind array (well-behaved arrays hold up to 8 from index 0..7). */
  #arrayElement(s: Slot, wild: boolean): number {
    const r = this.#rng;
    if (!wild || r.chance(0.7)) return F_ARR + DMA_SIZE * r.int(SANE_ARRAYS + 8);
    return this.#array(s, true);
  }

  /** A descriptor to send (or write) at. */
  #descAddr(s: Slot, wild: boolean): number {
    const r = this.#rng;
    if (!wild || r.chance(0.5)) return DESC_BASE + DMA_SIZE * r.int(10);
    const t = s.top;
    return r.pick([
      t - DMA_SIZE,
      t - PAGE_SIZE,
      t - PAGE_SIZE - 50,
      F_LD,
      0,
      F_ARR + r.int(4000),
      r.int(Math.max(t - DMA_SIZE, 1)),
    ]) >>> 0;
  }

  /** BIND_DMA's ECX: (num << 8) | irq, sometimes with the lost top bits set. */
  #bindEcx(wild: boolean, unbind: boolean): number {
    const r = this.#rng;
    if (unbind) return wild ? (r.u32() & 0xffffff00) >>> 0 : 0;
    if (!wild) return ((1 + r.int(8)) << 8 | (1 + r.int(3))) >>> 0;
    const num = r.pick([0, 1, 2, 16, 40, 255, 256, 1000, 0xffff, r.int(70000)]);
    const irq = r.pick([0, 1, 2, 31, 32, 33, 255, r.int(40)]);
    const top = r.chance(0.15) ? r.u32() & 0xff000000 : 0;
    return ((num << 8) | irq | top) >>> 0;
  }

  /** One hypercall [eax, edx, ebx, ecx]. */
  #call(s: Slot, wild: boolean): Call {
    const r = this.#rng;
    const x = r.int(100);
    if (x < 28) {
      const unbind = r.chance(0.2);
      return [
        LHCALL_BIND_DMA,
        this.#key(s, wild),
        this.#array(s, wild),
        this.#bindEcx(wild, unbind),
      ];
    }
    if (x < 46) return [LHCALL_SEND_DMA, this.#key(s, wild), this.#descAddr(s, wild), 0];
    if (x < 52) return [LHCALL_FLUSH_ASYNC, 0, 0, 0];
    if (x < 57) {
      return [LHCALL_SET_CLOCKEVENT, r.pick([0, 1, 100, 1e6, 4e6, 0xffffffff, r.u32()]), 0, 0];
    }
    if (x < 62) {
      const vec = wild
        ? r.pick([0, 2, 8, 15, 31, 63, 64, 0x80, 0x81, FIRST_EXTERNAL_VECTOR + r.int(32), r.u32()])
        : FIRST_EXTERNAL_VECTOR + r.int(4);
      const type = wild ? r.int(16) : r.pick([0xe, 0xf]);
      const hi = wild && r.chance(0.3) ? r.u32() : (0x8000 | (1 << 13) | (type << 8)) >>> 0;
      return [LHCALL_LOAD_IDT_ENTRY, vec >>> 0, r.u32(), hi];
    }
    if (x < 64) return [LHCALL_HALT, 0, 0, 0];
    if (!wild) {
      const t = s.top;
      return r.pick<Call>([
        [LHCALL_TS, r.int(2), 0, 0],
        [LHCALL_NEW_PGTABLE, r.int(8) * PAGE_SIZE, 0, 0],
        [LHCALL_FLUSH_TLB, r.int(2), 0, 0],
        [LHCALL_SET_PTE, F_BUF, 0xc0000000, 0],
        [LHCALL_SET_PMD, F_BUF, r.int(1100), 0],
        [LHCALL_LOAD_TLS, F_BUF, 0, 0],
        [LHCALL_LOAD_GDT, F_BUF, r.int(33), 0],
        [LHCALL_SET_STACK, 0x69, 0xc0001000, r.int(3)],
        [LHCALL_SET_CLOCKEVENT, 1e6, 0, 0],
        [LHCALL_LOAD_TLS, t - 24, 0, 0],
      ]);
    }
    if (x < 70) {
      return [LHCALL_LOAD_GDT, this.#addr(s), r.pick([0, 1, 31, 32, 33, 0xffffffff, r.u32()]), 0];
    }
    if (x < 74) {
      return [
        LHCALL_SET_STACK,
        r.pick([0x61, 0x69, 0x60, 0x6b, r.u32()]),
        r.u32(),
        r.pick([0, 1, 2, 3, r.u32()]),
      ];
    }
    if (x < 78) return [LHCALL_CRASH, this.#addr(s), 0, 0];
    if (x < 80) return [LHCALL_LGUEST_INIT, this.#addr(s), 0, 0];
    if (x < 84) return [LHCALL_LOAD_TLS, this.#addr(s), 0, 0];
    if (x < 97) return [r.int(21), this.#arg(s), this.#arg(s), this.#arg(s)];
    return [r.u32(), r.u32(), r.u32(), r.u32()];
  }

  /** IRQ handler scripts for an action: each handler makes 0..3 hypercalls. */
  #nest(s: Slot, wild: boolean): Call[] | undefined {
    const r = this.#rng;
    if (!r.chance(0.25)) return undefined;
    const out: Call[] = [];
    for (let i = r.int(3) + 1; i > 0; i--) {
      const c: number[] = [];
      for (let j = r.int(4); j > 0; j--) c.push(...this.#call(s, wild && r.chance(0.5)));
      out.push(c);
    }
    return out;
  }

  // --- actions ---

  #hypercall(s: Slot, wild: boolean): Action {
    return { k: "hc", g: s.index, c: this.#call(s, wild), nest: this.#nest(s, wild) };
  }

  /** A lguest_dma written by the guest. */
  #dma(s: Slot, at: number, wild: boolean): Action {
    const r = this.#rng;
    const t = s.top;
    if (at + DMA_SIZE > t) at = DESC_BASE;
    const n = wild ? r.pick([0, 1, 2, 3, 4, 8, 15, 16]) : 1 + r.int(4);
    const sec: number[] = [];
    const bufPages = Math.max(0, (t - 2 * PAGE_SIZE - F_BUF) / PAGE_SIZE);
    for (let i = 0; i < n; i++) {
      if ((!wild || r.chance(0.4)) && bufPages > 0) {
        const off = r.chance(0.5) ? 0 : r.int(PAGE_SIZE);
        sec.push(F_BUF + r.int(bufPages) * PAGE_SIZE + off, 1 + r.int(PAGE_SIZE - off));
        continue;
      }
      let addr: number;
      switch (r.int(5)) {
        case 0:
          addr = at + r.pick([0, 4, 68, 96]); // the descriptor itself
          break;
        case 1:
          addr = t - PAGE_SIZE + r.int(PAGE_SIZE); // the shared page
          break;
        default:
          addr = this.#addr(s);
      }
      const len = r.chance(0.5)
        ? r.pick(LENGTHS)
        : r.pick([t - addr, t - addr + 1, t - addr - 1, r.int(65536)]);
      sec.push(addr >>> 0, len & 0xffff);
    }
    const used = wild && r.chance(0.2) ? r.pick([1, 0xffffffff, r.u32()]) : 0;
    return { k: "dma", g: s.index, at, used, s: sec };
  }

  /** The guest writes its own memory: freeing buffers, lguest_data fields, anything. */
  #poke(s: Slot, wild: boolean): Action {
    const r = this.#rng;
    const g = s.guest!;
    const ld = g.lguestData;
    const gi = s.index;
    const x = r.int(10);
    if (x < 4 || ld === 0) {
      // Free (or fill) an element of a bind array.
      const at = F_ARR + DMA_SIZE * r.int(SANE_ARRAYS + 4);
      return { k: "w", g: gi, at, v: [r.chance(0.8) ? 0 : r.pick([1, 4096, 0xffffffff])] };
    }
    if (x < 6) {
      return { k: "w", g: gi, at: ld + LD_IRQ_ENABLED, v: [r.pick([0, 0x200, 0x200, 1, r.u32()])] };
    }
    if (x < 8) {
      return {
        k: "w",
        g: gi,
        at: ld + LD_BLOCKED_INTERRUPTS,
        v: [wild ? r.pick([0xffffffff, 1, r.u32()]) : 0],
      };
    }
    if (x < 9) {
      return { k: "b", g: gi, at: ld + LD_HCALL_STATUS + r.int(64), v: r.pick([0, 0xff, 1, 0xfe]) };
    }
    const at = r.int(Math.max(s.top - 4, 1)) & ~3;
    return { k: "w", g: gi, at, v: [r.chance(0.5) ? r.pick(BOUNDARY) : r.u32()] };
  }

  /** Fill async ring entries (status "ready"), then trap in with a hypercall. */
  #ring(s: Slot, wild: boolean): Action {
    const r = this.#rng;
    const g = s.guest!;
    const ld = g.lguestData;
    if (ld === 0) return this.#hypercall(s, wild);
    const n = wild ? r.pick([1, 2, 8, 63, 64, 65, 70]) : 1 + r.int(6);
    const start = r.chance(0.85) ? g.nextHcall : r.int(LHCALL_RING_SIZE);
    for (let j = 0; j < n; j++) {
      const i = (start + j) % LHCALL_RING_SIZE;
      this.#queue.push({
        k: "w",
        g: s.index,
        at: ld + LD_HCALLS + i * HCALL_RING_ENTRY,
        v: this.#call(s, wild),
      });
      this.#queue.push({
        k: "b",
        g: s.index,
        at: ld + LD_HCALL_STATUS + i,
        v: wild && r.chance(0.3) ? r.pick([1, 0x80, 0xfe, 0xff]) : 0,
      });
    }
    this.#queue.push(
      r.chance(0.7)
        ? { k: "hc", g: s.index, c: [LHCALL_FLUSH_ASYNC, 0, 0, 0] }
        : this.#hypercall(s, wild),
    );
    return this.#queue.shift()!;
  }

  /** 33 to 40 valid binds in a row (the table holds 32), then a few unbinds. */
  #flood(s: Slot): Action {
    const r = this.#rng;
    const key = s.top - PAGE_SIZE + 4 * r.int(4);
    for (let i = 33 + r.int(8); i > 0; i--) {
      this.#queue.push({
        k: "hc",
        g: s.index,
        c: [LHCALL_BIND_DMA, key, F_ARR + DMA_SIZE * r.int(SANE_ARRAYS), (1 << 8) | 1],
      });
    }
    for (let i = r.int(8); i > 0; i--) {
      this.#queue.push({
        k: "hc",
        g: s.index,
        c: [LHCALL_BIND_DMA, key, F_ARR + DMA_SIZE * r.int(SANE_ARRAYS), 0],
      });
    }
    return this.#queue.shift()!;
  }

  /**
   * What happens while a read() is in flight: another guest (or this one)
   * sends, binds or scribbles, the Launcher raises an IRQ, feeds input,
   * kills, or the clock fires.
   */
  #inner(): Action {
    const r = this.#rng;
    const s = this.#world.slots[r.int(FUZZ_SLOTS)];
    const wild = r.chance(0.2);
    if (!s.running) return r.chance(0.5) ? { k: "tick", ms: 5 } : this.#request(s, wild);
    const x = r.int(100);
    if (x < 35) {
      const c: Call = [LHCALL_SEND_DMA, this.#key(s, wild), this.#descAddr(s, wild), 0];
      return { k: "hc", g: s.index, c };
    }
    if (x < 55) return this.#hypercall(s, wild);
    if (x < 75) return this.#request(s, wild);
    if (x < 85) return this.#getDma(s, wild);
    if (x < 90) return { k: "kill", g: s.index };
    if (x < 95) return { k: "tick", ms: r.pick([1, 5, 5000]) };
    return this.#poke(s, wild);
  }

  /** A Launcher write: IRQ (up to 40), BREAK, GETDMA, INITIALIZE again, junk. */
  #request(s: Slot, wild: boolean): Action {
    const r = this.#rng;
    const gi = s.index;
    const x = r.int(100);
    if (x < 5) {
      const w = r.pick([[LHREQ_BREAK, 1], [LHREQ_BREAK, 0], [LHREQ_IRQ, 1], [LHREQ_GETDMA, 0]]);
      return { k: "req", g: gi, w, foreign: true };
    }
    if (x < 35) return { k: "req", g: gi, w: [LHREQ_IRQ, r.int(wild ? 41 : 4)] };
    if (x < 55) return { k: "req", g: gi, w: [LHREQ_BREAK, r.pick([1, 0, 0, r.u32()])] };
    if (x < 75) return { k: "req", g: gi, w: [LHREQ_GETDMA, this.#key(s, wild)] };
    if (x < 80) return { k: "req", g: gi, w: [LHREQ_INITIALIZE, FUZZ_PAGES, 0, 0, 0] };
    if (x < 85) {
      return { k: "req", g: gi, w: r.pick([[], [LHREQ_IRQ], [LHREQ_GETDMA], [LHREQ_BREAK]]) };
    }
    return { k: "req", g: gi, w: [r.int(8), r.u32(), r.u32()] };
  }

  #getDma(s: Slot, wild: boolean): Action {
    const r = this.#rng;
    return {
      k: "getdma",
      g: s.index,
      key: this.#key(s, wild),
      n: r.pick([0, 1, 100, 4096, 70000]),
    };
  }

  /** Re-create a guest: usually the normal geometry, sometimes odd pfn_limit or lguest_data. */
  #reopen(s: Slot): Action {
    const r = this.#rng;
    const pfn = r.chance(0.9) ? FUZZ_PAGES : r.pick([
      0,
      1,
      2,
      3,
      16,
      FUZZ_PAGES - 1,
      FUZZ_PAGES + GUARD_PAGES, // top = the end of the RAM array: no guard left
      FUZZ_PAGES + GUARD_PAGES + 1, // too big: -EINVAL
      0xffffffff,
      0x100000,
    ]);
    const t = (pfn * PAGE_SIZE) >>> 0;
    const ld = r.chance(0.85) ? F_LD : r.pick([
      0,
      t - LD_SIZE,
      t - LD_SIZE + 4,
      t - LD_SIZE + 1,
      t,
      t - PAGE_SIZE,
      0xfffff000,
      0xffffffff,
      r.int(Math.max(t, 1)),
      r.u32(),
    ]) >>> 0;
    const inline = r.chance(0.8) ? (s.index === 2 ? 1 : s.index === 3 ? 2 : 0) : r.int(3);
    return { k: "reopen", g: s.index, pfn, ld, init: r.chance(0.95), inline };
  }

  #extra(): Action {
    const r = this.#rng;
    if (r.chance(0.3)) return { k: "extra", w: [], close: true };
    const w = [
      r.chance(0.9) ? LHREQ_INITIALIZE : r.int(8),
      r.chance(0.8) ? r.int(4) : r.pick([4, 0xffffffff, 0x80000, r.u32()]),
      r.u32(),
      r.u32(),
      r.chance(0.8) ? 0xc0000000 : r.pick([0, 0xffc00000, 0xffbfffff, 0xffffffff]),
    ];
    return { k: "extra", w: w.slice(0, r.chance(0.85) ? 5 : r.int(5)), close: false };
  }

  /** The known-good exchange: 1..4 sections each side, none crossing a page. */
  #knownGood(): Action {
    const r = this.#rng;
    const sections = (base: number) => {
      const out: number[] = [];
      for (let i = 0, n = 1 + r.int(K_AREA_PAGES); i < n; i++) {
        const off = r.chance(0.5) ? 0 : r.int(PAGE_SIZE);
        out.push(base + i * PAGE_SIZE + off, 1 + r.int(PAGE_SIZE - off));
      }
      return out;
    };
    const n = this.#kg++;
    return {
      k: "kg",
      n,
      dir: n & 1,
      tx: sections(K_TX_BUF),
      rx: sections(K_RX_BUF),
      fz: r.pick([0, 4, 8, 12]),
    };
  }
}
