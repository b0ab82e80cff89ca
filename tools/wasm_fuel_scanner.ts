/**
 * The source of the fuel rewriter's scanner (`engines/wasm_fuel.ts`): a
 * small wasm module that walks a code section and finds every loop header
 * and control instruction.
 * Its bytes are kept in `engines/wasm_fuel_scanner.ts`, so that nothing is
 * assembled at start-up:
 *
 *   deno run --allow-write tools/wasm_fuel_scanner.ts           rewrite it
 *   deno run --allow-read tools/wasm_fuel_scanner.ts --check    exit 1 if stale
 *
 * (`tests/wasm_fuel_test.ts` checks it too.) Why wasm: decoding every
 * instruction of every body is the bulk of the work, and done in
 * JavaScript it runs cold, interpreted and then fighting the JIT, at ~1 µs
 * an instruction at start-up (4–6 ms for `hello`).
 *
 * It is also the instruction-level half of the guest-image profile
 * (`engines/wasm_profile.ts`): an opcode it does not know is refused, so
 * its table is the closed list of instructions a guest may use (MVP, sign
 * extension, non-trapping float-to-int, multi-value, bulk memory, tail
 * calls, SIMD128, legacy exception handling; no reference types, GC,
 * threads, relaxed SIMD or exnref).
 *
 * Memory: [0, 256) what follows each opcode (K_*), [256, 260) the LEB128
 * counts of 0xfc 8–11, ERROR_AT the error slot, [SIMD_AT, SIMD_AT + 256)
 * what follows each SIMD opcode (S_*), [CTRL_AT, CTRL_AT + 256) 1 for each
 * control instruction that is recorded (`AT_CTRL`), the code section from
 * CODE_AT, then the records the caller asks for.
 *
 * @module
 */

import { sleb, uleb } from "../engines/wasm_fuel.ts";

// What follows an opcode: the scanner's table (its memory at 0), indexed by opcode.
const K_NONE = 0, K_LEB = 1, K_BLOCK = 2, K_MEMARG = 3, K_LEB2 = 4, K_BR_TABLE = 5;
const K_F32 = 6, K_F64 = 7, K_SELECT_T = 8, K_FD = 9, K_FC = 10, K_BAD = 255;

function kindTable(): Uint8Array {
  const kind = new Uint8Array(256).fill(K_BAD);
  // unreachable nop else end return drop select; catch_all
  for (const op of [0x00, 0x01, 0x05, 0x0b, 0x0f, 0x1a, 0x1b, 0x19]) kind[op] = K_NONE;
  for (let op = 0x45; op <= 0xc4; op++) kind[op] = K_NONE; // numeric, sign extension
  for (let op = 0x28; op <= 0x3e; op++) kind[op] = K_MEMARG; // loads and stores
  kind[0x02] =
    kind[0x03] =
    kind[0x04] =
    kind[0x06] =
      K_BLOCK; // block loop if try
  // br br_if call return_call local.get/set/tee global.get/set memory.size/grow
  // catch throw rethrow delegate (legacy exception handling)
  for (
    const op of [0x0c, 0x0d, 0x10, 0x12, 0x20, 0x21, 0x22, 0x23, 0x24, 0x3f, 0x40, 0x07, 0x08]
  ) kind[op] = K_LEB;
  kind[0x09] =
    kind[0x18] =
    kind[0x41] =
    kind[0x42] =
      K_LEB; // rethrow delegate i32/i64.const
  kind[0x11] = kind[0x13] = K_LEB2; // call_indirect, return_call_indirect: type, table
  kind[0x0e] = K_BR_TABLE;
  kind[0x1c] = K_SELECT_T;
  kind[0x43] = K_F32;
  kind[0x44] = K_F64;
  kind[0xfc] = K_FC;
  kind[0xfd] = K_FD;
  // Left out, so refused: reference types (0x25 0x26 0xd0–0xd2, 0xfc 12–17), exnref
  // (0x0a 0x1f), typed function references and GC (0x14 0x15 0xd3– 0xfb), threads (0xfe).
  return kind;
}

// What follows a SIMD (0xfd) opcode: none, a memarg, 16 bytes, a lane byte, memarg and lane.
const S_NONE = 0, S_MEMARG = 1, S_BYTES16 = 2, S_LANE = 3, S_MEMARG_LANE = 4;

