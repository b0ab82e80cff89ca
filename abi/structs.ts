/**
 * Field offsets derived from the layout tables, and typed readers/writers of
 * the ABI structures over a little-endian byte view. These are unchecked:
 * the host's `GuestMemory` checks every guest-supplied range first.
 *
 * @module
 */

import {
  HCALL_RING,
  LGUEST_BLOCK_PAGE,
  LGUEST_DATA,
  LGUEST_DEVICE_DESC,
  LGUEST_DMA,
  offsetOf,
} from "./layout.ts";
import { LGUEST_MAX_DMA_SECTIONS } from "./constants.ts";

/** `struct lguest_dma` offsets. */
export const DMA_SIZE: number = LGUEST_DMA.size;
export const DMA_USED_LEN: number = offsetOf(LGUEST_DMA, "used_len");
export const DMA_ADDR: number = offsetOf(LGUEST_DMA, "addr");
export const DMA_LEN: number = offsetOf(LGUEST_DMA, "len");

/** `struct lguest_data` offsets. */
export const LD_SIZE: number = LGUEST_DATA.size;
export const LD_IRQ_ENABLED: number = offsetOf(LGUEST_DATA, "irq_enabled");
export const LD_BLOCKED_INTERRUPTS: number = offsetOf(LGUEST_DATA, "blocked_interrupts");
export const LD_CR2: number = offsetOf(LGUEST_DATA, "cr2");
export const LD_TIME_SEC: number = offsetOf(LGUEST_DATA, "time_sec");
export const LD_TIME_NSEC: number = offsetOf(LGUEST_DATA, "time_nsec");
export const LD_HCALL_STATUS: number = offsetOf(LGUEST_DATA, "hcall_status");
export const LD_HCALLS: number = offsetOf(LGUEST_DATA, "hcalls");
export const LD_RESERVE_MEM: number = offsetOf(LGUEST_DATA, "reserve_mem");
export const LD_GUESTID: number = offsetOf(LGUEST_DATA, "guestid");
export const LD_TSC_KHZ: number = offsetOf(LGUEST_DATA, "tsc_khz");
export const LD_NOIRQ_START: number = offsetOf(LGUEST_DATA, "noirq_start");
export const LD_NOIRQ_END: number = offsetOf(LGUEST_DATA, "noirq_end");
export const HCALL_RING_ENTRY: number = HCALL_RING.size;

/** `struct lguest_device_desc` offsets. */
export const DESC_SIZE: number = LGUEST_DEVICE_DESC.size;
export const DESC_TYPE: number = offsetOf(LGUEST_DEVICE_DESC, "type");
export const DESC_FEATURES: number = offsetOf(LGUEST_DEVICE_DESC, "features");
export const DESC_STATUS: number = offsetOf(LGUEST_DEVICE_DESC, "status");
export const DESC_NUM_PAGES: number = offsetOf(LGUEST_DEVICE_DESC, "num_pages");
export const DESC_PFN: number = offsetOf(LGUEST_DEVICE_DESC, "pfn");

/** `struct lguest_block_page` offsets. */
export const BLK_TYPE: number = offsetOf(LGUEST_BLOCK_PAGE, "type");
export const BLK_SECTOR: number = offsetOf(LGUEST_BLOCK_PAGE, "sector");
export const BLK_BYTES: number = offsetOf(LGUEST_BLOCK_PAGE, "bytes");
export const BLK_RESULT: number = offsetOf(LGUEST_BLOCK_PAGE, "result");
export const BLK_NUM_SECTORS: number = offsetOf(LGUEST_BLOCK_PAGE, "num_sectors");

/** Little-endian scalar access to a byte array (no bounds policy of its own). */
export class LeView {
  readonly bytes: Uint8Array;
  readonly #dv: DataView;

  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
    this.#dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  u8(addr: number): number {
    return this.bytes[addr];
  }
  u16(addr: number): number {
    return this.#dv.getUint16(addr, true);
  }
  u32(addr: number): number {
    return this.#dv.getUint32(addr, true);
  }
  i32(addr: number): number {
    return this.#dv.getInt32(addr, true);
  }
  setU8(addr: number, v: number): void {
    this.bytes[addr] = v;
  }
  setU16(addr: number, v: number): void {
    this.#dv.setUint16(addr, v, true);
  }
  setU32(addr: number, v: number): void {
    this.#dv.setUint32(addr, v >>> 0, true);
  }
  setI32(addr: number, v: number): void {
    this.#dv.setInt32(addr, v | 0, true);
  }
  setU64(addr: number, v: number): void {
    this.#dv.setBigUint64(addr, BigInt(v), true);
  }
}

/** A decoded `struct lguest_dma`: sections up to the first zero length. */
export interface DmaDesc {
  usedLen: number;
  addr: number[];
  len: number[];
}

/** Decode the lguest_dma at `at` (the caller has checked the 100 bytes). */
export function readDma(v: LeView, at: number): DmaDesc {
  const addr: number[] = [];
  const len: number[] = [];
  for (let i = 0; i < LGUEST_MAX_DMA_SECTIONS; i++) {
    const l = v.u16(at + DMA_LEN + 2 * i);
    if (l === 0) break;
    len.push(l);
    addr.push(v.u32(at + DMA_ADDR + 4 * i));
  }
  return { usedLen: v.u32(at + DMA_USED_LEN), addr, len };
}

/** Encode a lguest_dma at `at`; unused sections are zeroed. */
export function writeDma(v: LeView, at: number, d: DmaDesc): void {
  if (d.addr.length !== d.len.length || d.len.length > LGUEST_MAX_DMA_SECTIONS) {
    throw new RangeError("abi: lguest_dma takes at most 16 addr/len pairs");
  }
  v.setU32(at + DMA_USED_LEN, d.usedLen);
  for (let i = 0; i < LGUEST_MAX_DMA_SECTIONS; i++) {
    v.setU32(at + DMA_ADDR + 4 * i, d.addr[i] ?? 0);
    v.setU16(at + DMA_LEN + 2 * i, d.len[i] ?? 0);
  }
}

/** A decoded device descriptor. */
export interface DeviceDesc {
  type: number;
  features: number;
  status: number;
  numPages: number;
  pfn: number;
}

/** Decode the device descriptor at `at`. */
export function readDesc(v: LeView, at: number): DeviceDesc {
  return {
    type: v.u16(at + DESC_TYPE),
    features: v.u16(at + DESC_FEATURES),
    status: v.u16(at + DESC_STATUS),
    numPages: v.u16(at + DESC_NUM_PAGES),
    pfn: v.u32(at + DESC_PFN),
  };
}

/** Encode a device descriptor at `at`. */
export function writeDesc(v: LeView, at: number, d: DeviceDesc): void {
  v.setU16(at + DESC_TYPE, d.type);
  v.setU16(at + DESC_FEATURES, d.features);
  v.setU16(at + DESC_STATUS, d.status);
  v.setU16(at + DESC_NUM_PAGES, d.numPages);
  v.setU32(at + DESC_PFN, d.pfn);
}
