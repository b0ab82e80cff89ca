/**
 * The cost of fuel instrumentation (`engines/wasm_fuel.ts`): ns per loop
 * iteration of small wasm loops, original against instrumented, run the
 * way a guest runs (inside `WebAssembly.promising`, `env.wait` the
 * engine's `lazySuspending` function that, as a fuel check whose time
 * slice is not over, decides undefined: the guest goes on).
 *
 *   deno run --allow-read bench/fuel.ts
 *
 * - `spin`: test-spin's loop (`volatile n; for (;;) n++`: load, add,
 *   store) with a down-counter to end it;
 * - `compute`: an LCG with a xor-shift, all in locals;
 * - `hcall`: NOP hypercalls through the real Host port (the hypercall
 *   benchmark's loop);
 * - `wait`: a loop calling `env.wait` every iteration: what one fuel check
 *   costs when the slice is not over, before the guest's first park (a
 *   call into JavaScript and back) and after it (a JSPI suspension and a
 *   microtask, as every look was before `lazySuspending`: the gap other
 *   guests' resumes and devices' promise hops run in).
 *
 * Not part of `deno task bench`; the figures are in docs/design-notes.md.
 *
 * @module
 */

import { LHCALL_LGUEST_INIT, LHREQ_INITIALIZE } from "../abi/constants.ts";
import type { GuestCpu } from "../engines/engine.ts";
import { lazySuspending, type Park, promising } from "../engines/jspi.ts";
import { hcallImport } from "../engines/wasm.ts";
import { FUEL, instrumentFuel } from "../engines/wasm_fuel.ts";
import { Host } from "../host/host.ts";
import { assemble, I32, i32 } from "../tests/helpers/wasm_asm.ts";
import { median } from "./lib.ts";

const LOOP = 0x03, END = 0x0b, BR_IF = 0x0d, CALL = 0x10, DROP = 0x1a;
const GET = 0x20, SET = 0x21, TEE = 0x22;
const LOAD = [0x28, 2, 0], STORE = [0x36, 2, 0];
const ADD = 0x6a, SUB = 0x6b, MUL = 0x6c, XOR = 0x73, SHR_U = 0x76;
/** n--; loop while n != 0 (n is local 0). */
const NEXT = [GET, 0, ...i32(1), SUB, TEE, 0, BR_IF, 0];

// deno-fmt-ignore
const COMPUTE = [ // x = n; do { x = x * 1664525 + 1013904223; x ^= x >>> 13 } while (--n)
  GET, 0, SET, 1,
  LOOP, 0x40,
    GET, 1, ...i32(1664525), MUL, ...i32(1013904223), ADD, TEE, 1,
    GET, 1, ...i32(13), SHR_U, XOR, SET, 1,
    ...NEXT,
  END,
  GET, 1,
];

function module(): Uint8Array {
  return assemble({
    types: [[[], []], [[I32], []], [[I32], [I32]], [[I32, I32, I32, I32], [I32]]],
    imports: [{ module: "env", name: "wait", func: 0 }, { module: "env", name: "hcall", func: 3 }],
    memory: { min: 1 },
    funcs: [
      { // spin(n)
        type: 1,
        body: [LOOP, 0x40, ...i32(16), ...i32(16), ...LOAD, ...i32(1), ADD, ...STORE, ...NEXT, END],
      },
      { // compute(n) -> x
        type: 2,
        locals: [I32],
        body: COMPUTE,
      },
      { // hcall(n)
        type: 1,
        body: [LOOP, 0x40, ...i32(0), ...i32(0), ...i32(0), ...i32(0), CALL, 1, DROP, ...NEXT, END],
      },
      { type: 1, body: [LOOP, 0x40, CALL, 0, ...NEXT, END] }, // wait(n)
    ],
    exports: [
      { name: "spin", func: 2 },
      { name: "compute", func: 3 },
      { name: "hcall", func: 4 },
      { name: "wait", func: 5 },
    ],
  });
}

type Loop = (n: number) => Promise<unknown>;

function instantiate(
  bytes: Uint8Array,
  hcall: unknown,
  decide: () => Park | undefined = () => undefined,
): Record<string, Loop> {
  const wait = lazySuspending(decide);
  const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>), {
    env: { wait, hcall },
  } as WebAssembly.Imports);
  const out: Record<string, Loop> = {};
  for (const [k, v] of Object.entries(inst.exports)) {
    if (typeof v === "function") out[k] = promising(v as () => unknown); // not $fuel (a global)
  }
  return out;
}

/** A NOP-hypercall port, as in bench/hypercall.ts. */
function hcallPort(): unknown {
  const ram = new Uint8Array(1 << 20);
  const cpu: GuestCpu = { memory: ram, attach() {}, run: () => Promise.resolve(), close() {} };
  const file = new Host().open(cpu);
  file.write([LHREQ_INITIALIZE, ram.length / 4096, 0, 0, 0]);
  file.hypercall(LHCALL_LGUEST_INIT, 0x10000, 0, 0);
  ram.fill(0xff, 0x10000 + 20, 0x10000 + 84);
  return hcallImport({ port: file });
}

async function nsPerIteration(f: Loop, n: number): Promise<number> {
  await f(n / 10); // warm up
  const xs: number[] = [];
  for (let i = 0; i < 9; i++) {
    const t = performance.now();
    await f(n);
    xs.push(((performance.now() - t) * 1e6) / n);
  }
  return median(xs);
}

const orig = module();
const r = instrumentFuel(orig);
if ("error" in r) throw new Error(r.error);
const hcall = hcallPort();
const a = instantiate(orig, hcall), b = instantiate(r.bytes, hcall);
console.log(`fuel check every ${FUEL} iterations; median of 9 runs, ns per iteration\n`);
console.log("| loop | original | instrumented | difference |");
console.log("|---|---|---|---|");
for (
  const [name, n] of [["spin", 50_000_000], ["compute", 50_000_000], ["hcall", 5_000_000]] as const
) {
  const x = await nsPerIteration(a[name], n);
  const y = await nsPerIteration(b[name], n);
  console.log(
    `| ${name} | ${x.toFixed(3)} | ${y.toFixed(3)} | ${(y - x).toFixed(3)} (${
      ((y / x - 1) * 100).toFixed(1)
    }%) |`,
  );
}
const w = await nsPerIteration(a.wait, 2_000_000);
// A guest that has parked once: its first look parks (a promise settled at once), then none does.
let parkOnce: Park | undefined = () => Promise.resolve();
const c = instantiate(orig, hcall, () => {
  const p = parkOnce;
  parkOnce = undefined;
  return p;
});
await c.wait(1);
const s = await nsPerIteration(c.wait, 2_000_000);
console.log(
  `\none fuel check that does not preempt: ${w.toFixed(1)} ns before the guest's first park ` +
    `(a plain call), ${s.toFixed(1)} ns after it (a JSPI suspension for a microtask)`,
);