/** The SIMD128 opcodes of the final proposal (0–255; relaxed SIMD, 256+, is refused). */
function simdTable(): Uint8Array {
  const kind = new Uint8Array(256).fill(S_NONE);
  for (let op = 0; op <= 11; op++) kind[op] = S_MEMARG; // v128.load… v128.store
  kind[12] = kind[13] = S_BYTES16; // v128.const, i8x16.shuffle
  for (let op = 21; op <= 34; op++) kind[op] = S_LANE; // extract_lane / replace_lane
  for (let op = 84; op <= 91; op++) kind[op] = S_MEMARG_LANE; // load/store lane
  kind[92] = kind[93] = S_MEMARG; // v128.load32_zero, v128.load64_zero
  // Unassigned opcodes are left S_NONE: decoding stays in step and V8 refuses them.
  return kind;
}

/**
 * The control instructions recorded as `AT_CTRL` (the rewriter follows every
 * path through a body with them, `engines/wasm_fuel.ts`): unreachable, try's
 * catch, throw, rethrow, else, end, br, br_if, br_table, return, call,
 * call_indirect, return_call, return_call_indirect, delegate, catch_all.
 */
function ctrlTable(): Uint8Array {
  const ctrl = new Uint8Array(256);
  for (
    const op of [0x00, 0x07, 0x08, 0x09, 0x05, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13]
  ) {
    ctrl[op] = 1;
  }
  ctrl[0x18] = ctrl[0x19] = 1;
  return ctrl;
}

/** LEB128 immediates of 0xfc 8–11: memory.init, data.drop, memory.copy, memory.fill (0–7 have none). */
const FC_LEBS = [2, 1, 2, 1];
/** Scanner memory: the kind table, FC_LEBS, the error slot, the SIMD table, the code section. */
export const FC_AT = 256, ERROR_AT = 268, SIMD_AT = 512, CTRL_AT = 768, CODE_AT = 1024;
/**
 * A record's position: `pos << 2 | what`; a fuel check goes after a loop
 * header, a payment before a bulk op (or, at a memory.grow, its
 * replacement; a load, 0x28–0x35 or SIMD, is only marked: the opcode tells
 * them apart); a block (block, if, try) opens at
 * the position, or a control instruction is there (end and delegate close
 * a block; the others, see ctrlTable, branch; the opcode tells them apart).
 */
export const AT_CHECK = 0, AT_PAY = 1, AT_OPEN = 2, AT_CTRL = 3;

/** The few opcodes the scanner is written with. */
const OP: Record<string, number> = {
  "block": 0x02,
  "loop": 0x03,
  "if": 0x04,
  "else": 0x05,
  "end": 0x0b,
  "br": 0x0c,
  "br_if": 0x0d,
  "return": 0x0f,
  "call": 0x10,
  "local.get": 0x20,
  "local.set": 0x21,
  "global.get": 0x23,
  "global.set": 0x24,
  "i32.load": 0x28,
  "i32.load8_u": 0x2d,
  "i32.store": 0x36,
  "i32.const": 0x41,
  "i32.eqz": 0x45,
  "i32.eq": 0x46,
  "i32.ne": 0x47,
  "i32.lt_s": 0x48,
  "i32.gt_u": 0x4b,
  "i32.le_u": 0x4d,
  "i32.ge_u": 0x4f,
  "i32.lt_u": 0x49,
  "i32.add": 0x6a,
  "i32.sub": 0x6b,
  "i32.and": 0x71,
  "i32.or": 0x72,
  "i32.shl": 0x74,
  "i32.shr_u": 0x76,
};

/**
 * Assemble a function body from WAT-like tokens: `block`/`loop`/`if` take a
 * label (`"$name"`) that `br`/`br_if` name instead of a depth; loads and
 * stores take an offset; other immediates are numbers.
 */
