/**
 * `lguest disk` and `lguest cc` as a new user meets them (README "lguest
 * disk", "Run your own program"; docs/disk-format.md): holes stay holes on
 * put; a failed put (-r) leaves the disk as it was; every name in a message
 * is escaped as ls shows it; links, limits, trailing slashes, '..', the
 * output of cc, did-you-mean hints and a closed standard output.
 */

import assert from "node:assert/strict";
import {
  describe,
  hasStackTrace,
  LGUEST_CMD,
  ROOT_PATH,
  runCli,
  spawnCli,
} from "./helpers/run_cli.ts";
import { inTempDir } from "./helpers/resources.ts";
import { skipWithoutToolchain } from "./helpers/toolchain.ts";
import { EXIT } from "../launcher/cli.ts";
import { BS, CrashError, Lgfs, MemDev, quoted } from "../launcher/lgfs.ts";
import { putOnto, tidy } from "../launcher/disk.ts";

/** A raw control character (newline aside) in text. */
function hasControl(text: string): boolean {
  return [...text].some((c) => {
    const n = c.charCodeAt(0);
    return (n < 0x20 && n !== 0x0a) || (n >= 0x7f && n <= 0x9f);
  });
}

async function disk(args: string[], code: number = EXIT.OK) {
  const r = await runCli(["disk", ...args]);
  assert.equal(r.code, code, describe(r));
  assert.ok(!hasStackTrace(r.stderr), describe(r));
  return r;
}

async function openImage(img: string): Promise<Lgfs> {
  return Lgfs.open(new MemDev(await Deno.readFile(img)), { writable: false });
}

/** Blocks in use and every name on the disk (path -> size), to compare before and after. */
async function state(img: string): Promise<{ used: number; names: Record<string, number> }> {
  const fs = await openImage(img);
  const names: Record<string, number> = {};
  const walk = (ino: number, at: string) => {
    for (const e of fs.entries(ino)) {
      names[`${at}/${e.name}`] = fs.inode(e.ino).size;
      if ((fs.inode(e.ino).mode & 0o170000) === 0o040000) walk(e.ino, `${at}/${e.name}`);
    }
  };
  walk(1, "");
  return { used: fs.check().usedBlocks, names };
}

Deno.test("lgfs writeFile: a number is a hole and a block of zeros takes no block; contents round-trip", () => {
  const fs = Lgfs.mkfs(new MemDev(new Uint8Array(4 << 20)));
  const base = fs.check().usedBlocks;
  const data = new Uint8Array(3 * BS + 100).fill(7);
  data.fill(0, BS, 2 * BS); // one whole block of zeros inside
  const size = fs.writeFile("/f", [data, 10 * BS + 5, new Uint8Array([1])]);
  assert.equal(size, data.length + 10 * BS + 5 + 1);
  // blocks 0, 2, 3 (partly data, partly hole), 13 (the last byte: through the
  // indirect block) and the root folder's first block
  assert.equal(fs.check().usedBlocks - base, 4 + 1 + 1);
  const out = new Uint8Array(size);
  let off = 0;
  for (const p of fs.readFile(fs.resolve("/f").ino!)) {
    if (typeof p === "number") off += p;
    else (out.set(p, off), off += p.length);
  }
  const want = new Uint8Array(size);
  want.set(data);
  want[size - 1] = 1;
  assert.deepEqual(out, want);
  fs.writeFile("/z", [5 << 20]); // 5 MiB of hole on a 4 MiB disk
  assert.equal(fs.inode(fs.resolve("/z").ino!).size, 5 << 20);
});

Deno.test("disk put: a sparse host file stays sparse; one larger than the disk fits; get -> put keeps it sparse", async () => {
  await inTempDir(async (dir) => {
    const img = `${dir}/t.img`;
    await disk(["mkfs", img, "16M"]);
    const before = (await state(img)).used;
    await Deno.writeFile(`${dir}/sp`, new Uint8Array(0));
    await Deno.truncate(`${dir}/sp`, 5 << 20);
    await disk(["put", img, `${dir}/sp`, "/sp"]);
    await Deno.writeFile(`${dir}/big`, new Uint8Array(0));
    await Deno.truncate(`${dir}/big`, 50 << 20); // 50M into a 16M disk
    await disk(["put", img, `${dir}/big`, "/big"]);
    // data, a hole, data
    const f = await Deno.open(`${dir}/mixed`, { write: true, create: true });
    await f.write(new Uint8Array(5000).fill(9));
    await f.seek(3 << 20, Deno.SeekMode.Start);
    await f.write(new TextEncoder().encode("end"));
    f.close();
    await disk(["put", img, `${dir}/mixed`, "/mixed"]);
    const s = await state(img);
    // the root folder's block + mixed's 2 data blocks, its 3 end bytes' block and
    // the indirect block that maps it
    assert.equal(s.used - before, 5, "blocks for three sparse files");
    assert.equal(s.names["/big"], 50 << 20);
    await disk(["get", img, "/mixed", `${dir}/back`]);
    assert.deepEqual(await Deno.readFile(`${dir}/back`), await Deno.readFile(`${dir}/mixed`));
    await disk(["put", img, `${dir}/back`, "/again"]);
    assert.equal((await state(img)).used - s.used, 4, "a file got back sparse goes back sparse");
    await disk(["check", img]);
  });
});

