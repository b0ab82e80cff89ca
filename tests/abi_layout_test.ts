/**
 * The ABI tables of `abi/` checked against the C compiler (protocol §1, §2).
 *
 * Every layout of `abi/layout.ts` becomes `_Static_assert`s on sizeof,
 * _Alignof, offsetof, field size and signedness, and every `#define` and
 * enum member of the seed header (`abi/lguest_user.h`, a verbatim copy of
 * the seed) is compared with `abi/constants.ts`. gcc compiles that for
 * i386 (`-m32 -ffreestanding -fsyntax-only`). `struct lguest_data` is not in
 * the seed: its C definition below is written from protocol §2.5.
 *
 * Without gcc, or without a working `-m32`, the compiler tests are skipped
 * with a printed reason; the pure TypeScript checks still run.
 *
 * @module
 */

import assert from "node:assert/strict";
import * as C from "../abi/constants.ts";
import { KIND_SIZE, type Layout, LAYOUTS, LGUEST_DATA, LGUEST_DMA } from "../abi/layout.ts";
import * as S from "../abi/structs.ts";

const ABI_DIR = new URL("../abi/", import.meta.url).pathname;
const HEADER = "lguest_user.h";

/** Fields whose table entry flattens an array of structs into scalars. */
const FLATTENED: Record<string, string> = {
  "struct lguest_data.hcalls": "struct hcall_ring",
};

/** Fields that are C arrays of one element (the table gives them count 1). */
const ARRAYS_OF_ONE = new Set(["struct lguest_data.blocked_interrupts"]);

/** Padding holes each layout is allowed to have: [offset, length]. */
const PADDING: Record<string, [number, number][]> = {
  "struct lguest_data": [[1114, 2]],
};

/** The C prelude: the seed's typedefs, the seed, and what is not in it. */
const PRELUDE = `
typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;
#include "${HEADER}"

/* Protocol §2.5 (include/linux/lguest.h, 2.6.23). */
#define LHCALL_RING_SIZE 64
#define LGUEST_IRQS 32
struct hcall_ring { u32 eax, edx, ebx, ecx; };
struct timespec { long tv_sec; long tv_nsec; };
struct lguest_data {
  unsigned int irq_enabled;
  unsigned long blocked_interrupts[LGUEST_IRQS / 32];
  unsigned long cr2;
  struct timespec time;
  u8 hcall_status[LHCALL_RING_SIZE];
  struct hcall_ring hcalls[LHCALL_RING_SIZE];
  unsigned long reserve_mem;
  u16 guestid;
  u32 tsc_khz;
  unsigned long noirq_start;
  unsigned long noirq_end;
};

/* include/asm-i386/e820.h */
struct e820entry { u64 addr; u64 size; u32 type; } __attribute__((packed));

_Static_assert(sizeof(long) == 4 && sizeof(void *) == 4, "not ILP32: -m32 did not take");
#define OFF(T, f) __builtin_offsetof(T, f)
#define FSIZE(T, f) sizeof(((T *)0)->f)
#define SIGNED(x) ((__typeof__(x))-1 < (__typeof__(x))0)
`;

/** `_Static_assert`s for one layout table. */
function layoutAsserts(l: Layout): string[] {
  const T = l.c;
  const out = [
    `_Static_assert(sizeof(${T}) == ${l.size}, "${T}: size ${l.size}");`,
    `_Static_assert(_Alignof(${T}) == ${l.align}, "${T}: align ${l.align}");`,
  ];
  for (const f of l.fields) {
    const path = f.c ?? f.name;
    const what = `${T}.${path}`;
    const size = KIND_SIZE[f.kind];
    out.push(
      `_Static_assert(OFF(${T}, ${path}) == ${f.offset}, "${what}: offset ${f.offset}");`,
      `_Static_assert(FSIZE(${T}, ${path}) == ${
        size * f.count
      }, "${what}: ${f.count} x ${f.kind}");`,
    );
    const flat = FLATTENED[`${T}.${f.name}`];
    const isArray = f.count > 1 || ARRAYS_OF_ONE.has(`${T}.${f.name}`);
    const elem = `((${T} *)0)->${path}${isArray ? "[0]" : ""}`;
    if (flat !== undefined) {
      out.push(`_Static_assert(sizeof(${elem}) == sizeof(${flat}), "${what}: elements");`);
      continue;
    }
    out.push(
      `_Static_assert(sizeof(${elem}) == ${size}, "${what}: element is ${f.kind}");`,
      `_Static_assert(SIGNED(${elem}) == ${
        f.kind === "i32" ? 1 : 0
      }, "${what}: signedness of ${f.kind}");`,
    );
  }
  return out;
}

