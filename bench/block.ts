/**
 * `block.read.seq` and `block.write.seq`: sequential throughput of the
 * block device (docs/guest-abi.md §15) on a 64 MiB image, as the guest
 * sees it, against the host doing the same I/O on the same file itself.
 *
 * - read: the shell's `blk bench 0` (the whole disk in 64 KiB requests
 *   into one page-aligned buffer) against the host reading the file, in
 *   page cache (warmed first), with 64 KiB `readSync` calls.
 * - write: `blk bench 0 write` against the host overwriting a file of the
 *   same size in place with 64 KiB `writeSync` calls (page cache, no sync).
 *
 * One shell guest stays up per metric; a sample is the fastest of
 * BEST_OF `blk bench` passes, paired with the fastest of as many host
 * passes (interleaved, so both see the same machine load); the guest's
 * figure is its own (bytes / its elapsed time, clock read from the host at
 * IRQs, sub-ms resolution). Each sample is also
 * timed from the host side, from writing the command to seeing the
 * result line, and that figure is printed on stderr as a cross-check.
 * The guest streams through a 64 KiB buffer, so the default 32 MiB of RAM
 * is enough for any image size. The image lives in a temp dir, removed
 * at the end.
 *
 * @module
 */

import * as fs from "node:fs";
import { LGUEST_RUN as FLAGS, type Metric, metric, paired } from "./lib.ts";

const IMAGE = 64 << 20;
const CHUNK = 64 << 10;
const REPEAT = { min: 7, max: 21 };
/**
 * Passes per sample on each side; a sample is the fastest. A pass (~5 ms
 * for the guest, ~3 ms for the host) that lost the CPU to another process
 * measures that process: on a loaded 2-core machine one 256 MiB pass of
 * 12-20 ms per sample put single samples of either side at half speed.
 */
const BEST_OF = 4;

/** A file of `bytes` real (not sparse) non-zero data. */
function makeImage(path: string, bytes: number): void {
  const chunk = new Uint8Array(1 << 20);
  crypto.getRandomValues(chunk.subarray(0, 65536));
  for (let o = 65536; o < chunk.length; o *= 2) chunk.copyWithin(o, 0, o);
  const fd = fs.openSync(path, "w");
  try {
    for (let o = 0; o < bytes; o += chunk.length) fs.writeSync(fd, chunk, 0, chunk.length, o);
  } finally {
    fs.closeSync(fd);
  }
}

/** MB/s (10^6 bytes) of the host doing 64 KiB pread/pwrite over the whole file. */
function hostPass(path: string, write: boolean): number {
  const buf = new Uint8Array(CHUNK).fill(0x5a);
  const fd = fs.openSync(path, write ? "r+" : "r");
  try {
    const size = fs.fstatSync(fd).size;
    const t = performance.now();
    for (let o = 0; o < size; o += CHUNK) {
      const n = write ? fs.writeSync(fd, buf, 0, CHUNK, o) : fs.readSync(fd, buf, 0, CHUNK, o);
      if (n !== CHUNK) throw new Error(`bench: short ${write ? "write" : "read"} at ${o}`);
    }
    return size / 1000 / (performance.now() - t);
  } finally {
    fs.closeSync(fd);
  }
}

/** A shell guest with one disk, driven one command at a time. */
class Shell {
  readonly #child: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #reader: ReadableStreamDefaultReader<string>;
  #out = "";

