/**
 * Host: the hypercall dispatcher (protocol §3), as 2.6.23's hypercalls.c.
 *
 * Registers: EAX = call number, EDX, EBX, ECX = arguments; EAX carries the
 * result (only BIND_DMA sets it). The first call must be LGUEST_INIT; the
 * async ring is drained before each synchronous call. Every invalid call
 * kills the guest with a reason naming the hypercall and the value.
 *
 * @module
 */

import {
  FIRST_EXTERNAL_VECTOR,
  GDT_ENTRIES,
  GDT_ENTRY_TLS_ENTRIES,
  GDT_ENTRY_TLS_MIN,
  GUEST_PL,
  HCALL_NAMES,
  IDT_ENTRIES,
  LGUEST_CRASH_EXIT,
  LGUEST_CRASH_HINT,
  LGUEST_RESERVE_MEM,
  LGUEST_TRAP_ENTRY,
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
  MAX_STACK_PAGES,
  SYSCALL_VECTOR,
} from "../abi/constants.ts";
import {
  HCALL_RING_ENTRY,
  LD_GUESTID,
  LD_HCALL_STATUS,
  LD_HCALLS,
  LD_NOIRQ_END,
  LD_NOIRQ_START,
  LD_RESERVE_MEM,
  LD_SIZE,
  LD_TSC_KHZ,
} from "../abi/structs.ts";
import type { DmaEngine } from "./dma.ts";
import type { Guest } from "./guest.ts";
import { writeTime } from "./interrupts.ts";
import { hex } from "./memory.ts";
import { nowMs } from "../sys/clock.ts";

/** Bytes of the CRASH message the Host reads (NUL forced at the last). */
const CRASH_MSG = 128;
/** Page-table roots the Host caches (guest_new_pagetable). */
const PGDIR_CACHE = 4;

/** The name of hypercall `nr`, for messages. */
export function hcallName(nr: number): string {
  return HCALL_NAMES[nr] ?? `hypercall ${nr >>> 0}`;
}

/**
 * do_hypercalls(): run the trapped synchronous call in `g.regs`, after the
 * async ring. If an async call leaves a DMA pending for the Launcher, the
 * synchronous call stays trapped and runs on the next resume (as the
 * original left trapnum at 0x1F).
 */
export function doHypercalls(g: Guest, dma: DmaEngine): void {
  const r = g.regs;
  if (g.lguestData === 0) {
    initialize(g);
    r.trapped = false;
    return;
  }
  // The ring is usually empty: one byte read decides (hot path).
  if (g.hcallStatus[g.nextHcall] !== 0xff) doAsyncHcalls(g, dma);
  if (g.pendingDma === null && g.retryDma === null && g.dead === null) {
    r.eax = doHcall(g, dma, r.eax >>> 0, r.edx >>> 0, r.ebx >>> 0, r.ecx >>> 0);
    r.trapped = false;
  }
}

/** LHCALL_LGUEST_INIT: must be the first hypercall (§3.2). */
function initialize(g: Guest): void {
  const r = g.regs;
  if (r.eax >>> 0 !== LHCALL_LGUEST_INIT) {
    g.kill(`hypercall ${r.eax >>> 0} before LGUEST_INIT`);
    return;
  }
  const ld = r.edx >>> 0;
  if (!g.mem.ok(ld, LD_SIZE)) {
    g.kill(`LGUEST_INIT: bad guest page ${hex(ld)}`);
    return;
  }
  g.lguestData = ld;
  g.hcallStatus = g.mem.bytes.subarray(
    ld + LD_HCALL_STATUS,
    ld + LD_HCALL_STATUS + LHCALL_RING_SIZE,
  );
  g.noirqStart = g.mem.u32(ld + LD_NOIRQ_START);
  g.noirqEnd = g.mem.u32(ld + LD_NOIRQ_END);
  g.mem.setU32(ld + LD_RESERVE_MEM, LGUEST_RESERVE_MEM);
  g.mem.setU32(ld + LD_TSC_KHZ, g.tscKhz); // the engine's tick rate (wasm: rdtsc in ns)
  g.mem.setU16(ld + LD_GUESTID, g.id);
  writeTime(g);
  g.pgdirs.length = 0; // guest_pagetable_clear_all
}

