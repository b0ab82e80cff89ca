/**
 * Host: the keyed DMA engine of 2.6.23's drivers/lguest/io.c (protocol §5).
 *
 * Keys are guest-physical addresses. The engine never compares raw keys: it
 * canonicalises them first (The Futex Trick, §5.1). A key in a guest's
 * private memory becomes `{private: guest, addr}` and always routes to that
 * guest's Launcher; a key inside a shared region (a net segment page mapped
 * into several guests) becomes `{shared: object, offset}` and is the same
 * canonical key in every guest that maps the object, so a send there lands
 * in another guest's bound buffers.
 *
 * Canonical keys are plain numbers: `guestid * 2^32 + addr` for private
 * keys and `(16 + objectId) * 2^32 + offset` for shared ones.
 *
 * @module
 */

import { LGUEST_IRQS, MAX_LGUEST_GUESTS, PAGE_SIZE } from "../abi/constants.ts";
import { DMA_SIZE, DMA_USED_LEN, type DmaDesc, readDma } from "../abi/structs.ts";
import type { Binding, Guest } from "./guest.ts";
import { hex } from "./memory.ts";

const KEY_SPACE = 2 ** 32;
const SHARED_BASE = MAX_LGUEST_GUESTS;

/** Is a canonical key in a shared region? */
export function isShared(ckey: number): boolean {
  return ckey >= SHARED_BASE * KEY_SPACE;
}

/**
 * Canonicalise `key` in `g`'s address space, or return -1 if it is not a
 * valid key: not a multiple of 4 (as get_futex_key), or outside
 * `[0, top)` (our added bound, §5.1 "you may add a < pfn_limit check").
 */
export function canonicalKey(g: Guest, key: number): number {
  key >>>= 0;
  if ((key & 3) !== 0 || key >= g.mem.top) return -1;
  for (const r of g.shared) {
    if (key >= r.start && key < r.start + r.length) {
      return (SHARED_BASE + r.objectId) * KEY_SPACE + r.objectOffset + (key - r.start);
    }
  }
  return g.id * KEY_SPACE + key;
}

/** Does the shared region holding `key` let `g` bind there (SharedRegion.mayBind)? */
function mayBindShared(g: Guest, key: number): boolean {
  for (const r of g.shared) {
    if (key >= r.start && key < r.start + r.length) {
      return r.mayBind?.(g, r.objectOffset + (key - r.start)) ?? true;
    }
  }
  return true;
}

/** Sees one successful inter-guest transfer (see DmaEngine.observe). */
export type TransferObserver = (
  src: Guest,
  udma: number,
  dst: Guest,
  element: number,
  count: number,
) => void;

/** Result of one dma_transfer attempt. */
const enum Transfer {
  Delivered,
  Full,
  Abandoned,
}

/** The host-wide binding chains, one per canonical key (§5.2). */
export class DmaEngine {
  /** Most recent binding first, as the kernel pushed on the hash chain. */
  readonly #chains = new Map<number, Binding[]>();
  readonly #observers = new Map<number, TransferObserver>();

  /**
   * Watch successful transfers on shared object `objectId` (packet
   * capture); `null` stops watching. The observer sees the receiver's
   * element after the copy, with the byte count.
   */
  observe(objectId: number, fn: TransferObserver | null): void {
    if (fn) this.#observers.set(objectId, fn);
    else this.#observers.delete(objectId);
  }

  /**
   * BIND_DMA(key, dmas, (num<<8)|irq) (§5.3). Returns the hypercall's EAX:
   * 1 on success, 0 on failure.
   */
  bind(g: Guest, key: number, dmas: number, ecx: number): number {
    const irq = ecx & 0xff;
    const num = (ecx >>> 8) & 0xffff; // bits 24..31 are lost, as in 2.6.23
    if (irq >= LGUEST_IRQS) return 0;
    const ckey = canonicalKey(g, key);
    if (ckey < 0) {
      g.kill(`BIND_DMA: bad dma key ${hex(key)}`);
      return 0;
    }
    dmas >>>= 0;
    if (irq === 0) return this.#unbind(g, ckey, dmas);
    if (isShared(ckey) && !mayBindShared(g, key >>> 0)) return 0; // not this guest's key
    const slot = g.bindings.indexOf(null);
    if (slot < 0) return 0; // all 32 in use: the guest wrapper's -ENOMEM
    const b: Binding = {
      key: ckey,
      dmas,
      numDmas: num,
      nextDma: 0,
      lastGet: -1,
      lastGetFrom: 0,
      interrupt: irq,
      owner: g,
    };
    g.bindings[slot] = b;
    const chain = this.#chains.get(ckey);
    if (chain) chain.unshift(b);
    else this.#chains.set(ckey, [b]);
    return 1;
  }

