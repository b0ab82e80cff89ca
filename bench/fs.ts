/**
 * `fs.write.seq` and `fs.read.seq`: sequential throughput of a file on the
 * kit's file system (lgfs, docs/disk-format.md) as the guest sees it,
 * against the raw block device in the same run.
 *
 * - subject: `test-fstest bench 64` on a 128 MiB lgfs image: it writes a
 *   64 MiB file in 256 KiB `fs_write`s (truncating the last run's), fsyncs,
 *   and reads it back; MB/s by the guest's clock.
 * - reference: the shell's `blk bench 0 write` and `blk bench 0` on a raw
 *   64 MiB image (64 KiB requests straight to the device).
 *
 * One run of each per sample, interleaved (both see the same load); the
 * ratio is what the file system costs over its disk. Images live in a temp
 * dir, removed at the end.
 *
 * @module
 */

import { lguest, type Metric, metric, type Paired, paired, spread } from "./lib.ts";

const MIB = 64;
const REPEAT = { min: 5, max: 11 };

/** [write, read] MB/s of one `test-fstest bench`. */
async function fsRun(image: string): Promise<[number, number]> {
  const out = await lguest(["run", "--block", image, "test-fstest", "--", "bench", String(MIB)]);
  const m = /^bench write (\d+) MB\/s read (\d+) MB\/s/m.exec(out);
  if (!m) throw new Error(`bench: test-fstest said: ${out.slice(-300)}`);
  return [Number(m[1]), Number(m[2])];
}

/** [write, read] MB/s of the shell's `blk bench` on the raw image. */
async function rawRun(image: string): Promise<[number, number]> {
  const out = await lguest(
    ["run", "--block", image, "shell"],
    "blk bench 0 write\nblk bench 0\npoweroff\n",
  );
  const rate = (verb: string) => {
    const m = new RegExp(`^${verb} (\\d+) bytes in (\\d+\\.\\d+) ms`, "m").exec(out);
    if (!m) throw new Error(`bench: the shell said: ${out.slice(-300)}`);
    return Number(m[1]) / 1000 / Number(m[2]);
  };
  return [rate("wrote"), rate("read")];
}

/** `fs.write.seq` and `fs.read.seq`. */
export async function benchFs(): Promise<Metric[]> {
  const dir = await Deno.makeTempDir({ prefix: "lguest-bench-fs-" });
  try {
    const fsImage = `${dir}/fs.img`, raw = `${dir}/raw.img`;
    await lguest(["disk", "mkfs", fsImage, "128M"]);
    await Deno.writeFile(raw, new Uint8Array(0));
    await Deno.truncate(raw, MIB << 20);
    await fsRun(fsImage); // warm-up: the page cache holds both images' blocks
    await rawRun(raw);
    const reads: number[] = [], readRefs: number[] = [];
    const w = await paired(
      async () => {
        const [wr, rd] = await fsRun(fsImage);
        reads.push(rd);
        return wr;
      },
      async () => {
        const [wr, rd] = await rawRun(raw);
        readRefs.push(rd);
        return wr;
      },
      REPEAT,
    );
    const n = w.values.length;
    const values = reads.slice(-n), refs = readRefs.slice(-n);
    const ratios = values.map((v, i) => v / refs[i]);
    const r: Paired = {
      values,
      refs,
      ratios,
      pairs: w.pairs,
      stable: spread(ratios) <= w.tolerance,
      tolerance: w.tolerance,
    };
    const ref = "the raw disk: blk bench, 64 KiB requests";
    return [
      metric("fs.write.seq", "MB/s", w, `${ref} (write)`),
      metric("fs.read.seq", "MB/s", r, `${ref} (read)`),
    ];
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
