/**
 * Test helper: a fake engine whose "guest program" is an async JS function.
 *
 * {@link ScriptCpu} implements {@link GuestCpu} over a plain `Uint8Array`
 * RAM. The program gets a {@link GuestApi} whose `hcall()` is the guest side
 * of the event protocol exactly as the C shim (`guests/kit/arch/wasm32/
 * hcall.c`) does it: call `port.hypercall()`; on `LG_EVENT` loop on
 * `port.event()`; an IRQ 0..31 runs the registered JS handler and then
 * writes `irq_enabled = 0x200` ("iret"); `LG_EV_WAIT` suspends the program
 * until the Host calls {@link ScriptCpu.run} again; `LG_EV_DONE | eax`
 * returns eax. A dead port unwinds the program with the {@link GuestExit}
 * sentinel, as the wasm engine does.
 *
 * @module
 */

import {
  FIRST_EXTERNAL_VECTOR,
  LGUEST_IRQS,
  LHCALL_BIND_DMA,
  LHCALL_HALT,
  LHCALL_LGUEST_INIT,
  LHCALL_LOAD_IDT_ENTRY,
  LHCALL_RING_SIZE,
  LHCALL_SEND_DMA,
  X86_EFLAGS_IF,
} from "../../abi/constants.ts";
import {
  DMA_SIZE,
  DMA_USED_LEN,
  type DmaDesc,
  HCALL_RING_ENTRY,
  LD_BLOCKED_INTERRUPTS,
  LD_HCALL_STATUS,
  LD_HCALLS,
  LD_IRQ_ENABLED,
  LD_NOIRQ_END,
  LD_NOIRQ_START,
  LD_SIZE,
  LeView,
  readDma,
  writeDma,
} from "../../abi/structs.ts";
import {
  type GuestCpu,
  type HypercallPort,
  LG_EV_DONE,
  LG_EV_WAIT,
  LG_EVENT,
} from "../../engines/engine.ts";

/** Default guest RAM: 64 pages. */
export const DEFAULT_MEM = 64 * 4096;
/** Default guest-physical address of lguest_data. */
export const DEFAULT_LD = 0x1000;

/** Thrown through the program to unwind a dead or closed guest. */
export class GuestExit extends Error {
  constructor() {
    super("guest exited");
  }
}
const GUEST_EXIT = new GuestExit();

/** Initial contents of lguest_data (the guest's static initialiser). */
export interface LguestDataInit {
  /** Default 0x200 (interrupts on). */
  irqEnabled?: number;
  /** Default 0 (nothing blocked; a Linux guest starts with 1). */
  blocked?: number;
  noirqStart?: number;
  noirqEnd?: number;
}

/** Write a fresh lguest_data at `at`: zeroes, every hcall_status 0xFF. */
export function writeLguestData(v: LeView, at: number, init: LguestDataInit = {}): void {
  v.bytes.fill(0, at, at + LD_SIZE);
  v.setU32(at + LD_IRQ_ENABLED, init.irqEnabled ?? X86_EFLAGS_IF);
  v.setU32(at + LD_BLOCKED_INTERRUPTS, init.blocked ?? 0);
  v.setU32(at + LD_NOIRQ_START, init.noirqStart ?? 0);
  v.setU32(at + LD_NOIRQ_END, init.noirqEnd ?? 0);
  v.bytes.fill(0xff, at + LD_HCALL_STATUS, at + LD_HCALL_STATUS + LHCALL_RING_SIZE);
}

/** One section of a lguest_dma: [address, length]. */
export type Section = readonly [addr: number, len: number];

/** Write a lguest_dma at `at` from up to 16 sections (the rest zeroed). */
export function putDma(v: LeView, at: number, sections: readonly Section[], usedLen = 0): void {
  writeDma(v, at, {
    usedLen,
    addr: sections.map((s) => s[0] >>> 0),
    len: sections.map((s) => s[1]),
  });
}

/** Write `n` lguest_dma elements of an array at `at`, each from `sections(i)`. */
export function putDmaArray(
  v: LeView,
  at: number,
  n: number,
  sections: (i: number) => readonly Section[],
): void {
  for (let i = 0; i < n; i++) putDma(v, at + i * DMA_SIZE, sections(i));
}

/** Decode the lguest_dma at `at`. */
export function getDma(v: LeView, at: number): DmaDesc {
  return readDma(v, at);
}

/** The used_len of the lguest_dma at `at`. */
export function usedLen(v: LeView, at: number): number {
  return v.u32(at + DMA_USED_LEN);
}

