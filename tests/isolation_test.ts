/**
 * Isolation around the hypercall surface (issue 10): disk locks, the
 * closed guest-image profile, preemption that cannot be escaped, host
 * errors that stay on the host, guest text shown as data, and input files
 * checked before they are read. Exit codes come from `EXIT`, never
 * literals.
 *
 * @module
 */

import assert from "node:assert/strict";
import { EXIT } from "../launcher/cli.ts";
import { BlockDevice, parseBlockSpec } from "../devices/block.ts";
import { UsageError } from "../devices/registry.ts";
import {
  type CliResult,
  describe,
  hasStackTrace,
  lines,
  runCli,
  spawnCli,
} from "./helpers/run_cli.ts";

/** A usage error: the documented code, stdout empty, one stderr line matching `expect`. */
function assertRefused(r: CliResult, expect: RegExp | string): void {
  const why = describe(r);
  assert.equal(r.code, EXIT.USAGE, why);
  assert.equal(r.stdout, "", why);
  const err = lines(r.stderr);
  assert.equal(err.length, 1, `expected one stderr line\n${why}`);
  assert.match(err[0], /^lguest: /, why);
  if (typeof expect === "string") assert.ok(err[0].includes(expect), `want '${expect}'\n${why}`);
  else assert.match(err[0], expect, why);
  assert.ok(!hasStackTrace(r.stderr + r.stdout), `stack trace\n${why}`);
}

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "lguest_isolation_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

// ---- disk locks ----------------------------------------------------------------

Deno.test("disk locks: read-write exclusive, ,ro shared, ,nolock opts out, close releases", () =>
  withTempDir(async (dir) => {
    const img = `${dir}/d.img`;
    await Deno.writeFile(img, new Uint8Array(8192));
    const open = (opts: string) => new BlockDevice(parseBlockSpec(img + opts));
    const rw = open("");
    assert.throws(() => open(""), /in use by another lguest \(locked; ,nolock/);
    assert.throws(() => open(",ro"), /in use by another lguest \(locked for writing/);
    assert.throws(() => open(",ro"), UsageError);
    const unlocked = open(",nolock");
    unlocked.close();
    rw.close();
    const ro1 = open(",ro"), ro2 = open(",ro");
    assert.throws(() => open(""), /in use by another lguest/);
    ro1.close();
    ro2.close();
    open("").close(); // all released
  }));

Deno.test("disk locks: a second launcher on one image is refused; ro+ro share", () =>
  withTempDir(async (dir) => {
    const img = `${dir}/d.img`;
    await Deno.writeFile(img, new Uint8Array(64 * 1024));
    for (
      const [first, second, refused] of [["", "", true], ["", ",ro", true], [",ro", ",ro", false]]
    ) {
      const p = spawnCli(["run", "--block", img + first, "shell"], { stdin: "piped" });
      try {
        await p.write("blk\n");
        await p.waitFor("disk 0:");
        const r = await runCli(["run", "--block", img + second, "hello"]);
        if (refused) assertRefused(r, `--block ${img}: in use by another lguest (locked`);
        else assert.equal(r.code, EXIT.OK, describe(r));
        const forced = await runCli(["run", "--block", `${img}${second},nolock`, "hello"]);
        assert.equal(forced.code, EXIT.OK, describe(forced));
        await p.write("poweroff\n");
        const done = await p.result();
        assert.equal(done.code, EXIT.OK, describe(done));
      } finally {
        await p.closeStdin().catch(() => {});
        if ((await Promise.race([p.result(), null])) === null) p.kill("SIGKILL");
        await p.result();
      }
    }
    // The lock went away with the first launcher.
    const after = await runCli(["run", "--block", img, "hello"]);
    assert.equal(after.code, EXIT.OK, describe(after));
  }));

Deno.test("a disk of more than 2^32 - 1 sectors is refused, not seen modulo 2^32", () =>
  withTempDir(async (dir) => {
    const img = `${dir}/big.img`;
    const f = await Deno.open(img, { create: true, write: true });
    try {
      await f.truncate(2 ** 32 * 512); // sparse: 2 TiB, one sector too many
    } catch (e) {
      console.log(`skipped: cannot make a sparse 2 TiB file here (${(e as Error).message})`);
      return;
    } finally {
      f.close();
    }
    assert.throws(
      () => new BlockDevice(parseBlockSpec(img)),
      /big\.img: too large \(2199023255552 bytes; the protocol's 32-bit sector count/,
    );
    await Deno.truncate(img, (2 ** 32 - 1) * 512); // exactly the largest: accepted
    const ok = new BlockDevice(parseBlockSpec(img + ",ro"));
    assert.equal(ok.length, (2 ** 32 - 1) * 512);
    ok.close();
  }));
