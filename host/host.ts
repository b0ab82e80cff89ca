/**
 * Host: what the lguest kernel module was — the guest table, the keyed DMA
 * engine, and `/dev/lguest` as an object ({@link LguestFile}), with the
 * semantics of protocol §6.
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
  LGUEST_IRQS,
  LHCALL_FLUSH_ASYNC,
  LHREQ_BREAK,
  LHREQ_GETDMA,
  LHREQ_INITIALIZE,
  LHREQ_IRQ,
  MAX_LGUEST_GUESTS,
  SWITCHER_ADDR,
} from "../abi/constants.ts";
import { DMA_USED_LEN } from "../abi/structs.ts";
import {
  type GuestCpu,
  type HypercallPort,
  LG_EV_DONE,
  LG_EV_WAIT,
  LG_EVENT,
} from "../engines/engine.ts";
import { DmaEngine } from "./dma.ts";
import { Guest, type SharedRegion } from "./guest.ts";
import { doHcall, doHypercalls, syncShared } from "./hypercalls.ts";
import { interruptDeliverable, takeInterrupt } from "./interrupts.ts";
import { GuestMemory } from "./memory.ts";
import { localRead, nowMs, poolOps, watchedFd } from "../sys/clock.ts";

/**
 * The blocking idle wait (host/idle_wait.ts), loaded by the first guest
 * that has a wait fd (a tap): a run without one never loads it
 * (boot.first_byte, docs/performance.md). A literal dynamic import: in the
 * module graph, so no permission is needed to load it.
 */
let idleWait: typeof import("./idle_wait.ts") | null = null;
let loadingIdleWait: Promise<typeof import("./idle_wait.ts")> | null = null;

/** What read() returned (§6.2). `result` is the original's return value. */
export type ReadResult =
  | { kind: "dma"; result: 8; dma: number; key: number }
  | { kind: "errno"; result: number; errno: number }
  | { kind: "reason"; result: number; reason: string };

/** #blockingIdle: no wait, the event loop's turn of this time slice is due (a quick one). */
const WOKE_SLICE = -1;

/** How long a guest runs before it must let the event loop in. */
const TIME_SLICE_MS = 4;
/** Interrupt handlers a guest may have open inside each other (see event()). */
const MAX_IRQ_NESTING = 256;
/** Check the clock every this many hypercalls. */
const SLICE_CHECK_EVERY = 1024;

/** A caller identity for the owner-task rule of §6.1 (rule 3). */
export type Task = object;
const DEFAULT_TASK: Task = {};

/** The host: up to 16 guests sharing one DMA engine. */
export class Host {
  /** See DmaEngine.yieldOnFull; the Launcher turns it on. */
  constructor(opts: { yieldOnFull?: boolean } = {}) {
    this.dma.yieldOnFull = opts.yieldOnFull ?? false;
  }

  readonly guests: (Guest | null)[] = new Array(MAX_LGUEST_GUESTS).fill(null);
  readonly dma: DmaEngine = new DmaEngine();

  /** open("/dev/lguest"): a file for one guest run by `cpu`. */
  open(cpu: GuestCpu): LguestFile {
    return new LguestFile(this, cpu);
  }

  #nextObject = 0;

  /** A new shared-object identity (a net segment's page, …). */
  allocObjectId(): number {
    return this.#nextObject++;
  }

  /** Number of guests alive in the table. */
  get count(): number {
    return this.guests.filter((g) => g !== null).length;
  }
}

function errno(e: number): ReadResult {
  return { kind: "errno", result: -e, errno: e };
}

/** One open /dev/lguest: controls at most one guest. */
export class LguestFile implements HypercallPort {
  readonly host: Host;
  readonly cpu: GuestCpu;
  #guest: Guest | null = null;
  #owner: Task | null = null;
  #closed = false;
  #breakWaiters: (() => void)[] = [];
  #output: ((dma: number, key: number) => boolean) | null = null;
  #idle: (() => boolean) | null = null;
  #waitFds: ((out: number[]) => void) | null = null;
  #beforeSleep: (() => void) | null = null;
  /** What the halt wait in place (#haltInPlace) saw when it gave up, for read(); 0: none. */
  #woke = 0;
  /** The guest's last event() said LG_EV_WAIT for its halt: resumed, it asks event() again. */
  #waitsForHalt = false;
  /** The devices' armWait/disarmWait around a halt wait in place (setWaitFds). */
  #around: { arm(): void; disarm(): void } | null = null;
  #sliceStart = 0;
  /** Event loops the guest is in: hypercalls that returned LG_EVENT, not yet done. */
  #depth = 0;
  /**
   * EAX of hypercalls interrupted by an IRQ handler, and their event-loop
   * depths (two arrays of numbers: no object made per interrupt).
   */
  #savedEax: number[] = [];
  #savedDepth: number[] = [];

