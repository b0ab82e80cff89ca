/**
 * The guest-image profile: exactly what a wasm guest image may contain,
 * checked on the raw bytes before V8 sees them (docs/guest-abi.md §1.1,
 * docs/security.md "The image is hostile input").
 *
 * The image is hostile input like a hypercall argument: this is a strict,
 * bounded, single-pass parser of every section but the function bodies
 * (their instructions are checked by the fuel scanner, whose opcode table
 * is the closed list of instructions, `tools/wasm_fuel_scanner.ts`), and
 * the limits below bound what one image can make V8 allocate on the host
 * beyond the guest's RAM. Anything outside is an {@link ImageError}: one
 * line, the image refused before any guest runs.
 *
 * @module
 */

import { printable } from "../sys/text.ts";
import { ImageError } from "./image_error.ts";
import { ByteReader } from "./wasm_bytes.ts";
import { otherKind } from "./image_kind.ts";

export { ImageError };

/** The profile's limits (docs/guest-abi.md §1.1 lists them, docs/security.md bounds memory with them). */
export const LIMITS = {
  /** The whole image file. */
  imageBytes: 16 << 20,
  /** The code section (all function bodies). */
  codeBytes: 4 << 20,
  /** One function body. */
  bodyBytes: 256 << 10,
  /** Defined functions. */
  functions: 50_000,
  /** Function types. */
  types: 4_096,
  /** Parameters, and results, of one function type. */
  arity: 64,
  /** Locals of one function, parameters included. */
  locals: 50_000,
  /** Defined globals. */
  globals: 1_024,
  /** Entries of the one table (its initial size; table.grow is not in the profile). */
  tableEntries: 65_536,
  /** Element segments. */
  elemSegments: 64,
  /** Data segments. */
  dataSegments: 4_096,
  /** Exception tags. */
  tags: 256,
} as const;

const I32 = 0x7f, I64 = 0x7e, F32 = 0x7d, F64 = 0x7c, V128 = 0x7b, FUNCREF = 0x70;

/** The imports of the guest ABI: name, kind, and for functions [params, results]. */
const IMPORTS: Record<string, { kind: number; type?: [number[], number[]]; required: boolean }> = {
  memory: { kind: 2, required: true },
  hcall: { kind: 0, type: [[I32, I32, I32, I32], [I32]], required: true },
  event: { kind: 0, type: [[], [I32]], required: true },
  wait: { kind: 0, type: [[], []], required: true },
  rdtsc: { kind: 0, type: [[], [I64]], required: false },
};

const SECTION_NAMES = [
  "custom",
  "type",
  "import",
  "function",
  "table",
  "memory",
  "global",
  "export",
  "start",
  "element",
  "code",
  "data",
  "data count",
  "tag",
];
/** Section ids in their required order (custom sections anywhere). */
const ORDER = [1, 2, 3, 4, 5, 13, 6, 7, 8, 9, 12, 10, 11];

/** An image outside the profile: the reason, without the image's name. */
class Refused extends Error {}
/** Not even well-formed WebAssembly. */
class Malformed extends Refused {}
/** No wasm magic. */
class NotWasm extends Error {}

class Reader extends ByteReader {
  protected malformed(message: string): Error {
    return new Malformed(message);
  }
  /** A count, refused above `max` (before anything is allocated for it). */
  count(what: string, max: number): number {
    const n = this.u32();
    if (n > max) throw new Refused(`${n} ${what} (the profile allows ${max})`);
    return n;
  }
  /** A name, decoded for comparison and messages (bounded: its bytes are in the image). */
  name(): string {
    const n = this.u32();
    const start = this.pos;
    this.skip(n);
    return new TextDecoder("utf-8", { fatal: false }).decode(this.b.subarray(start, this.pos));
  }
  valtype(where: string): number {
    const t = this.byte();
    if (t >= V128 && t <= I32) return t;
    throw new Refused(`${where}: value type 0x${t.toString(16)} (only i32 i64 f32 f64 v128)`);
  }
  /** A constant expression: one `T.const` then `end`. */
  constExpr(type: number, where: string): void {
    const op = this.byte();
    const want = { [I32]: 0x41, [I64]: 0x42, [F32]: 0x43, [F64]: 0x44, [V128]: 0xfd }[type];
    if (op !== want) {
      throw new Refused(
        `${where}: initializer is not a constant of its type (opcode 0x${op.toString(16)})`,
      );
    }
    if (op === 0x41) this.skipLeb(32);
    else if (op === 0x42) this.skipLeb(64);
    else if (op === 0x43) this.skip(4);
    else if (op === 0x44) this.skip(8);
    else {
      if (this.u32() !== 12) throw new Refused(`${where}: initializer is not v128.const`);
      this.skip(16);
    }
    if (this.byte() !== 0x0b) throw new Refused(`${where}: initializer is not a single constant`);
  }
  done(what: string): void {
    if (this.pos !== this.end) {
      throw new Malformed(`${what} section: ${this.end - this.pos} bytes left over`);
    }
  }
}

