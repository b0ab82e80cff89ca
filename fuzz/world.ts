/**
 * Fuzzer: the world one run acts on, and the invariants checked after every
 * step.
 *
 * One {@link Host} with six guests, each on its own RAM `Uint8Array`:
 *
 * - slots 0..3 are fuzzed guests (32 pages; the last page maps the shared
 *   object FUZZ, so keys there route between guests);
 * - slots 4 and 5 are the known-good pair (48 pages; FUZZ at the last page
 *   and a second object PAIR, which no fuzzed guest maps, at the page
 *   before). They only make valid calls, so they must never die.
 *
 * Every RAM array is 17 pages longer than `pfn_limit * 4096`: the bytes from
 * top on are a guard filled with 0xA5 that the host must never touch (a
 * 65535-byte section overrun stays inside it).
 *
 * Guests are driven without wasm: a {@link FuzzCpu} makes the hypercall
 * through the `LguestFile` (the engine's HypercallPort) and runs the event
 * protocol exactly as the guest shim does, including IRQ handlers that make
 * hypercalls of their own and parking on `LG_EV_WAIT` until the Launcher's
 * next read().
 *
 * @module
 */

import {
  EAGAIN,
  EBUSY,
  EFAULT,
  EINVAL,
  ENOENT,
  ENOSPC,
  EPERM,
  ERESTARTSYS,
  FIRST_EXTERNAL_VECTOR,
  LGUEST_IRQS,
  LHCALL_BIND_DMA,
  LHCALL_LGUEST_INIT,
  LHCALL_LOAD_IDT_ENTRY,
  LHCALL_RING_SIZE,
  LHCALL_SEND_DMA,
  LHREQ_BREAK,
  LHREQ_GETDMA,
  LHREQ_INITIALIZE,
  LHREQ_IRQ,
  MAX_LGUEST_GUESTS,
  PAGE_SIZE,
  SWITCHER_ADDR,
  X86_EFLAGS_IF,
} from "../abi/constants.ts";
import {
  DMA_SIZE,
  DMA_USED_LEN,
  LD_BLOCKED_INTERRUPTS,
  LD_HCALL_STATUS,
  LD_IRQ_ENABLED,
  LD_SIZE,
  writeDma,
} from "../abi/structs.ts";
import {
  type GuestCpu,
  type HypercallPort,
  LG_EV_DONE,
  LG_EV_WAIT,
  LG_EVENT,
} from "../engines/engine.ts";
import { canonicalKey } from "../host/dma.ts";
import type { Binding, Guest } from "../host/guest.ts";
import { Host, type LguestFile, type ReadResult } from "../host/host.ts";
import { type GuestMemory, hex } from "../host/memory.ts";
import type { Action, Call } from "./actions.ts";
import { useClock, VirtualClock } from "./clock.ts";

/** Fuzzed guests are slots 0..FUZZ_SLOTS-1. */
export const FUZZ_SLOTS = 4;
/** The known-good pair. */
export const KG_A = 4;
export const KG_B = 5;
export const SLOTS = 6;

export const FUZZ_PAGES = 32;
export const KG_PAGES = 48;
/** Guard pages past top: more than a 65535-byte section can reach. */
export const GUARD_PAGES = 17;
const GUARD_BYTE = 0xa5;
const GUARD32 = 0xa5a5a5a5 | 0;
/** Words past top checked for every guest after every step. */
const QUICK_WORDS = 64;
/** Words past top checked for the guest that acted. */
const ACTOR_WORDS = 256;
/** Virtual milliseconds one host call takes (4 ms slices: ~4000 calls). */
const CALL_MS = 0.001;

/** Where a fuzzed guest keeps things (a convention of the generator only). */
export const F_LD = 0x1000;
export const F_ARR = 0x2000;
export const F_BUF = 0x8000;

/** The known-good guests' layout. */
export const K_TOP = KG_PAGES * PAGE_SIZE;
export const K_LD = 0x1000;
export const K_SINK_ARR = 0x2000;
export const K_RX_ARR = 0x3000;
export const K_TX_DESC = 0x3400;
export const K_FZ_DESC = 0x3800;
export const K_SINK_BUF = 0x8000;
export const K_RX_BUF = 0x10000;
export const K_TX_BUF = 0x20000;
const K_SINKS = 4;
/** Pages of each known-good data area (rx, tx, sinks). */
export const K_AREA_PAGES = 4;
const K_AREA = K_AREA_PAGES * PAGE_SIZE;
/** Key of the PAIR page (offset 0) and of the FUZZ page in a known-good guest. */
export const K_PAIR_KEY = K_TOP - 2 * PAGE_SIZE;
export const K_FUZZ_PAGE = K_TOP - PAGE_SIZE;
/** IRQs of the known-good guests: sinks 1 (g4) and 2 (g5), the pair exchange 3. */
const K_PAIR_IRQ = 3;
/** Byte ranges of a known-good guest the host may write (all else must stay as the guest left it). */
const K_WRITABLE: readonly (readonly [number, number])[] = [
  [K_LD, K_LD + LD_SIZE],
  [K_SINK_ARR, K_SINK_ARR + 2 * PAGE_SIZE],
  [K_SINK_BUF, K_SINK_BUF + K_AREA],
  [K_RX_BUF, K_RX_BUF + K_AREA],
];

/** An invariant that did not hold. `kind` names the invariant (shrinking keeps it). */
export class Violation extends Error {
  readonly kind: string;
  constructor(kind: string, message: string) {
    super(message);
    this.kind = kind;
  }
}

const RESOLVED: Promise<void> = Promise.resolve();
/** Frame of a guest stopped by preempt() between hypercalls (no hypercall open). */
const SPIN = -1;
/** A caller that is not the task that initialised the guest (§6.1 rule 3). */
const FOREIGN_TASK = {};
const NO_CALLS: Call[] = [];
const EMPTY_HANDLER: Call = [];

interface Frame {
  /** The hypercall this event loop finishes (its EAX is checked at the end). */
  nr: number;
  /** The hypercalls of the IRQ handler running in this frame, or null. */
  handler: Call | null;
  pos: number;
}

/**
 * The EAX a finished hypercall must give back: BIND_DMA's 0 or 1, anything
 * else its own number (the Host leaves EAX alone, §3.1), even when IRQ
 * handlers made hypercalls in between.
 */
function checkEax(nr: number, eax: number): void {
  if (nr === LHCALL_BIND_DMA ? eax > 1 : eax !== nr) {
    throw new Violation("eax", `hypercall ${hex(nr)} finished with EAX ${hex(eax)}`);
  }
}

