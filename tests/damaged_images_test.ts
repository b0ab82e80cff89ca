/**
 * A checkout whose generated image modules (guests/images/*.js) are
 * damaged (a truncated download, a bad merge, a disk error) or cannot be
 * read: each run says so in one line naming the module, exit 125, never a
 * stack trace (before: "not in this build (a test guest?)" for a missing
 * or truncated module, a Deno stack trace and exit 1 for bad base64 or a
 * damaged brotli stream); `deno task guests --check` lists such a module
 * as differing instead of crashing in its comparison.
 *
 * The runs use a copy of the checkout's code with only the modules each
 * case needs (the images are imported one by one, when used).
 *
 * @module
 */

import assert from "node:assert/strict";
import { hasStackTrace, ROOT_PATH } from "./helpers/run_cli.ts";
import { EXIT } from "../launcher/exit.ts";
import { embeddedPayload } from "../guests/build.ts";
import { brotliCompressSync, constants as zlib } from "node:zlib";

/** The checkout's files, the generated modules left out but the index and its declarations. */
async function copyCode(dir: string): Promise<void> {
  const out = await new Deno.Command("git", { args: ["ls-files", "-z"], cwd: ROOT_PATH }).output();
  const files = new TextDecoder().decode(out.stdout).split("\0").filter((f) =>
    f !== "" && (!f.startsWith("guests/images/") || /\/(index|[a-z]+\.d)\.ts$/.test(f))
  );
  for (const f of files) {
    if (f.includes("/")) {
      await Deno.mkdir(`${dir}/${f.replace(/\/[^/]*$/, "")}`, { recursive: true });
    }
    await Deno.copyFile(`${ROOT_PATH}/${f}`, `${dir}/${f}`);
  }
}

async function run(cwd: string, flags: string[], args: string[]) {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...flags, "main.ts", ...args],
    cwd,
    stdin: "null",
    env: { NO_COLOR: "1" },
  }).output();
  const dec = new TextDecoder();
  return { code: r.code, stdout: dec.decode(r.stdout), stderr: dec.decode(r.stderr) };
}

