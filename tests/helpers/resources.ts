/**
 * Test helper for the hostile-guest and fault tests (issue 7): config files
 * for several guests, the `-v` lines the launcher prints about a run
 * (counters, what the host holds when a guest is gone), ping summaries,
 * the lguest process's resident memory and CPU time (sampled with `ps`:
 * Deno guards /proc), and the `disktest log=1` replay that checks every
 * acknowledged write is in the file.
 *
 * @module
 */

import assert from "node:assert/strict";
import { lines } from "./run_cli.ts";

// ---- Config files -------------------------------------------------------------------

/** One guest of a `--config` file. */
export interface GuestConf {
  name: string;
  image: string;
  memory?: string;
  net?: string[];
  block?: string[];
  /** The command line as written, or its words (quoted as the CLI quotes the words after `--`). */
  args?: string | string[];
  console?: "stdio";
}

/** Two guests on segment "lan": a = netd at 10.0.0.1, b = the shell at 10.0.0.2 on stdio. */
export function lanPair(): GuestConf[] {
  return [
    { name: "a", image: "netd", memory: "16M", net: ["segment:lan"], args: "ip=10.0.0.1/24" },
    {
      name: "b",
      image: "shell",
      net: ["segment:lan"],
      args: "ip=10.0.0.2/24",
      console: "stdio",
    },
  ];
}

/** Write `{ "guests": [...] }` to DIR/NAME and return its path. */
export async function writeConfig(
  dir: string,
  guests: GuestConf[],
  name = "config.json",
): Promise<string> {
  const path = `${dir}/${name}`;
  await Deno.writeTextFile(path, JSON.stringify({ guests }, null, 2));
  return path;
}

/** Run `fn` with a temporary directory, removed afterwards. */
export async function inTempDir<T>(
  fn: (dir: string) => Promise<T>,
  prefix = "lguest-t-",
): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/**
 * The `[name] ` lines of a non-stdio guest, without the prefix (which may
 * follow the stdio shell's prompt on the same line).
 */
export function guestLines(out: string, name: string): string[] {
  const tag = `[${name}] `;
  return lines(out).filter((l) => l.includes(tag)).map((l) => l.slice(l.indexOf(tag) + tag.length));
}

// ---- What -v prints -------------------------------------------------------------------

/** The `-v` line `lguest: NAME: counters {...}` (launcher/runner.ts). */
export function counters(stderr: string, name: string): Record<string, number> {
  const m = new RegExp(`^lguest: ${name}: counters (\\{.*\\})$`, "m").exec(stderr);
  assert.ok(m, `no counters line for ${name} in stderr:\n${stderr.slice(-3000)}`);
  return JSON.parse(m[1]);
}

/** What the host held right after a guest was gone (launcher/runner.ts, -v). */
export interface Gone {
  name: string;
  guests: number;
  bindings: number;
}

/** Every `lguest: NAME: gone; the host holds G guest(s), B DMA binding(s)` line, in order. */
export function goneLines(stderr: string): Gone[] {
  return [
    ...stderr.matchAll(
      /^lguest: (\S+): gone; the host holds (\d+) guest\(s\), (\d+) DMA binding\(s\)$/gm,
    ),
  ].map((m) => ({ name: m[1], guests: +m[2], bindings: +m[3] }));
}

/** The last guest gone left nothing behind: no guest, no binding. */
export function assertHostEmpty(stderr: string): void {
  const gone = goneLines(stderr);
  assert.ok(gone.length > 0, `no 'gone' lines in stderr:\n${stderr.slice(-3000)}`);
  const last = gone.at(-1)!;
  assert.deepEqual([last.guests, last.bindings], [0, 0], `the host holds ${JSON.stringify(last)}`);
}

/** The block device's closing `-v` line `lguest: NAME: block PATH: {...}`. */
export function blockStats(stderr: string, path: string): Record<string, number> {
  const i = stderr.lastIndexOf(`: block ${path}: {`);
  assert.ok(i >= 0, `no block stats line for ${path} in stderr:\n${stderr.slice(-3000)}`);
  const line = stderr.slice(i).split("\n")[0];
  return JSON.parse(line.slice(line.indexOf("{")));
}

