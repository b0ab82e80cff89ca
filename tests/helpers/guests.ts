/**
 * Test helper: a Host with N initialised guests, driven at the port level.
 *
 * Each guest is a {@link ScriptCpu} without a program: the test calls
 * {@link TestGuest.call}, which makes one hypercall through the
 * `LguestFile` (the HypercallPort) and runs the event protocol
 * synchronously, the way a guest shim would, without ever suspending.
 *
 * Guest-physical map of a test guest (64 pages by default):
 *
 * ```
 * 0x1000  lguest_data
 * 0x2000  ARR: lguest_dma arrays (40 elements a page)
 * 0x8000  BUF: data buffers
 * top - 4096  SHARED: a page mapped from a shared object (when asked)
 * ```
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  FIRST_EXTERNAL_VECTOR,
  LGUEST_IRQS,
  LHCALL_BIND_DMA,
  LHCALL_LGUEST_INIT,
  LHCALL_LOAD_IDT_ENTRY,
  LHCALL_SEND_DMA,
  LHREQ_INITIALIZE,
  PAGE_SIZE,
  X86_EFLAGS_IF,
} from "../../abi/constants.ts";
import { DMA_USED_LEN, LD_IRQ_ENABLED } from "../../abi/structs.ts";
import { LG_EV_DONE, LG_EV_WAIT, LG_EVENT } from "../../engines/engine.ts";
import type { Guest } from "../../host/guest.ts";
import { Host, type LguestFile } from "../../host/host.ts";
import type { GuestMemory } from "../../host/memory.ts";
import {
  DEFAULT_LD,
  idtGate,
  type LguestDataInit,
  putDma,
  ScriptCpu,
  type Section,
  usedLen,
  writeLguestData,
} from "./script_cpu.ts";

/** Where the test guests keep things. */
export const LD = DEFAULT_LD;
export const ARR = 0x2000;
export const BUF = 0x8000;
export const PAGES = 64;

/** What one synchronous hypercall ended with. */
export interface CallResult {
  /** EAX, or null if the guest had to wait or died. */
  eax: number | null;
  /** IRQs handed to the guest during the call. */
  irqs: number[];
  /** The event protocol said LG_EV_WAIT (halted, Launcher DMA, BREAK, …). */
  waited: boolean;
  /** The guest was dead when the call returned. */
  dead: boolean;
}

/** One guest of {@link makeHost}. */
export interface TestGuest {
  readonly file: LguestFile;
  readonly cpu: ScriptCpu;
  readonly guest: Guest;
  readonly mem: GuestMemory;
  /** Every IRQ delivered through {@link call}. */
  readonly irqs: number[];
  /** One hypercall plus the event protocol, synchronously. */
  call(eax: number, edx?: number, ebx?: number, ecx?: number): CallResult;
  /** call() and return EAX, asserting the guest neither waited nor died. */
  eax(eax: number, edx?: number, ebx?: number, ecx?: number): number;
  /** Install an interrupt (or trap) gate for IRQ `irq`. */
  gate(irq: number, type?: number): void;
  /** BIND_DMA(key, dmas, (num << 8) | irq); returns EAX. */
  bind(key: number, dmas: number, num: number, irq: number): number;
  /** Zero used_len, then SEND_DMA(key, dma). */
  send(key: number, dma: number): CallResult;
  /** Write a lguest_dma. */
  dma(at: number, sections: readonly Section[], used?: number): void;
  /** used_len of the lguest_dma at `at`. */
  used(at: number): number;
  readonly dead: string | null;
}

/** Options of {@link makeHost}. */
export interface HostOptions {
  /** RAM pages per guest (default 64). */
  pages?: number;
  /** pfn_limit (default: all RAM). */
  pfnLimit?: number;
  /** Make LGUEST_INIT (default true). */
  init?: boolean;
  /** Initial lguest_data. */
  data?: LguestDataInit;
  /** Map one page of shared object `objectId` at `top - 4096` of every guest. */
  sharedObject?: number;
}

/** Run the event protocol for a hypercall already made on `file`. */
function finishCall(file: LguestFile, cpu: ScriptCpu, irqs: number[], r: number): CallResult {
  const seen: number[] = [];
  if (r !== LG_EVENT) return { eax: r >>> 0, irqs: seen, waited: false, dead: false };
  for (;;) {
    if (file.dead !== null) return { eax: null, irqs: seen, waited: false, dead: true };
    const ev = file.event() >>> 0;
    if (ev >= LG_EV_DONE) {
      return { eax: (ev & ~LG_EV_DONE) >>> 0, irqs: seen, waited: false, dead: false };
    }
    if (ev === LG_EV_WAIT) return { eax: null, irqs: seen, waited: true, dead: false };
    assert(ev < LGUEST_IRQS, `unknown event ${ev}`);
    seen.push(ev);
    irqs.push(ev);
    cpu.view.setU32(cpu.ld + LD_IRQ_ENABLED, X86_EFLAGS_IF); // "iret"
  }
}