function asm(locals: number, code: (string | number)[]): number[] {
  const out = locals ? [1, ...uleb(locals), 0x7f] : [0];
  const labels: string[] = [];
  for (let i = 0; i < code.length; i++) {
    const t = code[i] as string;
    const op = OP[t];
    if (op === undefined) throw new Error(`wasm_fuel: asm: unknown ${t}`);
    out.push(op);
    if (t === "block" || t === "loop" || t === "if") {
      labels.push(code[++i] as string);
      out.push(0x40);
    } else if (t === "end") labels.pop();
    else if (t === "br" || t === "br_if") {
      const depth = labels.length - 1 - labels.lastIndexOf(code[++i] as string);
      if (depth >= labels.length) throw new Error(`wasm_fuel: asm: no label ${code[i]}`);
      out.push(...uleb(depth));
    } else if (t.includes("load") || t.includes("store")) {
      out.push(t === "i32.load8_u" ? 0 : 2, ...uleb(code[++i] as number));
    } else if (t === "i32.const") out.push(...sleb(code[++i] as number));
    else if (t.startsWith("local.") || t.startsWith("global.") || t === "call") {
      out.push(...uleb(code[++i] as number));
    }
  }
  if (labels.length !== 0) throw new Error(`wasm_fuel: asm: unclosed ${labels}`);
  return [...out, 0x0b];
}

// Function indices and their parameters/locals (all i32).
const F_LEB = 0, F_U32 = 1, F_VALTYPE = 2, F_SCAN = 3, F_MEMARG = 5;
const POS = 0; // the global: where u32() stopped
const CALLS = 1; // the global: the body scanned last has a call instruction

/** leb(p): the position after the LEB128 at p. */
// deno-fmt-ignore
const LEB = asm(0, [
  "loop", "$l",
    "local.get", 0, "i32.load8_u", 0,
    "local.get", 0, "i32.const", 1, "i32.add", "local.set", 0,
    "i32.const", 0x80, "i32.and", "br_if", "$l",
  "end",
  "local.get", 0,
]);

/** u32(p): the LEB128 at p; `POS` = the position after it. */
// deno-fmt-ignore
const U32 = asm(3, [ // p; r s x
  "loop", "$l",
    "local.get", 0, "i32.load8_u", 0, "local.set", 3,
    "local.get", 0, "i32.const", 1, "i32.add", "local.set", 0,
    "local.get", 1, "local.get", 3, "i32.const", 0x7f, "i32.and", "local.get", 2, "i32.shl",
    "i32.or", "local.set", 1,
    "local.get", 2, "i32.const", 7, "i32.add", "local.set", 2,
    "local.get", 3, "i32.const", 0x80, "i32.and", "br_if", "$l",
  "end",
  "local.get", 0, "global.set", POS,
  "local.get", 1,
]);

/** valtype(t): 1 for i32 i64 f32 f64 v128 (the profile has no reference types). */
// deno-fmt-ignore
const VALTYPE = asm(0, [
  "local.get", 0, "i32.const", 0x7b, "i32.ge_u", "local.get", 0, "i32.const", 0x7f, "i32.le_u",
  "i32.and",
]);

/** memarg(p): the position after the memarg at p: align (bit 6: a memory index follows), offset. */
// deno-fmt-ignore
const MEMARG = asm(1, [ // p; align
  "local.get", 0, "i32.load8_u", 0, "local.set", 1,
  "local.get", 0, "call", F_LEB, "local.set", 0,
  "local.get", 1, "i32.const", 0x40, "i32.and",
  "if", "$memidx", "local.get", 0, "call", F_LEB, "local.set", 0, "end",
  "local.get", 0, "call", F_LEB,
]);

/**
 * scan(p, end, out): decode the instructions in [p, end); store at out,
 * out+4, … the position after each loop header (`pos << 2 | AT_CHECK`),
 * of each memory.init/copy/fill, memory.grow and load (`pos << 2 | AT_PAY`;
 * the opcode tells them apart), of each block, if
 * and try (`AT_OPEN`) and each control instruction (`AT_CTRL`: CTRL_AT[op]
 * is 1; end and delegate among them); set CALLS if there
 * is a call of any kind; return the new out, -1 (malformed) or -2
 * (unsupported: the instruction's position at ERROR_AT, 0 at ERROR_AT + 4).
 */
