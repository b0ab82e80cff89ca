/**
 * Fuel instrumentation: rewrite a guest module so that no guest can run
 * without end between two looks by the engine, whatever it does.
 *
 * One mutable i32 global, `$fuel`, is appended to the global section (no
 * existing global index moves). A fuel check charging `c` units
 *
 * ```wat
 * global.get $fuel  i32.const c  i32.sub  global.set $fuel
 * global.get $fuel  i32.const 0  i32.le_s
 * if  i32.const FUEL  global.set $fuel  call $wait  end
 * ```
 *
 * where `$wait` is the guest's own `env.wait` import (the suspending one),
 * goes
 *
 * - right after every `loop` header, charging 1 + (the longest path
 *   through one iteration, in bytes, a load weighing {@link LOAD_BYTES}
 *   more, a throw {@link THROW_BYTES}) / {@link CODE_BYTES_PER_FUEL}: an
 *   iteration pays for every byte it could run (inner loops and callees
 *   pay again for theirs; see {@link Paths});
 * - at the entry of every function but a leaf (no call, loop or try;
 *   named only by direct calls, whose paths pay for it), charging 1 + (the longest path
 *   through its body) / {@link CODE_BYTES_PER_FUEL}: a call pays for its
 *   straight-line code, and every cycle of calls passes a check. No check
 *   charges more than {@link MAX_PASS_UNITS}: a frame whose leaf calls would
 *   make it cost more has those leaves demoted (they get their checks back).
 *   (Small call-free functions
 *   once ran unmetered; a loop of 64 bytes calling one 30 times per
 *   iteration then ran ~100 × more code per unit than the bound, and a
 *   pointer chase through RAM held the host for tens of seconds a look.)
 *
 * - after every `call` of a function that is not a leaf, every
 *   `call_indirect` and at every catch (a resume point: the callee may have
 *   looked since the frame's own check paid for what follows), when the
 *   frame can run {@link RESUME_CHECK_UNITS} or more from there before the
 *   next such check or its return (a load weighing {@link LOAD_BYTES}
 *   more, a throw {@link THROW_BYTES}, a catch's own bytes counted), charging all of that (see {@link resumeChecks}): a deep
 *   recursion's levels do not run their rests on the way back up on what
 *   they paid on the way down.
 *
 * Before every `memory.copy`, `memory.fill` and `memory.init` goes
 * `call $pay`, a function appended to the module (`(i32) -> (i32)`, its
 * type appended too: again no index moves) that takes the length on top
 * of the stack, charges one unit per {@link BULK_BYTES_PER_FUEL} bytes,
 * and calls `$wait` when the fuel is used up. So, by construction
 * (docs/security.md "Preemption by construction"), between two looks a
 * guest runs at most about {@link FUEL} × 64 bytes of its code (or of
 * bulk memory), plus the rest of the pass that looked, fewer than
 * RESUME_CHECK_UNITS for each frame under it, and one bulk instruction.
 *
 * Every `memory.grow` is replaced by what a grow of a memory at its
 * maximum returns (`n == 0 ? memory.size : -1`, see {@link fixedGrow}): a
 * guest's memory is fixed in size, and V8 detaches its buffer, and with it
 * every host view of guest RAM, on any grow that succeeds, `memory.grow 0`
 * included (docs/security.md "Guest memory never moves").
 *
 * Every `FUEL` units the engine gets a look in and decides whether the
 * guest's time slice is over. Every other section is copied byte for
 * byte; the function bodies are decoded instruction by instruction by the
 * scanner (`tools/wasm_fuel_scanner.ts`), whose opcode table is the closed
 * list of instructions the guest-image profile allows
 * (`engines/wasm_profile.ts`). Anything else is an `{ error }`, and the
 * image is refused: there is no uninstrumented fallback.
 *
 * This runs once per image at start-up, cold (interpreted, no type
 * feedback yet), so the decoder is one flat table-driven loop and the
 * output is written into one buffer.
 *
 * @module
 */

import {
  AT_CHECK,
  AT_CTRL,
  AT_OPEN,
  AT_PAY,
  CODE_AT,
  ERROR_AT,
  SCANNER_WASM,
} from "./wasm_fuel_scanner.ts";
import { FUEL, FUEL_EXPORT } from "./image_error.ts";
import { ByteReader } from "./wasm_bytes.ts";

/** Units of fuel (a unit: a loop iteration or call, per 64 bytes of code or of bulk memory) between two looks. */
export { FUEL, FUEL_EXPORT };

/** Bytes of bulk memory (memory.copy/fill/init) that cost one unit of fuel. */
export const BULK_BYTES_PER_FUEL = 64;
/** Bytes of code that cost one unit of fuel (a loop's body per iteration, a function's per call). */
export const CODE_BYTES_PER_FUEL = 64;
/**
 * The most units one check may charge: one pass through a loop iteration
 * or a body, the leaves and hypercalls it calls included. It is what a
 * body's own bytes cost at the profile's limit (256 KiB / 64 = 4096) and as
 * much again for its hypercalls (256 of them at {@link HCALL_BYTES}): a
 * frame that would cost more has the leaves it calls demoted to functions
 * with checks of their own, and then costs at most its own bytes and
 * hypercalls; one that still does is refused. So the leaf rule never makes
 * a pass longer than a body could be without it, and a look comes at least
 * every FUEL + MAX_PASS_UNITS units.
 */
export const MAX_PASS_UNITS = 8192;
/**
 * What a call of the `env.hcall` import costs its caller's path, in bytes
 * of code (16 units). A hypercall is a few instructions to the rewriter but
 * microseconds of the host's time (a SET_CLOCKEVENT re-arms a timer), and
 * the host's end of a slice takes effect only at the guest's next look: as
 * the bytes of its call, a loop of five SET_CLOCKEVENTs ran ~500 000 of
 * them between looks (a neighbour's echo 0.8-1.1 s late), and 185 of them
 * in each frame's unpaid rest of a recursion 17 000 deep (under
 * RESUME_CHECK_UNITS) ~3 million (3.2-3.6 s). At 16 units fewer than two
 * run unpaid after a return. Like a leaf's bytes, but never demoted (an
 * import has no check of its own): a pass that costs more than
 * MAX_PASS_UNITS with them is refused.
 */
export const HCALL_BYTES = 16 * 64;
const FUEL_EXPORT_BYTES = Array.from(FUEL_EXPORT, (c) => c.charCodeAt(0));
/**
 * The custom section of branch hints (the WebAssembly branch hinting
 * proposal, which V8 follows without a flag): the instrumented module
 * carries one saying that every fuel check's `if` (the refill and the look)
 * is unlikely, so V8's optimizing tier lays that path out of line and keeps
 * the spills its call needs there, off the loop's path. The guest's own
 * code metadata (every custom section named `metadata.code.*`: branch hints,
 * compilation priorities, instruction frequencies, call targets) is dropped:
 * its offsets are into the code before the rewrite, and the compilation hints
 * (which V8 reads only behind a flag today) would let an image ask the host
 * to compile all of its code with the optimizing tier at load. Hints only
 * move code, never change what it does.
 */
export const HINT_SECTION = "metadata.code.branch_hint";
/**
 * The most branch hints one module gets (functions past it get none: the
 * hints are only speed). V8 keeps each in a hash map entry of its own, and
 * an image of 50 000 bodies packed with checks would have ~850 000 of them;
 * `sqlite3` has 6 287.
 */
export const MAX_HINTS = 1 << 16;
const HINT_SECTION_BYTES = Array.from(HINT_SECTION, (c) => c.charCodeAt(0));
/** The prefix of the code metadata sections' names (dropped from the image: see HINT_SECTION). */
const METADATA_PREFIX = Array.from("metadata.code.", (c) => c.charCodeAt(0));
/** At most one fuel check per this many bytes of a body (and 16 more): denser bodies are refused. */
export const BYTES_PER_CHECK = 64;

/** The fuel a stretch of `bytes` of code costs: one unit, and one more per CODE_BYTES_PER_FUEL. */
function costOf(bytes: number): number {
  return 1 + Math.floor(bytes / CODE_BYTES_PER_FUEL);
}

const EMPTY = new Uint8Array(0);

