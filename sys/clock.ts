/**
 * The host's monotonic clock: `performance.now()` (~80 ns a reading, a
 * Deno op) at first, and, once the Host has read it {@link WARM_READINGS}
 * times or a guest reads it (`env.rdtsc`, {@link nowNs}), libc's
 * clock_gettime(CLOCK_MONOTONIC) where the process may use FFI on Linux
 * (the CLI): the vDSO, no system call, a V8 fast call, ~30-40 ns. Loading
 * that costs ~0.7 ms (`Deno.dlopen` of the one symbol; all of
 * `sys/libc.ts` ~2.3 ms), which a short run never earns back and every
 * run's start would pay (boot.first_byte): the Host reads the clock a few
 * dozen times before a guest's first byte, a busy run thousands of times a
 * second. The second clock continues the first (same origin, offset at the
 * switch), so readings never go back. Its origin is its own: compare its
 * readings only with each other. The Host's time slices read it (one
 * reading after every request a device serves inside a hypercall), and so
 * does a wasm guest's `env.rdtsc`.
 *
 * @module
 */

const CLOCK_MONOTONIC = 1;

/** The Host's readings through `performance.now()` before the FFI clock is loaded. */
export const WARM_READINGS = 10_000;

interface Clock {
  ms: () => number;
  ns: () => bigint;
}

let readings = 0;

/** `performance.now()`, counting the Host's readings until the switch. */
const warming: Clock = {
  ms: () => {
    if (++readings === WARM_READINGS) return upgrade().ms();
    return performance.now();
  },
  // A guest that reads its clock (env.rdtsc) reads it often: the switch comes at its first reading.
  ns: () => upgrade().ns(),
};

let clock: Clock = warming;

/**
 * Switch to clock_gettime where FFI is allowed on Linux, continuing from
 * `performance.now()`; the clock now read.
 */
function upgrade(): Clock {
  const slow: Clock = {
    ms: () => performance.now(),
    ns: () => BigInt(Math.round(performance.now() * 1e6)),
  };
  clock = slow;
  try {
    if (
      Deno.build.os !== "linux" || Deno.permissions.querySync({ name: "ffi" }).state !== "granted"
    ) {
      return clock;
    }
    const gettime = Deno.dlopen("libc.so.6", {
      clock_gettime: { parameters: ["i32", "buffer"], result: "i32" },
    }).symbols.clock_gettime;
    const ts = new BigInt64Array(2); // struct timespec: tv_sec, tv_nsec
    const buf = new Uint8Array(ts.buffer);
    const half = new Uint32Array(ts.buffer); // [sec low, sec high, nsec, 0] (little-endian)
    const rawMs = () => (half[1] * 4294967296 + half[0]) * 1000 + half[2] / 1e6;
    if (gettime(CLOCK_MONOTONIC, buf) !== 0) return clock;
    // performance.now() first, then clock_gettime: a later reading of the new clock is never
    // below the last reading of the old one.
    const before = performance.now();
    gettime(CLOCK_MONOTONIC, buf);
    const offsetMs = before - rawMs();
    const offsetNs = BigInt(Math.round(before * 1e6)) - (ts[0] * 1_000_000_000n + ts[1]);
    clock = {
      ms: () => {
        gettime(CLOCK_MONOTONIC, buf);
        return rawMs() + offsetMs;
      },
      ns: () => {
        gettime(CLOCK_MONOTONIC, buf);
        return ts[0] * 1_000_000_000n + ts[1] + offsetNs;
      },
    };
  } catch {
    // no libc to load: performance.now() it stays
  }
  return clock;
}

let ms: (() => number) | null = null;

/** Milliseconds (fractional) of the host's monotonic clock. */
export function nowMs(): number {
  return ms !== null ? ms() : clock.ms();
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
  return clock.ns();
}

/**
 * The async ops of ours on Deno's blocking pool in flight, for the
 * blocking idle wait (host/idle_wait.ts), which blocks the main thread
 * inside the event loop's own turn. An op started after the event loop last
 * went back to tokio's scheduler has only a no-op waker (deno_core's op
 * driver polls it once so at its start) and has queued the driver's task
 * (poll_task) on the scheduler's local run queue; until that task runs, the
 * end of any pool op wakes a task that is queued already, and tokio does
 * nothing: no write to the eventfd in Deno's epoll, which the wait polls
 * (docs/performance.md, net.tap.rtt; tests/helpers/pool_wake_probe.ts).
 * So the wait does not count on seeing such an op end. The keys:
 *
 * - an object with a numeric `watchFd` (a console's stdin): a poll(2) of
 *   that fd for POLLIN, which ends only when the fd is readable; the input
 *   stays in the fd until its owner reads it, which it does only after
 *   that end, and the key stays until that read is marked (or done: the
 *   CLI's stdin is read on this thread, in one microtask with a poll(2)
 *   that finds it readable; devices/console.ts #readNow): the wait polls
 *   the fd itself and, when it is readable, gives the event loop a turn,
 *   which collects the end;
 * - a number, a tap's fd: its poll thread; the wait of that tap's own guest
 *   polls the fd itself (as above), any other guest's wait is off (a
 *   neighbour's frame through the other guest's halt and a turn came
 *   later than through the event loop: a netd pinged 0.3 s apart next to a
 *   busy one, median 0.09 -> 0.15 ms, 3 ms at worst);
 * - an object whose `localRead()` says true (a console's read of the
 *   API's input, nothing queued, no stream piped in): it ends only by this
 *   thread's own JavaScript, which cannot run while the thread blocks, and
 *   whatever ends it first makes `localRead()` false: not counted;
 * - anything else (a console's read of its source): an op whose end leaves
 *   nothing to poll (the read took the bytes); while one is in flight the
 *   run loop does not block (the guest sleeps in the event loop, as without
 *   the wait).
 *
 * Here, not in the idle wait: devices use it on every run, the idle wait
 * is loaded only with a busy tap.
 */
export const poolOps: Set<unknown> = new Set();

/** Whether a {@link poolOps} key is a read that only this thread's JavaScript can end, now. */
export function localRead(key: unknown): boolean {
  const f = typeof key === "object" && key !== null
    ? (key as { localRead?: unknown }).localRead
    : undefined;
  return typeof f === "function" && f() === true;
}

/** A {@link poolOps} key's fd if it is a console's watch (a poll of that fd for POLLIN), else -1. */
export function watchedFd(key: unknown): number {
  const fd = typeof key === "object" && key !== null ? (key as { watchFd?: unknown }).watchFd : -1;
  return typeof fd === "number" && fd >= 0 ? fd : -1;
}

/**
 * Set once a guest of this process may block in the blocking idle wait (a
 * device with wait fds, GuestSpec.blockingWait): a console then polls its
 * source's fd before it reads it ({@link poolOps}), so that a read in flight
 * does not keep the wait off while the source is quiet.
 */
export const idleWaits = { possible: false };