Deno.test("damaged or unreadable built-in image modules: one line naming the module, exit 125", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await copyCode(dir);
    const img = `${dir}/guests/images`;
    const real = (f: string) => Deno.readTextFile(`${ROOT_PATH}/guests/images/${f}`);
    const lua = await real("lua.wasm.ready.js");
    await Deno.writeTextFile(`${img}/lua.wasm.ready.js`, lua.slice(0, lua.length >> 1)); // truncated
    // shell's payload is a text module beside its module (guests/build.ts TEXT_PAYLOAD_ABOVE):
    // the module whole, its text with a character that is no base64 (the line names the text).
    await Deno.writeTextFile(`${img}/shell.wasm.ready.js`, await real("shell.wasm.ready.js"));
    const shell = await real("shell.wasm.ready.b64");
    await Deno.writeTextFile(
      `${img}/shell.wasm.ready.b64`,
      `${shell.slice(0, 99)}!${shell.slice(100)}`,
    );
    // Valid base64 of a brotli stream cut short; the FUEL a ready module holds.
    await Deno.writeTextFile(
      `${img}/disktest.wasm.ready.js`,
      "export const FUEL = { loops: 0, entries: 0, bulk: 0, resumes: 0 };\n" +
        'export const SIZE = 8;\nexport const SHA256 = "";\n' +
        'export const BROTLI = true;\nexport const BASE64 =\n  "H6gjERWs";\n',
    );
    // hello.wasm.ready.js: its image whole, its FUEL counts gone (was a stack trace, exit 1).
    const hello = await real("hello.wasm.ready.js");
    await Deno.writeTextFile(
      `${img}/hello.wasm.ready.js`,
      hello.replace(/export const FUEL = \{[^}]*\};/, "export const FUEL = null;"),
    );
    // sqlite3.wasm.ready.js whole, its text module (the payload) not there.
    await Deno.writeTextFile(`${img}/sqlite3.wasm.ready.js`, await real("sqlite3.wasm.ready.js"));
    // netd.wasm.ready.js: not there. A test guest's module, imported through a variable.
    await Deno.copyFile(
      `${ROOT_PATH}/guests/images/test-exit.wasm.ready.js`,
      `${img}/test-exit.wasm.ready.js`,
    );
    const flags = ["--allow-read", "--allow-write", "--allow-ffi"];
    const [h, l, s, d, n, t, tr, q] = await Promise.all([
      run(dir, flags, ["run", "hello"]),
      run(dir, flags, ["run", "lua", "--", "-e", "print(1)"]),
      run(dir, flags, ["run", "shell"]),
      run(dir, flags, ["run", "disktest"]),
      run(dir, flags, ["run", "netd"]),
      run(dir, [], ["run", "test-exit"]),
      run(dir, ["--allow-read"], ["run", "test-exit", "--", "3"]),
      run(dir, flags, ["run", "sqlite3"]),
    ]);
    const rebuild = ": 'deno task guests' writes it again\n$";
    const expect: [typeof l, RegExp][] = [
      [
        h,
        new RegExp(
          `^lguest: built-in image hello\\.wasm: its module guests/images/hello\\.wasm\\.ready\\.js is damaged \\(no FUEL counts\\)${rebuild}`,
        ),
      ],
      [
        l,
        new RegExp(
          `^lguest: built-in image lua\\.wasm: its module guests/images/lua\\.wasm\\.ready\\.js is damaged \\(.+\\)${rebuild}`,
        ),
      ],
      [
        s,
        new RegExp(
          `^lguest: built-in image shell\\.wasm: its payload guests/images/shell\\.wasm\\.ready\\.b64 is damaged \\(.*base64.*\\)${rebuild}`,
        ),
      ],
      [
        d,
        new RegExp(
          `^lguest: built-in image disktest\\.wasm: its module guests/images/disktest\\.wasm\\.ready\\.js is damaged \\(brotli decompression failed\\)${rebuild}`,
        ),
      ],
      [
        n,
        /^lguest: built-in image netd\.wasm: its module guests\/images\/netd\.wasm\.ready\.js is missing \(a damaged checkout or build: 'deno task guests' writes it again\)\n$/,
      ],
      [
        q,
        /^lguest: built-in image sqlite3\.wasm: its module guests\/images\/sqlite3\.wasm\.ready\.js is missing its payload guests\/images\/sqlite3\.wasm\.ready\.b64 \(a damaged checkout or build: 'deno task guests' writes it again\)\n$/,
      ],
      [
        t,
        /^lguest: built-in image test-exit\.wasm: its module guests\/images\/test-exit\.wasm\.ready\.js needs Deno's --allow-read permission \(read access to .*\): run with 'deno run --allow-read \.\.\.'.*\n$/,
      ],
    ];
    for (const [r, re] of expect) {
      assert.equal(r.code, EXIT.USAGE, r.stderr);
      assert.ok(!hasStackTrace(r.stderr), r.stderr);
      assert.match(r.stderr, re);
    }
    assert.equal(tr.code, 3, tr.stderr); // with --allow-read, the test guest runs
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("guests --check: a module with bad base64 or a damaged brotli stream holds no image (listed as differing, no throw)", async () => {
  const bytes = new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]);
  const good = `export const BASE64 =\n  "${bytes.toBase64()}";\n`;
  assert.deepEqual(await embeddedPayload(good), bytes);
  assert.equal(await embeddedPayload(good.replace("AGFz", "AG!z")), null); // not even a module's text
  assert.equal(await embeddedPayload(`export const BASE64 =\n  "AG=z";\n`), null); // "=" inside
  assert.equal(
    await embeddedPayload(`export const BROTLI = true;\nexport const BASE64 =\n  "H6gjERWs";\n`),
    null,
  );
});