// ---- Ping ---------------------------------------------------------------------------

/** The shell's `ping ADDR` summary after `from` (index into out): [transmitted, received]. */
export function pingSummary(out: string, addr: string, from = 0): [number, number] {
  const i = out.indexOf(`--- ${addr} ping statistics ---`, from);
  assert.ok(i >= 0, `no ping statistics for ${addr} in:\n${out.slice(from, from + 4000)}`);
  const m = /^(\d+) packets transmitted, (\d+) received, \d+% packet loss$/m.exec(out.slice(i));
  assert.ok(m, `no summary line for ${addr} in:\n${out.slice(i, i + 2000)}`);
  return [+m[1], +m[2]];
}

/** Every ping summary for ADDR in order: [transmitted, received][]. */
export function pingSummaries(out: string, addr: string): [number, number][] {
  const all: [number, number][] = [];
  let i = out.indexOf(`--- ${addr} ping statistics ---`);
  while (i >= 0) {
    all.push(pingSummary(out, addr, i));
    i = out.indexOf(`--- ${addr} ping statistics ---`, i + 1);
  }
  return all;
}

// ---- The lguest process: memory and CPU ----------------------------------------------

/** `ps -o FIELD= -p PID` as a string, or null when the process is gone. */
async function ps(pid: number, field: string): Promise<string | null> {
  const out = await new Deno.Command("ps", {
    args: ["-o", `${field}=`, "-p", String(pid)],
    stdout: "piped",
    stderr: "null",
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  return out.success && text !== "" ? text : null;
}

/** Resident set size of a process in KiB, or null when it is gone. */
export async function rssKiB(pid: number): Promise<number | null> {
  const t = await ps(pid, "rss");
  return t === null ? null : Number(t);
}

/**
 * User + system CPU time of a process in seconds, or null when it is gone:
 * from /proc/PID/stat (clock ticks, USER_HZ 100 on Linux), else `ps`
 * (whole seconds).
 */
export async function cpuSeconds(pid: number): Promise<number | null> {
  try {
    const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / 100; // utime, stime
  } catch { /* not Linux, or gone: ask ps */ }
  const t = await ps(pid, "cputimes");
  return t === null ? null : Number(t);
}

/** Samples of a process's RSS taken every `everyMs` until stopped. */
export class RssSampler {
  readonly samples: { ms: number; kib: number }[] = [];
  readonly #start = performance.now();
  #stopped = false;
  readonly #loop: Promise<void>;

  constructor(pid: number, everyMs = 250) {
    this.#loop = (async () => {
      while (!this.#stopped) {
        const kib = await rssKiB(pid);
        if (kib === null) break;
        this.samples.push({ ms: Math.round(performance.now() - this.#start), kib });
        await new Promise((r) => setTimeout(r, everyMs));
      }
    })();
  }

  /** Stop sampling; resolves with the samples. */
  async stop(): Promise<{ ms: number; kib: number }[]> {
    this.#stopped = true;
    await this.#loop;
    return this.samples;
  }

  /**
   * Assert the RSS stayed bounded: after the first `warmupMs` (V8 and the
   * guests' memories settling), it never rose more than `maxGrowthMiB`
   * above its level then. Returns a one-line summary for the log.
   */
  static assertBounded(
    samples: { ms: number; kib: number }[],
    what: string,
    maxGrowthMiB = 48,
    warmupMs = 1000,
  ): string {
    assert.ok(samples.length >= 1, `${what}: no RSS sample`);
    const after = samples.filter((s) => s.ms >= warmupMs);
    const peak = Math.max(...samples.map((s) => s.kib));
    const last = samples.at(-1)!;
    const mib = (kib: number) => Math.round(kib / 1024);
    if (after.length < 3) {
      return `${what}: RSS peak ${
        mib(peak)
      } MiB (a run of ${last.ms} ms: too short to judge growth)`;
    }
    const base = after[0];
    const growth = (Math.max(...after.map((s) => s.kib)) - base.kib) / 1024;
    const summary = `${what}: RSS ${mib(base.kib)} MiB at ${base.ms} ms, peak ${mib(peak)} MiB, ` +
      `last ${mib(last.kib)} MiB at ${last.ms} ms (${samples.length} samples)`;
    assert.ok(growth <= maxGrowthMiB, `${summary}: grew ${growth.toFixed(1)} MiB`);
    return summary;
  }
}

// ---- disktest log=1 --------------------------------------------------------------

export const SECTOR = 512;

/** Steps run concurrently, which Deno allows only without sanitizers. */
export const SANITIZERS_OFF = { sanitizeOps: false, sanitizeResources: false, sanitizeExit: false };

/** The data of a `disktest log=1` write: low bytes of xorshift32 from seed32 (guest-abi §15.3). */
export function genData(seed32: number, len: number): Uint8Array {
  const out = new Uint8Array(len);
  let x = seed32 >>> 0;
  for (let i = 0; i < len; i++) {
    x = (x ^ (x << 13)) >>> 0;
    x = (x ^ (x >>> 17)) >>> 0;
    x = (x ^ (x << 5)) >>> 0;
    out[i] = x & 0xff;
  }
  return out;
}

/** Reproducible random bytes (xorshift32 words). */
export function randomBytes(n: number, seed: number): Uint8Array {
  const words = new Uint32Array(Math.ceil(n / 4));
  let x = seed >>> 0 || 1;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x;
  }
  return new Uint8Array(words.buffer, 0, n);
}

/**
 * Check a disk file after a `disktest log=1` run that was cut short: the
 * file equals `orig` with every `ack`ed write of `stdout` applied in order,
 * except inside the one write that may be in flight (a `begin` without its
 * `ack`), where each byte is old or new. Returns the number of acks.
 */
export function assertAckedWritesPresent(
  stdout: string,
  orig: Uint8Array,
  after: Uint8Array,
  what: string,
): number {
  const model = orig.slice();
  let pending: { sector: number; count: number; seed: number; line: string } | null = null;
  let acks = 0;
  const complete = stdout.slice(0, stdout.lastIndexOf("\n") + 1); // a cut last line is ignored
  for (const line of lines(complete)) {
    const m = /^(begin|ack) W (\d+) (\d+) (\d+)$/.exec(line);
    if (!m) continue;
    const [sector, count, seed] = [Number(m[2]), Number(m[3]), Number(m[4])];
    if (m[1] === "begin") {
      assert.equal(pending, null, `${what}: two writes in flight: ${line}`);
      pending = { sector, count, seed, line };
    } else {
      const open = pending as { line: string } | null;
      assert.equal(open?.line, `begin${line.slice(3)}`, `${what}: ack without its begin: ${line}`);
      model.set(genData(seed, count * SECTOR), sector * SECTOR);
      pending = null;
      acks++;
    }
  }
  assert.equal(after.length, orig.length, `${what}: the file size changed`);
  let from = 0, to = 0;
  if (pending) {
    from = pending.sector * SECTOR;
    to = from + pending.count * SECTOR;
    const fresh = genData(pending.seed, to - from);
    for (let i = from; i < to; i++) {
      if (after[i] !== model[i] && after[i] !== fresh[i - from]) {
        assert.fail(
          `${what}: in-flight write ${pending.line}: byte ${i - from} is neither old nor new`,
        );
      }
    }
  }
  for (let i = 0; i < after.length; i++) {
    if ((i < from || i >= to) && after[i] !== model[i]) {
      assert.fail(
        `${what}: byte ${i} (sector ${Math.floor(i / SECTOR)}) is ${after[i]}, want ${model[i]} ` +
          `(${acks} acked writes replayed)`,
      );
    }
  }
  return acks;
}