/**
 * A guest CPU without code: the fuzzer tells it which hypercalls to make,
 * and it runs the engine's side of the event protocol (engines/engine.ts).
 */
export class FuzzCpu implements GuestCpu {
  readonly memory: Uint8Array;
  readonly world: World;
  port: HypercallPort | null = null;
  /** Open event loops, outermost first; non-empty while the guest is parked. */
  readonly frames: Frame[] = [];
  closed = false;
  /** IRQ handler scripts of the current action, used in order. */
  scripts: Call[] = NO_CALLS;
  scriptPos = 0;
  /** IRQs handed to the guest, per IRQ. */
  readonly irqs: Uint32Array = new Uint32Array(LGUEST_IRQS);
  /** EAX of the last finished top-level hypercall. */
  result = 0;
  /** Times the Host's read() ran the guest. */
  runs = 0;

  constructor(memory: Uint8Array, world: World) {
    this.memory = memory;
    this.world = world;
  }

  attach(port: HypercallPort): void {
    this.port = port;
  }

  /** The Host's read() runs the guest: continue its event loop, if it waits in one. */
  run(): Promise<void> {
    this.runs++;
    if (!this.closed && this.frames.length !== 0) this.drive();
    return RESOLVED;
  }

  close(): void {
    this.closed = true;
    this.frames.length = 0;
  }

  /** Stopped in LG_EV_WAIT until the Launcher's next read(). */
  get parked(): boolean {
    return this.frames.length !== 0;
  }

  /**
   * Guest code runs `ms` without a hypercall; an instrumented loop's fuel
   * check then asks the Host whether the time slice is over (the port's
   * `preempt()`, where the Host has it) and stops the guest if so.
   */
  spin(ms: number): void {
    this.world.clock.now += ms;
    const port = this.port as { preempt?: () => boolean } | null;
    if (typeof port?.preempt !== "function") return;
    this.world.calls++;
    if (port.preempt()) this.frames.push({ nr: SPIN, handler: null, pos: 0 });
  }

  /** A top-level hypercall (the guest is running, not parked). */
  call(eax: number, edx: number, ebx: number, ecx: number): void {
    this.world.calls++;
    this.world.clock.now += CALL_MS;
    const r = this.port!.hypercall(eax >>> 0, edx >>> 0, ebx >>> 0, ecx >>> 0);
    if (r === LG_EVENT) {
      this.frames.push({ nr: eax >>> 0, handler: null, pos: 0 });
      this.drive();
    } else {
      checkEax(eax >>> 0, r >>> 0);
      this.result = r >>> 0;
    }
  }

  /** The shim's event loop, over nested frames, until done, WAIT or death. */
  drive(): void {
    const port = this.port!;
    const frames = this.frames;
    let budget = 100_000;
    while (frames.length !== 0) {
      if (--budget === 0) throw new Violation("livelock", "the event protocol does not finish");
      if (port.dead !== null) {
        frames.length = 0; // the engine unwinds a dead guest
        return;
      }
      const top = frames[frames.length - 1];
      if (top.nr === SPIN) {
        frames.pop(); // resumed after a preemption: the guest goes on computing
        continue;
      }
      const h = top.handler;
      if (h !== null) {
        if (top.pos < h.length) {
          const i = top.pos;
          top.pos += 4;
          this.world.calls++;
          this.world.clock.now += CALL_MS;
          const nr = h[i] >>> 0;
          const r = port.hypercall(nr, h[i + 1] >>> 0, h[i + 2] >>> 0, h[i + 3] >>> 0);
          if (r === LG_EVENT) frames.push({ nr, handler: null, pos: 0 });
          else checkEax(nr, r >>> 0);
          continue;
        }
        top.handler = null;
        this.#iret();
        continue;
      }
      const g = (port as LguestFile).guest!;
      const pending = g.pending, halted = g.halted, ld = g.lguestData;
      const enabled = ld === 0 ? 0 : g.mem.u32(ld + LD_IRQ_ENABLED);
      const ev = port.event() >>> 0;
      if (ev >= LG_EV_DONE) {
        frames.pop();
        const eax = (ev & ~LG_EV_DONE) >>> 0;
        checkEax(top.nr, eax);
        if (frames.length === 0) this.result = eax;
      } else if (ev === LG_EV_WAIT) {
        return;
      } else if (ev < LGUEST_IRQS) {
        // Only a pending, unblocked IRQ, and only with interrupts on (or out of HALT).
        const blocked = ld === 0 ? 0 : g.mem.u32(ld + LD_BLOCKED_INTERRUPTS);
        if (
          ((pending >>> ev) & 1) === 0 || ((g.pending >>> ev) & 1) !== 0 || ld === 0 ||
          ((blocked >>> ev) & 1) !== 0 || (!halted && enabled === 0)
        ) {
          throw new Violation(
            "irq",
            `IRQ ${ev} handed out (pending ${hex(pending)} -> ${hex(g.pending)}, blocked ${
              hex(blocked)
            }, irq_enabled ${hex(enabled)}, halted ${halted})`,
          );
        }
        this.irqs[ev]++;
        top.handler = this.scriptPos < this.scripts.length
          ? this.scripts[this.scriptPos++]
          : EMPTY_HANDLER;
        top.pos = 0;
      } else {
        throw new Violation("protocol", `event() returned ${hex(ev)}`);
      }
    }
  }

  /** The shim's "iret": interrupts on again (the guest writes its own lguest_data). */
  #iret(): void {
    const file = this.port as LguestFile;
    const g = file.guest;
    if (g !== null && g.dead === null && g.lguestData !== 0) {
      g.mem.setU32(g.lguestData + LD_IRQ_ENABLED, X86_EFLAGS_IF);
    }
  }
}

/** One guest position in the world. */
export class Slot {
  readonly index: number;
  readonly kg: boolean;
  readonly memory: Uint8Array;
  readonly i32: Int32Array;
  file: LguestFile | null = null;
  cpu: FuzzCpu | null = null;
  guest: Guest | null = null;
  /** First byte of the guard (the guest's top; 0 when no guest was created). */
  guardFrom = 0;
  /** The death already seen (reason), to spot new deaths. */
  seenDead: string | null = null;
  /** The Launcher-bound DMA already served (a later read() clears it). */
  served: object | null = null;
  /** Inline output handler: 0 none, 1 serve all, 2 serve every other address. */
  inline = 0;
  /** Known-good: a copy of the RAM as the guest itself left it. */
  shadow: Int32Array | null = null;

