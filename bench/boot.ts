/**
 * `boot.first_byte`: process start to the guest's first console byte for
 * `lguest run hello`, against the same entry point printing `--version`
 * (time to its first byte). Both are fresh `deno run` processes.
 *
 * @module
 */

import { LGUEST_RUN as FLAGS, type Metric, metric, repeat } from "./lib.ts";

/** Milliseconds from spawn to the first stdout byte. */
async function firstByte(args: string[]): Promise<number> {
  const t = performance.now();
  const p = new Deno.Command(Deno.execPath(), {
    args: [...FLAGS, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = p.stdout.getReader();
  const first = await reader.read();
  const ms = performance.now() - t;
  if (first.done) throw new Error(`bench: ${args.join(" ")} printed nothing`);
  while (!(await reader.read()).done) { /* drain */ }
  await p.status;
  return ms;
}

/** Measure the metric. */
export async function benchBoot(): Promise<Metric> {
  await firstByte(["run", "hello"]); // warm the module cache
  await firstByte(["--version"]);
  const values = await repeat(() => firstByte(["run", "hello"]), { min: 7, max: 21 });
  const refs = await repeat(() => firstByte(["--version"]), { min: 7, max: 21 });
  return metric("boot.first_byte", "ms", values, "`lguest --version`", refs, false);
}