Deno.test("disk put -r that runs out of room leaves the disk as it was; a retry is not refused as 'exists'", async () => {
  await inTempDir(async (dir) => {
    const img = `${dir}/s.img`;
    await disk(["mkfs", img, "4M"]);
    await Deno.writeTextFile(`${dir}/keep`, "kept");
    await disk(["put", img, `${dir}/keep`, "/keep"]);
    const before = await state(img);
    for (const sub of ["a", "b"]) {
      await Deno.mkdir(`${dir}/tree/${sub}`, { recursive: true });
      for (let i = 0; i < 6; i++) {
        await Deno.writeFile(
          `${dir}/tree/${sub}/f${i}`,
          crypto.getRandomValues(new Uint8Array(60_000)).map((_, j) => (j * 7 + i) & 0xff),
        );
        const big = new Uint8Array(400_000);
        for (let j = 0; j < big.length; j += 4096) big[j] = 1; // no block of zeros
        await Deno.writeFile(`${dir}/tree/${sub}/g${i}`, big);
      }
    }
    const r = await disk(["put", "-r", img, `${dir}/tree`, "/tree"], EXIT.USAGE);
    assert.match(r.stderr, /no space left on the disk .*what it made is removed again\n$/);
    assert.equal(r.stderr.split("\n").length, 2, "one line");
    assert.deepEqual(await state(img), before);
    await disk(["check", img]);
    // with room made, the same command works
    await Deno.remove(`${dir}/tree/b`, { recursive: true });
    await disk(["put", "-r", img, `${dir}/tree`, "/tree"]);
    assert.equal((await state(img)).names["/tree/a/g5"], 400_000);
  });
});

Deno.test("disk put of one file that runs out of inodes leaves none of the folders it made", async () => {
  await inTempDir(async (dir) => {
    const img = `${dir}/i.img`;
    await disk(["mkfs", img, "2M"]); // 126 inodes
    await Deno.writeTextFile(`${dir}/x`, "x");
    await Deno.mkdir(`${dir}/many`);
    for (let i = 0; i < 100; i++) await Deno.writeTextFile(`${dir}/many/f${i}`, `${i}`);
    await disk(["put", "-r", img, `${dir}/many`, "/many"]); // 25 inodes left
    const before = await state(img);
    const deep = "/d".repeat(40) + "/x"; // 40 folders
    const r = await disk(["put", img, `${dir}/x`, deep], EXIT.USAGE);
    assert.match(
      r.stderr,
      /no free inodes left on the disk \(.* not written; the \d+ folders made for it are removed again\)\n$/,
    );
    const after = await state(img);
    assert.deepEqual(after.names, before.names);
    await disk(["check", img]);
    const long = await disk(["put", img, `${dir}/x`, "/d".repeat(2100)], EXIT.USAGE);
    assert.equal(long.stderr, "lguest disk: put: path longer than 4096 bytes (the lgfs limit)\n");
  });
});

Deno.test("disk and cc messages show every name escaped as ls does: no escape sequence reaches the terminal", async () => {
  await inTempDir(async (dir) => {
    const img = `${dir}/e.img`;
    const red = "\x1b[31mred", osc = "\x1b]0;pwn\x07";
    await disk(["mkfs", img, "2M"]);
    await Deno.mkdir(`${dir}/src`);
    await Deno.mkdir(`${dir}/g3`);
    await Deno.writeTextFile(`${dir}/src/${red}`, "r");
    await Deno.writeTextFile(`${dir}/src/${osc}`, "o");
    await Deno.writeTextFile(`${dir}/g3/${red}`, "there");
    await disk(["put", "-r", img, `${dir}/src`, "/tree"]);
    const cases: [string[], string][] = [
      [["get", img, `/tree/${red}`, `${dir}/g3`], `"${dir}/g3/\\u001b[31mred": exists`],
      [["put", "-r", img, `${dir}/src`, "/tree"], `"/tree/\\u001b[31mred": exists on`],
      [["rm", img, `/no${osc}`], `"/no\\u001b]0;pwn\\u0007": no such file or directory`],
      [["rm", img, `/tree/${osc}/`], `"/tree/\\u001b]0;pwn\\u0007/": not a directory`],
      [["ls", img, `/${red}`], `"/\\u001b[31mred": no such file`],
      [["put", img, `${dir}/no${red}`, "/x"], `"${dir}/no\\u001b[31mred": no such file`],
      [["ls", `${dir}/${red}.img`], `"${dir}/\\u001b[31mred.img": no such file`],
    ];
    for (const [args, text] of cases) {
      const r = await disk(args, EXIT.USAGE);
      assert.ok(r.stderr.includes(text), `${JSON.stringify(text)} in ${describe(r)}`);
      assert.ok(!hasControl(r.stderr), `raw control: ${describe(r)}`);
    }
    await Deno.writeFile(`${dir}/${red}.wasm`, new Uint8Array([0, 0x61, 0x73, 0x6d]));
    const cc = await runCli(["cc", "-o", `${dir}/${red}.wasm`, `${dir}/${red}.wasm`]);
    assert.equal(cc.code, EXIT.USAGE, describe(cc));
    assert.ok(!hasControl(cc.stderr), describe(cc));
    assert.ok(cc.stderr.includes(`"${dir}/\\u001b[31mred.wasm"`), describe(cc));
  });
});

Deno.test("disk: a link to a file is followed (not to the image); trailing '/', '..', 2T, too many arguments", async () => {
  await inTempDir(async (dir) => {
    const img = `${dir}/l.img`;
    await disk(["mkfs", img, "2M"]);
    await Deno.writeTextFile(`${dir}/n.txt`, "note");
    await Deno.symlink(`${dir}/n.txt`, `${dir}/link`);
    await Deno.symlink(img, `${dir}/self`);
    await disk(["put", img, `${dir}/link`, "/n"]);
    assert.equal((await state(img)).names["/n"], 4);
    const self = await disk(["put", img, `${dir}/self`, "/s"], EXIT.USAGE);
    assert.equal(
      self.stderr,
      `lguest disk: ${dir}/self: is the disk image itself (it cannot go onto itself)\n`,
    );
    for (
      const args of [["rm", img, "/n/"], ["get", img, "/n/", `${dir}/out`], ["ls", img, "/n/"]]
    ) {
      const r = await disk(args, EXIT.USAGE);
      assert.equal(r.stderr, "lguest disk: /n/: not a directory\n", describe(r));
    }
    assert.equal((await state(img)).names["/n"], 4, "rm /n/ removed nothing");
    await disk(["put", img, `${dir}/n.txt`, "/t/"]);
    const dd = await disk(["rm", "-r", img, "/t/../t"], EXIT.USAGE);
    assert.equal(
      dd.stderr,
      "lguest disk: /t/../t: '..' not allowed (name the path from the top, /)\n",
    );
    assert.ok("/t/n.txt" in (await state(img)).names);
    const big = await disk(["mkfs", `${dir}/x.img`, "2T"], EXIT.USAGE);
    assert.equal(
      big.stderr,
      "lguest disk: size '2T' out of range (1M to 2T less 4K: under 2^32 sectors)\n",
    );
    const many = await disk(["ls", img, "a", "b", "c"], EXIT.USAGE);
    assert.equal(many.stderr, "lguest disk: ls: too many arguments (ls needs IMAGE [PATH])\n");
  });
});