  /**
   * Unbind: the first of this guest's *active* slots with this key and
   * array (our fix of quirk §14.2: the original also matched free slots).
   */
  #unbind(g: Guest, ckey: number, dmas: number): number {
    const slot = g.bindings.findIndex((b) => b !== null && b.key === ckey && b.dmas === dmas);
    if (slot < 0) return 0;
    this.#release(g.bindings[slot]!);
    g.bindings[slot] = null;
    return 1;
  }

  #release(b: Binding): void {
    const chain = this.#chains.get(b.key);
    if (!chain) return;
    const i = chain.indexOf(b);
    if (i >= 0) chain.splice(i, 1);
    if (chain.length === 0) this.#chains.delete(b.key);
  }

  /** Release every binding of a guest (its /dev/lguest fd was closed). */
  releaseAll(g: Guest): void {
    for (let i = 0; i < g.bindings.length; i++) {
      const b = g.bindings[i];
      if (b) this.#release(b);
      g.bindings[i] = null;
    }
  }

  /** Bindings on all keys of the host (for --verbose and the tests). */
  get bindingCount(): number {
    let n = 0;
    for (const chain of this.#chains.values()) n += chain.length;
    return n;
  }

  /** Bindings on a canonical key, most recent first (for tests and tools). */
  chain(ckey: number): readonly Binding[] {
    return this.#chains.get(ckey) ?? [];
  }

  /**
   * SEND_DMA(key, udma) (§5.4). A private key records a Launcher-bound DMA;
   * a shared key goes to the most recent *other* binder, retried once if
   * its buffers are full.
   */
  send(g: Guest, key: number, udma: number): void {
    const ckey = canonicalKey(g, key);
    if (ckey < 0) {
      g.kill(`SEND_DMA: bad sending DMA key ${hex(key)}`);
      return;
    }
    if (!isShared(ckey)) {
      g.pendingDma = { dma: udma >>> 0, key: key >>> 0 };
      g.counters.dmaToLauncher++;
      return;
    }
    if (this.#attempt(g, ckey, udma >>> 0) !== Transfer.Full) return;
    if (this.yieldOnFull) {
      g.retryDma = { ckey, udma: udma >>> 0 };
      return; // the Host lets the receiver run, then calls retry()
    }
    this.retry(g, { ckey, udma: udma >>> 0 });
  }

  /**
   * When a receiver is full, the original dropped its locks and tried once
   * more, which on SMP let the receiver restock meanwhile. With one thread
   * that only helps if the receiver runs in between, so with
   * `yieldOnFull` the sender's SEND_DMA stays unfinished (`retryDma`), the
   * Host yields to the event loop, and then calls {@link retry}: the guest
   * still sees one synchronous hypercall with at most one retry.
   */
  yieldOnFull = false;

  /** The single retry of a send whose receiver was full (§5.4). */
  retry(g: Guest, r: { ckey: number; udma: number }): void {
    g.retryDma = null;
    if (g.dead !== null) return;
    if (this.#attempt(g, r.ckey, r.udma) === Transfer.Full) g.counters.dmaDroppedFull++;
  }

  /** The guest a send from `g` on `ckey` would go to (the most recent other binder). */
  receiverOf(g: Guest, ckey: number): Guest | null {
    return this.#chains.get(ckey)?.find((b) => b.owner !== g)?.owner ?? null;
  }

  /** One delivery attempt to the most recent other binder of `ckey`. */
  #attempt(g: Guest, ckey: number, udma: number): Transfer {
    const dest = this.#chains.get(ckey)?.find((b) => b.owner !== g);
    if (!dest) {
      g.counters.dmaNoReceiver++;
      return Transfer.Abandoned;
    }
    return this.#transfer(g, udma, dest);
  }

  /** dma_transfer(): one attempt into one destination binding (§5.5). */
  #transfer(src: Guest, udma: number, dest: Binding): Transfer {
    const dst = dest.owner;
    // Step 1: the sender's descriptor. A bad address kills the sender; we
    // then abandon the transfer instead of copying "all zeros" (deviation).
    if (!src.mem.ok(udma, DMA_SIZE)) {
      src.kill(`SEND_DMA: bad address in sending DMA ${hex(udma)}`);
      src.counters.dmaAbandoned++;
      return Transfer.Abandoned;
    }
    // Step 2: the first free element, circularly from next_dma.
    let found = -1;
    for (let i = 0; i < dest.numDmas; i++) {
      const el = dest.dmas + ((dest.nextDma + i) % dest.numDmas) * DMA_SIZE;
      if (!dst.mem.ok(el, DMA_SIZE)) {
        dst.kill(`SEND_DMA: bad address in registered DMA struct ${hex(el)}`);
        src.counters.dmaAbandoned++;
        return Transfer.Abandoned;
      }
      if (dst.mem.u32(el + DMA_USED_LEN) === 0) {
        found = el;
        break;
      }
    }
    if (found >= 0) {
      // Both descriptors as read now: the original copied them into the
      // kernel first, so data landing on a descriptor cannot steer the copy.
      const dd = readDma(dst.mem, found);
      const sd = readDma(src.mem, udma);
      // Step 3.1: destination sections, then source sections (§5.6).
      if (!checkSections(dst, dd, "registered") || !checkSections(src, sd, "sending")) {
        if (src.dead === null) src.mem.setU32(udma + DMA_USED_LEN, 0);
        src.counters.dmaAbandoned++;
        return Transfer.Abandoned;
      }
      const count = copySections(src, sd, dst, dd);
      src.mem.setU32(udma + DMA_USED_LEN, count);
      if (count === 0 && sd.len.length !== 0) {
        src.counters.dmaAbandoned++;
        return Transfer.Abandoned; // step 5: no write to R, no interrupt
      }
      dst.mem.setU32(found + DMA_USED_LEN, count);
      dest.nextDma = (dest.nextDma + 1) % dest.numDmas; // not 2.6.23's u16: deviations §14.16
      dest.lastGet = -1;
      src.counters.dmaToGuest++;
      src.counters.dmaBytesToGuest += count;
      if (this.#observers.size !== 0) {
        this.#observers.get(Math.floor(dest.key / KEY_SPACE) - SHARED_BASE)?.(
          src,
          udma,
          dst,
          found,
          count,
        );
      }
    }
    // Step 4: the receiver's interrupt, full or not, and wake it.
    dst.pending |= 1 << dest.interrupt;
    dst.wake();
    return found >= 0 ? Transfer.Delivered : Transfer.Full;
  }

  /**
   * get_dma_buffer() behind LHREQ_GETDMA (§5.7), with the search of a
   * guest-to-guest send: the first free element of this guest's first
   * binding on `key`, circularly from next_dma, which then advances by one
   * (as a delivery by SEND_DMA does). 2.6.23 scanned from index 0: a guest
   * that frees its buffers one at a time then gets frames out of order
   * (docs/deviations.md). Returns its address, or null for none. Our fix of
   * quirk §14.1: a full array gives none (the Launcher then drops and
   * counts), never the last, still-full element.
   */
  getDma(g: Guest, key: number): { addr: number; irq: number } | null {
    const ckey = canonicalKey(g, key);
    if (ckey < 0) {
      g.kill(`GETDMA: bad registered DMA buffer key ${hex(key)}`);
      return null;
    }
    const b = this.#chains.get(ckey)?.find((x) => x.owner === g);
    if (!b) return null;
    for (let i = 0; i < b.numDmas; i++) {
      const el = b.dmas + ((b.nextDma + i) % b.numDmas) * DMA_SIZE;
      if (!g.mem.ok(el, DMA_SIZE)) {
        g.kill(`GETDMA: bad address in registered DMA struct ${hex(el)}`);
        return null;
      }
      if (g.mem.u32(el + DMA_USED_LEN) === 0) {
        b.lastGet = el;
        b.lastGetFrom = b.nextDma;
        b.nextDma = (b.nextDma + 1) % b.numDmas;
        return { addr: el, irq: b.interrupt };
      }
    }
    g.counters.getDmaNone++;
    return null;
  }

  /**
   * A buffer GETDMA returned on `key` goes back unfilled (not part of
   * 2.6.23: a wait in place takes one before it knows a frame will come):
   * its used_len is 0 again, and if it is the last one GETDMA took and
   * nothing was delivered since, next_dma goes back too, so the next input
   * lands there and the guest's order holds.
   */
  giveBack(g: Guest, key: number, addr: number): void {
    const ckey = canonicalKey(g, key);
    if (ckey < 0 || !g.mem.ok(addr, DMA_SIZE)) return;
    g.mem.setU32(addr + DMA_USED_LEN, 0);
    const b = this.#chains.get(ckey)?.find((x) => x.owner === g);
    if (!b || b.lastGet !== addr) return;
    b.lastGet = -1;
    if (b.nextDma === (b.lastGetFrom + 1) % b.numDmas) b.nextDma = b.lastGetFrom;
  }
}

