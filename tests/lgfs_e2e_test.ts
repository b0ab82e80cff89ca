/**
 * lgfs end to end: the real `lguest` CLI (`lguest disk ...` and `lguest run
 * --block IMAGE test-fstest`), on images this test creates. Host put ->
 * guest reads; guest writes -> host get; the guest's API test; ENOSPC and a
 * disk larger than guest RAM; SIGKILL of the launcher during fsync-
 * acknowledged writes at random moments -> every acknowledged byte is
 * there and the file system checks consistent; hostile images and bad
 * arguments -> one line and EXIT.USAGE; the image locks.
 * docs/disk-format.md, docs/guest-abi.md §15.4.
 */

import assert from "node:assert/strict";
import { describe, hasStackTrace, lines, runCli } from "./helpers/run_cli.ts";
import { genData, inTempDir } from "./helpers/resources.ts";
import { EXIT } from "../launcher/cli.ts";
import { crc32, Lgfs, MemDev } from "../launcher/lgfs.ts";

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
    const r2 = await fstest(img, ["crc", "/t/sub/two.txt"]);
    assert.match(r2.stdout, /^crc \/t\/sub\/two\.txt 4 /m);
    const w = await fstest(img, ["write", "/a/out.bin", "3000001", "9"]);
    const want = genData(9, 3_000_001);
    assert.ok(lines(w.stdout).includes(`wrote /a/out.bin 3000001 ${hex8(crc32(0, want))}`));
    await disk(["get", img, "/a/out.bin", `${dir}/out.bin`]);
    assert.deepEqual(await Deno.readFile(`${dir}/out.bin`), want);
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