// deno-fmt-ignore
const SCAN = asm(5, [ // p end out; at op k t n
  "block", "$unsupported",
  "block", "$done",
  "loop", "$next",
    "local.get", 0, "local.get", 1, "i32.ge_u", "br_if", "$done",
    "local.get", 0, "local.set", 3,
    "local.get", 0, "i32.load8_u", 0, "local.set", 4,
    "local.get", 0, "i32.const", 1, "i32.add", "local.set", 0,
    "local.get", 4, "i32.load8_u", 0, "local.set", 5, // k = kind[op]
    "local.get", 4, "i32.const", 0x10, "i32.sub", "i32.const", 4, "i32.lt_u", // 0x10–0x13
    "if", "$call", "i32.const", 1, "global.set", CALLS, "end",
    "local.get", 4, "i32.load8_u", CTRL_AT,
    "if", "$ctrl", // end, delegate (a block closes, or the body ends), a branch, else, …
      "local.get", 2, "local.get", 3, "i32.const", 2, "i32.shl", "i32.const", AT_CTRL, "i32.or",
      "i32.store", 0,
      "local.get", 2, "i32.const", 4, "i32.add", "local.set", 2,
    "end",
    "local.get", 5, "i32.eqz", "br_if", "$next", // K_NONE
    "local.get", 4, "i32.const", 0x40, "i32.eq",
    "if", "$grow", // memory.grow: record the opcode's position, the rewriter replaces it
      "local.get", 2, "local.get", 3, "i32.const", 2, "i32.shl", "i32.const", AT_PAY, "i32.or",
      "i32.store", 0,
      "local.get", 2, "i32.const", 4, "i32.add", "local.set", 2,
    "end",
    "local.get", 5, "i32.const", K_LEB, "i32.eq",
    "if", "$leb",
      "local.get", 0, "call", F_LEB, "local.set", 0, "br", "$next",
    "end",
    "local.get", 5, "i32.const", K_MEMARG, "i32.eq",
    "if", "$memarg",
      "local.get", 4, "i32.const", 0x36, "i32.lt_u",
      "if", "$load", // a load (0x28–0x35): recorded, it weighs more in what runs after a call
        "local.get", 2, "local.get", 3, "i32.const", 2, "i32.shl", "i32.const", AT_PAY, "i32.or",
        "i32.store", 0,
        "local.get", 2, "i32.const", 4, "i32.add", "local.set", 2,
      "end",
      "local.get", 0, "call", F_MEMARG, "local.set", 0, "br", "$next",
    "end",
    "local.get", 5, "i32.const", K_BLOCK, "i32.eq",
    "if", "$block", // 0x40, a value type, or a type index (s33 >= 0)
      "local.get", 0, "i32.load8_u", 0, "local.set", 6,
      "local.get", 6, "i32.const", 0x40, "i32.eq", "local.get", 6, "call", F_VALTYPE, "i32.or",
      "if", "$short",
        "local.get", 0, "i32.const", 1, "i32.add", "local.set", 0,
      "else",
        "local.get", 6, "i32.const", 0xc0, "i32.and", "i32.const", 0x40, "i32.eq",
        "br_if", "$unsupported", // another negative one-byte type (GC, v128, …)
        "local.get", 0, "call", F_LEB, "local.set", 0,
      "end",
      "local.get", 4, "i32.const", 0x03, "i32.eq",
      "if", "$loop", // a loop: record where its body starts
        "local.get", 2, "local.get", 0, "i32.const", 2, "i32.shl", "i32.store", 0,
      "else", // block, if, try: record that a block opens
        "local.get", 2, "local.get", 3, "i32.const", 2, "i32.shl", "i32.const", AT_OPEN, "i32.or",
        "i32.store", 0,
      "end",
      "local.get", 2, "i32.const", 4, "i32.add", "local.set", 2,
      "br", "$next",
    "end",
    "local.get", 5, "i32.const", K_LEB2, "i32.eq",
    "if", "$leb2",
      "local.get", 0, "call", F_LEB, "call", F_LEB, "local.set", 0, "br", "$next",
    "end",
    "local.get", 5, "i32.const", K_BR_TABLE, "i32.eq",
    "if", "$br_table", // n, then n + 1 labels
      "local.get", 0, "call", F_U32, "local.set", 7, "global.get", POS, "local.set", 0,
      "loop", "$labels",
        "local.get", 0, "call", F_LEB, "local.set", 0,
        "local.get", 7, "i32.eqz", "br_if", "$next",
        "local.get", 0, "local.get", 1, "i32.ge_u", "br_if", "$done",
        "local.get", 7, "i32.const", 1, "i32.sub", "local.set", 7,
        "br", "$labels",
      "end",
    "end",
    "local.get", 5, "i32.const", K_F32, "i32.eq",
    "if", "$f32", "local.get", 0, "i32.const", 4, "i32.add", "local.set", 0, "br", "$next", "end",
    "local.get", 5, "i32.const", K_F64, "i32.eq",
    "if", "$f64", "local.get", 0, "i32.const", 8, "i32.add", "local.set", 0, "br", "$next", "end",
    "local.get", 5, "i32.const", K_SELECT_T, "i32.eq",
    "if", "$select", // n value types
      "local.get", 0, "call", F_U32, "local.set", 7, "global.get", POS, "local.set", 0,
      "loop", "$types",
        "local.get", 7, "i32.eqz", "br_if", "$next",
        "local.get", 0, "i32.load8_u", 0, "call", F_VALTYPE, "i32.eqz", "br_if", "$unsupported",
        "local.get", 0, "i32.const", 1, "i32.add", "local.set", 0,
        "local.get", 0, "local.get", 1, "i32.gt_u", "br_if", "$done",
        "local.get", 7, "i32.const", 1, "i32.sub", "local.set", 7,
        "br", "$types",
      "end",
    "end",
    "local.get", 5, "i32.const", K_FD, "i32.eq",
    "if", "$simd", // a sub-opcode 0–255, then what SIMD_AT[sub] says
      "local.get", 0, "call", F_U32, "local.set", 6, "global.get", POS, "local.set", 0,
      "local.get", 6, "i32.const", 255, "i32.gt_u", "br_if", "$unsupported",
      "local.get", 6, "i32.load8_u", SIMD_AT, "local.set", 7,
      "local.get", 7, "i32.eqz", "br_if", "$next", // S_NONE
      "local.get", 7, "i32.const", S_BYTES16, "i32.eq",
      "if", "$bytes16", "local.get", 0, "i32.const", 16, "i32.add", "local.set", 0, "br", "$next", "end",
      "local.get", 7, "i32.const", S_LANE, "i32.eq",
      "if", "$lane", "local.get", 0, "i32.const", 1, "i32.add", "local.set", 0, "br", "$next", "end",
      "local.get", 6, "i32.const", 11, "i32.ne",
      "local.get", 6, "i32.const", 88, "i32.lt_u", "local.get", 6, "i32.const", 91, "i32.gt_u",
      "i32.or", "i32.and",
      "if", "$simd_load", // not v128.store or a store lane (88–91): a load, recorded as above
        "local.get", 2, "local.get", 3, "i32.const", 2, "i32.shl", "i32.const", AT_PAY, "i32.or",
        "i32.store", 0,
        "local.get", 2, "i32.const", 4, "i32.add", "local.set", 2,
      "end",
      "local.get", 0, "call", F_MEMARG, "local.set", 0, // S_MEMARG, S_MEMARG_LANE
      "local.get", 7, "i32.const", S_MEMARG_LANE, "i32.eq",
      "if", "$memarg_lane", "local.get", 0, "i32.const", 1, "i32.add", "local.set", 0, "end",
      "br", "$next",
    "end",
    "local.get", 5, "i32.const", K_FC, "i32.eq",
    "if", "$fc", // a sub-opcode 0–11, then FC_LEBS[sub - 8] LEB128s
      "local.get", 0, "call", F_U32, "local.set", 6, "global.get", POS, "local.set", 0,
      "local.get", 6, "i32.const", 11, "i32.gt_u", "br_if", "$unsupported",
      "local.get", 6, "i32.const", 8, "i32.ge_u",
      "if", "$with_immediates",
        "local.get", 6, "i32.const", 9, "i32.ne", // memory.init, memory.copy, memory.fill
        "if", "$pay", // record the opcode's position: the length is paid for before it runs
          "local.get", 2, "local.get", 3, "i32.const", 2, "i32.shl", "i32.const", AT_PAY, "i32.or",
          "i32.store", 0,
          "local.get", 2, "i32.const", 4, "i32.add", "local.set", 2,
        "end",
        "local.get", 6, "i32.load8_u", FC_AT - 8, "local.set", 7,
        "loop", "$lebs",
          "local.get", 7, "i32.eqz", "br_if", "$next",
          "local.get", 0, "call", F_LEB, "local.set", 0,
          "local.get", 7, "i32.const", 1, "i32.sub", "local.set", 7,
          "br", "$lebs",
        "end",
      "end",
      "br", "$next",
    "end",
    "br", "$unsupported", // K_BAD
  "end",
  "end", // $done: the body must end exactly at `end`, on 0x0b
  "local.get", 0, "local.get", 1, "i32.ne",
  "if", "$overshot", "i32.const", -1, "return", "end",
  "local.get", 1, "i32.const", 1, "i32.sub", "i32.load8_u", 0, "i32.const", 0x0b, "i32.ne",
  "if", "$no_end", "i32.const", -1, "return", "end",
  "local.get", 2, "return",
  "end", // $unsupported
  "i32.const", ERROR_AT, "local.get", 3, "i32.store", 0,
  "i32.const", ERROR_AT, "i32.const", 0, "i32.store", 4,
  "i32.const", -2,
]);

