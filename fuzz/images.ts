/**
 * Image fuzzer: the guest image is hostile input too (docs/security.md
 * "The image is hostile input"). Mutates seed images — bytes flipped or
 * set to LEB128 extremes, cut short, slices repeated, random bytes
 * inserted, a section of another seed spliced in — and feeds each to the
 * engine's front door, {@link compileImage}, checking:
 *
 * 1. it resolves to a module or throws an {@link ImageError}: nothing else
 *    (no TypeError, RangeError, uncaught V8 error);
 * 2. a refusal is one printable line of bounded length;
 * 3. an image the profile and V8 accept is never broken by the fuel
 *    instrumentation ("broke it" in the message would be a bug of ours);
 * 4. a module it returns is instrumented (`preemptionOf` has no error).
 *
 * @module
 */

import { compileImage, ImageError, preemptionOf } from "../engines/wasm.ts";
import { Rng } from "./rng.ts";

/** What a run found. */
export interface ImageFuzzResult {
  images: number;
  refused: number;
  compiled: number;
  /** One line per violated invariant (empty when all held). */
  violations: string[];
}

function mutate(rng: Rng, seeds: readonly Uint8Array[]): Uint8Array {
  let b = rng.pick(seeds).slice();
  for (let k = 1 + rng.int(4); k > 0; k--) {
    const at = 8 + rng.int(Math.max(1, b.length - 8));
    switch (rng.int(7)) {
      case 0: // flip a byte
        b[at] = rng.int(256);
        break;
      case 1: // LEB128 extremes: a huge count or a continuation that never ends
        b[at] = rng.pick([0xff, 0x80, 0x7f, 0x00]);
        break;
      case 2: // cut short
        b = b.subarray(0, at);
        break;
      case 3: { // repeat a slice
        const len = 1 + rng.int(64);
        const out = new Uint8Array(b.length + len);
        out.set(b.subarray(0, at));
        out.set(b.subarray(at, at + len), at);
        out.set(b.subarray(at), at + Math.min(len, b.length - at));
        b = out.subarray(0, b.length + Math.min(len, b.length - at));
        break;
      }
      case 4: { // insert random bytes
        const len = 1 + rng.int(8);
        const out = new Uint8Array(b.length + len);
        out.set(b.subarray(0, at));
        for (let i = 0; i < len; i++) out[at + i] = rng.int(256);
        out.set(b.subarray(at), at + len);
        b = out;
        break;
      }
      case 5: // a single bit
        b[at] ^= 1 << rng.int(8);
        break;
      default: { // splice the tail of another seed at this point
        const other = rng.pick(seeds);
        const from = 8 + rng.int(Math.max(1, other.length - 8));
        const out = new Uint8Array(at + other.length - from);
        out.set(b.subarray(0, at));
        out.set(other.subarray(from), at);
        b = out;
      }
    }
  }
  return b;
}

/** Does `s` hold a control character? */
function hasControl(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || (c >= 0x7f && c < 0xa0)) return true;
  }
  return false;
}

/** Run `count` mutated images of `seeds` through {@link compileImage}. */
export async function fuzzImages(
  seeds: readonly Uint8Array[],
  count: number,
  seed: number,
): Promise<ImageFuzzResult> {
  const rng = new Rng(seed);
  const r: ImageFuzzResult = { images: 0, refused: 0, compiled: 0, violations: [] };
  for (let i = 0; i < count; i++) {
    const bytes = mutate(rng, seeds);
    r.images++;
    const where = `image ${i} (seed ${seed})`;
    try {
      const mod = await compileImage(bytes, "fuzzed");
      r.compiled++;
      if ("error" in preemptionOf(mod)) r.violations.push(`${where}: compiled uninstrumented`);
    } catch (e) {
      if (!(e instanceof ImageError)) {
        r.violations.push(
          `${where}: ${(e as Error)?.constructor?.name}: ${String(e).slice(0, 200)}`,
        );
        continue;
      }
      r.refused++;
      if (hasControl(e.message) || e.message.length > 700) {
        r.violations.push(
          `${where}: refusal not one bounded printable line: ${
            JSON.stringify(e.message.slice(0, 200))
          }`,
        );
      }
      if (e.message.includes("broke it")) r.violations.push(`${where}: ${e.message}`);
    }
  }
  return r;
}
