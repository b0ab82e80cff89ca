/**
 * Host: the state the lguest module kept per guest (`struct lguest`).
 *
 * @module
 */

import { GDT_ENTRIES, IDT_ENTRIES, LGUEST_MAX_DMA } from "../abi/constants.ts";
import type { GuestMemory } from "./memory.ts";

/** One DMA binding slot (protocol §5.2). `interrupt === 0` marks it free. */
export interface Binding {
  /** Canonical key (see `dma.ts`). */
  key: number;
  /** Guest-physical address of the lguest_dma array. */
  dmas: number;
  /** Elements in the array (u16). */
  numDmas: number;
  /** Circular search hint (u16), for SEND_DMA and GETDMA alike. */
  nextDma: number;
  /**
   * The element the last GETDMA returned and next_dma before it (-1: none):
   * {@link DmaEngine.giveBack} rewinds the cursor for a buffer taken and
   * left unfilled.
   */
  lastGet: number;
  lastGetFrom: number;
  /** IRQ raised on delivery; 0 = free slot. */
  interrupt: number;
  owner: Guest;
}

/** A Launcher-bound DMA waiting for the Launcher's next read(). */
export interface PendingDma {
  dma: number;
  key: number;
}

/** A region of guest-physical space backed by a shared object (§5.1). */
export interface SharedRegion {
  /** First guest-physical address of the region (page aligned). */
  start: number;
  /** Length in bytes (whole pages). */
  length: number;
  /** Identity of the shared object, 0..2^20. */
  objectId: number;
  /** Byte offset of `start` within the shared object. */
  objectOffset: number;
  /**
   * Make this guest's view of the region coherent with the other mappers'
   * (the wasm engine gives each guest its own copy of the page). Called at
   * the guest's BIND_DMA, SEND_DMA and HALT hypercalls, before the call.
   */
  sync?: (g: Guest) => void;
  /**
   * May `g` BIND_DMA a key at byte `offset` of the shared object? Absent:
   * any key. A net segment allows only the binder's own slot key, so no
   * guest can take frames meant for another (see docs/security.md).
   */
  mayBind?: (g: Guest, offset: number) => boolean;
}

/** Drop and event counters of one guest, for --verbose and the tests. */
export interface GuestCounters {
  hypercalls: number;
  asyncHypercalls: number;
  dmaToLauncher: number;
  dmaToGuest: number;
  dmaBytesToGuest: number;
  /** Inter-guest sends that found no bound receiver. */
  dmaNoReceiver: number;
  /** Inter-guest sends dropped because the receiver stayed full. */
  dmaDroppedFull: number;
  /** Transfers abandoned on an error (no receiver interrupt). */
  dmaAbandoned: number;
  /** GETDMA calls that found no free buffer. */
  getDmaNone: number;
  interrupts: number;
  /**
   * Halts answered inside the guest's event() call (the halt wait in place,
   * host/host.ts): input that was there at the halt or came while the Host
   * blocked there, handed over as event()'s interrupt without the guest's
   * stack parking and resuming.
   */
  haltWaitsInPlace: number;
  /**
   * Halts with a busy tap that slept in the event loop instead of the
   * blocking idle wait (host/idle_wait.ts) because an op of ours was in
   * flight on Deno's blocking pool that the wait would not see end (a
   * console's read of its source, another tap's poll thread: sys/clock.ts
   * poolOps).
   */
  waitsOffForPoolOps: number;
  /**
   * Blocking idle waits that also polled a console's stdin, whose poll on
   * Deno's blocking pool was in flight (sys/clock.ts poolOps): the wait
   * might not see that poll's end itself.
   */
  waitsWatchingPoolOps: number;
}

/** Registers the hypercall convention uses (EAX = nr, EDX, EBX, ECX). */
export interface Regs {
  eax: number;
  edx: number;
  ebx: number;
  ecx: number;
  /** True while a synchronous hypercall is trapped and not yet done. */
  trapped: boolean;
}

/** What a guest wakes on while halted. */
type Waiter = () => void;

/** Per-guest Host state. */
export class Guest {
  readonly id: number;
  readonly mem: GuestMemory;
  readonly pfnLimit: number;
  readonly pgdir: number;
  readonly start: number;
  readonly pageOffset: number;
  readonly regs: Regs = { eax: 0, edx: 0, ebx: 0, ecx: 0, trapped: false };