/** do_async_hcalls() (§3.3): run ready ring entries in order, at most 64. */
function doAsyncHcalls(g: Guest, dma: DmaEngine): void {
  const status = g.lguestData + LD_HCALL_STATUS;
  const m = g.mem;
  for (let n = 0; n < LHCALL_RING_SIZE; n++) {
    const i = g.nextHcall;
    if (m.u8(status + i) === 0xff) return;
    const e = g.lguestData + LD_HCALLS + i * HCALL_RING_ENTRY;
    g.nextHcall = (i + 1) % LHCALL_RING_SIZE;
    g.counters.asyncHypercalls++;
    doHcall(g, dma, m.u32(e), m.u32(e + 4), m.u32(e + 8), m.u32(e + 12));
    m.setU8(status + i, 0xff);
    if (g.pendingDma !== null || g.retryDma !== null || g.dead !== null) return;
  }
}

/**
 * do_hcall(): one hypercall; returns the new EAX (the call number, or
 * BIND_DMA's result).
 */
export function doHcall(
  g: Guest,
  dma: DmaEngine,
  eax: number,
  edx: number,
  ebx: number,
  ecx: number,
): number {
  // FLUSH_ASYNC (the NOP) and HALT are the hot calls; keep them small.
  if (eax === LHCALL_FLUSH_ASYNC) return eax;
  return doHcallSlow(g, dma, eax, edx, ebx, ecx);
}

function doHcallSlow(
  g: Guest,
  dma: DmaEngine,
  eax: number,
  edx: number,
  ebx: number,
  ecx: number,
): number {
  switch (eax) {
    case LHCALL_FLUSH_ASYNC:
      break; // trapping in drained the ring already
    case LHCALL_LGUEST_INIT:
      g.kill("LGUEST_INIT: already have lguest_data");
      break;
    case LHCALL_CRASH:
      if (!g.mem.ok(edx, CRASH_MSG)) {
        g.kill(`CRASH: bad read address ${hex(edx)} len ${CRASH_MSG}`);
      } else if (ebx === LGUEST_CRASH_HINT) {
        // Extension: a hint for the user, no death (the launcher words and bounds it).
        g.hint(ecx, g.mem.cstring(edx, CRASH_MSG - 1));
      } else {
        // Extension: EBX = LGUEST_CRASH_EXIT marks a deliberate exit with status ECX.
        if (ebx === LGUEST_CRASH_EXIT && g.dead === null) g.exitStatus = ecx & 0xff;
        g.kill(`CRASH: ${g.mem.cstring(edx, CRASH_MSG - 1)}`);
      }
      break;
    case LHCALL_FLUSH_TLB:
      if (edx !== 0) g.pgdirs.length = 0; // no shadow tables to drop in wasm
      break;
    case LHCALL_BIND_DMA:
      if (g.shared.length !== 0) syncShared(g);
      return dma.bind(g, edx, ebx, ecx);
    case LHCALL_SEND_DMA:
      if (g.shared.length !== 0) syncShared(g);
      dma.send(g, edx, ebx);
      break;
    case LHCALL_LOAD_GDT:
      loadGdt(g, edx, ebx);
      break;
    case LHCALL_LOAD_IDT_ENTRY:
      loadIdtEntry(g, edx, ebx, ecx);
      break;
    case LHCALL_NEW_PGTABLE:
      if (!g.pgdirs.includes(edx)) {
        g.pgdirs.unshift(edx);
        g.pgdirs.length = Math.min(g.pgdirs.length, PGDIR_CACHE);
      }
      break;
    case LHCALL_SET_STACK:
      setStack(g, edx, ebx, ecx);
      break;
    case LHCALL_SET_PTE:
    case LHCALL_SET_PMD:
      break; // page-table updates: no MMU to shadow under the wasm engine
    case LHCALL_LOAD_TLS:
      if (!g.mem.ok(edx, 8 * GDT_ENTRY_TLS_ENTRIES)) {
        g.kill(`LOAD_TLS: bad read address ${hex(edx)} len ${8 * GDT_ENTRY_TLS_ENTRIES}`);
      } else {
        for (let i = 0; i < 2 * GDT_ENTRY_TLS_ENTRIES; i++) {
          g.gdt[2 * GDT_ENTRY_TLS_MIN + i] = g.mem.u32(edx + 4 * i);
        }
      }
      break;
    case LHCALL_SET_CLOCKEVENT:
      setClockevent(g, edx);
      break;
    case LHCALL_TS:
      g.ts = edx;
      break;
    case LHCALL_HALT:
      if (g.shared.length !== 0) syncShared(g);
      g.halted = true;
      break;
    default:
      g.kill(`Bad hypercall ${eax >>> 0}`);
  }
  return eax;
}

