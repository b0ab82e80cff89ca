/**
 * Fuel instrumentation (`engines/wasm_fuel.ts`) and preemption of guests
 * that never make hypercalls: the rewriter on every built-in image and on
 * hand-built modules, the engine falling back to the original image, and
 * a spinning guest sharing a host with a shell that still answers.
 *
 * @module
 */

import assert from "node:assert/strict";
import { promising, suspending } from "../engines/jspi.ts";
import {
  compileImage,
  compileReady,
  LOOK_MS,
  MIN_REFILL,
  preemptionOf,
  refillAfter,
  WasmCpu,
} from "../engines/wasm.ts";
import type { HypercallPort } from "../engines/engine.ts";
import { LG_EVENT } from "../engines/engine.ts";
import { setNowMs } from "../sys/clock.ts";
import { checkProfile } from "../engines/wasm_profile.ts";
import {
  CODE_BYTES_PER_FUEL,
  FUEL,
  type FuelCounts,
  HCALL_BYTES,
  HINT_SECTION,
  instrumentFuel,
  LOAD_BYTES,
  MAX_HINTS,
  MAX_PASS_UNITS,
  PATH_STEPS_PER_BYTE,
  RESUME_CHECK_UNITS,
  THROW_BYTES,
} from "../engines/wasm_fuel.ts";
import { builtinGuests, loadImage, loadReady } from "../launcher/images.ts";
import { scannerSource } from "../tools/wasm_fuel_scanner.ts";
import { guestImage, hcall } from "./helpers/guest_asm.ts";
import { describe, hasStackTrace, runCli, spawnCli } from "./helpers/run_cli.ts";
import {
  assemble,
  f32,
  f64,
  I32,
  i32,
  I64,
  i64,
  type ModuleDef,
  sectionsOf,
} from "./helpers/wasm_asm.ts";

// ---- helpers -----------------------------------------------------------------

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

function instrumented(bytes: Uint8Array, fuel?: number): FuelCounts & { bytes: Uint8Array } {
  const r = instrumentFuel(bytes, { fuel });
  if ("error" in r) throw new Error(`instrumentFuel: ${r.error}`);
  assert.ok(WebAssembly.validate(r.bytes as Uint8Array<ArrayBuffer>), "instrumented: invalid");
  return r;
}

/** A vector section's entry count (LEB128) and where its entries start. */
function vecCount(c: Uint8Array): [number, number] {
  let n = 0, shift = 0, p = 0, x;
  do {
    x = c[p++];
    n |= (x & 0x7f) << shift;
    shift += 7;
  } while (x & 0x80);
  return [n, p];
}

/** The name of a custom section (its content). */
function customName(c: Uint8Array): string {
  const [n, p] = vecCount(c);
  return new TextDecoder().decode(c.subarray(p, p + n));
}

/** A custom section of branch hints (HINT_SECTION). */
const isHints = ([id, c]: [number, Uint8Array]) => id === 0 && customName(c) === HINT_SECTION;

/**
 * Every section but the type, function, global, export and code sections is
 * byte-identical, in the same order; those five keep their entries and
 * gain one at the end. A branch-hint section of the original's is gone, and
 * the instrumentation's own is right before the code section.
 */
function assertOtherSectionsKept(a: Uint8Array, b: Uint8Array): void {
  const ours = sectionsOf(b).map(isHints);
  assert.equal(ours.filter((h) => h).length, 1, "one branch-hint section");
  assert.equal(sectionsOf(b)[ours.indexOf(true) + 1][0], 10, "the hints right before the code");
  const grown = [1, 3, 6, 7];
  for (const id of grown) {
    const [x, y] = [sectionsOf(a).find((s) => s[0] === id), sectionsOf(b).find((s) => s[0] === id)];
    if (x === undefined) continue; // a global or export section may be new
    assert.ok(y !== undefined, `section ${id} gone`);
    const [[nx, px], [ny, py]] = [vecCount(x[1]), vecCount(y[1])];
    assert.equal(ny, nx + 1, `section ${id}: one more entry`);
    assert.deepEqual(
      y[1].subarray(py, py + x[1].length - px),
      x[1].subarray(px),
      `section ${id} changed`,
    );
  }
  const keep = (s: [number, Uint8Array][]) =>
    s.filter((x) => !grown.includes(x[0]) && x[0] !== 10 && !isHints(x));
  const [x, y] = [keep(sectionsOf(a)), keep(sectionsOf(b))];
  assert.deepEqual(x.map(([id]) => id), y.map(([id]) => id));
  x.forEach(([, c], i) => assert.deepEqual(c, y[i][1], `section ${x[i][0]} changed`));
  assert.deepEqual(b.subarray(0, 8), a.subarray(0, 8));
}

type Exports = Record<string, (...args: number[]) => Promise<unknown>>;

/** Instantiate with a counting `env.wait` (a fuel check that never preempts). */
function instantiate(bytes: Uint8Array, imports: Record<string, unknown> = {}) {
  const counter = { waits: 0 };
  const wait = suspending(() => {
    counter.waits++;
    return undefined;
  });
  const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>), {
    env: { wait, ...imports },
  } as WebAssembly.Imports);
  const exports: Exports = {};
  for (const [k, v] of Object.entries(inst.exports)) {
    if (typeof v === "function") {
      exports[k] = promising(v as () => unknown) as (...args: number[]) => Promise<unknown>;
    }
  }
  return { exports, counter };
}

// ---- opcodes -------------------------------------------------------------------

const BLOCK = 0x02, LOOP = 0x03, IF = 0x04, ELSE = 0x05, END = 0x0b, BR = 0x0c, BR_IF = 0x0d;
const BR_TABLE = 0x0e, RETURN = 0x0f, CALL = 0x10, CALL_INDIRECT = 0x11, DROP = 0x1a;
const UNREACHABLE = 0x00, NOP = 0x01, SELECT_T = 0x1c;
const GET = 0x20, SET = 0x21, TEE = 0x22, GGET = 0x23;
const I32_ADD = 0x6a, I32_SUB = 0x6b, I32_MUL = 0x6c, I32_XOR = 0x73, I32_GE_S = 0x4e;
const I32_GE_U = 0x4f, I64_ADD = 0x7c, I64_MUL = 0x7e, I64_XOR = 0x85;
const I64_EXTEND_U = 0xad, I64_EXTEND_S = 0xac, I32_EXTEND8_S = 0xc0, I64_EXTEND32_S = 0xc4;
const VOID = 0x40;

/**
 * The round-trip module. Imports `env.wait` (func 0) and `env.g` (global
 * 0, i32 = 11); defines global 1 (mut i32 = 7), a 2-entry table, memory.
 */
function roundTripModule(): ModuleDef {
  // deno-fmt-ignore
  const nested = [ // nested(n): Σ_{i<n} Σ_{j<i} i*j, two loops
    BLOCK, VOID, LOOP, VOID,
      GET, 1, GET, 0, I32_GE_S, BR_IF, 1,
      ...i32(0), SET, 2,
      BLOCK, VOID, LOOP, VOID,
        GET, 2, GET, 1, I32_GE_S, BR_IF, 1,
        GET, 3, GET, 1, GET, 2, I32_MUL, I32_ADD, SET, 3,
        GET, 2, ...i32(1), I32_ADD, SET, 2,
        BR, 0,
      END, END,
      GET, 1, ...i32(1), I32_ADD, SET, 1,
      BR, 0,
    END, END,
    GET, 3,
  ];
  // deno-fmt-ignore
  const dispatch = [ // br_table over x; cases 0/1 call through the table
    BLOCK, VOID, BLOCK, VOID, BLOCK, VOID, BLOCK, VOID,
      GET, 0, BR_TABLE, 3, 0, 1, 2, 3,
    END,
    GET, 0, ...i32(0), CALL_INDIRECT, 1, 0, RETURN,
    END,
    GET, 0, ...i32(1), CALL_INDIRECT, 1, 0, RETURN,
    END,
    ...i32(1000), RETURN,
    END,
    GGET, 0, GGET, 1, I32_ADD,
  ];
  // deno-fmt-ignore
  const mem = [ // memory ops, i64/f32/f64 constants, 0xfc ops, reference ops
    ...i32(0), ...i32(0xab), ...i32(64), 0xfc, 11, 0, // memory.fill
    ...i32(128), ...i32(0), ...i32(64), 0xfc, 10, 0, 0, // memory.copy
    ...i32(200), ...i64(0x123456789abcdef0n), 0x37, 3, 8, // i64.store offset=8
    ...i32(300), ...i32(-1), 0x3a, 0, 0, // i32.store8
    BLOCK, VOID, LOOP, VOID,
      GET, 1, GET, 0, I32_GE_U, BR_IF, 1,
      GET, 2, GET, 1, 0x2d, 0, 0x80, 0x01, I64_EXTEND_U, I64_ADD, SET, 2, // load8_u offset=128
      GET, 1, ...i32(1), I32_ADD, SET, 1,
      BR, 0,
    END, END,
    GET, 2,
    ...i32(200), 0x29, 3, 8, I64_XOR, // i64.load offset=8
    ...i64(-5n), I64_EXTEND32_S, I64_ADD,
    ...i64(-0x8000000000000000n), ...i64(3n), I64_MUL, I64_ADD,
    0x3f, 0, I64_EXTEND_U, I64_ADD, // memory.size
    ...i32(0), 0x40, 0, I64_EXTEND_S, I64_ADD, // memory.grow 0
    ...f64(3.75), 0xfc, 6, I64_ADD, // i64.trunc_sat_f64_s
    ...f32(-2.5), 0xfc, 0, I64_EXTEND_S, I64_ADD, // i32.trunc_sat_f32_s
    ...i32(1), ...i32(2), GET, 0, SELECT_T, 1, I32, I64_EXTEND_U, I64_ADD,
    0xfd, 12, ...Array.from({ length: 16 }, (_, k) => k), // v128.const 0 1 … 15
    0xfd, 0x1b, 2, I64_EXTEND_U, I64_ADD, // i32x4.extract_lane 2: 0x0b0a0908
    ...i32(300), 0x2c, 0, 0, I32_EXTEND8_S, I64_EXTEND_S, I64_ADD, // i32.load8_s
    ...i32(0x7f), I32_EXTEND8_S, I64_EXTEND_S, I64_ADD,
  ];
  // deno-fmt-ignore
  const params = [ // a loop with a parameter (block type = type index 1)
    ...i32(0),
    LOOP, 1,
      GET, 0, I32_ADD,
      GET, 0, ...i32(1), I32_SUB, TEE, 0,
      BR_IF, 0,
    END,
    LOOP, I32, ...i32(5), END, I32_ADD, // a loop with a result type
    GET, 0, IF, I32, ...i32(10), ELSE, ...i32(20), END, I32_ADD,
    BLOCK, VOID, BR, 0, UNREACHABLE, END, NOP,
    ...i32(9), DROP,
  ];
  return {
    types: [[[], []], [[I32], [I32]], [[I32], [I64]]],
    imports: [
      { module: "env", name: "wait", func: 0 },
      { module: "env", name: "g", global: { type: I32 } },
    ],
    funcs: [
      { type: 1, locals: [I32, I32, I32], body: nested }, // 1
      { type: 1, body: [GET, 0, ...i32(3), I32_MUL, ...i32(1), I32_ADD] }, // 2: fA
      { type: 1, body: [GET, 0, ...i32(0x55), I32_XOR] }, // 3: fB
      { type: 1, body: dispatch }, // 4
      { type: 2, locals: [I32, I64], body: mem }, // 5
      { type: 1, body: params }, // 6
    ],
    table: 2,
    memory: { min: 1, max: 2 },
    globals: [{ type: I32, mutable: true, init: i32(7) }],
    exports: [
      { name: "nested", func: 1 },
      { name: "dispatch", func: 4 },
      { name: "mem", func: 5 },
      { name: "params", func: 6 },
    ],
    elems: [{ offset: 0, funcs: [2, 3] }],
    data: [{ offset: 16, bytes: [1, 2, 3, 4] }],
    custom: [{ name: "lguest.test", bytes: [1, 2, 3] }],
  };
}

/** Loop headers nested(n) runs through: n+1 outer, i+1 inner for each i < n. */
const nestedHeaders = (n: number) => n + 1 + (n * (n + 1)) / 2;

// ---- the rewriter --------------------------------------------------------------

