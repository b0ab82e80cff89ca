/**
 * `memory.rss.per_guest`: how much resident memory one more idle guest
 * costs — RSS growth per guest while 10 idle `shell` guests (32 MiB of RAM
 * each) sit halted in one host — against the guest RAM size. Guest RAM is
 * a `WebAssembly.Memory`: pages the guest never touches are never resident.
 *
 * @module
 */

import { ConsoleDevice } from "../devices/console.ts";
import { compileImage, WasmCpu } from "../engines/wasm.ts";
import { Host } from "../host/host.ts";
import { GuestRun } from "../launcher/launcher.ts";
import { type Metric, single, spread } from "./lib.ts";

const GUESTS = 10;
const RAM = 32 * 1024 * 1024;

async function rssPerGuest(mod: WebAssembly.Module): Promise<number> {
  const host = new Host();
  const runs: { run: GuestRun; done: Promise<unknown> }[] = [];
  const before = Deno.memoryUsage().rss;
  for (let i = 0; i < GUESTS; i++) {
    const out: string[] = [];
    const run = await GuestRun.create(host, {
      name: `idle${i}`,
      memory: RAM,
      cmdline: "",
      devices: [
        new ConsoleDevice({
          read: () => new Promise(() => {}), // no input: the shell waits at its prompt
          write: (b) => void out.push(new TextDecoder().decode(b)),
        }),
      ],
      makeCpu: (bytes) => new WasmCpu(mod, bytes),
    });
    const done = run.run();
    while (!out.join("").includes("lguest$ ")) await new Promise((r) => setTimeout(r, 1));
    runs.push({ run, done });
  }
  const after = Deno.memoryUsage().rss;
  for (const r of runs) r.run.stop(0, "bench done");
  await Promise.all(runs.map((r) => r.done));
  return (after - before) / GUESTS;
}

/** Measure the metric. */
export async function benchMemory(): Promise<Metric> {
  const url = new URL("../guests/images/shell.wasm", import.meta.url);
  const mod = await compileImage(await Deno.readFile(url), "shell");
  await rssPerGuest(mod); // warm-up: code and allocator pools
  // An absolute figure (RSS is the machine's own count, not a timing): a few
  // samples, to a wide tolerance, since the allocator's pools move it.
  const values: number[] = [];
  do values.push(await rssPerGuest(mod)); while (
    values.length < 3 || (values.length < 7 && spread(values.slice(-3)) > 0.3)
  );
  const kept = values.slice(-3);
  return single("memory.rss.per_guest", "bytes", kept, "guest RAM", RAM, {
    higherIsBetter: false,
    stable: spread(kept) <= 0.3,
    tolerance: 0.3,
  });
}