Deno.test("a closed standard output (>&-) is /dev/null, as 1<>/dev/null and >/dev/null are: every command exits 0", async () => {
  // Deno's runtime opens /dev/null read-write on a closed fd 1 before lguest runs; that is what
  // 1<>/dev/null (daemon(3), systemd's StandardOutput=null) gives too. Before: disk get - alone
  // took both for a closed pipe (141, nothing written) while run, ls, --help exited 0.
  await inTempDir(async (dir) => {
    const img = `${dir}/c.img`;
    await disk(["mkfs", img, "2M"]);
    await Deno.writeTextFile(`${dir}/f`, "data");
    await disk(["put", img, `${dir}/f`, "/f"]);
    const sh = async (redirect: string, args: string[]) =>
      await new Deno.Command("sh", {
        args: ["-c", `"$@" ${redirect}`, "sh", ...LGUEST_CMD, ...args],
        cwd: ROOT_PATH,
        stderr: "piped",
      }).output();
    const cmds = [["disk", "get", img, "/f", "-"], ["disk", "ls", img], ["--help"], [
      "run",
      "hello",
    ]];
    for (const redirect of [">&-", "1<>/dev/null", ">/dev/null"]) {
      for (const args of cmds) {
        const r = await sh(redirect, args);
        const err = new TextDecoder().decode(r.stderr);
        assert.equal(r.code, EXIT.OK, `${args.join(" ")} ${redirect}: ${err}`);
        assert.equal(err, "", `${args.join(" ")} ${redirect}`);
      }
    }
  });
});

Deno.test("did-you-mean for mistyped options; --help shows guests [--json]", async () => {
  const cases: [string[], string][] = [
    [["run", "--memroy", "16M", "hello"], "unknown option --memroy (did you mean '--memory'? "],
    [["run", "--timout", "3", "hello"], "unknown option --timout (did you mean '--timeout'? "],
    [["run", "--blok", "x.img", "hello"], "unknown option --blok (did you mean '--block'? "],
    [
      ["disk", "put", "--forse", "a", "b", "c"],
      "unknown option '--forse' (did you mean '--force'? ",
    ],
    [["--versoin"], "unknown command '--versoin' (did you mean '--version'? "],
  ];
  for (const [args, text] of cases) {
    const r = await runCli(args);
    assert.equal(r.code, EXIT.USAGE, describe(r));
    assert.ok(r.stderr.includes(text), `${text} in ${describe(r)}`);
  }
  const help = await runCli(["--help"]);
  assert.match(help.stdout, /lguest guests \[--json\] /);
});

Deno.test("cc: --output is honoured like -o; an existing disk image as output is refused, untouched", async () => {
  await inTempDir(async (dir) => {
    const img = `${dir}/notes.img`;
    await disk(["mkfs", img, "1M"]);
    const before = await Deno.readFile(img);
    await Deno.writeTextFile(`${dir}/p.c`, "int main(void) { return 3; }\n");
    for (const args of [["-o", img], [`--output=${img}`], ["--output", img], [`-o${img}`]]) {
      const r = await runCli(["cc", ...args, `${dir}/p.c`]);
      assert.equal(r.code, EXIT.USAGE, describe(r));
      assert.equal(
        r.stderr,
        `lguest: cc: -o ${img} exists and is not a wasm image (an lgfs disk image): it would be overwritten; remove it or name another output\n`,
      );
    }
    assert.deepEqual(await Deno.readFile(img), before);
    if (await skipWithoutToolchain("skipped the build half")) return;
    for (const args of [[`--output=${dir}/a1.wasm`], ["--output", `${dir}/a2.wasm`]]) {
      const r = await runCli(["cc", ...args, `${dir}/p.c`]);
      assert.equal(r.code, EXIT.OK, describe(r));
    }
    for (const out of ["a1.wasm", "a2.wasm"]) {
      const run = await runCli(["run", `${dir}/${out}`]);
      assert.equal(run.code, 3, describe(run));
    }
    await assert.rejects(Deno.stat(`${dir}/a.wasm`));
  });
});

Deno.test("lgfs check: a hostile name in a corruption message is escaped (quoted)", () => {
  const bytes = new Uint8Array(2 << 20);
  const fs = Lgfs.mkfs(new MemDev(bytes));
  const name = "\x1b]0;pwn\x07f";
  fs.writeFile(`/${name}`, [new Uint8Array([1])]);
  const e = fs.lookupIn(1, name)!;
  const pb = fs.bmap(fs.inode(1), Math.floor(e.slot / 32));
  bytes[pb * BS + (e.slot % 32) * 128 + 4] = 4; // DT_DIR on a file
  const again = Lgfs.open(new MemDev(bytes), { writable: false });
  assert.throws(() => again.check(), (err: Error) => {
    assert.equal(err.message, `"\\u001b]0;pwn\\u0007f": entry type does not match inode ${e.ino}`);
    return true;
  });
  assert.equal(quoted("plain"), "'plain'");
});

/** Every file under `at` on the disk (path below at -> contents), or null if at is not there. */
function treeOf(fs: Lgfs, at: string): Map<string, string> | null {
  const r = fs.resolve(at);
  if (r.ino === null) return null;
  const out = new Map<string, string>();
  const walk = (ino: number, p: string) => {
    for (const e of fs.entries(ino)) {
      if ((fs.inode(e.ino).mode & 0o170000) === 0o040000) {
        out.set(`${p}/${e.name}/`, "");
        walk(e.ino, `${p}/${e.name}`);
        continue;
      }
      const parts: Uint8Array[] = [];
      for (const c of fs.readFile(e.ino)) {
        parts.push(typeof c === "number" ? new Uint8Array(c) : c);
      }
      out.set(
        `${p}/${e.name}`,
        new TextDecoder().decode(new Uint8Array(parts.flatMap((x) => [...x]))),
      );
    }
  };
  walk(r.ino, "");
  return out;
}

