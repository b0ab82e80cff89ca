/**
 * Host: the one checked path to guest memory.
 *
 * Every guest-supplied address and length goes through {@link GuestMemory.ok}
 * before anything is read or written. The rule is the Host's
 * `lguest_address_ok()` (protocol §0) with our deliberate fix of quirk §14.3:
 * a range `[addr, addr+len)` is valid iff it does not wrap around 2^32 and
 * ends at or below `top = pfn_limit * 4096` (the original rejected a range
 * ending exactly at `top`).
 *
 * @module
 */

import { LeView } from "../abi/structs.ts";
import { DMA_ADDR, DMA_LEN, DMA_SIZE } from "../abi/structs.ts";
import { LGUEST_MAX_DMA_SECTIONS, PAGE_SIZE } from "../abi/constants.ts";

/** Format a guest value the way kill reasons print it. */
export function hex(v: number): string {
  return "0x" + (v >>> 0).toString(16);
}

/**
 * The sections of one lguest_dma as checked (address, length) pairs: no
 * views are allocated. Section i is `bytes[addr[i] .. addr[i] + len[i])`.
 * Filled by {@link GuestMemory.ranges}; reused from call to call.
 */
export class DmaRanges {
  /** Guest memory, all of it. */
  bytes: Uint8Array = new Uint8Array(0);
  /** Sections up to the first zero length. */
  count = 0;
  /** Sum of the lengths. */
  total = 0;
  readonly addr: Uint32Array = new Uint32Array(LGUEST_MAX_DMA_SECTIONS);
  readonly len: Uint32Array = new Uint32Array(LGUEST_MAX_DMA_SECTIONS);

  /** The views {@link view} handed out, per section, with the range each covers. */
  readonly #views: (Uint8Array | null)[] = new Array(LGUEST_MAX_DMA_SECTIONS).fill(null);
  readonly #viewAddr: Uint32Array = new Uint32Array(LGUEST_MAX_DMA_SECTIONS);
  readonly #viewLen: Uint32Array = new Uint32Array(LGUEST_MAX_DMA_SECTIONS);
  #viewsOf: Uint8Array | null = null;

  /**
   * Section `i` (below `count`) as a view of guest memory:
   * `bytes[addr[i] .. addr[i] + len[i])`, exactly the checked range. The
   * view is kept and handed out again while section `i` names the same
   * range (a driver sends from the same buffers over and over), so a
   * device that needs views does not allocate one per section per send.
   * Like any view of guest memory it is live: the guest may change the
   * bytes, never the range.
   */
  view(i: number): Uint8Array {
    if (!(i >= 0 && i < this.count)) throw new RangeError(`DmaRanges: no section ${i}`);
    if (this.#viewsOf !== this.bytes) {
      this.#views.fill(null);
      this.#viewsOf = this.bytes;
    }
    const a = this.addr[i], n = this.len[i];
    let v = this.#views[i];
    if (v === null || this.#viewAddr[i] !== a || this.#viewLen[i] !== n) {
      v = this.#views[i] = this.bytes.subarray(a, a + n);
      this.#viewAddr[i] = a;
      this.#viewLen[i] = n;
    }
    return v;
  }

  /**
   * Merge sections that follow each other in guest memory, in place (a
   * buffer split at page boundaries becomes one range again, so a device
   * makes one copy or one write for it). The bytes and their order are
   * unchanged.
   */
  merge(): void {
    let k = 0;
    for (let i = 1; i < this.count; i++) {
      if (this.addr[k] + this.len[k] === this.addr[i]) {
        this.len[k] += this.len[i];
      } else {
        k++;
        this.addr[k] = this.addr[i];
        this.len[k] = this.len[i];
      }
    }
    if (this.count !== 0) this.count = k + 1;
  }

