/**
 * Machine-readable results (issue 11): `lguest run --json FILE` writes how
 * each guest ended (outcome, exit code, the guest's own status, reason) and
 * its counters; `lguest guests --json` lists the built-in guests.
 *
 * @module
 */

import assert from "node:assert/strict";
import { describe, lines, ROOT, runCli } from "./helpers/run_cli.ts";
import { EXIT } from "../launcher/exit.ts";
import type { RunReport } from "../launcher/runner.ts";

async function runJson(args: string[], stdin?: string): Promise<[number, RunReport]> {
  const dir = await Deno.makeTempDir({ prefix: "lguest_json_" });
  try {
    const r = await runCli(["run", "--json", `${dir}/r.json`, ...args], { stdin });
    return [r.code, JSON.parse(await Deno.readTextFile(`${dir}/r.json`))];
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("json: run --json FILE: outcome, codes, status, reason, counters", async () => {
  const [code, hello] = await runJson(["hello"]);
  assert.equal(code, EXIT.OK);
  assert.equal(hello.exitCode, EXIT.OK);
  const [g] = hello.guests;
  assert.equal(g.name, "hello");
  assert.equal(g.outcome, "powered off");
  assert.equal(g.status, 0);
  assert.equal(g.reason, "CRASH: Power down");
  assert.ok(g.counters!.hypercalls > 0);
  const cons = g.devices.find((d) => d.label.startsWith("console"))!;
  assert.equal(cons.counters!.out, "Hello from an lguest guest! I have 32 MiB of RAM.\n".length);

  const [c2, exited] = await runJson(["test-exit", "--", "7"]);
  assert.equal(c2, 7);
  assert.deepEqual(
    [exited.exitCode, exited.guests[0].outcome, exited.guests[0].status],
    [7, "exited", 7],
  );
  const [c3, crashed] = await runJson(["test-crash"]);
  assert.equal(c3, EXIT.GUEST_FAILED);
  assert.equal(crashed.guests[0].outcome, "crashed");
  assert.equal(crashed.guests[0].status, undefined);
  assert.match(crashed.guests[0].reason, /oops: test crash/);
  assert.deepEqual(g.hints, []);
  // A hint the guest gave its user (stderr in the CLI) is in the report too.
  const [c5, hinted] = await runJson(["lua", "--", "-e", "io.open('/x', 'w')"]);
  assert.equal(c5, EXIT.OK);
  assert.deepEqual(hinted.guests[0].hints, [
    "/x: no disk: run with --block disk.img (make one with 'lguest disk mkfs disk.img 64M')",
  ]);
  const [c4, timeout] = await runJson(["--timeout", "300ms", "test-spin"]);
  assert.equal(c4, EXIT.TIMEOUT);
  assert.equal(timeout.guests[0].outcome, "timeout");
});

Deno.test("json: a disk's counters; an unwritable --json FILE is refused before the run", async () => {
  const dir = await Deno.makeTempDir({ prefix: "lguest_json_" });
  try {
    await Deno.writeFile(`${dir}/d.img`, new Uint8Array(1 << 16));
    const [, r] = await runJson(
      ["--block", `${dir}/d.img`, "shell"],
      "blk write 0 0 abc\npoweroff\n",
    );
    const disk = r.guests[0].devices.find((d) => d.label.startsWith("block"))!;
    assert.equal(disk.counters!.writes, 1);
    assert.equal(disk.counters!.bytesWritten, 512);
    const bad = await runCli(["run", "--json", `${dir}/no/such/dir/r.json`, "hello"]);
    assert.equal(bad.code, EXIT.USAGE, describe(bad));
    assert.deepEqual(lines(bad.stderr), [
      `lguest: --json ${dir}/no/such/dir/r.json: no such file or directory`,
    ]);
    assert.equal(bad.stdout, "");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("json: guests --json lists the built-in guests of the manifest", async () => {
  const r = await runCli(["guests", "--json"]);
  assert.equal(r.code, EXIT.OK, describe(r));
  const list = JSON.parse(r.stdout) as { name: string; description: string }[];
  const manifest = JSON.parse(
    await Deno.readTextFile(new URL("guests/images/manifest.json", ROOT)),
  ) as { name: string; description: string; test?: boolean }[];
  assert.deepEqual(
    list,
    manifest.filter((g) => !g.test).map(({ name, description }) => ({ name, description })),
  );
});
