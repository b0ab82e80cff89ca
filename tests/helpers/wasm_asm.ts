/**
 * Test helper: a minimal WebAssembly module assembler. Function bodies are
 * raw instruction bytes (with {@link i32}, {@link i64}, … for the
 * immediates); the assembler writes the sections around them.
 *
 * @module
 */

/** Value types. */
export const I32 = 0x7f, I64 = 0x7e, F32 = 0x7d, F64 = 0x7c, FUNCREF = 0x70;

/** Unsigned LEB128. */
export function uleb(n: number): number[] {
  const out: number[] = [];
  n >>>= 0;
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

/** Signed LEB128 of any integer (bigint for 64-bit values). */
export function sleb(v: number | bigint): number[] {
  let n = BigInt(v);
  const out: number[] = [];
  for (;;) {
    const b = Number(n & 0x7fn);
    n >>= 7n;
    if ((n === 0n && (b & 0x40) === 0) || (n === -1n && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

/** `i32.const n`. */
export const i32 = (n: number): number[] => [0x41, ...sleb(n | 0)];
/** `i64.const n`. */
export const i64 = (n: bigint): number[] => [0x42, ...sleb(BigInt.asIntN(64, n))];
/** `f32.const x`. */
export function f32(x: number): number[] {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setFloat32(0, x, true);
  return [0x43, ...b];
}
/** `f64.const x`. */
export function f64(x: number): number[] {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setFloat64(0, x, true);
  return [0x44, ...b];
}

/** A name (length-prefixed UTF-8). */
export function str(s: string): number[] {
  const b = new TextEncoder().encode(s);
  return [...uleb(b.length), ...b];
}

function vec(items: number[][]): number[] {
  return [...uleb(items.length), ...items.flat()];
}

function section(id: number, body: number[]): number[] {
  return [id, ...uleb(body.length), ...body];
}

/** An import. */
export type Import =
  | { module: string; name: string; func: number }
  | { module: string; name: string; memory: { min: number; max?: number } }
  | { module: string; name: string; global: { type: number; mutable?: boolean } };

/** A defined function: its type index, locals (type per local) and body (without the final end). */
export interface Func {
  type: number;
  locals?: number[];
  body: number[];
}

/** A whole module. */
export interface ModuleDef {
  /** Function types: [params, results]. */
  types: [number[], number[]][];
  imports?: Import[];
  funcs: Func[];
  /** One funcref table of this many entries. */
  table?: number;
  /** A defined memory (pages). */
  memory?: { min: number; max?: number };
  /** Exception tags (legacy exception handling): their type indices. */
  tags?: number[];
  globals?: { type: number; mutable?: boolean; init: number[] }[];
  exports?: { name: string; func: number }[];
  start?: number;
  /** Active element segments of table 0. */
  elems?: { offset: number; funcs: number[] }[];
  /** Active data segments of memory 0. */
  data?: { offset: number; bytes: ArrayLike<number> }[];
  /** Custom sections, written before the type section. */
  custom?: { name: string; bytes: number[] }[];
}

function limits(l: { min: number; max?: number }): number[] {
  return l.max === undefined ? [0, ...uleb(l.min)] : [1, ...uleb(l.min), ...uleb(l.max)];
}

function importEntry(i: Import): number[] {
  const head = [...str(i.module), ...str(i.name)];
  if ("func" in i) return [...head, 0, ...uleb(i.func)];
  if ("memory" in i) return [...head, 2, ...limits(i.memory)];
  return [...head, 3, i.global.type, i.global.mutable ? 1 : 0];
}

function codeEntry(f: Func): number[] {
  const body = [...vec((f.locals ?? []).map((t) => [1, t])), ...f.body, 0x0b];
  return [...uleb(body.length), ...body];
}

const one = (t: number): number[] => [t];

/** An active segment's head: memory/table 0, offset `i32.const offset`. */
const at = (offset: number): number[] => [0, ...i32(offset), 0x0b];

/** Assemble a module. */
export function assemble(m: ModuleDef): Uint8Array {
  const types = m.types.map(([p, r]) => [0x60, ...vec(p.map(one)), ...vec(r.map(one))]);
  const parts: number[][] = [[0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0]];
  const add = (id: number, body: number[] | undefined) => body && parts.push(section(id, body));
  for (const c of m.custom ?? []) add(0, [...str(c.name), ...c.bytes]);
  add(1, vec(types));
  if (m.imports?.length) add(2, vec(m.imports.map(importEntry)));
  add(3, vec(m.funcs.map((f) => uleb(f.type))));
  if (m.table !== undefined) add(4, vec([[FUNCREF, ...limits({ min: m.table, max: m.table })]]));
  if (m.memory) add(5, vec([limits(m.memory)]));
  if (m.tags?.length) add(13, vec(m.tags.map((t) => [0, ...uleb(t)])));
  if (m.globals?.length) {
    add(6, vec(m.globals.map((g) => [g.type, g.mutable ? 1 : 0, ...g.init, 0x0b])));
  }
  if (m.exports?.length) add(7, vec(m.exports.map((e) => [...str(e.name), 0, ...uleb(e.func)])));
  if (m.start !== undefined) add(8, uleb(m.start));
  if (m.elems?.length) {
    add(9, vec(m.elems.map((e) => [...at(e.offset), ...vec(e.funcs.map(uleb))])));
  }
  add(10, vec(m.funcs.map(codeEntry)));
  const data = (d: { offset: number; bytes: ArrayLike<number> }) => [
    ...at(d.offset),
    ...uleb(d.bytes.length),
    ...Array.from(d.bytes),
  ];
  if (m.data?.length) add(11, vec(m.data.map(data)));
  return new Uint8Array(parts.flat());
}

/** [id, content] of every section of the module `b`, in order. */
export function sectionsOf(b: Uint8Array): [number, Uint8Array][] {
  const out: [number, Uint8Array][] = [];
  let p = 8;
  while (p < b.length) {
    const id = b[p++];
    let size = 0, shift = 0, x;
    do {
      x = b[p++];
      size |= (x & 0x7f) << shift;
      shift += 7;
    } while (x & 0x80);
    out.push([id, b.subarray(p, p + size)]);
    p += size;
  }
  return out;
}
