/**
 * The `lguest` command line, end to end: `--version`, `--help`, `guests`,
 * and every kind of bad input ending with exit 2 and exactly one line on
 * stderr, without a stack trace.
 *
 * @module
 */

import assert from "node:assert/strict";
import { type CliResult, describe, hasStackTrace, lines, ROOT, runCli } from "./helpers/run_cli.ts";

const HELLO_WASM = new URL("guests/images/hello.wasm", ROOT);

/** Exit 2, stdout empty, one stderr line "lguest: ..." matching `expect`. */
function assertUsageError(r: CliResult, expect: RegExp | string): void {
  const why = describe(r);
  assert.equal(r.code, 2, why);
  assert.equal(r.stdout, "", why);
  const err = lines(r.stderr);
  assert.equal(err.length, 1, `expected one stderr line\n${why}`);
  assert.match(err[0], /^lguest: /, why);
  if (typeof expect === "string") assert.ok(err[0].includes(expect), `want '${expect}'\n${why}`);
  else assert.match(err[0], expect, why);
  assert.ok(!hasStackTrace(r.stderr + r.stdout), `stack trace\n${why}`);
}

/** Run the command lines concurrently; each must be a usage error matching its pattern. */
async function assertUsageErrors(cases: [string[], RegExp | string][]): Promise<void> {
  const results = await Promise.all(cases.map(([args]) => runCli(args)));
  results.forEach((r, i) => assertUsageError(r, cases[i][1]));
}

/** A temporary directory for the test's files, removed afterwards. */
async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "lguest_cli_test_" });
  try {
    await fn(dir);
  } finally {
    await Deno.chmod(dir, 0o755).catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * A minimal wasm module: type () -> (), one function import env.bogus.
 * Valid WebAssembly, but not an import the guest ABI provides.
 */
const WRONG_IMPORT_WASM = new Uint8Array([
  ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00], // magic, version 1
  ...[0x01, 0x04, 0x01, 0x60, 0x00, 0x00], // type section: func () -> ()
  ...[0x02, 0x0d, 0x01], // import section, 13 bytes, one import
  ...[0x03, 0x65, 0x6e, 0x76], // "env"
  ...[0x05, 0x62, 0x6f, 0x67, 0x75, 0x73], // "bogus"
  ...[0x00, 0x00], // func, type 0
]);

// ---- Information ------------------------------------------------------------

Deno.test("cli: --version prints 'lguest X.Y.Z' from deno.json", async () => {
  const config = JSON.parse(await Deno.readTextFile(new URL("deno.json", ROOT)));
  assert.match(config.version, /^\d+\.\d+\.\d+/);
  for (const flag of ["--version", "-V"]) {
    const r = await runCli([flag]);
    assert.equal(r.code, 0, describe(r));
    assert.equal(r.stdout, `lguest ${config.version}\n`, describe(r));
    assert.equal(r.stderr, "", describe(r));
  }
});

Deno.test("cli: --help prints the usage and exits 0", async () => {
  for (
    const r of await Promise.all(
      [["--help"], ["-h"], ["help"], ["run", "--help"]].map((a) => runCli(a)),
    )
  ) {
    assert.equal(r.code, 0, describe(r));
    assert.equal(r.stderr, "", describe(r));
    assert.match(r.stdout, /Usage:/, describe(r));
    assert.match(r.stdout, /lguest run \[options\] GUEST/, describe(r));
    assert.match(r.stdout, /--memory/, describe(r));
    assert.match(r.stdout, /--timeout/, describe(r));
    assert.match(r.stdout, /Exit codes/, describe(r));
  }
});

Deno.test("cli: no arguments prints the usage and exits 2", async () => {
  const r = await runCli([]);
  assert.equal(r.code, 2, describe(r));
  assert.match(r.stdout, /Usage:/, describe(r));
  assert.ok(!hasStackTrace(r.stdout + r.stderr), describe(r));
});

Deno.test("cli: guests lists the built-in guests, not the test guests", async () => {
  const r = await runCli(["guests"]);
  assert.equal(r.code, 0, describe(r));
  assert.equal(r.stderr, "", describe(r));
  assert.match(r.stdout, /^hello\s+\S/m, describe(r));
  assert.match(r.stdout, /^shell\s+\S/m, describe(r));
  assert.doesNotMatch(r.stdout, /test-/, describe(r));
  // Every listed name is in the manifest and is not a test guest.
  const manifest = JSON.parse(
    await Deno.readTextFile(new URL("guests/images/manifest.json", ROOT)),
  ) as { name: string; test?: boolean }[];
  const listed = lines(r.stdout).map((l) => l.split(/\s+/)[0]);
  assert.deepEqual(listed.sort(), manifest.filter((g) => !g.test).map((g) => g.name).sort());
});

// ---- Bad command lines ------------------------------------------------------

Deno.test("cli: an unknown option is a usage error", async () => {
  await assertUsageErrors([
    [["run", "--bogus", "hello"], "unknown option --bogus"],
    [["run", "-x", "hello"], "unknown option -x"],
    [["run", "hello", "--bogus=1"], "unknown option --bogus"],
    [["--bogus"], "--bogus"],
  ]);
});

Deno.test("cli: an unknown command is a usage error", async () => {
  assertUsageError(await runCli(["frobnicate"]), "unknown command 'frobnicate'");
});

Deno.test("cli: run without a GUEST is a usage error", async () => {
  await assertUsageErrors([
    [["run"], "needs a GUEST"],
    [["run", "-m", "16M"], "needs a GUEST"],
  ]);
});

