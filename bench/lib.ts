/**
 * Benchmark plumbing. Every figure is a ratio against a reference measured
 * in the same run on the same machine, and the two are interleaved (subject,
 * reference, subject, reference, …) so that whatever else the machine is
 * doing at a moment weighs on both sides of a pair alike. Each pair gives
 * one ratio; pairs are repeated until the ratios of the last `min` pairs
 * lie within ±`tolerance` of their median, or until `max` pairs (the
 * metric is then marked unstable, and the table says so).
 *
 * @module
 */

/** `deno run` arguments that start the CLI as `deno task lguest` does. */
export const LGUEST_RUN: readonly string[] = [
  "run",
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-run",
  "--allow-ffi",
  "--allow-net=127.0.0.1",
  new URL("../main.ts", import.meta.url).pathname,
];

/** Run a command to its end (stdin from a string, or none); its stdout. Fails on a non-zero exit. */
export async function sh(
  cmd: string,
  args: string[],
  cwd?: string,
  stdin?: string,
): Promise<string> {
  const child = new Deno.Command(cmd, {
    args,
    cwd,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  if (stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const out = await child.output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(
      `${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr).slice(-400)}`,
    );
  }
  return text;
}

/** Run the CLI (as `deno task lguest` starts it) to its end; its stdout. */
export const lguest = (args: string[], stdin?: string): Promise<string> =>
  sh(Deno.execPath(), [...LGUEST_RUN, ...args], undefined, stdin);

/** One published figure. */
export interface Metric {
  name: string;
  /** Median of the subject's samples (in the window kept). */
  value: number;
  unit: string;
  reference: string;
  /** Median of the reference's samples (in the window kept). */
  reference_value: number;
  /** Median of the per-pair ratios subject / reference. */
  ratio: number;
  /**
   * Half the relative range of the ratios kept: (max - min) / (2 median).
   * The table prints it as ±%.
   */
  spread: number;
  /** Is a higher ratio better (rates) or a lower one (times)? */
  better?: "higher" | "lower";
  /** Pairs measured in all, and whether the last window met the tolerance. */
  pairs?: number;
  stable?: boolean;
  /** The tolerance the metric was measured to (half range, e.g. 0.1 = ±10%). */
  tolerance?: number;
  /** The per-pair ratios kept. */
  ratios?: number[];
  /** A note for the table (e.g. why a metric is noisy). */
  note?: string;
  /** Why the metric was skipped, if it was. */
  skipped?: string;
}

/** Median of a list of numbers. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Half the relative range: (max - min) / (2 median); ±this around the median. */
export function spread(xs: number[]): number {
  const m = median(xs);
  return m === 0 ? 0 : (Math.max(...xs) - Math.min(...xs)) / (2 * Math.abs(m));
}

/** Options of {@link paired}. */
export interface PairOptions {
  /** Pairs in the window whose ratios must agree (default 5). */
  min?: number;
  /** Cap on pairs measured (default 15). */
  max?: number;
  /** Half range allowed around the median ratio (default 0.10 = ±10%). */
  tolerance?: number;
}

/** Samples of an interleaved measurement. */
export interface Paired {
  values: number[];
  refs: number[];
  ratios: number[];
  pairs: number;
  stable: boolean;
  tolerance: number;
}

/**
 * Measure `subject` and `reference` alternately (A B A B …, starting with
 * the reference on odd pairs so neither always goes first) until the last
 * `min` per-pair ratios are within ±tolerance of their median, or `max`
 * pairs. Returns the last window.
 */
export function paired(
  subject: () => number | Promise<number>,
  reference: () => number | Promise<number>,
  opts: PairOptions = {},
): Promise<Paired> {
  return pairsUntilStable(async (n) => {
    if (n % 2 === 0) {
      const v = await subject();
      return [v, await reference()];
    }
    const r = await reference();
    return [await subject(), r];
  }, opts);
}

/**
 * {@link paired} for a subject and a reference measured together, in one
 * run that interleaves them more finely than pair by pair (e.g. burst by
 * burst): each call of `both` gives one pair, [subject, reference].
 */
export function pairedJoint(
  both: () => Promise<[number, number]>,
  opts: PairOptions = {},
): Promise<Paired> {
  return pairsUntilStable(both, opts);
}

/** Pairs from `measure(n)` until the last `min` ratios agree within tolerance, or `max`. */
async function pairsUntilStable(
  measure: (n: number) => Promise<[number, number]>,
  opts: PairOptions,
): Promise<Paired> {
  const min = opts.min ?? 5, max = Math.max(opts.max ?? 15, min), tol = opts.tolerance ?? 0.1;
  const values: number[] = [], refs: number[] = [], ratios: number[] = [];
  for (let n = 0; n < max; n++) {
    const [v, r] = await measure(n);
    values.push(v);
    refs.push(r);
    ratios.push(v / r);
    if (ratios.length >= min && spread(ratios.slice(-min)) <= tol) {
      return {
        values: values.slice(-min),
        refs: refs.slice(-min),
        ratios: ratios.slice(-min),
        pairs: n + 1,
        stable: true,
        tolerance: tol,
      };
    }
  }
  return {
    values: values.slice(-min),
    refs: refs.slice(-min),
    ratios: ratios.slice(-min),
    pairs: max,
    stable: false,
    tolerance: tol,
  };
}

/**
 * {@link paired} for a measurement that gives several figures per run
 * (e.g. a write and a read pass): figure i of the subject is paired with
 * figure i of the reference, and pairs repeat until the last `min` ratios
 * of every figure are within ±tolerance of their median (or `max` pairs).
 * Returns one {@link Paired} per figure, each its own last window.
 */
export async function pairedMany(
  subject: () => Promise<number[]>,
  reference: () => Promise<number[]>,
  opts: PairOptions = {},
): Promise<Paired[]> {
  const min = opts.min ?? 5, max = Math.max(opts.max ?? 15, min), tol = opts.tolerance ?? 0.1;
  const values: number[][] = [], refs: number[][] = [];
  const window = (pairs: number): Paired[] =>
    values[0].map((_, i) => {
      const v = values.slice(-min).map((x) => x[i]), r = refs.slice(-min).map((x) => x[i]);
      const ratios = v.map((x, k) => x / r[k]);
      return { values: v, refs: r, ratios, pairs, stable: spread(ratios) <= tol, tolerance: tol };
    });
  for (let n = 0; n < max; n++) {
    let v: number[], r: number[];
    if (n % 2 === 0) {
      v = await subject();
      r = await reference();
    } else {
      r = await reference();
      v = await subject();
    }
    values.push(v);
    refs.push(r);
    if (values.length >= min && window(n + 1).every((p) => p.stable)) return window(n + 1);
  }
  return window(max);
}

/**
 * Build a metric from an interleaved measurement. `higherIsBetter` says
 * which way the ratio improves (rates: higher; times: lower).
 */
export function metric(
  name: string,
  unit: string,
  p: Paired,
  reference: string,
  higherIsBetter = true,
): Metric {
  return {
    name,
    value: median(p.values),
    unit,
    reference,
    reference_value: median(p.refs),
    ratio: median(p.ratios),
    spread: spread(p.ratios),
    better: higherIsBetter ? "higher" : "lower",
    pairs: p.pairs,
    stable: p.stable,
    tolerance: p.tolerance,
    ratios: p.ratios,
  };
}

/** A metric measured without a pairing (absolute): spread of its own samples. */
export function single(
  name: string,
  unit: string,
  values: number[],
  reference: string,
  referenceValue: number,
  opts: { higherIsBetter?: boolean; stable: boolean; tolerance: number },
): Metric {
  const value = median(values);
  return {
    name,
    value,
    unit,
    reference,
    reference_value: referenceValue,
    ratio: value / referenceValue,
    spread: spread(values),
    better: opts.higherIsBetter === false ? "lower" : "higher",
    pairs: values.length,
    stable: opts.stable,
    tolerance: opts.tolerance,
  };
}

/** Map a metric's figures (value and reference), e.g. frames/s to Gbit/s. */
export function scaled(m: Metric, name: string, unit: string, f: (x: number) => number): Metric {
  return { ...m, name, unit, value: f(m.value), reference_value: f(m.reference_value) };
}

/** A skipped metric, with its reason. */
export function skipped(name: string, unit: string, reference: string, why: string): Metric {
  return {
    name,
    value: NaN,
    unit,
    reference,
    reference_value: NaN,
    ratio: NaN,
    spread: NaN,
    skipped: why,
  };
}

/** Format a number for the table. */
export function fmt(x: number): string {
  if (!Number.isFinite(x)) return "-";
  if (Math.abs(x) >= 1e9) return (x / 1e9).toFixed(2) + "G";
  if (Math.abs(x) >= 1e6) return (x / 1e6).toFixed(2) + "M";
  if (Math.abs(x) >= 1e4) return (x / 1e3).toFixed(1) + "k";
  if (Math.abs(x) >= 1e3) return x.toFixed(0); // toPrecision(3) would print 1.23e+3
  return x.toPrecision(3);
}

/** A ratio as the table prints it. */
export function fmtRatio(r: number): string {
  if (!Number.isFinite(r)) return "-";
  return r < 0.1 ? r.toPrecision(2) : r.toFixed(2);
}

/** The spread column: ±N%, with the pairs and a mark when not within tolerance. */
function fmtSpread(m: Metric): string {
  const s = `±${(m.spread * 100).toFixed(0)}%`;
  if (m.stable === false) {
    return `${s} (not within ±${((m.tolerance ?? 0.1) * 100).toFixed(0)}% after ${m.pairs} pairs)`;
  }
  return m.pairs ? `${s} (${m.pairs} pairs)` : s;
}

/** A Markdown table of the metrics. */
export function table(ms: Metric[]): string {
  const rows = ms.map((m) =>
    m.skipped
      ? `| ${m.name} | skipped: ${m.skipped} | | | |`
      : `| ${m.name} | ${fmt(m.value)} ${m.unit} | ${m.reference}: ${
        fmt(m.reference_value)
      } ${m.unit} | **${fmtRatio(m.ratio)}** | ${fmtSpread(m)}${m.note ? `; ${m.note}` : ""} |`
  );
  return [
    "| metric | value | reference (same run) | ratio | spread of the ratio |",
    "|---|---|---|---|---|",
    ...rows,
  ].join("\n");
}

/**
 * `--compare OLD.json`: each metric's ratio (and value) now against an
 * earlier run, with the change in the metric's good direction marked.
 * Metrics only in one of the runs are listed as such.
 */
export function compareTable(now: Metric[], old: Metric[]): string {
  const before = new Map(old.map((m) => [m.name, m]));
  const rows: string[] = [];
  for (const m of now) {
    const o = before.get(m.name);
    before.delete(m.name);
    if (!o || o.skipped || m.skipped || !Number.isFinite(o.ratio)) {
      rows.push(
        `| ${m.name} | ${o && !o.skipped ? fmtRatio(o.ratio) : "-"} | ${
          m.skipped ? "skipped" : fmtRatio(m.ratio)
        } | | ${o ? "" : "new"} |`,
      );
      continue;
    }
    const change = m.ratio / o.ratio - 1;
    const lower = (m.better ?? o.better) === "lower";
    const gain = lower ? -change : change;
    // Beyond both runs' spreads: a real change, not noise.
    const noise = (m.spread || 0) + (o.spread || 0);
    const verdict = Math.abs(change) <= noise ? "within noise" : gain > 0 ? "better" : "WORSE";
    rows.push(
      `| ${m.name} | ${fmtRatio(o.ratio)} | ${fmtRatio(m.ratio)} | ${change >= 0 ? "+" : ""}${
        (change * 100).toFixed(1)
      }% | ${verdict} (noise ±${(noise * 100).toFixed(0)}%) |`,
    );
  }
  for (const o of before.values()) rows.push(`| ${o.name} | ${fmtRatio(o.ratio)} | - | | gone |`);
  return [
    "| metric | ratio before | ratio now | change | verdict |",
    "|---|---|---|---|---|",
    ...rows,
  ].join("\n");
}