/** Fill entry `i` of the async ring of the lguest_data at `ld`. */
export function putRing(
  v: LeView,
  ld: number,
  i: number,
  call: readonly [eax: number, edx?: number, ebx?: number, ecx?: number],
  status = 0,
): void {
  const e = ld + LD_HCALLS + i * HCALL_RING_ENTRY;
  v.setU32(e, call[0]);
  v.setU32(e + 4, call[1] ?? 0);
  v.setU32(e + 8, call[2] ?? 0);
  v.setU32(e + 12, call[3] ?? 0);
  v.setU8(ld + LD_HCALL_STATUS + i, status);
}

/** The status byte of async ring entry `i`. */
export function ringStatus(v: LeView, ld: number, i: number): number {
  return v.u8(ld + LD_HCALL_STATUS + i);
}

/** An IDT gate as LOAD_IDT_ENTRY's (lo, hi): present, DPL 1, `type`. */
export function idtGate(type = 0xe, handler = 0x1234): [lo: number, hi: number] {
  return [handler & 0xffff, (0x8000 | (1 << 13) | (type << 8) | (handler & 0xffff0000)) >>> 0];
}

/** An IRQ handler in the guest program. */
export type IrqHandler = (irq: number, g: GuestApi) => void | Promise<void>;

/** What a guest program can do. */
export interface GuestApi {
  readonly cpu: ScriptCpu;
  /** The guest's RAM. */
  readonly mem: LeView;
  /** Where lguest_data lives. */
  readonly ld: number;
  /** A hypercall with the full event protocol; resolves with EAX. */
  hcall(eax: number, edx?: number, ebx?: number, ecx?: number): Promise<number>;
  /** Write lguest_data at `ld` and make the LGUEST_INIT hypercall. */
  init(data?: LguestDataInit): Promise<number>;
  /** LOAD_IDT_ENTRY for IRQ `irq`'s vector (0x20 + irq). */
  gate(irq: number, type?: number): Promise<number>;
  /** Register the handler of `irq`. */
  onIrq(irq: number, handler: IrqHandler): void;
  /** lguest_bind_dma(): BIND_DMA with (num << 8) | irq. */
  bind(key: number, dmas: number, num: number, irq: number): Promise<number>;
  /** lguest_send_dma(): zero used_len first, then SEND_DMA. */
  send(key: number, dma: number): Promise<void>;
  /** HALT. */
  halt(): Promise<number>;
  /** Write irq_enabled (0 = off, 0x200 = on). */
  setIrqEnabled(v: number): void;
  /** Write blocked_interrupts. */
  setBlocked(mask: number): void;
}

/** A guest program. Its return value is kept in {@link ScriptCpu.result}. */
export type GuestProgram = (g: GuestApi) => Promise<unknown>;

/** Construction options of a {@link ScriptCpu}. */
export interface ScriptCpuOptions {
  /** RAM bytes (default 256 KiB). */
  memSize?: number;
  /** Address of lguest_data (default 0x1000). */
  ld?: number;
}

/** A fake engine running a JS guest program over plain RAM. */
export class ScriptCpu implements GuestCpu {
  readonly memory: Uint8Array;
  readonly view: LeView;
  readonly ld: number;
  /** The attached port (set by LHREQ_INITIALIZE). */
  port: HypercallPort | null = null;
  /** Every IRQ the guest was handed, in order. */
  readonly irqLog: number[] = [];
  /** How many times the program was suspended (LG_EV_WAIT). */
  waits = 0;
  /** The program's return value, once it returned. */
  result: unknown = undefined;
  /** An exception (other than the exit sentinel) the program threw. */
  error: unknown = undefined;
  /** The program returned or unwound. */
  finished = false;

  readonly #program: GuestProgram | undefined;
  readonly #handlers = new Map<number, IrqHandler>();
  readonly #api: GuestApi;
  #started = false;
  #closed = false;
  #stopped: (() => void) | undefined;
  #resume: (() => void) | undefined;

  constructor(program?: GuestProgram, opts: ScriptCpuOptions = {}) {
    this.memory = new Uint8Array(opts.memSize ?? DEFAULT_MEM);
    this.view = new LeView(this.memory);
    this.ld = opts.ld ?? DEFAULT_LD;
    this.#program = program;
    this.#api = this.#makeApi();
  }

  /** The program's API (also usable by tests driving a CPU by hand). */
  get api(): GuestApi {
    return this.#api;
  }