Deno.test("fuel: engines/wasm_fuel_scanner.ts is what tools/wasm_fuel_scanner.ts makes", async () => {
  const text = await Deno.readTextFile(new URL("../engines/wasm_fuel_scanner.ts", import.meta.url));
  assert.ok(
    text === scannerSource(),
    "stale: run deno run --allow-write tools/wasm_fuel_scanner.ts",
  );
});

Deno.test("fuel: every built-in and test guest image instruments and validates", async () => {
  const guests = await builtinGuests(true);
  assert.ok(guests.length >= 10);
  for (const g of guests) {
    const { bytes } = await loadImage(g.name);
    const r = instrumented(bytes);
    assert.ok(r.loops > 0, `${g.name}: no loops found`);
    assertOtherSectionsKept(bytes, r.bytes);
    const mod = await compileImage(bytes, g.name);
    assert.ok(r.entries > 0, `${g.name}: no function entries found`);
    assert.deepEqual(
      preemptionOf(mod),
      { loops: r.loops, entries: r.entries, bulk: r.bulk, resumes: r.resumes },
      g.name,
    );
  }
});

Deno.test("fuel: every built-in wasm image comes checked and instrumented from the build", async () => {
  const guests = await builtinGuests(true);
  for (const g of guests) {
    const ready = await loadReady(g.name);
    assert.ok(ready !== null, `${g.name}: no checked, instrumented image in the build`);
    const { bytes } = await loadImage(g.name);
    checkProfile(bytes, g.name);
    const r = instrumented(bytes);
    // What `deno task guests` stored is what the current code makes of the image.
    assert.ok(sameBytes(ready.bytes, r.bytes), `${g.name}: stale: run deno task guests`);
    assert.deepEqual(ready.fuel, {
      loops: r.loops,
      entries: r.entries,
      bulk: r.bulk,
      resumes: r.resumes,
    }, g.name);
    const mod = compileReady(ready.bytes, ready.fuel, g.name);
    assert.deepEqual(preemptionOf(mod), ready.fuel, g.name);
  }
  // A path is never taken for a built-in image, even one naming a built-in file.
  assert.equal(await loadReady("guests/images/hello.wasm"), null);
  assert.equal(await loadReady("no-such-guest"), null);
});

Deno.test("fuel: a hand-built module round-trips and computes the same results", async () => {
  const bytes = assemble(roundTripModule());
  assert.ok(WebAssembly.validate(bytes as Uint8Array<ArrayBuffer>), "the test module is invalid");
  const r = instrumented(bytes, 7);
  assert.deepEqual([r.loops, r.entries, r.bulk], [5, 6, 2]);
  assertOtherSectionsKept(bytes, r.bytes);
  // One more global, at the end: index = 1 imported + 1 defined.
  const globals = (b: Uint8Array) => sectionsOf(b).find(([id]) => id === 6)![1][0];
  assert.equal(globals(r.bytes), globals(bytes) + 1);

  const g = new WebAssembly.Global({ value: "i32" }, 11);
  const a = instantiate(bytes, { g }), b = instantiate(r.bytes, { g });
  for (const n of [0, 1, 2, 5, 17, 40]) {
    assert.equal(await b.exports.nested(n), await a.exports.nested(n), `nested(${n})`);
  }
  for (const x of [0, 1, 2, 3, 4, 99, -1]) {
    assert.equal(await b.exports.dispatch(x), await a.exports.dispatch(x), `dispatch(${x})`);
  }
  assert.equal(await a.exports.dispatch(0), 1);
  assert.equal(await a.exports.dispatch(1), 0x54);
  assert.equal(await a.exports.dispatch(2), 1000);
  assert.equal(await a.exports.dispatch(7), 18);
  for (const n of [0, 1, 64, 100]) {
    assert.equal(await b.exports.mem(n), await a.exports.mem(n), `mem(${n})`);
  }
  for (const n of [1, 2, 30]) {
    assert.equal(await b.exports.params(n), await a.exports.params(n), `params(${n})`);
  }
  assert.equal(await a.exports.params(30), 465 + 5 + 20); // n is 0 after the loop
  assert.equal(a.counter.waits, 0, "the original never calls wait");
  assert.ok(b.counter.waits > 0, "the instrumented module calls wait");
});

Deno.test("fuel: wait is called once every FUEL loop iterations", async () => {
  const r = instrumented(assemble(roundTripModule()), 7);
  const g = new WebAssembly.Global({ value: "i32" }, 11);
  for (const n of [0, 3, 10, 50]) {
    const b = instantiate(r.bytes, { g });
    await b.exports.nested(n);
    assert.equal(b.counter.waits, Math.floor(nestedHeaders(n) / 7), `nested(${n})`);
  }
  // The default fuel: a million loop iterations make 10 checks.
  const d = instantiate(instrumented(assemble(roundTripModule())).bytes, { g });
  await d.exports.params(1_000_000);
  assert.equal(d.counter.waits, Math.floor(1_000_000 / FUEL));
});

/** `n` nops: `n` bytes of code that run straight through. */
const nops = (n: number) => new Array<number>(n).fill(NOP);

/**
 * Loops and bodies whose paths differ in length: `sw(n)` runs n iterations
 * of a loop that dispatches (br_table) to one of four 640-byte arms;
 * `inner(n)` runs n iterations of a loop whose 640 bytes lead into an
 * inner loop that continues the outer one from inside; `ret()` runs 640
 * bytes, then returns from inside a loop.
 */
function pathsModule(): ModuleDef {
  // deno-fmt-ignore
  const sw = [
    BLOCK, VOID, LOOP, VOID,
      GET, 0, 0x45, BR_IF, 1, // i32.eqz: done
      GET, 0, ...i32(1), I32_SUB, SET, 0,
      BLOCK, VOID, BLOCK, VOID, BLOCK, VOID, BLOCK, VOID,
        GET, 0, ...i32(3), 0x71, BR_TABLE, 3, 0, 1, 2, 3, // i32.and
      END, ...nops(640), BR, 3,
      END, ...nops(640), BR, 2,
      END, ...nops(640), BR, 1,
      END, ...nops(640), BR, 0,
    END, END,
    GET, 0,
  ];
  // deno-fmt-ignore
  const inner = [
    BLOCK, VOID, LOOP, VOID,
      GET, 0, 0x45, BR_IF, 1,
      GET, 0, ...i32(1), I32_SUB, SET, 0,
      ...nops(640),
      LOOP, VOID, BR, 1, END, // the next outer iteration, from inside the inner loop
    END, END,
    GET, 0,
  ];
  const ret = [...nops(640), LOOP, VOID, GET, 0, RETURN, END, GET, 0];
  return {
    types: [[[], []], [[I32], [I32]]],
    imports: [{ module: "env", name: "wait", func: 0 }],
    funcs: [{ type: 1, body: sw }, { type: 1, body: inner }, { type: 1, body: ret }],
    exports: [{ name: "sw", func: 1 }, { name: "inner", func: 2 }, { name: "ret", func: 3 }],
  };
}

Deno.test("fuel: a loop pays for its longest path, and for every byte that path runs", async () => {
  const fuel = 1000;
  const r = instrumented(assemble(pathsModule()), fuel);
  const run = async (f: string, n: number, calls = 1) => {
    const b = instantiate(r.bytes);
    for (let k = 0; k < calls; k++) await b.exports[f](n);
    return b.counter.waits;
  };
  // Units an iteration (or call), within one: a wait every ceil(fuel / units) of them.
  const units = async (f: string, n: number, calls = 1) =>
    Math.round(fuel / (Math.max(n, calls) / (await run(f, n, calls))) * 10) / 10;
  // One 640-byte arm an iteration: 11 units (1 + 650 / 64), not the 41 of all four arms.
  const sw = await units("sw", 10_000);
  assert.ok(sw >= 10.5 && sw < 12, `sw: ${sw} units an iteration`);
  // A path that leaves the outer iteration from inside the inner loop still pays for the
  // 640 bytes before it (11 units), the inner loop's header for itself (1 unit).
  const inner = await units("inner", 10_000);
  assert.ok(inner >= 11.5 && inner < 13, `inner: ${inner} units an iteration`);
  // A return from inside a loop: the call paid on entry for the 640 bytes before it.
  const ret = await units("ret", 0, 10_000);
  assert.ok(ret >= 11.5 && ret < 13, `ret: ${ret} units a call`);
});

Deno.test("fuel: a leaf needs no check: each call of it pays on the caller's path", async () => {
  const leaf = [...nops(200), GET, 0]; // no call, loop or try
  // deno-fmt-ignore
  const calls = [ // n iterations, three calls of the leaf each
    BLOCK, VOID, LOOP, VOID,
      GET, 0, 0x45, BR_IF, 1,
      GET, 0, ...i32(1), I32_SUB, SET, 0,
      GET, 0, CALL, 1, CALL, 1, CALL, 1, DROP,
      BR, 0,
    END, END,
    GET, 0,
  ];
  const def: ModuleDef = {
    types: [[[], []], [[I32], [I32]]],
    imports: [{ module: "env", name: "wait", func: 0 }],
    funcs: [
      { type: 1, body: leaf }, // 1: named only by calls
      { type: 1, body: calls }, // 2
      { type: 1, body: leaf }, // 3: in the table
      { type: 1, body: leaf }, // 4: exported
      // 5: a tail call of the leaf, then more code
      { type: 1, body: [GET, 0, IF, VOID, GET, 0, 0x12, 1, END, GET, 0, ...i32(1), I32_ADD] },
    ],
    table: 1,
    elems: [{ offset: 0, funcs: [3] }],
    exports: [{ name: "calls", func: 2 }, { name: "leaf", func: 4 }, { name: "tail", func: 5 }],
  };
  const fuel = 1000;
  const r = instrumented(assemble(def), fuel);
  assert.deepEqual([r.entries, r.loops], [4, 1], "function 1 has no check, 2 3 4 5 have theirs");
  const b = instantiate(r.bytes);
  assert.equal(await b.exports.calls(10_000), 0);
  assert.deepEqual([await b.exports.tail(5), await b.exports.tail(0)], [5, 1]);
  // Each call pays what the leaf's own check did (1 + 203 / 64 = 4 units), the loop 1 more.
  const units = fuel / (10_000 / b.counter.waits);
  assert.ok(units >= 12.5 && units < 15, `${units} units an iteration`);
});

/**
 * A frame that calls a leaf so often that one pass would cost more than a
 * slice: `leaf` (function 2, 6 400 nops and `n += 1`, a global the test
 * reads) is called 3 000 times by one pass of `caller` (function 3: its
 * body, a `try` in it, or one iteration of its loop), 303 000 units; the
 * driver (function 4, exported) runs 9 000 calls in all. Function 1 is
 * exported padding, or a body that spends the analysis's whole step
 * budget first, so that `caller` is planned without paths.
 */
function leafFloodModule(shape: "body" | "loop" | "try" | "budget") {
  const CALLS = 3000, TRY = 0x06, CATCH_ALL = 0x19, GSET = 0x24;
  const calls = new Array<number[]>(CALLS).fill([CALL, 2]).flat();
  const caller = shape === "loop"
    ? [LOOP, VOID, ...calls, GET, 0, ...i32(1), I32_SUB, TEE, 0, BR_IF, 0, END]
    : shape === "try"
    ? [TRY, VOID, ...calls, CATCH_ALL, END]
    : calls;
  // As in "branches out of many nested loops": k branches out of 100 loops, 99 steps each.
  const k = 10_000, pad: number[] = [];
  if (shape === "budget") {
    pad.push(...nops(6000));
    for (let n = 0; n < 100; n++) pad.push(LOOP, VOID);
    pad.push(...i32(0), IF, VOID, ...nops(640));
    for (let n = 0; n < k; n++) pad.push(...i32(0), BR_IF, 100);
    pad.push(ELSE, ...nops(640 + 4 * k), END);
    for (let n = 0; n < 100; n++) pad.push(END);
  }
  // deno-fmt-ignore
  const driver = [ // n passes of caller(3): 3 for a body, 1 for the loop (3 iterations)
    BLOCK, VOID, LOOP, VOID,
      GET, 0, 0x45, BR_IF, 1,
      GET, 0, ...i32(1), I32_SUB, SET, 0,
      ...i32(3), CALL, 3,
      BR, 0,
    END, END,
  ];
  const bytes = assemble({
    types: [[[], []], [[I32], []]],
    imports: [
      { module: "env", name: "wait", func: 0 },
      { module: "env", name: "n", global: { type: I32, mutable: true } },
    ],
    funcs: [
      { type: 0, body: pad },
      { type: 0, body: [...nops(6400), GGET, 0, ...i32(1), I32_ADD, GSET, 0] }, // the leaf
      { type: 1, body: caller },
      { type: 1, body: driver },
    ],
    exports: [{ name: "pad", func: 1 }, { name: "run", func: 4 }],
  });
  return { bytes, passes: shape === "loop" ? 1 : 3, steps: shape === "budget" ? 99 * k : 0 };
}