  constructor(index: number, pages: number) {
    this.index = index;
    this.kg = index >= FUZZ_SLOTS;
    this.memory = new Uint8Array((pages + GUARD_PAGES) * PAGE_SIZE);
    this.i32 = new Int32Array(this.memory.buffer);
  }

  /** The guest's top (0 without a guest). */
  get top(): number {
    return this.guest?.mem.top ?? 0;
  }

  /** A live guest that is not parked: it can run (make hypercalls, write its memory). */
  get running(): boolean {
    const g = this.guest;
    return g !== null && g.dead === null && this.cpu !== null && !this.cpu.closed &&
      !this.cpu.parked;
  }
}

/** Options of a {@link World}. */
export interface WorldOptions {
  /** DmaEngine.yieldOnFull (the Launcher's setting): on in odd epochs. */
  yieldOnFull: boolean;
  /** Full guard and table checks every this many steps (1 = every step). */
  fullEvery: number;
}

function writeLguestData(m: GuestMemory, at: number): void {
  m.bytes.fill(0, at, at + LD_SIZE);
  m.setU32(at + LD_IRQ_ENABLED, X86_EFLAGS_IF);
  m.setU32(at + LD_BLOCKED_INTERRUPTS, 0);
  m.bytes.fill(0xff, at + LD_HCALL_STATUS, at + LD_HCALL_STATUS + LHCALL_RING_SIZE);
}

/** A present interrupt gate (DPL 1) as LOAD_IDT_ENTRY's (lo, hi). */
function gate(): [number, number] {
  return [0x1234, (0x8000 | (1 << 13) | (0xe << 8)) >>> 0];
}

/** The host, the six guests, the extra files, and the invariants. */
export class World {
  readonly host: Host;
  readonly clock: VirtualClock = new VirtualClock();
  readonly slots: Slot[] = [];
  readonly opts: WorldOptions;
  /** Host calls made (hypercalls, write(), read(), close()). */
  calls = 0;
  /** Deaths of fuzzed guests. */
  kills = 0;
  steps = 0;
  /** The first violation; the run stops there. */
  violation: Violation | null = null;
  /** Canonical keys ever bound: their chains are checked. */
  readonly seenKeys: Set<number> = new Set();
  readonly extras: LguestFile[] = [];
  /** What happened (kill reasons, transfers, …), for the statistics of a run. */
  readonly stats: Map<string, number> = new Map();
  readonly fuzzObject: number;
  readonly pairObject: number;
  #syncs = 0;

  constructor(opts: WorldOptions) {
    this.opts = opts;
    useClock(this.clock);
    this.host = new Host();
    this.host.dma.yieldOnFull = opts.yieldOnFull;
    this.fuzzObject = this.host.allocObjectId();
    this.pairObject = this.host.allocObjectId();
    // Observe (not change) binding: remember every canonical key bound.
    const dma = this.host.dma;
    const bind = dma.bind.bind(dma);
    dma.bind = (g, key, dmas, ecx) => {
      const r = bind(g, key, dmas, ecx);
      if (r === 1 && (ecx & 0xff) !== 0) this.seenKeys.add(canonicalKey(g, key));
      return r;
    };
    // Watch every transfer on FUZZ (as packet capture does): both descriptors
    // and the receiver's element are inside their guests, the count bounded.
    this.host.dma.observe(this.fuzzObject, (src, udma, dst, element, count) => {
      this.#count("transfers observed");
      if (udma + DMA_SIZE > src.mem.top || element + DMA_SIZE > dst.mem.top || count > 65536) {
        this.#violate("bounds", `transfer ${hex(udma)} -> ${hex(element)}: ${count} bytes`);
      }
      if (dst.mem.u32(element + DMA_USED_LEN) !== count) {
        this.#violate("result", `receiver element ${hex(element)} used_len is not ${count}`);
      }
    });
    for (let i = 0; i < SLOTS; i++) {
      this.slots.push(new Slot(i, i < FUZZ_SLOTS ? FUZZ_PAGES : KG_PAGES));
    }
    for (let i = 0; i < FUZZ_SLOTS; i++) {
      this.#reopen(this.slots[i], FUZZ_PAGES, F_LD, true, i === 2 ? 1 : i === 3 ? 2 : 0);
    }
    this.#setupKnownGood(this.slots[KG_A], 0);
    this.#setupKnownGood(this.slots[KG_B], 1);
    this.#afterStep(-1, true);
    if (this.violation) throw this.violation;
  }

  /** Close every file (stops timers). */
  dispose(): void {
    for (const s of this.slots) {
      if (s.guest) this.#countGuest(s.guest);
      s.file?.close();
    }
    for (const f of this.extras) f.close();
  }

