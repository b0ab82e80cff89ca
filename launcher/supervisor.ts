/**
 * Launcher: the supervisor — signals, --timeout and the terminal.
 *
 * Guests run on the main thread, so a guest spinning without hypercalls
 * blocks the event loop. A small Worker keeps watch: the main thread beats
 * a heartbeat in shared memory; if a signal arrives or the timeout passes
 * while the heartbeat is stale, the Worker restores the terminal and ends
 * the process itself (libc `_exit`), with the documented exit code.
 *
 * @module
 */

import {
  enterCbreak,
  giveBackForeground,
  restoreTerminal,
  takeForeground,
  TERMIOS_SIZE,
} from "./termios.ts";
import { EXIT } from "./exit.ts";
import { type SupervisorInit, watchdog } from "./supervisor_worker.ts";
import { functionWorker } from "../sys/worker.ts";
import { hostStackLine, isStackOverflow, printable } from "../sys/text.ts";

/** Signals that end a run, with their numbers. */
const SIGNALS = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGTERM: 15 } as const;
type SignalName = keyof typeof SIGNALS;

/** Heartbeat period, and how stale it may get before the Worker acts. */
export const HEARTBEAT_MS = 50;
export const STALE_MS = 750;

/** Layout of the shared block: heartbeat, state, termios. */
const HB = 0; // Int32: Date.now() mod 2^31 of the last beat
const TERM = 1; // Int32: 1 if the terminal must be restored on a hard exit
const FG = 2; // Int32: the process group to give the terminal back to, or 0
const TERMIOS_OFF = 12;

let early: Worker | null = null;

function startWorker(): Worker {
  return functionWorker(watchdog, "lguest watchdog");
}

/**
 * Start the watchdog Worker now, so that its start-up overlaps the main
 * thread's own (main.ts calls this first thing for `run`); the next
 * Supervisor adopts it.
 */
export function prestartWatchdog(): void {
  early ??= startWorker();
}

/** Stops the run on a signal or timeout, even if the guest spins. */
export class Supervisor {
  readonly #shared = new SharedArrayBuffer(TERMIOS_OFF + TERMIOS_SIZE);
  readonly #i32 = new Int32Array(this.#shared, 0, 3);
  readonly #termios = new Uint8Array(this.#shared, TERMIOS_OFF, TERMIOS_SIZE);
  readonly #worker: Worker | null;
  #beat: ReturnType<typeof setInterval> | undefined;
  readonly #timer: ReturnType<typeof setTimeout> | undefined;
  readonly #listeners: [SignalName, () => void][] = [];
  readonly #terminal: boolean;
  /** The run's stop, once {@link onStop} gave it. */
  #stop: ((code: number, why: string) => void) | null = null;
  /** A stop asked for before {@link onStop} (a signal, the Worker's failure): the first one. */
  #pending: [number, string] | null = null;
  #interrupt: (() => void) | null = null;
  #closed = false;
  /**
   * Resolves once the Worker listens for signals. Start the guest only
   * then: a signal that comes while the main thread is already blocked in
   * a spinning guest and the Worker's listeners are not yet in place is
   * never delivered to the Worker either (seen on Deno 2.9), and the run
   * would hang.
   */
  readonly ready: Promise<void>;