Deno.test("fuel: one pass that calls leaves for more than a slice demotes them: a look every ~FUEL units", () => {
  // Each call of the leaf runs 6 408 bytes (101 units). Charged a slice and run to its end, one
  // pass made 3 000 calls after a single look (303 000 units); now the leaf has its own check,
  // so no more than (FUEL + MAX_PASS_UNITS) × 64 bytes run between two looks.
  const LEAF_BYTES = 6408;
  for (const shape of ["body", "loop", "try", "budget"] as const) {
    const m = leafFloodModule(shape);
    if (shape === "budget") {
      assert.ok(m.steps > PATH_STEPS_PER_BYTE * m.bytes.length, "the test's own premise");
    }
    const r = instrumented(m.bytes);
    assert.equal(r.entries, 4, `${shape}: the leaf (function 2) has a check of its own`);
    const n = new WebAssembly.Global({ value: "i32", mutable: true }, 0);
    let looks = 0, last = 0, most = 0;
    const wait = () => {
      looks++;
      most = Math.max(most, n.value - last);
      last = n.value;
    };
    const inst = new WebAssembly.Instance(
      new WebAssembly.Module(r.bytes as Uint8Array<ArrayBuffer>),
      { env: { wait, n } },
    );
    (inst.exports.run as (n: number) => void)(m.passes);
    wait();
    assert.equal(n.value, 9000, shape);
    const bound = (FUEL + MAX_PASS_UNITS) * CODE_BYTES_PER_FUEL;
    assert.ok(
      most * LEAF_BYTES <= bound,
      `${shape}: ${most} leaf calls (${most * LEAF_BYTES} bytes) between two looks, bound ${bound}`,
    );
    assert.ok(looks >= 9, `${shape}: ${looks} looks for 9 000 × 101 units`);
  }
});

/**
 * A module importing `env.wait` and `env.hcall` (0 and 1; or `env.event`,
 * `env.rdtsc`): `loop(n)` makes n iterations of one SET_CLOCKEVENT-shaped
 * hypercall (or call of event/rdtsc); `rec(d)` recurses d deep and makes
 * `after` hypercalls after its call returns; `flat()` makes `flat`
 * hypercalls in one straight pass.
 */
function hcallModule(after: number, flat: number, name = "hcall") {
  const HC = name === "hcall"
    ? [...i32(9), ...i32(1_000_000), ...i32(0), ...i32(0), CALL, 1, DROP]
    : [CALL, 1, DROP];
  const I64 = 0x7e;
  const type = name === "hcall" ? 1 : name === "event" ? 3 : 4;
  // deno-fmt-ignore
  const loop = [
    BLOCK, VOID, LOOP, VOID,
      GET, 0, 0x45, BR_IF, 1,
      GET, 0, ...i32(1), I32_SUB, SET, 0,
      ...HC,
      BR, 0,
    END, END,
  ];
  const rec = [
    GET,
    0,
    IF,
    VOID,
    GET,
    0,
    ...i32(1),
    I32_SUB,
    CALL,
    3,
    END,
    ...new Array<number[]>(after).fill(HC).flat(),
  ];
  return assemble({
    types: [[[], []], [[I32, I32, I32, I32], [I32]], [[I32], []], [[], [I32]], [[], [I64]]],
    imports: [
      { module: "env", name: "wait", func: 0 },
      { module: "env", name, func: type },
    ],
    funcs: [
      { type: 2, body: loop }, // 2
      { type: 2, body: rec }, // 3
      { type: 0, body: new Array<number[]>(flat).fill(HC).flat() }, // 4
    ],
    exports: [{ name: "loop", func: 2 }, { name: "rec", func: 3 }, { name: "flat", func: 4 }],
  });
}

for (const name of ["hcall", "event", "rdtsc"]) {
  Deno.test(`fuel: a call of env.${name} pays HCALL_BYTES on its caller's path: a loop of them looks every ~FUEL units, a recursion's unpaid rest holds fewer than two`, () => {
    const units = HCALL_BYTES / CODE_BYTES_PER_FUEL;
    const r = instrumented(hcallModule(2, 0, name));
    let calls = 0, since = 0, most = 0, looks = 0;
    const wait = () => {
      looks++;
      most = Math.max(most, since);
      since = 0;
    };
    const hcall = () => {
      calls++;
      since++;
      return 0;
    };
    const inst = new WebAssembly.Instance(
      new WebAssembly.Module(r.bytes as Uint8Array<ArrayBuffer>),
      { env: { wait, [name]: name === "rdtsc" ? () => (hcall(), 0n) : hcall } },
    );
    (inst.exports.loop as (n: number) => void)(200_000);
    wait();
    assert.equal(calls, 200_000);
    // Charged as the ~20 bytes of their call, all 200 000 ran after one look (found by attack:
    // a neighbour's echo 0.8-1.1 s late); now a look every FUEL / units of them or so.
    const bound = Math.ceil((FUEL + MAX_PASS_UNITS) / units);
    assert.ok(most <= bound, `${most} hypercalls between two looks, bound ${bound}`);
    assert.ok(looks >= Math.floor(200_000 * units / FUEL), `${looks} looks`);
    // Two hypercalls after a return are RESUME_CHECK_UNITS or more: a resume check pays for them
    // (before: 185 of them ran unpaid in each frame on the way up, 3 million after one look).
    assert.ok(2 * units >= RESUME_CHECK_UNITS, "the test's own premise");
    assert.equal(r.resumes, 1, "rec(): a check after its call");
    assert.equal(instrumented(hcallModule(1, 0, name)).resumes, 0, "one: under the threshold");
    // A pass of more hypercalls than MAX_PASS_UNITS allows is refused, never capped.
    const most1 = MAX_PASS_UNITS / units;
    assert.ok(
      !("error" in instrumentFuel(hcallModule(0, most1 - 8, name))),
      "just under: instrumented",
    );
    const over = instrumentFuel(hcallModule(0, most1 + 8, name));
    assert.ok("error" in over && /too many hypercalls/.test(over.error), JSON.stringify(over));
  });
}

Deno.test("fuel: a pass that costs more than MAX_PASS_UNITS by its own bytes is refused, never capped", () => {
  // 600 KiB of straight-line code (the profile refuses bodies over 256 KiB before this).
  const bytes = assemble({
    types: [[[], []]],
    imports: [{ module: "env", name: "wait", func: 0 }],
    funcs: [{ type: 0, body: nops(600 << 10) }],
    exports: [{ name: "f", func: 1 }],
  });
  const r = instrumentFuel(bytes);
  assert.ok("error" in r, "a 9 601-unit pass is refused");
  assert.match(r.error, /^unsupported: function 1: one pass through its body costs 9601 units/);
});

/**
 * The units the checks of an instrumented single-function module charge:
 * at entry, and after each `loop` (void) header in order, read from the
 * check's `global.get $fuel; i32.const COST` ($fuel is global 0 here).
 */
function chargedUnits(b: Uint8Array): { entry: number; loops: number[] } {
  const code = sectionsOf(b).find(([id]) => id === 10)![1];
  let p = 0;
  const leb = () => {
    let n = 0, shift = 0, x;
    do {
      x = code[p++];
      n |= (x & 0x7f) << shift;
      shift += 7;
    } while (x & 0x80);
    return n;
  };
  leb(); // bodies
  const size = leb(), end = p + size;
  for (let groups = leb(); groups > 0; groups--) {
    leb();
    p++;
  }
  const cost = (at: number) => {
    assert.deepEqual([...code.subarray(at, at + 3)], [0x23, 0, 0x41], `no check at ${at}`);
    p = at + 3;
    return leb(); // a positive sleb reads as a uleb
  };
  const entry = cost(p);
  const loops: number[] = [];
  for (let q = p; q < end - 5; q++) {
    if (code[q] === LOOP && code[q + 1] === VOID && code[q + 2] === 0x23 && code[q + 3] === 0) {
      loops.push(cost(q + 2));
    }
  }
  return { entry, loops };
}

/** The bytes of the random bodies' leaf function (no call, loop or try): 150 nops and its end. */
const LEAF_BYTES = 151;

/**
 * A random function for the longest-path test: nested blocks, loops, ifs
 * (with and without else), try/catch, br, br_if, br_table, return,
 * a tail call of a leaf and throw, around "pads" (a `call $log(id)` and some nops) whose bytes and
 * region (the innermost loop, or the function: -1) are known. Branches
 * and conditions come from an LCG in local 0; a branch back to a loop
 * spends local 1, so every run ends.
 */
function randomBody(rand: (n: number) => number, padScale = 1) {
  const TRY = 0x06, CATCH = 0x07, THROW = 0x08, I32_AND = 0x71, I32_SHR_U = 0x76;
  const I32_GT_S = 0x4a, CATCH_ALL = 0x19;
  const pads: { region: number; bytes: number }[] = [];
  const loopStarts: number[] = []; // per loop: its start pad
  const loopParents: number[] = []; // per loop: the region it is in
  const handlerPads = new Set<number>(); // pads that start a catch
  let loops = 0;
  const cond = (mask: number) => [
    GET,
    0,
    ...i32(1103515245),
    I32_MUL,
    ...i32(12345),
    I32_ADD,
    TEE,
    0,
    ...i32(16),
    I32_SHR_U,
    ...i32(mask),
    I32_AND,
  ];
  const pad = (region: number): number[] => {
    const id = pads.length;
    const code = [
      ...i32(id),
      CALL,
      1,
      ...new Array((rand(3) === 0 ? rand(300) : rand(40)) * padScale).fill(NOP),
    ];
    // A call of the leaf (function 3): its body runs as part of this pad.
    const leaf = rand(4) === 0 ? [CALL, 3] : [];
    pads.push({ region, bytes: code.length + leaf.length + (leaf.length ? LEAF_BYTES : 0) });
    return [...code, ...leaf];
  };
  // labels: innermost last; true for a loop
  // br_if d while local 1, the iterations left, stays positive (spent by one), and maybe not.
  const spendAndBranch = (d: number) => [
    GET,
    1,
    ...i32(1),
    I32_SUB,
    TEE,
    1,
    ...i32(0),
    I32_GT_S,
    ...cond(1),
    I32_AND,
    BR_IF,
    d,
  ];
  const stmts = (labels: boolean[], region: number, depth: number): number[] => {
    const out: number[] = [];
    for (let n = rand(depth > 3 ? 2 : 5); n > 0; n--) {
      const k = rand(depth > 3 ? 3 : 12);
      const blocks = labels.map((l, i) => l ? -1 : labels.length - 1 - i).filter((d) => d >= 0);
      if (k <= 2) out.push(...pad(region));
      else if (k === 3) out.push(BLOCK, VOID, ...stmts([...labels, false], region, depth + 1), END);
      else if (k === 4) {
        const id = loops++;
        loopParents[id] = region;
        const head = pad(id);
        loopStarts[id] = pads.length - 1;
        const body = stmts([...labels, true], id, depth + 1);
        const back = spendAndBranch(0); // the back edge
        // Sometimes the loop is left only by a branch to an enclosing block (its end is dead):
        // the path goes on from where the loop was entered.
        const exit = blocks.length > 0 && rand(2) ? [BR, blocks[rand(blocks.length)] + 1] : [];
        out.push(LOOP, VOID, ...head, ...body, ...back, ...exit, END);
      } else if (k === 5) {
        out.push(...cond(1), IF, VOID, ...stmts([...labels, false], region, depth + 1));
        if (rand(2)) out.push(ELSE, ...stmts([...labels, false], region, depth + 1));
        out.push(END);
      } else if (k === 6) {
        out.push(TRY, VOID, ...stmts([...labels, false], region, depth + 1));
        out.push(...(rand(2) ? [CATCH, 0] : [CATCH_ALL]));
        handlerPads.add(pads.length);
        out.push(...pad(region), ...stmts([...labels, false], region, depth + 1), END);
      } else if (k === 7) out.push(...cond(3), IF, VOID, THROW, 0, END); // may leave the function
      else if (k === 8 && labels.length > 0) { // br_if: to a loop, spending local 1
        const d = rand(labels.length);
        if (labels[labels.length - 1 - d]) {
          out.push(...spendAndBranch(d));
        } else out.push(...cond(1), BR_IF, d);
      } else if (k === 9 && rand(3) === 0) { // br or return: the rest of the list is dead
        const d = blocks.length > 0 && rand(4) ? blocks[rand(blocks.length)] : labels.length;
        out.push(BR, d);
        return out;
      } else if (k === 10 && blocks.length > 0) {
        const t = [0, 1, 2, 3].map(() => rand(3) ? blocks[rand(blocks.length)] : labels.length);
        out.push(...cond(3), BR_TABLE, 3, ...t);
        return out;
      } else if (k === 11 && rand(4) === 0) {
        out.push(RETURN);
        return out;
      } else if (k === 11 && rand(3) === 0) { // a tail call of the leaf: it runs in this pad
        const id = pads.length;
        const code = [...i32(id), CALL, 1, 0x12, 3]; // return_call
        pads.push({ region, bytes: code.length + LEAF_BYTES });
        out.push(...code);
        return out;
      } else out.push(...pad(region));
    }
    return out;
  };
  const body = [...i32(40), SET, 1, ...pad(-1), ...stmts([], -1, 0)];
  return { body, pads, loopStarts, loopParents, handlerPads, loops };
}