/** The `#define NAME VALUE` names and enum members of the seed header. */
function seedConstants(header: string): { defines: string[]; enums: string[] } {
  const defines = [...header.matchAll(/^#define[ \t]+(\w+)[ \t]+\S/gm)].map((m) => m[1]);
  const enums: string[] = [];
  for (const m of header.matchAll(/enum\s+\w+\s*\{([^}]*)\}/g)) {
    const body = m[1].replace(/\/\*[\s\S]*?\*\//g, "");
    for (const id of body.matchAll(/\b([A-Z_][A-Z0-9_]*)\b/g)) enums.push(id[1]);
  }
  return { defines, enums };
}

/** `_Static_assert`s comparing the seed's constants with abi/constants.ts. */
function constantAsserts(header: string, override: Record<string, number> = {}): string[] {
  const table = { ...(C as unknown as Record<string, unknown>), ...override };
  const { defines, enums } = seedConstants(header);
  const out: string[] = [];
  for (const name of [...defines, ...enums]) {
    const v = table[name];
    if (typeof v !== "number") throw new Error(`abi/constants.ts lacks seed constant ${name}`);
    out.push(`_Static_assert((${name}) == ${v}, "${name} == ${v}");`);
  }
  out.push(
    `_Static_assert(${C.LGUEST_NET_SLOTS} == 4096 / sizeof(struct lguest_net), "LGUEST_NET_SLOTS");`,
    `_Static_assert(${S.HCALL_RING_ENTRY} == sizeof(struct hcall_ring), "HCALL_RING_ENTRY");`,
    `_Static_assert(${C.LHCALL_RING_SIZE} == LHCALL_RING_SIZE, "LHCALL_RING_SIZE");`,
  );
  return out;
}

/** The whole C file for a set of layouts. */
function cSource(
  layouts: readonly Layout[],
  header: string,
  override?: Record<string, number>,
): string {
  return [PRELUDE, ...constantAsserts(header, override), ...layouts.flatMap(layoutAsserts), ""]
    .join("\n");
}

/** gcc -m32 -ffreestanding -fsyntax-only on `src`, with abi/ on the include path. */
async function compile(src: string): Promise<{ ok: boolean; stderr: string }> {
  const file = await Deno.makeTempFile({ suffix: ".c" });
  try {
    await Deno.writeTextFile(file, src);
    const out = await new Deno.Command("gcc", {
      args: [
        "-m32",
        "-ffreestanding",
        "-fsyntax-only",
        "-std=gnu11",
        "-Werror",
        "-I",
        ABI_DIR,
        file,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    return { ok: out.success, stderr: new TextDecoder().decode(out.stderr) };
  } finally {
    await Deno.remove(file);
  }
}

/** Why the compiler tests cannot run here, or null if they can. */
async function gccProblem(): Promise<string | null> {
  try {
    const r = await compile(
      `_Static_assert(sizeof(long) == 4 && sizeof(void *) == 4, "ILP32");\nint x;\n`,
    );
    return r.ok ? null : `gcc -m32 does not work here: ${r.stderr.trim().split("\n")[0]}`;
  } catch (e) {
    return `gcc is not available: ${e instanceof Error ? e.message : String(e)}`;
  }
}

const skipReason = await gccProblem();
if (skipReason !== null) console.log(`abi_layout_test: skipping gcc checks: ${skipReason}`);
const header = await Deno.readTextFile(ABI_DIR + HEADER);

Deno.test({
  name: "§2 every abi/layout.ts table matches gcc -m32 (sizeof, offsetof, signedness)",
  ignore: skipReason !== null,
  async fn() {
    const r = await compile(cSource(LAYOUTS, header));
    assert.ok(r.ok, `gcc rejected the layout tables:\n${r.stderr}`);
  },
});

Deno.test({
  name: "§2 a deliberately wrong table entry fails the gcc check",
  ignore: skipReason !== null,
  async fn() {
    const wrongDma: Layout = {
      ...LGUEST_DMA,
      fields: LGUEST_DMA.fields.map((f) => f.name === "len" ? { ...f, offset: 66 } : f),
    };
    const r1 = await compile(cSource([wrongDma], header));
    assert.ok(!r1.ok, "gcc accepted lguest_dma.len at 66");
    assert.match(r1.stderr, /struct lguest_dma\.len: offset 66/);

    const wrongData: Layout = {
      ...LGUEST_DATA,
      fields: LGUEST_DATA.fields.map((f) => f.name === "guestid" ? { ...f, kind: "u32" } : f),
    };
    const r2 = await compile(cSource([wrongData], header));
    assert.ok(!r2.ok, "gcc accepted lguest_data.guestid as u32");
    assert.match(r2.stderr, /guestid: 1 x u32/);

    const wrongSign: Layout = {
      ...LGUEST_DMA,
      fields: LGUEST_DMA.fields.map((f) => f.name === "used_len" ? { ...f, kind: "i32" } : f),
    };
    const r3 = await compile(cSource([wrongSign], header));
    assert.ok(!r3.ok, "gcc accepted lguest_dma.used_len as signed");
    assert.match(r3.stderr, /used_len: signedness of i32/);

    const r4 = await compile(cSource([], header, { LGUEST_MAX_DMA: 31 }));
    assert.ok(!r4.ok, "gcc accepted LGUEST_MAX_DMA 31");
    assert.match(r4.stderr, /LGUEST_MAX_DMA == 31/);
  },
});

Deno.test("§1 abi/lguest_user.h carries every seed constant, and constants.ts has each", () => {
  const { defines, enums } = seedConstants(header);
  assert.deepEqual(enums, ["LHREQ_INITIALIZE", "LHREQ_GETDMA", "LHREQ_IRQ", "LHREQ_BREAK"]);
  for (const name of ["LGUEST_MAX_DMA", "LGUEST_MAX_DMA_SECTIONS", "LGUEST_MAX_DEVICES"]) {
    assert.ok(defines.includes(name), name);
  }
  // Throws if constants.ts lacks one of them.
  assert.ok(constantAsserts(header).length >= defines.length + enums.length);
});

Deno.test("§2 layout tables: fields in bounds, no overlap, only the known padding", () => {
  for (const l of LAYOUTS) {
    const spans = l.fields
      .map((f) => [f.offset, KIND_SIZE[f.kind] * f.count, f.name] as const)
      .sort((a, b) => a[0] - b[0]);
    const holes: [number, number][] = [];
    let at = 0;
    for (const [off, len, name] of spans) {
      assert.ok(off >= at, `${l.c}.${name} overlaps the field before it`);
      if (off > at) holes.push([at, off - at]);
      at = off + len;
    }
    assert.ok(at <= l.size, `${l.c}: fields run past the size`);
    if (at < l.size) holes.push([at, l.size - at]);
    assert.deepEqual(holes, PADDING[l.c] ?? [], `${l.c}: padding`);
    for (const f of l.fields) assert.equal(f.offset % Math.min(KIND_SIZE[f.kind], l.align), 0);
  }
});

Deno.test("§2 derived offsets in structs.ts follow the tables", () => {
  assert.deepEqual([S.DMA_SIZE, S.DMA_USED_LEN, S.DMA_ADDR, S.DMA_LEN], [100, 0, 4, 68]);
  assert.deepEqual(
    [S.LD_SIZE, S.LD_IRQ_ENABLED, S.LD_BLOCKED_INTERRUPTS, S.LD_CR2, S.LD_TIME_SEC, S.LD_TIME_NSEC],
    [1128, 0, 4, 8, 12, 16],
  );
  assert.deepEqual(
    [S.LD_HCALL_STATUS, S.LD_HCALLS, S.LD_RESERVE_MEM, S.LD_GUESTID, S.LD_TSC_KHZ],
    [20, 84, 1108, 1112, 1116],
  );
  assert.deepEqual([S.LD_NOIRQ_START, S.LD_NOIRQ_END, S.HCALL_RING_ENTRY], [1120, 1124, 16]);
  assert.deepEqual(
    [S.DESC_SIZE, S.DESC_TYPE, S.DESC_FEATURES, S.DESC_STATUS, S.DESC_NUM_PAGES, S.DESC_PFN],
    [12, 0, 2, 4, 6, 8],
  );
  assert.deepEqual(
    [S.BLK_TYPE, S.BLK_SECTOR, S.BLK_BYTES, S.BLK_RESULT, S.BLK_NUM_SECTORS],
    [0, 4, 8, 12, 16],
  );
});

Deno.test("§1 constants not in the seed match the protocol tables", () => {
  const spec: Record<string, number> = {
    LGUEST_TRAP_ENTRY: 0x1f,
    LHCALL_RING_SIZE: 64,
    LGUEST_IRQS: 32,
    LG_CLOCK_MIN_DELTA: 100,
    MAX_LGUEST_GUESTS: 16,
    SWITCHER_ADDR: 0xffc00000,
    LGUEST_RESERVE_MEM: 4 * 1024 * 1024,
    FIRST_EXTERNAL_VECTOR: 0x20,
    SYSCALL_VECTOR: 0x80,
    X86_EFLAGS_IF: 0x200,
    KERNEL_CS: 0x60,
    KERNEL_DS: 0x68,
    GDT_ENTRIES: 32,
    GDT_ENTRY_TLS_MIN: 6,
    GDT_ENTRY_TLS_ENTRIES: 3,
    LGUEST_NET_SLOTS: 682,
    BOOT_E820NR: 0x1e8,
    BOOT_E820MAP: 0x2d0,
    BOOT_LOADER_TYPE: 0x210,
    BOOT_INITRD_ADDR: 0x218,
    BOOT_INITRD_SIZE: 0x21c,
    BOOT_CMDLINE_PTR: 0x228,
    BOOT_HARDWARE_SUBARCH: 0x23c,
    BOOT_CMDLINE_ADDR: 0x1000,
    // §3.2: 11 is unassigned.
    LHCALL_FLUSH_ASYNC: 0,
    LHCALL_LGUEST_INIT: 1,
    LHCALL_CRASH: 2,
    LHCALL_LOAD_GDT: 3,
    LHCALL_NEW_PGTABLE: 4,
    LHCALL_FLUSH_TLB: 5,
    LHCALL_LOAD_IDT_ENTRY: 6,
    LHCALL_SET_STACK: 7,
    LHCALL_TS: 8,
    LHCALL_SET_CLOCKEVENT: 9,
    LHCALL_HALT: 10,
    LHCALL_BIND_DMA: 12,
    LHCALL_SEND_DMA: 13,
    LHCALL_SET_PTE: 14,
    LHCALL_SET_PMD: 15,
    LHCALL_LOAD_TLS: 16,
  };
  const table = C as unknown as Record<string, unknown>;
  for (const [name, v] of Object.entries(spec)) assert.equal(table[name], v, name);
  assert.equal(C.HCALL_NAMES[11], undefined);
  for (const [name, v] of Object.entries(spec)) {
    if (name.startsWith("LHCALL_") && name !== "LHCALL_RING_SIZE") {
      assert.equal(C.HCALL_NAMES[v], name.slice("LHCALL_".length), name);
    }
  }
});