/**
 * code(p, end, out): walk the code section's content in [p, end). For each
 * body, write a record at out: its start (after the size), its end, where
 * its instructions start (after the locals), 1 if it has a call, the
 * number of positions, then the positions (see scan). Returns the end of the records,
 * -1 (malformed) or -2 (unsupported: the position at ERROR_AT, and at
 * ERROR_AT + 4, 1 for a local's value type, 0 for an instruction).
 */
// deno-fmt-ignore
const CODE_FN = asm(6, [ // p end out; n size bodyEnd m rec r
  "local.get", 0, "call", F_U32, "local.set", 3, "global.get", POS, "local.set", 0,
  "block", "$malformed",
  "loop", "$body",
    "local.get", 3, "i32.eqz",
    "if", "$all",
      "local.get", 0, "local.get", 1, "i32.ne", "br_if", "$malformed",
      "local.get", 2, "return",
    "end",
    "local.get", 0, "call", F_U32, "local.set", 4, "global.get", POS, "local.set", 0,
    "local.get", 0, "local.get", 4, "i32.add", "local.set", 5,
    "local.get", 5, "local.get", 1, "i32.gt_u", "br_if", "$malformed",
    "local.get", 2, "local.set", 7,
    "local.get", 7, "local.get", 0, "i32.store", 0,
    "local.get", 7, "local.get", 5, "i32.store", 4,
    "local.get", 0, "call", F_U32, "local.set", 6, "global.get", POS, "local.set", 0,
    "block", "$locals_done",
    "loop", "$locals", // (count, value type) pairs
      "local.get", 6, "i32.eqz", "br_if", "$locals_done",
      "local.get", 0, "call", F_LEB, "local.set", 0,
      "local.get", 0, "i32.load8_u", 0, "call", F_VALTYPE, "i32.eqz",
      "if", "$bad_type",
        "i32.const", ERROR_AT, "local.get", 0, "i32.store", 0,
        "i32.const", ERROR_AT, "i32.const", 1, "i32.store", 4,
        "i32.const", -2, "return",
      "end",
      "local.get", 0, "i32.const", 1, "i32.add", "local.set", 0,
      "local.get", 0, "local.get", 5, "i32.gt_u", "br_if", "$malformed",
      "local.get", 6, "i32.const", 1, "i32.sub", "local.set", 6,
      "br", "$locals",
    "end",
    "end",
    "local.get", 7, "local.get", 0, "i32.store", 8,
    "i32.const", 0, "global.set", CALLS,
    "local.get", 0, "local.get", 5, "local.get", 7, "i32.const", 20, "i32.add", "call", F_SCAN,
    "local.set", 8,
    "local.get", 8, "i32.const", 0, "i32.lt_s", "if", "$failed", "local.get", 8, "return", "end",
    "local.get", 7, "global.get", CALLS, "i32.store", 12,
    "local.get", 7, "local.get", 8, "local.get", 7, "i32.sub", "i32.const", 20, "i32.sub",
    "i32.const", 2, "i32.shr_u", "i32.store", 16,
    "local.get", 8, "local.set", 2,
    "local.get", 5, "local.set", 0,
    "local.get", 3, "i32.const", 1, "i32.sub", "local.set", 3,
    "br", "$body",
  "end",
  "end", // $malformed
  "i32.const", -1,
]);