  /** lguest_data.tsc_khz written at LGUEST_INIT (the engine's counter rate). */
  tscKhz = 0;
  /** Guest-physical address of lguest_data; 0 until LGUEST_INIT. */
  lguestData = 0;
  noirqStart = 0;
  noirqEnd = 0;
  /** Host cursor into the async hypercall ring. */
  nextHcall = 0;

  /**
   * The guest's own exit status (0..255) when it died by CRASH with
   * LGUEST_CRASH_EXIT (an extension); null otherwise.
   */
  exitStatus: number | null = null;
  /** Has LGUEST_INIT run? (Its page; 0 before.) The status bytes of its async ring. */
  hcallStatus: Uint8Array = new Uint8Array(0);

  /**
   * The "attention" word: nonzero when the next hypercall must take the
   * slow path (the Host's full check of every reason to stop or deliver).
   * Every setter of the fields below (pending, halted, breakOut, preempt,
   * pendingDma, retryDma, dead) sets it when it gives them a value that
   * needs attention, so the fast path tests one word instead of eight;
   * only the Host's full check clears it, after finding nothing to do.
   * 1 until LGUEST_INIT.
   */
  attention = 1;
  /** Hypercalls in this time slice (the Host looks at the clock every 1024). */
  sliceCount = 0;

  #dead: string | null = null;
  #pending = 0;
  #halted = false;
  #breakOut = false;
  #preempt = false;
  #pendingDma: PendingDma | null = null;
  #retryDma: { ckey: number; udma: number } | null = null;

  /** The first kill reason; null while alive (set by {@link kill}). */
  get dead(): string | null {
    return this.#dead;
  }
  /** The reason was already reported once as ENOENT (§6.2). */
  deathReported = false;

  /** Pending interrupt bitmap (32 IRQs). */
  get pending(): number {
    return this.#pending;
  }
  set pending(v: number) {
    this.#pending = v;
    if (v !== 0) this.attention = 1;
  }
  get halted(): boolean {
    return this.#halted;
  }
  set halted(v: boolean) {
    this.#halted = v;
    if (v) this.attention = 1;
  }
  get breakOut(): boolean {
    return this.#breakOut;
  }
  set breakOut(v: boolean) {
    this.#breakOut = v;
    if (v) this.attention = 1;
  }
  /** Set when the guest used up its time slice (checked at hypercalls). */
  get preempt(): boolean {
    return this.#preempt;
  }
  set preempt(v: boolean) {
    this.#preempt = v;
    if (v) this.attention = 1;
  }
  get pendingDma(): PendingDma | null {
    return this.#pendingDma;
  }
  set pendingDma(v: PendingDma | null) {
    this.#pendingDma = v;
    if (v !== null) this.attention = 1;
  }
  /** A shared-key send whose receiver was full, to retry once (see DmaEngine.retry). */
  get retryDma(): { ckey: number; udma: number } | null {
    return this.#retryDma;
  }
  set retryDma(v: { ckey: number; udma: number } | null) {
    this.#retryDma = v;
    if (v !== null) this.attention = 1;
  }

  /**
   * Recompute {@link attention} from every reason (the Host's full check):
   * nonzero iff a synchronous call is trapped, an IRQ is pending, the guest
   * halted, a DMA waits for the Launcher or a retry, it is dead, BREAK is
   * on, or its slice is over. (Before LGUEST_INIT the word stays set, the
   * result does not say so.)
   */
  needsAttention(): boolean {
    const a = this.regs.trapped || this.#pending !== 0 || this.#halted ||
      this.#pendingDma !== null || this.#dead !== null || this.#breakOut || this.#preempt ||
      this.#retryDma !== null;
    this.attention = a || this.lguestData === 0 ? 1 : 0;
    return a;
  }

  readonly bindings: (Binding | null)[] = new Array(LGUEST_MAX_DMA).fill(null);
  readonly shared: SharedRegion[] = [];

