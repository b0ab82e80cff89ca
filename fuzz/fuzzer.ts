/**
 * Fuzzer: runs, replays and shrinking.
 *
 * A run is a sequence of epochs. Each epoch builds a fresh world (one Host,
 * four fuzzed and two known-good guests) and plays generated actions until
 * its share of host calls is used; the epoch's PRNG is seeded from the run's
 * seed and the epoch number, and odd epochs turn on the Launcher's
 * `yieldOnFull`. A violation therefore sits in one epoch of bounded length,
 * which is replayed, recorded and shrunk by delta debugging to a short list
 * of actions that still breaks the same invariant.
 *
 * @module
 */

import type { Action } from "./actions.ts";
import { restoreClock } from "./clock.ts";
import { Generator } from "./generate.ts";
import { mixSeed, Rng } from "./rng.ts";
import { type Violation, World } from "./world.ts";

/** Options of {@link fuzz}. */
export interface FuzzOptions {
  /** Host calls to make in all (at least). */
  calls: number;
  /** The run's seed (u32). */
  seed: number;
  /** Host calls per epoch (default 20 000). */
  epochCalls?: number;
  /** First epoch to run (to go straight to a reported one). */
  firstEpoch?: number;
  /** Steps between known-good exchanges (default 500). */
  kgEvery?: number;
  /** Steps between full guard and table checks (default 1024). */
  fullEvery?: number;
  /** Shrink a violation (default true). */
  shrink?: boolean;
  /** Time limit for shrinking in ms (default 120 000). */
  shrinkMs?: number;
  /** Progress lines (every epoch that ends a 10% step) and shrink news. */
  log?: (line: string) => void;
}

/** A violation with where it happened. */
export interface Found {
  kind: string;
  message: string;
  epoch: number;
  /** Index of the step (action) at which it was detected. */
  step: number;
  yieldOnFull: boolean;
}

/** What {@link fuzz} returns. */
export interface FuzzReport {
  calls: number;
  kills: number;
  violations: number;
  seed: number;
  epochs: number;
  elapsedMs: number;
  violation?: Found;
  /** The shrunk reproducer (actions on a fresh world with `violation.yieldOnFull`). */
  repro?: Action[];
  /** Counts of what happened (kill reasons, transfers, …), summed over the epochs. */
  stats: Map<string, number>;
  /** The violation the reproducer gives. */
  reproViolation?: { kind: string; message: string };
}

interface EpochResult {
  calls: number;
  kills: number;
  steps: number;
  violation: Violation | null;
  stats: Map<string, number>;
}

/** Real time (the run replaces performance.now with virtual time). */
const realNow: () => number = performance.now.bind(performance);

const DEFAULTS = { epochCalls: 20_000, kgEvery: 500, fullEvery: 1024 };

/** Is the epoch's Launcher setting yieldOnFull on? */
export function epochYields(epoch: number): boolean {
  return epoch % 2 === 1;
}

/** Run one generated epoch; `record` receives every action. */
async function runEpoch(
  seed: number,
  epoch: number,
  budget: number,
  opts: FuzzOptions,
  record?: Action[],
): Promise<EpochResult> {
  const world = new World({
    yieldOnFull: epochYields(epoch),
    fullEvery: opts.fullEvery ?? DEFAULTS.fullEvery,
  });
  const gen = new Generator(new Rng(mixSeed(seed, epoch)), world, {
    kgEvery: opts.kgEvery ?? DEFAULTS.kgEvery,
  });
  try {
    while (world.calls < budget && world.violation === null) {
      const a = gen.next();
      record?.push(a);
      const p = world.step(a);
      if (p !== undefined) await p;
    }
    world.finish();
  } finally {
    world.dispose();
  }
  return {
    calls: world.calls,
    kills: world.kills,
    steps: world.steps,
    violation: world.violation,
    stats: world.stats,
  };
}

/** Play a fixed list of actions on a fresh world; the violation (and its step), if any. */
export async function replay(
  actions: readonly Action[],
  yieldOnFull: boolean,
): Promise<{ violation: Violation | null; step: number }> {
  claim();
  try {
    return await replayRun(actions, yieldOnFull);
  } finally {
    active = false;
  }
}

async function replayRun(
  actions: readonly Action[],
  yieldOnFull: boolean,
): Promise<{ violation: Violation | null; step: number }> {
  const keep = keepAlive();
  const world = new World({ yieldOnFull, fullEvery: DEFAULTS.fullEvery });
  try {
    for (let i = 0; i < actions.length; i++) {
      const p = world.step(actions[i]);
      if (p !== undefined) await p;
      if (world.violation) return { violation: world.violation, step: i };
    }
    world.finish();
    return { violation: world.violation, step: actions.length - 1 };
  } finally {
    world.dispose();
    restoreClock();
    clearInterval(keep);
  }
}

/**
 * Keep the event loop alive while a run awaits the host's yields: the host
 * yields through an unref'd MessageChannel, which alone would let a test
 * runner think the loop is done. (The virtual clock replaces setTimeout,
 * not setInterval.)
 */
function keepAlive(): ReturnType<typeof setInterval> {
  return setInterval(() => {}, 1 << 30);
}

/**
 * Delta debugging (ddmin, complements first) on `actions`, keeping lists
 * whose replay still violates the invariant `kind`; then a pass removing
 * single actions. Stops at the deadline with the best list so far.
 */
