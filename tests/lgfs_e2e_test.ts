/**
 * lgfs end to end: the real `lguest` CLI (`lguest disk ...` and `lguest run
 * --block IMAGE test-fstest`), on images this test creates. Host put ->
 * guest reads; guest writes -> host get; the guest's API test; ENOSPC and a
 * disk larger than guest RAM; SIGKILL of the launcher during acknowledged
 * operations (writes after fsync, renames and unlinks when they return) at
 * random moments -> every acknowledged byte and name is there and the file system checks consistent; hostile images and bad
 * arguments -> one line and EXIT.USAGE; the image locks.
 * docs/disk-format.md, docs/guest-abi.md §15.4.
 */

import assert from "node:assert/strict";
import { describe, hasStackTrace, lines, ROOT_PATH, runCli, spawnCli } from "./helpers/run_cli.ts";
import { genData, inTempDir } from "./helpers/resources.ts";
import { EXIT } from "../launcher/cli.ts";
import { BS, crc32, Lgfs, MemDev } from "../launcher/lgfs.ts";

function hex8(n: number): string {
  return n.toString(16).padStart(8, "0");
}

async function disk(args: string[], code: number = EXIT.OK) {
  const r = await runCli(["disk", ...args]);
  assert.equal(r.code, code, describe(r));
  assert.ok(!hasStackTrace(r.stderr), describe(r));
  return r;
}

async function fstest(img: string, args: string[], memory = "32M") {
  const r = await runCli(["run", "-m", memory, "--block", img, "test-fstest", "--", ...args], {
    killAfterMs: 60_000,
  });
  assert.equal(r.code, 0, describe(r));
  return r;
}

/** The image's file system, read-only, through the host code. */
async function openImage(img: string): Promise<Lgfs> {
  return Lgfs.open(new MemDev(await Deno.readFile(img)), { writable: false });
}

