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
