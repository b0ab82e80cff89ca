/**
 * `deno task bench [-- --json FILE] [--only NAME,...] [--compare OLD.json]`:
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

const SUITES: [string, () => Promise<Metric | Metric[]>][] = [
  ["hypercall.nop.wasm", benchHypercall],
  ["dma.send.64k", benchDma],
  ["boot.first_byte", benchBoot],
  ["block.read.seq", benchBlockRead],
  ["block.write.seq", benchBlockWrite],
  ["fs.seq", benchFs],
  ["net.segment", benchSegment],
  ["net.tap", benchTap],
  ["memory.rss.per_guest", benchMemory],
  ["kvm", benchKvm],
  ["posix", benchPosix],
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
const only = values.only?.split(",");
const metrics: Metric[] = [];
for (const [name, run] of SUITES) {
  if (only && !only.includes(name)) continue;
  console.error(`bench: ${name} ...`);
  metrics.push(...[await run()].flat());
}
const m = machine();
console.log(`Machine: ${m.cpu}, ${m.cores} cores, ${m.os}, Deno ${m.deno}\n`);
console.log(table(metrics));
if (old) console.log(`\nAgainst ${values.compare}:\n\n${compareTable(metrics, old)}`);
if (values.json) {
  await Deno.writeTextFile(values.json, JSON.stringify({ machine: m, metrics }, null, 2) + "\n");
}
Deno.exit(0); // guests, timers and FFI threads must not keep the run alive
