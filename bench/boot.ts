/**
 * `boot.first_byte`: process start to the guest's first console byte for
 * `lguest run hello`, against a Deno program that prints one byte
 * (`one_byte.ts`), started the same way with the same permissions. Both
 * are fresh `deno run` processes, measured alternately.
 *
 * With a bundled CLI (`dist/lguest.js`, `deno task bundle`) present, the
 * same is measured for it as `boot.first_byte.bundle`.
 *
 * @module
 */

import { LGUEST_RUN, type Metric, metric, paired } from "./lib.ts";

const ONE_BYTE = new URL("./one_byte.ts", import.meta.url).pathname;
const BUNDLE = new URL("../dist/lguest.js", import.meta.url).pathname;

/**
 * Milliseconds from spawn to the first stdout byte of `deno <args>`: the
 * fastest of three starts (a start that lost the CPU to another process
 * measures that process).
 */
async function firstByte(args: string[]): Promise<number> {
  let best = Infinity;
  for (let i = 0; i < 3; i++) best = Math.min(best, await oneStart(args));
  return best;
}

async function oneStart(args: string[]): Promise<number> {
  const t = performance.now();
  const p = new Deno.Command(Deno.execPath(), {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = p.stdout.getReader();
  const first = await reader.read();
  const ms = performance.now() - t;
  if (first.done) throw new Error(`bench: deno ${args.join(" ")} printed nothing`);
  while (!(await reader.read()).done) { /* drain */ }
  await p.status;
  return ms;
}

/** The same `deno run` flags with another script. */
function runScript(script: string, ...rest: string[]): string[] {
  return [...LGUEST_RUN.slice(0, -1), script, ...rest];
}

async function measure(name: string, subject: string[]): Promise<Metric> {
  const ref = runScript(ONE_BYTE);
  await firstByte(subject); // warm the module cache
  await firstByte(ref);
  const p = await paired(() => firstByte(subject), () => firstByte(ref), { min: 7, max: 25 });
  return metric(name, "ms", p, "Deno printing one byte, same flags", false);
}

/**
 * Measure the metric (and the bundled one, if there is a bundle); `args`
 * are extra run options (`--engine kvm`), `suffix` names the metric.
 */
export async function benchBoot(args: string[] = [], suffix = ""): Promise<Metric[]> {
  const out = [
    await measure(`boot.first_byte${suffix}`, [...LGUEST_RUN, "run", ...args, "hello"]),
  ];
  if (suffix) return out;
  let bundled = false;
  try {
    bundled = Deno.statSync(BUNDLE).isFile;
  } catch { /* no bundle built */ }
  if (bundled) out.push(await measure("boot.first_byte.bundle", runScript(BUNDLE, "run", "hello")));
  return out;
}
