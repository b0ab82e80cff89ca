/**
 * i386 layouts of every structure of the lguest ABI, as tables (protocol §2).
 *
 * The tables are the single source of truth: the typed readers in
 * `structs.ts` use them, and `abi/layout_test.ts` turns them into C
 * `_Static_assert`s that gcc checks against the seed header.
 *
 * @module
 */

/** A scalar kind with its i386 size. */
export type Kind = "u8" | "u16" | "u32" | "i32" | "u64";

/** Byte sizes of the scalar kinds on i386. */
export const KIND_SIZE: Readonly<Record<Kind, number>> = {
  u8: 1,
  u16: 2,
  u32: 4,
  i32: 4,
  u64: 8,
};

/** One field: its offset, element kind and element count (1 for scalars). */
export interface Field {
  readonly name: string;
  readonly offset: number;
  readonly kind: Kind;
  readonly count: number;
  /** Path of the field in C, where it differs from `name` (nested structs). */
  readonly c?: string;
}

/** A structure: C name, total size, alignment and fields. */
export interface Layout {
  readonly c: string;
  readonly size: number;
  readonly align: number;
  readonly fields: readonly Field[];
}

// The fields are object literals, not calls of a helper: a function called once a field (32
// times at every start) ran hot enough to be queued for V8's baseline compiler, whose first
// batch then compiled before the first byte (docs/performance.md, boot).

/** `struct lguest_dma`: 100 bytes (§2.1). */
export const LGUEST_DMA: Layout = {
  c: "struct lguest_dma",
  size: 100,
  align: 4,
  fields: [
    { name: "used_len", offset: 0, kind: "u32", count: 1 },
    { name: "addr", offset: 4, kind: "u32", count: 16 },
    { name: "len", offset: 68, kind: "u16", count: 16 },
  ],
};

/** `struct lguest_block_page`: 20 bytes (§2.2). */
export const LGUEST_BLOCK_PAGE: Layout = {
  c: "struct lguest_block_page",
  size: 20,
  align: 4,
  fields: [
    { name: "type", offset: 0, kind: "i32", count: 1 },
    { name: "sector", offset: 4, kind: "u32", count: 1 },
    { name: "bytes", offset: 8, kind: "u32", count: 1 },
    { name: "result", offset: 12, kind: "i32", count: 1 },
    { name: "num_sectors", offset: 16, kind: "u32", count: 1 },
  ],
};

/** `struct lguest_net`: 6 bytes, alignment 1 (§2.3). */
export const LGUEST_NET: Layout = {
  c: "struct lguest_net",
  size: 6,
  align: 1,
  fields: [
    { name: "mac", offset: 0, kind: "u8", count: 6 },
  ],
};

/** `struct lguest_device_desc`: 12 bytes (§2.4). */
export const LGUEST_DEVICE_DESC: Layout = {
  c: "struct lguest_device_desc",
  size: 12,
  align: 4,
  fields: [
    { name: "type", offset: 0, kind: "u16", count: 1 },
    { name: "features", offset: 2, kind: "u16", count: 1 },
    { name: "status", offset: 4, kind: "u16", count: 1 },
    { name: "num_pages", offset: 6, kind: "u16", count: 1 },
    { name: "pfn", offset: 8, kind: "u32", count: 1 },
  ],
};

/** `struct hcall_ring` entry of lguest_data: 16 bytes, note the order. */
export const HCALL_RING: Layout = {
  c: "struct hcall_ring",
  size: 16,
  align: 4,
  fields: [
    { name: "eax", offset: 0, kind: "u32", count: 1 },
    { name: "edx", offset: 4, kind: "u32", count: 1 },
    { name: "ebx", offset: 8, kind: "u32", count: 1 },
    { name: "ecx", offset: 12, kind: "u32", count: 1 },
  ],
};

/** `struct lguest_data`: 1128 bytes (§2.5). */
export const LGUEST_DATA: Layout = {
  c: "struct lguest_data",
  size: 1128,
  align: 4,
  fields: [
    { name: "irq_enabled", offset: 0, kind: "u32", count: 1 },
    { name: "blocked_interrupts", offset: 4, kind: "u32", count: 1 },
    { name: "cr2", offset: 8, kind: "u32", count: 1 },
    { name: "time_sec", offset: 12, kind: "i32", count: 1, c: "time.tv_sec" },
    { name: "time_nsec", offset: 16, kind: "i32", count: 1, c: "time.tv_nsec" },
    { name: "hcall_status", offset: 20, kind: "u8", count: 64 },
    { name: "hcalls", offset: 84, kind: "u32", count: 256 },
    { name: "reserve_mem", offset: 1108, kind: "u32", count: 1 },
    { name: "guestid", offset: 1112, kind: "u16", count: 1 },
    { name: "tsc_khz", offset: 1116, kind: "u32", count: 1 },
    { name: "noirq_start", offset: 1120, kind: "u32", count: 1 },
    { name: "noirq_end", offset: 1124, kind: "u32", count: 1 },
  ],
};

/** One e820 map entry as the Launcher writes it (packed, 20 bytes). */
export const E820_ENTRY: Layout = {
  c: "struct e820entry",
  size: 20,
  align: 1,
  fields: [
    { name: "addr", offset: 0, kind: "u64", count: 1 },
    { name: "size", offset: 8, kind: "u64", count: 1 },
    { name: "type", offset: 16, kind: "u32", count: 1 },
  ],
};

/** Every layout, for table-driven checks. */
export const LAYOUTS: readonly Layout[] = [
  LGUEST_DMA,
  LGUEST_BLOCK_PAGE,
  LGUEST_NET,
  LGUEST_DEVICE_DESC,
  HCALL_RING,
  LGUEST_DATA,
  E820_ENTRY,
];

/** The offset of a named field; throws on a typo (a programming error). */
export function offsetOf(layout: Layout, name: string): number {
  // A short loop, its error elsewhere: called ~25 times at start-up, this function is queued for
  // V8's baseline compiler, and its size counts towards the batch (docs/performance.md, boot).
  const fields = layout.fields;
  for (let i = 0; i < fields.length; i++) if (fields[i].name === name) return fields[i].offset;
  return noField(layout, name);
}

function noField(layout: Layout, name: string): never {
  throw new Error(`abi: ${layout.c} has no field ${name}`);
}