Deno.test("fuel: a path that leaves a loop by a branch goes on from where it entered the loop", () => {
  // block { 300 nops; loop { 300 nops; br 1 } } 300 nops: a call runs 600 bytes outside the loop.
  const nop300 = new Array(300).fill(NOP);
  const body = [BLOCK, VOID, ...nop300, LOOP, VOID, ...nop300, BR, 1, END, END, ...nop300];
  const bytes = assemble({
    types: [[[], []]],
    imports: [{ module: "env", name: "wait", func: 0 }],
    funcs: [{ type: 0, body }],
  });
  const charged = chargedUnits(instrumented(bytes, 1e9).bytes);
  assert.ok(charged.entry * CODE_BYTES_PER_FUEL >= 600, `entry: ${charged.entry} units`);
  assert.ok(charged.loops[0] * CODE_BYTES_PER_FUEL >= 300, `loop: ${charged.loops[0]} units`);
});

Deno.test("fuel: a call_indirect is straight on for the paths: what follows it is paid for", () => {
  // f: loop { call_indirect; 600 nops; br_if 0 } 600 nops after call_indirect: the loop and
  // the body each pay for the 600 bytes after their call (taking it for a frame's end did not).
  const body = [
    LOOP,
    VOID,
    ...i32(0),
    CALL_INDIRECT,
    0,
    0,
    ...nops(600),
    ...i32(0),
    BR_IF,
    0,
    END,
    ...i32(0),
    CALL_INDIRECT,
    0,
    0,
    ...nops(600),
  ];
  const bytes = assemble({
    types: [[[], []]],
    imports: [{ module: "env", name: "wait", func: 0 }],
    funcs: [{ type: 0, body }, { type: 0, body: [] }],
    table: 1,
    elems: [{ offset: 0, funcs: [2] }],
  });
  const charged = chargedUnits(instrumented(bytes, 1e9).bytes);
  assert.ok(charged.loops[0] * CODE_BYTES_PER_FUEL >= 600, `loop: ${charged.loops[0]} units`);
  assert.ok(charged.entry * CODE_BYTES_PER_FUEL >= 600, `entry: ${charged.entry} units`);
});

Deno.test("fuel: no iteration runs more code than the longest path it pays for (random bodies)", () => {
  // Function 3 is a leaf: no check of its own, its calls paid for on the caller's paths.
  let seed = 12345;
  const rand = (n: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed >>> 8) % n;
  };
  let checkedIterations = 0;
  for (let f = 0; f < 1500; f++) {
    const g = randomBody(rand);
    const bytes = assemble({
      types: [[[], []], [[I32], []]],
      imports: [{ module: "env", name: "wait", func: 0 }, { module: "env", name: "log", func: 1 }],
      funcs: [{ type: 1, locals: [I32], body: g.body }, { type: 0, body: nops(150) }],
      tags: [0],
      exports: [{ name: "f", func: 2 }],
    });
    assert.ok(WebAssembly.validate(bytes as Uint8Array<ArrayBuffer>), `function ${f} is invalid`);
    const charged = chargedUnits(instrumented(bytes, 1e9).bytes);
    assert.equal(charged.loops.length, g.loops);
    for (const s of [1, 7, 99, 12345]) {
      const sum = new Map<number, number>(); // region -> bytes run in its current iteration
      const over: string[] = [];
      const close = (region: number) => {
        const ran = sum.get(region) ?? 0;
        // A unit pays for up to CODE_BYTES_PER_FUEL bytes (1 + longest / 64 units).
        const paid = (region < 0 ? charged.entry : charged.loops[region]) * CODE_BYTES_PER_FUEL;
        if (ran > paid) over.push(`region ${region}: ran ${ran} bytes, paid for ${paid}`);
        sum.set(region, 0);
        checkedIterations++;
      };
      const log = (id: number) => {
        const p = g.pads[id];
        if (p.region >= 0 && g.loopStarts[p.region] === id) close(p.region); // a new iteration
        sum.set(p.region, (sum.get(p.region) ?? 0) + p.bytes);
      };
      const inst = new WebAssembly.Instance(
        new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>),
        {
          env: { wait: () => {}, log },
        },
      );
      try {
        (inst.exports.f as (s: number) => void)(s);
      } catch (e) {
        if (!(e instanceof (WebAssembly as unknown as { Exception: typeof Error }).Exception)) {
          throw e;
        }
      }
      for (const r of sum.keys()) close(r);
      assert.deepEqual(over, [], `function ${f}, seed ${s}`);
    }
  }
  assert.ok(checkedIterations > 2000, `only ${checkedIterations} iterations checked`);
});

/**
 * The units of the checks the random body `g`, instrumented with fuel 1,
 * has at resume points: after each pad's `call $log` (`after`), or after
 * the catch a handler pad starts (`handler`). A pad is `i32.const id; call
 * 1`, found by those bytes (no other code has them).
 */
function resumeCharges(b: Uint8Array, g: ReturnType<typeof randomBody>) {
  const code = sectionsOf(b).find(([id]) => id === 10)![1];
  const after = new Map<number, number>(), handler = new Map<number, number>();
  const find = (pat: number[]) => {
    outer: for (let q = 0; q + pat.length <= code.length; q++) {
      for (let k = 0; k < pat.length; k++) if (code[q + k] !== pat[k]) continue outer;
      return q;
    }
    return -1;
  };
  const costAt = (q: number) => {
    let n = 0, shift = 0, x;
    do {
      x = code[q++];
      n |= (x & 0x7f) << shift;
      shift += 7;
    } while (x & 0x80);
    return n;
  };
  // A check with fuel 1 ends: i32.const 1 global.set 0 call $wait(0) end.
  const TAIL = [0x41, 1, 0x24, 0, 0x10, 0, 0x0b];
  for (let id = 0; id < g.pads.length; id++) {
    const pad = [...i32(id), CALL, 1];
    const q = find(pad);
    assert.ok(q >= 0, `pad ${id} not found`);
    const k = q + pad.length;
    if (code[k] === 0x23 && code[k + 1] === 0 && code[k + 2] === 0x41) after.set(id, costAt(k + 3));
    if (!g.handlerPads.has(id)) continue;
    for (const len of [1, 2]) { // the check's cost: one or two bytes
      const c = q - (20 + len);
      if (
        c >= 0 && code[c] === 0x23 && code[c + 1] === 0 && code[c + 2] === 0x41 &&
        TAIL.every((v, i) => code[q - TAIL.length + i] === v)
      ) handler.set(id, costAt(c + 3));
    }
  }
  return { after, handler };
}

Deno.test("fuel: after a call returns, fewer than RESUME_CHECK_UNITS run before a check pays (random bodies)", () => {
  // With fuel 1 every check that runs calls wait. A stretch opens at each resume point (after
  // `call $log`, at a catch): with a check there, what runs until the next resume check must be
  // what it charged; without, fewer than RESUME_CHECK_UNITS units. Bytes of a loop's later
  // iterations (its header's check pays for them) are not the stretch's; what runs after the
  // loop is left is.
  let seed = 4242;
  const rand = (n: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed >>> 8) % n;
  };
  const limit = RESUME_CHECK_UNITS * CODE_BYTES_PER_FUEL;
  let checked = 0, unchecked = 0, longest = 0;
  for (let f = 0; f < 1500; f++) {
    const g = randomBody(rand, RESUME_CHECK_UNITS / 8); // longer pads: many rests need a check
    const bytes = assemble({
      types: [[[], []], [[I32], []]],
      imports: [{ module: "env", name: "wait", func: 0 }, { module: "env", name: "log", func: 1 }],
      funcs: [{ type: 1, locals: [I32], body: g.body }, { type: 0, body: nops(150) }],
      tags: [0],
      exports: [{ name: "f", func: 2 }],
    });
    const out = instrumented(bytes, 1).bytes;
    const charges = resumeCharges(out, g);
    const inside = (region: number) => { // the region and the loops it is in
      const set = new Set([-1]);
      for (let r = region; r >= 0; r = g.loopParents[r]) set.add(r);
      return set;
    };
    const within = (r: number, loop: number) => { // r is the loop or in it
      for (; r >= 0; r = g.loopParents[r]) if (r === loop) return true;
      return false;
    };
    for (const s of [3, 77, 4321]) {
      type Stretch = { from: number; regions: Set<number>; ran: number; paid: number };
      let open: Stretch[] = [];
      let pending = -1, waited = false;
      const over: string[] = [];
      const close = () => {
        for (const st of open) {
          longest = Math.max(longest, st.ran);
          if (st.ran > st.paid) over.push(`after pad ${st.from}: ran ${st.ran}, paid ${st.paid}`);
        }
        open = [];
      };
      const credit = () => {
        if (pending < 0) return;
        const p = g.pads[pending];
        for (const st of open) if (st.regions.has(p.region)) st.ran += p.bytes;
        pending = -1;
      };
      const log = (id: number) => {
        credit();
        const p = g.pads[id];
        if (waited && p.region >= 0 && g.loopStarts[p.region] === id) {
          // Its loop's header check ran: this iteration and what is in it are paid for anew.
          for (const st of open) {
            for (const r of [...st.regions]) if (within(r, p.region)) st.regions.delete(r);
          }
        }
        if (waited && charges.handler.has(id)) { // the catch's check ran
          close();
          open.push({
            from: id,
            regions: inside(p.region),
            ran: 0,
            paid: charges.handler.get(id)! * 64,
          });
          checked++;
        } else if (!charges.after.has(id)) {
          // A resume point with no check: < limit units to run (the pad's `i32.const; call`
          // before the call counted too: 8 bytes more).
          open.push({ from: id, regions: inside(p.region), ran: 0, paid: limit - 1 + 8 });
          unchecked++;
        }
        waited = false;
        pending = id;
      };
      const wait = () => {
        if (pending >= 0 && charges.after.has(pending)) { // the check right after this pad's call
          const id = pending;
          close();
          open.push({
            from: id,
            regions: inside(g.pads[id].region),
            ran: 0,
            paid: charges.after.get(id)! * CODE_BYTES_PER_FUEL,
          });
          checked++;
          credit();
          waited = false;
          return;
        }
        credit();
        waited = true;
      };
      const inst = new WebAssembly.Instance(
        new WebAssembly.Module(out as Uint8Array<ArrayBuffer>),
        { env: { wait, log } },
      );
      try {
        (inst.exports.f as (s: number) => void)(s);
      } catch (e) {
        if (!(e instanceof (WebAssembly as unknown as { Exception: typeof Error }).Exception)) {
          throw e;
        }
      }
      credit();
      close();
      assert.deepEqual(over, [], `function ${f}, seed ${s}`);
    }
  }
  assert.ok(checked > 500 && unchecked > 5000, `checked ${checked}, unchecked ${unchecked}`);
  assert.ok(longest > limit, `no stretch longer than the threshold ran (${longest})`);
});

