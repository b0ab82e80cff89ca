/**
 * A hand-assembled wasm module for the hypercall benchmark: it imports
 * `env.hcall (i32,i32,i32,i32)->i32` and exports `loop(n)`, which calls
 * hcall(0, 0, 0, 0) — LHCALL_FLUSH_ASYNC, the NOP — n times. The same
 * bytes run against the real Host port and against a bare JS function, so
 * the two loops differ only in what the import does.
 *
 * @module
 */

import { uleb } from "../engines/wasm_fuel.ts";

function section(id: number, body: number[]): number[] {
  return [id, ...uleb(body.length), ...body];
}

function str(s: string): number[] {
  return [...uleb(s.length), ...new TextEncoder().encode(s)];
}

const I32 = 0x7f;

/** The module's bytes. */
export function hcallLoopModule(): Uint8Array {
  const types = section(1, [
    2,
    0x60,
    4,
    I32,
    I32,
    I32,
    I32,
    1,
    I32, // (i32 x4) -> i32
    0x60,
    1,
    I32,
    0, // (i32) -> ()
  ]);
  const imports = section(2, [1, ...str("env"), ...str("hcall"), 0x00, 0]);
  const funcs = section(3, [1, 1]);
  const exports = section(7, [1, ...str("loop"), 0x00, 1]);
  const body = [
    1,
    1,
    I32, // one local i32 (i)
    0x02,
    0x40, // block
    0x03,
    0x40, // loop
    0x20,
    1,
    0x20,
    0,
    0x4e,
    0x0d,
    1, // if i >= n (signed) br 1
    0x41,
    0,
    0x41,
    0,
    0x41,
    0,
    0x41,
    0,
    0x10,
    0,
    0x1a, // drop(hcall(0,0,0,0))
    0x20,
    1,
    0x41,
    1,
    0x6a,
    0x21,
    1, // i++
    0x0c,
    0, // br 0
    0x0b,
    0x0b,
    0x0b, // end loop, block, func
  ];
  const code = section(10, [1, ...uleb(body.length), ...body]);
  return new Uint8Array([
    0x00,
    0x61,
    0x73,
    0x6d,
    1,
    0,
    0,
    0,
    ...types,
    ...imports,
    ...funcs,
    ...exports,
    ...code,
  ]);
}