function section(id: number, content: number[]): number[] {
  return [id, ...uleb(content.length), ...content];
}

function vec(items: number[][]): number[] {
  return [...uleb(items.length), ...items.flat()];
}

/** The scanner module's bytes. */
export function scannerModule(): Uint8Array {
  const I32 = 0x7f;
  const table = [...kindTable(), ...FC_LEBS];
  const simd = [...simdTable()];
  return new Uint8Array([
    0x00,
    0x61,
    0x73,
    0x6d,
    1,
    0,
    0,
    0,
    ...section(1, vec([[0x60, 1, I32, 1, I32], [0x60, 3, I32, I32, I32, 1, I32]])),
    // leb u32 valtype: (i32)->i32; scan code; memarg: (i32)->i32
    ...section(3, vec([[0], [0], [0], [1], [1], [0]])),
    ...section(5, vec([[0x00, 1]])), // memory: 1 page, grown as needed
    ...section(6, vec([[I32, 1, 0x41, 0, 0x0b], [I32, 1, 0x41, 0, 0x0b]])), // POS CALLS
    ...section(7, vec([[1, 0x63, 0x00, 4], [1, 0x6d, 0x02, 0]])), // "c" = code, "m" = memory
    ...section(
      10,
      vec([LEB, U32, VALTYPE, SCAN, CODE_FN, MEMARG].map((b) => [...uleb(b.length), ...b])),
    ),
    ...section(
      11,
      vec([
        [0, 0x41, 0, 0x0b, ...uleb(table.length), ...table],
        [0, 0x41, ...sleb(SIMD_AT), 0x0b, ...uleb(simd.length), ...simd],
        [0, 0x41, ...sleb(CTRL_AT), 0x0b, ...uleb(256), ...ctrlTable()],
      ]),
    ),
  ]);
}

