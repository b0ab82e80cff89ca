/**
 * Test helper: hand-assembled guest images within the guest ABI (the four
 * imports, `start`), for hostile images and hostile guests the C kit
 * cannot express (tail calls, bulk memory, SIMD loops, raw CRASH text).
 *
 * Layout: types 0 `hcall`, 1 `() -> i32`, 2 `() -> ()`, then the caller's;
 * functions 0 hcall, 1 event, 2 wait (imports), 3 `start`, then the
 * caller's from 4. `start` first makes LGUEST_INIT with an `lguest_data`
 * at {@link LG_DATA}, then runs the caller's body.
 *
 * @module
 */

import { LHCALL_CRASH, LHCALL_LGUEST_INIT } from "../../abi/constants.ts";
import { assemble, type Func, I32, i32, type ModuleDef } from "./wasm_asm.ts";

/** Where the image's lguest_data and CRASH message live. */
export const LG_DATA = 0x100000, MSG = 0x100800;
/** Wasm pages the image asks for (its data ends below 0x110000). */
export const MIN_PAGES = 17;

/** `hcall(eax, edx, 0, 0)`, result dropped. */
export function hcall(eax: number, edx: number): number[] {
  return [...i32(eax), ...i32(edx), ...i32(0), ...i32(0), 0x10, 0, 0x1a];
}

/** The body that CRASHes with the message at {@link MSG}. */
export const CRASH = hcall(LHCALL_CRASH, MSG);

/** Options of {@link guestImage}. */
export interface GuestImage {
  /** Instructions of `start` after LGUEST_INIT (it ends with `unreachable` after them). */
  start: number[];
  /** Locals of `start`. */
  locals?: number[];
  /** More function types (indices from 3). */
  types?: [number[], number[]][];
  /** More functions (indices from 4). */
  funcs?: Func[];
  /** The CRASH message at {@link MSG} (bytes, NUL added). */
  message?: Uint8Array | string;
  /** Override any part of the module. */
  patch?: (m: ModuleDef) => void;
}

/** Assemble a guest image. */
export function guestImage(g: GuestImage): Uint8Array {
  const ld = new Uint8Array(1128);
  ld.set([0x00, 0x02, 0, 0, 0xff, 0xff, 0xff, 0xff]); // irq_enabled 0x200, all IRQs blocked
  ld.fill(0xff, 20, 84); // hcall_status: ring empty
  const msg = typeof g.message === "string"
    ? new TextEncoder().encode(g.message)
    : g.message ?? new TextEncoder().encode("Power down");
  const m: ModuleDef = {
    types: [[[I32, I32, I32, I32], [I32]], [[], [I32]], [[], []], ...(g.types ?? [])],
    imports: [
      { module: "env", name: "hcall", func: 0 },
      { module: "env", name: "event", func: 1 },
      { module: "env", name: "wait", func: 2 },
      { module: "env", name: "memory", memory: { min: MIN_PAGES } },
    ],
    funcs: [
      {
        type: 2,
        locals: g.locals,
        body: [...hcall(LHCALL_LGUEST_INIT, LG_DATA), ...g.start, 0x00],
      },
      ...(g.funcs ?? []),
    ],
    exports: [{ name: "start", func: 3 }],
    data: [
      { offset: LG_DATA, bytes: ld },
      { offset: MSG, bytes: [...msg, 0] },
    ],
  };
  g.patch?.(m);
  return assemble(m);
}
