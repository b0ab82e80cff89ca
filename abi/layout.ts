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

// Written `(function f() {...}).bind(null)`: compiled with the module, not again at every
// start on its first call (Deno's emit keeps these parentheses; docs/performance.md, boot).
const f = (function f(name: string, offset: number, kind: Kind, count = 1, c?: string): Field {
  return { name, offset, kind, count, c };
}).bind(null);

/** `struct lguest_dma`: 100 bytes (§2.1). */
export const LGUEST_DMA: Layout = {
  c: "struct lguest_dma",
  size: 100,
  align: 4,
  fields: [f("used_len", 0, "u32"), f("addr", 4, "u32", 16), f("len", 68, "u16", 16)],
};

/** `struct lguest_block_page`: 20 bytes (§2.2). */
export const LGUEST_BLOCK_PAGE: Layout = {
  c: "struct lguest_block_page",
  size: 20,
  align: 4,
  fields: [
    f("type", 0, "i32"),
    f("sector", 4, "u32"),
    f("bytes", 8, "u32"),
    f("result", 12, "i32"),
    f("num_sectors", 16, "u32"),
  ],
};

/** `struct lguest_net`: 6 bytes, alignment 1 (§2.3). */
export const LGUEST_NET: Layout = {
  c: "struct lguest_net",
  size: 6,
  align: 1,
  fields: [f("mac", 0, "u8", 6)],
};

/** `struct lguest_device_desc`: 12 bytes (§2.4). */
export const LGUEST_DEVICE_DESC: Layout = {
  c: "struct lguest_device_desc",
  size: 12,
  align: 4,
  fields: [
    f("type", 0, "u16"),
    f("features", 2, "u16"),
    f("status", 4, "u16"),
    f("num_pages", 6, "u16"),
    f("pfn", 8, "u32"),
  ],
};

/** `struct hcall_ring` entry of lguest_data: 16 bytes, note the order. */
export const HCALL_RING: Layout = {
  c: "struct hcall_ring",
  size: 16,
  align: 4,
  fields: [f("eax", 0, "u32"), f("edx", 4, "u32"), f("ebx", 8, "u32"), f("ecx", 12, "u32")],
};

/** `struct lguest_data`: 1128 bytes (§2.5). */
export const LGUEST_DATA: Layout = {
  c: "struct lguest_data",
  size: 1128,
  align: 4,
  fields: [
    f("irq_enabled", 0, "u32"),
    f("blocked_interrupts", 4, "u32", 1),
    f("cr2", 8, "u32"),
    f("time_sec", 12, "i32", 1, "time.tv_sec"),
    f("time_nsec", 16, "i32", 1, "time.tv_nsec"),
    f("hcall_status", 20, "u8", 64),
    f("hcalls", 84, "u32", 256),
    f("reserve_mem", 1108, "u32"),
    f("guestid", 1112, "u16"),
    f("tsc_khz", 1116, "u32"),
    f("noirq_start", 1120, "u32"),
    f("noirq_end", 1124, "u32"),
  ],
};

/** One e820 map entry as the Launcher writes it (packed, 20 bytes). */
export const E820_ENTRY: Layout = {
  c: "struct e820entry",
  size: 20,
  align: 1,
  fields: [f("addr", 0, "u64"), f("size", 8, "u64"), f("type", 16, "u32")],
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
  const field = layout.fields.find((x) => x.name === name);
  if (!field) throw new Error(`abi: ${layout.c} has no field ${name}`);
  return field.offset;
}
