/**
 * The hypercall fuzzer (issue 7): `deno task fuzz -- --calls N --seed S`.
 *
 * Drives one Host with four fuzzed and two known-good guests through random
 * and adversarial hypercalls, DMA descriptors, async rings and Launcher
 * requests, checking the isolation invariants after every step (see
 * docs/security.md, "Hypercall fuzzer"). Prints
 * `fuzz: N calls, K guests killed, V invariant violations, seed S`; exits 0
 * when V is 0, else 1 after printing the shortest reproducer found. Usage
 * errors exit 2.
 *
 * Options: --calls N (default 1000000), --seed S (default: from the
 * clock), --epoch-calls N, --first-epoch E, --no-shrink, --shrink-ms MS,
 * --replay FILE (a reproducer printed by an earlier run), -v/--verbose.
 *
 * `--images N` runs the image fuzzer instead (`fuzz/images.ts`): N
 * mutations of the built-in images through the engine's front door,
 * printing `fuzz: N images, R refused, C compiled, V invariant
 * violations, seed S`.
 *
 * @module
 */

import type { Action } from "../fuzz/actions.ts";
import { formatAction } from "../fuzz/actions.ts";
import { fuzz, replay } from "../fuzz/fuzzer.ts";
import { fuzzImages } from "../fuzz/images.ts";
import { builtinGuests, loadImage } from "../launcher/images.ts";

function usage(msg: string): never {
  console.error(`fuzz: ${msg}`);
  console.error(
    "usage: deno task fuzz -- [--calls N] [--seed S] [--epoch-calls N] [--first-epoch E] " +
      "[--no-shrink] [--shrink-ms MS] [--replay FILE] [-v] | --images N [--seed S]",
  );
  Deno.exit(2);
}

function num(name: string, v: string | undefined, max = Number.MAX_SAFE_INTEGER): number {
  if (v === undefined) usage(`${name} needs a value`);
  const n = /^0x[0-9a-f]+$/i.test(v) ? parseInt(v, 16) : /^\d+$/.test(v) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n) || n < 0 || n > max) usage(`${name}: not a number: ${v}`);
  return n;
}

async function main(args: string[]): Promise<number> {
  let calls = 1_000_000;
  let seed = (Date.now() ^ (performance.now() * 1000)) >>> 0;
  let seedGiven = false;
  let epochCalls: number | undefined;
  let firstEpoch: number | undefined;
  let shrinkMs: number | undefined;
  let doShrink = true;
  let verbose = false;
  let replayFile: string | undefined;
  let images: number | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const [flag, inline] = a.startsWith("--") && a.includes("=")
      ? [a.slice(0, a.indexOf("=")), a.slice(a.indexOf("=") + 1)]
      : [a, undefined];
    const val = () => inline ?? args[++i];
    switch (flag) {
      case "--": // `deno task fuzz -- …` passes it through
        break;
      case "--calls":
        calls = num(flag, val());
        break;
      case "--seed":
        seed = num(flag, val(), 0xffffffff);
        seedGiven = true;
        break;
      case "--epoch-calls":
        epochCalls = Math.max(1, num(flag, val()));
        break;
      case "--first-epoch":
        firstEpoch = num(flag, val());
        break;
      case "--shrink-ms":
        shrinkMs = num(flag, val());
        break;
      case "--images":
        images = num(flag, val());
        break;
      case "--no-shrink":
        doShrink = false;
        break;
      case "--replay":
        replayFile = val();
        if (replayFile === undefined) usage("--replay needs a file");
        break;
      case "-v":
      case "--verbose":
        verbose = true;
        break;
      case "-h":
      case "--help":
        console.log(
          "usage: deno task fuzz -- [--calls N] [--seed S] [--epoch-calls N] [--first-epoch E] " +
            "[--no-shrink] [--shrink-ms MS] [--replay FILE] [-v] | --images N [--seed S]",
        );
        return 0;
      default:
        usage(`unknown option: ${a}`);
    }
  }

  if (images !== undefined) {
    const seeds = await Promise.all(
      (await builtinGuests(true)).map(async (g) => (await loadImage(g.name)).bytes),
    );
    if (!seedGiven) console.error(`fuzz: seed ${seed} (from the clock; rerun with --seed ${seed})`);
    const r = await fuzzImages(seeds, images, seed);
    for (const v of r.violations.slice(0, 20)) console.log(`  ${v}`);
    console.log(
      `fuzz: ${r.images} images, ${r.refused} refused, ${r.compiled} compiled, ` +
        `${r.violations.length} invariant violations, seed ${seed}`,
    );
    return r.violations.length === 0 ? 0 : 1;
  }

  if (replayFile !== undefined) {
    let data: { yieldOnFull: boolean; actions: Action[] };
    try {
      data = JSON.parse(await Deno.readTextFile(replayFile));
    } catch (e) {
      console.error(`fuzz: ${replayFile}: ${e instanceof Error ? e.message : e}`);
      return 2;
    }
    data.actions.forEach((a, i) => console.log(`  ${i + 1}. ${formatAction(a)}`));
    const r = await replay(data.actions, data.yieldOnFull);
    if (r.violation) {
      console.log(`fuzz: replay: violation (${r.violation.kind}) at action ${r.step + 1}:`);
      console.log(`  ${r.violation.message}`);
      return 1;
    }
    console.log(`fuzz: replay: ${data.actions.length} actions, 0 invariant violations`);
    return 0;
  }

  if (!seedGiven) console.error(`fuzz: seed ${seed} (from the clock; rerun with --seed ${seed})`);
  const log = (l: string) => console.error(l);
  const r = await fuzz({
    calls,
    seed,
    epochCalls,
    firstEpoch,
    shrink: doShrink,
    shrinkMs,
    log: verbose ? log : (l) => l.includes("shrink") || l.includes("violation") ? log(l) : 0,
  });
  if (verbose) {
    const s = r.elapsedMs / 1000;
    console.error(
      `fuzz: ${r.epochs} epochs in ${s.toFixed(1)} s, ${(r.calls / s).toFixed(0)} calls/s`,
    );
    const rows = [...r.stats].sort((a, b) => b[1] - a[1]);
    for (const [k, v] of rows) console.error(`  ${String(v).padStart(10)}  ${k}`);
  }
  if (r.violation) {
    const v = r.violation;
    console.log(
      `fuzz: invariant violated (${v.kind}) in epoch ${v.epoch}, step ${v.step + 1}` +
        ` (rerun: --seed ${r.seed} --first-epoch ${v.epoch}):`,
    );
    console.log(`  ${v.message}`);
    if (r.repro) {
      if (r.reproViolation) {
        console.log(
          `fuzz: shortest reproducer found: ${r.repro.length} action(s) on a fresh world ` +
            `(yieldOnFull ${v.yieldOnFull}):`,
        );
        r.repro.forEach((a, i) => console.log(`  ${i + 1}. ${formatAction(a)}`));
        console.log(`  => ${r.reproViolation.message}`);
        console.log("fuzz: as JSON (save to a file and rerun with --replay FILE):");
        console.log(JSON.stringify({ yieldOnFull: v.yieldOnFull, actions: r.repro }));
      } else {
        console.log("fuzz: the recorded epoch did not reproduce the violation (nondeterminism?)");
      }
    }
  }
  console.log(
    `fuzz: ${r.calls} calls, ${r.kills} guests killed, ${r.violations} invariant violations, ` +
      `seed ${r.seed}`,
  );
  return r.violations === 0 ? 0 : 1;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