/** Where {@link instrumentFuel} put fuel checks. */
export interface FuelCounts {
  /** Loop headers. */
  loops: number;
  /** Function entries (every function that can call: see the module doc). */
  entries: number;
  /** Bulk memory instructions that pay by length. */
  bulk: number;
  /** Resume points (see {@link RESUME_CHECK_UNITS}) with a check. */
  resumes: number;
}

/** What {@link instrumentFuel} returns. */
export type FuelResult = ({ bytes: Uint8Array } & FuelCounts) | { error: string };

/** Options of {@link instrumentFuel}. */
export interface FuelOptions {
  /** Loop iterations between two calls of `env.wait` (default {@link FUEL}). */
  fuel?: number;
  /**
   * Check the original and the result with `WebAssembly.validate` (default
   * true): an invalid original could name `$fuel` or `$pay` by an index
   * one past its own. A caller that validates the original itself and
   * compiles the result at once can skip it: compiling validates too.
   */
  validate?: boolean;
}

/** The bytes are not a well-formed module. */
class Malformed extends Error {}
/** Something the decoder deliberately does not handle. */
class Unsupported extends Error {}

/** A cursor over the module bytes (for everything but the function bodies). */
class Reader extends ByteReader {
  protected malformed(message: string): Error {
    return new Malformed(message);
  }
  /** Read a name; is it `want` (ASCII)? */
  nameIs(want: string): boolean {
    return this.nameIn([want]) === 0;
  }
  /** Read a name: its index in `wants` (ASCII), or -1. (No TextDecoder: its first use costs ~1 ms.) */
  nameIn(wants: readonly string[]): number {
    const n = this.u32();
    const start = this.pos;
    this.skip(n);
    next: for (let w = 0; w < wants.length; w++) {
      if (wants[w].length !== n) continue;
      for (let i = 0; i < n; i++) if (this.b[start + i] !== wants[w].charCodeAt(i)) continue next;
      return w;
    }
    return -1;
  }
  valtype(): void {
    const t = this.byte();
    if (!isValtype(t)) throw new Unsupported(`value type 0x${t.toString(16)}`);
  }
  limits(): void {
    const flags = this.byte();
    if (flags > 0x07) throw new Unsupported(`limits flags 0x${flags.toString(16)}`);
    this.skipLeb(64);
    if (flags & 1) this.skipLeb(64);
  }
}

/** Numeric value types and the two MVP reference types. */
function isValtype(t: number): boolean {
  return (t >= 0x7c && t <= 0x7f) || t === 0x70 || t === 0x6f;
}

/** Bytes of the unsigned LEB128 of `n`. */
function ulebLength(n: number): number {
  let len = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    len++;
  }
  return len;
}

/** Unsigned LEB128. */
export function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

/** Signed LEB128 of a 32-bit integer. */
export function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

// ---- function bodies: the scanner ---------------------------------------------

// Decoding every instruction of every body is the bulk of the work. Done in
// JavaScript it runs cold at start-up (interpreted, then fighting the JIT:
// ~1 µs an instruction, 4–6 ms for `hello`); so it is done by a small wasm
// module that walks the code section at native speed. Its source, with the
// opcode table and the decoder, is `tools/wasm_fuel_scanner.ts`.

let scanner:
  | { code: (p: number, end: number, out: number) => number; memory: WebAssembly.Memory }
  | undefined;

/**
 * What the scanner found: for each body [start (after its size), end,
 * instructions start, has a call, n, n positions (`pos << 2 | AT_*`)].
 */
interface Scan {
  records: Int32Array;
  /** Add to every position in `records` to get an offset into the module. */
  delta: number;
}

/** A scanner memory grown past this is dropped after use, not kept for the next image. */
const KEEP_SCANNER_BYTES = 16 << 20;

/** Scan the code section `[start, end)` of `b`. */
function scanCode(b: Uint8Array, start: number, end: number): Scan {
  if (scanner === undefined) {
    const mod = new WebAssembly.Module(new Uint8Array(SCANNER_WASM));
    const inst = new WebAssembly.Instance(mod);
    scanner = {
      code: inst.exports.c as (p: number, end: number, out: number) => number,
      memory: inst.exports.m as WebAssembly.Memory,
    };
  }
  const len = end - start;
  // Records need at most 20 bytes a body (3+ bytes of code) and 4 a position (2+ bytes).
  const out = (CODE_AT + len + 16 + 3) & ~3; // 16+ zero bytes between code and records
  const need = out + 8 * len + 64;
  const have = scanner.memory.buffer.byteLength;
  if (need > have) scanner.memory.grow(Math.ceil((need - have) / 65536));
  const mem = new Uint8Array(scanner.memory.buffer);
  mem.set(b.subarray(start, end), CODE_AT);
  mem.fill(0, CODE_AT + len, out); // a LEB128 cut short at the end stops here
  let r: number;
  try {
    r = scanner.code(CODE_AT, CODE_AT + len, out);
  } catch (e) {
    // Only garbage can make it run off its memory.
    if (e instanceof WebAssembly.RuntimeError) throw new Malformed("code section");
    throw e;
  }
  const delta = start - CODE_AT;
  if (r === -1) throw new Malformed("code section");
  if (r === -2) {
    const error = new Int32Array(scanner.memory.buffer, ERROR_AT, 2);
    throw new Unsupported(unsupported(b, error[0] + delta, error[1] === 1));
  }
  const records = new Int32Array(scanner.memory.buffer, out, (r - out) >> 2).slice();
  if (scanner.memory.buffer.byteLength > KEEP_SCANNER_BYTES) scanner = undefined;
  return { records, delta };
}

/** Why the instruction (or, `local`, the local's value type) at `at` is not handled. */
function unsupported(b: Uint8Array, at: number, local: boolean): string {
  const op = b[at], hex = (x: number) => `0x${x.toString(16).padStart(2, "0")}`;
  if (local) return `value type ${hex(op)} of a local at byte ${at}`;
  if (op === 0xfd) {
    return `SIMD instruction 0xfd ${new Reader(b, at + 1, b.length).u32()} at byte ${at}`;
  }
  if (op === 0xfc) return `instruction 0xfc ${new Reader(b, at + 1, b.length).u32()} at byte ${at}`;
  if ((op >= 0x02 && op <= 0x04) || op === 0x06) {
    return `block type ${hex(b[at + 1])} at byte ${at}`;
  }
  if (op === 0x1c) return `a value type of select at byte ${at}`;
  return `opcode ${hex(op)} at byte ${at}`;
}

// ---- paths through a body ---------------------------------------------------------

/** No path reaches this point (after a br, a return, …). */
const NONE = -1;

/**
 * Steps (a branch leaving one frame) the path analysis may take, per byte
 * of the code section. A branch that leaves many nested loops costs one
 * step for each, so a hostile body of thousands of nested loops and as
 * many branches out of all of them would cost their product; past the
 * budget the remaining bodies are charged all their bytes (as before the
 * analysis), which needs no step.
 */
export const PATH_STEPS_PER_BYTE = 8;

/** The analysis ran out of steps (see {@link PATH_STEPS_PER_BYTE}). */
class OutOfSteps extends Error {}
const BLOCK = 0, IF = 1, LOOP = 2, TRY = 3;

/** A stretch of code metered by one check: a loop (per iteration) or a whole body (per call). */
interface Frame {
  /** Its check's index in the body's inserts. */
  check: number;
  /** Where its code starts: after the loop header, or the body's first instruction. */
  start: number;
  /** The longest path of the enclosing frame up to the loop (NONE if unreachable). */
  entry: number;
  /** The longest path, in bytes, from `start` to a point where an iteration or call ends. */
  longest: number;
  /** No `try` in it: a catch is entered from anywhere in its try, so then all its bytes are charged. */
  exact: boolean;
  /** What the calls of leaves in it (not in its inner loops) cost, together. */
  leaves: number;
  /** The leaves it calls (not in its inner loops), once per call; null: none. */
  called: number[] | null;
  /** The weight of the body's loads and throws before its start (a frame that is not exact pays for all of its own). */
  weight0: number;
}

/** A loop or body that has ended: its check, what the check charges, the leaves it calls. */
interface Ended {
  check: number;
  bytes: number;
  called: number[] | null;
}

