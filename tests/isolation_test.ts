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
import {
  type Device,
  type DeviceContext,
  registerDevice,
  UsageError,
} from "../devices/registry.ts";
import { LGUEST_DEVICE_T_BLOCK } from "../abi/constants.ts";
import { runGuest } from "../launcher/api.ts";
import { compileImage, ImageError, preemptionOf } from "../engines/wasm.ts";
import { promising, suspending } from "../engines/jspi.ts";
import { FUEL, instrumentFuel } from "../engines/wasm_fuel.ts";
import { checkProfile, LIMITS } from "../engines/wasm_profile.ts";
import { CRASH, guestImage } from "./helpers/guest_asm.ts";
import { type GuestConf, lanPair, RssSampler } from "./helpers/resources.ts";
import { fuzzImages } from "../fuzz/images.ts";
import { loadImage } from "../launcher/images.ts";
import { LDFLAGS } from "../guests/build.ts";
import { F32, f32, F64, f64, I32, i32, I64, i64, sectionsOf, uleb } from "./helpers/wasm_asm.ts";

const V128 = 0x7b;

/** Does `s` hold a C0 control character or DEL? */
function hasControl(s: string): boolean {
  return [...s].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f);
}
import {
  assertUsageError,
  describe,
  hasStackTrace,
  LGUEST_CMD,
  lines,
  ROOT_PATH,
  runCli,
  spawnCli,
} from "./helpers/run_cli.ts";
import { JSON_STALL_MS } from "../launcher/runner.ts";

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
        if (refused) assertUsageError(r, `--block ${img}: in use by another lguest (locked`);
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

// ---- the guest-image profile -----------------------------------------------------

/** A section as [id, content]; `build` makes a module of such a list. */
type Section = [number, number[] | Uint8Array];

function build(sections: Section[]): Uint8Array {
  return new Uint8Array([
    0x00,
    0x61,
    0x73,
    0x6d,
    1,
    0,
    0,
    0,
    ...sections.flatMap(([id, c]) => [id, ...uleb(c.length), ...c]),
  ]);
}
/** `b` with section `id` replaced by `content` (or inserted before the first later one). */
function withSection(b: Uint8Array, id: number, content: number[]): Uint8Array {
  const order = [1, 2, 3, 4, 5, 13, 6, 7, 8, 9, 12, 10, 11];
  const secs: Section[] = sectionsOf(b).filter(([i]) => i !== id);
  const at = secs.findIndex(([i]) => i !== 0 && order.indexOf(i) > order.indexOf(id));
  secs.splice(at < 0 ? secs.length : at, 0, [id, content]);
  return build(secs);
}
const vec = (items: number[][]) => [...uleb(items.length), ...items.flat()];