Deno.test("cli: an option missing its value is a usage error", async () => {
  await assertUsageErrors([
    [["run", "hello", "-m"], /option .*-m.* needs a value/],
    [["run", "hello", "--memory"], /option .*--memory.* needs a value/],
    [["run", "hello", "--timeout"], /option --timeout.* needs a value/],
  ]);
});

// ---- Bad guests -------------------------------------------------------------

Deno.test("cli: an unknown guest name is a usage error", async () => {
  assertUsageError(await runCli(["run", "no-such-guest"]), "unknown guest 'no-such-guest'");
});

Deno.test("cli: a nonexistent path is a usage error", async () => {
  assertUsageError(
    await runCli(["run", "./no/such/guest.wasm"]),
    "./no/such/guest.wasm: no such file",
  );
});

Deno.test("cli: a directory is a usage error", async () => {
  await withTempDir(async (dir) => {
    assertUsageError(await runCli(["run", dir]), `${dir}: is a directory`);
  });
});

/** Can this process read a mode-000 file (root, CAP_DAC_OVERRIDE)? */
async function readsUnreadableFiles(): Promise<boolean> {
  const dir = await Deno.makeTempDir({ prefix: "lguest_cli_probe_" });
  try {
    const f = `${dir}/probe`;
    await Deno.writeTextFile(f, "x");
    await Deno.chmod(f, 0o000);
    await Deno.readFile(f);
    return true;
  } catch {
    return false;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const privileged = Deno.build.os === "windows" || await readsUnreadableFiles();
if (privileged) {
  console.log(
    "cli_test: skipping 'an unreadable file': this process can read mode-000 files " +
      "(running as root), so the permission check cannot fail",
  );
}

Deno.test({
  name: "cli: an unreadable file is a usage error",
  ignore: privileged,
  fn: () =>
    withTempDir(async (dir) => {
      const f = `${dir}/locked.wasm`;
      await Deno.copyFile(HELLO_WASM, f);
      await Deno.chmod(f, 0o000);
      assertUsageError(await runCli(["run", f]), `${f}: permission denied`);
    }),
});

Deno.test("cli: a file that is not wasm is a usage error", async () => {
  await withTempDir(async (dir) => {
    const f = `${dir}/notes.txt`;
    await Deno.writeTextFile(f, "this is not a guest image\n");
    assertUsageError(await runCli(["run", f]), "not a WebAssembly guest image");
    const empty = `${dir}/empty.wasm`;
    await Deno.writeFile(empty, new Uint8Array());
    assertUsageError(await runCli(["run", empty]), "not a WebAssembly guest image");
  });
});

Deno.test("cli: a truncated wasm is a usage error", async () => {
  await withTempDir(async (dir) => {
    const f = `${dir}/truncated.wasm`;
    await Deno.writeFile(f, (await Deno.readFile(HELLO_WASM)).subarray(0, 100));
    assertUsageError(await runCli(["run", f]), "truncated: invalid WebAssembly image");
  });
});

Deno.test("cli: a wasm with a wrong import is a usage error", async () => {
  await withTempDir(async (dir) => {
    const f = `${dir}/wrong-import.wasm`;
    await Deno.writeFile(f, WRONG_IMPORT_WASM);
    assert.ok(WebAssembly.validate(WRONG_IMPORT_WASM));
    assertUsageError(await runCli(["run", f]), /imports env\.bogus/);
  });
});

Deno.test("cli: a built-in guest also runs by path", async () => {
  await withTempDir(async (dir) => {
    const f = `${dir}/my-hello.wasm`;
    await Deno.copyFile(HELLO_WASM, f);
    const r = await runCli(["run", f]);
    assert.equal(r.code, 0, describe(r));
    assert.match(r.stdout, /Hello/, describe(r));
    assert.equal(r.stderr, "", describe(r));
  });
});

// ---- Bad sizes and timeouts -------------------------------------------------

Deno.test("cli: bad memory sizes are usage errors", async () => {
  await assertUsageErrors([
    [["run", "-m", "abc", "hello"], "invalid memory size 'abc'"],
    [["run", "-m", "1k", "hello"], "'1k'"],
    [["run", "-m", "100G", "hello"], "'100G' out of range"],
    [["run", "-m", "0", "hello"], "'0' out of range"],
    [["run", "-m", "1M", "hello"], "'1M' out of range"],
    [["run", "--memory=-5M", "hello"], "invalid memory size '-5M'"],
  ]);
});

Deno.test("cli: good memory sizes reach the guest", async () => {
  const cases = [["16M", 16], ["16", 16], ["4096K", 4], ["2M", 2], ["1G", 1024]] as const;
  const results = await Promise.all(cases.map(([size]) => runCli(["run", "-m", size, "hello"])));
  results.forEach((r, i) => {
    assert.equal(r.code, 0, describe(r));
    assert.match(r.stdout, new RegExp(`I have ${cases[i][1]} MiB of RAM`), describe(r));
  });
});

Deno.test("cli: bad timeouts are usage errors", async () => {
  await assertUsageErrors([
    [["run", "--timeout", "abc", "hello"], "invalid timeout 'abc'"],
    [["run", "--timeout=-1", "hello"], "invalid timeout '-1'"],
    [["run", "--timeout", "0", "hello"], "invalid timeout '0'"],
    // A value starting with '-' looks like an option to the parser: say how to write it.
    [["run", "--timeout", "-1", "hello"], "option --timeout needs a value (write --timeout=VALUE"],
    [["run", "-m", "-1", "hello"], "option -m needs a value (write --memory=VALUE"],
  ]);
});