/** Wrap an initialised file as a {@link TestGuest}. */
export function testGuest(file: LguestFile): TestGuest {
  const cpu = file.cpu as ScriptCpu;
  const guest = file.guest!;
  const irqs: number[] = [];
  const call = (eax: number, edx = 0, ebx = 0, ecx = 0): CallResult =>
    finishCall(file, cpu, irqs, file.hypercall(eax >>> 0, edx >>> 0, ebx >>> 0, ecx >>> 0));
  const t: TestGuest = {
    file,
    cpu,
    guest,
    mem: guest.mem,
    irqs,
    call,
    eax(eax, edx, ebx, ecx) {
      const r = call(eax, edx, ebx, ecx);
      assert(!r.dead, `guest died: ${file.dead}`);
      assert(!r.waited, "hypercall had to wait");
      return r.eax!;
    },
    gate(irq, type = 0xe) {
      const [lo, hi] = idtGate(type);
      t.eax(LHCALL_LOAD_IDT_ENTRY, FIRST_EXTERNAL_VECTOR + irq, lo, hi);
    },
    bind: (key, dmas, num, irq) => {
      const r = call(LHCALL_BIND_DMA, key, dmas, ((num << 8) | irq) >>> 0);
      return r.eax ?? -1;
    },
    send(key, dma) {
      if (guest.mem.ok(dma, 4)) guest.mem.setU32(dma + DMA_USED_LEN, 0);
      return call(LHCALL_SEND_DMA, key, dma);
    },
    dma: (at, sections, used = 0) => putDma(guest.mem, at, sections, used),
    used: (at) => usedLen(guest.mem, at),
    get dead() {
      return file.dead;
    },
  };
  return t;
}

/** LHREQ_INITIALIZE a new file on `host`; returns the write() result and file. */
export function openGuest(
  host: Host,
  opts: { pages?: number; pfnLimit?: number } = {},
): { file: LguestFile; cpu: ScriptCpu; result: number } {
  const pages = opts.pages ?? PAGES;
  const cpu = new ScriptCpu(undefined, { memSize: pages * PAGE_SIZE });
  const file = host.open(cpu);
  const result = file.write([LHREQ_INITIALIZE, opts.pfnLimit ?? pages, 0, 0, 0xc0000000]);
  return { file, cpu, result };
}

/** Open, LHREQ_INITIALIZE and (unless `init: false`) LGUEST_INIT one more guest on `host`. */
export function addGuest(host: Host, opts: HostOptions = {}): TestGuest {
  const { file, cpu, result } = openGuest(host, opts);
  assert.equal(result, 16, "LHREQ_INITIALIZE");
  const t = testGuest(file);
  if (opts.sharedObject !== undefined) {
    file.mapShared({
      start: t.mem.top - PAGE_SIZE,
      length: PAGE_SIZE,
      objectId: opts.sharedObject,
      objectOffset: 0,
    });
  }
  if (opts.init ?? true) {
    writeLguestData(cpu.view, LD, opts.data);
    t.eax(LHCALL_LGUEST_INIT, LD);
  }
  return t;
}

/** A host with `n` initialised guests (LHREQ_INITIALIZE, then LGUEST_INIT). */
export function makeHost(n: number, opts: HostOptions = {}): { host: Host; guests: TestGuest[] } {
  const host = new Host();
  const guests: TestGuest[] = [];
  for (let i = 0; i < n; i++) guests.push(addGuest(host, opts));
  return { host, guests };
}

/** The address of offset `off` within a guest's shared page. */
export function sharedKey(t: TestGuest, off = 0): number {
  return t.mem.top - PAGE_SIZE + off;
}

/** Close every guest (stops timers, wakes sleepers). */
export function closeAll(guests: readonly { file: LguestFile }[]): void {
  for (const t of guests) t.file.close();
}

/** A recognisable byte pattern. */
export function pattern(n: number, seed = 1): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed * 7 + 1) & 0xff;
  return b;
}

/** Yield to the event loop for `ms` milliseconds. */
export function sleep(ms = 0): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Has `p` settled by the next macrotask? */
export async function settled(p: Promise<unknown>, ms = 5): Promise<boolean> {
  let done = false;
  p.then(() => done = true, () => done = true);
  await sleep(ms);
  return done;
}