/** An open block, if, try or loop. */
interface Label {
  kind: number;
  /** The frame it is in (a loop: its own). */
  frame: number;
  /** The longest path that reaches its end (block, if, try), in its frame. */
  join: number;
  /** An if's path into its else arm, or past its end when it has none. */
  orElse: number;
  hasElse: boolean;
}

/**
 * The longest path through each loop iteration and through a body, from
 * the scanner's records of the body's loops, blocks and control
 * instructions, in order. The bytes between two records run straight
 * through (calls return, and their callees pay for themselves); a branch
 * goes to its label's end, or to a loop's header, where an iteration ends;
 * an inner loop pays for its own iterations, so for the enclosing frame it
 * costs nothing, and a branch out of it continues from where the loop was
 * entered. So a check charging a frame's longest path pays for all it can
 * run between two passes through it, as charging all its bytes did, and a
 * big `switch` in a loop (an interpreter's dispatch) pays for one case an
 * iteration, not all of them.
 */
class Paths {
  readonly #b: Uint8Array;
  readonly #end: number;
  readonly #frames: Frame[];
  readonly #labels: Label[] = [];
  #cur = 0;
  #last: number;
  /** The weight of the loads and throws so far (LOAD_BYTES, THROW_BYTES each on top of its bytes). */
  #weight = 0;
  #ended = false;

  readonly #callee: (func: number) => number;
  readonly #steps: { left: number } | null;

