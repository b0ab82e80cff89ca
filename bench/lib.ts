/**
 * Benchmark plumbing: repeat until stable, report the median and spread,
 * and express every figure as a ratio against a reference measured in the
 * same run on the same machine.
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

/** One published figure. */
export interface Metric {
  name: string;
  value: number;
  unit: string;
  reference: string;
  reference_value: number;
  /** value / reference_value (for times: reference / value is "speed"). */
  ratio: number;
  /** Relative spread (max-min)/median of the repeated runs of `value`. */
  spread: number;
  /** Why the metric was skipped, if it was. */
  skipped?: string;
}

/** Median of a list of numbers. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** (max - min) / median. */
export function spread(xs: number[]): number {
  const m = median(xs);
  return m === 0 ? 0 : (Math.max(...xs) - Math.min(...xs)) / m;
}

/**
 * Run `sample` (which returns one measurement) `min`..`max` times, until
 * the spread of the last `min` samples is under `tolerance`. Returns the
 * samples kept.
 */
export async function repeat(
  sample: () => number | Promise<number>,
  opts: { min?: number; max?: number; tolerance?: number } = {},
): Promise<number[]> {
  const min = opts.min ?? 5, max = opts.max ?? 15, tol = opts.tolerance ?? 0.1;
  const xs: number[] = [];
  while (xs.length < max) {
    xs.push(await sample());
    if (xs.length >= min && spread(xs.slice(-min)) <= tol) return xs.slice(-min);
  }
  return xs;
}

/** Build a metric from repeated samples of the value and the reference. */
export function metric(
  name: string,
  unit: string,
  values: number[],
  reference: string,
  refs: number[],
  higherIsBetter = true,
): Metric {
  const value = median(values), reference_value = median(refs);
  return {
    name,
    value,
    unit,
    reference,
    reference_value,
    ratio: higherIsBetter ? value / reference_value : value / reference_value,
    spread: Math.max(spread(values), spread(refs)),
  };
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

/** A Markdown table of the metrics. */
export function table(ms: Metric[]): string {
  const rows = ms.map((m) =>
    m.skipped
      ? `| ${m.name} | skipped: ${m.skipped} | | | |`
      : `| ${m.name} | ${fmt(m.value)} ${m.unit} | ${m.reference}: ${
        fmt(m.reference_value)
      } ${m.unit} | **${m.ratio < 0.1 ? m.ratio.toPrecision(2) : m.ratio.toFixed(2)}** | ±${
        (m.spread * 50).toFixed(0)
      }% |`
  );
  return [
    "| metric | value | reference (same run) | ratio | spread |",
    "|---|---|---|---|---|",
    ...rows,
  ].join("\n");
}