Deno.test("fuel: a recursion 6 000 deep runs what follows its call with looks on the way back up", () => {
  // f(n): if n { f(n - 1) } then `reps` × (nops, n += 1): before, every level's rest (paid for on
  // the way down) ran on the way back up after one look: 6 000 × 25 KB = 154 MB of code. Now
  // a check after the call charges a rest of RESUME_CHECK_UNITS or more (the long case); a
  // shorter rest runs on what was paid (the short case): at most (FUEL + MAX_PASS_UNITS + depth
  // × RESUME_CHECK_UNITS) × 64 bytes between two looks.
  const DEPTH = 6000, PAD = 250, REP = PAD + 7, GSET = 0x24;
  for (const [shape, reps] of [["long", 100], ["short", 3]] as const) {
    const rest = new Array<number[]>(reps).fill([
      ...nops(PAD),
      GGET,
      0,
      ...i32(1),
      I32_ADD,
      GSET,
      0,
    ]).flat();
    const f = [GET, 0, IF, VOID, GET, 0, ...i32(1), I32_SUB, CALL, 1, END, ...rest];
    const bytes = assemble({
      types: [[[], []], [[I32], []]],
      imports: [
        { module: "env", name: "wait", func: 0 },
        { module: "env", name: "n", global: { type: I32, mutable: true } },
      ],
      funcs: [{ type: 1, body: f }],
      exports: [{ name: "f", func: 1 }],
    });
    const r = instrumented(bytes);
    assert.equal(r.resumes, shape === "long" ? 1 : 0, shape);
    const n = new WebAssembly.Global({ value: "i32", mutable: true }, 0);
    let last = 0, most = 0, looks = 0;
    const wait = () => {
      looks++;
      most = Math.max(most, n.value - last);
      last = n.value;
    };
    const inst = new WebAssembly.Instance(
      new WebAssembly.Module(r.bytes as Uint8Array<ArrayBuffer>),
      { env: { wait, n } },
    );
    (inst.exports.f as (n: number) => void)(DEPTH);
    wait();
    assert.equal(n.value, (DEPTH + 1) * reps, shape);
    const bound = (FUEL + MAX_PASS_UNITS + DEPTH * RESUME_CHECK_UNITS) * CODE_BYTES_PER_FUEL;
    assert.ok(
      most * REP <= bound,
      `${shape}: ${most * REP} bytes between two looks (${looks} looks), bound ${bound}`,
    );
    if (shape === "long") {
      // Each level's rest is paid after its call: a look every ~FUEL units of it.
      assert.ok(most * REP <= (FUEL + MAX_PASS_UNITS) * CODE_BYTES_PER_FUEL, `${most * REP}`);
      assert.ok(looks >= (DEPTH * reps * REP) / 64 / FUEL, `${looks} looks`);
    }
  }
});

Deno.test("fuel: a load weighs LOAD_BYTES more in what runs after a call: a recursion's rest of loads looks on the way back up", () => {
  // f(n): if n { f(n - 1) } then K × (n += 1, a load): 13 bytes and a load a rep. By its bytes
  // the rest is under RESUME_CHECK_UNITS, so before every level ran it on the way back up on
  // what it paid on the way down: 6 000 × 100 loads after one look (a pointer chase through RAM
  // in each, found by attack: a neighbour's echo 1.6-2.8 s late). Weighed, it has a check.
  const DEPTH = 6000, K = 100, REP = 13, GSET = 0x24, LOAD = 0x28;
  const rep = [GGET, 0, ...i32(1), I32_ADD, GSET, 0, ...i32(0), LOAD, 2, 0, DROP];
  assert.equal(rep.length, REP);
  assert.ok(K * REP < RESUME_CHECK_UNITS * CODE_BYTES_PER_FUEL, "under the threshold by bytes");
  assert.ok(K * (REP + LOAD_BYTES) >= RESUME_CHECK_UNITS * CODE_BYTES_PER_FUEL, "over, weighed");
  const f = [
    GET,
    0,
    IF,
    VOID,
    GET,
    0,
    ...i32(1),
    I32_SUB,
    CALL,
    1,
    END,
    ...new Array<number[]>(K).fill(rep).flat(),
  ];
  const bytes = assemble({
    types: [[[], []], [[I32], []]],
    imports: [
      { module: "env", name: "wait", func: 0 },
      { module: "env", name: "n", global: { type: I32, mutable: true } },
      { module: "env", name: "memory", memory: { min: 1 } },
    ],
    funcs: [{ type: 1, body: f }],
    exports: [{ name: "f", func: 1 }],
  });
  const r = instrumented(bytes);
  assert.equal(r.resumes, 1, "a check after the call");
  const n = new WebAssembly.Global({ value: "i32", mutable: true }, 0);
  let last = 0, most = 0;
  const wait = () => {
    most = Math.max(most, n.value - last);
    last = n.value;
  };
  const inst = new WebAssembly.Instance(
    new WebAssembly.Module(r.bytes as Uint8Array<ArrayBuffer>),
    { env: { wait, n, memory: new WebAssembly.Memory({ initial: 1 }) } },
  );
  (inst.exports.f as (n: number) => void)(DEPTH);
  wait();
  assert.equal(n.value, (DEPTH + 1) * K);
  // A look every ~FUEL units of weighed rests (before: all 600 000 reps after one look).
  const bound = (FUEL + MAX_PASS_UNITS) * CODE_BYTES_PER_FUEL / (REP + LOAD_BYTES) + K;
  assert.ok(most <= bound, `${most} loads between two looks, bound ${Math.round(bound)}`);
  // A leaf's loads weigh as much on its caller's rest: the same rest in a leaf.
  const leafy = assemble({
    types: [[[], []], [[I32], []]],
    imports: [
      { module: "env", name: "wait", func: 0 },
      { module: "env", name: "n", global: { type: I32, mutable: true } },
      { module: "env", name: "memory", memory: { min: 1 } },
    ],
    funcs: [
      { type: 1, body: [GET, 0, IF, VOID, GET, 0, ...i32(1), I32_SUB, CALL, 1, END, CALL, 2] },
      { type: 0, body: new Array<number[]>(K).fill(rep).flat() },
    ],
    exports: [{ name: "f", func: 1 }],
  });
  assert.equal(instrumented(leafy).resumes, 1, "a check after the call, before the leaf's loads");
});

Deno.test("fuel: a throw weighs THROW_BYTES more and a catch's bytes count: a recursion's rest of throws looks on the way back up", () => {
  // f(n): if n { f(n - 1) } then K × (n += 1, try; throw; catch; end): 14 bytes and a throw a
  // rep. The walk counted 12 (a catch's 2 left out) and a throw as its 2 bytes, so the rest was
  // under RESUME_CHECK_UNITS: every level ran it on the way back up on what it paid on the way
  // down, 3 000 × 140 throws after one look (found by attack: 8 000 levels of 400, ~250 ns a
  // throw, a neighbour's echo seconds late). Weighed, it has a check.
  const DEPTH = 3000, K = 140, REP = 14, GSET = 0x24, TRY = 0x06, CATCH = 0x07, THROW = 0x08;
  const rep = [GGET, 0, ...i32(1), I32_ADD, GSET, 0, TRY, VOID, THROW, 0, CATCH, 0, END];
  assert.equal(rep.length, REP);
  assert.ok(K * (REP - 2) < RESUME_CHECK_UNITS * CODE_BYTES_PER_FUEL, "under, catches left out");
  const f = [GET, 0, IF, VOID, GET, 0, ...i32(1), I32_SUB, CALL, 1, END];
  const bytes = assemble({
    types: [[[], []], [[I32], []]],
    imports: [
      { module: "env", name: "wait", func: 0 },
      { module: "env", name: "n", global: { type: I32, mutable: true } },
    ],
    funcs: [{ type: 1, body: [...f, ...new Array<number[]>(K).fill(rep).flat()] }],
    tags: [0],
    exports: [{ name: "f", func: 1 }],
  });
  const r = instrumented(bytes);
  assert.ok(r.resumes >= 1, "a check after the call (and at catches)");
  const n = new WebAssembly.Global({ value: "i32", mutable: true }, 0);
  let last = 0, most = 0;
  const wait = () => {
    most = Math.max(most, n.value - last);
    last = n.value;
  };
  const inst = new WebAssembly.Instance(
    new WebAssembly.Module(r.bytes as Uint8Array<ArrayBuffer>),
    { env: { wait, n } },
  );
  (inst.exports.f as (n: number) => void)(DEPTH);
  wait();
  assert.equal(n.value, (DEPTH + 1) * K);
  // A look every ~FUEL units of weighed rests (before: all 420 000 throws after one look).
  const bound = (FUEL + MAX_PASS_UNITS) * CODE_BYTES_PER_FUEL / (REP + THROW_BYTES) + K;
  assert.ok(most <= bound, `${most} throws between two looks, bound ${Math.round(bound)}`);
});

Deno.test("fuel: a body with a try charges every throw's THROW_BYTES: too many is refused, never capped", () => {
  // A try makes the body pay for all its bytes; each throw in it weighs THROW_BYTES more.
  const body = (
    n: number,
  ) => [0x06, VOID, ...new Array<number[]>(n).fill([0x08, 0]).flat(), 0x19, END];
  const image = (n: number) =>
    assemble({
      types: [[[], []]],
      imports: [{ module: "env", name: "wait", func: 0 }],
      funcs: [{ type: 0, body: body(n) }],
      tags: [0],
      exports: [{ name: "f", func: 1 }],
    });
  const most = Math.floor(MAX_PASS_UNITS * CODE_BYTES_PER_FUEL / (2 + THROW_BYTES)) - 10;
  instrumented(image(most));
  const r = instrumentFuel(image(most + 40));
  assert.ok(
    "error" in r && /costs \d+ units of fuel/.test(r.error),
    JSON.stringify(r).slice(0, 200),
  );
});

Deno.test("fuel: a load weighs LOAD_BYTES more on a loop's path: a loop of loads looks every ~FUEL weighed units", () => {
  // loop(n): n iterations of K × (i32.const 0, i32.load, drop): 6 bytes and a load each. A unit
  // is bytes of code, and a load that misses the cache is ~300 times a byte's time: a loop of a
  // pointer chase ran ~0.25 s between looks (a neighbour's echo 0.2-1.1 s late).
  const K = 100, N = 100_000, LOAD = 0x28;
  const body = [
    LOOP,
    VOID,
    ...new Array<number[]>(K).fill([...i32(0), LOAD, 2, 0, DROP]).flat(),
    GET,
    0,
    ...i32(1),
    I32_SUB,
    TEE,
    0,
    BR_IF,
    0,
    END,
  ];
  const bytes = assemble({
    types: [[[], []], [[I32], []]],
    imports: [
      { module: "env", name: "wait", func: 0 },
      { module: "env", name: "memory", memory: { min: 1 } },
    ],
    funcs: [{ type: 1, body }],
    exports: [{ name: "loop", func: 1 }],
  });
  const r = instrumented(bytes);
  let looks = 0;
  const inst = new WebAssembly.Instance(
    new WebAssembly.Module(r.bytes as Uint8Array<ArrayBuffer>),
    { env: { wait: () => looks++, memory: new WebAssembly.Memory({ initial: 1 }) } },
  );
  (inst.exports.loop as (n: number) => void)(N);
  const weighed = Math.floor(N * (K * (6 + LOAD_BYTES)) / CODE_BYTES_PER_FUEL / FUEL);
  const unweighed = Math.ceil(N * (1 + (K * 6 + 12) / CODE_BYTES_PER_FUEL) / FUEL);
  assert.ok(unweighed < weighed, "the test's own premise");
  assert.ok(looks >= weighed, `${looks} looks for ${N} iterations of ${K} loads (${weighed})`);
});

Deno.test("fuel: branches out of many nested loops cannot make the analysis quadratic", () => {
  // 100 nested loops (after 6 000 bytes of nops: the profile wants 64 bytes a check); the
  // innermost is an if/else: 640 bytes and k branches out of every loop, or as many bytes of
  // nops. Each branch costs a step per loop it leaves: with few the analysis is exact (one arm
  // an iteration), with many it runs out of steps (PATH_STEPS_PER_BYTE) and the body pays all
  // its bytes, both arms, as before the analysis: never more work than the budget.
  const body = (k: number) => {
    const out: number[] = [...nops(6000)];
    for (let n = 0; n < 100; n++) out.push(LOOP, VOID);
    out.push(...i32(0), IF, VOID, ...nops(640));
    for (let n = 0; n < k; n++) out.push(...i32(0), BR_IF, 100); // out of every loop
    out.push(ELSE, ...nops(640 + 4 * k), END);
    for (let n = 0; n < 100; n++) out.push(END);
    return out;
  };
  const innermost = (k: number) => {
    const bytes = assemble({
      types: [[[], []]],
      imports: [{ module: "env", name: "wait", func: 0 }],
      funcs: [{ type: 0, body: body(k) }],
    });
    assert.ok(WebAssembly.validate(bytes as Uint8Array<ArrayBuffer>));
    const loops = chargedUnits(instrumented(bytes).bytes).loops;
    assert.equal(loops.length, 100);
    return { units: loops[99], steps: k * 99, budget: PATH_STEPS_PER_BYTE * bytes.length };
  };
  const few = innermost(2), many = innermost(3000);
  assert.ok(few.steps < few.budget && many.steps > many.budget, "the test's own premise");
  // One arm: 1 + (648 + 4k) / 64 units; both: about twice that.
  assert.ok(few.units <= 12, `few branches: ${few.units} units (one arm)`);
  assert.ok(many.units >= 300, `many branches: ${many.units} units (both arms, not 198)`);
});

