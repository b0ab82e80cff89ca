/**
 * Fuzzer: virtual time. The host reads `nowMs()` (time slices,
 * `sys/clock.ts`), `performance.now()` (its yields) and
 * `performance.timeOrigin` (the time it writes into lguest_data), and arms
 * the guest clock with `setTimeout` (SET_CLOCKEVENT). Real time would make a
 * run depend on the machine's speed, so while the fuzzer runs these are
 * replaced by a clock that advances a fixed amount per host call and by
 * timers that fire only when the fuzzer ticks the clock. A seed then
 * replays exactly.
 *
 * @module
 */

import { setNowMs } from "../sys/clock.ts";

interface Timer {
  id: number;
  due: number;
  fn: () => void;
}

/** A deterministic clock with one-shot timers. */
export class VirtualClock {
  /** Milliseconds since the run began. */
  now = 0;
  readonly timers: Map<number, Timer> = new Map();
  #nextId = 1;

  /** setTimeout(fn, ms). */
  add(fn: () => void, ms: number): number {
    const id = this.#nextId++;
    const d = Number.isFinite(ms) && ms > 0 ? ms : 0;
    this.timers.set(id, { id, due: this.now + d, fn });
    return id;
  }

  /** clearTimeout(id). */
  cancel(id: unknown): void {
    if (typeof id === "number") this.timers.delete(id);
  }

  /** Advance by `ms` and fire every timer now due, earliest first. */
  advance(ms: number): number {
    this.now += ms;
    if (this.timers.size === 0) return 0;
    const due = [...this.timers.values()].filter((t) => t.due <= this.now);
    due.sort((a, b) => a.due - b.due || a.id - b.id);
    for (const t of due) {
      this.timers.delete(t.id);
      t.fn();
    }
    return due.length;
  }
}

/** The clock the installed globals currently read. */
let current: VirtualClock | null = null;
let saved: {
  setTimeout: typeof globalThis.setTimeout;
  clearTimeout: typeof globalThis.clearTimeout;
} | null = null;

/** Route the host's clock and timers to `clock` (nesting is not supported). */
export function useClock(clock: VirtualClock): void {
  current = clock;
  if (saved !== null) return;
  saved = { setTimeout: globalThis.setTimeout, clearTimeout: globalThis.clearTimeout };
  const g = globalThis as unknown as Record<string, unknown>;
  g.setTimeout = (fn: () => void, ms?: number) => current!.add(fn, ms ?? 0);
  g.clearTimeout = (id?: unknown) => current!.cancel(id);
  Object.defineProperty(performance, "now", {
    value: () => current!.now,
    configurable: true,
    writable: true,
  });
  Object.defineProperty(performance, "timeOrigin", { value: 0, configurable: true });
  setNowMs(() => current!.now);
}

/** Put the real globals back. */
export function restoreClock(): void {
  if (saved === null) return;
  globalThis.setTimeout = saved.setTimeout;
  globalThis.clearTimeout = saved.clearTimeout;
  const p = performance as unknown as Record<string, unknown>;
  delete p.now;
  delete p.timeOrigin;
  setNowMs(null);
  saved = null;
  current = null;
}