/** Bring the guest's copies of shared regions up to date (see SharedRegion.sync). */
export function syncShared(g: Guest): void {
  for (const r of g.shared) r.sync?.(g);
}

/** LOAD_GDT: more than 32 entries kills (the original then overflowed). */
function loadGdt(g: Guest, table: number, num: number): void {
  if (num > GDT_ENTRIES) {
    g.kill(`LOAD_GDT: too many gdt entries ${num}`);
    return;
  }
  if (!g.mem.ok(table, num * 8)) {
    g.kill(`LOAD_GDT: bad read address ${hex(table)} len ${num * 8}`);
    return;
  }
  for (let i = 0; i < 2 * num; i++) g.gdt[i] = g.mem.u32(table + 4 * i);
}

/**
 * LOAD_IDT_ENTRY (load_guest_idt_entry): vectors 2, 8, 15 and 31 are
 * ignored; 0..63 and 0x80 are stored; a present gate must be an interrupt
 * (0xE) or trap (0xF) gate, anything else kills.
 */
function loadIdtEntry(g: Guest, num: number, lo: number, hi: number): void {
  if (num === 2 || num === 8 || num === 15 || num === LGUEST_TRAP_ENTRY) return;
  let at: Uint32Array;
  let idx: number;
  if (num < IDT_ENTRIES) {
    at = g.idt;
    idx = 2 * num;
  } else if (num === SYSCALL_VECTOR) {
    at = g.syscallIdt;
    idx = 0;
  } else {
    return;
  }
  if ((hi & 0x8000) === 0) {
    at[idx] = at[idx + 1] = 0;
    return;
  }
  const type = (hi >>> 8) & 0xf;
  if (type !== 0xe && type !== 0xf) {
    g.kill(`LOAD_IDT_ENTRY: bad IDT type ${type} for vector ${num}`);
    return;
  }
  at[idx] = (((0x60 | GUEST_PL) << 16) | (lo & 0xffff)) >>> 0;
  at[idx + 1] = (hi & 0xffffef00) >>> 0;
}

/** SET_STACK: the segment must have RPL 1 and at most 2 pages. */
function setStack(g: Guest, seg: number, esp: number, pages: number): void {
  if ((seg & 3) !== GUEST_PL) {
    g.kill(`SET_STACK: bad stack segment ${seg}`);
    return;
  }
  if (pages > MAX_STACK_PAGES) {
    g.kill(`SET_STACK: bad stack pages ${pages}`);
    return;
  }
  g.stack = { ss: seg, esp, pages };
}

/** SET_CLOCKEVENT: one-shot timer raising IRQ 0; 0 cancels. */
function setClockevent(g: Guest, deltaNs: number): void {
  if (g.clockTimer !== undefined) clearTimeout(g.clockTimer);
  g.clockTimer = undefined;
  g.clockDeadline = Infinity;
  if (deltaNs === 0) return;
  g.clockDeadline = nowMs() + deltaNs / 1e6;
  g.clockTimer = setTimeout(() => {
    g.clockTimer = undefined;
    g.clockDeadline = Infinity;
    g.pending |= 1;
    g.wake();
  }, deltaNs / 1e6);
}

/** The vector a guest IRQ arrives on. */
export function irqVector(irq: number): number {
  return FIRST_EXTERNAL_VECTOR + irq;
}
