/**
 * `memory.rss.per_guest`: how much resident memory one more idle guest
 * costs — RSS growth per guest while 16 idle `shell` guests (32 MiB of RAM
 * each, a host's most) sit halted in one host — against the guest RAM
 * size. Guest RAM is a `WebAssembly.Memory`: pages the guest never touches
 * are never resident.
 *
 * Resident memory here is the process's private part, anonymous and
 * shared-memory pages (`RssAnon + RssShmem` of /proc/self/status): not the
 * pages of the Deno executable read in from its file the first time a piece
 * of its code runs (`RssFile`, clean, shared with every process running
 * Deno), which came in steps of 64 KiB-3 MiB in some samples and not others.
 *
 * It runs in a child process of its own (`deno run --v8-flags=--expose-gc
 * bench/memory.ts --child`) so that a collection runs before each reading:
 * in the bench's process, after the other benchmarks, the garbage they and
 * the previous sample's guests left was collected at random moments inside
 * a sample (readings of 45-110 KiB per guest, ±21% after 3 samples in a
 * quiet full run). Samples repeat, after three warm-ups (code, allocator
 * pools), until the last five agree within ±10% of their median (at most
 * 15), as `paired` does for ratios.
 *
 * @module
 */

import { ConsoleDevice } from "../devices/console.ts";
import { compileImage, WasmCpu } from "../engines/wasm.ts";
import { Host } from "../host/host.ts";
import { GuestRun } from "../launcher/launcher.ts";
import { type Metric, single, spread } from "./lib.ts";

const GUESTS = 16;
const RAM = 32 * 1024 * 1024;
const WARMUPS = 3;
const WINDOW = 5;
const MAX = 15;
const TOLERANCE = 0.1;
const SETTLE_MS = 50;

/**
 * A full collection (the child runs with --expose-gc), then a pause: V8
 * frees the memory of dead ArrayBuffers (a stopped guest's RAM) and
 * returns pages on background threads after the collection itself.
 */
async function collect(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error("bench: memory.ts --child needs --v8-flags=--expose-gc");
  gc();
  gc();
  await new Promise((r) => setTimeout(r, SETTLE_MS));
}

/** Private resident bytes of this process: RssAnon + RssShmem (Linux). */
function privateRss(): number {
  const status = Deno.readTextFileSync("/proc/self/status");
  const kib = (field: string) => {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status);
    if (!m) throw new Error(`bench: no ${field} in /proc/self/status`);
    return Number(m[1]) * 1024;
  };
  return kib("RssAnon") + kib("RssShmem");
}

async function rssPerGuest(mod: WebAssembly.Module): Promise<number> {
  const host = new Host();
  const runs: { run: GuestRun; done: Promise<unknown> }[] = [];
  await collect();
  const before = privateRss();
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
  await collect();
  const after = privateRss();
  for (const r of runs) r.run.stop(0, "bench done");
  await Promise.all(runs.map((r) => r.done));
  return (after - before) / GUESTS;
}

/** The child: samples until the last WINDOW agree; prints them as JSON. */
async function child(): Promise<void> {
  const url = new URL("../guests/images/shell.wasm", import.meta.url);
  const mod = await compileImage(await Deno.readFile(url), "shell");
  for (let i = 0; i < WARMUPS; i++) await rssPerGuest(mod);
  const values: number[] = [];
  do values.push(await rssPerGuest(mod)); while (
    values.length < WINDOW ||
    (values.length < MAX && spread(values.slice(-WINDOW)) > TOLERANCE)
  );
  console.log(JSON.stringify(values));
}

/** Measure the metric. */
export async function benchMemory(): Promise<Metric> {
  const out = await new Deno.Command(Deno.execPath(), {
    // --allow-all: Deno reads /proc/self/status only with all permissions.
    args: [
      "run",
      "--allow-all",
      "--v8-flags=--expose-gc",
      new URL(import.meta.url).pathname,
      "--child",
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(`bench: memory child: ${new TextDecoder().decode(out.stderr).slice(-400)}`);
  }
  const values = JSON.parse(new TextDecoder().decode(out.stdout)) as number[];
  const kept = values.slice(-WINDOW);
  return {
    ...single("memory.rss.per_guest", "bytes", kept, "guest RAM", RAM, {
      higherIsBetter: false,
      stable: spread(kept) <= TOLERANCE,
      tolerance: TOLERANCE,
    }),
    pairs: values.length,
  };
}

if (import.meta.main && Deno.args.includes("--child")) {
  await child();
  Deno.exit(0); // guests' timers must not keep the child alive
}
