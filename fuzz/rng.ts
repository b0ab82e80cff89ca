/**
 * Fuzzer: a small seeded PRNG (mulberry32). Fast, 32-bit state, and the same
 * sequence on every machine, so a seed names one run exactly.
 *
 * @module
 */

/** Mix two 32-bit values into a well-spread seed (for per-epoch seeds). */
export function mixSeed(a: number, b: number): number {
  let h = Math.imul((a ^ 0x9e3779b9) >>> 0, 0x85ebca6b) ^ Math.imul(b + 0x632be5ab, 0xc2b2ae35);
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  return h >>> 0;
}

/** mulberry32 with a few helpers. */
export class Rng {
  #s: number;

  constructor(seed: number) {
    this.#s = seed | 0;
  }

  /** A uniform u32. */
  u32(): number {
    let t = (this.#s = (this.#s + 0x6d2b79f5) | 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** A uniform integer in [0, n) (n ≤ 2^32). */
  int(n: number): number {
    return Math.floor((this.u32() / 4294967296) * n);
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.u32() < p * 4294967296;
  }

  /** A uniform element. */
  pick<T>(a: readonly T[]): T {
    return a[this.int(a.length)];
  }
}