/**
 * check_dma_list() (§5.6): each section until the first zero length must be
 * in bounds, at most a page, and must not cross a page. A failure kills the
 * owner with "bad DMA entry: LEN@0xADDR".
 */
function checkSections(g: Guest, d: DmaDesc, which: string): boolean {
  for (let i = 0; i < d.len.length; i++) {
    const len = d.len[i], addr = d.addr[i];
    if (!g.mem.ok(addr, len) || len > PAGE_SIZE || (addr % PAGE_SIZE) + len > PAGE_SIZE) {
      g.kill(`SEND_DMA: bad DMA entry in ${which} DMA: ${len}@${hex(addr)}`);
      return false;
    }
  }
  return true;
}

/**
 * copy_data() (§5.5 step 3.3): walk both section lists in parallel, each
 * step copying min(rest of source section, rest of destination section);
 * stop when either side ends. Excess source data is truncated.
 */
function copySections(src: Guest, s: DmaDesc, dst: Guest, d: DmaDesc): number {
  let si = 0, di = 0, so = 0, doff = 0, total = 0;
  while (si < s.len.length && di < d.len.length) {
    const n = Math.min(s.len[si] - so, d.len[di] - doff);
    const sa = s.addr[si] + so;
    dst.mem.bytes.set(src.mem.bytes.subarray(sa, sa + n), d.addr[di] + doff);
    total += n;
    so += n;
    doff += n;
    if (so === s.len[si]) {
      si++;
      so = 0;
    }
    if (doff === d.len[di]) {
      di++;
      doff = 0;
    }
  }
  return total;
}