  #count(key: string, n = 1): void {
    if (n !== 0) this.stats.set(key, (this.stats.get(key) ?? 0) + n);
  }

  /** Add a guest's host counters to the statistics. */
  #countGuest(g: Guest): void {
    const c = g.counters;
    this.#count("hypercalls (host count)", c.hypercalls);
    this.#count("async hypercalls", c.asyncHypercalls);
    this.#count("DMAs to the Launcher", c.dmaToLauncher);
    this.#count("inter-guest transfers", c.dmaToGuest);
    this.#count("inter-guest bytes", c.dmaBytesToGuest);
    this.#count("sends without a receiver", c.dmaNoReceiver);
    this.#count("sends dropped (receiver full)", c.dmaDroppedFull);
    this.#count("transfers abandoned", c.dmaAbandoned);
    this.#count("GETDMA without a free buffer", c.getDmaNone);
    this.#count("interrupts delivered", c.interrupts);
  }

  /**
   * Run one action and check the invariants. Returns a promise only for
   * actions that go through read() (the hot path stays synchronous).
   */
  step(a: Action): Promise<void> | undefined {
    this.steps++;
    const actor = actorOf(a);
    const also = a.k === "inflight" ? actorOf(a.a) : -1;
    try {
      const p = this.#exec(a);
      if (p !== undefined) {
        return p.then(
          () => this.#afterStep(actor, this.steps % this.opts.fullEvery === 0, also),
          (e) => this.#fail(e),
        );
      }
      this.#afterStep(actor, this.steps % this.opts.fullEvery === 0, also);
    } catch (e) {
      this.#fail(e);
    }
    return undefined;
  }

  /** The checks of the end of a run: every guard, table and known-good guest. */
  finish(): void {
    if (this.violation) return;
    try {
      this.#afterStep(-1, true);
    } catch (e) {
      this.#fail(e);
    }
  }

  #fail(e: unknown): void {
    if (this.violation) return;
    if (e instanceof Violation) this.violation = e;
    else {
      const err = e instanceof Error ? (e.stack ?? e.message) : String(e);
      this.violation = new Violation("exception", `an exception escaped the host: ${err}`);
    }
  }

  #violate(kind: string, message: string): never {
    throw new Violation(kind, message);
  }

  // --- actions ---

  #exec(a: Action): Promise<void> | undefined {
    switch (a.k) {
      case "hc": {
        const s = this.slots[a.g];
        if (!s.running) return;
        const cpu = s.cpu!;
        cpu.scripts = a.nest ?? NO_CALLS;
        cpu.scriptPos = 0;
        const c = a.c;
        cpu.call(c[0], c[1], c[2], c[3]);
        this.#serveParked(s);
        return;
      }
      case "w": {
        const s = this.slots[a.g];
        if (!s.running || a.at < 0 || a.at + 4 * a.v.length > s.top) return;
        for (let i = 0; i < a.v.length; i++) s.guest!.mem.setU32(a.at + 4 * i, a.v[i]);
        return;
      }
      case "b": {
        const s = this.slots[a.g];
        if (!s.running || a.at < 0 || a.at >= s.top) return;
        s.memory[a.at] = a.v;
        return;
      }
      case "dma": {
        const s = this.slots[a.g];
        if (!s.running || a.at < 0 || a.at + DMA_SIZE > s.top) return;
        const addr: number[] = [], len: number[] = [];
        for (let i = 0; i + 1 < a.s.length && addr.length < 16; i += 2) {
          addr.push(a.s[i] >>> 0);
          len.push(a.s[i + 1] & 0xffff);
        }
        writeDma(s.guest!.mem, a.at, { usedLen: a.used, addr, len });
        return;
      }
      case "req":
        this.#request(this.slots[a.g], a.w, a.foreign ?? false);
        return;
      case "spin": {
        const s = this.slots[a.g];
        if (!s.running) return;
        s.cpu!.spin(a.ms);
        if (s.cpu!.parked) this.#count("preempted between hypercalls");
        return;
      }
      case "kill": {
        const s = this.slots[a.g];
        if (s.file !== null && s.guest !== null) s.file.kill("launcher: stopped");
        return;
      }
      case "inflight":
        return this.#inflight(this.slots[a.g], a.a);
      case "getdma":
        this.#getDma(this.slots[a.g], a.key, a.n);
        return;
      case "read":
        return this.#read(this.slots[a.g], a.nest ?? NO_CALLS);
      case "closeread":
        return this.#closeRead(this.slots[a.g]);
      case "reopen":
        this.#reopen(this.slots[a.g], a.pfn, a.ld, a.init, a.inline);
        return;
      case "extra":
        this.#extra(a.w, a.close);
        return;
      case "tick":
        this.clock.advance(a.ms);
        return;
      case "kg":
        return this.#knownGood(a);
    }
  }

  /**
   * A hypercall that stopped for the Launcher: in a real run read() would
   * return the DMA now, so the Launcher serves it before anything else.
   */
  #serveParked(s: Slot): void {
    const g = s.guest!;
    const p = g.pendingDma;
    if (p !== null && p !== s.served && s.cpu!.parked && g.dead === null) {
      s.served = p;
      this.#serveOutput(s, p.dma, p.key);
    }
  }

  /** The Launcher's handle_output(): check the sections, answer with used_len. */
  #serveOutput(s: Slot, dma: number, key: number): void {
    const g = s.guest!;
    const sec = g.mem.sections(dma);
    if (typeof sec === "string") {
      s.file!.kill(`launcher: SEND_DMA to key ${hex(key)}: ${sec}`);
      return;
    }
    let total = 0;
    for (const v of sec) {
      this.#checkView(s, v, "sections()");
      v[0] = 0x5a; // a device writes its reply at both ends of a section
      v[v.length - 1] = 0x5b;
      total += v.length;
    }
    g.mem.setU32(dma + DMA_USED_LEN, total);
  }

  #checkView(s: Slot, v: Uint8Array, what: string): void {
    if (v.buffer !== s.memory.buffer || v.byteOffset + v.length > s.top || v.length === 0) {
      this.#violate(
        "bounds",
        `g${s.index}: ${what} gave a view ${hex(v.byteOffset)}+${v.length} outside [0, ${
          hex(s.top)
        })`,
      );
    }
  }

  /** The Launcher writes to /dev/lguest; the result must be the documented one. */
  #request(s: Slot, w: number[], foreign: boolean): void {
    const file = s.file;
    if (file === null) return;
    const g = file.guest;
    const kind = w.length ? w[0] >>> 0 : -1;
    if (g === null && kind === LHREQ_INITIALIZE) return; // only reopen initialises
    const wasDead = g?.dead ?? null;
    this.calls++;
    const r = foreign ? file.write(w, FOREIGN_TASK) : file.write(w);
    let ok: boolean;
    if (w.length < 1) ok = r === -EFAULT;
    else if (g === null) ok = r === -EINVAL;
    else if (wasDead !== null) ok = r === -ENOENT;
    else if (foreign && kind !== LHREQ_BREAK) ok = r === -EPERM;
    else if (kind === LHREQ_INITIALIZE) ok = r === -EBUSY;
    else if (kind !== LHREQ_GETDMA && kind !== LHREQ_IRQ && kind !== LHREQ_BREAK) {
      ok = r === -EINVAL;
    } else if (w.length < 2) ok = r === -EFAULT;
    else if (kind === LHREQ_IRQ) ok = (w[1] >>> 0) < LGUEST_IRQS ? r === 0 : r === -EINVAL;
    else if (kind === LHREQ_BREAK) ok = r === 0;
    else ok = r === -ENOENT || this.#checkGetDma(s, r);
    if (!ok) {
      this.#violate("result", `g${s.index}: write([${w.map(hex).join(", ")}]) returned ${r}`);
    }
  }

  /** A GETDMA address: a whole lguest_dma inside the guest, holding the binding's IRQ. */
  #checkGetDma(s: Slot, r: number): boolean {
    const g = s.guest!;
    if (!Number.isInteger(r) || r < 0 || r + DMA_SIZE > g.mem.top) {
      this.#violate("bounds", `g${s.index}: GETDMA returned ${r}, outside [0, ${hex(s.top)})`);
    }
    const irq = g.mem.u32(r + DMA_USED_LEN);
    if (irq < 1 || irq >= LGUEST_IRQS) {
      this.#violate("result", `g${s.index}: GETDMA buffer ${hex(r)} carries IRQ ${irq}`);
    }
    return true;
  }

  /** The Launcher feeds input: GETDMA, fill the buffer, used_len, IRQ (§9.6). */
  #getDma(s: Slot, key: number, n: number): void {
    const file = s.file;
    const g = s.guest;
    if (file === null || g === null) return;
    const wasDead = g.dead;
    this.calls++;
    const r = file.write([LHREQ_GETDMA, key]);
    if (r < 0) {
      if (r !== -ENOENT) this.#violate("result", `g${s.index}: GETDMA ${hex(key)} returned ${r}`);
      return;
    }
    if (wasDead !== null) this.#violate("result", `g${s.index}: GETDMA on a dead guest gave ${r}`);
    this.#checkGetDma(s, r);
    const irq = g.mem.u32(r + DMA_USED_LEN);
    const sec = g.mem.sections(r);
    if (typeof sec === "string") {
      file.kill(`launcher: GETDMA buffer for key ${hex(key)}: ${sec}`);
      return;
    }
    let left = n;
    for (const v of sec) {
      this.#checkView(s, v, "sections()");
      if (left === 0) break;
      const k = Math.min(left, v.length);
      v[0] = 0x11;
      v[k - 1] = 0x22;
      left -= k;
    }
    g.mem.setU32(r + DMA_USED_LEN, n - left);
    this.calls++;
    const q = file.write([LHREQ_IRQ, irq]);
    if (q !== 0) this.#violate("result", `g${s.index}: LHREQ_IRQ ${irq} returned ${q}`);
  }

  /**
   * One read() round trip. The guest runs (its parked event loop goes on);
   * the Waker breaks the read out right away (as input would), so it
   * returns: a DMA for the Launcher, -EAGAIN, -ENOENT, or the reason.
   */
  async #read(s: Slot, nest: Call[]): Promise<void> {
    const file = s.file;
    if (file === null) return;
    const g = file.guest;
    const cpu = s.cpu!;
    cpu.scripts = nest;
    cpu.scriptPos = 0;
    const reported = g?.deathReported ?? false;
    const wasDead = g?.dead ?? null;
    // Parked with nothing that holds it: this read() must run the guest.
    const free = g !== null && cpu.parked && g.dead === null && !g.halted && !g.breakOut &&
      !g.preempt && !g.regs.trapped && g.retryDma === null;
    const runs = cpu.runs;
    this.calls += 3;
    const p = file.read();
    file.write([LHREQ_BREAK, 1]);
    const r = await p;
    file.write([LHREQ_BREAK, 0]);
    this.#checkRead(s, r, wasDead, reported);
    if (free && cpu.runs === runs && g.dead === null) {
      this.#violate("stuck", `g${s.index}: read() did not run a guest that nothing holds`);
    }
    this.#serveRead(s, r);
  }

  /** read() returned a DMA for the Launcher: serve it (unless served already). */
  #serveRead(s: Slot, r: ReadResult): void {
    const g = s.guest;
    if (r.kind === "dma" && g !== null && g.dead === null && g.pendingDma !== s.served) {
      s.served = g.pendingDma;
      this.#serveOutput(s, r.dma, r.key);
    }
  }

  /**
   * A read() in flight while something else happens: the Launcher or
   * another guest acts while this guest sleeps in HALT or between its runs
   * (wake-ups by inter-guest DMA, IRQs and kills from outside). Then the
   * Waker breaks the read out.
   */
  async #inflight(s: Slot, inner: Action): Promise<void> {
    const file = s.file;
    if (file === null) return;
    const g = file.guest;
    const cpu = s.cpu!;
    cpu.scripts = NO_CALLS;
    cpu.scriptPos = 0;
    const reported = g?.deathReported ?? false;
    const wasDead = g?.dead ?? null;
    this.calls += 3;
    const p = file.read();
    const q = this.#exec(inner);
    if (q !== undefined) await q;
    if (s.file === file) file.write([LHREQ_BREAK, 1]);
    const r = await p;
    if (s.file !== file) return; // the inner action re-created the guest
    file.write([LHREQ_BREAK, 0]);
    this.#checkRead(s, r, wasDead, reported);
    this.#serveRead(s, r);
  }

  #checkRead(s: Slot, r: ReadResult, wasDead: string | null, reported: boolean): void {
    const g = s.guest;
    const bad = (why: string) =>
      this.#violate("result", `g${s.index}: read() returned ${JSON.stringify(r)}: ${why}`);
    if (g === null) {
      if (r.kind !== "errno" || r.errno !== EINVAL) bad("no guest: expected -EINVAL");
      return;
    }
    if (r.kind === "reason") {
      if (!reported || wasDead === null) bad("a reason before -ENOENT was reported");
      if (r.reason !== g.dead || r.reason.length === 0) bad(`reason is not ${g.dead}`);
      if (r.result !== new TextEncoder().encode(r.reason).length + 1) bad("wrong length");
    } else if (r.kind === "dma") {
      const p = g.pendingDma;
      if (p === null || p.dma !== r.dma || p.key !== r.key) bad("not the pending DMA");
      if (r.dma !== r.dma >>> 0 || r.key !== r.key >>> 0) bad("not u32 values");
    } else if (r.errno === ENOENT) {
      if (g.dead === null) bad("-ENOENT for a live guest");
    } else if (r.errno !== EAGAIN) {
      bad("unexpected errno");
    }
  }

  /** close() while a read() is in flight (the read must end, the guest must be gone). */
  async #closeRead(s: Slot): Promise<void> {
    const file = s.file;
    if (file === null) return;
    const g = file.guest;
    this.calls += 2;
    const p = file.read();
    this.#close(s);
    const r = await p;
    if (g !== null) this.#checkGone(s, g, []);
    if (r.kind === "reason" && r.reason.length === 0) this.#violate("reason", "empty reason");
    if (r.kind === "errno" && ![ERESTARTSYS, ENOENT, EAGAIN, EINVAL].includes(r.errno)) {
      this.#violate("result", `g${s.index}: read() cut by close() returned -${r.errno}`);
    }
  }

  #close(s: Slot): void {
    const file = s.file;
    if (file === null) return;
    const g = file.guest;
    const bindings = g ? g.bindings.filter((b): b is Binding => b !== null) : [];
    this.calls++;
    file.close();
    s.file = null;
    s.cpu = null;
    s.guest = null;
    s.served = null;
    if (g !== null) {
      this.#countGuest(g);
      this.#checkGone(s, g, bindings);
    }
  }

  /** After close(): no binding of the guest left anywhere, no table entry, no timer. */
  #checkGone(s: Slot, g: Guest, had: Binding[]): void {
    for (const b of had.concat(g.bindings.filter((b): b is Binding => b !== null))) {
      if (this.host.dma.chain(b.key).includes(b)) {
        this.#violate("leak", `g${s.index}: a binding on ${b.key} survived close()`);
      }
    }
    if (g.bindings.some((b) => b !== null)) {
      this.#violate("leak", `g${s.index}: bindings left in a closed guest's table`);
    }
    if (this.host.guests[g.id] === g) {
      this.#violate("leak", `g${s.index}: a closed guest is still in the host's table`);
    }
    if (g.clockTimer !== undefined) this.#violate("leak", `g${s.index}: timer survived close()`);
    for (const k of this.seenKeys) {
      for (const b of this.host.dma.chain(k)) {
        if (b.owner === g) this.#violate("leak", `g${s.index}: closed guest bound on ${k}`);
      }
    }
  }

  /** close; open; LHREQ_INITIALIZE; map FUZZ on the last page; LGUEST_INIT; IRQ gates. */
  #reopen(s: Slot, pfn: number, ld: number, init: boolean, inline: number): void {
    this.#close(s);
    pfn >>>= 0;
    const m = s.memory;
    const top = pfn * PAGE_SIZE;
    const fits = top <= m.length;
    // Fresh lguest_data and arrays; the buffers keep the last guest's bytes
    // (deterministic, and cheaper than zeroing every time). The guard was
    // verified; refill it only where it moves.
    m.fill(0, 0, fits ? Math.min(top, F_BUF) : 0);
    if (!fits || top !== s.guardFrom) m.fill(GUARD_BYTE, fits ? top : 0);
    const cpu = new FuzzCpu(m, this);
    const file = this.host.open(cpu);
    this.calls++;
    const full = this.host.count >= MAX_LGUEST_GUESTS;
    const r = file.write([LHREQ_INITIALIZE, pfn, 0, 0, 0xc0000000]);
    s.file = file;
    s.cpu = cpu;
    s.guest = file.guest;
    s.seenDead = null;
    s.served = null;
    s.inline = inline;
    if (r !== 16) {
      if (!(fits ? r === -ENOSPC && full : r === -EINVAL)) {
        this.#violate("result", `g${s.index}: INITIALIZE pfn_limit ${hex(pfn)} returned ${r}`);
      }
      if (file.guest !== null) {
        this.#violate("result", `g${s.index}: failed INITIALIZE made a guest`);
      }
      m.fill(GUARD_BYTE); // no guest: the host must not touch any of it
      s.guardFrom = 0;
      return;
    }
    s.guardFrom = top;
    const g = file.guest!;
    if (top >= 2 * PAGE_SIZE) {
      file.mapShared({
        start: top - PAGE_SIZE,
        length: PAGE_SIZE,
        objectId: this.fuzzObject,
        objectOffset: 0,
        // A device refreshing its copy of the shared page (as the net segment does).
        sync: (x) => {
          if (x.dead === null) x.mem.setU32(top - 4, ++this.#syncs);
        },
      });
    }
    if (inline !== 0) {
      file.setOutputHandler((dma, key) => {
        if (inline === 2 && (dma & 4) !== 0) return false;
        s.served = g.pendingDma;
        this.#serveOutput(s, dma, key);
        return true;
      });
    }
    if (!init) return;
    // The guest's own static lguest_data (checked here, not with the host's ok()).
    if (ld + LD_SIZE <= top) writeLguestData(g.mem, ld);
    cpu.call(LHCALL_LGUEST_INIT, ld, 0, 0);
    for (let irq = 0; irq < 4 && s.running; irq++) {
      const [lo, hi] = gate();
      cpu.call(LHCALL_LOAD_IDT_ENTRY, FIRST_EXTERNAL_VECTOR + irq, lo, hi);
    }
    this.#serveParked(s);
  }

  /** Open an extra file and initialise it (fills the table: -ENOSPC), or close one. */
  #extra(w: number[], close: boolean): void {
    if (close || this.extras.length >= 11) {
      const f = this.extras.shift();
      if (f) {
        const g = f.guest;
        this.calls++;
        f.close();
        if (g !== null && this.host.guests[g.id] === g) {
          this.#violate("leak", "a closed extra guest is still in the host's table");
        }
      }
      if (close) return;
    }
    const cpu = new FuzzCpu(new Uint8Array(3 * PAGE_SIZE), this);
    const f = this.host.open(cpu);
    const full = this.host.count >= MAX_LGUEST_GUESTS;
    this.calls++;
    const r = f.write(w);
    let want: number;
    if (w.length < 1) want = -EFAULT;
    else if (w[0] >>> 0 !== LHREQ_INITIALIZE) want = -EINVAL;
    else if (w.length < 5) want = -EFAULT;
    else if (w[4] >>> 0 >= SWITCHER_ADDR) want = -EINVAL;
    else if ((w[1] >>> 0) * PAGE_SIZE > cpu.memory.length) want = -EINVAL;
    else if (full) want = -ENOSPC;
    else want = 16;
    if (r !== want) {
      this.#violate(
        "result",
        `extra: write([${w.map(hex).join(", ")}]) returned ${r}, not ${want}`,
      );
    }
    this.#count(`extra INITIALIZE: ${r}`);
    if (r === 16) this.extras.push(f);
    else f.close();
  }

  // --- the known-good pair ---

  #setupKnownGood(s: Slot, which: number): void {
    const m = s.memory;
    m.fill(0, 0, K_TOP);
    m.fill(GUARD_BYTE, K_TOP);
    const cpu = new FuzzCpu(m, this);
    const file = this.host.open(cpu);
    this.calls++;
    const r = file.write([LHREQ_INITIALIZE, KG_PAGES, 0, 0, 0xc0000000]);
    if (r !== 16) this.#violate("known-good", `g${s.index}: INITIALIZE returned ${r}`);
    s.file = file;
    s.cpu = cpu;
    s.guest = file.guest!;
    s.guardFrom = K_TOP;
    const g = s.guest;
    file.mapShared({
      start: K_PAIR_KEY,
      length: PAGE_SIZE,
      objectId: this.pairObject,
      objectOffset: 0,
    });
    file.mapShared({
      start: K_FUZZ_PAGE,
      length: PAGE_SIZE,
      objectId: this.fuzzObject,
      objectOffset: 0,
    });
    writeLguestData(g.mem, K_LD);
    this.#kgSync(s, LHCALL_LGUEST_INIT, K_LD, 0, 0);
    for (let irq = 0; irq < 6; irq++) {
      const [lo, hi] = gate();
      this.#kgSync(s, LHCALL_LOAD_IDT_ENTRY, FIRST_EXTERNAL_VECTOR + irq, lo, hi);
    }
    // A sink on the FUZZ page: fuzzed guests may send to it (offset 0 / 8).
    for (let i = 0; i < K_SINKS; i++) {
      writeDma(g.mem, K_SINK_ARR + i * DMA_SIZE, {
        usedLen: 0,
        addr: [K_SINK_BUF + i * PAGE_SIZE],
        len: [PAGE_SIZE],
      });
    }
    const ok = this.#kgSync(
      s,
      LHCALL_BIND_DMA,
      K_FUZZ_PAGE + 8 * which,
      K_SINK_ARR,
      (K_SINKS << 8) | (1 + which),
    );
    if (ok !== 1) this.#violate("known-good", `g${s.index}: sink BIND_DMA returned ${ok}`);
    s.shadow = new Int32Array(m.buffer.slice(0, K_TOP));
  }

  /** A known-good hypercall at setup (nothing can make it wait yet). */
  #kgSync(s: Slot, eax: number, edx: number, ebx: number, ecx: number): number {
    s.cpu!.call(eax, edx, ebx, ecx);
    if (s.cpu!.parked || s.guest!.dead !== null) {
      this.#violate("known-good", `g${s.index}: setup call ${eax} failed: ${s.guest!.dead}`);
    }
    return s.cpu!.result;
  }

  /** A known-good hypercall; a time-slice stop is resumed by read() round trips. */
  async #kgCall(s: Slot, eax: number, edx: number, ebx: number, ecx: number): Promise<number> {
    const cpu = s.cpu!;
    cpu.scripts = NO_CALLS;
    cpu.call(eax, edx, ebx, ecx);
    for (let n = 0; cpu.parked; n++) {
      if (s.guest!.dead !== null) break;
      if (n === 8) this.#violate("known-good", `g${s.index}: hypercall ${eax} never finishes`);
      this.calls += 3;
      const p = s.file!.read();
      s.file!.write([LHREQ_BREAK, 1]);
      const r = await p;
      s.file!.write([LHREQ_BREAK, 0]);
      if (r.kind !== "errno" || r.errno !== EAGAIN) {
        if (s.guest!.dead === null) {
          this.#violate("known-good", `g${s.index}: read() returned ${JSON.stringify(r)}`);
        }
      }
    }
    if (s.guest!.dead !== null) {
      this.#violate("known-good", `g${s.index} was killed: ${s.guest!.dead}`);
    }
    return cpu.result;
  }

  /**
   * The known-good pair's exchange: the receiver binds an array on the PAIR
   * key, the sender sends a fresh pattern; the bytes must arrive intact in
   * section order, both used_len must be the copied count, the receiver's
   * IRQ must be pending and then delivered, and the unbind must leave the
   * chain empty. The sender then sends a small packet to whichever guest
   * bound FUZZ offset `fz` (it must survive whatever that guest bound).
   * Each known-good guest also empties its sink (a used_len above its
   * 4096-byte section is an overrun) and its RAM outside the ranges the host
   * may write must equal what the guest itself wrote.
   */
  async #knownGood(a: Extract<Action, { k: "kg" }>): Promise<void> {
    const rs = this.slots[a.dir ? KG_B : KG_A];
    const ss = this.slots[a.dir ? KG_A : KG_B];
    const bad = (why: string): never => this.#violate("known-good", `exchange #${a.n}: ${why}`);
    for (const s of [rs, ss]) {
      const m = s.guest!.mem;
      for (let i = 0; i < K_SINKS; i++) {
        const el = K_SINK_ARR + i * DMA_SIZE;
        const u = m.u32(el + DMA_USED_LEN);
        if (u > PAGE_SIZE) bad(`g${s.index} sink element ${i} has used_len ${u} > its 4096 bytes`);
        if (u !== 0) m.setU32(el + DMA_USED_LEN, 0);
      }
    }
    const rm = rs.guest!.mem, sm = ss.guest!.mem;
    // Receiver: a fresh element over rx sections, the rest of the area marked.
    rm.bytes.fill(0xee, K_RX_BUF, K_RX_BUF + K_AREA);
    const rx = pairs(a.rx), tx = pairs(a.tx);
    writeDma(rm, K_RX_ARR, { usedLen: 0, addr: rx.map((p) => p[0]), len: rx.map((p) => p[1]) });
    if (
      await this.#kgCall(rs, LHCALL_BIND_DMA, K_PAIR_KEY, K_RX_ARR, (1 << 8) | K_PAIR_IRQ) !== 1
    ) {
      bad("BIND_DMA on the pair key failed");
    }
    // Sender: a fresh pattern (its own write, so the shadow follows).
    for (let i = 0; i < K_AREA; i++) sm.bytes[K_TX_BUF + i] = (i * 13 + a.n * 7 + 3) & 0xff;
    ss.shadow!.set(new Int32Array(sm.bytes.buffer, K_TX_BUF, K_AREA / 4), K_TX_BUF / 4);
    writeDma(sm, K_TX_DESC, { usedLen: 0, addr: tx.map((p) => p[0]), len: tx.map((p) => p[1]) });
    const irqsBefore = rs.cpu!.irqs[K_PAIR_IRQ];
    await this.#kgCall(ss, LHCALL_SEND_DMA, K_PAIR_KEY, K_TX_DESC, 0);
    const want = Math.min(sum(tx), sum(rx));
    const sent = sm.u32(K_TX_DESC + DMA_USED_LEN), got = rm.u32(K_RX_ARR + DMA_USED_LEN);
    if (sent !== want || got !== want) {
      bad(`used_len sender ${sent}, receiver ${got}, want ${want}`);
    }
    if ((rs.guest!.pending & (1 << K_PAIR_IRQ)) === 0 && rs.cpu!.irqs[K_PAIR_IRQ] === irqsBefore) {
      bad("the receiver's IRQ is not pending");
    }
    // The bytes: the sender's sections in order, scattered over the receiver's.
    const stream = new Uint8Array(want);
    let n = 0;
    for (const [addr, len] of tx) {
      const k = Math.min(len, want - n);
      stream.set(sm.bytes.subarray(addr, addr + k), n);
      n += k;
    }
    const expect = new Uint8Array(K_AREA).fill(0xee);
    n = 0;
    for (const [addr, len] of rx) {
      const k = Math.min(len, want - n);
      expect.set(stream.subarray(n, n + k), addr - K_RX_BUF);
      n += k;
    }
    const area = rm.bytes.subarray(K_RX_BUF, K_RX_BUF + K_AREA);
    for (let i = 0; i < K_AREA; i++) {
      if (area[i] !== expect[i]) {
        bad(`receiver byte ${hex(K_RX_BUF + i)} is ${area[i]}, not ${expect[i]}`);
      }
    }
    // Unbind: the IRQ is delivered on the way; the chain is empty afterwards.
    if (await this.#kgCall(rs, LHCALL_BIND_DMA, K_PAIR_KEY, K_RX_ARR, 0) !== 1) {
      bad("unbind failed");
    }
    if (rs.cpu!.irqs[K_PAIR_IRQ] === irqsBefore) bad("the receiver never got its IRQ");
    const ck = canonicalKey(rs.guest!, K_PAIR_KEY);
    if (this.host.dma.chain(ck).length !== 0) bad("bindings left on the pair key");
    // A small send to the fuzzed guests.
    writeDma(sm, K_FZ_DESC, { usedLen: 0, addr: [K_TX_BUF], len: [64] });
    await this.#kgCall(ss, LHCALL_SEND_DMA, K_FUZZ_PAGE + a.fz, K_FZ_DESC, 0);
    const u = sm.u32(K_FZ_DESC + DMA_USED_LEN);
    if (u > 64) bad(`send to the fuzzed guests reports ${u} of 64 bytes`);
    this.#checkShadow(rs);
    this.#checkShadow(ss);
  }

  /** A known-good guest's RAM outside the host-writable ranges is as the guest left it. */
  #checkShadow(s: Slot): void {
    const cur = s.i32, sh = s.shadow!;
    let from = 0;
    for (const [lo, hi] of [...K_WRITABLE, [K_TOP, K_TOP] as const]) {
      for (let i = from >> 2; i < lo >> 2; i++) {
        if (cur[i] !== sh[i]) {
          this.#violate(
            "foreign-write",
            `g${s.index} (known-good): RAM at ${hex(i * 4)} changed to ${hex(cur[i])}`,
          );
        }
      }
      from = (hi + 3) & ~3;
    }
  }

  // --- invariants after every step ---

  #afterStep(actor: number, full: boolean, also = -1): void {
    for (const s of this.slots) {
      const g = s.guest;
      const own = s.index === actor || s.index === also;
      if (g !== null) {
        const d = g.dead;
        if (d !== s.seenDead) this.#death(s, own, d);
      }
      this.#checkGuard(s, full ? -1 : own ? ACTOR_WORDS : QUICK_WORDS);
    }
    if (full) this.#checkTables();
  }

  #death(s: Slot, own: boolean, d: string | null): void {
    if (s.seenDead !== null) {
      this.#violate("reason", `g${s.index}: kill reason changed from "${s.seenDead}" to "${d}"`);
    }
    if (typeof d !== "string" || d.length === 0) {
      this.#violate("reason", `g${s.index} was killed without a reason (${JSON.stringify(d)})`);
    }
    s.seenDead = d;
    const what = d.startsWith("CRASH: ") && !d.startsWith("CRASH: bad read")
      ? "CRASH: (the guest's message)"
      : d.replace(/0x[0-9a-f]+|\b\d+\b/g, "N");
    this.#count("kill: " + what);
    if (s.kg) this.#violate("known-good", `g${s.index} (known-good) was killed: ${d}`);
    this.kills++;
    // Another guest's action may only kill a guest for its own registered array.
    if (!own && !(d.startsWith("SEND_DMA:") && d.includes("registered"))) {
      this.#violate("wrong-kill", `g${s.index} was killed by another guest's action: ${d}`);
    }
  }

  /** The first `words` of the guard past top (all of it for -1). */
  #checkGuard(s: Slot, words: number): void {
    const w = s.i32;
    const from = s.guardFrom >> 2;
    const end = words < 0 ? w.length : Math.min(w.length, from + words);
    for (let i = from; i < end; i++) {
      if (w[i] !== GUARD32) {
        let at = i * 4;
        while (s.memory[at] === GUARD_BYTE) at++;
        this.#violate(
          "guard",
          `g${s.index}: memory outside the guest touched: byte ${hex(at)} (top ${
            hex(s.guardFrom)
          }) is ${hex(s.memory[at])}`,
        );
      }
    }
  }

  /** Host table, binding chains, timers: consistent, bounded, nothing of a closed guest. */
  #checkTables(): void {
    const live = new Set<Guest>();
    for (const g of this.host.guests) if (g !== null) live.add(g);
    let open = 0;
    for (const s of this.slots) if (s.file !== null && s.guest !== null) open++;
    for (const f of this.extras) if (f.guest !== null) open++;
    if (live.size !== open || this.host.count !== open) {
      this.#violate("table", `host has ${live.size} guests, ${open} files are open`);
    }
    for (const g of live) {
      if (this.host.guests[g.id] !== g) this.#violate("table", `guest ${g.id} in the wrong slot`);
      if (g.nextHcall < 0 || g.nextHcall >= LHCALL_RING_SIZE) {
        this.#violate("table", `guest ${g.id}: async cursor ${g.nextHcall}`);
      }
      for (const b of g.bindings) {
        if (b === null) continue;
        if (b.owner !== g || b.interrupt < 1 || b.interrupt >= LGUEST_IRQS) {
          this.#violate(
            "chain",
            `guest ${g.id}: bad binding ${JSON.stringify({ ...b, owner: 0 })}`,
          );
        }
        if (!this.host.dma.chain(b.key).includes(b)) {
          this.#violate("chain", `guest ${g.id}: binding on ${b.key} is not on its chain`);
        }
      }
    }
    for (const k of this.seenKeys) {
      for (const b of this.host.dma.chain(k)) {
        if (b.key !== k || !live.has(b.owner) || !b.owner.bindings.includes(b)) {
          this.#violate(
            "chain",
            `chain ${k}: a binding of guest ${b.owner.id} that is ${
              live.has(b.owner) ? "not in its table" : "closed"
            }`,
          );
        }
      }
    }
    if (this.clock.timers.size > live.size) {
      this.#violate("leak", `${this.clock.timers.size} timers for ${live.size} guests`);
    }
    for (const s of this.slots) {
      if (s.kg) {
        this.#checkShadow(s);
        if (s.guest!.dead !== null) this.#violate("known-good", `g${s.index}: ${s.guest!.dead}`);
      }
    }
  }
}

/** The guest whose action it is (-1: none). */
function actorOf(a: Action): number {
  return "g" in a ? a.g : a.k === "kg" ? (a.dir ? KG_A : KG_B) : -1;
}

function pairs(s: number[]): [number, number][] {
  const out: [number, number][] = [];
  for (let i = 0; i + 1 < s.length; i += 2) out.push([s[i], s[i + 1]]);
  return out;
}

function sum(p: [number, number][]): number {
  return p.reduce((t, x) => t + x[1], 0);
}