/**
 * The instrumentation's branch hints (HINT_SECTION) of an instrumented module, checked as it
 * reads them (functions and offsets in order, one byte of hint, unlikely), with the rewritten
 * bodies (each from its locals) by defined-function index.
 */
function hintsOf(bytes: Uint8Array): { hints: [number, number[]][]; bodies: Uint8Array[] } {
  const secs = sectionsOf(bytes);
  assert.equal(secs.filter(isHints).length, 1, "only the instrumentation's hints");
  const c = secs.find(isHints)![1];
  let p = vecCount(c)[1] + vecCount(c)[0]; // past the name
  const read = () => {
    const [n, q] = vecCount(c.subarray(p));
    p += q;
    return n;
  };
  const hints: [number, number[]][] = [];
  for (let f = read(); f > 0; f--) {
    const func = read(), offsets: number[] = [];
    assert.ok(hints.length === 0 || func > hints.at(-1)![0], "functions in order");
    for (let h = read(); h > 0; h--) {
      const at = read();
      assert.ok(offsets.length === 0 || at > offsets.at(-1)!, "offsets in order");
      offsets.push(at);
      assert.equal(read(), 1, "one byte of hint");
      assert.equal(c[p++], 0, "unlikely");
    }
    hints.push([func, offsets]);
  }
  assert.equal(p, c.length, "nothing after the hints");
  const code = secs.find(([id]) => id === 10)![1], bodies: Uint8Array[] = [];
  let q = vecCount(code)[1];
  while (q < code.length) {
    const [size, at] = vecCount(code.subarray(q));
    bodies.push(code.subarray(q + at, q + at + size));
    q += at + size;
  }
  return { hints, bodies };
}

Deno.test("fuel: every check's refill is hinted unlikely; the guest's code metadata is dropped", () => {
  const def = roundTripModule();
  // The guest's own (valid) hints: one for function 0 at offset 1. Offsets into its code
  // before the rewrite, so they go.
  // A compilation priority (V8 reads it only behind a flag today): optimize function 0 at once.
  def.custom = [
    ...(def.custom ?? []),
    { name: HINT_SECTION, bytes: [1, 0, 1, 1, 1, 1] },
    { name: "metadata.code.compilation_priority", bytes: [1, 0, 0, 2, 0, 0] },
    { name: "metadata.code", bytes: [] }, // not code metadata (no dot after): kept
  ];
  const r = instrumented(assemble(def));
  assert.deepEqual(
    sectionsOf(r.bytes).filter(([id]) => id === 0).map(([, c]) => customName(c)),
    ["lguest.test", "metadata.code", HINT_SECTION], // roundTripModule has lguest.test
    "the guest's code metadata dropped",
  );
  const { hints, bodies } = hintsOf(r.bytes);
  const imported = (def.imports ?? []).filter((i) => "func" in i).length;
  let hinted = 0;
  for (const [func, offsets] of hints) {
    for (const at of offsets) {
      // i32.const 0, i32.le_s, if (void): a fuel check's test and its refill
      assert.deepEqual([...bodies[func - imported].subarray(at - 3, at + 2)], [
        0x41,
        0,
        0x4c,
        0x04,
        0x40,
      ]);
      hinted++;
    }
  }
  assert.equal(hints.at(-1)![0], imported + bodies.length - 1, "$pay's check is hinted too");
  assert.equal(hinted, r.loops + r.entries + r.resumes + 1, "every check, and $pay's");
});

Deno.test("fuel: a module gets at most MAX_HINTS branch hints", () => {
  // 4 200 functions of 15 loops each: 16 checks a function (its entry's too), 67 200 in all.
  const n = 4200, loops = Array.from({ length: 15 }, () => [LOOP, VOID, END]).flat();
  const r = instrumented(assemble({
    types: [[[], []]],
    imports: [{ module: "env", name: "wait", func: 0 }],
    funcs: Array.from({ length: n }, () => ({ type: 0, body: loops })),
  }));
  assert.equal(r.loops + r.entries, n * 16, "the test's own premise");
  const count = hintsOf(r.bytes).hints.reduce((a, [, offsets]) => a + offsets.length, 0);
  assert.ok(count <= MAX_HINTS && count > MAX_HINTS - 17, `${count} hints`);
});

Deno.test("fuel: the global section is created in order when the module has none", () => {
  const def = roundTripModule();
  delete def.globals;
  def.funcs[3].body = [...i32(4)]; // dispatch read global 1
  const bytes = assemble(def);
  const r = instrumented(bytes);
  const ids = sectionsOf(r.bytes).map(([id]) => id);
  assert.deepEqual(ids, [0, 1, 2, 3, 4, 5, 6, 7, 9, 0, 10, 11]);
  assertOtherSectionsKept(bytes, r.bytes);
  // Nothing but custom sections before the type section, no other sections at all.
  const tiny = assemble({
    types: [[[], []]],
    imports: [{ module: "env", name: "wait", func: 0 }],
    funcs: [{ type: 0, body: [LOOP, VOID, END] }],
  });
  const t = instrumented(tiny);
  assert.deepEqual(sectionsOf(t.bytes).map(([id]) => id), [1, 2, 3, 6, 7, 0, 10]);
  assert.equal(t.loops, 1);
});

Deno.test("fuel: what the rewriter refuses is an error, never bad bytes", () => {
  const base = roundTripModule();
  const cases: [string, ModuleDef, RegExp][] = [
    ["threads", {
      ...base,
      funcs: [...base.funcs, { type: 1, body: [0xfe, 0x03, 0] }],
    }, /opcode 0xfe/],
    ["no env.wait", {
      ...base,
      imports: [{ module: "env", name: "other", func: 0 }, base.imports![1]],
    }, /no env\.wait/],
    ["env.wait of another type", {
      ...base,
      imports: [{ module: "env", name: "wait", func: 1 }, base.imports![1]],
    }, /\(\) -> \(\)/],
    [
      "a start function",
      { ...base, funcs: [...base.funcs, { type: 0, body: [] }], start: 7 },
      /start/,
    ],
    ["exnref (try_table)", {
      ...base,
      funcs: [...base.funcs, { type: 1, body: [0x1f, VOID, 0, END, GET, 0] }],
    }, /opcode 0x1f/],
  ];
  for (const [what, def, want] of cases) {
    const bytes = assemble(def);
    assert.ok(
      WebAssembly.validate(bytes as Uint8Array<ArrayBuffer>) || what === "threads",
      what,
    );
    const r = instrumentFuel(bytes);
    assert.ok("error" in r, `${what}: expected an error`);
    assert.match(r.error, want, what);
  }
  const r = instrumentFuel(new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 10, 5, 1]));
  assert.ok("error" in r && /malformed/.test(r.error));
  // Outside the profile's instructions (a valid module, refused by the scanner).
  const op = (body: number[]) => ({ ...base, funcs: [...base.funcs, { type: 1, body }] });
  const refused: [string, ModuleDef, RegExp][] = [
    ["ref.null", op([0xd0, 0x70, DROP, GET, 0]), /opcode 0xd0/],
    ["ref.func", op([0xd2, 2, DROP, GET, 0]), /opcode 0xd2/],
    ["table.size", op([DROP, 0xfc, 16, 0]), /instruction 0xfc 16/],
    ["relaxed SIMD", op([GET, 0, 0xfd, 0x80, 0x02, DROP]), /SIMD instruction 0xfd 256/],
    ["a funcref local", {
      ...op([GET, 0]),
      funcs: [...base.funcs, { type: 1, locals: [0x70], body: [GET, 0] }],
    }, /value type 0x70 of a local/],
  ];
  for (const [what, def, want] of refused) {
    const res = instrumentFuel(assemble(def), { validate: false });
    assert.ok("error" in res, `${what}: expected an error`);
    assert.match(res.error, want, what);
  }
});

Deno.test("fuel: damaged images give an error or valid bytes, never an exception", async () => {
  const { bytes } = await loadImage("hello");
  let seed = 12345;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed % n;
  };
  let errors = 0;
  for (let i = 0; i < 400; i++) {
    const b = bytes.slice();
    for (let k = 1 + rand(4); k > 0; k--) b[8 + rand(b.length - 8)] = rand(256);
    const r = instrumentFuel(i % 2 ? b : b.subarray(0, 8 + rand(b.length - 8)));
    if ("error" in r) errors++;
    else assert.ok(WebAssembly.validate(r.bytes as Uint8Array<ArrayBuffer>), `case ${i}`);
  }
  assert.ok(errors > 0);
});

// ---- the engine ----------------------------------------------------------------

const LG_DATA = 0x100000, MSG = 0x100800;

/**
 * A minimal guest: LGUEST_INIT, a loop of `iterations`, CRASH "Power
 * down" (exit 0); with `simd`, a SIMD instruction first.
 */
function miniGuest(opts: { simd?: boolean; iterations?: number } = {}): Uint8Array {
  const ld = new Uint8Array(1128);
  ld.set([0x00, 0x02, 0, 0, 0xff, 0xff, 0xff, 0xff]); // irq_enabled 0x200, all IRQs blocked
  ld.fill(0xff, 20, 84); // hcall_status: ring empty
  const hcall = (eax: number, edx: number) => [...i32(eax), ...i32(edx), ...i32(0), ...i32(0)];
  // deno-fmt-ignore
  const body = [
    ...(opts.simd ? [0xfd, 0x0c, ...new Array(16).fill(0), 0xfd, 0x1b, 0, DROP] : []),
    ...hcall(1, LG_DATA), CALL, 0, DROP,
    ...i32(opts.iterations ?? 1000), SET, 0,
    LOOP, VOID, GET, 0, ...i32(1), I32_SUB, TEE, 0, BR_IF, 0, END,
    ...hcall(2, MSG), CALL, 0, DROP,
    UNREACHABLE,
  ];
  return assemble({
    types: [[[I32, I32, I32, I32], [I32]], [[], [I32]], [[], []]],
    imports: [
      { module: "env", name: "hcall", func: 0 },
      { module: "env", name: "event", func: 1 },
      { module: "env", name: "wait", func: 2 },
      { module: "env", name: "memory", memory: { min: 17 } },
    ],
    funcs: [{ type: 2, locals: [I32], body }],
    exports: [{ name: "start", func: 3 }],
    data: [
      { offset: LG_DATA, bytes: ld },
      { offset: MSG, bytes: new TextEncoder().encode("Power down\0") },
    ],
  });
}

async function withTemp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "lguest_fuel_test_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("fuel: a SIMD image is instrumented; --verbose counts the checks", async () => {
  const simd = miniGuest({ simd: true });
  assert.deepEqual(preemptionOf(await compileImage(simd, "simd")), {
    loops: 1,
    entries: 1,
    bulk: 0,
    resumes: 0,
  });
  assert.deepEqual(preemptionOf(await compileImage(miniGuest(), "plain")), {
    loops: 1,
    entries: 1,
    bulk: 0,
    resumes: 0,
  });
  await withTemp(async (dir) => {
    await Deno.writeFile(`${dir}/simd.wasm`, simd);
    await Deno.writeFile(`${dir}/plain.wasm`, miniGuest({ iterations: 3_000_000 }));
    const [a, b] = await Promise.all([
      runCli(["run", "-v", `${dir}/simd.wasm`]),
      runCli(["run", "-v", `${dir}/plain.wasm`]),
    ]);
    assert.equal(a.code, 0, describe(a));
    assert.match(a.stderr, /simd: preemptible: fuel checks at 1 loop header/, describe(a));
    assert.equal(b.code, 0, describe(b));
    assert.match(b.stderr, /plain: preemptible: fuel checks at 1 loop header/, describe(b));
  });
});