Deno.test("disk put -r: killed after any number of block writes, each new folder is whole or absent; the next put or rm removes the temporary folder", async () => {
  await inTempDir(async (dir) => {
    // A host tree: files of one byte to three blocks, folders three deep, an empty folder.
    const src = `${dir}/src`;
    await Deno.mkdir(`${src}/a/b/c`, { recursive: true });
    await Deno.mkdir(`${src}/empty`);
    const files: Record<string, string> = {
      "/top.txt": "t",
      "/a/one.txt": "one\n".repeat(300),
      "/a/b/two.bin": "2".repeat(3 * BS - 7),
      "/a/b/c/three.txt": "three",
    };
    for (const [p, text] of Object.entries(files)) await Deno.writeTextFile(`${src}${p}`, text);
    const base = new MemDev(new Uint8Array(4 << 20));
    const fs0 = Lgfs.mkfs(base);
    fs0.writeFile("/keep", [new TextEncoder().encode("keep")]);
    fs0.mkdirs("/x");
    fs0.writeFile("/x/old", [new TextEncoder().encode("old")]);
    const image = base.bytes.slice();
    const usedBefore = fs0.check().usedBlocks;
    const run = (target: string, dev: MemDev) =>
      putOnto(Lgfs.open(dev, { writable: true }), src, target, { force: false, image: "m" });
    // What a finished put makes: the reference.
    const whole = new MemDev(image.slice());
    run("/x/new/tree", whole);
    const want = treeOf(Lgfs.open(whole, { writable: false }), "/x/new")!;
    assert.equal(want.get("/tree/a/b/two.bin"), files["/a/b/two.bin"]);
    const seen = { absent: 0, leftover: 0, whole: 0 };
    for (let k = 0; k <= whole.writes; k++) {
      const dev = new MemDev(image.slice());
      dev.crashAfter = k;
      try {
        run("/x/new/tree", dev);
      } catch (e) {
        if (!(e instanceof CrashError)) throw e;
      }
      dev.crashAfter = null;
      const what = `killed after ${k} of ${whole.writes} writes`;
      const fs = Lgfs.open(dev, { writable: false });
      const r = fs.check();
      assert.equal(r.leaked, 0, what);
      assert.ok(r.leftovers.every((p) => /^\/x\/\.lguest-put-[0-9a-f]{16}$/.test(p)), what);
      assert.ok(r.leftovers.length <= 1, what);
      const got = treeOf(fs, "/x/new");
      if (got === null) seen.absent++;
      else {
        assert.deepEqual(got, want, `${what}: a partial /x/new`);
        seen.whole++;
      }
      if (r.leftovers.length) seen.leftover++;
      assert.deepEqual(treeOf(fs, "/x")!.get("/old"), "old", what);
      // The next change tidies up: no temporary folder, no orphan, nothing else touched.
      const w = Lgfs.open(dev, { writable: true });
      tidy(w);
      const after = w.check();
      assert.deepEqual([after.leftovers, after.orphans, after.leaked], [[], 0, 0], what);
      assert.deepEqual(treeOf(w, "/x/new"), got, what);
      if (got === null) assert.equal(after.usedBlocks, usedBefore, what);
    }
    assert.ok(seen.absent && seen.leftover && seen.whole, JSON.stringify(seen));
    // Into an existing folder (merged, as before): each new file and each new folder in it
    // is whole or absent on its own.
    const merged = new MemDev(image.slice());
    run("/x", merged);
    const wantX = treeOf(Lgfs.open(merged, { writable: false }), "/x")!;
    for (let k = 0; k <= merged.writes; k++) {
      const dev = new MemDev(image.slice());
      dev.crashAfter = k;
      try {
        run("/x", dev);
      } catch (e) {
        if (!(e instanceof CrashError)) throw e;
      }
      dev.crashAfter = null;
      const w = Lgfs.open(dev, { writable: true });
      tidy(w);
      const got = treeOf(w, "/x")!;
      for (const top of ["/top.txt", "/a/", "/empty/"]) {
        const mine = [...wantX.keys()].filter((p) => p.startsWith(top));
        const have = mine.filter((p) => got.has(p));
        assert.ok(have.length === 0 || have.length === mine.length, `${k}: ${top} partly there`);
        for (const p of have) assert.equal(got.get(p), wantX.get(p), `${k}: ${p}`);
      }
    }
  });
});

Deno.test("disk put -r SIGKILLed while it builds: check passes naming what it left, the next command removes it", async () => {
  await inTempDir(async (dir) => {
    const img = `${dir}/k.img`;
    await disk(["mkfs", img, "16M"]);
    const src = `${dir}/src`;
    for (let d = 0; d < 6; d++) {
      await Deno.mkdir(`${src}/d${d}`, { recursive: true });
      for (let f = 0; f < 40; f++) {
        await Deno.writeTextFile(`${src}/d${d}/f${f}`, `${d}.${f}\n`.repeat(50 + f * 40));
      }
    }
    const files = 6 + 6 * 40;
    /** The root's temporary folder while the put builds it (the test reads the image unlocked). */
    const building = async () => {
      try {
        const fs = await openImage(img);
        return [...fs.entries(1)].some((e) => /^\.lguest-put-/.test(e.name));
      } catch {
        return false; // read mid-write: look again
      }
    };
    const states: string[] = [];
    for (let round = 0; round < 3; round++) {
      const p = spawnCli(["disk", "put", "-r", img, src, "/tree"], { killAfterMs: 60_000 });
      let ended = false;
      const done = p.result().then((r) => (ended = true, r));
      const t0 = Date.now();
      while (!ended && !(await building()) && Date.now() - t0 < 20_000) {
        await new Promise((r) => setTimeout(r, 2));
      }
      await new Promise((r) => setTimeout(r, round * 10));
      p.kill("SIGKILL");
      const r = await done;
      const chk = await disk(["check", img]);
      const left =
        /, (\d+) folders a killed put left \(the next put or rm removes them\), e\.g\. \/\.lguest-put-[0-9a-f]{16}$/m
          .exec(chk.stdout);
      const tree = treeOf(await openImage(img), "/tree");
      states.push(`${r.signal ?? r.code}:${left ? "leftover" : "-"}:${tree ? "whole" : "absent"}`);
      if (tree) {
        assert.equal(tree.size, files);
        assert.equal(tree.get("/d5/f39"), `5.39\n`.repeat(50 + 39 * 40));
        assert.equal(left, null, chk.stdout);
        await disk(["rm", "-r", img, "/tree"]);
      } else {
        // Refused (nothing there), but it tidied first: a retry is not refused as 'exists'.
        await disk(["rm", img, "/tree"], EXIT.USAGE);
      }
      assert.deepEqual((await openImage(img)).check().leftovers, [], `round ${round}`);
    }
    console.log(`  (signal or code:leftover:tree) ${states.join(" ")}`);
    await disk(["put", "-r", img, src, "/tree"]);
    assert.equal(treeOf(await openImage(img), "/tree")!.size, files);
  });
});

