/**
 * The block device end to end: the real `lguest` CLI as a subprocess with
 * `--block` image files this test creates, driven by the shell guest
 * (piped scripts ending in `poweroff`), `disktest` and `test-blkerr`, and
 * checked against the files with the host's own code and tools (zlib
 * CRC-32 computed here, `dd`). Protocol §10.3, docs/guest-abi.md §15.
 */

import assert from "node:assert/strict";
import { EXIT } from "../launcher/cli.ts";
import { describe, hasStackTrace, lines, runCli, spawnCli } from "./helpers/run_cli.ts";
import { genData, inTempDir, randomBytes, SECTOR } from "./helpers/resources.ts";

const enc = new TextEncoder();

// ---- Host-side helpers --------------------------------------------------

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** zlib's crc32(0, data, len): IEEE, reflected, init and final xor ~0. */
function crc32(data: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = CRC_TABLE[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function hex8(n: number): string {
  return n.toString(16).padStart(8, "0");
}

/** One sector of a file, read by `dd` (the host's own tool, not our code). */
async function ddSector(path: string, sector: number): Promise<Uint8Array> {
  const out = await new Deno.Command("dd", {
    args: [`if=${path}`, `bs=${SECTOR}`, `skip=${sector}`, "count=1", "status=none"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  return out.stdout;
}

/** TEXT zero-padded to one sector. */
function padded(text: string): Uint8Array {
  const s = new Uint8Array(SECTOR);
  s.set(enc.encode(text));
  return s;
}

/** Assert a equals b except inside the given [start, end) byte ranges. */
function assertSameExcept(a: Uint8Array, b: Uint8Array, except: [number, number][], what: string) {
  assert.equal(a.length, b.length, `${what}: length`);
  let from = 0;
  for (
    const [start, end] of [...except].sort((x, y) => x[0] - y[0]).concat([[a.length, a.length]])
  ) {
    for (let i = from; i < start; i++) {
      if (a[i] !== b[i]) {
        assert.fail(
          `${what}: byte ${i} (sector ${Math.floor(i / SECTOR)}) is ${a[i]}, want ${b[i]}`,
        );
      }
    }
    from = Math.max(from, end);
  }
}

/** Run the shell with these `run` options and the script, then poweroff. */
async function shell(opts: string[], script: string[]) {
  const r = await runCli(["run", ...opts, "shell"], {
    stdin: [...script, "poweroff"].join("\n") + "\n",
  });
  assert.equal(r.code, 0, describe(r));
  assert.ok(!r.killed, describe(r));
  assert.match(r.stdout, /Powering off\./, describe(r));
  return r;
}

function crcLines(stdout: string): string[] {
  return lines(stdout).filter((l) => /^crc32 /.test(l)).map((l) => {
    assert.match(l, /^crc32 [0-9a-f]{8}$/);
    return l.slice(6);
  });
}

// ---- Tests --------------------------------------------------------------

Deno.test("e2e: blk crc 0 from the guest equals the host's zlib CRC-32 of the file", async () => {
  await inTempDir(async (dir) => {
    const img = `${dir}/crc.img`;
    const data = randomBytes((1 << 20) + 3 * SECTOR, 0x5eed);
    await Deno.writeFile(img, data);
    const r = await shell(["--block", img], ["blk", "blk crc 0"]);
    assert.match(r.stdout, /^disk 0: 2051 sectors, 1050112 bytes \(1\.00 MiB\), features 0x8000/m);
    assert.deepEqual(crcLines(r.stdout), [hex8(crc32(data))]);
    assert.equal(hex8(crc32(enc.encode("123456789"))), "cbf43926"); // the CRC-32 check value
  });
});

Deno.test("e2e: blk write puts TEXT zero-padded at SECTOR x 512 (dd), nothing else changes", async () => {
  await inTempDir(async (dir) => {
    const img = `${dir}/w.img`;
    const before = randomBytes(512 * SECTOR, 42);
    await Deno.writeFile(img, before);
    const text5 = "Hello from the guest,  two spaces kept ";
    const r = await shell(["--block", img], [
      `blk write 0 5 ${text5}`,
      "blk write 0 511 the last sector",
      "blk crc 0",
    ]);
    assert.equal(lines(r.stdout).filter((l) => l === "wrote 1 sector(s)").length, 2, describe(r));
    assert.deepEqual(await ddSector(img, 5), padded(text5));
    assert.deepEqual(await ddSector(img, 511), padded("the last sector"));
    const after = await Deno.readFile(img);
    assertSameExcept(
      after,
      before,
      [[5 * SECTOR, 6 * SECTOR], [511 * SECTOR, 512 * SECTOR]],
      "w.img",
    );
    assert.deepEqual(crcLines(r.stdout), [hex8(crc32(after))]);
  });
});

Deno.test("e2e: blk bench reads and (with write) overwrites the whole disk, 64 KiB requests", async () => {
  await inTempDir(async (dir) => {
    const img = `${dir}/bench.img`;
    const n = 300; // 2 full requests and a partial one
    await Deno.writeFile(img, randomBytes(n * SECTOR + 7, 5));
    const r = await shell(["--block", img], ["blk bench 0 write", "blk bench 0", "blk bench 0 x"]);
    const out = lines(r.stdout);
    const rate = String.raw`\d+\.\d{3} ms, \d+\.\d{2} MB/s \(3 request\(s\) of up to 64 KiB\)$`;
    assert.ok(
      out.some((l) => new RegExp(`^wrote ${n * SECTOR} bytes in ${rate}`).test(l)),
      describe(r),
    );
    assert.ok(
      out.some((l) => new RegExp(`^read ${n * SECTOR} bytes in ${rate}`).test(l)),
      describe(r),
    );
    assert.ok(out.includes("usage: blk bench DISK [write]"), describe(r));
    const after = await Deno.readFile(img);
    const want = new Uint8Array(n * SECTOR).map((_, o) => ((o % 65536) * 7 + 1) & 0xff);
    assert.deepEqual(after.subarray(0, n * SECTOR), want);
    assert.equal(after.length, n * SECTOR + 7);
  });
});

Deno.test("e2e: ,ro — blk write answers an error, the file is unchanged, the shell goes on", async () => {
  await inTempDir(async (dir) => {
    const img = `${dir}/ro.img`;
    const data = randomBytes(64 * SECTOR, 7);
    await Deno.writeFile(img, data);
    const r = await shell(["-v", "--block", `${img},ro`], [
      "blk",
      "blk write 0 3 must not land",
      "echo still here",
      "blk crc 0",
    ]);
    const out = lines(r.stdout);
    // The disk says it is read-only (features bit 0x0001): the kit refuses the write itself.
    assert.ok(out.includes("blk: write error on disk 0 at sector 3: read-only disk"), describe(r));
    assert.match(r.stdout, /^disk 0: 64 sectors, .*features 0x8001/m, describe(r));
    assert.ok(out.includes("still here"), describe(r));
    assert.deepEqual(crcLines(r.stdout), [hex8(crc32(data))]);
    assert.match(r.stderr, /"writes":0,.*"errors":0/, describe(r));
    assert.deepEqual(await Deno.readFile(img), data);
  });
});

const BLKERR_RW = [
  "blkerr: read past end: I/O error",
  "blkerr: write past end: I/O error",
  "blkerr: read across end: I/O error",
  "blkerr: write across end: I/O error",
  "blkerr: last sector intact: ok",
  "blkerr: bad type 7: I/O error",
  "blkerr: no reply buffer: I/O error",
  "blkerr: rewrite sector 0: ok",
  "blkerr: read after errors: ok",
  "blkerr: done",
];

/** Run test-blkerr on img (with `opts` after the path) and check every case line. */
async function blkerr(img: string, opts: string, sectors: number, expect: string[]) {
  const r = await runCli(["run", "--block", img + opts, "test-blkerr"]);
  assert.equal(r.code, 0, describe(r));
  assert.deepEqual(lines(r.stdout), [`blkerr: disk 0, ${sectors} sectors`, ...expect], describe(r));
}

Deno.test("e2e: past the end — shell range errors; test-blkerr raw requests all answer 2", async () => {
  await inTempDir(async (dir) => {
    const n = 2051;
    const data = randomBytes(n * SECTOR, 99);
    const img = `${dir}/end.img`, img2 = `${dir}/end2.img`, ro = `${dir}/end-ro.img`;
    await Deno.writeFile(img, data);
    await Deno.writeFile(img2, data); // one writer per image: a second would be refused (locked)
    await Deno.writeFile(ro, data);
    const [r] = await Promise.all([
      shell(["--block", img], [
        `blk read 0 ${n}`,
        `blk read 0 ${n - 1} 2`,
        `blk write 0 ${n} x`,
        `blk read 0 ${n - 1}`,
      ]),
      blkerr(img2, "", n, BLKERR_RW),
      blkerr(
        ro,
        ",ro",
        n,
        BLKERR_RW.map((l) => l.replace(/sector 0: ok$/, "sector 0: read-only disk")),
      ),
    ]);
    const out = lines(r.stdout);
    const range = `out of range (disk 0 has ${n} sectors)`;
    assert.ok(out.includes(`blk: sector ${n} ${range}`), describe(r));
    assert.ok(out.includes(`blk: sectors ${n - 1}..${n} ${range}`), describe(r));
    assert.equal(out.filter((l) => l === `blk: sector ${n} ${range}`).length, 2, describe(r));
    assert.ok(
      out.some((l) => l.startsWith(`${((n - 1) * SECTOR).toString(16).padStart(8, "0")}  `)),
      describe(r),
    );
    assert.deepEqual(await Deno.readFile(img), data);
    assert.deepEqual(await Deno.readFile(img2), data); // rewrite sector 0 wrote what it held
    assert.deepEqual(await Deno.readFile(ro), data);
  });
});

Deno.test("e2e: a file whose size is not a multiple of 512 works; the tail is not addressable", async () => {
  await inTempDir(async (dir) => {
    const tail = 100, n = 64;
    const data = randomBytes(n * SECTOR + tail, 3);
    const img = `${dir}/odd.img`, img2 = `${dir}/odd2.img`;
    await Deno.writeFile(img, data);
    await Deno.writeFile(img2, data);
    const [r] = await Promise.all([
      shell(["-v", "--block", img], [
        "blk",
        "blk crc 0",
        `blk write 0 ${n - 1} in the last whole sector`,
        `blk read 0 ${n}`,
      ]),
      blkerr(img2, "", n, BLKERR_RW),
    ]);
    assert.match(r.stdout, new RegExp(`^disk 0: ${n} sectors, ${n * SECTOR} bytes `, "m"));
    assert.match(r.stderr, new RegExp(`last ${tail} bytes not addressable`), describe(r));
    assert.deepEqual(crcLines(r.stdout), [hex8(crc32(data.subarray(0, n * SECTOR)))]);
    assert.ok(lines(r.stdout).includes(`blk: sector ${n} out of range (disk 0 has ${n} sectors)`));
    const after = await Deno.readFile(img);
    assert.deepEqual(
      after.subarray((n - 1) * SECTOR, n * SECTOR),
      padded("in the last whole sector"),
    );
    assertSameExcept(after, data, [[(n - 1) * SECTOR, n * SECTOR]], "odd.img"); // tail intact
    assert.deepEqual(await Deno.readFile(img2), data);
  });
});

Deno.test("e2e: two disks at once — blk lists both, writes to disk 1 land only in the second file", async () => {
  await inTempDir(async (dir) => {
    const a = `${dir}/a.img`, b = `${dir}/b.img`;
    const da = randomBytes(128 * SECTOR, 11), db = randomBytes(256 * SECTOR, 12);
    await Deno.writeFile(a, da);
    await Deno.writeFile(b, db);
    const r = await shell(["--block", a, "--block", b], [
      "blk",
      "blk write 1 2 only on disk one",
      "blk crc 0",
      "blk crc 1",
    ]);
    const list = lines(r.stdout).filter((l) => /^disk \d+:/.test(l));
    assert.equal(list.length, 2, describe(r));
    assert.match(list[0], /^disk 0: 128 sectors, 65536 bytes .*irq 1, device 0$/);
    assert.match(list[1], /^disk 1: 256 sectors, 131072 bytes .*irq 2, device 1$/);
    assert.deepEqual(await Deno.readFile(a), da);
    const after = await Deno.readFile(b);
    assert.deepEqual(await ddSector(b, 2), padded("only on disk one"));
    assertSameExcept(after, db, [[2 * SECTOR, 3 * SECTOR]], "b.img");
    assert.deepEqual(crcLines(r.stdout), [hex8(crc32(da)), hex8(crc32(after))]);
  });
});

Deno.test("e2e: disktest over 3000 operations, on a zeroed and on a random image", async () => {
  await inTempDir(async (dir) => {
    const zero = `${dir}/zero.img`, rand = `${dir}/rand.img`;
    await Deno.writeFile(zero, new Uint8Array(4 << 20));
    const big = randomBytes(10 << 20, 2024); // more than the 8 MiB disktest region
    await Deno.writeFile(rand, big);
    const [r1, r2] = await Promise.all([
      runCli(["run", "--block", zero, "disktest", "--", "ops=3000", "seed=7"]),
      runCli(["run", "--block", rand, "disktest", "--", "ops=3000", "seed=1234567"]),
    ]);
    for (const r of [r1, r2]) {
      assert.equal(r.code, 0, describe(r));
      assert.equal(lines(r.stdout).at(-1), "disktest: 3000 ops OK", describe(r));
    }
    const after = await Deno.readFile(rand);
    assert.equal(after.length, big.length);
    assertSameExcept(after.subarray(8 << 20), big.subarray(8 << 20), [], "past the region");
  });
});

/**
 * SIGKILL mid-disktest: every acknowledged write must be in the file.
 * Replays the acked writes of the `log=1` output onto the original and
 * compares; inside the one write in flight each byte is old or new.
 */
async function killMidDisktest(dir: string, opts: string): Promise<number> {
  const orig = randomBytes(12 << 20, 31337);
  const img = `${dir}/kill${opts.replace(",", "-")}.img`;
  await Deno.writeFile(img, orig);
  const p = spawnCli([
    "run",
    "--block",
    img + opts,
    "disktest",
    "--",
    "log=1",
    "ops=100000",
    "seed=3",
  ], {
    killAfterMs: 30_000,
  });
  await p.waitFor((t) => (t.match(/^ack W /gm)?.length ?? 0) >= 200, 20_000);
  p.kill("SIGKILL");
  const r = await p.result();
  assert.equal(r.signal, "SIGKILL", describe(r));
  assert.ok(!r.killed, describe(r));

  const model = orig.slice();
  let pending: { sector: number; count: number; seed: number; line: string } | null = null;
  let acks = 0;
  const complete = r.stdout.slice(0, r.stdout.lastIndexOf("\n") + 1); // a cut last line is ignored
  for (const line of lines(complete)) {
    const m = /^(begin|ack) W (\d+) (\d+) (\d+)$/.exec(line);
    if (!m) {
      assert.match(line, /^disktest: disk 0, 24576 sectors, testing sectors 0\.\.16383, seed 3/);
      continue;
    }
    const [sector, count, seed] = [Number(m[2]), Number(m[3]), Number(m[4])];
    if (m[1] === "begin") {
      assert.equal(pending, null, `two writes in flight: ${line}`);
      pending = { sector, count, seed, line };
    } else {
      const open = pending as { line: string } | null;
      assert.equal(open?.line, `begin${line.slice(3)}`, `ack without its begin: ${line}`);
      model.set(genData(seed, count * SECTOR), sector * SECTOR);
      pending = null;
      acks++;
    }
  }
  assert.ok(acks >= 200, `only ${acks} acks`);
  const after = await Deno.readFile(img);
  assert.equal(after.length, orig.length, "the file size changed");
  const except: [number, number][] = [];
  if (pending) {
    const start = pending.sector * SECTOR, len = pending.count * SECTOR;
    except.push([start, start + len]);
    const fresh = genData(pending.seed, len);
    for (let i = 0; i < len; i++) {
      const got = after[start + i];
      if (got !== model[start + i] && got !== fresh[i]) {
        assert.fail(`in-flight write ${pending.line}: byte ${i} is neither old nor new`);
      }
    }
  }
  assertSameExcept(after, model, except, `after SIGKILL (${acks} acks)`);
  return acks;
}

Deno.test("e2e: SIGKILL mid-disktest loses no acknowledged write (page cache and ,sync)", async () => {
  await inTempDir(async (dir) => {
    await Promise.all([killMidDisktest(dir, ""), killMidDisktest(dir, ",sync")]);
  });
});

Deno.test("e2e: ENOSPC on a tiny tmpfs answers an error; the launcher goes on, the file keeps its size", async () => {
  if (Deno.build.os !== "linux" || Deno.uid() !== 0) {
    console.log("  skipped: needs root on Linux to mount a tmpfs");
    return;
  }
  await inTempDir(async (dir) => {
    const mnt = await new Deno.Command("mount", {
      args: ["-t", "tmpfs", "-o", "size=64k", "tmpfs", dir],
      stdout: "null",
      stderr: "piped",
    }).output();
    if (mnt.code !== 0) {
      console.log(`  skipped: mount tmpfs failed: ${new TextDecoder().decode(mnt.stderr).trim()}`);
      return;
    }
    try {
      const img = `${dir}/sparse.img`;
      await Deno.writeFile(img, new Uint8Array(0));
      await Deno.truncate(img, 1 << 20); // sparse: 2048 sectors, no blocks yet
      const script = [];
      for (let s = 0; s < 2048; s += 8) script.push(`blk write 0 ${s} sector ${s}`);
      const r = await shell(["-v", "--block", img], [...script, "echo alive"]);
      const out = lines(r.stdout);
      const errors = out.filter((l) =>
        /^blk: write error on disk 0 at sector \d+: I\/O error$/.test(l)
      );
      const ok = out.filter((l) => l === "wrote 1 sector(s)");
      assert.ok(errors.length >= 1, describe(r));
      assert.equal(errors.length + ok.length, 256, describe(r));
      assert.ok(out.includes("alive"), describe(r));
      assert.match(r.stderr, /ENOSPC/, describe(r));
      assert.equal((await Deno.stat(img)).size, 1 << 20);
      assert.deepEqual(await ddSector(img, 0), padded("sector 0")); // the first write fit
    } finally {
      await new Deno.Command("umount", { args: [dir] }).output();
    }
  });
});

Deno.test("e2e: a missing file or a directory as --block is one line and exit 125", async () => {
  await inTempDir(async (dir) => {
    const missing = `${dir}/no-such.img`;
    const results = await Promise.all([
      runCli(["run", "--block", missing, "shell"]),
      runCli(["run", "--block", dir, "shell"]),
    ]);
    const want = [`--block ${missing}: no such file`, `--block ${dir}: is a directory`];
    results.forEach((r, i) => {
      assert.equal(r.code, EXIT.USAGE, describe(r));
      assert.equal(r.stdout, "", describe(r));
      assert.equal(lines(r.stderr).length, 1, describe(r));
      assert.ok(r.stderr.includes(want[i]), describe(r));
      assert.ok(!hasStackTrace(r.stderr), describe(r));
    });
  });
});
