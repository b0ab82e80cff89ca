/**
 * The host's lgfs code (launcher/lgfs.ts): round trips, crash consistency
 * of its own writes (a simulated crash after every possible number of
 * block writes), hostile images (corrupt superblock, cycles, names with
 * '/' or '..', sizes and block numbers beyond the disk, bad journal), and
 * a fuzzer pass of random corruptions (only LgfsError may escape, in
 * bounded time). docs/disk-format.md.
 */

import assert from "node:assert/strict";
import {
  BS,
  CorruptError,
  CrashError,
  crc32,
  DT_DIR,
  escapedName,
  type Inode,
  isDir,
  layout,
  Lgfs,
  LgfsError,
  MAX_FILE,
  MemDev,
  ROOT_INO,
} from "../launcher/lgfs.ts";
import { genData } from "./helpers/resources.ts";

const MiB = 1 << 20;
const T0 = 1_700_000_000_000_000_000;
const now = () => T0;

function fresh(size = 4 * MiB): { dev: MemDev; fs: Lgfs } {
  const dev = new MemDev(new Uint8Array(size));
  return { dev, fs: Lgfs.mkfs(dev, { now }) };
}

function readAll(fs: Lgfs, ino: number): Uint8Array {
  const parts: Uint8Array[] = [];
  let len = 0;
  for (const p of fs.readFile(ino)) {
    const part = typeof p === "number" ? new Uint8Array(p) : p;
    parts.push(part);
    len += part.length;
  }
  const out = new Uint8Array(len);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

function fileAt(fs: Lgfs, path: string): Uint8Array {
  const r = fs.resolve(path);
  assert.ok(r.ino !== null, `${path} exists`);
  return readAll(fs, r.ino!);
}

function reopen(dev: MemDev, writable = false): Lgfs {
  return Lgfs.open(dev, { writable, now });
}

Deno.test("lgfs: mkfs layout and an empty, consistent file system", () => {
  const { dev, fs } = fresh();
  const g = layout(4 * MiB);
  assert.deepEqual(fs.g, g);
  assert.equal(g.blocks, 1024);
  assert.equal(g.jstart, 1);
  assert.equal(g.jblocks, 128);
  assert.equal(g.inodes % 32, 0);
  const r = reopen(dev).check();
  assert.equal(r.files, 0);
  assert.equal(r.dirs, 1);
  assert.equal(r.usedBlocks, 0);
  assert.equal(r.freeBlocks, g.blocks - g.dstart);
  assert.throws(() => Lgfs.mkfs(new MemDev(new Uint8Array(MiB - BS))), LgfsError);
});

Deno.test("lgfs: layout of the largest disk: 2^32 sectors, 65536 inodes, bitmap in range", () => {
  const g = layout(2 ** 32 * 512);
  assert.equal(g.blocks, 2 ** 29 - 1); // one block short of 2 TiB (the size limit)
  assert.equal(g.inodes, 65536);
  assert.equal(g.bblocks, Math.ceil(g.blocks / 32768));
  assert.equal(g.dstart, 1 + 128 + g.bblocks + 2048);
  assert.deepEqual(layout(MiB), {
    ...layout(MiB),
    blocks: 256,
    inodes: 128,
    dstart: 1 + 128 + 1 + 4,
  });
});

Deno.test("lgfs: files of every size class round-trip (direct, indirect, double indirect)", () => {
  const { dev, fs } = fresh(16 * MiB);
  const sizes = [0, 1, 4095, 4096, 4097, 12 * BS, 12 * BS + 1, 1036 * BS + 7, 5 * MiB + 3];
  sizes.forEach((n, i) => {
    fs.writeFile(`/d${i % 3}/sub/f${i}`, [genData(i + 1, n)]);
  });
  const again = reopen(dev);
  sizes.forEach((n, i) => {
    assert.deepEqual(fileAt(again, `/d${i % 3}/sub/f${i}`), genData(i + 1, n), `size ${n}`);
  });
  const r = again.check();
  assert.equal(r.files, sizes.length);
  assert.equal(r.dirs, 1 + 3 + 3);
  // Replacing and removing give every block back.
  const w = reopen(dev, true);
  w.writeFile("/d0/sub/f0", [genData(99, 3 * BS)]);
  assert.deepEqual(fileAt(w, "/d0/sub/f0"), genData(99, 3 * BS));
  sizes.forEach((_, i) => w.unlink(`/d${i % 3}/sub/f${i}`));
  const after = reopen(dev).check();
  assert.equal(after.files, 0);
  assert.equal(after.usedBlocks, 1 + 3 + 3); // the directories' own blocks
  assert.equal(after.leaked, 0);
});

Deno.test("lgfs: names: long, unicode, refused ones; entries over several directory blocks", () => {
  const { dev, fs } = fresh(16 * MiB);
  const long = "n".repeat(120);
  fs.writeFile(`/${long}`, [new Uint8Array([1])]);
  fs.writeFile("/grüße ☃", [new Uint8Array([2])]);
  for (let i = 0; i < 70; i++) fs.writeFile(`/many/x${i}`, [new Uint8Array([i])]);
  assert.throws(() => fs.writeFile(`/${long}x`, [new Uint8Array(1)]), LgfsError);
  assert.throws(() => fs.writeFile("/a/..", [new Uint8Array(1)]), LgfsError);
  assert.throws(() => fs.mkdirs("/a/../b"), LgfsError);
  const r = reopen(dev);
  assert.deepEqual(fileAt(r, "/grüße ☃"), new Uint8Array([2]));
  assert.equal([...r.entries(r.resolve("/many").ino!)].length, 70);
  assert.equal(r.inode(r.resolve("/many").ino!).size, 3 * BS);
  assert.equal(r.check().files, 72);
});

Deno.test("lgfs: ENOSPC when the disk is full: no partial file is left (even after commits on the way), the disk stays consistent", () => {
  for (const size of [MiB * 2, MiB * 24]) {
    const { dev, fs } = fresh(size);
    fs.writeFile("/keep", [genData(1, 3 * BS)]);
    const free = fs.check().freeBlocks;
    const commits = fs.commits;
    assert.throws(
      () => fs.writeFile("/huge", [genData(5, (free + 10) * BS)]),
      (e) => e instanceof LgfsError && /no space.*\(\/huge not written\)/.test(e.message),
    );
    if (size > MiB * 2) assert.ok(fs.commits > commits + 1, "transactions committed while writing");
    const back = reopen(dev);
    assert.equal(back.resolve("/huge").ino, null, `${size}: the partial file is gone`);
    assert.deepEqual(fileAt(back, "/keep"), genData(1, 3 * BS));
    const r = back.check();
    assert.equal(r.freeBlocks, free);
    assert.equal(r.leaked, 0);
  }
});

Deno.test("lgfs: a host write killed after any number of block writes leaves a consistent disk", () => {
  // Base: two committed files. Then a put of a 300 KiB file over one of
  // them, crashed after k block writes for every k: the disk must check
  // clean, the untouched file must be intact, and the other either the old
  // file or the new one, whole (never a mix, never cut short).
  const base = fresh(4 * MiB);
  base.fs.writeFile("/keep", [genData(1, 50_000)]);
  base.fs.writeFile("/over", [genData(2, 70_000)]);
  const image = base.dev.bytes.slice();
  const full = new MemDev(image.slice());
  reopen(full, true).writeFile("/over", [genData(3, 300_000)]);
  const total = full.writes;
  assert.ok(total > 70, `${total} writes`);
  let sawOld = false, sawNew = false;
  for (let k = 0; k <= total; k++) {
    const dev = new MemDev(image.slice());
    dev.crashAfter = k;
    try {
      reopen(dev, true).writeFile("/over", [genData(3, 300_000)]);
    } catch (e) {
      if (!(e instanceof CrashError)) throw e;
    }
    dev.crashAfter = null;
    const fs = reopen(dev);
    const r = fs.check();
    assert.equal(r.leaked, 0, `crash after ${k} writes`);
    assert.deepEqual(fileAt(fs, "/keep"), genData(1, 50_000), `crash after ${k}`);
    const over = fileAt(fs, "/over");
    const old = genData(2, 70_000), neu = genData(3, 300_000);
    const isOld = over.length === old.length && over.every((b, i) => b === old[i]);
    const isNew = over.length === neu.length && over.every((b, i) => b === neu[i]);
    assert.ok(isOld || isNew, `crash after ${k}: /over is neither version whole`);
    sawOld ||= isOld;
    sawNew ||= isNew;
    if (k === total) assert.deepEqual(over, neu);
    // Opening writable replays the journal; still consistent, same content.
    const w = reopen(dev, true);
    assert.deepEqual(fileAt(w, "/over"), over);
    assert.equal(reopen(dev).check().leaked, 0);
  }
  assert.ok(sawOld && sawNew, "crashes before and after the switch were both tried");
  // A new file: absent or whole, never a partial file under its name.
  const neu = genData(4, 200_000);
  let sawNone = false, sawWhole = false;
  for (let k = 0;; k++) {
    const dev = new MemDev(image.slice());
    dev.crashAfter = k;
    let done = false;
    try {
      reopen(dev, true).writeFile("/new", [neu]);
      done = true;
    } catch (e) {
      if (!(e instanceof CrashError)) throw e;
    }
    dev.crashAfter = null;
    const fs = reopen(dev);
    assert.equal(fs.check().leaked, 0, `crash after ${k} writes`);
    const r = fs.resolve("/new");
    if (r.ino === null) sawNone = true;
    else {
      assert.deepEqual(fileAt(fs, "/new"), neu, `crash after ${k}: a partial /new`);
      sawWhole = true;
    }
    if (done) break;
  }
  assert.ok(sawNone && sawWhole);
});

Deno.test("lgfs: mkfs over an old file system, a crash after every block write: not lgfs, or the new empty one (never the old superblock over a half-written bitmap)", () => {
  const { dev: base, fs: old } = fresh();
  old.writeFile("/keep", [genData(1, 40_000)]);
  old.writeFile("/d/more", [genData(2, 9_000)]);
  const image = base.bytes.slice();
  const probe = new MemDev(image.slice());
  Lgfs.mkfs(probe, { now });
  const total = probe.writes;
  assert.ok(total > 5, `${total} writes`);
  let sawNone = false;
  for (let k = 0; k <= total; k++) {
    const dev = new MemDev(image.slice());
    dev.crashAfter = k;
    let done = false;
    try {
      Lgfs.mkfs(dev, { now });
      done = true;
    } catch (e) {
      if (!(e instanceof CrashError)) throw e;
    }
    dev.crashAfter = null;
    let fs: Lgfs;
    try {
      fs = reopen(dev);
    } catch (e) {
      assert.ok(e instanceof CorruptError, `crash after ${k}: ${e}`);
      assert.match(e.message, /not an lgfs disk/, `crash after ${k}`);
      assert.ok(!done);
      sawNone = true;
      continue;
    }
    const r = fs.check();
    if (k === 0) {
      // Nothing written yet: the old file system, whole.
      assert.deepEqual(fileAt(fs, "/keep"), genData(1, 40_000));
      continue;
    }
    // Once mkfs has written anything, only its end leaves a superblock: the new, empty one.
    assert.ok(done, `crash after ${k} of ${total}: a superblock before mkfs ended`);
    assert.equal(r.files, 0, `crash after ${k}`);
    assert.equal(r.leaked, 0, `crash after ${k}`);
    assert.deepEqual([...fs.entries(ROOT_INO)], []);
  }
  assert.ok(sawNone);
});

// ---- Hostile images ----------------------------------------------------------------

function inodeOff(fs: Lgfs, ino: number): number {
  return (fs.g.istart + Math.floor(ino / 32)) * BS + (ino % 32) * 128;
}

function put32(b: Uint8Array, off: number, v: number) {
  new DataView(b.buffer, b.byteOffset).setUint32(off, v, true);
}

/** An image with /a/b/file and /top; returns it and the inode numbers. */
function sample(): { dev: MemDev; fs: Lgfs; a: number; b: number; file: number } {
  const { dev, fs } = fresh();
  fs.writeFile("/a/b/file", [genData(7, 10_000)]);
  fs.writeFile("/top", [genData(8, 100)]);
  // Empty the journal, so that its last (already written) transaction is
  // not replayed over the corruptions the tests make.
  dev.bytes.fill(0, fs.g.jstart * BS, (fs.g.jstart + 1) * BS);
  const r = reopen(dev);
  return {
    dev,
    fs: r,
    a: r.resolve("/a").ino!,
    b: r.resolve("/a/b").ino!,
    file: r.resolve("/a/b/file").ino!,
  };
}

/** The byte offset of the directory entry NAME in directory DIR. */
function entryOff(fs: Lgfs, dir: number, name: string): number {
  const e = fs.lookupIn(dir, name)!;
  const n: Inode = fs.inode(dir);
  return n.direct[Math.floor(e.slot / 32)] * BS + (e.slot % 32) * 128;
}

Deno.test("lgfs hostile: superblock magic, checksum, geometry, size beyond the disk", () => {
  const { dev } = sample();
  const cases: [string, (b: Uint8Array) => void, RegExp][] = [
    ["magic", (b) => (b[0] = 0x58), /not an lgfs disk/],
    ["checksum", (b) => (b[100] ^= 1), /bad superblock checksum/],
    ["geometry", (b) => {
      put32(b, 24, 3); // jblocks
      put32(b, BS - 4, crc32(0, b.subarray(0, BS - 4)));
    }, /geometry/],
    ["blocks", (b) => {
      put32(b, 16, 1 << 30);
      put32(b, BS - 4, crc32(0, b.subarray(0, BS - 4)));
    }, /larger than the disk|geometry/],
  ];
  for (const [what, corrupt, msg] of cases) {
    const img = dev.bytes.slice();
    corrupt(img);
    assert.throws(
      () => reopen(new MemDev(img)),
      (e) => e instanceof CorruptError && msg.test(e.message),
      what,
    );
  }
  assert.throws(() => reopen(new MemDev(dev.bytes.slice(0, 100))), CorruptError);
});

Deno.test("lgfs hostile: two entries of one name in a directory are refused by check", () => {
  const { dev, fs: w } = fresh();
  w.writeFile("/d/same", [genData(1, 100)]);
  w.writeFile("/d/samf", [genData(2, 100)]);
  dev.bytes.fill(0, w.g.jstart * BS, (w.g.jstart + 1) * BS); // no replay over the edit
  const fs = reopen(dev);
  assert.equal(fs.check().files, 2);
  const d = fs.resolve("/d").ino!;
  const off = entryOff(fs, d, "samf");
  const entry = dev.bytes.subarray(off, off + 128);
  const at = entry.findIndex((_, i) => String.fromCharCode(...entry.subarray(i, i + 4)) === "samf");
  assert.ok(at >= 0);
  entry[at + 3] = "e".charCodeAt(0); // "samf" -> "same": two files of one name
  assert.throws(
    () => reopen(dev).check(),
    (e) => e instanceof CorruptError && /'?\/d'? holds two entries named same/.test(e.message),
  );
});

Deno.test("lgfs hostile: a directory cycle and a second name are refused by check", () => {
  // /a/b/file's entry made to point at /a: a cycle.
  const s = sample();
  const img = s.dev.bytes.slice();
  const off = entryOff(s.fs, s.b, "file");
  put32(img, off, s.a);
  img[off + 4] = DT_DIR;
  assert.throws(
    () => reopen(new MemDev(img)).check(),
    (e) => e instanceof CorruptError && /two names or is a directory cycle/.test(e.message),
  );
  // /top made to name /a/b/file's inode: a hard link.
  const img2 = s.dev.bytes.slice();
  put32(img2, entryOff(s.fs, ROOT_INO, "top"), s.file);
  assert.throws(() => reopen(new MemDev(img2)).check(), CorruptError);
});

Deno.test("lgfs hostile: names with '/', '..', NUL or a bad length", () => {
  const s = sample();
  for (const bad of ["a/b", "..", ".", "x\0y"]) {
    const img = s.dev.bytes.slice();
    const off = entryOff(s.fs, ROOT_INO, "top");
    const nm = new TextEncoder().encode(bad);
    img.fill(0, off + 8, off + 128);
    img.set(nm, off + 8);
    img[off + 5] = nm.length;
    const fs = reopen(new MemDev(img));
    assert.throws(() => [...fs.entries(ROOT_INO)], CorruptError, bad);
  }
  // Bytes that are not UTF-8 are a valid name: listed, checked, found by no UTF-8 path.
  const latin = s.dev.bytes.slice();
  const at = entryOff(s.fs, ROOT_INO, "top");
  latin.set([0x63, 0x61, 0x66, 0xe9], at + 8); // "café" in Latin-1
  latin[at + 5] = 4;
  const lf = reopen(new MemDev(latin));
  const e = [...lf.entries(ROOT_INO)].find((x) => !x.utf8);
  assert.equal(e?.name, "caf\ufffd");
  assert.equal(lf.lookupIn(ROOT_INO, "caf\ufffd"), null);
  assert.equal(lf.check().files, 2);
  const img = s.dev.bytes.slice();
  img[entryOff(s.fs, ROOT_INO, "top") + 5] = 200;
  assert.throws(() => [...reopen(new MemDev(img)).entries(ROOT_INO)], CorruptError);
});

Deno.test("lgfs hostile: sizes and block numbers beyond the disk, shared blocks", () => {
  const s = sample();
  const base = inodeOff(s.fs, s.file);
  const mutate = (f: (img: Uint8Array) => void) => {
    const img = s.dev.bytes.slice();
    f(img);
    return reopen(new MemDev(img));
  };
  // A size beyond the largest file.
  let fs = mutate((img) => {
    put32(img, base + 8, 0);
    put32(img, base + 12, 0x7fff_ffff);
  });
  assert.throws(() => fs.inode(s.file), CorruptError);
  // A block number past the disk, or in the metadata area.
  for (const blk of [0xffff_fff0, 3, 0]) {
    fs = mutate((img) => put32(img, base + 32, blk));
    if (blk === 0) {
      // A hole: reads as zeros, the block is then leaked (not an error).
      assert.equal(fileAt(fs, "/a/b/file")[0], 0);
      assert.equal(fs.check().leaked, 1);
    } else {
      assert.throws(() => fileAt(fs, "/a/b/file"), CorruptError);
      assert.throws(() => fs.check(), CorruptError);
    }
  }
  // A sparse file larger than the disk is fine to read (holes).
  fs = mutate((img) => put32(img, base + 12, 1)); // size + 4 GiB
  assert.equal(fs.inode(s.file).size, 10_000 + 2 ** 32);
  assert.ok(fs.inode(s.file).size < MAX_FILE + 1);
  let total = 0;
  for (const p of fs.readFile(s.file)) total += typeof p === "number" ? p : p.length;
  assert.equal(total, 10_000 + 2 ** 32);
  // A 4 GiB hole is skipped whole: reading it and truncating it are quick.
  fs = mutate((img) => {
    put32(img, base + 8, 0xffff_0000);
    put32(img, base + 12, 0);
  });
  const t = performance.now();
  total = 0;
  for (const p of fs.readFile(s.file)) total += typeof p === "number" ? p : p.length;
  assert.equal(total, 0xffff_0000);
  const w = reopen(new MemDev(s.dev.bytes.slice()), true);
  w.writeFile("/big", [new Uint8Array(1)]);
  const big = w.resolve("/big").ino!;
  const node = w.inode(big);
  assert.equal(node.size, 1);
  w.truncate(big, 0xfff0_0000); // up: nothing to free
  w.truncate(big, 0);
  assert.equal(w.inode(big).size, 0);
  assert.ok(performance.now() - t < 2000, `holes took ${performance.now() - t} ms`);
  // Two files sharing a block.
  const topBlock = s.fs.inode(s.fs.resolve("/top").ino!).direct[0];
  fs = mutate((img) => put32(img, base + 32, topBlock));
  assert.throws(
    () => fs.check(),
    (e) => e instanceof CorruptError && /used twice/.test(e.message),
  );
  // An inode of an unknown type.
  fs = mutate((img) => put32(img, base, 0o140644));
  assert.throws(() => fs.inode(s.file), CorruptError);
});

Deno.test("lgfs: the journal: a complete transaction is replayed, a torn one ignored", () => {
  const { dev, fs } = fresh();
  fs.writeFile("/f", [genData(1, 5000)]);
  // Put a transaction in the journal by hand: the root inode's block with
  // the root's mtime changed. Valid: replayed (in memory when read-only).
  const g = fs.g;
  const target = g.istart;
  const img = dev.bytes.slice(target * BS, (target + 1) * BS);
  put32(img, 128 + 16, 12345);
  put32(img, 128 + 20, 0);
  const desc = new Uint8Array(BS);
  desc.set(new TextEncoder().encode("LGFSJRNL"));
  put32(desc, 8, 1000);
  put32(desc, 16, 1);
  put32(desc, 24, target);
  const commit = new Uint8Array(BS);
  commit.set(new TextEncoder().encode("LGFSCMIT"));
  put32(commit, 8, 1000);
  put32(commit, 16, 1);
  put32(commit, 20, crc32(crc32(0, desc), img));
  const withTx = (c: Uint8Array) => {
    const d = new MemDev(dev.bytes.slice());
    d.bytes.set(desc, g.jstart * BS);
    d.bytes.set(img, (g.jstart + 1) * BS);
    d.bytes.set(c, (g.jstart + 2) * BS);
    return d;
  };
  const ok = withTx(commit);
  const ro = reopen(ok);
  assert.ok(ro.journalReplayed);
  assert.equal(ro.inode(ROOT_INO).mtime, 12345);
  assert.notDeepEqual(ok.bytes.slice(target * BS, (target + 1) * BS), img); // not written
  reopen(ok, true);
  assert.deepEqual(ok.bytes.slice(target * BS, (target + 1) * BS), img); // written home
  const torn = commit.slice();
  torn[20] ^= 1;
  const bad = reopen(withTx(torn));
  assert.ok(!bad.journalReplayed);
  assert.equal(bad.inode(ROOT_INO).mtime, T0);
  assert.deepEqual(fileAt(bad, "/f"), genData(1, 5000));
});

Deno.test("lgfs fuzz: 400 random corruptions: only LgfsError escapes, in bounded time", () => {
  const s = sample();
  s.fs.check();
  const w = reopen(s.dev, true);
  for (let i = 0; i < 20; i++) w.writeFile(`/d${i % 4}/f${i}`, [genData(i + 10, i * 3000)]);
  const g = w.g;
  s.dev.bytes.fill(0, g.jstart * BS, (g.jstart + 1) * BS);
  const base = s.dev.bytes;
  let seed = 0x1234567;
  const rnd = () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return seed >>> 0;
  };
  // Metadata blocks (bitmap, inodes) and the blocks files and directories use.
  const hot: number[] = [];
  for (let b = g.bstart; b < g.dstart; b++) hot.push(b);
  for (let b = g.dstart; b < g.dstart + 80; b++) hot.push(b);
  const start = performance.now();
  let refused = 0;
  for (let iter = 0; iter < 400; iter++) {
    const img = base.slice();
    const n = 1 + rnd() % 8;
    for (let k = 0; k < n; k++) {
      const blk = rnd() % 10 === 0 ? rnd() % 4 : hot[rnd() % hot.length];
      const off = blk * BS + (rnd() % (BS / 4)) * 4;
      const kind = rnd() % 4;
      if (kind === 0) img[off + rnd() % 4] ^= 1 << (rnd() % 8);
      else if (kind === 1) put32(img, off, rnd());
      else if (kind === 2) put32(img, off, rnd() % g.blocks);
      else put32(img, off, rnd() % g.inodes);
    }
    try {
      const fs = reopen(new MemDev(img));
      const walk = (ino: number, depth: number) => {
        if (depth > 64) return;
        for (const e of fs.entries(ino)) {
          const node = fs.inode(e.ino);
          if (node.mode === 0) continue;
          if (isDir(node)) walk(e.ino, depth + 1);
          else for (const _ of fs.readFile(e.ino)) { /* read it all */ }
        }
      };
      walk(ROOT_INO, 0);
      fs.check();
    } catch (e) {
      if (!(e instanceof LgfsError)) throw new Error(`iteration ${iter}: ${e}`);
      refused++;
    }
  }
  const ms = performance.now() - start;
  assert.ok(refused > 50, `only ${refused} of 400 corrupted images refused`);
  assert.ok(ms < 60_000, `fuzz took ${ms} ms`);
});