const TARGET = new URL("../engines/wasm_fuel_scanner.ts", import.meta.url);

/** The generated file's text. */
export function scannerSource(): string {
  const bytes = Array.from(scannerModule());
  const rows: string[] = [];
  for (let i = 0; i < bytes.length; i += 24) {
    rows.push("  " + bytes.slice(i, i + 24).join(", ") + ",");
  }
  return `// deno-fmt-ignore-file
/**
 * Generated by \`tools/wasm_fuel_scanner.ts\` (its source, with comments):
 * do not edit. The fuel rewriter's scanner, a wasm module that finds every
 * loop header and control instruction of a code section (\`engines/wasm_fuel.ts\`).
 *
 * @module
 */

/** Its memory layout: the error slot, where the code section goes. */
export const ERROR_AT = ${ERROR_AT}, CODE_AT = ${CODE_AT};
/** A record's position is \`pos << 2 | what\`: a check after it, a payment before it (a memory.grow: replaced; a load: marked), a block opens, a control instruction (end, branch, …). */
export const AT_CHECK = ${AT_CHECK}, AT_PAY = ${AT_PAY}, AT_OPEN = ${AT_OPEN}, AT_CTRL = ${AT_CTRL};

/** The module's bytes. */
export const SCANNER_WASM: number[] = [
${rows.join("\n")}
];
`;
}

if (import.meta.main) {
  const text = scannerSource();
  if (Deno.args.includes("--check")) {
    const old = await Deno.readTextFile(TARGET).catch(() => "");
    if (old !== text) {
      console.error(
        "engines/wasm_fuel_scanner.ts is stale: run deno run --allow-write tools/wasm_fuel_scanner.ts",
      );
      Deno.exit(1);
    }
  } else {
    await Deno.writeTextFile(TARGET, text);
    console.log(`wrote engines/wasm_fuel_scanner.ts (${scannerModule().length} bytes of wasm)`);
  }
}