export async function shrink(
  actions: readonly Action[],
  kind: string,
  yieldOnFull: boolean,
  deadline: number,
  log?: (line: string) => void,
): Promise<Action[]> {
  const fails = async (list: readonly Action[]): Promise<number> => {
    const r = await replayRun(list, yieldOnFull);
    return r.violation !== null && r.violation.kind === kind ? r.step : -1;
  };
  let cur = actions.slice();
  const first = await fails(cur);
  if (first < 0) return cur;
  cur = cur.slice(0, first + 1);
  let n = 2;
  while (cur.length >= 2 && Date.now() < deadline) {
    const chunk = Math.ceil(cur.length / n);
    let reduced = false;
    for (let i = 0; i * chunk < cur.length && Date.now() < deadline; i++) {
      const comp = cur.slice(0, i * chunk).concat(cur.slice((i + 1) * chunk));
      if (comp.length === 0) continue;
      const at = await fails(comp);
      if (at >= 0) {
        cur = comp.slice(0, at + 1);
        n = Math.max(n - 1, 2);
        reduced = true;
        break;
      }
    }
    if (!reduced) {
      if (chunk <= 1) break;
      n = Math.min(cur.length, n * 2);
    }
    log?.(`fuzz: shrinking: ${cur.length} actions`);
  }
  for (let i = cur.length - 1; i >= 0 && cur.length > 1 && Date.now() < deadline; i--) {
    const comp = cur.slice(0, i).concat(cur.slice(i + 1));
    const at = await fails(comp);
    if (at >= 0) {
      cur = comp.slice(0, at + 1);
      i = Math.min(i, cur.length);
    }
  }
  // Simplify what is left: IRQ handlers away, fewer DMA sections.
  for (let i = 0; i < cur.length && Date.now() < deadline; i++) {
    for (const simpler of simplify(cur[i])) {
      const next = cur.slice();
      next[i] = simpler;
      if (await fails(next) >= 0) {
        cur = next;
        break;
      }
    }
  }
  return cur;
}

/** Simpler variants of one action, simplest first. */
function simplify(a: Action): Action[] {
  const out: Action[] = [];
  if ((a.k === "hc" || a.k === "read") && a.nest) {
    out.push({ ...a, nest: undefined });
    for (let j = 0; j < a.nest.length; j++) {
      out.push({ ...a, nest: a.nest.map((c, k) => (k === j ? [] : c)) });
    }
  }
  if (a.k === "dma") {
    for (let n = 0; n < a.s.length; n += 2) out.push({ ...a, s: a.s.slice(0, n) });
  }
  if (a.k === "inflight") { for (const x of simplify(a.a)) out.push({ ...a, a: x }); }
  return out;
}

/** A run replaces global timers and the clock: one at a time. */
let active = false;

function claim(): void {
  if (active) throw new Error("fuzz: a run is already in progress (one at a time)");
  active = true;
}

/** Run the fuzzer. Never throws for a host bug: that is a violation in the report. */
export async function fuzz(opts: FuzzOptions): Promise<FuzzReport> {
  claim();
  try {
    return await fuzzRun(opts);
  } finally {
    active = false;
  }
}

async function fuzzRun(opts: FuzzOptions): Promise<FuzzReport> {
  const t0 = realNow();
  const seed = opts.seed >>> 0;
  const per = opts.epochCalls ?? DEFAULTS.epochCalls;
  let calls = 0, kills = 0, epochs = 0;
  let epoch = opts.firstEpoch ?? 0;
  const stats = new Map<string, number>();
  let nextLog = opts.calls / 10;
  const keep = keepAlive();
  try {
    while (calls < opts.calls) {
      const r = await runEpoch(seed, epoch, Math.min(per, opts.calls - calls), opts);
      calls += r.calls;
      kills += r.kills;
      epochs++;
      for (const [k, v] of r.stats) stats.set(k, (stats.get(k) ?? 0) + v);
      if (calls >= nextLog && opts.log) {
        const s = (realNow() - t0) / 1000;
        opts.log(`fuzz: ${calls} calls, ${kills} killed, ${(calls / s).toFixed(0)} calls/s`);
        nextLog += opts.calls / 10;
      }
      if (r.violation) {
        const found: Found = {
          kind: r.violation.kind,
          message: r.violation.message,
          epoch,
          step: r.steps - 1,
          yieldOnFull: epochYields(epoch),
        };
        const report: FuzzReport = {
          calls,
          kills,
          violations: 1,
          seed,
          epochs,
          elapsedMs: realNow() - t0,
          violation: found,
          stats,
        };
        if (opts.shrink ?? true) {
          restoreClock();
          const rec: Action[] = [];
          await runEpoch(seed, epoch, Math.min(per, opts.calls), opts, rec);
          restoreClock();
          opts.log?.(`fuzz: violation in epoch ${epoch}; shrinking ${rec.length} actions`);
          const deadline = Date.now() + (opts.shrinkMs ?? 120_000);
          const repro = await shrink(rec, found.kind, found.yieldOnFull, deadline, opts.log);
          report.repro = repro;
          const again = await replayRun(repro, found.yieldOnFull);
          if (again.violation) {
            report.reproViolation = {
              kind: again.violation.kind,
              message: again.violation.message,
            };
          }
        }
        report.elapsedMs = realNow() - t0;
        return report;
      }
      epoch++;
    }
  } finally {
    restoreClock();
    clearInterval(keep);
  }
  return { calls, kills, violations: 0, seed, epochs, elapsedMs: realNow() - t0, stats };
}