/** Hostile images, each outside the profile: [what, image, the refusal it must get]. */
function hostileImages(): [string, Uint8Array, RegExp][] {
  const ok = () => guestImage({ start: CRASH });
  const typeSec = (extra: number[][]) =>
    vec([[0x60, 4, I32, I32, I32, I32, 1, I32], [0x60, 0, 1, I32], [0x60, 0, 0], ...extra]);
  const startOfType = (params: number[], results: number[], body: number[]) =>
    guestImage({
      start: [],
      types: [[params, results]],
      patch: (m) => {
        m.funcs[0] = { type: 3, body };
      },
    });
  return [
    [
      "start(i64)",
      startOfType([I64], [], []),
      /start\(\) has type \(i64\) -> \(\), not \(\) -> \(\)/,
    ],
    ["start(v128)", startOfType([V128], [], []), /start\(\) has type \(v128\) -> \(\)/],
    ["start() -> i32", startOfType([], [I32], i32(0)), /start\(\) has type \(\) -> \(i32\)/],
    [
      "its own memory",
      guestImage({ start: CRASH, patch: (m) => void (m.memory = { min: 1 }) }),
      /defines its own memory/,
    ],
    [
      "a GC struct type",
      withSection(ok(), 1, typeSec([[0x5f, 1, I32, 1]])),
      /type 3: form 0x5f \(GC and other non-function types/,
    ],
    [
      "a GC rec group",
      withSection(ok(), 1, typeSec([[0x4e, 1, 0x60, 0, 0]])),
      /form 0x4e/,
    ],
    [
      "a start section",
      guestImage({ start: CRASH, patch: (m) => void (m.start = 3) }),
      /start section/,
    ],
    [
      "an import in the table (a hypercall through call_indirect would pay no fuel)",
      guestImage({
        start: CRASH,
        patch: (m) => {
          m.table = 1;
          m.elems = [{ offset: 0, funcs: [0] }];
        },
      }),
      /an element entry names imported function 0 \(imports are called directly/,
    ],
    [
      "another import",
      guestImage({
        start: CRASH,
        patch: (m) => void m.imports!.push({ module: "env", name: "bogus", func: 2 }),
      }),
      /imports env\.bogus, which the lguest guest ABI does not provide/,
    ],
    [
      "a WASI import (a program built without lguest cc)",
      guestImage({
        start: CRASH,
        patch: (m) =>
          void m.imports!.push({ module: "wasi_snapshot_preview1", name: "proc_exit", func: 2 }),
      }),
      /imports wasi_snapshot_preview1\.proc_exit, .* \(a WASI program\? build it with 'lguest cc'\)/,
    ],
    [
      "hcall of another type",
      guestImage({ start: [], patch: (m) => void ((m.imports![0] as { func: number }).func = 2) }),
      /env\.hcall has type \(\) -> \(\), not \(i32, i32, i32, i32\) -> \(i32\)/,
    ],
    [
      "rdtsc of another type",
      guestImage({
        start: CRASH,
        patch: (m) => void m.imports!.push({ module: "env", name: "rdtsc", func: 1 }),
      }),
      /env\.rdtsc has type \(\) -> \(i32\), not \(\) -> \(i64\)/,
    ],
    [
      "wait imported twice",
      guestImage({
        start: CRASH,
        patch: (m) => void m.imports!.push({ module: "env", name: "wait", func: 2 }),
      }),
      /imports env\.wait twice/,
    ],
    [
      "no wait",
      guestImage({ start: [], patch: (m) => void m.imports!.splice(2, 1) }),
      /does not import env\.wait|does not exist/,
    ],
    [
      "a shared memory",
      guestImage({
        start: CRASH,
        patch: (m) => void ((m.imports![3] as { memory: { max?: number } }).memory.max = 17),
      }).map((x, i, a) => (i > 8 && a[i - 1] === 2 && a[i - 2] === 0x79 ? 3 : x)), // flags 1 -> 3
      /limits flags 0x3 \(shared or 64-bit memory/,
    ],
    [
      "a table of 65 537 entries",
      guestImage({ start: CRASH, patch: (m) => void (m.table = 65_537) }),
      /a table of 65537 entries \(the profile allows 65536\)/,
    ],
    ["an externref table", withSection(ok(), 4, vec([[0x6f, 0, 1]])), /a table of type 0x6f/],
    ["two tables", withSection(ok(), 4, vec([[0x70, 0, 1], [0x70, 0, 1]])), /2 tables/],
    [
      "1025 globals",
      guestImage({
        start: CRASH,
        patch: (m) =>
          void (m.globals = Array.from({ length: 1025 }, () => ({ type: I32, init: i32(0) }))),
      }),
      /1025 globals \(the profile allows 1024\)/,
    ],
    [
      "an extended-const global",
      withSection(ok(), 6, vec([[I32, 0, ...i32(1), ...i32(2), 0x6a, 0x0b]])),
      /global 0: initializer is not a single constant/,
    ],
    [
      "a funcref global",
      withSection(ok(), 6, vec([[0x70, 0, 0xd0, 0x70, 0x0b]])),
      /global 0: value type 0x70/,
    ],
    [
      "a second export",
      guestImage({ start: CRASH, patch: (m) => void m.exports!.push({ name: "x", func: 3 }) }),
      /2 exports \(the profile allows 1\)/,
    ],
    [
      "memory exported as start",
      withSection(ok(), 7, vec([[5, ...new TextEncoder().encode("start"), 2, 0]])),
      /exports 'start' \(kind 2\)/,
    ],
    ["no start", withSection(ok(), 7, vec([])), /does not export a start\(\) function/],
    [
      "a passive element segment",
      withSection(
        guestImage({ start: CRASH, patch: (m) => void (m.table = 1) }),
        9,
        vec([[1, 0, 1, 3]]),
      ),
      /element segment of kind 1/,
    ],
    [
      "a data segment for memory 1",
      withSection(ok(), 11, vec([[2, 1, ...i32(0), 0x0b, 1, 0]])),
      /data segment 0: kind 2/,
    ],
    [
      "4097 types",
      withSection(ok(), 1, [...uleb(4097), ...new Array(4097).fill([0x60, 0, 0]).flat()]),
      /4097 types/,
    ],
    [
      "65 parameters",
      withSection(ok(), 1, typeSec([[0x60, 65, ...new Array(65).fill(I32), 0]])),
      /65 parameters/,
    ],
    [
      "a function section claiming 4 billion functions",
      withSection(ok(), 3, [...uleb(0xffffffff)]),
      /4294967295 functions \(the profile allows 50000\)/,
    ],
    [
      "50 001 locals",
      guestImage({
        start: CRASH,
        locals: [...new Array(25_000).fill(I32), ...new Array(25_001).fill(I64)],
      }),
      /more than 50000 locals/,
    ],
    [
      "a body over the limit",
      guestImage({ start: [...new Array(LIMITS.bodyBytes).fill(0x01), ...CRASH] }),
      new RegExp(`a body of \\d+ bytes \\(the profile allows ${LIMITS.bodyBytes}\\)`),
    ],
    [
      "code over the limit",
      guestImage({
        start: CRASH,
        funcs: Array.from({ length: LIMITS.codeBytes / LIMITS.bodyBytes + 1 }, () => ({
          type: 2,
          body: new Array(LIMITS.bodyBytes - 8).fill(0x01),
        })),
      }),
      new RegExp(`bytes of code \\(the profile allows ${LIMITS.codeBytes}\\)`),
    ],
    [
      "a tag with results",
      guestImage({ start: CRASH, patch: (m) => void (m.tags = [1]) }),
      /exception tag of type 1/,
    ],
    [
      "section id 14",
      build([...sectionsOf(ok()), [14, [0]]]),
      /section id 14 is not in the profile/,
    ],
    [
      // Invalid as written, valid after the instrumentation appends $fuel:
      // the guest would refill its own fuel and never be preempted.
      "global.set of the global the instrumentation appends",
      guestImage({ start: [...i32(0x7fffffff), 0x24, 0x00, ...CRASH] }),
      /invalid WebAssembly image: .*global/,
    ],
    [
      "a call of the function the instrumentation appends",
      guestImage({ start: [...i32(1 << 30), 0x10, 0x04, 0x1a, ...CRASH] }),
      /invalid WebAssembly image: .*function/,
    ],
    ["ref.func", guestImage({ start: [0xd2, 3, 0x1a, ...CRASH] }), /opcode 0xd2/],
    ["GC instruction", guestImage({ start: [0xfb, 0x00, 0, ...CRASH] }), /opcode 0xfb/],
    [
      "atomics",
      guestImage({ start: [...i32(0), 0xfe, 0x10, 2, 0, 0x1a, ...CRASH] }),
      /opcode 0xfe/,
    ],
    [
      "relaxed SIMD",
      guestImage({ start: [0xfd, 0x80, 0x02, ...CRASH] }),
      /SIMD instruction 0xfd 256/,
    ],
    ["exnref try_table", guestImage({ start: [0x1f, 0x40, 0, 0x0b, ...CRASH] }), /opcode 0x1f/],
    [
      "header + 10 MB of zeros",
      new Uint8Array(10 << 20).map((_, i) => i < 8 ? [0, 0x61, 0x73, 0x6d, 1, 0, 0, 0][i] : 0),
      /invalid WebAssembly image: unexpected end/,
    ],
    [
      "wasm version 2",
      new Uint8Array([0, 0x61, 0x73, 0x6d, 2, 0, 0, 0]),
      /not a WebAssembly version 1 module/,
    ],
    [
      "a section past the end",
      build([[1, [1, 0x60, 0, 0]]]).map((x, i) => i === 9 ? 0x7f : x),
      /runs past end of the module/,
    ],
  ];
}

Deno.test("profile: hostile images are refused with one printable line before V8 compiles them", async () => {
  for (const [what, bytes, want] of hostileImages()) {
    let err: unknown;
    try {
      await compileImage(bytes, what);
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof ImageError, `${what}: expected an ImageError, got ${err}`);
    assert.match(err.message, want, `${what}: ${JSON.stringify(err.message)}`);
    assert.ok(
      !hasControl(err.message),
      `${what}: control characters in ${err.message}`,
    );
    assert.ok(err.message.length < 600, what);
  }
});

Deno.test("profile: the checks a refusal needs are bounded (a 4-billion count costs nothing)", () => {
  const huge = withSection(guestImage({ start: CRASH }), 3, [...uleb(0xffffffff)]);
  const t = performance.now();
  for (let i = 0; i < 100; i++) assert.throws(() => checkProfile(huge, "huge"), ImageError);
  assert.ok(performance.now() - t < 1000);
});

Deno.test("profile: images at the limits are accepted and run", async () => {
  const atLimits = guestImage({
    start: CRASH,
    locals: new Array(LIMITS.locals).fill(I32),
    types: [[new Array(LIMITS.arity).fill(I32), new Array(LIMITS.arity).fill(I64)]],
    funcs: [{ type: 3, body: [...new Array(LIMITS.arity).fill(0).flatMap(() => i64(0n))] }],
    patch: (m) => {
      m.table = LIMITS.tableEntries;
      m.globals = Array.from({ length: LIMITS.globals }, (_, k) => ({
        type: [I32, I64, F32, F64][k % 4],
        mutable: k % 2 === 0,
        init: [i32(k), i64(BigInt(k)), f32(k), f64(k)][k % 4],
      }));
      m.tags = [2];
      m.elems = [{ offset: 0, funcs: new Array(LIMITS.tableEntries).fill(3) }];
      m.imports!.push({ module: "env", name: "rdtsc", func: 3 });
      m.types.push([[], [I64]]);
      (m.imports![4] as { func: number }).func = 4;
      // rdtsc is function 3 now: start is 4, the other function 5.
      m.exports = [{ name: "start", func: 4 }];
      m.elems[0].funcs.fill(4);
    },
  });
  const info = checkProfile(atLimits, "limits");
  assert.equal(info.tableEntries, LIMITS.tableEntries);
  assert.equal(info.globals, LIMITS.globals);
  assert.ok(info.rdtsc);
  await compileImage(atLimits, "limits");
  // A body of exactly the limit.
  const big = guestImage({ start: CRASH });
  const pad = LIMITS.bodyBytes - sectionsOf(big).find(([id]) => id === 10)![1].length + 2 - 8;
  const body = guestImage({ start: [...new Array(pad).fill(0x01), ...CRASH] });
  const code = sectionsOf(body).find(([id]) => id === 10)![1];
  assert.ok(code.length - 5 <= LIMITS.bodyBytes, `${code.length}`);
  await compileImage(body, "big body");
});

Deno.test("profile: a refused image in --config refuses the whole run before any guest starts", () =>
  withTempDir(async (dir) => {
    const bad = `${dir}/bad.wasm`;
    await Deno.writeFile(
      bad,
      guestImage({ start: [], types: [[[I64], []]], patch: (m) => void (m.funcs[0].type = 3) }),
    );
    const config = `${dir}/c.json`;
    await Deno.writeTextFile(
      config,
      JSON.stringify({
        guests: [{ name: "good", image: "hello", console: "stdio" }, { name: "evil", image: bad }],
      }),
    );
    assertUsageError(
      await runCli(["run", "--config", config]),
      /^lguest: evil: bad: start\(\) has type \(i64\) -> \(\)/,
    );
    assertUsageError(
      await runCli(["run", bad]),
      /^lguest: bad: start\(\) has type \(i64\) -> \(\)/,
    );
  }));

// ---- guest text is data --------------------------------------------------------------

Deno.test("guest text: a CRASH message with newlines and escapes is one escaped, bounded line", () =>
  withTempDir(async (dir) => {
    const evil = `${dir}/evil.wasm`;
    const message = "boom\n\x1b]0;pwned\x07lguest: other: forged\r\x1b[2J" + "x".repeat(100);
    await Deno.writeFile(evil, guestImage({ start: CRASH, message }));
    const r = await runCli(["run", evil]);
    assert.equal(r.code, EXIT.GUEST_FAILED, describe(r));
    const err = lines(r.stderr);
    assert.equal(err.length, 1, describe(r));
    assert.ok(!hasControl(r.stderr.slice(0, -1)), describe(r));
    assert.ok(
      err[0].startsWith(
        "lguest: evil: CRASH: boom\\n\\e]0;pwned\\x07lguest: other: forged\\r\\e[2J",
      ),
      describe(r),
    );
  }));

Deno.test("guest text: a file name with control characters is shown escaped", () =>
  withTempDir(async (dir) => {
    const name = `${dir}/two\nlines\x1b[31m.wasm`;
    await Deno.writeFile(name, new TextEncoder().encode("not wasm"));
    const r = await runCli(["run", name]);
    assertUsageError(r, "two\\nlines\\e[31m: not a WebAssembly guest image (bad magic)");
    const missing = await runCli(["run", `${dir}/no\x07pe.wasm`]);
    assertUsageError(missing, "no\\x07pe.wasm: no such file");
    // A valid image: its name (from the file name) starts every line of the run.
    const forged = `${dir}/x\x1b]0;pwn\x07\nlguest: forged\u202e.wasm`;
    await Deno.writeFile(forged, guestImage({ start: CRASH, message: "boom" }));
    const run = await runCli(["run", "-v", forged]);
    assert.equal(run.code, EXIT.GUEST_FAILED, describe(run));
    assert.ok(!hasControl(run.stderr.replaceAll("\n", "")), describe(run));
    assert.ok(!run.stderr.includes("\u202e"), describe(run));
    for (const line of lines(run.stderr)) {
      assert.ok(line.startsWith("lguest: x\\e]0;pwn\\x07\\nlguest: forged\\u202e: "), line);
    }
  }));

/** Make a FIFO at `path`; false when mkfifo failed (the caller says what it skips). */
async function mkfifo(path: string): Promise<boolean> {
  return (await new Deno.Command("mkfifo", { args: [path] }).output()).success;
}

// ---- input files are checked before they are read -----------------------------------

Deno.test("input files: FIFOs and devices are refused without blocking; sizes are bounded", () =>
  withTempDir(async (dir) => {
    const fifo = `${dir}/fifo`;
    const made = await mkfifo(fifo);
    const zeros = `${dir}/zeros.wasm`;
    await Deno.writeFile(
      zeros,
      new Uint8Array((16 << 20) + 1).map((_, i) =>
        i < 8 ? [0, 0x61, 0x73, 0x6d, 1, 0, 0, 0][i] : 0
      ),
    );
    const bigConfig = `${dir}/big.json`;
    await Deno.writeTextFile(bigConfig, " ".repeat((1 << 20) + 1) + "{}");
    const deep = `${dir}/deep.json`;
    await Deno.writeTextFile(deep, `{"guests":${"[".repeat(10_000)}${"]".repeat(10_000)}}`);
    const cases: [string[], RegExp | string][] = [
      [["run", "/dev/zero"], "/dev/zero: is a device, not a guest image"],
      [["run", "/dev/urandom"], "/dev/urandom: is a device, not a guest image"],
      [["run", "--config", "/dev/zero"], "/dev/zero: is a device, not a config file"],
      [["run", zeros], `${zeros}: guest image larger than 16 MiB`],
      [["run", "--config", bigConfig], `${bigConfig}: config file larger than 1 MiB`],
      [["run", "--config", deep], `${deep}: line 1: values nested more than 32 deep`],
    ];
    if (made) {
      cases.push([["run", fifo], `${fifo}: is a FIFO, not a guest image`]);
      cases.push([["run", "--config", fifo], `${fifo}: is a FIFO, not a config file`]);
    } else console.log("FIFO rows skipped: mkfifo failed");
    const results = await Promise.all(cases.map(([args]) => runCli(args, { killAfterMs: 10_000 })));
    results.forEach((r, i) => {
      assert.ok(!r.killed, `hung: ${describe(r)}`);
      assertUsageError(r, cases[i][1]);
    });
  }));

// ---- preemption by construction ---------------------------------------------------------

/** Spinners that never make a hypercall after LGUEST_INIT, one per class (C recursion is a built-in test guest). */
function spinners(): Record<string, Uint8Array> {
  return {
    // return_call to itself: no loop anywhere, the stack never grows.
    tail: guestImage({ start: [0x10, 4], funcs: [{ type: 2, body: [0x12, 4] }] }),
    // A loop whose every iteration fills 8 MiB and copies 4 MiB: 100 000 iterations would be minutes.
    bulk: guestImage({
      start: [
        0x03,
        0x40,
        ...i32(0x200000),
        ...i32(0xaa),
        ...i32(8 << 20),
        0xfc,
        11,
        0,
        ...i32(0x200000),
        ...i32(0xa00000),
        ...i32(4 << 20),
        0xfc,
        10,
        0,
        0,
        0x0c,
        0,
        0x0b,
      ],
    }),
    // A SIMD loop (before the profile, SIMD made an image run uninstrumented).
    simd: guestImage({
      locals: [V128],
      start: [0x03, 0x40, 0x20, 0, 0x20, 0, 0xfd, 0xae, 0x01, 0x21, 0, 0x0c, 0, 0x0b],
    }),
    // Mutual recursion through call_indirect, 40 deep and binary: no loop.
    indirect: guestImage({
      start: [...i32(40), 0x10, 4],
      types: [[[I32], []]],
      funcs: [{
        type: 3,
        // if n: call_indirect(n-1) twice through table slot 0 (this function)
        body: [
          0x20,
          0,
          0x04,
          0x40,
          0x20,
          0,
          ...i32(1),
          0x6b,
          ...i32(0),
          0x11,
          3,
          0,
          0x20,
          0,
          ...i32(1),
          0x6b,
          ...i32(0),
          0x11,
          3,
          0,
          0x0b,
        ],
      }],
      patch: (m) => {
        m.table = 1;
        m.elems = [{ offset: 0, funcs: [4] }];
      },
    }),
  };
}

Deno.test("preemption: every class of spinner reaches a fuel check (in process)", async () => {
  for (const [what, bytes] of Object.entries(spinners())) {
    const mod = await compileImage(bytes, what);
    const p = preemptionOf(mod);
    assert.ok(!("error" in p), what);
    let waits = 0;
    const memory = new WebAssembly.Memory({ initial: 256, maximum: 256 });
    const inst = new WebAssembly.Instance(mod, {
      env: {
        memory,
        hcall: () => 0,
        event: () => 0,
        wait: suspending(() => {
          if (++waits >= 3) throw new Error("stop");
        }),
      },
    });
    const t = performance.now();
    await assert.rejects(
      promising(inst.exports.start as () => unknown)() as Promise<unknown>,
      /stop/,
      what,
    );
    assert.equal(waits, 3, what);
    assert.ok(performance.now() - t < 10_000, `${what}: ${performance.now() - t} ms`);
  }
});

Deno.test("preemption: a loop calling a small call-free function pays for every call", async () => {
  // f: mem[0x200000] += 1 (no call, no loop, 20 bytes); start: loop { call f × 30 }.
  // When small call-free functions ran unmetered, one 64-byte iteration (1 unit) ran f 30
  // times: ~1.5 million calls before the first look instead of at most FUEL, and with f a
  // 240-byte pointer chase through RAM a look came every tens of seconds.
  const counter = 0x200000;
  const f = [...i32(counter), ...i32(counter), 0x28, 2, 0, ...i32(1), 0x6a, 0x36, 2, 0];
  const calls = new Array(30).fill([0x10, 4]).flat();
  const bytes = guestImage({
    start: [0x03, 0x40, ...calls, 0x0c, 0, 0x0b],
    funcs: [{ type: 2, body: f }],
  });
  const mod = await compileImage(bytes, "leafcalls");
  const memory = new WebAssembly.Memory({ initial: 256, maximum: 256 });
  let atFirstLook = -1;
  const inst = new WebAssembly.Instance(mod, {
    env: {
      memory,
      hcall: () => 0,
      event: () => 0,
      wait: suspending(() => {
        atFirstLook = new DataView(memory.buffer).getUint32(counter, true);
        throw new Error("stop");
      }),
    },
  });
  await assert.rejects(
    promising(inst.exports.start as () => unknown)() as Promise<unknown>,
    /stop/,
  );
  assert.ok(atFirstLook > 0, "f never ran");
  assert.ok(
    atFirstLook <= FUEL,
    `${atFirstLook} calls of f before the first look (at most ${FUEL})`,
  );
});

Deno.test("preemption: a neighbour's pings answer within a second while every class spins", () =>
  withTempDir(async (dir) => {
    const guests: GuestConf[] = [
      { name: "recurse", image: "test-hostile-recurse", memory: "16M" },
    ];
    for (const [name, bytes] of Object.entries(spinners())) {
      await Deno.writeFile(`${dir}/${name}.wasm`, bytes);
      guests.push({ name, image: `${dir}/${name}.wasm`, memory: "16M" });
    }
    guests.push(...lanPair());
    await Deno.writeTextFile(`${dir}/c.json`, JSON.stringify({ guests }));
    const p = spawnCli(["run", "-v", "--config", `${dir}/c.json`], {
      stdin: "piped",
      killAfterMs: 60_000,
    });
    try {
      await p.waitFor("[recurse] recursing", 20_000);
      await p.waitFor("lguest$ ", 20_000);
      await p.write("ping 10.0.0.1 3\n");
      await p.waitFor("ping statistics", 30_000);
      await p.waitFor("lguest$ ", 10_000);
      const t = performance.now();
      await p.write("echo marker\n");
      await p.waitFor(/^marker$/m, 5_000);
      const echoMs = performance.now() - t;
      await p.write("poweroff\n");
      const r = await p.result();
      assert.equal(r.code, EXIT.OK, describe(r));
      assert.ok(!hasStackTrace(r.stderr), describe(r));
      const times = [...r.stdout.matchAll(/icmp_seq=\d+ time=([\d.]+) ms/g)].map((m) => +m[1]);
      assert.equal(times.length, 3, describe(r));
      for (const ms of times) assert.ok(ms < 1000, `a ping took ${ms} ms\n${describe(r)}`);
      assert.ok(echoMs < 2000, `echo took ${echoMs} ms`);
      for (const name of ["recurse", ...Object.keys(spinners())]) {
        assert.match(r.stderr, new RegExp(`${name}: preemptible: fuel checks at`), describe(r));
        const died = new RegExp(`^lguest: ${name}: (CRASH|guest |internal|killed)`, "m");
        assert.ok(!died.test(r.stderr), `${name} died\n${describe(r)}`);
      }
    } finally {
      await p.closeStdin().catch(() => {});
      p.kill("SIGKILL");
      await p.result();
    }
  }));

// ---- host errors stay on the host -----------------------------------------------------

Deno.test("pcap: /dev/full, /proc files, FIFOs and devices are one-line refusals", () =>
  withTempDir(async (dir) => {
    const fifo = `${dir}/fifo`;
    const made = await mkfifo(fifo);
    const cases: [string[], string][] = [
      [["run", "--pcap", "/dev/full", "hello"], "pcap /dev/full: not a regular file"],
      [["run", "--pcap", "/dev/null", "hello"], "pcap /dev/null: not a regular file"],
      [["run", "--pcap", "/proc/self/status", "hello"], "pcap /proc/self/status: cannot"],
      [
        ["run", "--net", "segment:lan,pcap=/dev/full", "hello"],
        "pcap /dev/full: not a regular file",
      ],
    ];
    if (made) {
      cases.push([["run", "--pcap", fifo, "hello"], `pcap ${fifo}: not a regular file`]);
    }
    const results = await Promise.all(cases.map(([args]) => runCli(args, { killAfterMs: 10_000 })));
    results.forEach((r, i) => {
      assert.ok(!r.killed, `hung: ${describe(r)}`);
      assertUsageError(r, cases[i][1]);
    });
  }));

Deno.test({
  name: "pcap: a full file system stops the capture with one line; no guest is killed",
  ignore: Deno.uid() !== 0,
  fn: () =>
    withTempDir(async (dir) => {
      const mnt = `${dir}/mnt`;
      await Deno.mkdir(mnt);
      const mount = await new Deno.Command("mount", {
        args: ["-t", "tmpfs", "-o", "size=4k", "tmpfs", mnt],
      }).output();
      if (!mount.success) {
        console.log("skipped: cannot mount a tmpfs here");
        return;
      }
      try {
        const config = `${dir}/lan.json`;
        await Deno.writeTextFile(
          config,
          JSON.stringify({
            guests: [
              { name: "a", image: "netd", net: ["segment:lan"], args: "ip=10.0.0.1/24" },
              {
                name: "b",
                image: "shell",
                net: ["segment:lan"],
                args: "ip=10.0.0.2/24",
                console: "stdio",
              },
            ],
          }),
        );
        const r = await runCli(["run", "--config", config, "--pcap", `${mnt}/cap.pcap`], {
          stdin: "ping 10.0.0.1 4 1000\npoweroff\n",
          killAfterMs: 30_000,
        });
        assert.equal(r.code, EXIT.OK, describe(r));
        assert.match(r.stdout, /4 packets transmitted, 4 received/, describe(r));
        const err = lines(r.stderr);
        assert.equal(err.length, 1, describe(r));
        assert.match(
          err[0],
          /^lguest: pcap .*cap\.pcap: write failed \(ENOSPC\); capture stopped after \d+ frame\(s\), the run goes on$/,
        );
        assert.ok(!hasStackTrace(r.stderr), describe(r));
      } finally {
        await new Deno.Command("umount", { args: [mnt] }).output();
      }
    }),
});

// ---- the host-memory bound ---------------------------------------------------------------

Deno.test("profile: an image at the code limit, every body hot, runs within the memory bound", () =>
  withTempDir(async (dir) => {
    // The costliest shape found for V8 (docs/security.md): bodies of LIMITS.bodyBytes packed with
    // `i32.const 0 if end`, filling the code limit; start calls them all in a loop, so V8 tiers
    // every one of them up.
    const unit = [0x41, 0x00, 0x04, 0x40, 0x0b];
    const n = Math.floor((LIMITS.bodyBytes - 64) / unit.length);
    const count = Math.floor(LIMITS.codeBytes / LIMITS.bodyBytes);
    const body: number[] = [];
    for (let k = 0; k < n; k++) body.push(...unit);
    const calls: number[] = [];
    for (let k = 0; k < count - 1; k++) calls.push(0x10, 4 + k);
    const start = [0x03, 0x40, ...calls, ...body.slice(0, (n - 40) * unit.length), 0x0c, 0, 0x0b];
    const img = guestImage({
      start,
      funcs: Array.from({ length: count - 1 }, () => ({ type: 2, body })),
    });
    const code = sectionsOf(img).find(([id]) => id === 10)![1].length;
    assert.ok(code > LIMITS.codeBytes - (64 << 10) && code <= LIMITS.codeBytes, `${code}`);
    await Deno.writeFile(`${dir}/big.wasm`, img);
    const p = spawnCli(["run", "-m", "16M", "--timeout", "4", `${dir}/big.wasm`], {
      killAfterMs: 30_000,
    });
    const sampler = new RssSampler(p.child.pid, 100);
    const r = await p.result();
    const samples = await sampler.stop();
    assert.equal(r.code, EXIT.TIMEOUT, describe(r));
    const peakMiB = Math.max(...samples.map((s) => s.kib)) / 1024;
    // docs/security.md "The image is hostile input": measured about 300 MiB, launcher included.
    assert.ok(peakMiB < 500, `peak RSS ${peakMiB.toFixed(0)} MiB`);
    console.log(`code limit image: peak RSS ${peakMiB.toFixed(0)} MiB (${samples.length} samples)`);
  }));

Deno.test("fuel: a body packed with loops beyond one check per 64 bytes is refused", async () => {
  // `loop i32.const 0 br_if 0 end`: 7 bytes, each a real loop needing a check of ~20 bytes.
  const dense = guestImage({
    start: [...new Array(200).fill([0x03, 0x40, 0x41, 0x00, 0x0d, 0x00, 0x0b]).flat(), ...CRASH],
  });
  await assert.rejects(
    compileImage(dense, "dense"),
    /dense: function 3: 201 fuel checks in \d+ bytes \(loops, bulk memory instructions or memory.grow closer than one per 64 bytes\)/,
  );
  // The same loops spaced by 64 bytes of other code are fine.
  const pad = new Array(19).fill([0x41, 0x00, 0x1a]).flat();
  const spaced = guestImage({
    start: [
      ...new Array(200).fill([0x03, 0x40, 0x41, 0x00, 0x0d, 0x00, 0x0b, ...pad]).flat(),
      ...CRASH,
    ],
  });
  assert.equal(
    (preemptionOf(await compileImage(spaced, "spaced")) as { loops: number }).loops,
    200,
  );
});

// ---- setjmp/longjmp as clang 14 emits it (legacy exception handling) ---------------------

const SJLJ_C = `
typedef unsigned int u32;
typedef long jmp_buf[8];
int setjmp(jmp_buf);
void longjmp(jmp_buf, int) __attribute__((noreturn));
__attribute__((import_module("env"), import_name("hcall"))) int hcall(int, int, int, int);
__attribute__((import_module("env"), import_name("event"))) int event(void);
__attribute__((import_module("env"), import_name("wait"))) void wait_(void);
static jmp_buf jb;
static volatile int depth_sum;
static void deep(int k, int v) { if (k == 0) longjmp(jb, v); deep(k - 1, v); depth_sum++; }
__attribute__((export_name("start"))) void start(void) {
  int sum = 0;
  for (int i = 1; i <= 1000; i++) {
    int r = setjmp(jb);
    if (r == 0) deep(i % 20, i);
    sum += r;
  }
  if (depth_sum) { event(); wait_(); }
  hcall(2, sum, 0, 0);
}
`;

/** The runtime clang 14's -wasm-enable-sjlj expects (as emscripten's, reduced); its own file. */
const SJLJ_RT_C = `
typedef unsigned int u32;
typedef long jmp_buf[8];
int setjmp(jmp_buf);
/* A setjmp here makes the pass define the __c_longjmp tag that __builtin_wasm_throw names. */
static jmp_buf tag_user;
int sjlj_rt_tag(void);
int sjlj_rt_tag(void) { return setjmp(tag_user); }
typedef struct { u32 id, label; } TableEntry;
static u32 tempRet0, setjmpId;
static char heap[1 << 16];
static u32 hp;
void *malloc(unsigned long n) { void *p = heap + hp; hp += (n + 7) & ~7u; return p; }
void free(void *p) { (void)p; }
u32 getTempRet0(void) { return tempRet0; }
TableEntry *saveSetjmp(u32 *env, u32 label, TableEntry *table, u32 size) {
  setjmpId++; *env = setjmpId;
  for (u32 i = 0; i < size; i++)
    if (table[i].id == 0) { table[i].id = setjmpId; table[i].label = label; table[i + 1].id = 0; tempRet0 = size; return table; }
  TableEntry *t = malloc(sizeof(TableEntry) * (2 * size + 1));
  for (u32 i = 0; i < size; i++) t[i] = table[i];
  t = saveSetjmp(env, label, t, 2 * size); tempRet0 = 2 * size; return t;
}
u32 testSetjmp(u32 id, TableEntry *table, u32 size) {
  for (u32 i = 0; i < size && table[i].id; i++) if (table[i].id == id) return table[i].label;
  return 0;
}
struct Args { void *env; int val; };
static struct Args args;
void __wasm_longjmp(void *env, int val) { args.env = env; args.val = val; __builtin_wasm_throw(1, &args); }
`;

Deno.test("profile: setjmp/longjmp built by clang 14 (-mllvm -wasm-enable-sjlj) is accepted and runs the same instrumented", () =>
  withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/sjlj.c`, SJLJ_C);
    await Deno.writeTextFile(`${dir}/rt.c`, SJLJ_RT_C);
    const cc = async (args: string[]) => {
      try {
        return await new Deno.Command(args[0], { args: args.slice(1), stderr: "piped" }).output();
      } catch {
        return null;
      }
    };
    // (clang 14 crashes on the runtime and its user in one file: two files, as emscripten has.)
    let c: Deno.CommandOutput | null = null;
    for (const [src, eh] of [["sjlj", false], ["rt", true]] as const) {
      c = await cc([
        "clang",
        "--target=wasm32",
        "-O2",
        "-mllvm",
        "-wasm-enable-sjlj",
        ...(eh ? ["-mexception-handling"] : []),
        "-c",
        `${dir}/${src}.c`,
        "-o",
        `${dir}/${src}.o`,
      ]);
      if (c === null || !c.success) break;
    }
    if (c === null || !c.success) {
      console.log(
        `skipped: clang cannot build wasm32 sjlj here (${
          c
            ? `exit ${c.code}: ${new TextDecoder().decode(c.stderr).trim().slice(0, 300)}`
            : "no clang"
        })`,
      );
      return;
    }
    const l = await cc([
      "wasm-ld",
      ...LDFLAGS,
      `${dir}/sjlj.o`,
      `${dir}/rt.o`,
      "-o",
      `${dir}/sjlj.wasm`,
    ]);
    if (l === null || !l.success) {
      console.log("skipped: wasm-ld failed or is missing");
      return;
    }
    const bytes = await Deno.readFile(`${dir}/sjlj.wasm`);
    const ids = sectionsOf(bytes).map(([id]) => id);
    assert.ok(ids.includes(13), "clang emitted a tag section");
    const info = checkProfile(bytes, "sjlj");
    assert.ok(info.functions > 0);
    const expect = Array.from({ length: 1000 }, (_, i) => i + 1).reduce((a, b) => a + b, 0);
    const run = async (mod: WebAssembly.Module) => {
      let result = -1, waits = 0;
      const inst = new WebAssembly.Instance(mod, {
        env: {
          memory: new WebAssembly.Memory({ initial: 32, maximum: 32 }),
          hcall: (_eax: number, edx: number) => {
            result = edx;
            throw new Error("done");
          },
          event: () => 0,
          wait: suspending(() => void waits++),
        },
      });
      await assert.rejects(
        promising(inst.exports.start as () => unknown)() as Promise<unknown>,
        /done/,
      );
      return { result, waits };
    };
    const plain = await run(new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>));
    const fuel = instrumentFuel(bytes, { fuel: 7 });
    assert.ok(!("error" in fuel), JSON.stringify(fuel));
    const checked = await run(new WebAssembly.Module(fuel.bytes as Uint8Array<ArrayBuffer>));
    assert.equal(plain.result, expect);
    assert.equal(checked.result, expect);
    assert.ok(checked.waits > 100, `${checked.waits} fuel looks`);
    await compileImage(bytes, "sjlj"); // and through the engine's front door
  }));

// ---- the image fuzzer ------------------------------------------------------------------------

Deno.test("image fuzzer: mutated images are refused with one line or run instrumented, never anything else", async () => {
  const seeds = [
    (await loadImage("hello")).bytes,
    (await loadImage("test-hostile-recurse")).bytes,
    ...Object.values(spinners()),
    guestImage({ start: CRASH, patch: (m) => void (m.tags = [2]) }),
  ];
  const r = await fuzzImages(seeds, 600, 20261129);
  assert.deepEqual(r.violations, []);
  assert.ok(r.refused > 100 && r.compiled > 10, JSON.stringify(r));
  console.log(
    `image fuzzer: ${r.images} images, ${r.refused} refused, ${r.compiled} compiled, 0 violations`,
  );
});

Deno.test("--json: a FIFO without a reader is refused without blocking; with one, it gets the report", () =>
  withTempDir(async (dir) => {
    const fifo = `${dir}/fifo`;
    const made = await mkfifo(fifo);
    if (!made) {
      console.log("skipped: mkfifo failed");
      return;
    }
    assertUsageError(
      await runCli(["run", "--json", fifo, "hello"], { killAfterMs: 10_000 }),
      `--json ${fifo}: a FIFO without a reader`,
    );
    const reader = new Deno.Command("cat", { args: [fifo], stdout: "piped" }).spawn();
    await new Promise((r) => setTimeout(r, 200)); // cat has the FIFO open
    const r = await runCli(["run", "--json", fifo, "hello"], { killAfterMs: 10_000 });
    assert.equal(r.code, EXIT.OK, describe(r));
    const out = new TextDecoder().decode((await reader.output()).stdout);
    assert.equal(JSON.parse(out).exitCode, EXIT.OK, out);
  }));

Deno.test("--json: a FIFO whose reader takes nothing is given up after JSON_STALL_MS: one line, exit 125", () =>
  withTempDir(async (dir) => {
    // Before: the report's write blocked for ever once the guests had ended.
    const fifo = `${dir}/fifo`;
    const made = await mkfifo(fifo);
    if (!made) {
      console.log("skipped: mkfifo failed");
      return;
    }
    // fd 3 holds the FIFO open for reading (and writing, so the open does not wait) and is filled
    // to its 64 KiB: a reader that never reads.
    const child = new Deno.Command("bash", {
      args: [
        "-c",
        'exec 3<>"$1"; head -c 65536 /dev/zero >&3; shift; "$@"',
        "bash",
        fifo,
        ...LGUEST_CMD,
        "run",
        "--json",
        fifo,
        "hello",
      ],
      cwd: ROOT_PATH,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const kill = setTimeout(() => child.kill("SIGKILL"), 60_000);
    const out = await child.output();
    clearTimeout(kill);
    const err = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, EXIT.USAGE, err);
    assert.equal(
      err,
      `lguest: --json ${fifo}: its reader took nothing for ${JSON_STALL_MS / 1000} s: ` +
        "the report is not written (the run's exit code was 0)\n",
    );
    assert.match(new TextDecoder().decode(out.stdout), /^Hello from an lguest guest!/);
  }));

Deno.test("a dead guest that catches the host's unwinding (catch_all) stops at its next fuel check", () =>
  withTempDir(async (dir) => {
    // L1: loop { try { L2: loop { try { CRASH } catch_all {}; br L2 } } catch_all {}; br L1 }:
    // the CRASH kills it and the host unwinds its stack by throwing through it, but catch_all
    // catches that too — and the fuel check at L2's header, inside the outer try, used to throw
    // the same way: the dead guest spun for ever and held the whole host.
    const evil = guestImage({
      start: [
        ...[0x03, 0x40, 0x06, 0x40, 0x03, 0x40, 0x06, 0x40],
        ...CRASH,
        ...[0x19, 0x0b, 0x0c, 0x00, 0x0b, 0x19, 0x0b, 0x0c, 0x00, 0x0b],
      ],
      message: "caught",
    });
    await Deno.writeFile(`${dir}/evil.wasm`, evil);
    await Deno.writeTextFile(
      `${dir}/c.json`,
      JSON.stringify({
        guests: [
          { name: "evil", image: `${dir}/evil.wasm`, memory: "16M" },
          { name: "b", image: "shell", console: "stdio" },
        ],
      }),
    );
    const r = await runCli(["run", "--config", `${dir}/c.json`], {
      stdin: "echo still here\npoweroff\n",
      killAfterMs: 20_000,
    });
    assert.ok(!r.killed, describe(r));
    assert.equal(r.code, EXIT.OK, describe(r));
    assert.match(r.stdout, /^still here$/m, describe(r));
    assert.match(r.stderr, /^lguest: evil: CRASH: caught$/m, describe(r));
  }));

Deno.test("an exception the guest throws and never catches kills it as a guest fault", () =>
  withTempDir(async (dir) => {
    // throw tag 0 (of type () -> ()) out of start.
    const thrower = guestImage({ start: [0x08, 0], patch: (m) => void (m.tags = [2]) });
    await Deno.writeFile(`${dir}/thrower.wasm`, thrower);
    const r = await runCli(["run", `${dir}/thrower.wasm`]);
    assert.equal(r.code, EXIT.GUEST_FAILED, describe(r));
    assert.deepEqual(lines(r.stderr), [
      "lguest: thrower: guest fault: an exception the guest threw was not caught",
    ]);
  }));

/**
 * Register a test-only block device, option `--NAME-test X`: one page, its requests served by
 * `output`; `init` may fill its page.
 */
function testBlockDevice(
  name: string,
  what: string,
  label: string,
  output: () => number,
  init?: (ctx: DeviceContext, page: number) => void,
): void {
  registerDevice<string>({
    name,
    option: `${name}-test`,
    usage: `    --${name}-test X  (test only) ${what}`,
    parse: (v) => v,
    create: (): Device => {
      let page = 0;
      return {
        type: LGUEST_DEVICE_T_BLOCK,
        features: 0,
        numPages: 1,
        label,
        init(ctx) {
          page = ctx.pageAddr;
          init?.(ctx, page);
        },
        watchKey: () => page,
        output,
      };
    },
  });
}

Deno.test("a device whose backend throws drops the request; the guest is not killed for it", async () => {
  // A disk whose backend fails with an exception on every request (a host bug, a dead backend).
  const PAGE_NUM_SECTORS = 16;
  testBlockDevice("explode", "a disk whose backend throws", "explode: a failing backend", () => {
    throw new Error("backend exploded\n\x1b[2Jforged");
  }, (ctx, page) => ctx.memory.setU32(page + PAGE_NUM_SECTORS, 64));
  const errors: string[] = [];
  const origError = console.error;
  console.error = (...a: unknown[]) => void errors.push(a.join(" "));
  let r;
  try {
    r = await runGuest({
      image: "shell",
      devices: { "explode-test": ["x"] },
      input: "blk write 0 0 hello\necho alive\npoweroff\n",
      timeoutMs: 20_000,
    });
  } finally {
    console.error = origError;
  }
  assert.equal(r.code, EXIT.OK, `${r.reason}\n${r.output}`);
  assert.match(r.output, /^alive$/m);
  assert.deepEqual(errors, [
    "lguest: shell: device 0 (explode: a failing backend) failed (backend exploded\\n\\e[2Jforged); " +
    "the request was dropped, the guest goes on",
  ]);
});

Deno.test("a guest looping on a slow device gives the host back within its time slice", async () => {
  // A device that takes 2 ms a request (a 1 MiB ,sync write on a real disk takes longer).
  // The Host looked at the clock only every 1024 hypercalls: 1024 x 2 ms = 2 s with no turn of
  // the event loop for anyone else (measured with 1 MiB ,sync block writes: neighbours' pings
  // 300 ms late on tmpfs, seconds on a disk).
  let served = 0;
  testBlockDevice("slow", "a device that takes 2 ms a request", "slow: 2 ms a request", () => {
    served++;
    const until = performance.now() + 2;
    while (performance.now() < until) { /* busy, as a synchronous write is */ }
    return 0;
  });
  // loop { SEND_DMA(key = the device page at 2 MiB + 4 KiB, an empty lguest_dma); on
  // LG_EVENT, the event protocol: event() until LG_EV_DONE, wait() on LG_EV_WAIT }
  // deno-fmt-ignore
  const start = [
    0x03, 0x40, // loop $send
    ...i32(13), ...i32(0x201000), ...i32(0x101000), ...i32(0), 0x10, 0, // hcall
    ...i32(-1), 0x46, 0x04, 0x40, // if == LG_EVENT
    0x03, 0x40, 0x10, 1, 0x21, 0, // loop $ev: e = event()
    0x20, 0, ...i32(0x100), 0x46, 0x04, 0x40, 0x10, 2, 0x0c, 1, 0x0b, // if LG_EV_WAIT: wait, again
    0x20, 0, ...i32(-0x80000000), 0x71, 0x45, 0x0d, 0, // until LG_EV_DONE
    0x0b, 0x0b, 0x0c, 0, 0x0b,
  ];
  const image = guestImage({ start, locals: [I32] });
  let last = performance.now(), worst = 0;
  const tick = setInterval(() => {
    const now = performance.now();
    worst = Math.max(worst, now - last);
    last = now;
  }, 5);
  let r;
  try {
    r = await runGuest({
      image,
      memory: "2M",
      devices: { "slow-test": ["x"] },
      timeoutMs: 1500,
    });
  } finally {
    clearInterval(tick);
  }
  assert.equal(r.code, EXIT.TIMEOUT, `${r.reason}`);
  assert.ok(served > 50, `the device served ${served} requests`);
  assert.ok(worst < 500, `the event loop waited ${worst.toFixed(0)} ms for the guest`);
});

Deno.test("an image whose memory maximum is below the guest's memory is one clear line", () =>
  withTempDir(async (dir) => {
    const img = `${dir}/max.wasm`;
    await Deno.writeFile(
      img,
      guestImage({
        start: CRASH,
        patch: (m) => void ((m.imports![3] as { memory: { max?: number } }).memory.max = 20),
      }),
    );
    assertUsageError(
      await runCli(["run", img]),
      "the guest image declares at most 1280 KiB of memory, less than the guest's",
    );
  }));

Deno.test("an image needing more memory than the guest's is one clear line naming -m", () =>
  withTempDir(async (dir) => {
    const img = `${dir}/min.wasm`;
    await Deno.writeFile(
      img,
      guestImage({
        start: CRASH,
        patch: (m) => void ((m.imports![3] as { memory: { min: number } }).memory.min = 1000),
      }),
    );
    const r = await runCli(["run", "-m", "2M", img]);
    assertUsageError(
      r,
      /the guest image needs at least 64000 KiB of memory, more than the guest's \d+ KiB \(RAM and device pages\): give more memory \(-m\)$/,
    );
  }));