  /**
   * {@link merge}, then every section as a {@link view}: what a device that
   * works on views is given (a 64 KiB buffer split at page boundaries is
   * one view, kept from request to request, not 16 made per request).
   */
  mergedViews(): Uint8Array[] {
    this.merge();
    const out: Uint8Array[] = [];
    for (let i = 0; i < this.count; i++) out.push(this.view(i));
    return out;
  }
}

/** Guest-physical memory of one guest, bounded by its pfn_limit. */
export class GuestMemory extends LeView {
  /** First invalid guest-physical address: `pfn_limit * 4096`. */
  readonly top: number;

  constructor(bytes: Uint8Array, pfnLimit: number) {
    super(bytes);
    const top = pfnLimit * PAGE_SIZE;
    if (!Number.isInteger(pfnLimit) || pfnLimit < 0 || top > bytes.length) {
      throw new RangeError(
        `host: pfn_limit ${hex(pfnLimit)} exceeds guest memory of ${bytes.length} bytes`,
      );
    }
    this.top = top;
  }

  /**
   * Is `[addr, addr+len)` inside guest memory? Both values are taken as the
   * guest gave them (u32); a length that wraps past 2^32 is rejected.
   */
  ok(addr: number, len: number): boolean {
    addr >>>= 0;
    len >>>= 0;
    // Exact in a double: an addr+len that wraps in 32 bits is > 2^32 > top.
    return addr + len <= this.top;
  }

  /** A live view of `[addr, addr+len)`; the caller has checked it with ok(). */
  slice(addr: number, len: number): Uint8Array {
    return this.bytes.subarray(addr, addr + len);
  }

  /** Read a NUL-terminated string of at most `max` bytes (checked by caller). */
  cstring(addr: number, max: number): string {
    const b = this.slice(addr, max);
    const nul = b.indexOf(0);
    return new TextDecoder().decode(nul < 0 ? b : b.subarray(0, nul));
  }

  /**
   * The sections of the lguest_dma at `dma` as live views, up to the first
   * zero length (protocol §2.1), or a reason string if the struct or any
   * section lies outside guest memory. This is the Launcher's side of the
   * check (§9.6): bounds only, no page rules.
   */
  /**
   * The sections of the lguest_dma at `dma`, up to the first zero length
   * (protocol §2.1), into `out` as (address, length) pairs, or a reason
   * string if the struct or any section lies outside guest memory (then
   * `out` holds no section). This is the Launcher's side of the check
   * (§9.6): bounds only, no page rules.
   */
  ranges(dma: number, out: DmaRanges): string | null {
    out.count = out.total = 0;
    if (!this.ok(dma, DMA_SIZE)) return `bad lguest_dma address ${hex(dma)}`;
    out.bytes = this.bytes;
    for (let i = 0; i < LGUEST_MAX_DMA_SECTIONS; i++) {
      const len = this.u16(dma + DMA_LEN + 2 * i);
      if (len === 0) break;
      const addr = this.u32(dma + DMA_ADDR + 4 * i);
      if (!this.ok(addr, len)) {
        out.count = out.total = 0;
        return `bad DMA section ${len}@${hex(addr)}`;
      }
      out.addr[i] = addr;
      out.len[i] = len;
      out.count = i + 1;
      out.total += len;
    }
    return null;
  }

  /**
   * As {@link sections}, as live views (allocated): for callers that keep
   * them or need one object per section.
   */
  sections(dma: number): Uint8Array[] | string {
    if (!this.ok(dma, DMA_SIZE)) return `bad lguest_dma address ${hex(dma)}`;
    const out: Uint8Array[] = [];
    for (let i = 0; i < LGUEST_MAX_DMA_SECTIONS; i++) {
      const len = this.u16(dma + DMA_LEN + 2 * i);
      if (len === 0) break;
      const addr = this.u32(dma + DMA_ADDR + 4 * i);
      if (!this.ok(addr, len)) return `bad DMA section ${len}@${hex(addr)}`;
      out.push(this.slice(addr, len));
    }
    return out;
  }
}