  /**
   * `callee(f)`: the bytes its callers pay for function f (a leaf), or 0
   * (it pays itself). `steps`: what is left of the module's budget
   * (OutOfSteps past it); null: no paths, every frame pays all its bytes.
   */
  constructor(
    b: Uint8Array,
    instr: number,
    end: number,
    callee: (func: number) => number,
    steps: { left: number } | null,
  ) {
    this.#b = b;
    this.#end = end;
    this.#callee = callee;
    this.#steps = steps;
    this.#frames = [{
      check: 0,
      start: instr,
      entry: NONE,
      longest: NONE,
      exact: steps !== null,
      leaves: 0,
      called: null,
      weight0: 0,
    }];
    this.#last = instr;
  }

  /** Straight on to `at`. */
  #advance(at: number): void {
    if (this.#ended || at < this.#last) throw new Malformed("code after the body's end");
    if (this.#cur !== NONE) this.#cur += at - this.#last;
    this.#last = at;
  }

  /** The bytes of the LEB128 at `p`. */
  #leb(p: number): number {
    let n = 1;
    while (this.#b[p + n - 1] & 0x80) {
      if (p + n >= this.#end) throw new Malformed("a LEB128 runs past the body");
      n++;
    }
    return n;
  }

  /** The unsigned LEB128 at `p` (a label depth: beyond 2^31 it is no label anyway). */
  #u32(p: number): number {
    const len = this.#leb(p);
    let v = 0;
    for (let n = len - 1; n >= 0; n--) v = v * 128 + (this.#b[p + n] & 0x7f);
    return v;
  }

  #reach(f: Frame, dist: number): void {
    if (dist > f.longest) f.longest = dist;
  }

  /** A path of `dist` bytes leaves every frame inside `target`: its distance in `target`. */
  #exitTo(target: number, dist: number): number {
    for (let f = this.#frames.length - 1; f > target && dist !== NONE; f--) {
      if (--this.#steps!.left < 0) throw new OutOfSteps();
      this.#reach(this.#frames[f], dist);
      dist = this.#frames[f].entry;
    }
    return dist;
  }

  #branch(depth: number, dist: number): void {
    const labels = this.#labels;
    if (depth > labels.length) throw new Malformed(`a branch to depth ${depth}`);
    if (dist === NONE || this.#steps === null) return;
    if (depth === labels.length) {
      this.#exitTo(-1, dist); // the body's own label: a return
      return;
    }
    const t = labels[labels.length - 1 - depth];
    const d = this.#exitTo(t.frame, dist);
    if (d === NONE) return;
    if (t.kind === LOOP) this.#reach(this.#frames[t.frame], d); // the next iteration
    else if (d > t.join) t.join = d;
  }

  /** What the call at `at` costs its caller: a leaf's bytes, or 0 (the callee pays itself). */
  #leaf(at: number): number {
    const func = this.#u32(at + 1), bytes = this.#callee(func);
    if (bytes > 0) {
      const f = this.#frames[this.#frames.length - 1];
      f.leaves += bytes;
      (f.called ??= []).push(func);
    }
    return bytes;
  }

  #after(dist: number, len: number): number {
    return dist === NONE ? NONE : dist + len;
  }

  /** A load (0x28–0x35, a SIMD load) is at `at`: it weighs LOAD_BYTES more on every path through it. */
  load(at: number): void {
    this.#advance(at);
    this.#weight += LOAD_BYTES;
    if (this.#cur !== NONE) this.#cur += LOAD_BYTES;
  }

  /** A loop header ends at `at`; its check is inserts[check]. */
  loop(at: number, check: number): void {
    this.#advance(at);
    this.#frames.push({
      check,
      start: at,
      entry: this.#cur,
      longest: NONE,
      exact: this.#steps !== null,
      leaves: 0,
      called: null,
      weight0: this.#weight,
    });
    this.#labels.push({
      kind: LOOP,
      frame: this.#frames.length - 1,
      join: NONE,
      orElse: NONE,
      hasElse: false,
    });
    this.#cur = 0;
  }

  /** A block, if or try opens at `at`. */
  open(at: number): void {
    this.#advance(at);
    const op = this.#b[at], frame = this.#frames.length - 1;
    let kind = BLOCK, orElse = NONE;
    if (op === 0x04) {
      kind = IF;
      const t = this.#b[at + 1];
      const typeLen = t === 0x40 || isValtype(t) || t === 0x7b ? 1 : this.#leb(at + 1);
      orElse = this.#after(this.#cur, 1 + typeLen);
    } else if (op === 0x06) {
      kind = TRY;
      this.#frames[frame].exact = false;
    }
    this.#labels.push({ kind, frame, join: NONE, orElse, hasElse: false });
  }

  /**
   * A control instruction at `at`. When it ends a loop or the body: that
   * frame's check, the bytes it charges and the leaves it calls.
   */
  ctrl(at: number): Ended | null {
    this.#advance(at);
    const b = this.#b, op = b[at], labels = this.#labels;
    const cur = this.#cur;
    switch (op) {
      case 0x0b: // end
      case 0x18: { // delegate (a try's end)
        const l = labels.pop();
        if (l === undefined) {
          if (op !== 0x0b) throw new Malformed("delegate outside a try");
          const f = this.#frames[0];
          this.#reach(f, this.#after(cur, 1));
          this.#ended = true;
          return { check: f.check, bytes: this.#charge(f, at + 1), called: f.called };
        }
        if (l.kind === LOOP) {
          const f = this.#frames.pop()!;
          this.#reach(f, this.#after(cur, 1));
          this.#cur = f.entry;
          this.#last = at + 1;
          return { check: f.check, bytes: this.#charge(f, at), called: f.called };
        }
        if (op === 0x18 && l.kind !== TRY) throw new Malformed("delegate outside a try");
        this.#cur = Math.max(cur, l.join, l.kind === IF && !l.hasElse ? l.orElse : NONE);
        return null;
      }
      case 0x05: { // else
        const l = labels[labels.length - 1];
        if (l === undefined || l.kind !== IF || l.hasElse) {
          throw new Malformed("else outside an if");
        }
        l.join = Math.max(l.join, this.#after(cur, 1));
        l.hasElse = true;
        this.#cur = l.orElse;
        this.#last = at + 1;
        return null;
      }
      case 0x07: // catch
      case 0x19: { // catch_all
        const l = labels[labels.length - 1];
        if (l === undefined || l.kind !== TRY) throw new Malformed("catch outside a try");
        l.join = Math.max(l.join, this.#after(cur, 1));
        // Entered from anywhere in the try: the frame is charged all its bytes (not exact).
        this.#cur = 0;
        this.#last = at + 1;
        return null;
      }
      case 0x0c: // br
      case 0x0d: { // br_if
        const len = 1 + this.#leb(at + 1);
        this.#branch(this.#u32(at + 1), this.#after(cur, len));
        if (op === 0x0c) {
          this.#cur = NONE;
          this.#last = at + len;
        }
        return null;
      }
      case 0x0e: { // br_table: n, then n + 1 labels
        const n = this.#u32(at + 1);
        let p = at + 1 + this.#leb(at + 1);
        const depths: number[] = [];
        for (let k = 0; k <= n; k++) {
          if (p >= this.#end) throw new Malformed("br_table runs past the body");
          depths.push(this.#u32(p));
          p += this.#leb(p);
        }
        for (const depth of depths) this.#branch(depth, this.#after(cur, p - at));
        this.#cur = NONE;
        this.#last = p;
        return null;
      }
      case 0x10: { // call: a leaf's code runs here, paid for by this path
        const leaf = this.#leaf(at);
        if (cur !== NONE) this.#cur = cur + leaf;
        return null;
      }
      case 0x11: // call_indirect: straight on (its callee, never a leaf, pays for itself)
        return null;
      default: { // return, return_call(_indirect), throw, rethrow, unreachable: every frame ends
        let len = 1;
        if (op === 0x08 || op === 0x09 || op === 0x12 || op === 0x13) len += this.#leb(at + 1);
        if (op === 0x13) len += this.#leb(at + len);
        const leaf = op === 0x12 ? this.#leaf(at) : 0; // a tail call of a leaf runs it here
        const thrown = op === 0x08 || op === 0x09 ? THROW_BYTES : 0; // a throw weighs more
        this.#weight += thrown;
        if (this.#steps !== null) this.#exitTo(-1, this.#after(cur, len + leaf + thrown));
        this.#cur = NONE;
        this.#last = at + len;
        return null;
      }
    }
  }

  /** No try in the body (outside its loops): its longest path is exact. */
  get exact(): boolean {
    return this.#frames[0].exact;
  }

  /** The body has ended, every block closed. */
  done(): boolean {
    return this.#ended && this.#labels.length === 0;
  }

  /**
   * What a frame's check charges: its longest path, the leaves it calls
   * included; or all its bytes and every call of a leaf in it.
   */
  #charge(f: Frame, end: number): number {
    return f.exact ? Math.max(f.longest, 0) : end - f.start + f.leaves + this.#weight - f.weight0;
  }
}

// ---- what runs after a call returns -----------------------------------------------

/**
 * A call of a function with a check of its own (any but a leaf) may look
 * before it returns; what its caller runs after it was paid for by the
 * caller's checks before that look. In a recursion that is every level's
 * rest on the way back up, with no look (measured: 10 000 levels with 26 KB
 * of a pointer chase after the call held a neighbour 2.8–4.3 s). So at every
 * point where a frame's code goes on after such a call (a resume point:
 * after a `call` of a function that is not a leaf, after every
 * `call_indirect`, at the start of every catch, entered from a callee's
 * throw), the longest path it can run from there before the next check
 * that pays for it, or the return, is bounded: at least this many units
 * and a check there charges it all; fewer and the frame runs them on what
 * was paid before (so a frame on the stack runs fewer than this many units
 * on the way back up without a look). 16 cost SQLite's warm insert 7 %
 * (1 766 checks in `sqlite3`; 656 now): docs/performance.md.
 */
export const RESUME_CHECK_UNITS = 32;
/**
 * What a load (0x28–0x35, a SIMD load) weighs on every path (a loop
 * iteration's, a body's, a leaf's, what may run after a call), in bytes on
 * top of its own: a load that misses the cache is ~100 ns, a byte of other
 * code ~0.3 ns. Counted by its bytes, a loop of a pointer chase ran ~0.25 s
 * between looks (and a guest alternating it with fast code earned its full
 * refill back each time: a neighbour's echo 146-380 ms late), and a
 * frame's unpaid rest (under RESUME_CHECK_UNITS) held ~680 loads of it:
 * 15 000 levels of a recursion ran 10 million on the way back up with no
 * look (0.5-2.8 s). Weighed, such a rest holds at most
 * RESUME_CHECK_UNITS × 64 / (3 + LOAD_BYTES) loads (186), and FUEL units
 * at most FUEL × 64 / 11 of them. In the resume walk alone, 16 (107 a
 * rest) cost SQLite's run ~4.6 % of CPU time, 8 ~1.9 %.
 */
export const LOAD_BYTES = 8;
/**
 * What a `throw` or `rethrow` weighs on every path, in bytes on top of its
 * own (a load's weight: {@link LOAD_BYTES}): a throw and its catch take
 * ~250 ns in V8, a byte of other code ~0.3 ns. Counted by its bytes, a
 * frame's unpaid rest after a recursive call held 400 `try; throw; catch;
 * end` (found by attack: 8 000 levels, 3.2 million throws on the way back
 * up with no look). Weighed, a rest holds fewer than
 * RESUME_CHECK_UNITS × 64 / (7 + THROW_BYTES) of them (29), and FUEL units
 * at most FUEL × 64 / 71.
 */
export const THROW_BYTES = 64;

/** Is `op` a load (the scanner marks them as AT_PAY)? */
function isLoad(op: number): boolean {
  return (op >= 0x28 && op <= 0x35) || op === 0xfd;
}

/** A block, if, try or loop open in the backward walk of {@link resumeChecks} (or the body). */
interface Back {
  kind: number;
  /** Block, if, try: the longest path from its end, where a branch to it goes. */
  endD: number;
  /** If: the longest path from its else arm's start (NONE: it has none). */
  elseD: number;
  /** Try: the longest path from one of its catches' starts (a throw inside goes there). */
  floor: number;
  /** The floors of the tries around it in its frame. */
  outerFloor: number;
  /** The longest endD of the labels around it in its frame (and its own). */
  maxEnd: number;
  /**
   * The frame's (a loop's, the body's): what the frames around it can run
   * once it is left, together (0 for the body).
   */
  chain: number;
  /** A loop: the index of the frame around it in the walk's stack. */
  outerBase: number;
}

const BODY = -1;

/**
 * The resume points of a body (see {@link RESUME_CHECK_UNITS}) that need a
 * check, and what each charges: a walk from the body's end back to its start
 * over the scanner's records `rec[from, to)` (positions + `delta`), keeping
 * at every point the longest path from it to the end of its frame's pass (a
 * loop iteration's end, a branch out of the loop, the return), a check
 * placed after it, or (a throw, a call) a catch; inner loops cost nothing
 * (their checks pay for their iterations). What a loop's frame can run
 * after the loop is left is the longest such path from any way out (its
 * end, any label of the frame around it, a catch there): added to every
 * point inside, as the frame around it runs it on what it paid before.
 * Linear in the records (and br_table's labels). `check(at, bytes)`
 * places a check charging `bytes`; `leafCall(f)` tells of every call of a
 * leaf (for demotion). The body has been through {@link Paths}: well formed.
 */
function resumeChecks(
  b: Uint8Array,
  rec: Int32Array,
  from: number,
  to: number,
  delta: number,
  end: number,
  callee: (func: number) => number,
  check: (at: number, bytes: number) => void,
): void {
  const leb = (p: number) => {
    let n = 1;
    while (b[p + n - 1] & 0x80 && p + n < end) n++;
    return n;
  };
  const u32 = (p: number) => {
    let v = 0;
    for (let n = leb(p) - 1; n >= 0; n--) v = v * 128 + (b[p + n] & 0x7f);
    return v;
  };
  // The kind of block each end (or delegate) closes: a forward pass.
  const closes = new Int8Array(to - from);
  const open: number[] = [];
  for (let j = from; j < to; j++) {
    const at = (rec[j] >>> 2) + delta, what = rec[j] & 3;
    if (what === AT_CHECK) open.push(LOOP);
    else if (what === AT_OPEN) open.push(b[at] === 0x04 ? IF : b[at] === 0x06 ? TRY : BLOCK);
    else if (what === AT_CTRL && (b[at] === 0x0b || b[at] === 0x18)) {
      closes[j - from] = open.pop() ?? BODY;
    }
  }
  const min = RESUME_CHECK_UNITS * CODE_BYTES_PER_FUEL;
  const stack: Back[] = [{
    kind: BODY,
    endD: 0,
    elseD: NONE,
    floor: 0,
    outerFloor: 0,
    maxEnd: 0,
    chain: 0,
    outerBase: -1,
  }];
  let base = 0; // the innermost frame's entry in the stack
  const floorHere = () => {
    const t = stack[stack.length - 1];
    return t.kind === TRY ? Math.max(t.floor, t.outerFloor) : t.outerFloor;
  };
  /** A branch to label `depth`: the longest path from where it goes, in this frame. */
  const target = (depth: number) => {
    const k = stack.length - 1 - depth;
    return k > base ? stack[k].endD : 0; // a loop's header, a way out of the frame, the return
  };
  /** A resume point at `at`, `dist` to its frame's end: a check, or what is left unpaid. */
  const resume = (at: number, dist: number) => {
    const bytes = dist + stack[base].chain;
    if (bytes < min) return dist;
    check(at, bytes);
    return 0;
  };
  let last = end, d = 0;
  for (let j = to - 1; j >= from; j--) {
    const at = (rec[j] >>> 2) + delta, what = rec[j] & 3;
    if (what === AT_PAY) {
      if (isLoad(b[at])) d += LOAD_BYTES; // a load weighs more (below)
      continue; // straight on
    }
    const straight = d + last - at; // the instruction's own bytes counted with what follows
    let dist = straight;
    if (what === AT_CHECK) {
      // The loop's header ends here: back out to the frame around it, from where the loop starts.
      const l = stack.pop()!;
      base = l.outerBase;
      dist = l.endD;
    } else if (what === AT_OPEN) {
      const c = stack.pop()!;
      if (c.kind === IF) {
        // Not taken: on to its else arm (or past its end), after the if and its block type.
        const skip = 1 + leb(at + 1);
        dist = Math.max(straight, (c.elseD !== NONE ? c.elseD : c.endD) + skip);
      }
    } else {
      const op = b[at];
      switch (op) {
        case 0x0b: // end
        case 0x18: { // delegate
          const kind = closes[j - from];
          if (kind === BODY) break;
          const t = stack[stack.length - 1];
          if (kind === LOOP) {
            // What the frame around can run once the loop is left: from its end, any label of
            // that frame around it (a branch out), a catch of a try there around it (a throw).
            const way = Math.max(straight, t.maxEnd, floorHere());
            stack.push({
              kind,
              endD: way,
              elseD: NONE,
              floor: 0,
              outerFloor: 0,
              maxEnd: 0,
              chain: stack[base].chain + way,
              outerBase: base,
            });
            base = stack.length - 1;
            dist = 0;
          } else {
            stack.push({
              kind,
              endD: straight,
              elseD: NONE,
              floor: 0,
              outerFloor: floorHere(),
              maxEnd: Math.max(t.maxEnd, straight),
              chain: 0,
              outerBase: -1,
            });
          }
          break;
        }
        case 0x05: { // else: the then arm goes on to the end
          const t = stack[stack.length - 1];
          t.elseD = straight;
          dist = t.endD + 1;
          break;
        }
        case 0x07: // catch
        case 0x19: { // catch_all: a resume point (a callee's throw lands here)
          const t = stack[stack.length - 1];
          const len = op === 0x07 ? 1 + leb(at + 1) : 1;
          // Its own bytes run when a throw lands here, before a check placed after it.
          const h = resume(at + len, d + last - (at + len)) + len;
          if (h > t.floor) t.floor = h;
          dist = t.endD + len;
          break;
        }
        case 0x0c: // br
          dist = target(u32(at + 1)) + 1 + leb(at + 1);
          break;
        case 0x0d: // br_if
          dist = Math.max(straight, target(u32(at + 1)) + 1 + leb(at + 1));
          break;
        case 0x0e: { // br_table
          let p = at + 1 + leb(at + 1), most = 0;
          for (let k = u32(at + 1); k >= 0; k--) {
            most = Math.max(most, target(u32(p)));
            p += leb(p);
          }
          dist = most + (p - at);
          break;
        }
        case 0x08: // throw
        case 0x09: // rethrow: it weighs THROW_BYTES more
          dist = floorHere() + 1 + leb(at + 1) + THROW_BYTES;
          break;
        case 0x10: { // call: a leaf runs here (and may throw); any other may look
          const len = 1 + leb(at + 1), leaf = callee(u32(at + 1));
          const after = d + last - (at + len);
          dist = Math.max(leaf > 0 ? after : resume(at + len, after), floorHere()) + leaf + len;
          break;
        }
        case 0x11: { // call_indirect (a function in the table: never a leaf)
          const len = 1 + leb(at + 1) + leb(at + 1 + leb(at + 1));
          dist = Math.max(resume(at + len, d + last - (at + len)), floorHere()) + len;
          break;
        }
        case 0x12: // return_call: the frame is gone (a leaf runs here)
          dist = callee(u32(at + 1)) + 1 + leb(at + 1);
          break;
        default: // return, return_call_indirect, unreachable
          dist = op === 0x13 ? 1 + leb(at + 1) + leb(at + 1 + leb(at + 1)) : 1;
      }
    }
    d = dist;
    last = at;
  }
}

// ---- sections ----------------------------------------------------------------

/** Section ids in their required order (custom sections aside). */
const SECTION_ORDER = [1, 2, 3, 4, 5, 13, 6, 7, 8, 9, 12, 10, 11];
const TYPE = 1, IMPORT = 2, FUNCTION = 3, GLOBAL = 6, EXPORT = 7, START = 8, ELEM = 9, CODE = 10;

interface Section {
  id: number;
  /** The whole section: id, size and content. */
  start: number;
  end: number;
  /** The content only. */
  contentStart: number;
}

/** The section layout of a module, checked for order. */
function sections(b: Uint8Array): Section[] {
  if (
    b.length < 8 || b[0] !== 0 || b[1] !== 0x61 || b[2] !== 0x73 || b[3] !== 0x6d ||
    b[4] !== 1 || b[5] !== 0 || b[6] !== 0 || b[7] !== 0
  ) {
    throw new Malformed("not a WebAssembly version 1 module");
  }
  const r = new Reader(b, 8, b.length);
  const out: Section[] = [];
  let last = -1;
  while (r.pos < r.end) {
    const start = r.pos;
    const id = r.byte();
    const size = r.u32();
    const contentStart = r.pos;
    r.skip(size);
    if (id !== 0) {
      const rank = SECTION_ORDER.indexOf(id);
      if (rank < 0) throw new Unsupported(`section id ${id}`);
      if (rank <= last) throw new Malformed(`section ${id} out of order`);
      last = rank;
    }
    out.push({ id, start, end: r.pos, contentStart });
  }
  return out;
}

/** The `env` functions {@link scanImports} looks for: the look, then the calls of the host. */
const ENV_FUNCS = ["wait", "hcall", "event", "rdtsc"];

/**
 * The function index and type of `env.wait`, those of `env.hcall`,
 * `env.event` and `env.rdtsc` (calls of the host: each costs HCALL_BYTES),
 * and the numbers of imported functions and globals.
 */
function scanImports(b: Uint8Array, s: Section | undefined) {
  let funcs = 0, globals = 0, wait = -1, waitType = -1;
  const host = new Set<number>();
  if (s === undefined) return { wait, waitType, host, globals, funcs };
  const r = new Reader(b, s.contentStart, s.end);
  for (let n = r.u32(); n > 0; n--) {
    const env = r.nameIs("env");
    const which = env ? r.nameIn(ENV_FUNCS) : (r.skip(r.u32()), -1);
    const kind = r.byte();
    switch (kind) {
      case 0: { // function
        const type = r.u32();
        if (which === 0) {
          wait = funcs;
          waitType = type;
        } else if (which > 0) host.add(funcs);
        funcs++;
        break;
      }
      case 1: // table
        r.valtype();
        r.limits();
        break;
      case 2: // memory
        r.limits();
        break;
      case 3: // global
        r.valtype();
        r.byte();
        globals++;
        break;
      default:
        throw new Unsupported(`import kind ${kind}`);
    }
  }
  return { wait, waitType, host, globals, funcs };
}

/**
 * The functions a module names other than in a direct call: exported, or
 * in an element segment (the only ways the profile allows). null for an
 * element segment of another form (then no function is taken for a leaf).
 */
function namedFunctions(
  b: Uint8Array,
  exp: Section | undefined,
  elem: Section | undefined,
): Set<number> | null {
  const named = new Set<number>();
  if (exp !== undefined) {
    const r = new Reader(b, exp.contentStart, exp.end);
    for (let n = r.u32(); n > 0; n--) {
      r.skip(r.u32()); // the name
      const kind = r.byte(), index = r.u32();
      if (kind === 0) named.add(index);
    }
  }
  if (elem !== undefined) {
    const r = new Reader(b, elem.contentStart, elem.end);
    for (let n = r.u32(); n > 0; n--) {
      if (r.u32() !== 0 || r.byte() !== 0x41) return null; // active, table 0, i32.const offset
      r.skipLeb(32);
      if (r.byte() !== 0x0b) return null;
      for (let k = r.u32(); k > 0; k--) named.add(r.u32());
    }
  }
  return named;
}

/** Is type `index` of the type section `() -> ()`? */
function isVoidType(b: Uint8Array, s: Section | undefined, index: number): boolean {
  if (s === undefined) return false;
  const r = new Reader(b, s.contentStart, s.end);
  const n = r.u32();
  for (let i = 0; i < n && i <= index; i++) {
    const form = r.byte();
    if (form !== 0x60) throw new Unsupported(`type form 0x${form.toString(16)}`);
    const params = r.u32();
    for (let p = 0; p < params; p++) r.valtype();
    const results = r.u32();
    for (let p = 0; p < results; p++) r.valtype();
    if (i === index) return params === 0 && results === 0;
  }
  return false;
}

// ---- the rewrite -------------------------------------------------------------

/** At a position of a body: bytes put there, in place of the `skip` bytes there. */
type Insert = [at: number, bytes: Uint8Array, skip: number];

/**
 * The replacement of the `memory.grow` at `at` (docs/security.md "Guest
 * memory never moves"): a guest's memory is fixed in size (maximum =
 * initial), yet V8 detaches its ArrayBuffer on any successful grow, `memory.grow 0`
 * too, and every host view of guest RAM with it. So no guest code may grow:
 * the instruction becomes what a grow of a memory at its maximum returns,
 *
 * ```wat
 * i32.eqz  i32.const 1  i32.sub  memory.size  i32.or   ;; (n == 0) - 1 is 0 or -1
 * ```
 *
 * (the same memory index): straight-line, no block, so no branch depth
 * moves; 7 bytes for 2, counted against the body's density limit like a
 * fuel check, on the path the grow's own bytes are charged to.
 */
function fixedGrow(b: Uint8Array, at: number, end: number): Insert {
  let p = at + 1;
  while (b[p] & 0x80) p++;
  p++; // after the memory index's LEB128 (the scanner read it within the body)
  if (p > end) throw new Malformed("memory.grow runs past the body");
  // deno-fmt-ignore
  const bytes = new Uint8Array([
    0x45, 0x41, 0x01, 0x6b, // i32.eqz i32.const 1 i32.sub: n == 0 ? 0 : -1
    0x3f, ...b.subarray(at + 1, p), // memory.size (the grow's memory index)
    0x72, // i32.or: n == 0 ? size : -1
  ]);
  return [at, bytes, p - at];
}

/**
 * Instrument a module for preemption (see the module doc). Any problem is
 * an `{ error }`, never an exception or bad bytes.
 */
export function instrumentFuel(bytes: Uint8Array, opts: FuelOptions = {}): FuelResult {
  const fuel = opts.fuel ?? FUEL;
  if (!(Number.isInteger(fuel) && fuel >= 1 && fuel <= 0x7fffffff)) {
    throw new RangeError(`fuel ${fuel} out of range`);
  }
  let out: FuelResult;
  try {
    out = instrument(bytes, fuel);
  } catch (e) {
    if (e instanceof Malformed || e instanceof Unsupported) {
      return { error: `${e instanceof Unsupported ? "unsupported" : "malformed"}: ${e.message}` };
    }
    throw e;
  }
  if ("error" in out || opts.validate === false) return out;
  // The original must validate by itself: an index one past its own globals,
  // types or functions would name $fuel or $pay after the rewrite.
  if (!WebAssembly.validate(bytes as Uint8Array<ArrayBuffer>)) {
    return { error: "malformed: the module does not validate" };
  }
  if (!WebAssembly.validate(out.bytes as Uint8Array<ArrayBuffer>)) {
    return { error: "the instrumented module does not validate" };
  }
  return out;
}

/** The count of a vector section's entries and where they start. */
function vecOf(b: Uint8Array, s: Section | undefined): { n: number; at: number; end: number } {
  if (s === undefined) return { n: 0, at: 0, end: 0 };
  const r = new Reader(b, s.contentStart, s.end);
  const n = r.u32();
  return { n, at: r.pos, end: s.end };
}

function instrument(b: Uint8Array, fuel: number): FuelResult {
  const secs = sections(b);
  const find = (id: number) => secs.find((s) => s.id === id);
  if (find(START) !== undefined) {
    // It runs inside `new WebAssembly.Instance`, where nothing may suspend.
    return { error: "the module has a start function (it would run outside JSPI)" };
  }
  const imports = scanImports(b, find(IMPORT));
  if (imports.wait < 0) return { error: "no env.wait import" };
  if (!isVoidType(b, find(TYPE), imports.waitType)) {
    return { error: "env.wait is not of type () -> ()" };
  }
  const types = vecOf(b, find(TYPE)), funcs = vecOf(b, find(FUNCTION));
  const globals = vecOf(b, find(GLOBAL));
  const codeSec = find(CODE);
  if (find(TYPE) === undefined || find(FUNCTION) === undefined || codeSec === undefined) {
    return { error: "the module defines no functions" };
  }
  const fuelIndex = imports.globals + globals.n;
  const payType = types.n; // (i32) -> (i32), appended
  const payFunc = imports.funcs + funcs.n; // appended: no existing index moves
  const g = uleb(fuelIndex);
  const checks = new Map<number, Uint8Array>();
  /** Where a check's `if` is, in its bytes (the refill path: hinted unlikely, see HINT_NAME). */
  const checkIf = new Map<Uint8Array, number>();
  /**
   * A fuel check charging `cost` units. No cost is capped: one pass of a
   * frame is at most {@link MAX_PASS_UNITS} (the leaves of a frame that
   * would cost more were demoted, see below), so it is a small i32 and a
   * pass is a fraction of a slice.
   */
  const check = (cost: number): Uint8Array => {
    if (!(cost >= 1 && cost <= MAX_PASS_UNITS)) {
      // The plan bounds every pass; were it wrong, the image is refused, never run with a cap.
      throw new Unsupported(`a fuel check of ${cost} units (a bug in the instrumentation)`);
    }
    let c = checks.get(cost);
    if (c === undefined) {
      // deno-fmt-ignore
      c = new Uint8Array([
        0x23, ...g, 0x41, ...sleb(cost), 0x6b, 0x24, ...g, // fuel = fuel - cost
        0x23, ...g, 0x41, 0x00, 0x4c, 0x04, 0x40, // if fuel <= 0 (signed)
        0x41, ...sleb(fuel), 0x24, ...g, // fuel = FUEL
        0x10, ...uleb(imports.wait), // call $wait
        0x0b, // end
      ]);
      checks.set(cost, c);
      // global.get, i32.const cost, i32.sub, global.set, global.get, i32.const 0, i32.le_s
      const at = 3 * (1 + g.length) + (1 + sleb(cost).length) + 1 + 2 + 1;
      if (c[at] !== 0x04) throw new Error("wasm_fuel: a check's if is not where expected");
      checkIf.set(c, at);
    }
    return c;
  };
  const pay = new Uint8Array([0x10, ...uleb(payFunc)]); // call $pay (the length stays on the stack)
  // $pay(len) -> len: fuel -= len / BULK_BYTES_PER_FUEL; if fuel <= 0: fuel = FUEL, wait().
  // deno-fmt-ignore
  const payBody = [
    0, // no locals
    0x23, ...g, 0x20, 0, 0x41, ...sleb(Math.log2(BULK_BYTES_PER_FUEL)), 0x76, 0x6b, 0x24, ...g,
    0x23, ...g, 0x41, 0, 0x4c, 0x04, 0x40, // if fuel <= 0 (signed)
    0x41, ...sleb(fuel), 0x24, ...g, 0x10, ...uleb(imports.wait),
    0x0b,
    0x20, 0, 0x0b, // local.get len
  ];
  // locals, global.get, local.get, i32.const, i32.shr_u, i32.sub, global.set, global.get,
  // i32.const 0, i32.le_s
  const payIf = 1 + 3 * (1 + g.length) + 2 + (1 + sleb(Math.log2(BULK_BYTES_PER_FUEL)).length) +
    2 + 2 + 1;
  if (payBody[payIf] !== 0x04) throw new Error("wasm_fuel: $pay's if is not where expected");

  // Pass 1: every body's loops, blocks, bulk instructions and calls (the scanner); then,
  // per body, what goes where: [position in the module, bytes inserted there].
  const scan = scanCode(b, codeSec.contentStart, codeSec.end);
  const rec = scan.records, d = scan.delta;
  // Leaves: bodies without a call of any kind, a loop or a try, named by nothing but direct
  // calls (not exported, not in the table). A call of one pays on the caller's path for the
  // leaf's longest path and a unit more, what the leaf's own check charged (none runs
  // unmetered: a leaf called over and over from one metered loop iteration would multiply
  // what a unit buys); so a leaf needs no check of its own.
  const leaves = new Map<number, number>(); // function index -> bytes a call of it costs
  const named = namedFunctions(b, find(EXPORT), find(ELEM));
  for (let i = 0, f = imports.funcs; named !== null && i < rec.length; i += 5 + rec[i + 4], f++) {
    if (rec[i + 3] !== 0 || named.has(f)) continue;
    // No loop, so no branch leaves more than the body's frame: a step a branch at most.
    const paths = new Paths(b, rec[i + 2] + d, rec[i + 1] + d, () => 0, { left: Infinity });
    let bytes = NONE;
    for (let j = i + 5; j < i + 5 + rec[i + 4] && (rec[j] & 3) !== AT_CHECK; j++) {
      const at = (rec[j] >>> 2) + d, what = rec[j] & 3;
      if (what === AT_OPEN) paths.open(at);
      else if (what === AT_CTRL) bytes = paths.ctrl(at)?.bytes ?? bytes;
      else if (what === AT_PAY && isLoad(b[at])) paths.load(at);
    }
    if (paths.done() && paths.exact) leaves.set(f, bytes + CODE_BYTES_PER_FUEL);
  }
  // A call of the host (env.hcall, env.event, env.rdtsc) pays on its caller's path like a
  // leaf (HCALL_BYTES).
  const callee = (f: number) => imports.host.has(f) ? HCALL_BYTES : leaves.get(f) ?? 0;
  let steps: { left: number } | null;
  // Leaves called from a frame whose pass would cost more than MAX_PASS_UNITS: each call adds
  // the leaf's path to the caller's, so 100 000 calls of a 256 KiB leaf in one body made one
  // pass cost 4·10⁸ units, hundreds of slices run after a single look.
  const demote = new Set<number>();
  /** Where a body's checks go, and what each charges (paths: null, all its bytes). */
  const planBody = (i: number, func: number, instr: number, end: number, leaf: boolean) => {
    const inserts: Insert[] = [];
    inserts.push([instr, EMPTY, 0]); // its cost is known at the body's end (a leaf's stays empty)
    const paths = new Paths(b, instr, end, callee, steps);
    let loops = 0, bulk = 0, grows = 0;
    for (let j = i + 5; j < i + 5 + rec[i + 4]; j++) {
      const at = (rec[j] >>> 2) + d, what = rec[j] & 3;
      if (what === AT_PAY && isLoad(b[at])) paths.load(at);
      else if (what === AT_PAY && b[at] === 0x40) {
        inserts.push(fixedGrow(b, at, end));
        grows++;
      } else if (what === AT_PAY) {
        inserts.push([at, pay, 0]);
        bulk++;
      } else if (what === AT_CHECK) {
        paths.loop(at, inserts.length);
        inserts.push([at, EMPTY, 0]); // its cost is known at its end
        loops++;
      } else if (what === AT_OPEN) paths.open(at);
      else if (what === AT_CTRL) {
        // A loop ends: it pays, per iteration, for its longest path (inner loops and calls
        // pay again for theirs); so does the body, on entry, at its own end.
        const ended = paths.ctrl(at);
        if (ended === null || (leaf && ended.check === 0)) continue;
        const units = costOf(ended.bytes);
        if (units <= MAX_PASS_UNITS) inserts[ended.check][1] = check(units);
        else if (ended.called !== null) { for (const f of ended.called) demote.add(f); }
        else {
          // Its own bytes alone (no leaf calls): a body over 256 KiB, which the profile refuses.
          throw new Unsupported(
            `function ${func}: one pass through ${ended.check === 0 ? "its body" : "a loop"} ` +
              `costs ${units} units of fuel (at most ${MAX_PASS_UNITS})`,
          );
        }
      }
    }
    if (!paths.done()) throw new Malformed("a block without its end");
    if (rec[i + 3] === 0) return { inserts, loops, bulk, grows, resumes: 0 };
    // After a call that may look, and at a catch: a check for what the frame can run on what it
    // paid before, when that is RESUME_CHECK_UNITS or more (see there).
    const after: Insert[] = [];
    let leafCalls: number[] | null = null;
    resumeChecks(b, rec, i + 5, i + 5 + rec[i + 4], d, end, (f) => {
      const bytes = callee(f);
      if (bytes > 0) (leafCalls ??= []).push(f);
      return bytes;
    }, (at, bytes) => {
      const units = costOf(bytes);
      if (units <= MAX_PASS_UNITS) after.push([at, check(units), 0]);
      else if (leafCalls !== null) { for (const f of leafCalls) demote.add(f); }
      else {
        throw new Unsupported(
          `function ${func}: what may run after a call costs ${units} units of fuel ` +
            `(at most ${MAX_PASS_UNITS})`,
        );
      }
    });
    if (after.length === 0) return { inserts, loops, bulk, grows, resumes: 0 };
    // Into position order (found from the end back); one after a call goes before a payment or
    // a memory.grow's replacement at the same byte.
    after.reverse();
    const merged: Insert[] = [];
    let k = 0;
    for (const ins of inserts) {
      while (k < after.length && after[k][0] <= ins[0]) merged.push(after[k++]);
      merged.push(ins);
    }
    while (k < after.length) merged.push(after[k++]);
    return { inserts: merged, loops, bulk, grows, resumes: after.length };
  };
  /** Every body's plan, with the leaves as they are now. */
  const planAll = () => {
    steps = { left: PATH_STEPS_PER_BYTE * (codeSec.end - codeSec.start) };
    const plans: { start: number; end: number; inserts: Insert[]; size: number }[] = [];
    let codeContent = 0;
    const counts: FuelCounts = { loops: 0, entries: 0, bulk: 0, resumes: 0 };
    for (let i = 0; i < rec.length; i += 5 + rec[i + 4]) {
      const [start, end, instr] = [rec[i] + d, rec[i + 1] + d, rec[i + 2] + d];
      // Every function but a leaf pays on entry.
      const func = imports.funcs + plans.length;
      const leaf = leaves.has(func);
      if (!leaf) counts.entries++;
      let plan;
      try {
        plan = planBody(i, func, instr, end, leaf);
      } catch (e) {
        if (!(e instanceof OutOfSteps)) throw e;
        steps = null; // this body and the rest: all their bytes
        plan = planBody(i, func, instr, end, leaf);
      }
      const inserts = plan.inserts;
      counts.loops += plan.loops;
      counts.bulk += plan.bulk;
      counts.resumes += plan.resumes;
      // Checks are ~20 bytes and each is a branch and a call for V8 to compile: a body packed
      // with loops or bulk instructions would grow several times over (docs/security.md). So
      // would one packed with memory.grow (2 bytes, replaced by 7): a body of nothing else grew
      // 3.5-fold and cost V8 1 GiB to compile. Real code grows its heap in one place or two.
      if (inserts.length > 16 + (end - instr) / BYTES_PER_CHECK) {
        const what = plan.grows === 0 ? "fuel checks" : "fuel checks and memory.grow replacements";
        throw new Unsupported(
          `function ${func}: ${inserts.length} ${what} in ` +
            `${end - instr} bytes (loops, bulk memory instructions or memory.grow closer than ` +
            `one per ${BYTES_PER_CHECK} bytes)`,
        );
      }
      let size = end - start;
      for (const [, bytes, skip] of inserts) size += bytes.length - skip;
      codeContent += ulebLength(size) + size;
      plans.push({ start, end, inserts, size });
    }
    return { plans, codeContent, counts };
  };
  let plan = planAll();
  if (demote.size > 0) {
    // The demoted leaves become ordinary functions with a check of their own, and every call
    // of one costs its caller nothing: that only shortens paths, so a frame under the limit
    // stays under it, one over it now calls no leaf and costs its own bytes (within the limit
    // in a body the profile allows), and the steps the analysis takes do not depend on
    // leaves: a second pass is the last (a demotion it asked for would be a bug).
    for (const f of demote) leaves.delete(f);
    demote.clear();
    plan = planAll();
    if ([...demote].some((f) => imports.host.has(f))) {
      // Host calls cannot be demoted (an import has no check of its own).
      throw new Unsupported(
        `one pass makes too many hypercalls (calls of env.hcall, env.event, env.rdtsc): with ` +
          `them it costs more than ${MAX_PASS_UNITS} units of fuel (each costs ` +
          `${HCALL_BYTES / CODE_BYTES_PER_FUEL})`,
      );
    }
    if (demote.size > 0) {
      throw new Unsupported("a leaf demoted twice (a bug in the instrumentation)");
    }
  }
  const { plans, counts } = plan;
  let codeContent = plan.codeContent;

  // The branch hints (HINT_SECTION): each check's `if`, at its offset in the rewritten body
  // (from the body's first byte, its locals), in order; then $pay's.
  const hints: number[] = [];
  let hinted = 0, hintCount = 0; // functions, hints (and $pay's, below)
  for (let k = 0; k < plans.length; k++) {
    const offsets: number[] = [];
    let pos = 0, from = plans[k].start;
    for (const [at, bytes, skip] of plans[k].inserts) {
      pos += at - from;
      const ifAt = checkIf.get(bytes);
      if (ifAt !== undefined) offsets.push(pos + ifAt);
      pos += bytes.length;
      from = at + skip;
    }
    if (offsets.length === 0 || hintCount + offsets.length > MAX_HINTS - 1) continue;
    hintCount += offsets.length;
    hinted++;
    hints.push(...uleb(imports.funcs + k), ...uleb(offsets.length));
    for (const at of offsets) hints.push(...uleb(at), 1, 0); // one byte of hint: 0, unlikely
  }
  hinted++;
  hints.push(...uleb(payFunc), 1, ...uleb(payIf), 1, 0);
  const hintContent = [
    ...uleb(HINT_SECTION_BYTES.length),
    ...HINT_SECTION_BYTES,
    ...uleb(hinted),
    ...hints,
  ];
  /** A custom section of the guest's own code metadata, `metadata.code.*` (dropped). */
  const guestHints = (s: Section) => {
    if (s.id !== 0) return false;
    const r = new Reader(b, s.contentStart, s.end);
    const n = r.u32();
    return n >= METADATA_PREFIX.length && r.pos + n <= s.end &&
      METADATA_PREFIX.every((c, i) => b[r.pos + i] === c);
  };
  if (plans.length !== funcs.n) throw new Malformed("function and code section counts differ");
  codeContent += ulebLength(plans.length + 1) + ulebLength(payBody.length) + payBody.length;

  // The rewritten sections' contents; everything else is copied byte for byte.
  const typeEntry = [0x60, 1, 0x7f, 1, 0x7f];
  const typeContent = ulebLength(types.n + 1) + (types.end - types.at) + typeEntry.length;
  const funcEntry = uleb(payType);
  const funcContent = ulebLength(funcs.n + 1) + (funcs.end - funcs.at) + funcEntry.length;
  const globalEntry = [0x7f, 0x01, 0x41, ...sleb(fuel), 0x0b];
  const globalContent = ulebLength(globals.n + 1) + (globals.end - globals.at) +
    globalEntry.length;
  const globalSec = find(GLOBAL);
  // $fuel is exported (FUEL_EXPORT): the engine sets the refill after a look that came late.
  const exports = vecOf(b, find(EXPORT)), exportSec = find(EXPORT);
  const exportEntry = [...uleb(FUEL_EXPORT.length), ...FUEL_EXPORT_BYTES, 0x03, ...g];
  const exportContent = ulebLength(exports.n + 1) + (exports.end - exports.at) +
    exportEntry.length;

  const globalRank = SECTION_ORDER.indexOf(GLOBAL), exportRank = SECTION_ORDER.indexOf(EXPORT);
  const sectionSize = (content: number) => 1 + ulebLength(content) + content;
  const sizeOf = (s: Section) =>
    s.id === TYPE
      ? sectionSize(typeContent)
      : s.id === FUNCTION
      ? sectionSize(funcContent)
      : s.id === GLOBAL
      ? sectionSize(globalContent)
      : s.id === EXPORT
      ? sectionSize(exportContent)
      : s.id === CODE
      ? sectionSize(hintContent.length) + sectionSize(codeContent)
      : guestHints(s)
      ? 0
      : s.end - s.start;
  let total = 8;
  let globalBefore: Section | undefined; // the section a new global section goes before
  let exportBefore: Section | undefined; // the section a new export section goes before
  for (const s of secs) {
    total += sizeOf(s);
    const rank = s.id === 0 ? -1 : SECTION_ORDER.indexOf(s.id);
    if (globalSec === undefined && globalBefore === undefined && rank > globalRank) {
      globalBefore = s;
    }
    if (exportSec === undefined && exportBefore === undefined && rank > exportRank) {
      exportBefore = s;
    }
  }
  if (globalSec === undefined) total += sectionSize(globalContent);
  if (exportSec === undefined) total += sectionSize(exportContent);

  const out = new Uint8Array(total);
  let o = 0;
  const put = (src: ArrayLike<number>) => {
    out.set(src, o);
    o += src.length;
  };
  const copy = (from: number, to: number) => put(b.subarray(from, to));
  const head = (id: number, size: number) => {
    out[o++] = id;
    put(uleb(size));
  };
  const putVec = (
    id: number,
    content: number,
    v: { n: number; at: number; end: number },
    add: ArrayLike<number>,
  ) => {
    head(id, content);
    put(uleb(v.n + 1));
    copy(v.at, v.end);
    put(add);
  };
  copy(0, 8);
  for (const s of secs) {
    if (s === globalBefore) putVec(GLOBAL, globalContent, globals, globalEntry);
    if (s === exportBefore) putVec(EXPORT, exportContent, exports, exportEntry);
    if (s.id === TYPE) putVec(TYPE, typeContent, types, typeEntry);
    else if (s.id === FUNCTION) putVec(FUNCTION, funcContent, funcs, funcEntry);
    else if (s.id === GLOBAL) putVec(GLOBAL, globalContent, globals, globalEntry);
    else if (s.id === EXPORT) putVec(EXPORT, exportContent, exports, exportEntry);
    else if (guestHints(s)) continue;
    else if (s.id === CODE) {
      head(0, hintContent.length); // the branch hints go before the code they are about
      put(hintContent);
      head(CODE, codeContent);
      put(uleb(plans.length + 1));
      for (const plan of plans) {
        put(uleb(plan.size));
        let from = plan.start;
        for (const [at, bytes, skip] of plan.inserts) {
          copy(from, at);
          put(bytes);
          from = at + skip;
        }
        copy(from, plan.end);
      }
      put(uleb(payBody.length));
      put(payBody);
    } else copy(s.start, s.end);
  }
  if (globalSec === undefined && globalBefore === undefined) {
    putVec(GLOBAL, globalContent, globals, globalEntry);
  }
  if (exportSec === undefined && exportBefore === undefined) {
    putVec(EXPORT, exportContent, exports, exportEntry);
  }
  if (o !== total) throw new Error(`wasm_fuel: wrote ${o} of ${total} bytes`);
  return { bytes: out, ...counts };
}