Deno.test("fuel: legacy exception handling (try/catch/catch_all/throw/rethrow/delegate) round-trips", async () => {
  // f(n): loop n times: try { if odd: throw tag(i) } catch tag { sum += payload } catch_all {};
  // then try { try { throw } delegate 0 } catch_all { sum += 1000 }; rethrow inside a catch.
  const TRY = 0x06, CATCH = 0x07, THROW = 0x08, RETHROW = 0x09, DELEGATE = 0x18, CATCH_ALL = 0x19;
  // deno-fmt-ignore
  const body = [
    BLOCK, VOID, LOOP, VOID,
      GET, 0, 0x45, BR_IF, 1, // n == 0: done
      TRY, VOID,
        GET, 0, ...i32(1), 0x71, IF, VOID, GET, 0, THROW, 0, END,
      CATCH, 0,
        GET, 1, I32_ADD, SET, 1,
      CATCH_ALL,
      END,
      GET, 0, ...i32(1), I32_SUB, SET, 0,
      BR, 0,
    END, END,
    TRY, VOID,
      TRY, VOID, ...i32(5), THROW, 0, DELEGATE, 0,
    CATCH_ALL,
      GET, 1, ...i32(1000), I32_ADD, SET, 1,
    END,
    TRY, VOID,
      TRY, VOID, ...i32(7), THROW, 0, CATCH, 0, DROP, RETHROW, 0, END,
    CATCH, 0,
      GET, 1, I32_ADD, SET, 1,
    END,
    GET, 1,
  ];
  const bytes = assemble({
    types: [[[], []], [[I32], [I32]], [[I32], []]],
    imports: [{ module: "env", name: "wait", func: 0 }],
    funcs: [{ type: 1, locals: [I32], body }],
    tags: [2],
    exports: [{ name: "f", func: 1 }],
  });
  assert.ok(WebAssembly.validate(bytes as Uint8Array<ArrayBuffer>), "the test module is invalid");
  const r = instrumented(bytes, 3);
  assert.deepEqual([r.loops, r.entries, r.bulk], [1, 1, 0]);
  const a = instantiate(bytes), b = instantiate(r.bytes);
  for (const n of [0, 1, 6, 31]) {
    assert.equal(await b.exports.f(n), await a.exports.f(n), `f(${n})`);
  }
  let odd = 0;
  for (let k = 1; k <= 31; k++) if (k % 2) odd += k;
  assert.equal(await a.exports.f(31), odd + 1000 + 7);
  assert.ok(b.counter.waits > 0);
});

// ---- memory.grow: the guest's memory never moves ------------------------------------

const GROW = 0x40, SIZE = 0x3f;

/**
 * A module importing a fixed 2-page memory with memory.grow in a plain
 * body, under a try and a block that a branch crosses, and in a loop.
 */
function growModule(): Uint8Array {
  const TRY = 0x06, CATCH_ALL = 0x19;
  // deno-fmt-ignore
  const nested = [ // nested(n): 99 if grow(n) fails (a br_if out of a try and a block), else grow(n)
    BLOCK, I32,
      TRY, I32,
        ...i32(99),
        GET, 0, GROW, 0, TEE, 1,
        ...i32(-1), 0x46, BR_IF, 1, // i32.eq
        DROP, GET, 1,
      CATCH_ALL,
        ...i32(-5),
      END,
    END,
  ];
  // deno-fmt-ignore
  const loop = [ // loop(n): Σ grow(0) over n iterations, + memory.size
    BLOCK, VOID, LOOP, VOID,
      GET, 0, 0x45, BR_IF, 1,
      GET, 1, ...i32(0), GROW, 0, I32_ADD, SET, 1,
      GET, 0, ...i32(1), I32_SUB, SET, 0,
      BR, 0,
    END, END,
    GET, 1, SIZE, 0, I32_ADD,
  ];
  return assemble({
    types: [[[], []], [[I32], [I32]]],
    imports: [
      { module: "env", name: "wait", func: 0 },
      { module: "env", name: "memory", memory: { min: 2, max: 2 } },
    ],
    funcs: [
      { type: 1, body: [GET, 0, GROW, 0] },
      { type: 1, locals: [I32], body: nested },
      { type: 1, locals: [I32], body: loop },
    ],
    exports: [{ name: "grow", func: 1 }, { name: "nested", func: 2 }, { name: "loop", func: 3 }],
  });
}

Deno.test("fuel: memory.grow becomes a grow at the maximum: n == 0 ? memory.size : -1; the buffer never detaches", async () => {
  const bytes = growModule();
  assert.ok(WebAssembly.validate(bytes as Uint8Array<ArrayBuffer>), "the test module is invalid");
  const r = instrumented(bytes, 3);
  assert.deepEqual([r.loops, r.entries, r.bulk], [1, 3, 0]);
  // Why: V8 detaches the buffer on any successful grow, of 0 pages too (if it ever stops,
  // the rewrite is still what a fixed-size memory means).
  const plainMem = new WebAssembly.Memory({ initial: 2, maximum: 2 });
  const plainBuf = plainMem.buffer;
  const a = instantiate(bytes, { memory: plainMem });
  assert.equal(await a.exports.grow(0), 2);
  console.log(`  the original's memory.grow 0 detached its buffer: ${plainBuf.byteLength === 0}`);

  const memory = new WebAssembly.Memory({ initial: 2, maximum: 2 });
  const buf = memory.buffer, view = new Uint8Array(buf);
  view[70000] = 42;
  const b = instantiate(r.bytes, { memory });
  const cases: [string, number, number][] = [
    ["grow", 0, 2],
    ["grow", 1, -1],
    ["grow", 65536, -1],
    ["grow", -1, -1],
    ["grow", 0x7fffffff, -1],
    ["nested", 0, 2],
    ["nested", 1, 99],
    ["nested", -1, 99],
    ["loop", 0, 2],
    ["loop", 1, 4],
    ["loop", 10, 22],
  ];
  for (const [f, n, want] of cases) {
    assert.equal(await b.exports[f](n), want, `${f}(${n})`);
    assert.equal(memory.buffer, buf, `${f}(${n}): the same buffer`);
    assert.equal(buf.byteLength, 2 * 65536, `${f}(${n}): not detached`);
  }
  assert.equal(view[70000], 42, "the host's view still reads the memory");
  assert.ok(b.counter.waits > 0, "the loop still pays");
  // The same with a memory index of two bytes (0x80 0x00: memory 0), where V8 takes one
  // (multi-memory): its replacement's memory.size names the same memory.
  const wide = bytes.slice();
  const grow = wide.findIndex((x, i) => x === GET && wide[i + 1] === 0 && wide[i + 2] === GROW);
  const longIdx = new Uint8Array([...wide.subarray(0, grow + 3), 0x80, ...wide.subarray(grow + 3)]);
  // Patch the body and code section sizes (one byte each here) for the extra byte.
  const code = sectionsOf(bytes).findIndex(([id]) => id === 10);
  let p = 8;
  for (let i = 0; i < code; i++) {
    p++;
    let size = 0, shift = 0, x;
    do {
      x = bytes[p++];
      size |= (x & 0x7f) << shift;
      shift += 7;
    } while (x & 0x80);
    p += size;
  }
  longIdx[p + 1]++; // the code section's size
  longIdx[p + 3]++; // the first body's size
  if (WebAssembly.validate(longIdx as Uint8Array<ArrayBuffer>)) {
    const m2 = new WebAssembly.Memory({ initial: 2, maximum: 2 });
    const buf2 = m2.buffer;
    const c = instantiate(instrumented(longIdx).bytes, { memory: m2 });
    assert.equal(await c.exports.grow(0), 2);
    assert.equal(await c.exports.grow(3), -1);
    assert.equal(await c.exports.nested(0), 2);
    assert.equal(buf2.byteLength, 2 * 65536, "not detached");
  } else console.log("  this V8 refuses a two-byte memory index: that case is not tested");
  // 7 bytes for 2: a body packed with memory.grow is refused like one packed with loops.
  const dense = (n: number) =>
    assemble({
      types: [[[], []]],
      imports: [
        { module: "env", name: "wait", func: 0 },
        { module: "env", name: "memory", memory: { min: 1, max: 1 } },
      ],
      funcs: [{ type: 0, body: [...i32(0), ...new Array(n).fill([GROW, 0]).flat(), DROP] }],
    });
  const refused = instrumentFuel(dense(1000));
  assert.ok("error" in refused);
  assert.match(refused.error, /1001 fuel checks and memory.grow replacements in 2004 bytes/);
  assert.ok(
    !("error" in instrumentFuel(dense(15))),
    "15 and the entry in 34 bytes: within 16 + 34 / 64",
  );
});

Deno.test("fuel: WasmCpu refuses a module compiled anywhere but compileImage/compileReady", async () => {
  const raw = growModule();
  assert.throws(
    () => new WasmCpu(new WebAssembly.Module(raw as Uint8Array<ArrayBuffer>), 1 << 20),
    TypeError,
  );
  const ready = await compileImage(miniGuest(), "mini");
  new WasmCpu(ready, 1 << 21).close();
});

Deno.test("fuel: a look that comes late refills less: slow units look within ~LOOK_MS, fast ones every FUEL", async () => {
  // A guest making hypercalls forever (each 16 units); the port's clock is virtual: each
  // hypercall takes `per` ms. 0.05 ms a call is slow code (FUEL units ~300 ms, as a pointer
  // chase through RAM was: a neighbour's echo 0.9-1.7 s late); then 0 ms, fast code.
  const image = guestImage({ start: [LOOP, VOID, ...hcall(9, 1_000_000), BR, 0, END] });
  const cpu = new WasmCpu(await compileImage(image, "hcalls"), 1 << 21);
  let now = 1000, per = 0.05, calls = 0, since = 0;
  const gaps: number[] = [], times: number[] = [];
  let lookAt = now;
  const port: HypercallPort = {
    hypercall: () => {
      now += per;
      since++;
      if (++calls < 200_000) return 0;
      dead = "enough";
      return LG_EVENT;
    },
    event: () => 0,
    get dead() {
      return dead;
    },
    kill: (why: string) => {
      dead ??= why;
    },
    preempt: () => {
      gaps.push(since);
      times.push(now - lookAt);
      since = 0;
      lookAt = now;
      if (calls > 100_000) per = 0;
      return false;
    },
  };
  let dead: string | null = null;
  setNowMs(() => now);
  try {
    cpu.attach(port);
    await cpu.run();
  } finally {
    setNowMs(null);
    cpu.close();
  }
  assert.equal(dead, "enough");
  const slow = gaps.slice(2, gaps.findIndex((_, i) => times[i] === 0 && i > 2) - 1);
  const hcallUnits = HCALL_BYTES / CODE_BYTES_PER_FUEL;
  // Before, every look came after FUEL units: ~6 000 calls, 300 ms.
  assert.ok(gaps[0] > FUEL / (hcallUnits + 2), `the first look after FUEL units: ${gaps[0]}`);
  assert.ok(slow.length > 100, `${slow.length} looks while slow`);
  const most = Math.max(...slow), mostMs = Math.max(...times.slice(2, 2 + slow.length));
  assert.ok(most <= 2 * MIN_REFILL / hcallUnits, `${most} calls between two looks while slow`);
  assert.ok(mostMs <= 4 * LOOK_MS, `${mostMs} ms between two looks while slow`);
  // Fast again: back to a look every FUEL units.
  const last = gaps.slice(-3, -1);
  assert.ok(last.every((g) => g > FUEL / (hcallUnits + 2)), `fast again: ${last}`);
  assert.equal(refillAfter(FUEL, LOOK_MS / 2), FUEL);
  assert.equal(refillAfter(FUEL, 1000 * LOOK_MS), MIN_REFILL);
  assert.equal(refillAfter(MIN_REFILL, 0), 2 * MIN_REFILL);
});

Deno.test("fuel: test-hostile-grow grows its memory, then its DMA and console input still work (built in and by path)", async () => {
  const raw = await loadImage("test-hostile-grow");
  await withTemp(async (dir) => {
    await Deno.writeFile(`${dir}/grow.wasm`, raw.bytes); // by path: compileImage instruments it
    const input = "hi\nthere\nlast";
    const runs = await Promise.all([
      runCli(["run", "--timeout", "30", "test-hostile-grow"], { stdin: input }),
      runCli(["run", "--timeout", "30", `${dir}/grow.wasm`], { stdin: input }),
    ]);
    for (const r of runs) {
      const why = describe(r);
      assert.equal(r.code, 0, why);
      assert.ok(!hasStackTrace(r.stdout + r.stderr), why);
      const out = r.stdout.split("\n");
      const m =
        /^grow: size (\d+), grow\(0\) (\d+), grow\(1\) -1, grow\(65536\) -1, grow\(-1\) -1, size (\d+)$/
          .exec(out[0]);
      assert.ok(m && m[1] === m[2] && m[1] === m[3] && Number(m[1]) >= 2, why);
      assert.deepEqual(out.slice(1), [
        "grow: rng 4096 bytes, random",
        "grow: read hi",
        "grow: read there",
        "grow: read last",
        "grow: done",
        "",
      ], why);
    }
  });
});