// ---- The guest's C code, natively, crashed at every block write ----------------------

/** Build tests/native/NAME.c for the host against the guest kit's headers; null without clang. */
function buildNative(
  name: string,
  bin: string,
  flags: string[],
): Promise<Deno.CommandOutput | null> {
  const root = new URL("../", import.meta.url).pathname;
  return new Deno.Command("clang", {
    args: [
      "-std=gnu11",
      ...flags,
      "-Wall",
      "-Wextra",
      "-Werror",
      `-I${root}guests/include`,
      `-I${root}guests/kit`,
      "-o",
      bin,
      `${root}tests/native/${name}.c`,
    ],
    stderr: "piped",
  }).output().catch(() => null);
}

Deno.test("lgfs: the kit's fs.c (built for the host) crashed at every block write: files as acknowledged, disk consistent", async () => {
  const clang = await new Deno.Command("clang", { args: ["--version"], stdout: "null" })
    .output().then((o) => o.success, () => false);
  if (!clang) {
    console.log("  skipped: needs clang to build tests/native/fs_crash.c for the host");
    return;
  }
  const dir = await Deno.makeTempDir({ prefix: "lgfs-crash-" });
  try {
    const bin = `${dir}/fs_crash`;
    const cc = await buildNative("fs_crash", bin, ["-O2"]);
    assert.ok(cc?.success, cc ? new TextDecoder().decode(cc.stderr) : "clang vanished");
    const size = MiB;
    const dev = new MemDev(new Uint8Array(size));
    Lgfs.mkfs(dev, { now });
    await Deno.writeFile(`${dir}/m.img`, dev.bytes);
    const ops = Deno.env.get("LGFS_CRASH_OPS") ?? "80";
    const child = new Deno.Command(bin, {
      args: [`${dir}/m.img`, "-", "7", ops],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const errText = new Response(child.stderr).text();
    // Images come back to back: the crash point's, then the remounted one.
    const img = new Uint8Array(size);
    let fill = 0, n = 0;
    for await (const chunk of child.stdout) {
      for (let off = 0; off < chunk.length;) {
        const take = Math.min(size - fill, chunk.length - off);
        img.set(chunk.subarray(off, off + take), fill);
        fill += take;
        off += take;
        if (fill < size) continue;
        const mounted = n % 2 === 1, what = `${mounted ? "remounted" : "crash"} image ${n >> 1}`;
        let r;
        try {
          r = Lgfs.open(new MemDev(img), { writable: false }).check();
        } catch (e) {
          assert.fail(`${what}: ${e}`);
        }
        assert.equal(r.leaked, 0, `${what}: leaked blocks`);
        if (mounted) assert.equal(r.orphans, 0, `${what}: orphans left`);
        fill = 0;
        n++;
      }
    }
    const status = await child.status;
    const text = await errText;
    assert.equal(status.code, 0, text);
    const m = /^fs_crash: (\d+) writes, (\d+) crash points OK, (\d+) images$/m.exec(text);
    assert.ok(m, text);
    assert.equal(Number(m[3]), n);
    assert.ok(Number(m[2]) > 300, text);
    console.log(`  ${text.trim()}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("lgfs: the kit's fs.c (host build, ASan/UBSan) on 1500 corrupted disks: no memory error, no hang", async () => {
  const dir = await Deno.makeTempDir({ prefix: "lgfs-fuzz-" });
  try {
    const bin = `${dir}/fs_fuzz`;
    const build = (extra: string[]) => buildNative("fs_fuzz", bin, ["-O1", "-g", ...extra]);
    const san = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all"];
    let cc = await build(san);
    if (cc === null) {
      console.log("  skipped: needs clang to build tests/native/fs_fuzz.c for the host");
      return;
    }
    if (!cc.success) {
      console.log("  (clang cannot link the sanitizers here: built without them)");
      cc = await build([]);
    }
    assert.ok(cc?.success, cc ? new TextDecoder().decode(cc.stderr) : "clang vanished");
    // Files of zeros: the corruptions then land on metadata (non-zero words).
    const dev = new MemDev(new Uint8Array(MiB));
    const fs = Lgfs.mkfs(dev, { now });
    for (let i = 0; i < 6; i++) fs.writeFile(`/a/f${i}`, [new Uint8Array(i * 9000)]);
    fs.writeFile("/b/c/d/e", [new Uint8Array(60000)]);
    for (let i = 0; i < 40; i++) fs.writeFile(`/m/${i}`, [new Uint8Array(1)]);
    await Deno.writeFile(`${dir}/f.img`, dev.bytes);
    const out = await new Deno.Command(bin, {
      args: [`${dir}/f.img`, "11", "1500"],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, text.slice(0, 3000));
    const m = /^fs_fuzz: 1500 disks, (\d+) mounted$/m.exec(text);
    assert.ok(m, text);
    assert.ok(Number(m[1]) > 500, text);
    console.log(`  ${m[0]}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test('lgfs: a name that is not UTF-8, written as ls shows it ("\\xff\\xfe"), is found by its bytes; UTF-8 text never is an escape', () => {
  assert.deepEqual(escapedName('"\\xff\\xfe"'), new Uint8Array([0xff, 0xfe]));
  assert.deepEqual(escapedName('"y\\xFF"'), new Uint8Array([0x79, 0xff]));
  assert.equal(escapedName('"\\x41"'), null); // "A": UTF-8, typed as it is
  assert.equal(escapedName("plain"), null);
  assert.equal(escapedName('"a"b"'), null);
  const { dev, fs } = fresh();
  fs.writeFile("/yz", [genData(1, 10)]);
  fs.writeFile('/"y\\xff"', [genData(2, 10)]); // a literal name of those characters
  fs.commit();
  const off = (() => {
    const e = fs.lookupIn(ROOT_INO, "yz")!;
    return fs.inode(ROOT_INO).direct[Math.floor(e.slot / 32)] * BS + (e.slot % 32) * 128;
  })();
  dev.bytes[off + 9] = 0xff; // "yz" -> "y\xff"
  dev.bytes.fill(0, fs.g.jstart * BS, (fs.g.jstart + 1) * BS);
  const r = reopen(dev);
  assert.equal(r.resolve("/yz").ino, null);
  // The literal name is itself first; without it, the text finds the bytes.
  assert.deepEqual(fileAt(r, '/"y\\xff"'), genData(2, 10));
  const w = reopen(dev, true);
  w.unlink('/"y\\xff"');
  assert.deepEqual(fileAt(w, '/"y\\xff"'), genData(1, 10));
});
