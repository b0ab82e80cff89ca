/**
 * A small command-line parser (we avoid `node:util`: loading Deno's Node
 * layer costs ~20 ms at start-up). GNU style: `--name value`,
 * `--name=value`, `-n value`, boolean flags, repeatable options, options
 * anywhere before `--`, everything after `--` positional.
 *
 * @module
 */

import { UsageError } from "../devices/registry.ts";

/** How one option is spelled and what it takes. */
export interface OptionSpec {
  type: "string" | "boolean";
  short?: string;
  multiple?: boolean;
}

/** Parsed values: string, string[] (multiple; a repeatable flag gives one "" per use), or true. */
export type Values = Record<string, string | string[] | boolean | undefined>;

// Written `(function f() {...}).bind(null)`: compiled with the module, not again at every
// start on its first call (Deno's emit keeps these parentheses; docs/performance.md, boot).
/** Parse `argv` against `options`; one-line UsageErrors on mistakes. */
export const parseOptions = (function parseOptions(
  argv: string[],
  options: Record<string, OptionSpec>,
): { values: Values; positionals: string[] } {
  const values: Values = {};
  const positionals: string[] = [];
  // A loop, not filter/map with destructuring arrows: those arrows, called once an option at
  // every start, ran hot enough to be queued for V8's baseline compiler (docs/performance.md).
  const byShort = new Map<string, string>();
  for (const n in options) {
    const short = options[n].short;
    if (short) byShort.set(short, n);
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--") {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith("-") || arg === "-") {
      positionals.push(arg);
      continue;
    }
    let name: string | undefined;
    let inline: string | undefined;
    let shown = arg;
    // After GUEST, an unknown option was most likely meant for the guest.
    const forGuest = positionals.length > 0
      ? `; for the guest, put -- before its arguments: lguest run ${positionals[0]} -- ${arg} ...`
      : "";
    if (arg.startsWith("--")) {
      const eq = arg.indexOf("=");
      name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
      inline = eq < 0 ? undefined : arg.slice(eq + 1);
      shown = `--${name}`;
      if (!(name in options)) {
        const hint = meant(shown, Object.keys(options).map((o) => `--${o}`));
        throw new UsageError(`unknown option ${shown} (${hint}see 'lguest --help'${forGuest})`);
      }
    } else {
      name = byShort.get(arg.slice(1, 2));
      if (name === undefined || (arg.length > 2 && options[name].type === "boolean")) {
        throw new UsageError(`unknown option ${arg} (see 'lguest --help'${forGuest})`);
      }
      shown = arg.slice(0, 2);
      if (arg.length > 2) inline = arg.slice(2);
    }
    const spec = options[name];
    if (spec.type === "boolean") {
      if (inline !== undefined) throw new UsageError(`option ${shown} takes no value`);
      // A repeatable flag counts: one "" per use (a device flag, one device each).
      if (spec.multiple) ((values[name] ??= []) as string[]).push("");
      else values[name] = true;
      continue;
    }
    let value = inline;
    if (value === undefined) {
      const next = argv[i + 1];
      if (next === undefined) throw new UsageError(`option ${shown} needs a value`);
      if (next.startsWith("-") && next !== "-") {
        throw new UsageError(
          `option ${shown} needs a value (write --${name}=VALUE for one starting with '-')`,
        );
      }
      value = next;
      i++;
    }
    if (spec.multiple) ((values[name] ??= []) as string[]).push(value);
    else values[name] = value;
  }
  return { values, positionals };
}).bind(null);

/**
 * The candidate closest to a mistyped word, at most 2 edits away
 * (insertions, deletions, substitutions, swaps of neighbours), for a
 * "did you mean" hint; null when none is that close.
 */
export function closest(word: string, candidates: readonly string[]): string | null {
  let best: string | null = null, bestD = 3;
  for (const c of candidates) {
    if (Math.abs(c.length - word.length) >= bestD) continue;
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestD && d < Math.max(c.length, 2)) [best, bestD] = [c, d];
  }
  return best;
}

/** "did you mean 'x'? " for the closest candidate, or "". */
export function meant(word: string, candidates: readonly string[]): string {
  const c = closest(word, candidates);
  return c === null ? "" : `did you mean '${c}'? `;
}

/** Optimal string alignment distance (Levenshtein with neighbour swaps). */
function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.length][b.length];
}