  constructor(host: Host, cpu: GuestCpu) {
    this.host = host;
    this.cpu = cpu;
    openFiles++;
    live.add(this);
  }

  /** The guest, once initialised (tests and the Launcher inspect it). */
  get guest(): Guest | null {
    return this.#guest;
  }

  /**
   * write(): the first word is the request, arguments follow (§6.1).
   * Returns the original's result: a byte count, an address, 0, or -errno.
   * LHREQ_BREAK with "on" returns 0 at once; {@link breakReleased} is the
   * original's blocking part.
   */
  write(req: ArrayLike<number>, task: Task = DEFAULT_TASK): number {
    if (req.length < 1) return -EFAULT;
    const kind = req[0] >>> 0;
    const g = this.#guest;
    if (this.#closed) return -EINVAL;
    // The original's order (§6.1): no guest, dead, not the owner, then the request.
    if (g === null) return kind === LHREQ_INITIALIZE ? this.#initialize(req, task) : -EINVAL;
    if (g.dead !== null) return -ENOENT;
    if (task !== this.#owner && kind !== LHREQ_BREAK) return -EPERM;
    if (kind === LHREQ_INITIALIZE) return -EBUSY;
    if (kind !== LHREQ_GETDMA && kind !== LHREQ_IRQ && kind !== LHREQ_BREAK) return -EINVAL;
    if (req.length < 2) return -EFAULT;
    const arg = req[1] >>> 0;
    switch (kind) {
      case LHREQ_GETDMA: {
        const found = this.host.dma.getDma(g, arg);
        if (found === null) return -ENOENT;
        g.mem.setU32(found.addr + DMA_USED_LEN, found.irq);
        return found.addr;
      }
      case LHREQ_IRQ:
        if (arg >= LGUEST_IRQS) return -EINVAL;
        g.pending |= 1 << arg;
        return 0; // does not wake the guest (§6.1)
      case LHREQ_BREAK:
        if (arg !== 0) {
          g.breakOut = true;
          g.wake();
        } else {
          g.breakOut = false;
          this.#releaseBreak();
        }
        return 0;
      default:
        return -EINVAL;
    }
  }

  /** Resolves when BREAK is turned off again (the Waker's blocked write). */
  breakReleased(): Promise<void> {
    const g = this.#guest;
    if (g === null || !g.breakOut) return Promise.resolve();
    return new Promise((resolve) => this.#breakWaiters.push(resolve));
  }

  #releaseBreak(): void {
    const w = this.#breakWaiters;
    this.#breakWaiters = [];
    for (const f of w) f();
  }

  #initialize(req: ArrayLike<number>, task: Task): number {
    if (req.length < 5) return -EFAULT;
    const [pfnLimit, pgdir, start, pageOffset] = [1, 2, 3, 4].map((i) => req[i] >>> 0);
    if (pageOffset >= SWITCHER_ADDR) return -EINVAL; // collides with the switcher slot
    if (pfnLimit * 4096 > this.cpu.memory.length) return -EINVAL; // ours: RAM must cover top
    const id = this.host.guests.indexOf(null);
    if (id < 0) return -ENOSPC;
    const g = new Guest(id, new GuestMemory(this.cpu.memory, pfnLimit), {
      pfnLimit,
      pgdir,
      start,
      pageOffset,
    });
    g.tscKhz = this.cpu.tscKhz ?? 0;
    this.host.guests[id] = g;
    this.#guest = g;
    this.#owner = task;
    this.cpu.attach(this);
    return 16;
  }

  /**
   * Map a shared object over `[start, start+length)` of this guest (the
   * Launcher's MAP_SHARED of a segment page, §10.4b). Keys inside it
   * canonicalise to the object.
   */
  mapShared(region: SharedRegion): void {
    if (this.#guest === null) throw new Error("host: mapShared before LHREQ_INITIALIZE");
    this.#guest.shared.push(region);
  }

  /**
   * read(): run the guest (§6.2). Resolves with a Launcher-bound DMA, an
   * errno (-EAGAIN on BREAK, -ENOENT on death, …) or, after death has been
   * reported, the reason.
   */
  async read(task: Task = DEFAULT_TASK): Promise<ReadResult> {
    const g = this.#guest;
    if (g === null || this.#closed) return errno(EINVAL);
    if (task !== this.#owner) return errno(EPERM);
    if (g.dead !== null && g.deathReported) {
      return {
        kind: "reason",
        result: new TextEncoder().encode(g.dead).length + 1,
        reason: g.dead,
      };
    }
    g.pendingDma = null;
    /** The last look found input through the blocking idle wait. */
    let waited = false;
    /** The last step was an event-loop turn after a halt wait (the guest may go back to waiting in place). */
    let turned = false;
    this.#woke = 0;
    while (g.dead === null) {
      // Closed while this read() waited: the guest is gone, run nothing more of
      // it (a hypercall now could bind after close() released the bindings).
      if (this.#closed) return errno(ERESTARTSYS);
      // Not while a Launcher DMA is unserviced: the engine's hypercall() already
      // ran the ring up to it (the original ran do_hypercalls once per exit).
      if (g.retryDma !== null) {
        // Let the full receiver run first.
        await yieldForReceiver(this.host.dma.receiverOf(g, g.retryDma.ckey));
        if (!this.#closed) this.host.dma.retry(g, g.retryDma);
        continue;
      }
      if (g.regs.trapped && g.pendingDma === null) doHypercalls(g, this.host.dma);
      if (g.pendingDma !== null) {
        const { dma, key } = g.pendingDma;
        return { kind: "dma", result: 8, dma, key };
      }
      if (this.#closed) return errno(ERESTARTSYS);
      if (g.breakOut) return errno(EAGAIN);
      if (g.dead !== null) break;
      halt: if (g.halted && !interruptDeliverable(g)) {
        // Before sleeping: input that is already there (a frame the tap holds)
        // goes in now, without a trip through a poll thread and BREAK.
        if (this.#idle !== null && this.#idle() && (g.dead !== null || interruptDeliverable(g))) {
          // A steady stream of input must not keep the event loop out: a real
          // turn at least once per time slice (as yieldForReceiver). Not between
          // a blocking wait and the guest's answer: #blockingIdle gives that turn
          // before it blocks, after the guest has answered.
          if (!waited && performance.now() - lastTurn > TIME_SLICE_MS) await yieldToEventLoop();
          waited = false;
          continue;
        }
        waited = false;
        // Every guest sleeps and a device's fd carried input lately (a tap):
        // block this thread in poll(2) until that fd or the event loop has
        // something (host/idle_wait.ts), saving the poll thread's wake-up.
        if (this.#waitFds !== null) {
          if (idleWait === null) {
            // Loaded once; anything may have happened meanwhile: look again.
            // One probe for all the guests of the process (idle_wait.ts findLoopFds).
            loadingIdleWait ??= import("./idle_wait.ts").then(async (iw) => {
              await iw.findLoopFds(yieldToEventLoop);
              return iw;
            });
            idleWait = await loadingIdleWait;
            continue;
          }
          const iw = idleWait;
          if (iw.probeDue()) {
            // A probe that gave up (CPU load) is tried again a while later (findLoopFds).
            loadingIdleWait = iw.findLoopFds(yieldToEventLoop).then(() => iw);
            await loadingIdleWait;
            continue;
          }
          const afterTurn = turned;
          turned = false;
          // What the halt wait in place saw last, if it gave up (see #haltInPlace).
          let woke = this.#woke;
          this.#woke = 0;
          if (woke === 0) {
            // After the turn the wait in place gave up for, the guest goes back
            // to waiting there (resumed, it asks event() again), where the next
            // frame's answer skips a park and resume. Only after a turn: every
            // round of this comes with one, never a spin of resumes.
            if (
              afterTurn && this.#waitsForHalt && this.cpu.haltedInPlace !== undefined &&
              this.#blockingIdle(g, iw, true) === iw.WOKE_INPUT
            ) {
              break halt;
            }
            woke = this.#blockingIdle(g, iw);
          }
          if (woke === iw.WOKE_INPUT) {
            waited = true;
            continue;
          }
          if (woke !== 0) {
            await (woke === WOKE_SLICE
              ? yieldToEventLoop()
              : woke === iw.WOKE_TIME
              ? timerTurn()
              : ioTurn());
            // Not after a wait that ran to its time: the traffic is sparse (50 ms
            // without a frame), and every round back into the guest's halt would
            // cost a park and a resume per 50 ms (netd pinged 5 times a second:
            // 52-55 -> 54-65 ms of CPU in 6 s); the next frame takes the run loop's way.
            turned = woke !== iw.WOKE_TIME;
            continue;
          }
          // Sleeping in the event loop: the devices watch their fds from there.
          this.#beforeSleep?.();
        }
        // Nothing may be left to wake it but a stop from outside: the process
        // must not end under a sleeping guest (docs/guest-abi.md §7).
        holdProcess();
        await g.sleep();
        continue;
      }
      if (g.preempt) {
        g.preempt = false;
        // A device that watches its fd only while the guest sleeps (a hot tap)
        // is looked at once per time slice while the guest runs.
        if (this.#beforeSleep !== null) this.#idle?.();
        await yieldToEventLoop();
        continue;
      }
      this.#sliceStart = nowMs();
      g.newSlice();
      if (g.shared.length !== 0) syncShared(g);
      await this.cpu.run();
      g.stopped();
    }
    g.deathReported = true;
    this.#stopTimer(g);
    return errno(ENOENT);
  }

  /** Alias of {@link read}: run the guest until the Launcher is needed. */
  run(task?: Task): Promise<ReadResult> {
    return this.read(task);
  }

  /**
   * Kill the guest from the Launcher's side (an extension: the original
   * Launcher exited instead, e.g. on a bad DMA address, §9.6).
   */
  kill(reason: string): void {
    this.#guest?.kill(reason);
  }

  /** close(): release the guest's slot, bindings and timer (§6.4). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    live.delete(this);
    if (--openFiles === 0) {
      closeYieldPort();
      releaseProcess();
    }
    const g = this.#guest;
    if (g !== null) {
      this.#stopTimer(g);
      this.host.dma.releaseAll(g);
      if (this.host.guests[g.id] === g) this.host.guests[g.id] = null;
      g.wake();
    }
    this.#releaseBreak();
    this.cpu.close();
  }

  /**
   * The inline output path: serve Launcher-bound DMAs inside the hypercall
   * while the handler takes them (then the ring and a deferred synchronous
   * call go on, as after a read() round trip).
   */
  #serveInline(g: Guest): void {
    while (g.pendingDma !== null && g.dead === null) {
      const { dma, key } = g.pendingDma;
      if (!this.#output!(dma, key)) return; // not served: the Launcher's read() gets it
      g.pendingDma = null;
      if (g.regs.trapped) doHypercalls(g, this.host.dma);
    }
  }

  /**
   * Install (or remove, with null) an inline output handler: an extension
   * in the spirit of vhost. A Launcher-bound SEND_DMA is offered to it
   * inside the hypercall; if it returns true it has served the DMA (and
   * written used_len), and the guest goes on without stopping. If it
   * returns false, the DMA takes the original path: read() returns
   * `[dma, key]`. From the guest's side nothing changes: the send is
   * complete when the hypercall returns.
   */
  setOutputHandler(fn: ((dma: number, key: number) => boolean) | null): void {
    this.#output = fn;
  }

  /**
   * Install (or remove) an idle handler: called in read() when the guest
   * has halted with nothing to deliver, just before it would sleep. It may
   * feed input (LHREQ_GETDMA, LHREQ_IRQ: the guest is stopped) and returns
   * true if it did; the guest then runs on if an interrupt is deliverable.
   */
  setIdleHandler(fn: (() => boolean) | null): void {
    this.#idle = fn;
  }

  /**
   * Install (or remove) the fds whose readability means the idle handler
   * has input: `fn` appends them to `out`, none while a blocking wait is
   * not worth it (no input lately, the device is closed). See
   * {@link #blockingIdle}. `beforeSleep` is called when the guest sleeps
   * in the event loop instead: devices must then watch their fds from
   * there (between the two, while the guest runs, the idle handler is
   * called once per time slice).
   */
  setWaitFds(
    fn: ((out: number[]) => void) | null,
    beforeSleep: (() => void) | null,
    around: { arm(): void; disarm(): void } | null = null,
  ): void {
    this.#waitFds = fn;
    this.#beforeSleep = fn === null ? null : beforeSleep;
    this.#around = fn === null ? null : around;
  }

  /**
   * The guest `g` has halted with nothing to deliver. If it has a live wait
   * fd, every other guest of the process sleeps and none of them has a live
   * wait fd (two busy taps: each guest's own poll thread watches its tap, as
   * before: one run loop waiting for both woke a guest through the other's
   * wait and left its own tap unwatched during the turns that followed),
   * block in poll(2) on this guest's fds and the event loop's fds, until the
   * nearest guest timer at most (host/idle_wait.ts). Returns WOKE_INPUT
   * (run the idle handler again), WOKE_LOOP (the event loop has I/O: a
   * turn in which the runtime parks), WOKE_TIME (the time is up: a timer
   * may be due, a timer turn runs it) or WOKE_SLICE (the time slice's turn
   * comes before blocking: a quick one), then look again; or 0: no
   * blocking wait here, sleep as before.
   */
  #blockingIdle(
    g: Guest,
    iw: typeof import("./idle_wait.ts"),
    onlyAsk = false,
    arm = false,
  ): number {
    const fds = waitFdList;
    fds.length = 0;
    this.#waitFds!(fds);
    const own = fds.length;
    if (own === 0 || !iw.canBlock()) return 0;
    // Work of ours on Deno's blocking pool, whose end this wait may not see (sys/clock.ts
    // poolOps): a console's poll of stdin ends only when stdin is readable, so the wait polls
    // stdin itself (readable: the event loop's turn collects the end); this guest's own tap's
    // poll ends at a frame on the fd the wait polls. Anything else (a console's read, another
    // tap's poll) keeps the guest in the event loop, which sees it.
    const watched = watchedFds;
    watched.length = 0;
    if (poolOps.size !== 0) {
      for (const k of poolOps) {
        // fds holds only this guest's own wait fds here (the others' are added below).
        if (typeof k === "number" && fds.includes(k)) continue;
        if (localRead(k)) continue; // the API's console input: only our own code can end it
        const fd = watchedFd(k);
        if (fd < 0) {
          g.counters.waitsOffForPoolOps++;
          return 0;
        }
        if (!watched.includes(fd)) watched.push(fd);
      }
    }
    let deadline = g.clockDeadline;
    for (const f of live) {
      if (f === this) continue;
      const o = f.#guest;
      if (o === null || o.dead !== null) continue;
      if (!o.sleeping) return 0; // another guest has work: the event loop is needed
      f.#waitFds?.(fds);
      if (fds.length !== own) return 0; // another busy tap
      deadline = Math.min(deadline, o.clockDeadline);
    }
    // The event loop's turn of this time slice comes now, before blocking (not
    // between the wait's input and the guest's answer: see read()).
    if (performance.now() - lastTurn > TIME_SLICE_MS) return WOKE_SLICE;
    if (onlyAsk) return iw.WOKE_INPUT;
    // In place, the devices may take the buffers for their next input now (armWait):
    // the guest stays stopped until #haltInPlace's next look, which disarms.
    if (arm) {
      this.#around?.arm();
      if (g.dead !== null) return 0; // a bad buffer killed it (as the next frame would have)
    }
    // A timer already due: a millisecond's poll lets its callback come, not a spin of turns.
    if (watched.length !== 0) g.counters.waitsWatchingPoolOps++;
    return iw.blockingWait(fds, Math.max(1, deadline - nowMs()), watched);
  }

  /**
   * The halt wait in place: the guest `g` halted (in event(), from its HALT
   * hypercall) with nothing to deliver. Where read() would let the guest's
   * stack park (a JSPI suspension), look at its devices and block in the
   * blocking idle wait itself and resume it, this does the same here,
   * synchronously, inside the event() call: a frame's interrupt is then
   * handed to the guest as event()'s answer, without the stack's park and
   * resume, the promise hops between them, or a new slice's set-up
   * (docs/performance.md, net.tap.rtt). Only under every condition of the
   * read() path's wait (#blockingIdle: every other guest sleeps, a live
   * wait fd, the event loop's fds known, its turn of this time slice
   * given) and for an engine that can (GuestCpu.haltedInPlace). True: an
   * interrupt is deliverable now (the guest goes on, a new time slice).
   * False: anything else (the event loop's I/O, a timer, the slice's turn,
   * a kill): the guest waits as before, and read() takes what the wait saw
   * ({@link #woke}) instead of waiting again.
   */
  #haltInPlace(g: Guest): boolean {
    const iw = idleWait;
    if (
      iw === null || this.#idle === null || this.#waitFds === null || this.#closed ||
      this.cpu.haltedInPlace === undefined || g.breakOut ||
      performance.now() - lastTurn > TIME_SLICE_MS ||
      this.#blockingIdle(g, iw, true) !== iw.WOKE_INPUT
    ) {
      return false;
    }
    for (;;) {
      const found = this.#idle();
      this.#around?.disarm(); // what the look did not fill goes back before anything else runs
      if (found) {
        if (g.dead !== null) return false;
        if (interruptDeliverable(g)) {
          const now = nowMs(); // one reading for both clocks
          this.#sliceStart = now;
          g.newSlice();
          this.cpu.haltedInPlace(now);
          g.counters.haltWaitsInPlace++;
          return true;
        }
      }
      const woke = this.#blockingIdle(g, iw, false, true);
      if (woke !== iw.WOKE_INPUT) {
        this.#around?.disarm();
        this.#woke = woke;
        return false;
      }
    }
  }

  #stopTimer(g: Guest): void {
    if (g.clockTimer !== undefined) clearTimeout(g.clockTimer);
    g.clockTimer = undefined;
    g.clockDeadline = Infinity;
  }

  // --- HypercallPort: called by the engine at every hypercall. ---

  get dead(): string | null {
    return this.#guest === null ? "no guest" : this.#guest.dead;
  }

  /** Guest code between hypercalls asks: is its time slice over? (It then stops.) */
  preempt(): boolean {
    const g = this.#guest;
    if (g === null || nowMs() - this.#sliceStart <= TIME_SLICE_MS) return false;
    g.preempt = true;
    return true;
  }

  hypercall(eax: number, edx: number, ebx: number, ecx: number): number {
    const g = this.#guest!;
    // Fast path: nothing needs attention (one word, see Guest.attention), the
    // async ring is empty (one status byte) and the call is the NOP.
    if (g.attention === 0 && eax === LHCALL_FLUSH_ASYNC && g.hcallStatus[g.nextHcall] === 0xff) {
      if ((++g.sliceCount & (SLICE_CHECK_EVERY - 1)) !== 0) return eax;
    }
    return this.hypercallSlow(g, eax, edx, ebx, ecx);
  }

  hypercallSlow(g: Guest, eax: number, edx: number, ebx: number, ecx: number): number {
    if (eax === LHCALL_FLUSH_ASYNC && g.attention === 0 && g.hcallStatus[g.nextHcall] === 0xff) {
      // The fast path's every 1024th call: the clock.
      this.#checkSlice(g);
      return g.attention === 0 ? eax : this.#attend(g, eax);
    }
    if (g.attention === 0 && g.hcallStatus[g.nextHcall] === 0xff) {
      eax = doHcall(g, this.host.dma, eax, edx, ebx, ecx);
      if ((++g.sliceCount & (SLICE_CHECK_EVERY - 1)) === 0) this.#checkSlice(g);
      return g.attention === 0 ? eax : this.#attend(g, eax);
    }
    const r = g.regs;
    if (g.dead === null && g.lguestData !== 0 && g.hcallStatus[g.nextHcall] === 0xff) {
      // Initialised, async ring empty: the call, then the full check.
      eax = doHcall(g, this.host.dma, eax, edx, ebx, ecx);
    } else if (g.dead === null) {
      r.eax = eax;
      r.edx = edx;
      r.ebx = ebx;
      r.ecx = ecx;
      r.trapped = true;
      doHypercalls(g, this.host.dma);
      eax = r.eax;
    }
    if ((++g.sliceCount & (SLICE_CHECK_EVERY - 1)) === 0) this.#checkSlice(g);
    return this.#attend(g, eax);
  }

  #checkSlice(g: Guest): void {
    // No slice runs before the first read() (a hypercall made straight on the
    // file, as the unit tests do): there is nothing to preempt.
    if (this.#sliceStart !== 0 && nowMs() - this.#sliceStart > TIME_SLICE_MS) {
      g.preempt = true;
    }
  }

  /**
   * The slow end of a hypercall: serve Launcher-bound DMA inline, then the
   * full check; LG_EVENT if the guest must run the event protocol.
   */
  #attend(g: Guest, eax: number): number {
    const r = g.regs;
    // Once the slice is over a request is not served here but at the guest's next stop (the
    // Launcher's read()): a guest that ignores LG_EVENT kept a slow device (a ,sync disk) busy
    // inside its hypercalls until its next look (found by attack: a neighbour 0.7-4.3 s late).
    if (g.pendingDma !== null && this.#output !== null && !g.preempt) {
      const deferred = r.trapped;
      this.#serveInline(g);
      // A device's work (a 1 MiB write, an fdatasync) is not a hypercall's few
      // microseconds: look at the clock after each, not only every 1024th call.
      this.#checkSlice(g);
      // The deferred synchronous call may have run in there: its EAX is the result.
      if (deferred) eax = r.eax;
    }
    if (g.needsAttention()) {
      r.eax = eax;
      this.#depth++;
      return LG_EVENT;
    }
    return eax;
  }

  event(): number {
    const g = this.#guest!;
    this.#waitsForHalt = false;
    if (g.dead !== null) return LG_EV_WAIT; // the engine unwinds on `dead`
    // Asked again at the depth where we handed out an IRQ: its handler has
    // returned ("iret"), so EAX is the interrupted hypercall's again.
    const saved = this.#savedDepth.length - 1;
    if (saved >= 0 && this.#savedDepth[saved] === this.#depth) {
      this.#savedDepth.pop();
      g.regs.eax = this.#savedEax.pop()!;
    }
    if (
      g.regs.trapped || g.pendingDma !== null || g.breakOut || g.preempt || g.retryDma !== null
    ) {
      return LG_EV_WAIT;
    }
    let irq = takeInterrupt(g);
    if (irq < 0 && g.halted && this.#haltInPlace(g)) irq = takeInterrupt(g);
    if (irq >= 0) {
      // Handlers inside handlers, each level state we keep: bounded, as a
      // kernel stack would be (a guest can nest without recursing in wasm).
      if (this.#savedDepth.length >= MAX_IRQ_NESTING) {
        g.kill(`interrupts nested deeper than ${MAX_IRQ_NESTING} levels`);
        return LG_EV_WAIT;
      }
      // The handler's own hypercalls overwrite regs.eax; x86 restores EAX on
      // iret, so keep it until the handler returns.
      this.#savedDepth.push(this.#depth);
      this.#savedEax.push(g.regs.eax);
      return irq;
    }
    if (g.halted) {
      this.#waitsForHalt = true;
      return LG_EV_WAIT;
    }
    this.#depth--;
    return (LG_EV_DONE | (g.regs.eax & 0x7fffffff)) >>> 0;
  }
}

/**
 * Let timers and I/O callbacks run before the guest continues: a
 * MessageChannel message is a macrotask without the millisecond clamp of
 * nested zero-delay timers (and without loading node:timers).
 */
function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => {
    yieldWaiters.push(resolve);
    if (yieldWaiters.length === 1) yieldPort().postMessage(0);
  });
}

/**
 * An event-loop turn in which Deno's runtime reads its epoll fd: a
 * MessageChannel turn does not (Deno runs it without parking), so I/O
 * readiness, a signal, a finished blocking-pool call that woke the blocking
 * idle wait would still be pending after it (idle_wait.ts parkTurn: why
 * not the 1 ms timer of {@link timerTurn}).
 */
async function ioTurn(): Promise<void> {
  await idleWait!.parkTurn(waitFdList);
  lastTurn = performance.now();
}

/**
 * An event-loop turn that runs the timers due (a guest's, the supervisor's
 * heartbeat, a program's): a 1 ms timer parks the runtime, whose timer
 * wheel then fires every timer past its time (neither a MessageChannel
 * turn nor {@link ioTurn} does, their turn does not advance it).
 */
function timerTurn(): Promise<void> {
  return new Promise((resolve) =>
    setTimeout(() => {
      lastTurn = performance.now();
      resolve();
    }, 1)
  );
}

/**
 * Wait until the guest `dest` (a full receiver, just woken by the send's
 * interrupt) has run, or an event-loop turn, whichever comes first. A
 * woken receiver runs in microtasks, so waiting for it directly saves the
 * sender a trip through the event loop per ring of frames; but at least
 * every time slice the wait is a real event-loop turn, so timers and I/O
 * are never starved by guests handing frames to each other.
 */
function yieldForReceiver(dest: Guest | null): Promise<void> {
  if (dest === null || performance.now() - lastTurn > TIME_SLICE_MS) return yieldToEventLoop();
  return new Promise((resolve) => {
    let done = false;
    const fire = () => {
      if (done) return;
      done = true;
      cancel(); // whichever came second must not stay registered
      resolve();
    };
    const cancel = dest.onNextStop(fire);
    yieldWaiters.push(fire);
    if (yieldWaiters.length === 1) yieldPort().postMessage(0);
  });
}

/**
 * A guest that halts with nothing pending (no timer, no input on the way)
 * sleeps until something from outside ends the run: --timeout, a signal,
 * an API stop. Deno would end (or, under a top-level await, abort) once
 * its event loop has nothing left, so the first sleep arms a timer that
 * never fires, and the last LguestFile's close() releases it. Not armed
 * before a guest first sleeps: the first timer of a process costs ~5 ms
 * of start-up (boot.first_byte), and a run that never sleeps needs none.
 */
let keepAlive: ReturnType<typeof setInterval> | undefined;
const KEEP_ALIVE_MS = 2 ** 30;

function holdProcess(): void {
  if (keepAlive === undefined && openFiles > 0) keepAlive = setInterval(() => {}, KEEP_ALIVE_MS);
}

function releaseProcess(): void {
  if (keepAlive === undefined) return;
  clearInterval(keepAlive);
  keepAlive = undefined;
}

/** Whether the sleep keep-alive is armed (for tests: released with the last guest). */
export function processHeld(): boolean {
  return keepAlive !== undefined;
}

/** Open LguestFiles of every Host of the process (the blocking idle wait looks at all). */
const live = new Set<LguestFile>();
/** Scratch of #blockingIdle: the fds polled. */
const waitFdList: number[] = [];
/** The fds of pool polls in flight that a blocking wait polls too (#blockingIdle). */
const watchedFds: number[] = [];

/** When the yield channel last delivered (an event-loop turn). */
let lastTurn = 0;

const yieldWaiters: (() => void)[] = [];
let channel: MessageChannel | null = null;
/** LguestFiles not yet closed: the channel is closed with the last one. */
let openFiles = 0;

/**
 * Close the channel once no guest is left (and no yield is in flight), so
 * that it does not keep the process alive: a program using the API must
 * exit after its guests. (Not `unref()`: an unref'd port lets the process
 * exit with a yield in flight, and once it has received a message Deno 2.9
 * keeps the loop alive for it anyway.)
 */
function closeYieldPort(): void {
  if (channel === null || yieldWaiters.length !== 0) return;
  channel.port1.close();
  channel.port2.close();
  channel = null;
}

function yieldPort(): MessagePort {
  if (channel === null) {
    channel = new MessageChannel();
    channel.port1.onmessage = () => {
      lastTurn = performance.now();
      const ws = yieldWaiters.splice(0);
      for (const w of ws) w();
      if (openFiles <= 0) closeYieldPort();
    };
  }
  return channel.port2;
}