  /** CPU state kept for fidelity (the wasm engine has no segments or MMU). */
  readonly gdt: Uint32Array = new Uint32Array(GDT_ENTRIES * 2);
  readonly idt: Uint32Array = new Uint32Array(IDT_ENTRIES * 2);
  readonly syscallIdt: Uint32Array = new Uint32Array(2);
  readonly pgdirs: number[] = [];
  ts = 0;
  stack = { ss: 0, esp: 0, pages: 0 };
  clockTimer: ReturnType<typeof setTimeout> | undefined;
  /** When `clockTimer` fires (`nowMs()` clock); Infinity when none is set. */
  clockDeadline = Infinity;

  /** Synchronous hypercalls of the time slices before this one. */
  hcallsBefore = 0;

  readonly counters: GuestCounters;

  #waiters: Waiter[] = [];

  /** Start a new time slice's hypercall count. */
  newSlice(): void {
    this.hcallsBefore += this.sliceCount;
    this.sliceCount = 0;
  }

  constructor(
    id: number,
    mem: GuestMemory,
    args: { pfnLimit: number; pgdir: number; start: number; pageOffset: number },
  ) {
    this.id = id;
    this.mem = mem;
    this.pfnLimit = args.pfnLimit;
    this.pgdir = args.pgdir;
    this.start = args.start;
    this.pageOffset = args.pageOffset;
    // deno-lint-ignore no-this-alias
    const g = this;
    this.counters = {
      // Counted per time slice (sliceCount) so the NOP's fast path pays one
      // increment, not two; async calls come from the ring's own counter.
      get hypercalls(): number {
        return g.hcallsBefore + g.sliceCount + this.asyncHypercalls;
      },
      asyncHypercalls: 0,
      dmaToLauncher: 0,
      dmaToGuest: 0,
      dmaBytesToGuest: 0,
      dmaNoReceiver: 0,
      dmaDroppedFull: 0,
      dmaAbandoned: 0,
      getDmaNone: 0,
      interrupts: 0,
      haltWaitsInPlace: 0,
      waitsOffForPoolOps: 0,
      waitsWatchingPoolOps: 0,
    };
  }

  /**
   * Where the guest's hints go (CRASH + LGUEST_CRASH_HINT, an extension):
   * the hint number and the message, raw guest text the receiver must show
   * only as data. Null: hints are dropped.
   */
  onHint: ((hint: number, message: string) => void) | null = null;
  /** Hints 0..31 given already: each reaches {@link onHint} once. */
  #hinted = 0;

  /** A hint from the guest: passed on once per number 0..31; other numbers are dropped. */
  hint(hint: number, message: string): void {
    if (hint >= 32 || this.#dead !== null || (this.#hinted & (1 << hint)) !== 0) return;
    this.#hinted |= 1 << hint;
    this.onHint?.(hint, message);
  }

  /** kill_guest(): keep the first reason only; the guest never runs again. */
  kill(reason: string): void {
    if (this.#dead === null) this.#dead = reason;
    this.attention = 1;
    this.wake();
  }

  readonly #stopWaiters = new Set<Waiter>();

  /**
   * Call `fn` once, the next time the guest's CPU stops (see
   * {@link stopped}). Returns a function that cancels the call: a waiter
   * that gave up must not stay behind (a guest that never runs again must
   * not collect them).
   */
  onNextStop(fn: Waiter): () => void {
    this.#stopWaiters.add(fn);
    return () => this.#stopWaiters.delete(fn);
  }

  /** The Host's run loop got control back from the guest's CPU. */
  stopped(): void {
    if (this.#stopWaiters.size === 0) return;
    const w = [...this.#stopWaiters];
    this.#stopWaiters.clear();
    for (const f of w) f();
  }

  /** Waiters for the next stop (for tests: none may pile up). */
  get stopWaiters(): number {
    return this.#stopWaiters.size;
  }

  /** Sleep until woken (timer, inter-guest DMA, BREAK, kill). */
  sleep(): Promise<void> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Is the guest's run loop in {@link sleep}, not yet woken? */
  get sleeping(): boolean {
    return this.#waiters.length !== 0;
  }

  /** Wake the guest's run loop if it sleeps. */
  wake(): void {
    const w = this.#waiters;
    if (w.length === 0) return;
    this.#waiters = [];
    for (const f of w) f();
  }
}