async function fileOf(img: string, path: string): Promise<Uint8Array | null> {
  const fs = await openImage(img);
  const r = fs.resolve(path);
  if (r.ino === null) return null;
  const parts: Uint8Array[] = [];
  for (const p of fs.readFile(r.ino)) parts.push(typeof p === "number" ? new Uint8Array(p) : p);
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

Deno.test("e2e lgfs: mkfs, the guest's API test, remount; check and ls agree", async () => {
  await inTempDir(async (dir) => {
    const img = `${dir}/api.img`;
    const mk = await disk(["mkfs", img, "16M"]);
    assert.match(mk.stdout, /lgfs, 4096 blocks of 4 KiB/);
    assert.equal((await Deno.stat(img)).size, 16 << 20);
    const r = await fstest(img, ["api"]);
    assert.match(r.stdout, /^fstest: api OK \(\d+ checks\)$/m, describe(r));
    const c = await disk(["check", img]);
    assert.match(c.stdout, /consistent: 41 files, 2 directories/, describe(c));
    const ls = await disk(["ls", img]);
    assert.deepEqual(
      lines(ls.stdout).map((l) => l.split(" ").at(-1)),
      ["e2/", "hello.txt", "log", "sparse"],
    );
    assert.match(ls.stdout, /^-644 +13 \d{4}-\d\d-\d\d \d\d:\d\d:\d\d hello\.txt$/m);
  });
});

Deno.test("e2e lgfs: host put -> guest reads; guest writes -> host get equals", async () => {
  await inTempDir(async (dir) => {
    const img = `${dir}/x.img`;
    await disk(["mkfs", img, "32M"]);
    const data = genData(77, 5_000_003);
    await Deno.writeFile(`${dir}/in.bin`, data);
    await disk(["put", img, `${dir}/in.bin`, "/a/b/in.bin"]);
    await Deno.mkdir(`${dir}/tree/sub`, { recursive: true });
    await Deno.writeTextFile(`${dir}/tree/one.txt`, "one\n");
    await Deno.writeTextFile(`${dir}/tree/sub/two.txt`, "two\n");
    await disk(["put", "-r", img, `${dir}/tree`, "/t"]);
    const r = await fstest(img, ["crc", "/a/b/in.bin"]);
    assert.ok(
      lines(r.stdout).includes(`crc /a/b/in.bin ${data.length} ${hex8(crc32(0, data))}`),
      describe(r),
    );
    const r2 = await fstest(`${img},ro`, ["crc", "/t/sub/two.txt"]); // mounts read-only
    assert.match(r2.stdout, /^crc \/t\/sub\/two\.txt 4 /m);
    const w = await fstest(img, ["write", "/a/out.bin", "3000001", "9"]);
    const want = genData(9, 3_000_001);
    assert.ok(lines(w.stdout).includes(`wrote /a/out.bin 3000001 ${hex8(crc32(0, want))}`));
    await disk(["get", img, "/a/out.bin", `${dir}/out.bin`]);
    assert.deepEqual(await Deno.readFile(`${dir}/out.bin`), want);
    await Deno.mkdir(`${dir}/into`);
    await disk(["get", img, "/a/out.bin", `${dir}/into`]); // into a folder, as cp
    assert.deepEqual(await Deno.readFile(`${dir}/into/out.bin`), want);
    await disk(["get", "-r", img, "/", `${dir}/all`]);
    assert.deepEqual(await Deno.readFile(`${dir}/all/a/b/in.bin`), data);
    assert.equal(await Deno.readTextFile(`${dir}/all/t/sub/two.txt`), "two\n");
    // -r into an existing folder is refused (nothing is overwritten).
    const again = await disk(["get", "-r", img, "/t", `${dir}/all`], EXIT.USAGE);
    assert.match(again.stderr, /exists/);
    await disk(["rm", img, "/a/out.bin"]);
    await disk(["get", img, "/a/out.bin", `${dir}/gone`], EXIT.USAGE);
    await disk(["check", img]);
  });
});

Deno.test("e2e lgfs: a disk larger than guest RAM fills to ENOSPC; every byte readable", async () => {
  await inTempDir(async (dir) => {
    const img = `${dir}/big.img`;
    await disk(["mkfs", img, "48M"]);
    const r = await fstest(img, ["fill", "/fill.bin"], "8M");
    const m = /^fill (\d+) ENOSPC$/m.exec(r.stdout);
    assert.ok(m, describe(r));
    const size = Number(m[1]);
    assert.ok(size > 40 << 20, `only ${size} bytes fit`);
    assert.match(r.stdout, /^statfs 0 \d+$/m);
    const got = await fileOf(img, "/fill.bin");
    assert.equal(got?.length, size);
    assert.deepEqual(got, genData(1, size));
    const c = await disk(["check", img]);
    assert.match(c.stdout, /consistent: 1 files, 1 directories, \d+ blocks used, 0 free$/m);
  });
});

// ---- SIGKILL during acknowledged operations (fsync'd writes, renames, unlinks) ------

type Model = Map<number, Uint8Array>;
type Op =
  | { kind: "W"; f: number; off: number; len: number; seed: number }
  | { kind: "T"; f: number; len: number }
  | { kind: "R"; f: number; g: number }
  | { kind: "U"; f: number };

function parseOp(text: string): Op {
  const w = text.split(" ");
  const n = w.slice(1).map(Number);
  switch (w[0]) {
    case "W":
      return { kind: "W", f: n[0], off: n[1], len: n[2], seed: n[3] };
    case "T":
      return { kind: "T", f: n[0], len: n[1] };
    case "R":
      return { kind: "R", f: n[0], g: n[1] };
    case "U":
      return { kind: "U", f: n[0] };
  }
  throw new Error(`bad op ${text}`);
}

function resized(a: Uint8Array | undefined, len: number): Uint8Array {
  const out = new Uint8Array(len);
  if (a) out.set(a.subarray(0, Math.min(len, a.length)));
  return out;
}

/** The files after op (test-fstest's writer semantics, fstest.c). */
function apply(model: Model, op: Op): Model {
  const m = new Map(model);
  if (op.kind === "W") {
    const old = m.get(op.f);
    const data = resized(old, Math.max(old?.length ?? 0, op.off + op.len));
    data.set(genData(op.seed, op.len), op.off);
    m.set(op.f, data);
  } else if (op.kind === "T") {
    m.set(op.f, resized(m.get(op.f), op.len));
  } else if (op.kind === "R") {
    m.set(op.g, m.get(op.f)!);
    m.delete(op.f);
  } else {
    m.delete(op.f);
  }
  return m;
}

/** Replay a writer log: the acknowledged model and the op in flight. */
function replayLog(out: string): { model: Model; acks: number; pending: Op | null } {
  let model: Model = new Map();
  let pending: string | null = null;
  let acks = 0;
  const complete = out.slice(0, out.lastIndexOf("\n") + 1); // a cut last line is ignored
  for (const line of lines(complete)) {
    const m = /^(begin|ack) (.*)$/.exec(line);
    if (!m) continue;
    if (m[1] === "begin") {
      assert.equal(pending, null, `two ops in flight: ${line}`);
      pending = m[2];
    } else {
      assert.equal(m[2], pending, `ack without its begin: ${line}`);
      model = apply(model, parseOp(m[2]));
      pending = null;
      acks++;
    }
  }
  return { model, acks, pending: pending === null ? null : parseOp(pending) };
}

/** What /w holds on the image, by file number. */
async function filesOnDisk(img: string): Promise<Model> {
  const fs = await openImage(img);
  const out: Model = new Map();
  const w = fs.resolve("/w").ino;
  if (w === null) return out;
  for (const e of fs.entries(w)) {
    assert.match(e.name, /^f[0-7]$/);
    out.set(Number(e.name.slice(1)), (await fileOf(img, `/w/${e.name}`))!);
  }
  return out;
}

/** Each file as acknowledged; the one op in flight may be partly done. */
function assertAcked(disk: Model, model: Model, pending: Op | null, what: string) {
  const after = pending ? apply(model, pending) : model;
  const touched = new Set<number>();
  if (pending) {
    touched.add(pending.f);
    if (pending.kind === "R") touched.add(pending.g);
  }
  for (let f = 0; f < 8; f++) {
    const got = disk.get(f), old = model.get(f), neu = after.get(f);
    const where = `${what}: /w/f${f}`;
    if (!touched.has(f)) {
      assert.deepEqual(got, old, `${where}: differs from the acknowledged state`);
      continue;
    }
    if (got === undefined) {
      assert.ok(old === undefined || neu === undefined, `${where}: missing`);
      continue;
    }
    if (pending!.kind === "R" || pending!.kind === "U") {
      assert.ok(
        (old && bytesEqual(got, old)) || (neu && bytesEqual(got, neu)),
        `${where}: neither before nor after the ${pending!.kind}`,
      );
      continue;
    }
    const lo = Math.min(old?.length ?? 0, neu!.length),
      hi = Math.max(old?.length ?? 0, neu!.length);
    assert.ok(
      got.length >= lo && got.length <= hi,
      `${where}: size ${got.length} not in ${lo}..${hi}`,
    );
    for (let i = 0; i < got.length; i++) {
      const b: number = got[i];
      if (b !== 0 && b !== neu![i] && !(old && i < old.length && b === old[i])) {
        assert.fail(`${where}: byte ${i} is ${b}, neither old nor new`);
      }
    }
  }
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

Deno.test("e2e lgfs: the writer's log model equals the disk after a full run", async () => {
  await inTempDir(async (dir) => {
    const img = `${dir}/w.img`;
    await disk(["mkfs", img, "16M"]);
    const r = await fstest(img, ["writer", "11", "400"]);
    assert.match(r.stdout, /^writer: done$/m);
    const { model, acks, pending } = replayLog(r.stdout);
    assert.equal(acks, 400);
    assert.equal(pending, null);
    assertAcked(await filesOnDisk(img), model, null, "full run");
    await disk(["check", img]);
  });
});

Deno.test("e2e lgfs: SIGKILL at random moments loses no acknowledged byte or name (renames and unlinks need no fsync); the disk checks consistent", async () => {
  await inTempDir(async (dir) => {
    let seed = (Date.now() & 0xffff) | 1;
    const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
    console.log(`  kill points from seed ${seed}`);
    const rounds = Number(Deno.env.get("LGFS_KILL_ROUNDS") ?? 5);
    const inFlight: string[] = [];
    for (let round = 0; round < rounds; round++) {
      const img = `${dir}/k${round}.img`;
      await disk(["mkfs", img, "16M"]);
      const wantAcks = 20 + rnd() % 400;
      const p = spawnCli(
        ["run", "--block", img, "test-fstest", "--", "writer", String(round + 1)],
        {
          killAfterMs: 60_000,
        },
      );
      await p.waitFor((t) => (t.match(/^ack /gm)?.length ?? 0) >= wantAcks, 40_000);
      // A random moment after that ack: up to 10 ms on.
      await new Promise((res) => setTimeout(res, rnd() % 11));
      p.kill("SIGKILL");
      const r = await p.result();
      assert.equal(r.signal, "SIGKILL", describe(r));
      assert.ok(!r.killed, describe(r));
      const { model, acks, pending } = replayLog(r.stdout);
      assert.ok(acks >= wantAcks, `round ${round}: ${acks} acks`);
      inFlight.push(pending ? pending.kind : "-");
      const what = `round ${round} (killed after ${acks} acks, in flight: ${
        pending ? JSON.stringify(pending) : "nothing"
      })`;
      // The host reads it as it is (journal applied in memory) ...
      const c = await disk(["check", img]);
      assert.match(c.stdout, /: consistent: /, `${what}: ${describe(c)}`);
      assert.doesNotMatch(c.stdout, /leaked/, what);
      assertAcked(await filesOnDisk(img), model, pending, what);
      // ... and the guest mounts it again (replay, orphans freed) and goes on.
      const again = await fstest(img, ["writer", String(round + 100), "20"]);
      assert.match(again.stdout, /^writer: done$/m, what);
      const c2 = await disk(["check", img]);
      assert.doesNotMatch(c2.stdout, /unlinked|leaked/, `${what}: ${c2.stdout}`);
    }
    console.log(`  op in flight at each kill (- = none): ${inFlight.join(" ")}`);
  });
});

// ---- Hostile images, bad arguments, locks ---------------------------------------------

/** An image with /d/x and /y, and what to corrupt in it. */
function hostileImage(): { bytes: Uint8Array; entry: (dir: string, name: string) => number } {
  const dev = new MemDev(new Uint8Array(4 << 20));
  const fs = Lgfs.mkfs(dev);
  fs.writeFile("/d/x", [genData(1, 5000)]);
  fs.writeFile("/y", [genData(2, 10)]);
  dev.bytes.fill(0, fs.g.jstart * BS, (fs.g.jstart + 1) * BS); // no journal to replay over it
  const entry = (dir: string, name: string) => {
    const d = fs.resolve(dir).ino!;
    const e = fs.lookupIn(d, name)!;
    return fs.inode(d).direct[Math.floor(e.slot / 32)] * BS + (e.slot % 32) * 128;
  };
  return { bytes: dev.bytes, entry };
}

Deno.test("e2e lgfs: hostile images: one line, EXIT.USAGE, nothing written outside the target", async () => {
  await inTempDir(async (dir) => {
    const h = hostileImage();
    const dv = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset);
    const cases: [string, (b: Uint8Array) => void, RegExp][] = [
      ["dotdot", (b) => {
        const off = h.entry("/d", "x");
        b.set(new TextEncoder().encode(".."), off + 8);
        b[off + 5] = 2;
      }, /bad name/],
      ["slash", (b) => {
        const off = h.entry("/", "y");
        b.set(new TextEncoder().encode("/"), off + 8);
        b[off + 5] = 1;
      }, /bad name/],
      ["cycle", (b) => {
        const off = h.entry("/d", "x");
        dv(b).setUint32(off, 1, true); // /d/x names the root
        b[off + 4] = 4;
      }, /two names or is a directory cycle/],
      ["superblock", (b) => (b[60] ^= 0xff), /bad superblock checksum/],
      ["size", (b) => {
        const fs = Lgfs.open(new MemDev(b), { writable: false });
        const ino = fs.resolve("/y").ino!;
        const off = (fs.g.istart + Math.floor(ino / 32)) * BS + (ino % 32) * 128;
        dv(b).setUint32(off + 12, 0x10000, true); // 2^48 bytes
      }, /beyond the largest file/],
    ];
    for (const [name, corrupt, msg] of cases) {
      const img = `${dir}/${name}.img`;
      const b = h.bytes.slice();
      corrupt(b);
      await Deno.writeFile(img, b);
      // ls reads one directory: it refuses what it reads (a cycle is not in one level).
      const ls = name === "cycle" ? [] : [["ls", img, name === "dotdot" ? "/d" : "/"]];
      // rm -r checks the whole disk before it removes anything (the superblock case
      // is refused at the open, the others by the check).
      const rm = name === "superblock" ? [] : [["rm", "-r", img, name === "slash" ? "/" : "/d"]];
      // put checks the whole disk too: a corrupt one is refused, not made worse.
      await Deno.writeTextFile(`${dir}/new.txt`, "new");
      const put = ["put", img, `${dir}/new.txt`, "/new.txt"];
      for (
        const args of [
          ["check", img],
          ...ls,
          ["get", "-r", img, "/", `${dir}/out-${name}`],
          ...rm,
          put,
        ]
      ) {
        const r = await disk(args, EXIT.USAGE);
        assert.equal(lines(r.stderr).length, 1, `${name} ${args[0]}: ${describe(r)}`);
        if (args[0] === "rm" && name === "slash") continue; // '/' is refused as the top folder
        assert.match(r.stderr, msg, `${name} ${args[0]}: ${describe(r)}`);
      }
      assert.deepEqual(await Deno.readFile(img), b, `${name}: the image is unchanged`);
      const left = [...Deno.readDirSync(dir)].map((e) => e.name)
        .filter((n) => !n.endsWith(".img") && n !== "new.txt");
      assert.deepEqual(left, [], `${name}: get -r left ${left}`); // checked before writing
    }
    // A name that is not UTF-8 is valid lgfs (check passes) but no host file name: get -r says so.
    const b = h.bytes.slice();
    const off = h.entry("/", "y");
    b.set([0x79, 0xff], off + 8);
    b[off + 5] = 2;
    await Deno.writeFile(`${dir}/latin.img`, b);
    await disk(["check", `${dir}/latin.img`]);
    const r = await disk(["get", "-r", `${dir}/latin.img`, "/", `${dir}/out-latin`], EXIT.USAGE);
    // Shown byte by byte as ls shows it, never as U+FFFD (which a real name can hold).
    assert.match(
      r.stderr,
      /^lguest disk: \/"y\\xff": the name is not UTF-8 \(lguest disk makes host files of UTF-8 names only; rename it in the guest\)\n$/,
      describe(r),
    );
    await assert.rejects(Deno.stat(`${dir}/out-latin`)); // refused before anything was written
    // Named as ls shows it, the file is reachable from the host: get, then rm.
    const shown = (await disk(["ls", `${dir}/latin.img`, "/"])).stdout;
    assert.match(shown, / "y\\xff"\n/, shown);
    const y = await disk(["get", `${dir}/latin.img`, '/"y\\xff"', "-"]);
    assert.equal(y.stdout, new TextDecoder().decode(genData(2, 10)), describe(y));
    await disk(["rm", `${dir}/latin.img`, '/"y\\xff"']);
    assert.doesNotMatch((await disk(["ls", `${dir}/latin.img`, "/"])).stdout, /y/);
    await disk(["check", `${dir}/latin.img`]);
  });
});

Deno.test("e2e lgfs: bad arguments and missing files: one line and EXIT.USAGE", async () => {
  await inTempDir(async (dir) => {
    const img = `${dir}/ok.img`;
    await disk(["mkfs", img, "2M"]);
    const cases: [string[], RegExp][] = [
      [["mkfs"], /mkfs needs \[-f\] IMAGE/],
      [
        ["mkfs", `${dir}/new.img`],
        /new\.img: no such file \(give a SIZE to make it: mkfs .*new\.img 64M\)\n$/,
      ],
      [["mkfs", `${dir}/new.img`, "12Q"], /invalid size/],
      [["mkfs", `${dir}/new.img`, "512K"], /out of range/],
      [["mkfs", dir, "2M"], /is a directory/],
      [["ls", `${dir}/none.img`], /no such file/],
      [["ls", img, "/nope"], /no such file or directory/],
      [["get", img, "/", `${dir}/x`], /is a directory \(use get -r\)/],
      [["put", img, `${dir}/none`, "/x"], /no such file/],
      [["put", img, dir, "/x"], /is a directory \(use put -r\)/],
      [["frob", img], /unknown disk command 'frob' \(mkfs, ls/],
      [["mfks", img], /unknown disk command 'mfks' \(did you mean 'mkfs'\? mkfs, ls/],
      [["check", `${dir}/empty.img`], /no such file/],
    ];
    await Deno.writeFile(`${dir}/zero.img`, new Uint8Array(1 << 20));
    await Deno.writeTextFile(`${dir}/t.txt`, "text");
    await disk(["put", img, `${dir}/t.txt`, "/t.txt"]);
    cases.push(
      // a file that never was an lgfs disk is not called corrupt
      [["check", `${dir}/zero.img`], /^lguest disk: .*zero\.img: not an lgfs disk \(no superblock/],
      [
        ["ls", `${dir}/t.txt`],
        /^lguest disk: .*t\.txt: not an lgfs disk \(smaller than one block\)\n$/,
      ],
      [["put", img, `${dir}/t.txt`, "/t.txt/x"], /^lguest disk: \/t\.txt: not a directory\n$/],
      // a HOSTPATH ending in '/' is a folder, never a file named without the '/'
      [["get", img, "/t.txt", `${dir}/nodir/`], /^lguest disk: .*\/nodir\/: no such folder\n$/],
    );
    for (const [args, msg] of cases) {
      const r = await disk(args, EXIT.USAGE);
      assert.equal(lines(r.stderr).length, 1, describe(r));
      assert.match(r.stderr, /^lguest disk: /, describe(r));
      assert.match(r.stderr, msg, describe(r));
    }
    await assert.rejects(Deno.stat(`${dir}/nodir`), Deno.errors.NotFound);
    // put -r refuses what lgfs cannot hold, before or while copying; one line.
    await Deno.mkdir(`${dir}/src`);
    await Deno.symlink("/etc/passwd", `${dir}/src/link`);
    const sym = await disk(["put", "-r", img, `${dir}/src`, "/src"], EXIT.USAGE);
    assert.match(
      sym.stderr,
      /link: not a regular file or folder \(links in a folder are not copied\)/,
    );
    await Deno.remove(`${dir}/src/link`);
    await Deno.writeTextFile(`${dir}/src/${"n".repeat(121)}`, "x");
    await Deno.writeTextFile(`${dir}/src/a-first.txt`, "first");
    const long = await disk(["put", "-r", img, `${dir}/src`, "/src"], EXIT.USAGE);
    assert.match(long.stderr, /name not allowed on lgfs/);
    await disk(["ls", img, "/src"], EXIT.USAGE); // refused before anything was written
    await Deno.writeTextFile(`${dir}/plain.txt`, "plain");
    await disk(["put", img, `${dir}/plain.txt`, "/"]); // into the root, as cp
    assert.match((await disk(["ls", img, "/plain.txt"])).stdout, / 5 .* \/plain\.txt$/m);
    const help = await disk(["help"]);
    assert.match(help.stdout, /lguest disk mkfs \[-f\] IMAGE \[SIZE\]/);
  });
});

Deno.test("e2e lgfs: a running guest's disk is locked: ls and put are refused, then work", async () => {
  await inTempDir(async (dir) => {
    const img = `${dir}/lock.img`;
    await disk(["mkfs", img, "8M"]);
    await Deno.writeTextFile(`${dir}/f.txt`, "hi\n");
    const p = spawnCli(["run", "--block", img, "test-fstest", "--", "writer", "1"], {
      killAfterMs: 60_000,
    });
    await p.waitFor((t) => /^writer: ready$/m.test(t), 30_000);
    for (const args of [["ls", img], ["put", img, `${dir}/f.txt`, "/f.txt"], ["mkfs", img]]) {
      const r = await disk(args, EXIT.USAGE);
      assert.match(
        r.stderr,
        /^lguest disk: \S+: in use by another lguest \(locked; try again when that run has ended\)\n$/,
        describe(r),
      );
    }
    p.kill("SIGKILL");
    await p.result();
    await disk(["put", img, `${dir}/f.txt`, "/f.txt"]);
    const ls = await disk(["ls", img]);
    assert.match(ls.stdout, / f\.txt$/m);
  });
});

Deno.test("a ,ro disk: every modifying call says read-only (EROFS), never an I/O error", async () => {
  await inTempDir(async (dir) => {
    const img = `${dir}/ro.img`;
    await disk(["mkfs", img, "1M"]);
    await Deno.writeTextFile(`${dir}/h.txt`, "hi\n");
    await disk(["put", img, `${dir}/h.txt`, "/h.txt"]);
    const before = await Deno.readFile(img);
    const [w, lua] = await Promise.all([
      runCli(["run", "--block", `${img},ro`, "test-fstest", "--", "write", "/a", "10", "1"]),
      runCli([
        "run",
        "--block",
        `${img},ro`,
        "lua",
        "--",
        "-e",
        [
          'print((select(2, io.open("/x.txt", "w"))))',
          'print((select(2, io.open("/h.txt", "a"))))',
          'print(io.open("/h.txt"):read("a"))',
          'print((select(2, os.remove("/h.txt"))))',
          'print((select(2, os.rename("/h.txt", "/j.txt"))))',
        ].join(";"),
      ], { killAfterMs: 60_000 }),
    ]);
    assert.match(w.stdout + w.stderr, /fstest: write: EROFS/, describe(w));
    assert.doesNotMatch(w.stdout + w.stderr, /EIO/, describe(w));
    assert.equal(lua.code, 0, describe(lua));
    assert.deepEqual(lines(lua.stdout), [
      "/x.txt: Read-only file system",
      "/h.txt: Read-only file system",
      "hi",
      "",
      "/h.txt: Read-only file system",
      "Read-only file system",
    ], describe(lua));
    assert.deepEqual(await Deno.readFile(img), before, "the image is unchanged");
  });
});

Deno.test("e2e lgfs: get never overwrites the disk image itself; ls shows hostile names escaped", async () => {
  await inTempDir(async (dir) => {
    // Names a guest may choose: a newline faking a second entry, an escape
    // sequence for the terminal, a C1 control, a leading quote.
    const dev = new MemDev(new Uint8Array(2 << 20));
    const fs = Lgfs.mkfs(dev);
    const names = ["a\nfake", "esc\x1b[31mred", "c1\x85", '"q"', "plain"];
    for (const n of names) fs.writeFile(`/${n}`, [new TextEncoder().encode(n)]);
    const img = `${dir}/d.img`;
    await Deno.writeFile(img, dev.bytes);
    const ls = await disk(["ls", img]);
    assert.equal(lines(ls.stdout).length, names.length, describe(ls));
    // deno-lint-ignore no-control-regex
    assert.ok(!/[\x00-\x1f\x7f-\x9f]/.test(ls.stdout.replaceAll("\n", "")), describe(ls));
    for (const n of names) {
      const shown = n === "plain" ? n : JSON.stringify(n).replace("\x85", "\\u0085");
      assert.ok(lines(ls.stdout).some((l) => l.endsWith(` ${shown}`)), `${shown}\n${describe(ls)}`);
    }
    // get onto the image (by its name or through a link) is refused: the
    // disk stays whole.
    const before = await Deno.readFile(img);
    await Deno.symlink(img, `${dir}/link.img`);
    for (const target of [img, `${dir}/link.img`]) {
      const r = await disk(["get", img, "/plain", target], EXIT.USAGE);
      assert.match(r.stderr, /is the disk image itself/, describe(r));
      assert.equal(lines(r.stderr).length, 1, describe(r));
    }
    assert.deepEqual(await Deno.readFile(img), before);
    // Nor is the image put onto itself (alone, or in its folder with -r).
    for (const args of [["put", img, img, "/self"], ["put", "-r", img, dir, "/all"]]) {
      const r = await disk(args, EXIT.USAGE);
      assert.match(
        r.stderr,
        /d\.img: is the disk image itself \(it cannot go onto itself\)\n$/,
        describe(r),
      );
    }
    assert.deepEqual(await Deno.readFile(img), before);
    // -f does not change that.
    const f = await disk(["get", "-f", img, "/plain", img], EXIT.USAGE);
    assert.match(f.stderr, /is the disk image itself/, describe(f));
    assert.deepEqual(await Deno.readFile(img), before);
  });
});

Deno.test("e2e lgfs: put to a PATH ending in '/' copies into that folder (made if missing); an empty argument is refused", async () => {
  await inTempDir(async (dir) => {
    const img = `${dir}/p.img`;
    await disk(["mkfs", img, "2M"]);
    await Deno.writeTextFile(`${dir}/n.txt`, "note");
    await disk(["put", img, `${dir}/n.txt`, "/docs/"]);
    const fs = await openImage(img);
    const d = fs.resolve("/docs");
    assert.ok(d.ino !== null && (fs.inode(d.ino).mode & 0o170000) === 0o040000, "a folder");
    assert.equal(new TextDecoder().decode((await fileOf(img, "/docs/n.txt"))!), "note");
    const r = await disk(["put", img, `${dir}/n.txt`, ""], EXIT.USAGE);
    assert.equal(
      r.stderr,
      "lguest disk: put: an empty argument ('') where a file or path goes (/ is the top)\n",
    );
    for (const args of [["get", img, "/docs/n.txt", ""], ["mkfs", "", "1M"], ["ls", img, ""]]) {
      const e = await disk(args, EXIT.USAGE);
      assert.match(e.stderr, /^lguest disk: \w+: an empty argument \(''\)/, describe(e));
    }
    const g = await disk(["get", img, "/docs/n.txt", `${dir}/none/x`], EXIT.USAGE);
    assert.equal(g.stderr, `lguest disk: ${dir}/none/x: no such file or directory\n`);
    const gr = await disk(["get", "-r", img, "/docs", `${dir}/none/sub`], EXIT.USAGE);
    assert.equal(gr.stderr, `lguest disk: ${dir}/none/sub: no such file or directory\n`);
  });
});

Deno.test("e2e lgfs: put of a host file larger than an lgfs file is refused at once, the disk untouched", async () => {
  await inTempDir(async (dir) => {
    const img = `${dir}/p.img`;
    await disk(["mkfs", img, "2M"]);
    await Deno.writeFile(`${dir}/huge`, new Uint8Array(0));
    await Deno.truncate(`${dir}/huge`, 5 * 2 ** 30); // sparse: nothing is read
    const before = await Deno.readFile(img);
    const t = performance.now();
    const r = await disk(["put", img, `${dir}/huge`, "/huge"], EXIT.USAGE);
    assert.match(r.stderr, /huge: 5368709120 bytes, more than an lgfs file holds \(\d+\)\n$/);
    assert.ok(performance.now() - t < 20_000, "refused before reading the file");
    assert.deepEqual(await Deno.readFile(img), before);
  });
});

Deno.test("e2e lgfs: nothing is replaced unless -f: get onto a host file, put onto a disk file, mkfs of an image with data", async () => {
  await inTempDir(async (dir) => {
    const img = `${dir}/f.img`;
    await disk(["mkfs", img, "2M"]);
    await Deno.writeTextFile(`${dir}/n.txt`, "new");
    await disk(["put", img, `${dir}/n.txt`, "/n.txt"]);
    // get: an existing host file (named, or in the folder named) is kept
    await Deno.writeTextFile(`${dir}/mine.txt`, "my own, longer text");
    await Deno.mkdir(`${dir}/into`);
    await Deno.writeTextFile(`${dir}/into/n.txt`, "mine too");
    for (
      const [target, shown] of [[`${dir}/mine.txt`, `${dir}/mine.txt`], [
        `${dir}/into`,
        `${dir}/into/n.txt`,
      ]]
    ) {
      const r = await disk(["get", img, "/n.txt", target], EXIT.USAGE);
      assert.equal(r.stderr, `lguest disk: ${shown}: exists (get -f replaces it)\n`, describe(r));
    }
    assert.equal(await Deno.readTextFile(`${dir}/mine.txt`), "my own, longer text");
    assert.equal(await Deno.readTextFile(`${dir}/into/n.txt`), "mine too");
    await Deno.chmod(`${dir}/mine.txt`, 0o600);
    await disk(["get", img, "/n.txt", `${dir}/mine.txt`, "-f"]); // options anywhere
    await disk(["get", "--force", img, "/n.txt", `${dir}/into`]);
    assert.equal(await Deno.readTextFile(`${dir}/mine.txt`), "new");
    assert.equal((await Deno.stat(`${dir}/mine.txt`)).mode! & 0o777, 0o600, "mode kept");
    assert.equal(await Deno.readTextFile(`${dir}/into/n.txt`), "new");
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), [
      "f.img",
      "into",
      "mine.txt",
      "n.txt",
    ]);

    // put: an existing disk file is kept; -r checks every file before writing any
    await Deno.writeTextFile(`${dir}/other.txt`, "other");
    const p = await disk(["put", img, `${dir}/other.txt`, "/n.txt"], EXIT.USAGE);
    assert.equal(
      p.stderr,
      `lguest disk: /n.txt: exists on ${img} (put -f replaces it)\n`,
      describe(p),
    );
    await Deno.mkdir(`${dir}/tree`);
    await Deno.writeTextFile(`${dir}/tree/a.txt`, "a");
    await Deno.writeTextFile(`${dir}/tree/n.txt`, "tree's n");
    const pr = await disk(["put", "-r", img, `${dir}/tree`, "/"], EXIT.USAGE);
    assert.match(
      pr.stderr,
      /^lguest disk: \/n\.txt: exists on .* \(put -f replaces it\)\n$/,
      describe(pr),
    );
    assert.equal(await fileOf(img, "/a.txt"), null, "nothing of the tree was written");
    assert.equal(new TextDecoder().decode((await fileOf(img, "/n.txt"))!), "new");
    await disk(["put", "-rf", img, `${dir}/tree`, "/"]);
    assert.equal(new TextDecoder().decode((await fileOf(img, "/n.txt"))!), "tree's n");
    const d = await disk(["put", "-f", img, `${dir}/other.txt`, "/"], EXIT.OK); // into /, as cp
    assert.equal(d.stderr, "");
    await disk(["rm", img, "/other.txt"]);
    await disk(["check", img]);

    // mkfs: an lgfs image or any data is kept; a new, empty or all-zero file is not data
    const before = await Deno.readFile(img);
    const m = await disk(["mkfs", img], EXIT.USAGE);
    assert.equal(
      m.stderr,
      `lguest disk: ${img}: holds an lgfs file system already (mkfs -f erases it and every file on it)\n`,
    );
    await disk(["mkfs", img, "4M"], EXIT.USAGE); // nor resized
    assert.deepEqual(await Deno.readFile(img), before);
    const data = `${dir}/data.bin`;
    await Deno.writeFile(data, new Uint8Array(0));
    await Deno.truncate(data, 3 << 20);
    const fd = await Deno.open(data, { write: true });
    await fd.seek((2 << 20) + 7, Deno.SeekMode.Start); // one byte deep in a sparse file
    await fd.write(new Uint8Array([1]));
    fd.close();
    const md = await disk(["mkfs", data, "2M"], EXIT.USAGE);
    assert.equal(
      md.stderr,
      `lguest disk: ${data}: holds data, not only zeros (mkfs -f overwrites it)\n`,
    );
    assert.equal((await Deno.stat(data)).size, 3 << 20);
    await Deno.writeFile(`${dir}/zero.img`, new Uint8Array(2 << 20)); // written zeros
    await disk(["mkfs", `${dir}/zero.img`]);
    await disk(["mkfs", "-f", data, "2M"]);
    await disk(["mkfs", img, "--force"]);
    assert.equal((await disk(["ls", img])).stdout, "");
    const u = await disk(["mkfs", "-x", img], EXIT.USAGE);
    assert.equal(u.stderr, "lguest disk: mkfs: unknown option '-x' (options: -f)\n");
    const u2 = await disk(["ls", "--force", img], EXIT.USAGE);
    assert.equal(u2.stderr, "lguest disk: ls: unknown option '--force' (options: none)\n");
  });
});

Deno.test("e2e lgfs: a put -f that fills the disk leaves the old file whole, nothing leaked", async () => {
  await inTempDir(async (dir) => {
    const img = `${dir}/s.img`;
    await disk(["mkfs", img, "1M"]);
    const small = genData(3, 100_000);
    await Deno.writeFile(`${dir}/small`, small);
    await disk(["put", img, `${dir}/small`, "/f"]);
    await Deno.writeFile(`${dir}/big`, genData(4, 900_000));
    const r = await disk(["put", "-f", img, `${dir}/big`, "/f"], EXIT.USAGE);
    assert.match(
      r.stderr,
      /^lguest disk: no space left on the disk \(\/f unchanged\)\n$/,
      describe(r),
    );
    assert.deepEqual(await fileOf(img, "/f"), small);
    const c = await disk(["check", img]);
    assert.match(c.stdout, /consistent: 1 files/, describe(c));
    assert.doesNotMatch(c.stdout, /unlinked|leaked/, describe(c));
  });
});

Deno.test("e2e lgfs: HOSTPATH '-' is standard input for put and standard output for get (holes as zeros)", async () => {
  await inTempDir(async (dir) => {
    const img = `${dir}/s.img`;
    await disk(["mkfs", img, "2M"]);
    const put = await runCli(["disk", "put", img, "-", "/in.txt"], { stdin: "from stdin\n" });
    assert.equal(put.code, EXIT.OK, describe(put));
    assert.equal(new TextDecoder().decode((await fileOf(img, "/in.txt"))!), "from stdin\n");
    const again = await runCli(["disk", "put", img, "-", "/in.txt"], { stdin: "x" });
    assert.equal(again.code, EXIT.USAGE, describe(again));
    assert.equal(again.stderr, `lguest disk: /in.txt: exists on ${img} (put -f replaces it)\n`);
    const get = await disk(["get", img, "/in.txt", "-"]);
    assert.equal(get.stdout, "from stdin\n");
    // a sparse file: the hole comes out as zeros
    const dev = new MemDev(await Deno.readFile(img));
    const fs = Lgfs.open(dev, { writable: true });
    const w = fstestSparse(fs);
    await Deno.writeFile(img, dev.bytes);
    const sparse = await disk(["get", img, "/sparse", "-"]);
    assert.equal(sparse.stdout, w);
    for (
      const [args, msg] of [
        [["put", img, "-", "/"], /^lguest disk: \/: is a folder: name the file/],
        [["put", "-r", img, "-", "/x"], /^lguest disk: put -r: '-' \(standard input\) is one file/],
        [["get", "-r", img, "/", "-"], /^lguest disk: get -r: '-' \(standard output\) is one file/],
      ] as const
    ) {
      const r = await disk([...args], EXIT.USAGE);
      assert.match(r.stderr, msg, describe(r));
    }
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["s.img"]);
    // A reader that stops early (| head): 141, as SIGPIPE would, and no message.
    await Deno.writeFile(`${dir}/big`, genData(3, 1 << 20)); // more than a pipe holds
    await disk(["put", img, `${dir}/big`, "/big"]);
    const r = await new Deno.Command("bash", {
      args: [
        "-c",
        `set -o pipefail; "$0" run -A "$1" disk get "$2" /big - | head -c 2 >/dev/null`,
        Deno.execPath(),
        `${ROOT_PATH}/main.ts`,
        img,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(r.code, EXIT.SIGNAL_BASE + 13, new TextDecoder().decode(r.stderr));
    assert.equal(new TextDecoder().decode(r.stderr), "");
  });
});

/** A file of "a", a hole of 3 blocks, then "b" (written by the host code). */
function fstestSparse(fs: Lgfs): string {
  fs.writeFile("/sparse", [new TextEncoder().encode("a")]);
  const r = fs.resolve("/sparse");
  fs.truncate(r.ino!, 3 * BS);
  fs.commit();
  return "a" + "\0".repeat(3 * BS - 1);
}

Deno.test("e2e lgfs: rm removes a file or an empty folder; rm -r a folder and all in it, every block back", async () => {
  await inTempDir(async (dir) => {
    const img = `${dir}/r.img`;
    await disk(["mkfs", img, "4M"]);
    await Deno.mkdir(`${dir}/t/sub/deeper`, { recursive: true });
    await Deno.writeTextFile(`${dir}/x`, "x");
    await disk(["put", img, `${dir}/x`, "/x"]);
    await disk(["rm", img, "/x"]);
    const empty = (await disk(["check", img])).stdout; // the top folder keeps its first block
    await Deno.writeFile(`${dir}/t/big`, genData(1, 300_000));
    await Deno.writeTextFile(`${dir}/t/sub/a.txt`, "a");
    await Deno.writeTextFile(`${dir}/t/sub/deeper/b.txt`, "b");
    await disk(["put", "-r", img, `${dir}/t`, "/t"]);
    await disk(["put", "-r", img, `${dir}/t/sub/deeper`, "/e"]);
    await disk(["rm", img, "/e/b.txt"]);
    await disk(["rm", img, "/e"]); // empty now
    const full = await disk(["rm", img, "/t"], EXIT.USAGE);
    assert.equal(
      full.stderr,
      "lguest disk: /t: folder not empty (rm -r removes it and its files)\n",
    );
    for (const top of ["/", "/."]) {
      const r = await disk(["rm", "-r", img, top], EXIT.USAGE);
      assert.match(r.stderr, /the top folder .* cannot be removed/, describe(r));
    }
    const up = await disk(["rm", "-r", img, "/t/.."], EXIT.USAGE); // '..' is refused as put does
    assert.equal(
      up.stderr,
      "lguest disk: /t/..: '..' not allowed (name the path from the top, /)\n",
    );
    await disk(["rm", "-r", img, "/t"]);
    assert.equal((await disk(["ls", img])).stdout, "");
    assert.equal((await disk(["check", img])).stdout, empty, "every block and inode back");
  });
});

Deno.test("e2e lgfs: an orphan a crash left is freed by the next put or rm (check says so before)", async () => {
  await inTempDir(async (dir) => {
    const img = `${dir}/o.img`;
    await disk(["mkfs", img, "2M"]);
    // An orphan as a crash leaves one (a put of a file large enough to
    // commit on the way, a guest dying with an unlinked file open): an
    // inode with data, nlink 0 and no name.
    const dev = new MemDev(await Deno.readFile(img));
    const fs = Lgfs.open(dev, { writable: true });
    fs.writeFile("/big", [genData(2, 300_000)]);
    const e = fs.lookupIn(1, "big")!;
    const b = dev.bytes, dv = new DataView(b.buffer, b.byteOffset);
    dv.setUint32(fs.bmap(fs.inode(1), 0) * BS + (e.slot % 32) * 128, 0, true); // no name
    dv.setUint32((fs.g.istart + Math.floor(e.ino / 32)) * BS + (e.ino % 32) * 128 + 4, 0, true);
    await Deno.writeFile(img, b);
    const c = await disk(["check", img]);
    assert.match(c.stdout, /consistent: 0 files, .*, 1 unlinked files to free at the next mount/);
    assert.equal((await disk(["ls", img])).stdout, "");
    await Deno.writeTextFile(`${dir}/n.txt`, "n");
    await disk(["put", img, `${dir}/n.txt`, "/n.txt"]);
    const after = await disk(["check", img]);
    assert.match(
      after.stdout,
      /consistent: 1 files, 1 directories, 2 blocks used/,
      describe(after),
    );
    assert.doesNotMatch(after.stdout, /unlinked|leaked/, describe(after));
  });
});
