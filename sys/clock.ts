/**
 * The host's monotonic clock, chosen at its first reading: with FFI allowed
 * on Linux (the CLI), libc's clock_gettime(CLOCK_MONOTONIC) (the vDSO: no
 * system call, a V8 fast call), ~30-40 ns a reading; else
 * `performance.now()`, ~80 ns (a Deno op). Its origin is its own: compare
 * its readings only with each other. The Host's time slices read it (one
 * reading after every request a device serves inside a hypercall), and so
 * does a wasm guest's `env.rdtsc`.
 *
 * @module
 */

import { libc } from "./libc.ts";

const CLOCK_MONOTONIC = 1;

interface Clock {
  ms: () => number;
  ns: () => bigint;
}

let clock: Clock | null = null;

function choose(): Clock {
  const slow: Clock = {
    ms: () => performance.now(),
    ns: () => BigInt(Math.round(performance.now() * 1e6)),
  };
  try {
    if (
      Deno.build.os !== "linux" || Deno.permissions.querySync({ name: "ffi" }).state !== "granted"
    ) {
      return slow;
    }
    const gettime = libc().clock_gettime;
    const ts = new BigInt64Array(2); // struct timespec: tv_sec, tv_nsec
    const buf = new Uint8Array(ts.buffer);
    const half = new Uint32Array(ts.buffer); // [sec low, sec high, nsec, 0] (little-endian)
    if (gettime(CLOCK_MONOTONIC, buf) !== 0) return slow;
    return {
      ms: () => {
        gettime(CLOCK_MONOTONIC, buf);
        return (half[1] * 4294967296 + half[0]) * 1000 + half[2] / 1e6;
      },
      ns: () => {
        gettime(CLOCK_MONOTONIC, buf);
        return ts[0] * 1_000_000_000n + ts[1];
      },
    };
  } catch {
    return slow; // no libc to load
  }
}

let ms: (() => number) | null = null;

/** Milliseconds (fractional) of the host's monotonic clock. */
export function nowMs(): number {
  return (ms ??= (clock ??= choose()).ms)();
}

/**
 * Make {@link nowMs} read `fn` instead (the fuzzer's virtual time, so that
 * a seed replays exactly); null puts the host's clock back.
 */
export function setNowMs(fn: (() => number) | null): void {
  ms = fn;
}

/** Nanoseconds of the host's monotonic clock. */
export function nowNs(): bigint {
  return (clock ??= choose()).ns();
}