Deno.test("fuel: hello and the shell behave the same instrumented", async () => {
  const [hello, shell] = await Promise.all([
    runCli(["run", "-v", "hello"]),
    runCli(["run", "shell"], { stdin: "echo one two\npoweroff\n" }),
  ]);
  assert.equal(hello.code, 0, describe(hello));
  assert.match(hello.stdout, /^Hello from an lguest guest!/m, describe(hello));
  assert.match(
    hello.stderr,
    /hello: preemptible: fuel checks at \d+ loop header\(s\) and \d+ function entries/,
    describe(hello),
  );
  assert.equal(shell.code, 0, describe(shell));
  assert.match(shell.stdout, /^one two$/m, describe(shell));
  assert.match(shell.stdout, /Powering off\./, describe(shell));
});

// ---- preemption ------------------------------------------------------------------
// Through the CLI, with a kill-timeout: without preemption these would block
// the process (an in-process test would hang the test runner).

Deno.test("fuel: the shell answers while test-spin spins in the same host", async () => {
  await withTemp(async (dir) => {
    const config = `${dir}/two.json`;
    await Deno.writeTextFile(
      config,
      JSON.stringify({
        guests: [
          { name: "spin", image: "test-spin" },
          { name: "sh", image: "shell", console: "stdio" },
        ],
      }),
    );
    const p = spawnCli(["run", "--config", config], { stdin: "piped", killAfterMs: 20_000 });
    try {
      await p.waitFor("[spin] spinning");
      await p.waitFor("lguest$ ");
      await p.write("echo marker\n");
      await p.waitFor(/^marker$/m);
      await p.write("poweroff\n");
    } finally {
      await p.closeStdin();
    }
    const r = await p.result();
    assert.equal(r.code, 0, describe(r));
    assert.ok(!r.killed, describe(r));
    assert.match(r.stdout, /^marker$/m, describe(r));
    assert.match(r.stdout, /Powering off\./, describe(r));
    assert.ok(!hasStackTrace(r.stderr), describe(r));
  });
});

/**
 * The attack on the leaf rule (docs/security.md "Preemption by construction"): `f` makes
 * 100 000 direct calls of a 240 KB leaf (x = x * 3 + 1, 40 000 times), and `start` calls `f`
 * forever. A pass of `f` would cost 3.75·10⁸ units: charged one slice, it froze its neighbour for
 * ~6 s a look; now its leaf has a check of its own.
 */
function leafFloodGuest(): Uint8Array {
  const leaf = [GET, 0, ...new Array(40_000).fill([...i32(3), I32_MUL, ...i32(1), I32_ADD]).flat()];
  const f = [GET, 0, ...new Array(100_000).fill([CALL, 4]).flat()];
  return guestImage({
    types: [[[I32], [I32]]],
    locals: [I32],
    start: [LOOP, VOID, GET, 0, CALL, 5, SET, 0, BR, 0, END],
    funcs: [{ type: 3, body: leaf }, { type: 3, body: f }],
  });
}

/**
 * Run `guest` beside a stdio shell (`sh`) in one host from `dir`/two.json; echo to the shell
 * `echoes` times, then power it off. The run, its config and the echoes that took over a second.
 */
async function besideShell(dir: string, guest: Record<string, unknown>, echoes: number) {
  const config = `${dir}/two.json`;
  await Deno.writeTextFile(
    config,
    JSON.stringify({
      guests: [guest, { name: "sh", image: "shell", console: "stdio", memory: "16M" }],
    }),
  );
  const p = spawnCli(["run", "--config", config], { stdin: "piped", killAfterMs: 30_000 });
  const late: string[] = [];
  try {
    await p.waitFor("lguest$ ");
    for (let k = 1; k <= echoes; k++) {
      const sent = performance.now();
      await p.write(`echo marker${k}\n`);
      await p.waitFor(new RegExp(`^marker${k}$`, "m"), 20_000);
      const ms = performance.now() - sent;
      if (ms > 1000) late.push(`echo ${k}: ${Math.round(ms)} ms`);
    }
    await p.write("poweroff\n");
  } finally {
    await p.closeStdin();
  }
  return { config, late, r: await p.result() };
}

/** `--timeout 1` on `config` ends it within two seconds of the run being up, not the watchdog. */
async function assertTimeoutEnds(config: string): Promise<void> {
  const t = spawnCli(["run", "--timeout", "1", "--config", config], {
    stdin: "piped",
    killAfterMs: 30_000,
  });
  await t.waitFor("lguest$ ");
  const up = performance.now();
  const rt = await t.result();
  const ms = performance.now() - up;
  await t.closeStdin();
  assert.equal(rt.code, 124, describe(rt));
  assert.doesNotMatch(rt.stderr, /not responding/, describe(rt));
  assert.ok(
    ms < 2000,
    `--timeout 1 ended ${Math.round(ms)} ms after the prompt: ${describe(rt)}`,
  );
  assert.ok(!hasStackTrace(rt.stderr), describe(rt));
}

Deno.test("fuel: a guest whose one pass makes a slice's worth of leaf calls: its neighbour answers, --timeout ends it", async () => {
  await withTemp(async (dir) => {
    await Deno.writeFile(`${dir}/flood.wasm`, leafFloodGuest());
    const { config, late, r } = await besideShell(dir, {
      name: "flood",
      image: `${dir}/flood.wasm`,
    }, 3);
    assert.deepEqual(late, [], `the shell answers within a second: ${describe(r)}`);
    assert.equal(r.code, 0, describe(r));
    assert.ok(!r.killed, describe(r));
    assert.match(r.stdout, /Powering off\./, describe(r));
    await assertTimeoutEnds(config);
  });
});

/**
 * The attack on the entry checks (docs/security.md "Preemption by construction"): `f(n, p)`
 * recurses n levels, then each level runs K loads of a pointer chase through 16 MiB (`p = *p`,
 * a cache miss each) after its call returns; `start` builds the ring and calls `f(10 000)`
 * forever. Each level paid for its rest on the way down: before, 10 000 × 26 KB of loads ran on
 * the way back up with no look (a neighbour's echo 2.8–4.3 s).
 */
function recursionGuest(): Uint8Array {
  const K = 8700, DEPTH = 10_000, LOAD = 0x28, TEE_ = TEE, LT_U = 0x49, SHL = 0x74, AND = 0x71;
  const STORE = 0x36;
  const f = [
    GET,
    0,
    IF,
    VOID,
    GET,
    0,
    ...i32(1),
    I32_SUB,
    GET,
    1,
    CALL,
    4,
    SET,
    1,
    END,
    GET,
    1,
    ...new Array<number[]>(K).fill([LOAD, 2, 0]).flat(),
  ];
  // The ring: cell c at 0x400000 + c * 64 holds the address of cell (c * 5 + 0x2b5a3) & 0x3ffff.
  // deno-fmt-ignore
  const start = [
    LOOP, VOID,
    GET, 0, ...i32(6), SHL, ...i32(0x400000), I32_ADD,
    GET, 0, ...i32(5), I32_MUL, ...i32(0x2b5a3), I32_ADD, ...i32(0x3ffff), AND, ...i32(6), SHL,
    ...i32(0x400000), I32_ADD,
    STORE, 2, 0,
    GET, 0, ...i32(1), I32_ADD, TEE_, 0, ...i32(0x40000), LT_U, BR_IF, 0,
    END,
    ...i32(0x400000), SET, 1,
    LOOP, VOID, ...i32(DEPTH), GET, 1, CALL, 4, SET, 1, BR, 0, END,
  ];
  return guestImage({
    types: [[[I32, I32], [I32]]],
    locals: [I32, I32],
    start,
    funcs: [{ type: 3, body: f }],
    patch: (m) => {
      (m.imports![3] as { memory?: { min: number } }).memory = { min: 512 };
    },
  });
}

Deno.test("fuel: a deep recursion with a long rest after its call: its neighbour answers, --timeout ends it", async () => {
  await withTemp(async (dir) => {
    await Deno.writeFile(`${dir}/rec.wasm`, recursionGuest());
    const { config, late, r } = await besideShell(
      dir,
      { name: "rec", image: `${dir}/rec.wasm` },
      3,
    );
    assert.deepEqual(late, [], `the shell answers within a second: ${describe(r)}`);
    assert.equal(r.code, 0, describe(r));
    assert.ok(!r.killed, describe(r));
    await assertTimeoutEnds(config);
  });
});

/**
 * The attack on inline device requests (docs/security.md, "A guest that ignores LG_EVENT"): a
 * 32 MiB guest whose first device is a block disk binds a reply buffer, then forever recurses
 * `depth` deep and, in each frame's rest on the way back up, sends one 64 KiB write (16 × 4 KiB
 * of zeros from 0x300000) to the disk, never looking at LG_EVENT.
 */
function inlineDeviceGuest(depth: number): Uint8Array {
  const KEY = 0x2001000, REPLY = 0x200000, DMA = 0x201000;
  const st = (a: number, v: number) => [...i32(a), ...i32(v), 0x36, 2, 0]; // i32.store
  const hc = (eax: number, edx: number, ebx: number, ecx: number) => [
    ...i32(eax),
    ...i32(edx),
    ...i32(ebx),
    ...i32(ecx),
    CALL,
    0,
    DROP,
  ];
  const GSET = 0x24;
  // f(): if g { g--; f() }; SEND_DMA(KEY, DMA)
  const f = [
    GGET,
    0,
    IF,
    VOID,
    GGET,
    0,
    ...i32(1),
    I32_SUB,
    GSET,
    0,
    CALL,
    4,
    END,
    ...hc(13, KEY, DMA, 0),
  ];
  // deno-fmt-ignore
  const start = [
    ...hc(12, KEY, REPLY, (1 << 8) | 1), // BIND_DMA: one reply buffer
    ...st(KEY, 1), ...st(KEY + 4, 0), ...st(KEY + 8, 16 * 4096), ...st(KEY + 12, 0), // a write of 64 KiB at 0
    LOOP, VOID, ...i32(depth), GSET, 0, CALL, 4, BR, 0, END,
  ];
  const dma = new Uint8Array(100), dv = new DataView(dma.buffer);
  for (let i = 0; i < 16; i++) {
    dv.setUint32(4 + 4 * i, 0x300000 + 4096 * i, true);
    dv.setUint16(68 + 2 * i, 4096, true);
  }
  return guestImage({
    types: [[[], []]],
    start,
    funcs: [{ type: 2, body: f }],
    patch: (m) => {
      m.globals = [{ type: I32, mutable: true, init: i32(0) }];
      m.data!.push({ offset: REPLY, bytes: new Uint8Array(100) }, { offset: DMA, bytes: dma });
    },
  });
}

Deno.test("host: after its slice a device request waits for the guest's next stop: a guest ignoring LG_EVENT on a ,sync disk cannot hold its neighbour", async () => {
  await withTemp(async (dir) => {
    await Deno.writeFile(`${dir}/blk.wasm`, inlineDeviceGuest(15_000));
    const disk = `${dir}/d.img`;
    await Deno.writeFile(disk, new Uint8Array(4 << 20).fill(0xa5));
    const { late, r } = await besideShell(dir, {
      name: "blk",
      image: `${dir}/blk.wasm`,
      memory: "32M",
      block: [`${disk},sync`],
    }, 4);
    // Served inside its hypercalls after its slice, each frame's write on the way back up held
    // the shell 1.6-3.3 s (found by attack).
    assert.deepEqual(late, [], `the shell answers within a second: ${describe(r)}`);
    assert.equal(r.code, 0, describe(r));
    assert.ok(!hasStackTrace(r.stderr), describe(r));
    // The attack's writes did reach the disk (its first 64 KiB are the guest's zeros now).
    const head = (await Deno.readFile(disk)).subarray(0, 65536);
    assert.ok(head.every((b) => b === 0), "the guest's writes were served");
  });
});

Deno.test("fuel: lguest run test-spin ended by SIGTERM still exits 143 at once", async () => {
  const p = spawnCli(["run", "test-spin"], { killAfterMs: 15_000 });
  await p.waitFor("spinning");
  const sent = performance.now();
  p.kill("SIGTERM");
  const r = await p.result();
  assert.equal(r.code, 143, describe(r));
  assert.ok(performance.now() - sent < 2_000, describe(r));
});