Deno.test("run: a C source file or an lgfs disk image given as GUEST says what to do instead", async () => {
  await inTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/notes.c`, "int main(void) { return 0; }\n");
    await disk(["mkfs", `${dir}/notes.img`, "1M"]);
    await Deno.writeTextFile(`${dir}/notes.txt`, "hello\n");
    await Deno.writeFile(`${dir}/new.img`, new Uint8Array(1 << 20)); // before its mkfs
    const [c, img, txt, zeros] = await Promise.all(
      ["notes.c", "notes.img", "notes.txt", "new.img"].map((f) => runCli(["run", `${dir}/${f}`])),
    );
    for (const r of [c, img, txt, zeros]) {
      assert.equal(r.code, EXIT.USAGE, describe(r));
      assert.equal(r.stdout, "", describe(r));
    }
    assert.match(
      c.stderr,
      /^lguest: notes\.c: not a WebAssembly guest image \(a C source file\? build an image of it with 'lguest cc -o prog\.wasm FILE\.c' first\)\n$/,
    );
    assert.match(
      img.stderr,
      /^lguest: notes\.img: not a WebAssembly guest image \(an lgfs disk image: give it with --block\)\n$/,
    );
    assert.match(txt.stderr, /^lguest: notes\.txt: not a WebAssembly guest image \(bad magic\)\n$/);
    assert.match(
      zeros.stderr,
      /^lguest: new\.img: not a WebAssembly guest image \(only zeros: a new disk image\? make a file system on it with 'lguest disk mkfs IMAGE', then give it with --block\)\n$/,
    );
    // The README's 64M disk (mkfs'd, or truncated before its mkfs) is past the 16 MiB image bound:
    // said what it is all the same; a 1-byte zero file is no disk; C by its content, any name.
    await disk(["mkfs", `${dir}/big.img`, "64M"]);
    const f = await Deno.open(`${dir}/bignew.img`, { write: true, create: true });
    await f.truncate(64 << 20);
    f.close();
    await Deno.writeFile(`${dir}/one.img`, new Uint8Array(1));
    await Deno.writeTextFile(
      `${dir}/prog.wasm`,
      "#include <stdio.h>\nint main(void) { return 0; }\n",
    );
    const [big, bignew, one, prog] = await Promise.all(
      ["big.img", "bignew.img", "one.img", "prog.wasm"].map((f) => runCli(["run", `${dir}/${f}`])),
    );
    for (const r of [big, bignew, one, prog]) assert.equal(r.code, EXIT.USAGE, describe(r));
    assert.match(
      big.stderr,
      /^lguest: .*big\.img: guest image larger than 16 MiB \(an lgfs disk image: give it with --block\)\n$/,
    );
    assert.match(
      bignew.stderr,
      /^lguest: .*bignew\.img: guest image larger than 16 MiB \(it starts with zeros: a new disk image\? make a file system on it with 'lguest disk mkfs IMAGE', then give it with --block\)\n$/,
    );
    assert.match(one.stderr, /^lguest: one\.img: not a WebAssembly guest image \(bad magic\)\n$/);
    assert.match(prog.stderr, /\(a C source file\? build an image of it with 'lguest cc/);
  });
});

Deno.test("disk put: '.lguest-put-…' folders with put's mark (as a hostile guest can craft them) 300 deep, inside another, or under a name that is not UTF-8 are removed by the next put, even on a full disk; ls shows a name that is not UTF-8 byte by byte", async () => {
  const dev = new MemDev(new Uint8Array(16 << 20)); // 510 inodes
  const fs = Lgfs.mkfs(dev);
  const deep = `/.lguest-put-0123456789abcdef${"/d".repeat(300)}`;
  fs.mkdirs(deep, undefined, Infinity, true); // a guest's craft: lguest disk makes none so deep
  fs.writeFile(`${deep}/f`, [new TextEncoder().encode("deep")]);
  fs.mkdirs("/.lguest-put-0123456789abcdef/.lguest-put-1111111111111111", undefined, 64, true);
  fs.mkdirs("/zq9/.lguest-put-2222222222222222", undefined, 64, true);
  fs.writeFile("/zq9/.lguest-put-2222222222222222/x", [new TextEncoder().encode("x")]);
  fs.commit();
  // the name zq9 as bytes that are not UTF-8 (a guest's), shown as U+FFFD on the host: in its
  // directory block and the journal's copy of it
  const b = dev.bytes;
  for (let i = 3; i < b.length - 2; i++) {
    if (b[i] === 0x7a && b[i + 1] === 0x71 && b[i + 2] === 0x39 && b[i - 3] === 3) {
      b.set([0xff, 0xfe, 0xff], i);
    }
  }
  await inTempDir(async (dir) => {
    await Deno.writeFile(`${dir}/g.img`, dev.bytes);
    const ls = (await disk(["ls", `${dir}/g.img`])).stdout;
    assert.match(ls, / "\\xff\\xfe\\xff"\/\n/, ls); // never as U+FFFD, which a real name can be
    assert.doesNotMatch(ls, /\ufffd/);
    assert.match(
      (await disk(["check", `${dir}/g.img`])).stdout,
      /, 2 folders a killed put left \(the next put or rm removes them\)/,
    );
  });
  let w = Lgfs.open(dev, { writable: true });
  const r = w.check();
  assert.deepEqual(r.leftovers.length, 2, "the one inside another is not listed: it goes with it");
  assert.ok(
    r.leftovers.includes('/"\\xff\\xfe\\xff"/.lguest-put-2222222222222222'),
    r.leftovers.join(),
  );
  // fill the disk: no inode, no block left
  for (let i = 0;; i++) {
    try {
      w.writeFile(`/fill${i}`, [new Uint8Array(1 << 20).fill(1)]);
    } catch {
      break;
    }
  }
  w = Lgfs.open(dev, { writable: true });
  tidy(w);
  const after = w.check();
  assert.deepEqual([after.leftovers, after.orphans, after.leaked], [[], 0, 0]);
  assert.deepEqual(
    [...w.entries(1)].filter((e) => !e.utf8).map((e) => [...w.entries(e.ino)].length),
    [0],
  );
  w.writeFile("/after", [new TextEncoder().encode("ok")]);
});

Deno.test("disk put never makes a folder more than 64 deep from the top (put -r, put, put -); rm -r and get -r take any folder put made, and a guest's deeper tree is removed by rm -r", async () => {
  await inTempDir(async (dir) => {
    const img = `${dir}/d.img`;
    await disk(["mkfs", img, "16M"]);
    await Deno.mkdir(`${dir}/t${"/d".repeat(60)}`, { recursive: true });
    await Deno.writeTextFile(`${dir}/t${"/d".repeat(60)}/f`, "f");
    const before = await state(img);
    // 8 folders of PATH + t's 60 inside it: 68 deep; refused before anything is written
    const r = await disk(["put", "-r", img, `${dir}/t`, "/a/b/c/d/e/f/g/h"], EXIT.USAGE);
    assert.match(
      r.stderr,
      /^lguest disk: \/a\/b\/c\/d\/e\/f\/g\/h(\/d){57}: folders nested more than 64 deep from the top \(lguest disk makes none deeper\)\n$/,
    );
    const one = await disk(
      ["put", img, `${dir}/t${"/d".repeat(60)}/f`, `${"/d".repeat(65)}/f`],
      EXIT.USAGE,
    );
    assert.match(one.stderr, /folders nested more than 64 deep from the top/);
    const std = await runCli(["disk", "put", img, "-", `${"/e".repeat(65)}/f`], { stdin: "x" });
    assert.equal(std.code, EXIT.USAGE, describe(std));
    assert.match(std.stderr, /folders nested more than 64 deep from the top/);
    assert.deepEqual(await state(img), before);
    assert.doesNotMatch((await disk(["check", img])).stdout, /killed put/);
    // 64 deep exactly: made; get -r and rm -r of its top take all of it
    await disk(["put", "-r", img, `${dir}/t`, "/a/b/c"]);
    assert.equal((await state(img)).names[`/a/b/c${"/d".repeat(60)}/f`], 1);
    await disk(["get", "-r", img, "/a", `${dir}/out`]);
    assert.equal(await Deno.readTextFile(`${dir}/out/b/c${"/d".repeat(60)}/f`), "f");
    await disk(["rm", "-r", img, "/a"]);
    assert.deepEqual((await state(img)).names, before.names);
    // a guest's tree 200 deep: rm -r removes it; get -r says what it does not copy (not "corrupt")
    const dev = new MemDev(await Deno.readFile(img));
    const fs = Lgfs.open(dev, { writable: true });
    fs.mkdirs(`/g${"/d".repeat(200)}`, undefined, Infinity);
    fs.commit();
    await Deno.writeFile(img, dev.bytes);
    const g = await disk(["get", "-r", img, "/g", `${dir}/gout`], EXIT.USAGE);
    assert.match(
      g.stderr,
      /folders nested more than 64 deep below \/g \(get -r copies at most 64 levels/,
    );
    assert.doesNotMatch(g.stderr, /corrupt/);
    await disk(["rm", "-r", img, "/g"]);
    const end = (await openImage(img)).check();
    assert.deepEqual([end.dirs, end.files, end.leaked, end.orphans], [1, 0, 0, 0]);
  });
});

Deno.test("disk get -r leaves out the temporary folder a killed put left; ls shows it", async () => {
  await inTempDir(async (dir) => {
    const img = `${dir}/l.img`;
    const dev = new MemDev(new Uint8Array(1 << 20));
    const fs = Lgfs.mkfs(dev);
    fs.mkdirs("/d/.lguest-put-0123456789abcdef", undefined, 64, true); // as a killed put leaves it
    fs.writeFile("/d/.lguest-put-0123456789abcdef/half", [new TextEncoder().encode("x")]);
    fs.writeFile("/d/whole", [new TextEncoder().encode("y")]);
    await Deno.writeFile(img, dev.bytes);
    await disk(["get", "-r", img, "/d", `${dir}/out`]);
    assert.deepEqual([...Deno.readDirSync(`${dir}/out`)].map((e) => e.name), ["whole"]);
    assert.match((await disk(["ls", img, "/d"])).stdout, /\.lguest-put-0123456789abcdef\//);
    assert.match((await disk(["check", img])).stdout, /1 folders a killed put left/);
  });
});

Deno.test("disk put of one file to a new path: killed after any number of block writes, its new folders are there only with the whole file", async () => {
  await inTempDir(async (dir) => {
    const text = "data\n".repeat(3000); // 15000 bytes: four blocks
    await Deno.writeTextFile(`${dir}/f.txt`, text);
    const base = new MemDev(new Uint8Array(1 << 20));
    Lgfs.mkfs(base);
    const image = base.bytes.slice();
    const run = (dev: MemDev) =>
      putOnto(Lgfs.open(dev, { writable: true }), `${dir}/f.txt`, "/a/b/f.txt", {
        force: false,
        image: "m",
      });
    const whole = new MemDev(image.slice());
    run(whole);
    const seen = { absent: 0, whole: 0 };
    for (let k = 0; k <= whole.writes; k++) {
      const dev = new MemDev(image.slice());
      dev.crashAfter = k;
      try {
        run(dev);
      } catch (e) {
        if (!(e instanceof CrashError)) throw e;
      }
      dev.crashAfter = null;
      const w = Lgfs.open(dev, { writable: true });
      tidy(w);
      const got = treeOf(w, "/a");
      if (got === null) seen.absent++;
      else {
        assert.deepEqual(got, new Map([["/b/", ""], ["/b/f.txt", text]]), `crash after ${k}`);
        seen.whole++;
      }
      assert.deepEqual(w.check().leftovers, [], `crash after ${k}`);
    }
    assert.ok(seen.absent && seen.whole, JSON.stringify(seen));
    // Standard input takes the same way: its folders come with it.
    const img = `${dir}/s.img`;
    await disk(["mkfs", img, "1M"]);
    const r = await runCli(["disk", "put", img, "-", "/x/y/z.txt"], { stdin: "all of it\n" });
    assert.equal(r.code, EXIT.OK, describe(r));
    assert.deepEqual(
      treeOf(await openImage(img), "/x"),
      new Map([["/y/", ""], ["/y/z.txt", "all of it\n"]]),
    );
  });
});

Deno.test("disk: a temporary-folder name from the host file, a folder over a file, rm of '.', put - of the image itself, a missing image, links to mkfs, host errors in words, a plain SIZE of 2^20", async () => {
  await inTempDir(async (dir) => {
    const img = `${dir}/s.img`;
    await disk(["mkfs", img, "16M"]);
    const temp = `${dir}/.lguest-put-0123456789abcdef`;
    await Deno.writeTextFile(temp, "t");
    // A: the name put would take from the host file
    const a = await disk(["put", img, temp, "/"], EXIT.USAGE);
    assert.match(
      a.stderr,
      /names like \.lguest-put-0123456789abcdef are lguest disk put's temporary/,
    );
    // B: a folder over a file is refused before any file is replaced
    await Deno.writeTextFile(`${dir}/old`, "old");
    await disk(["put", img, `${dir}/old`, "/x/a"]);
    await disk(["put", img, `${dir}/old`, "/x/z"]);
    await Deno.mkdir(`${dir}/c1/z`, { recursive: true });
    await Deno.writeTextFile(`${dir}/c1/a`, "NEW");
    await Deno.writeTextFile(`${dir}/c1/z/f`, "Z");
    const b = await disk(["put", "-rf", img, `${dir}/c1`, "/x"], EXIT.USAGE);
    assert.equal(b.stderr, `lguest disk: /x/z: is a file on ${img} (a folder cannot replace it)\n`);
    assert.equal((await disk(["get", img, "/x/a", "-"])).stdout, "old");
    // G: rm -r of '.' removes nothing
    const g = await disk(["rm", "-r", img, "/x/."], EXIT.USAGE);
    assert.equal(g.stderr, "lguest disk: /x/.: '.' cannot be removed (name the folder itself)\n");
    assert.match((await disk(["ls", img, "/"])).stdout, / x\/\n/);
    // L: standard input that is the image itself
    const before = await Deno.readFile(img);
    const l = await new Deno.Command("sh", {
      args: ["-c", `"$@" < "${img}"`, "sh", ...LGUEST_CMD, "disk", "put", img, "-", "/copy"],
      cwd: ROOT_PATH,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const lerr = new TextDecoder().decode(l.stderr);
    assert.equal(l.code, EXIT.USAGE, lerr);
    assert.match(lerr, /standard input is the disk image itself/);
    assert.deepEqual(await Deno.readFile(img), before);
    // D: a missing image is named
    const d = await disk(["put", `${dir}/none.img`, `${dir}/old`, "/y"], EXIT.USAGE);
    assert.equal(d.stderr, `lguest disk: ${dir}/none.img: no such file\n`);
    // E: host errors in words, the path once
    const e = await disk(["ls", `${img}/x`], EXIT.USAGE);
    assert.equal(e.stderr, `lguest disk: ${img}/x: not a directory (a file on the way)\n`);
    await Deno.symlink("loop", `${dir}/loop`);
    const loop = await disk(["ls", `${dir}/loop`], EXIT.USAGE);
    assert.equal(loop.stderr, `lguest disk: ${dir}/loop: too many levels of symbolic links\n`);
    // C: mkfs through a link (one to a file, a dangling one) with a SIZE
    await Deno.symlink("s.img", `${dir}/good`);
    await disk(["mkfs", "-f", `${dir}/good`, "8M"]);
    assert.equal((await Deno.stat(img)).size, 8 << 20);
    await Deno.symlink("made.img", `${dir}/dangling`);
    await disk(["mkfs", `${dir}/dangling`, "2M"]);
    assert.equal((await Deno.stat(`${dir}/made.img`)).size, 2 << 20);
    // F: a plain number is MiB; 2^20 or more (likely bytes) wants a unit
    const f = await disk(["mkfs", `${dir}/big.img`, "1048576"], EXIT.USAGE);
    assert.match(f.stderr, /a plain number is MiB \(1048576 MiB is over 1 TiB\): give a unit/);
    await assert.rejects(Deno.stat(`${dir}/big.img`), Deno.errors.NotFound);
    await disk(["mkfs", `${dir}/two.img`, "2"]);
    assert.equal((await Deno.stat(`${dir}/two.img`)).size, 2 << 20);
  });
});

Deno.test("lgfs rmdir -r of a directory cycle (check not run first) ends with CorruptError, not a loop", () => {
  const dev = new MemDev(new Uint8Array(4 << 20));
  const fs = Lgfs.mkfs(dev);
  fs.mkdirs("/a/b/c");
  const a = fs.resolve("/a").ino!, c = fs.resolve("/a/b/c").ino!;
  fs.commit();
  // b's entry 'c' made to name /a: a cycle a -> b -> a (here and in the journal's copy)
  const bytes = dev.bytes, v = new DataView(bytes.buffer);
  for (let off = 0; off + 128 <= bytes.length; off += 128) {
    if (
      v.getUint32(off, true) === c && bytes[off + 4] === 4 && bytes[off + 5] === 1 &&
      bytes[off + 8] === 0x63
    ) v.setUint32(off, a, true);
  }
  const w = Lgfs.open(dev, { writable: true });
  assert.throws(() => w.check(), /two names or is a directory cycle/);
  assert.throws(() => w.rmdir("/a", true), /a directory cycle/);
});

Deno.test("disk: the cleanup of a deep leftover killed after any number of block writes leaves a consistent disk, and the next one finishes it", () => {
  const base = new MemDev(new Uint8Array(4 << 20));
  const fs0 = Lgfs.mkfs(base);
  fs0.writeFile("/keep", [new TextEncoder().encode("keep")]);
  const deep = `/.lguest-put-0123456789abcdef${"/d".repeat(80)}`; // as a guest or a killed put
  fs0.mkdirs(deep, undefined, Infinity, true);
  for (let i = 0; i < 6; i++) fs0.writeFile(`${deep}/f${i}`, [new Uint8Array(BS + i).fill(7)]);
  fs0.commit();
  const image = base.bytes.slice();
  const used = (() => {
    const dev = new MemDev(image.slice());
    tidy(Lgfs.open(dev, { writable: true }));
    return { writes: dev.writes, blocks: Lgfs.open(dev, { writable: false }).check().usedBlocks };
  })();
  for (let k = 0; k <= used.writes; k++) {
    const dev = new MemDev(image.slice());
    dev.crashAfter = k;
    try {
      tidy(Lgfs.open(dev, { writable: true }));
    } catch (e) {
      if (!(e instanceof CrashError)) throw e;
    }
    dev.crashAfter = null;
    const r = Lgfs.open(dev, { writable: false }).check(); // consistent (throws if not)
    assert.equal(r.leaked, 0, `crash after ${k}`);
    const w = Lgfs.open(dev, { writable: true });
    tidy(w);
    const after = w.check();
    assert.deepEqual(
      [after.leftovers, after.orphans, after.usedBlocks],
      [[], 0, used.blocks],
      `crash after ${k}`,
    );
    assert.deepEqual([...w.entries(1)].map((e) => e.name), ["keep"], `crash after ${k}`);
  }
});

Deno.test("disk and run: standard output or error that is the disk image itself is refused (125), the image untouched", async () => {
  await inTempDir(async (dir) => {
    const img = `${dir}/d.img`;
    await disk(["mkfs", img, "2M"]);
    await Deno.writeTextFile(`${dir}/f`, "hi\n");
    await disk(["put", img, `${dir}/f`, "/f"]);
    const before = await Deno.readFile(img);
    const cases: [string, string[]][] = [
      ["1", ["disk", "get", img, "/f", "-"]],
      ["1", ["disk", "ls", img, "/"]],
      ["1", ["disk", "check", img]],
      ["1", ["disk", "mkfs", "-f", img, "2M"]],
      ["2", ["disk", "ls", img, "/"]],
      ["1", ["run", "--block", img, "hello"]],
      ["2", ["run", "--block", img, "hello"]],
    ];
    for (const [fd, args] of cases) {
      const r = await new Deno.Command("sh", {
        args: ["-c", `"$@" ${fd}<>"${img}"`, "sh", ...LGUEST_CMD, ...args],
        cwd: ROOT_PATH,
        stdout: "piped",
        stderr: "piped",
      }).output();
      const err = new TextDecoder().decode(r.stderr);
      const what = `${fd}<> ${args.join(" ")}: ${err}`;
      assert.equal(r.code, EXIT.USAGE, what);
      assert.deepEqual(await Deno.readFile(img), before, what);
      if (fd === "1") {
        assert.match(
          err,
          /^lguest( disk)?: .*standard output is (the disk image itself|the same file as --block)/,
          what,
        );
        assert.equal(err.split("\n").length, 2, what);
      }
    }
  });
});

Deno.test("disk: a guest's own folder named like put's temporary (no put mark) is never removed by the next put or rm; a killed put's marked one is", async () => {
  const dev = new MemDev(new Uint8Array(2 << 20));
  const fs = Lgfs.mkfs(dev);
  // What the guest kit makes: its mkdir zeroes the inode's spare bytes (no mark).
  fs.writeFile("/.lguest-put-00112233445566aa/thesis.txt", [new TextEncoder().encode("mine")]);
  // What a put killed while building leaves: the folder it made, marked with its name's digits.
  fs.mkdirs("/.lguest-put-0123456789abcdef", undefined, 64, true);
  fs.writeFile("/.lguest-put-0123456789abcdef/half", [new TextEncoder().encode("x")]);
  // A mark that is not the name's: a guest's folder renamed, not put's.
  fs.mkdirs("/.lguest-put-fedcba9876543210", undefined, 64, true);
  fs.rename(1, ".lguest-put-fedcba9876543210", ".lguest-put-fedcba9876543211");
  fs.commit();
  const r = fs.check();
  assert.deepEqual(r.leftovers, ["/.lguest-put-0123456789abcdef"]);
  await inTempDir(async (dir) => {
    await Deno.writeFile(`${dir}/g.img`, dev.bytes);
    await disk(["rm", `${dir}/g.img`, "/no-such-file"], EXIT.USAGE); // tidies first, even failing
    const ls = (await disk(["ls", `${dir}/g.img`, "/"])).stdout;
    assert.match(ls, /\.lguest-put-00112233445566aa\//, ls);
    assert.match(ls, /\.lguest-put-fedcba9876543211\//, ls);
    assert.doesNotMatch(ls, /0123456789abcdef/, ls);
    const got = await disk([
      "get",
      `${dir}/g.img`,
      "/.lguest-put-00112233445566aa/thesis.txt",
      "-",
    ]);
    assert.equal(got.stdout, "mine");
  });
});