  /**
   * `signals`: end the run in order on a signal (the run's stop, so that what
   * is held is written out) even without a terminal or --timeout.
   */
  constructor(opts: { timeoutMs: number; terminal: boolean; signals?: boolean }) {
    // Listen before the terminal is changed: a signal between cbreak mode and the listeners kept
    // its default action and ended the process with the terminal left in cbreak mode (found by
    // attack: a Ctrl-C or SIGTERM in a run's first ~10 ms, 4 runs of 16). Until onStop, the stop
    // it asks for is kept (#request).
    if (opts.terminal || opts.timeoutMs > 0 || opts.signals) {
      for (const name of Object.keys(SIGNALS) as SignalName[]) {
        const fn = () => this.#signal(name);
        Deno.addSignalListener(name, fn);
        this.#listeners.push([name, fn]);
      }
    }
    try {
      // Cbreak mode needs libc; without --allow-ffi the terminal stays in line mode.
      this.#terminal = opts.terminal &&
        Deno.permissions.querySync({ name: "ffi" }).state === "granted" &&
        enterCbreak(this.#termios);
      Atomics.store(this.#i32, TERM, this.#terminal ? 1 : 0);
      // Ctrl-C once, also under `deno task` (termios.ts).
      Atomics.store(this.#i32, FG, this.#terminal ? takeForeground() : 0);
      this.#heartbeat();
      // Without a terminal to restore and without --timeout, nothing needs
      // watching: SIGINT/SIGQUIT/SIGTERM/SIGHUP keep their default action and end the
      // process at once, even while a guest spins (every write a guest was
      // told is done is already in its file). Starting the Worker costs the
      // main thread ~45 ms, so only a run that needs it pays for it: a
      // terminal, --timeout, or lines held back (`signals`: a --config run's
      // guests without stdio hold an unfinished line until it ends).
      if (!this.#terminal && opts.timeoutMs <= 0 && !opts.signals) {
        this.#unlisten();
        this.#worker = null;
        early?.terminate();
        early = null;
        this.ready = Promise.resolve();
      } else {
        // The heartbeat is for the Worker only. (Deno's first timer costs ~3.5 ms
        // of start-up, which a run without the Worker does not pay here.)
        this.#beat = setInterval(() => this.#heartbeat(), HEARTBEAT_MS);
        const worker = this.#worker = early ?? startWorker();
        early = null;
        this.ready = new Promise((resolve) => {
          const fail = (message: string) => {
            const why = isStackOverflow(message)
              ? hostStackLine()
              : `the watchdog thread failed: ${printable(message, 200)}`;
            resolve();
            this.#request(EXIT.USAGE, why);
          };
          worker.onmessage = (m: MessageEvent<unknown>) => {
            const failed = (m.data as { failed?: unknown } | null)?.failed;
            if (failed !== undefined) fail(String(failed));
            resolve();
          };
          // The Worker's own code can fail where the main thread's did not: under a small V8
          // --stack-size Deno's lazily loaded timers overflow there first (found by attack: the
          // Worker's uncaught error, ~80 lines from Deno, then exit 1). It tells us (a message,
          // or, uncaught, this event): a run that cannot keep --timeout's or a signal's promise
          // for a spinning guest stops, in one line, 125; one that ended first is not told.
          worker.onerror = (e: ErrorEvent) => {
            e.preventDefault();
            fail(e.message);
          };
        });
        const init: SupervisorInit = {
          shared: this.#shared,
          timeoutMs: opts.timeoutMs,
          hb: HB,
          term: TERM,
          fg: FG,
          termiosOff: TERMIOS_OFF,
          termiosSize: TERMIOS_SIZE,
          heartbeatMs: HEARTBEAT_MS,
          staleMs: STALE_MS,
          signals: SIGNALS,
          timeoutCode: EXIT.TIMEOUT,
          signalBase: EXIT.SIGNAL_BASE,
        };
        worker.postMessage(init);
      }
      if (opts.timeoutMs > 0) {
        this.#timer = setTimeout(
          () => this.#request(EXIT.TIMEOUT, `timed out after ${opts.timeoutMs / 1000} s`),
          opts.timeoutMs,
        );
      }
    } catch (e) {
      // Deno's lazily loaded timers can throw here under a small V8 --stack-size, after the
      // terminal was changed (found by attack: left in cbreak mode, another process group in
      // the foreground): it is put back before the error's one line.
      this.close();
      throw e;
    }
  }

  #unlisten(): void {
    for (const [name, fn] of this.#listeners) Deno.removeSignalListener(name, fn);
    this.#listeners.length = 0;
  }

  /** A stop, now, or once {@link onStop} gives the run's (the first one asked for is kept). */
  #request(code: number, why: string): void {
    if (this.#closed) return;
    if (this.#stop !== null) this.#stop(code, why);
    else this.#pending ??= [code, why];
  }

  #heartbeat(): void {
    Atomics.store(this.#i32, HB, Date.now() % 2 ** 31);
  }

  #signal(name: SignalName): void {
    this.#heartbeat();
    if (name === "SIGINT" && this.#terminal && this.#interrupt) {
      this.#interrupt(); // Ctrl-C at the terminal: a 0x03 for the guest
      return;
    }
    this.#request(EXIT.SIGNAL_BASE + SIGNALS[name], `ended by ${name}`);
  }

  /** Is the terminal in cbreak mode (the guest sees keys as typed and echoes them)? */
  get cbreak(): boolean {
    return this.#terminal;
  }

  /** Called with the exit code and reason when the run must stop. */
  onStop(fn: (code: number, why: string) => void): void {
    this.#stop = fn;
    const pending = this.#pending;
    if (pending !== null && !this.#closed) queueMicrotask(() => fn(...pending));
  }

  /** Called on Ctrl-C at a terminal (the console turns it into input). */
  onInterrupt(fn: () => void): void {
    this.#interrupt = fn;
  }

  /** Restore the terminal and stop watching. Safe to call twice. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#beat !== undefined) clearInterval(this.#beat);
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#unlisten();
    this.#worker?.terminate();
    if (this.#terminal) restoreTerminal(this.#termios);
    giveBackForeground(Atomics.load(this.#i32, FG));
  }
}