Deno.test("a payload that decodes but is not the build's (a changed byte, the BROTLI flag gone, libposix.a damaged): one line naming its file, exit 125", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await copyCode(dir);
    const img = `${dir}/guests/images`;
    const real = (f: string) => Deno.readTextFile(`${ROOT_PATH}/guests/images/${f}`);
    const whole = async (f: string) => await Deno.writeTextFile(`${img}/${f}`, await real(f));
    // shell's payload: valid brotli of its image with one byte changed (brotli has no checksum:
    // before, this ran silently, an image that skipped the build's checks).
    await whole("shell.wasm.ready.js");
    const shell = new Uint8Array(
      await new Response(
        new Blob([Uint8Array.fromBase64(await real("shell.wasm.ready.b64"))]).stream()
          .pipeThrough(new DecompressionStream("brotli")),
      ).arrayBuffer(),
    );
    shell[shell.length >> 1] ^= 1;
    await Deno.writeTextFile(
      `${img}/shell.wasm.ready.b64`,
      new Uint8Array(brotliCompressSync(shell)).toBase64(),
    );
    // sqlite3's payload: brotli of its image with the wasm version byte changed, so that its
    // compile fails at once: the line is still the damaged payload's, not an invalid image.
    await whole("sqlite3.wasm.ready.js");
    const sqlite = new Uint8Array(
      await new Response(
        new Blob([Uint8Array.fromBase64(await real("sqlite3.wasm.ready.b64"))]).stream()
          .pipeThrough(new DecompressionStream("brotli")),
      ).arrayBuffer(),
    );
    sqlite[4] ^= 0x40;
    await Deno.writeTextFile(
      `${img}/sqlite3.wasm.ready.b64`,
      new Uint8Array(brotliCompressSync(sqlite, { params: { [zlib.BROTLI_PARAM_QUALITY]: 1 } }))
        .toBase64(),
    );
    // hello's image is inline, plain base64, four characters gone: its length is checked (its
    // digest is not: an inline payload is code like the module around it; docs/security.md).
    const hello = await real("hello.wasm.ready.js");
    const at = hello.indexOf('"AGFzbQ') + 4000;
    await Deno.writeTextFile(
      `${img}/hello.wasm.ready.js`,
      `${hello.slice(0, at)}${hello.slice(at + 4)}`,
    );
    // lua's module without its BROTLI flag: the brotli stream taken for the image.
    await Deno.writeTextFile(
      `${img}/lua.wasm.ready.js`,
      (await real("lua.wasm.ready.js")).replace(/^export const BROTLI = true;\n/m, ""),
    );
    await whole("lua.wasm.ready.b64");
    // netd's module from a build that wrote no SIZE and SHA256.
    await Deno.writeTextFile(
      `${img}/netd.wasm.ready.js`,
      (await real("netd.wasm.ready.js")).replace(/^export const (SIZE|SHA256) = .*\n/gm, ""),
    );
    // lguest cc's library: its payload with one character changed (a checked run: before,
    // a stack trace and exit 1).
    await whole("libposix.a.ts");
    const lib = await real("libposix.a.b64");
    const mid = lib.length >> 1;
    await Deno.writeTextFile(
      `${img}/libposix.a.b64`,
      `${lib.slice(0, mid)}${lib[mid] === "A" ? "B" : "A"}${lib.slice(mid + 1)}`,
    );
    await Deno.writeTextFile(`${dir}/prog.c`, "int main(void) { return 0; }\n");
    const flags = ["--allow-read", "--allow-write", "--allow-ffi"];
    const [s, q, h, l, n, c] = await Promise.all([
      run(dir, flags, ["run", "shell"]),
      run(dir, flags, ["run", "sqlite3"]),
      run(dir, flags, ["run", "hello"]),
      run(dir, flags, ["run", "lua", "--", "-e", "print(1)"]),
      run(dir, flags, ["run", "netd"]),
      run(dir, [...flags, "--allow-run=clang,clang-14"], ["cc", "-o", "prog.wasm", "prog.c"]),
    ]);
    const rebuild = ": 'deno task guests' writes it again\n$";
    const expect: [typeof s, RegExp][] = [
      [
        q,
        new RegExp(
          `^lguest: built-in image sqlite3\\.wasm: its payload guests/images/sqlite3\\.wasm\\.ready\\.b64 is damaged \\(its SHA-256 is not the one the build wrote\\)${rebuild}`,
        ),
      ],
      [
        s,
        new RegExp(
          `^lguest: built-in image shell\\.wasm: its payload guests/images/shell\\.wasm\\.ready\\.b64 is damaged \\(its SHA-256 is not the one the build wrote\\)${rebuild}`,
        ),
      ],
      [
        h,
        new RegExp(
          `^lguest: built-in image hello\\.wasm: its module guests/images/hello\\.wasm\\.ready\\.js is damaged \\(\\d+ bytes decoded, the build wrote \\d+\\)${rebuild}`,
        ),
      ],
      [
        l,
        new RegExp(
          `^lguest: built-in image lua\\.wasm: its payload guests/images/lua\\.wasm\\.ready\\.b64 is damaged \\(\\d+ bytes decoded, the build wrote \\d+\\)${rebuild}`,
        ),
      ],
      [
        n,
        new RegExp(
          `^lguest: built-in image netd\\.wasm: its module guests/images/netd\\.wasm\\.ready\\.js is damaged \\(no SIZE and SHA256 of its payload\\)${rebuild}`,
        ),
      ],
      [
        c,
        new RegExp(
          `^lguest: cc: libposix\\.a: its payload guests/images/libposix\\.a\\.b64 is damaged \\(.+\\)${rebuild}`,
        ),
      ],
    ];
    for (const [r, re] of expect) {
      assert.equal(r.code, EXIT.USAGE, r.stderr);
      assert.ok(!hasStackTrace(r.stderr), r.stderr);
      assert.match(r.stderr, re);
      // No guest code ran: the digest is checked while the image compiles, before it starts.
      assert.equal(r.stdout, "", r.stderr);
    }
    assert.ok(!(await exists(`${dir}/prog.wasm`)), "nothing was built");
    // Without its payload, cc's library is one line too (was "Module not found", exit 1).
    await Deno.remove(`${img}/libposix.a.b64`);
    const m = await run(dir, [...flags, "--allow-run=clang,clang-14"], ["cc", "prog.c"]);
    assert.equal(m.code, EXIT.USAGE, m.stderr);
    assert.match(
      m.stderr,
      /^lguest: cc: libposix\.a: its module guests\/images\/libposix\.a\.ts is missing its payload guests\/images\/libposix\.a\.b64 \(a damaged checkout or build: 'deno task guests' writes it again\)\n$/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

Deno.test("guests/images/index.ts missing or cut short: one line naming it, exit 125 (was a stack trace, exit 1)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await copyCode(dir);
    const index = `${dir}/guests/images/index.ts`;
    const text = await Deno.readTextFile(index);
    await Deno.writeTextFile(index, text.slice(0, 2000));
    const cut = await run(dir, ["--allow-read"], ["run", "hello"]);
    await Deno.remove(index);
    const gone = await run(dir, ["--allow-read"], ["guests"]);
    for (const r of [cut, gone]) {
      assert.equal(r.code, EXIT.USAGE, r.stderr);
      assert.ok(!hasStackTrace(r.stderr), r.stderr);
    }
    assert.match(
      cut.stderr,
      /^lguest: guests\/images\/index\.ts is damaged \(SyntaxError: .+\): 'deno task guests' writes it again\n$/,
    );
    assert.equal(
      gone.stderr,
      "lguest: guests/images/index.ts is missing: 'deno task guests' writes it again\n",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
