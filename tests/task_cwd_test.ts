/**
 * `deno task lguest` from another folder: the task runs in the repository
 * root, but relative paths (the image, --block, --pcap, --config) are the
 * user's, so they resolve against the folder the command was typed in
 * (deno task's INIT_CWD; main.ts).
 *
 * @module
 */

import assert from "node:assert/strict";
import { type CliResult, describe, ROOT_PATH } from "./helpers/run_cli.ts";
import { EXIT } from "../launcher/exit.ts";

/** `deno task -q [--config ROOT/deno.json] lguest ARGS` run in `cwd`. */
async function task(cwd: string, args: string[], config = false): Promise<CliResult> {
  const t0 = performance.now();
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "task",
      "-q",
      ...(config ? ["--config", `${ROOT_PATH}/deno.json`] : []),
      "lguest",
      ...args,
    ],
    cwd,
    // As typed at a shell: no INIT_CWD of an outer `deno task test` (deno
    // task keeps an inherited one, as npm does).
    clearEnv: true,
    env: Object.fromEntries(Object.entries(Deno.env.toObject()).filter(([k]) => k !== "INIT_CWD")),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return {
    code: out.code,
    signal: null,
    stdout: dec.decode(out.stdout),
    stderr: dec.decode(out.stderr),
    ms: performance.now() - t0,
    killed: false,
  };
}

Deno.test("deno task from a subfolder: ./image is the subfolder's", async () => {
  const r = await task(`${ROOT_PATH}/guests`, ["run", "./images/hello.wasm"]);
  assert.equal(r.code, EXIT.OK, describe(r));
  assert.match(r.stdout, /^Hello from an lguest guest!/m, describe(r));
});

Deno.test("deno task from another folder: image, --block, --pcap and --config are its", async () => {
  const dir = await Deno.makeTempDir({ prefix: "lguest-task-cwd-" });
  try {
    await Deno.copyFile(`${ROOT_PATH}/guests/images/hello.wasm`, `${dir}/first.wasm`);
    await Deno.writeFile(`${dir}/disk.img`, new Uint8Array(65536));
    const r = await task(dir, [
      "run",
      "--block",
      "./disk.img",
      "--pcap",
      "./task-cwd-test.pcap",
      "./first.wasm",
    ], true);
    assert.equal(r.code, EXIT.OK, describe(r));
    assert.match(r.stdout, /^Hello from an lguest guest!/m, describe(r));
    assert.ok(
      (await Deno.stat(`${dir}/task-cwd-test.pcap`)).isFile,
      "the pcap file is not in the folder",
    );
    await Deno.writeTextFile(
      `${dir}/lan.json`,
      JSON.stringify({
        guests: [{ name: "a", image: "./first.wasm", block: ["./disk.img"], console: "stdio" }],
      }),
    );
    const c = await task(dir, ["run", "--config", "./lan.json"], true);
    assert.equal(c.code, EXIT.OK, describe(c));
    assert.match(c.stdout, /^Hello from an lguest guest!/m, describe(c));
    // And a missing file is named as the user wrote it.
    const m = await task(dir, ["run", "./missing.wasm"], true);
    assert.equal(m.code, EXIT.USAGE, describe(m));
    assert.match(m.stderr, /missing\.wasm/, describe(m));
  } finally {
    await Deno.remove(dir, { recursive: true });
    // Had the paths gone to the repository root, leave no file there.
    await Deno.remove(`${ROOT_PATH}/task-cwd-test.pcap`).catch(() => {});
  }
});