/** What the profile learnt of an image (for the memory bound and -v). */
export interface ProfileInfo {
  functions: number;
  codeBytes: number;
  tableEntries: number;
  globals: number;
  /** The memory import's minimum, in 64 KiB pages. */
  minPages: number;
  rdtsc: boolean;
}

/**
 * Check an image against the profile; returns what it learnt, or throws
 * an {@link ImageError} `NAME: refused: REASON` (one line, printable).
 */
export function checkProfile(bytes: Uint8Array, name: string): ProfileInfo {
  try {
    return check(bytes);
  } catch (e) {
    if (e instanceof NotWasm) {
      const why = otherKind(bytes, name, "wasm") ?? "bad magic";
      throw new ImageError(`${printable(name, 100)}: not a WebAssembly guest image (${why})`);
    }
    if (e instanceof Malformed) {
      throw new ImageError(
        `${printable(name, 100)}: invalid WebAssembly image: ${printable(e.message, 300)}`,
      );
    }
    if (e instanceof Refused) {
      throw new ImageError(
        `${printable(name, 100)}: ${printable(e.message, 300)} ` +
          "(outside the guest-image profile, docs/guest-abi.md §1.1)",
      );
    }
    throw e;
  }
}

function check(b: Uint8Array): ProfileInfo {
  if (b.length > LIMITS.imageBytes) {
    throw new Refused(`${b.length} bytes (the profile allows ${LIMITS.imageBytes})`);
  }
  if (b.length < 8 || b[0] !== 0 || b[1] !== 0x61 || b[2] !== 0x73 || b[3] !== 0x6d) {
    throw new NotWasm();
  }
  if (b[4] !== 1 || b[5] !== 0 || b[6] !== 0 || b[7] !== 0) {
    throw new Malformed("not a WebAssembly version 1 module");
  }
  const types: [number[], number[]][] = [];
  let importedFuncs = 0;
  const funcTypes: number[] = []; // every function's type: imports, then defined
  const seen = new Set<string>();
  let tableEntries = 0, globals = 0, minPages = 0, dataCount = -1, dataSegments = -1;
  let hasStart = false, codeBytes = 0;
  const r = new Reader(b, 8, b.length);
  let last = -1;
  while (r.pos < b.length) {
    const id = r.byte();
    const size = r.u32();
    const what = SECTION_NAMES[id] ?? `id ${id}`;
    if (size > b.length - r.pos) {
      throw new Malformed(`the ${what} section runs past end of the module`);
    }
    const s = new Reader(b, r.pos, r.pos + size);
    r.skip(size);
    if (id !== 0) {
      const rank = ORDER.indexOf(id);
      if (rank < 0) throw new Refused(`section id ${id} is not in the profile`);
      if (rank <= last) throw new Refused(`${what} section out of order or repeated`);
      last = rank;
    }
    switch (id) {
      case 0:
        s.name(); // custom: a name, then anything (ignored)
        s.pos = s.end;
        break;
      case 1: // type
        for (let n = s.count("types", LIMITS.types), i = 0; i < n; i++) {
          const form = s.byte();
          if (form !== 0x60) {
            throw new Refused(
              `type ${i}: form 0x${
                form.toString(16)
              } (GC and other non-function types are not in the profile)`,
            );
          }
          const params: number[] = [], results: number[] = [];
          for (let k = s.count("parameters", LIMITS.arity); k > 0; k--) {
            params.push(s.valtype(`type ${i}`));
          }
          for (let k = s.count("results", LIMITS.arity); k > 0; k--) {
            results.push(s.valtype(`type ${i}`));
          }
          types.push([params, results]);
        }
        break;
      case 2: // import
        for (let n = s.count("imports", Object.keys(IMPORTS).length); n > 0; n--) {
          const mod = s.name(), field = s.name(), kind = s.byte();
          const spec = mod === "env" && Object.hasOwn(IMPORTS, field) ? IMPORTS[field] : undefined;
          if (spec === undefined) {
            throw new Refused(
              `imports ${mod}.${field}, which the lguest guest ABI does not provide${
                mod.startsWith("wasi_") ? " (a WASI program? build it with 'lguest cc')" : ""
              }`,
            );
          }
          if (seen.has(field)) throw new Refused(`imports env.${field} twice`);
          seen.add(field);
          if (kind !== spec.kind) {
            throw new Refused(`env.${field} is imported as the wrong kind (${kind})`);
          }
          if (kind === 2) {
            const flags = s.byte();
            if (flags > 1) {
              throw new Refused(
                `env.memory: limits flags 0x${
                  flags.toString(16)
                } (shared or 64-bit memory is not in the profile)`,
              );
            }
            minPages = s.u32();
            if (flags & 1) s.u32();
          } else {
            const t = s.u32();
            if (t >= types.length) throw new Refused(`env.${field}: type ${t} does not exist`);
            if (!sameType(types[t], spec.type!)) {
              throw new Refused(
                `env.${field} has type ${showType(types[t])}, not ${showType(spec.type!)}`,
              );
            }
            funcTypes.push(t);
            importedFuncs++;
          }
        }
        break;
      case 3: // function
        for (let n = s.count("functions", LIMITS.functions); n > 0; n--) {
          const t = s.u32();
          if (t >= types.length) throw new Refused(`a function of type ${t}, which does not exist`);
          funcTypes.push(t);
        }
        break;
      case 4: { // table
        const n = s.count("tables", 1);
        if (n === 1) {
          const t = s.byte();
          if (t !== FUNCREF) {
            throw new Refused(`a table of type 0x${t.toString(16)} (only funcref)`);
          }
          const flags = s.byte();
          if (flags > 1) throw new Refused(`table limits flags 0x${flags.toString(16)}`);
          tableEntries = s.u32();
          if (tableEntries > LIMITS.tableEntries) {
            throw new Refused(
              `a table of ${tableEntries} entries (the profile allows ${LIMITS.tableEntries})`,
            );
          }
          if (flags & 1) s.u32();
        }
        break;
      }
      case 5: // memory
        throw new Refused(
          "defines its own memory (a guest has exactly one: the imported env.memory)",
        );
      case 13: // tag
        for (let n = s.count("exception tags", LIMITS.tags); n > 0; n--) {
          if (s.byte() !== 0) throw new Refused("an exception tag with an unknown attribute");
          const t = s.u32();
          if (t >= types.length || types[t][1].length !== 0) {
            throw new Refused(`an exception tag of type ${t} (must exist and have no results)`);
          }
        }
        break;
      case 6: // global
        globals = s.count("globals", LIMITS.globals);
        for (let i = 0; i < globals; i++) {
          const t = s.valtype(`global ${i}`);
          const mut = s.byte();
          if (mut > 1) throw new Refused(`global ${i}: mutability 0x${mut.toString(16)}`);
          s.constExpr(t, `global ${i}`);
        }
        break;
      case 7: { // export
        const names = new Set<string>();
        for (let n = s.count("exports", 1), i = 0; i < n; i++) {
          const field = s.name(), kind = s.byte(), index = s.u32();
          if (field !== "start" || kind !== 0 || names.has(field)) {
            throw new Refused(`exports '${field}' (kind ${kind}): a guest exports exactly start()`);
          }
          names.add(field);
          if (index >= funcTypes.length) {
            throw new Refused(`start is function ${index}, which does not exist`);
          }
          if (index < importedFuncs) throw new Refused("start is an imported function");
          const t = types[funcTypes[index]];
          if (!sameType(t, [[], []])) {
            throw new Refused(`start() has type ${showType(t)}, not () -> ()`);
          }
          hasStart = true;
        }
        break;
      }
      case 8: // start
        throw new Refused(
          "has a start section (it would run inside instantiation, outside the guest ABI)",
        );
      case 9: { // element
        let entries = 0;
        for (let n = s.count("element segments", LIMITS.elemSegments); n > 0; n--) {
          const flags = s.u32();
          if (flags !== 0) {
            throw new Refused(
              `an element segment of kind ${flags} (only active funcref segments of table 0)`,
            );
          }
          s.constExpr(I32, "element segment offset");
          const k = s.count("element entries", LIMITS.tableEntries);
          entries += k;
          if (entries > LIMITS.tableEntries) {
            throw new Refused(
              `${entries} element entries (the profile allows ${LIMITS.tableEntries})`,
            );
          }
          for (let j = 0; j < k; j++) {
            const f = s.u32();
            if (f >= funcTypes.length) {
              throw new Refused("an element entry names a function that does not exist");
            }
            // The fuel pass charges a hypercall at its `call` (HCALL_BYTES); reached through the
            // table it would be charged nothing (found by attack: a loop of call_indirect
            // SET_CLOCKEVENTs held a neighbour 0.6-0.9 s). No import goes in the table.
            if (f < importedFuncs) {
              throw new Refused(
                `an element entry names imported function ${f} (imports are called directly, ` +
                  `never through the table)`,
              );
            }
          }
        }
        break;
      }
      case 12: // data count
        dataCount = s.count("data segments", LIMITS.dataSegments);
        break;
      case 10: { // code
        const defined = funcTypes.length - importedFuncs;
        const n = s.u32();
        if (n !== defined) throw new Refused(`${n} function bodies for ${defined} functions`);
        if (size > LIMITS.codeBytes) {
          throw new Refused(`${size} bytes of code (the profile allows ${LIMITS.codeBytes})`);
        }
        codeBytes = size;
        for (let i = 0; i < n; i++) {
          const len = s.u32();
          if (len > LIMITS.bodyBytes) {
            throw new Refused(
              `function ${
                importedFuncs + i
              }: a body of ${len} bytes (the profile allows ${LIMITS.bodyBytes})`,
            );
          }
          const body = new Reader(b, s.pos, s.pos + len);
          s.skip(len);
          let locals = types[funcTypes[importedFuncs + i]][0].length;
          for (let k = body.u32(); k > 0; k--) {
            locals += body.u32();
            if (locals > LIMITS.locals) {
              throw new Refused(`function ${importedFuncs + i}: more than ${LIMITS.locals} locals`);
            }
            body.valtype(`function ${importedFuncs + i}: a local`);
          }
        }
        break;
      }
      case 11: // data
        dataSegments = s.count("data segments", LIMITS.dataSegments);
        for (let i = 0; i < dataSegments; i++) {
          const flags = s.u32();
          if (flags === 0) s.constExpr(I32, `data segment ${i} offset`);
          else if (flags !== 1) {
            throw new Refused(
              `data segment ${i}: kind ${flags} (only active on memory 0, or passive)`,
            );
          }
          s.skip(s.u32());
        }
        break;
    }
    s.done(what);
  }
  if (!hasStart) throw new Refused("does not export a start() function");
  for (const [field, spec] of Object.entries(IMPORTS)) {
    if (spec.required && !seen.has(field)) throw new Refused(`does not import env.${field}`);
  }
  if (funcTypes.length === importedFuncs) throw new Refused("defines no functions");
  if (dataCount >= 0 && dataCount !== Math.max(dataSegments, 0)) {
    throw new Refused("the data count section does not match the data section");
  }
  return {
    functions: funcTypes.length - importedFuncs,
    codeBytes,
    tableEntries,
    globals,
    minPages,
    rdtsc: seen.has("rdtsc"),
  };
}

function sameType(a: [number[], number[]], b: [number[], number[]]): boolean {
  const eq = (x: number[], y: number[]) => x.length === y.length && x.every((v, i) => v === y[i]);
  return eq(a[0], b[0]) && eq(a[1], b[1]);
}

const VALNAMES: Record<number, string> = {
  [I32]: "i32",
  [I64]: "i64",
  [F32]: "f32",
  [F64]: "f64",
  [V128]: "v128",
};

function showType([params, results]: [number[], number[]]): string {
  const list = (v: number[]) => v.map((t) => VALNAMES[t]).join(", ");
  return `(${list(params)}) -> (${list(results)})`;
}