  constructor(image: string, extra: string[] = []) {
    this.#child = new Deno.Command(Deno.execPath(), {
      args: [...FLAGS, "run", ...extra, "--block", image, "shell"],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
      env: { NO_COLOR: "1" },
    }).spawn();
    this.#writer = this.#child.stdin.getWriter();
    this.#reader = this.#child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  }

  /** Read stdout until `re` matches what came after `from`; returns the match. */
  async #until(re: RegExp): Promise<RegExpExecArray> {
    for (;;) {
      const m = re.exec(this.#out);
      if (m) {
        this.#out = this.#out.slice(m.index + m[0].length);
        return m;
      }
      const { value, done } = await this.#reader.read();
      if (done) throw new Error(`bench: the shell ended; output: ${this.#out.slice(-500)}`);
      this.#out += value;
    }
  }

  ready(): Promise<RegExpExecArray> {
    return this.#until(/lguest\$ /);
  }

  /**
   * One `blk bench 0 [write]`: [guest MB/s, host-timed MB/s].
   */
  async bench(write: boolean): Promise<[number, number]> {
    const t = performance.now();
    await this.#writer.write(new TextEncoder().encode(`blk bench 0${write ? " write" : ""}\n`));
    const m = await this.#until(
      /^(read|wrote) (\d+) bytes in (\d+)\.(\d{3}) ms, [\d.]+ MB\/s .*$|^blk: .*$/m,
    );
    const hostMs = performance.now() - t;
    if (!m[1]) throw new Error(`bench: ${m[0]}`);
    const bytes = Number(m[2]), ms = Number(m[3]) + Number(m[4]) / 1000;
    if (bytes !== IMAGE) throw new Error(`bench: the guest moved ${bytes} bytes`);
    await this.ready();
    return [bytes / 1000 / ms, bytes / 1000 / hostMs];
  }

  async close(): Promise<void> {
    await this.#writer.write(new TextEncoder().encode("poweroff\n"));
    await this.#writer.close().catch(() => {});
    while (!(await this.#reader.read()).done) { /* drain */ }
    const status = await this.#child.status;
    if (status.code !== 0) throw new Error(`bench: the shell exited ${status.code}`);
  }
}

async function benchBlock(write: boolean, extra: string[] = [], suffix = ""): Promise<Metric> {
  const name = (write ? "block.write.seq" : "block.read.seq") + suffix;
  const dir = await Deno.makeTempDir({ prefix: "lguest-bench-" });
  try {
    const image = `${dir}/disk.img`;
    makeImage(image, IMAGE);
    hostPass(image, false); // page cache warm (it was just written, but make sure)
    const shell = new Shell(image, extra);
    const hostTimed: number[] = [];
    let p;
    try {
      await shell.ready();
      await shell.bench(write); // warm-up: JIT, the guest's buffer
      hostPass(image, write);
      // Guest and host samples interleaved, so both see the same machine load.
      p = await paired(
        async () => {
          let guest = 0, host = 0;
          for (let k = 0; k < BEST_OF; k++) {
            const [g, h] = await shell.bench(write);
            guest = Math.max(guest, g);
            host = Math.max(host, h);
          }
          hostTimed.push(host);
          return guest;
        },
        () => {
          let best = 0;
          for (let k = 0; k < BEST_OF; k++) best = Math.max(best, hostPass(image, write));
          return best;
        },
        REPEAT,
      );
    } finally {
      await shell.close();
    }
    const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
    console.error(
      `bench: ${name}: guest ${med(p.values).toFixed(0)} MB/s (timed from the host: ` +
        `${med(hostTimed).toFixed(0)} MB/s), host 64 KiB ${write ? "writeSync" : "readSync"}: ` +
        `${med(p.refs).toFixed(0)} MB/s`,
    );
    return metric(name, "MB/s", p, `host 64 KiB ${write ? "writeSync" : "readSync"}, same size`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * `block.read.seq`: guest `blk bench 0` vs the host reading the file in page
 * cache; `extra` run options (`--engine kvm`) and a name `suffix` (`.kvm`).
 */
export function benchBlockRead(extra: string[] = [], suffix = ""): Promise<Metric> {
  return benchBlock(false, extra, suffix);
}

/** `block.write.seq`: guest `blk bench 0 write` vs the host writing the file. */
export function benchBlockWrite(): Promise<Metric> {
  return benchBlock(true);
}