  attach(port: HypercallPort): void {
    this.port = port;
  }

  run(): Promise<void> {
    if (this.#closed || this.finished) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.#stopped = resolve;
      if (!this.#started) {
        this.#started = true;
        this.#start();
      } else {
        const r = this.#resume;
        this.#resume = undefined;
        if (r) r();
        else resolve();
      }
    });
  }

  close(): void {
    this.#closed = true;
    const r = this.#resume;
    this.#resume = undefined;
    r?.();
  }

  /** Rethrow what the program threw, if anything (call at the end of a test). */
  check(): void {
    if (this.error !== undefined) throw this.error;
  }

  #start(): void {
    const program = this.#program ?? (() => Promise.resolve());
    // Run the program's first steps synchronously, as a guest starting up.
    let p: Promise<unknown>;
    try {
      p = program(this.#api);
    } catch (e) {
      p = Promise.reject(e);
    }
    p.then(
      (v) => {
        this.result = v;
        if (!this.#closed && this.port?.dead === null) {
          this.port.kill("guest returned from start()");
        }
      },
      (e: unknown) => {
        if (e instanceof GuestExit) return;
        this.error = e;
        const msg = e instanceof Error ? e.message : String(e);
        if (!this.#closed && this.port?.dead === null) this.port.kill(`script error: ${msg}`);
      },
    ).finally(() => {
      this.finished = true;
      const s = this.#stopped;
      this.#stopped = undefined;
      s?.();
    });
  }

  /** The suspending wait(): park until the Host resumes us with run(). */
  async #wait(): Promise<void> {
    this.waits++;
    const stopped = this.#stopped;
    this.#stopped = undefined;
    await new Promise<void>((resolve) => {
      this.#resume = resolve;
      stopped?.();
    });
    if (this.#closed || this.#port().dead !== null) throw GUEST_EXIT;
  }

  #port(): HypercallPort {
    if (this.port === null) throw new Error("script_cpu: hypercall before LHREQ_INITIALIZE");
    return this.port;
  }

  /** The shim's hcall(): the fast path, or the event loop. */
  async #hcall(eax: number, edx: number, ebx: number, ecx: number): Promise<number> {
    const port = this.#port();
    const r = port.hypercall(eax >>> 0, edx >>> 0, ebx >>> 0, ecx >>> 0);
    if (r !== LG_EVENT) return r >>> 0;
    for (;;) {
      if (port.dead !== null) throw GUEST_EXIT;
      const ev = port.event() >>> 0;
      if (ev >= LG_EV_DONE) return (ev & ~LG_EV_DONE) >>> 0;
      if (ev < LGUEST_IRQS) {
        this.irqLog.push(ev);
        await this.#handlers.get(ev)?.(ev, this.#api);
        this.view.setU32(this.ld + LD_IRQ_ENABLED, X86_EFLAGS_IF); // "iret"
      } else if (ev === LG_EV_WAIT) {
        await this.#wait();
      } else {
        throw new Error(`script_cpu: unknown event 0x${ev.toString(16)} from host`);
      }
    }
  }

  #makeApi(): GuestApi {
    const v = this.view;
    const ld = this.ld;
    const hcall = (eax: number, edx = 0, ebx = 0, ecx = 0) => this.#hcall(eax, edx, ebx, ecx);
    return {
      cpu: this,
      mem: v,
      ld,
      hcall,
      init: (data) => {
        writeLguestData(v, ld, data);
        return hcall(LHCALL_LGUEST_INIT, ld);
      },
      gate: (irq, type = 0xe) => {
        const [lo, hi] = idtGate(type);
        return hcall(LHCALL_LOAD_IDT_ENTRY, FIRST_EXTERNAL_VECTOR + irq, lo, hi);
      },
      onIrq: (irq, handler) => {
        this.#handlers.set(irq, handler);
      },
      bind: (key, dmas, num, irq) => hcall(LHCALL_BIND_DMA, key, dmas, ((num << 8) | irq) >>> 0),
      send: async (key, dma) => {
        v.setU32(dma + DMA_USED_LEN, 0);
        await hcall(LHCALL_SEND_DMA, key, dma);
      },
      halt: () => hcall(LHCALL_HALT),
      setIrqEnabled: (x) => v.setU32(ld + LD_IRQ_ENABLED, x),
      setBlocked: (mask) => v.setU32(ld + LD_BLOCKED_INTERRUPTS, mask),
    };
  }
}
