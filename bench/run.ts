/**
 * `deno task bench [-- --json FILE] [--only NAME,...] [--compare OLD.json]`
 * (NAME: a suite, a prefix such as `net`, or a metric inside a suite such as `posix.lua`):
 * run every benchmark, print one table, optionally write JSON; with
 * `--compare`, also print each metric's change against an earlier JSON
 * run (`--compare OLD.json` alone, without running anything, when given
 * `--json NEW.json` of an existing file and `--no-run`).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { benchBlockRead, benchBlockWrite } from "./block.ts";
import { benchBoot } from "./boot.ts";
import { benchFs } from "./fs.ts";
import { benchDma } from "./dma.ts";
import { benchSegment } from "./net.ts";
import { benchTap } from "./tap.ts";
import { benchMemory } from "./memory.ts";
import { benchHypercall } from "./hypercall.ts";
import { benchKvm } from "./kvm.ts";
import { benchPosix } from "./posix.ts";
import { compareTable, type Metric, table } from "./lib.ts";

/**
 * Each suite: its name, its run, and the names of its metrics that its name
 * is no prefix of (`--only clock.read` runs the posix suite and keeps that one).
 */
const SUITES: [string, () => Promise<Metric | Metric[]>, string[]?][] = [
  ["hypercall.nop.wasm", benchHypercall],
  ["dma.send.64k", benchDma],
  ["boot.first_byte", benchBoot],
  ["block.read.seq", benchBlockRead],
  ["block.write.seq", benchBlockWrite],
  ["fs.seq", benchFs, ["fs.write.seq", "fs.read.seq"]],
  ["net.segment", benchSegment],
  ["net.tap", benchTap],
  ["memory.rss.per_guest", benchMemory],
  ["kvm", benchKvm, [
    "hypercall.nop.kvm",
    "boot.first_byte.kvm",
    "block.read.seq.kvm",
    "cpu.crc32.kvm",
    "cpu.crc32.wasm",
  ]],
  ["posix", benchPosix, ["clock.read"]],
];

function machine() {
  let cpu = "unknown";
  try {
    // Deno wants --allow-all to read /proc directly; cat(1) needs only --allow-run.
    const info = new Deno.Command("cat", { args: ["/proc/cpuinfo"] }).outputSync();
    cpu = /model name\s*:\s*(.*)/.exec(new TextDecoder().decode(info.stdout))?.[1] ?? cpu;
  } catch { /* not Linux */ }
  return {
    cpu,
    cores: navigator.hardwareConcurrency,
    os: `${Deno.build.os} ${Deno.osRelease()}`,
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    date: new Date().toISOString(),
  };
}

const { values } = parseArgs({
  args: Deno.args.filter((a) => a !== "--"),
  options: {
    json: { type: "string" },
    only: { type: "string" },
    compare: { type: "string" },
    "no-run": { type: "boolean" },
  },
});

/** The metrics of a JSON run, or one line and exit 125 if it cannot be read. */
function load(path: string): Metric[] {
  try {
    const j = JSON.parse(Deno.readTextFileSync(path));
    if (!Array.isArray(j.metrics)) throw new Error("no metrics array");
    return j.metrics as Metric[];
  } catch (e) {
    console.error(`bench: cannot read ${path}: ${(e as Error).message}`);
    Deno.exit(125);
  }
}

const old = values.compare ? load(values.compare) : undefined;
if (values["no-run"]) {
  if (!old || !values.json) {
    console.error("bench: --no-run needs --compare OLD.json and --json NEW.json");
    Deno.exit(125);
  }
  console.log(compareTable(load(values.json), old));
  Deno.exit(0);
}
/**
 * `--only` words: a suite's name, a prefix of names (`net`, `fs`), or a
 * metric inside a suite (`posix.lua`: the posix suite runs, and only the
 * metrics named `posix.lua` or `posix.lua.*` are kept).
 */
const only = values.only?.split(",").map((w) => w.trim()).filter((w) => w !== "");
const picks = (w: string, suite: string) =>
  w === suite || suite.startsWith(w + ".") || w.startsWith(suite + ".") ||
  (SUITES.find(([s]) => s === suite)?.[2] ?? []).includes(w);
if (only) {
  const unknown = only.filter((w) => !SUITES.some(([s]) => picks(w, s)));
  if (unknown.length > 0) {
    console.error(
      `bench: --only ${unknown.join(",")}: no such benchmark (suites: ` +
        `${SUITES.map(([s]) => s).join(", ")}; a metric inside one, e.g. posix.lua, also works)`,
    );
    Deno.exit(125);
  }
}
const metrics: Metric[] = [];
for (const [name, run] of SUITES) {
  const words = only?.filter((w) => picks(w, name));
  if (words && words.length === 0) continue;
  console.error(`bench: ${name} ...`);
  const got = [await run()].flat();
  // A word naming something inside the suite keeps only those metrics.
  const whole = !words || words.some((w) => w === name || name.startsWith(w + "."));
  metrics.push(
    ...(whole
      ? got
      : got.filter((m) => words.some((w) => m.name === w || m.name.startsWith(w + ".")))),
  );
}
const m = machine();
console.log(`Machine: ${m.cpu}, ${m.cores} cores, ${m.os}, Deno ${m.deno}\n`);
console.log(table(metrics));
if (old) console.log(`\nAgainst ${values.compare}:\n\n${compareTable(metrics, old)}`);
if (values.json) {
  await Deno.writeTextFile(values.json, JSON.stringify({ machine: m, metrics }, null, 2) + "\n");
}
Deno.exit(0); // guests, timers and FFI threads must not keep the run alive
