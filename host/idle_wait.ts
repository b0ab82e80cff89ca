/**
 * The blocking idle wait: when every guest of the process sleeps and one of
 * them has a host fd that recently carried input (a tap), the main thread
 * itself blocks in poll(2) on those fds and on Deno's own event-loop
 * (epoll) fds, instead of returning to the event loop and being woken by
 * Deno's poll thread. A frame then costs one thread wake-up, not two; on
 * the 2-core PVM machines a wake-up of a halted vCPU costs ~12 µs
 * (docs/performance.md "net.tap.rtt").
 *
 * Used by the CLI (the whole process is ours); an API program's only if
 * it asks (`blockingWait`): its own timers wait for the wait (below).
 *
 * What keeps the event loop alive while the main thread blocks here:
 *
 * - Deno's epoll fd (this thread's runtime's, found by a probe:
 *   {@link findLoopFds}) is in the poll set: I/O, signals (Ctrl-C,
 *   SIGTERM), finished work of the blocking pool (stdin reads, FFI calls,
 *   child processes) and messages from Workers make it readable, and the
 *   wait returns for an event-loop turn that parks the runtime
 *   ({@link parkTurn}) at once. Not the blocking pool's work if an async
 *   op was started after the event loop last went back to its scheduler:
 *   deno_core's op-driver task is then queued on tokio's local run queue,
 *   and a pool thread's end does not write the eventfd until it has run
 *   (sys/clock.ts poolOps). So the wait polls a console's stdin while the
 *   console's poll(2) of it is in flight there (stdin holds the input from
 *   before that poll's end until the console has seen the end), and the
 *   run loop does not block while another op of ours is in flight there (a
 *   console's read, another tap's poll thread).
 * - Timers are not fds: the wait ends at the nearest guest timer's deadline
 *   and in any case after {@link MAX_BLOCK_MS}, then a timer turn runs the
 *   timers due, so any other timer (`--timeout`, the supervisor's
 *   heartbeat, an API program's own) fires at most that late.
 * - It is only used while a device says input came recently (the tap:
 *   frames less than 250 ms apart): an idle guest sleeps in the event loop
 *   as before and costs no CPU; and not while something keeps Deno's epoll
 *   readable that a turn does not clear ({@link MAX_SPINS}).
 *
 * Needs FFI (only a device that has an fd, which it opened through libc,
 * asks for it).
 *
 * @module
 */

import { libc } from "../sys/libc.ts";

/** The longest one blocking wait lasts before an event-loop turn. */
export const MAX_BLOCK_MS = 50;

const POLLIN = 1;

/** What the wait saw: one of the given device fds is readable (or in error)... */
export const WOKE_INPUT = 1;
/** ...or the event loop has I/O (an epoll fd is readable) or a signal came: give it a real turn... */
export const WOKE_LOOP = 2;
/** ...or the time is up: let due timers run. */
export const WOKE_TIME = 3;

let loopFds: number[] | null = null;

/** Every `anon_inode:[eventpoll]` fd among the first 256 (readlink(2) on /proc/self/fd: FFI, no read permission needed). */
function epollFds(): number[] {
  const found: number[] = [];
  const c = libc();
  const buf = new Uint8Array(64);
  const enc = new TextEncoder();
  const dec = new TextDecoder();
  for (let fd = 0; fd < 256; fd++) {
    const n = Number(c.readlink(enc.encode(`/proc/self/fd/${fd}\0`), buf, BigInt(buf.length)));
    if (n > 0 && dec.decode(buf.subarray(0, n)) === "anon_inode:[eventpoll]") found.push(fd);
  }
  return found;
}

/** The fds of `fds` that are readable now (poll(2) with no timeout). */
function readable(fds: number[], ms = 0): number[] {
  const buf = new Uint8Array(fds.length * 8);
  const v = new DataView(buf.buffer);
  fds.forEach((fd, i) => {
    v.setInt32(i * 8, fd, true);
    v.setInt16(i * 8 + 4, POLLIN, true);
  });
  if (libc().poll_sync(buf, BigInt(fds.length), ms) <= 0) return [];
  return fds.filter((_, i) => v.getInt16(i * 8 + 6, true) !== 0);
}

const noFds = new Uint8Array(8);

/**
 * An event-loop turn in which the runtime reads its epoll fd: a
 * non-blocking FFI call, poll(2) of the device `fds` for 1 ms, ends on a
 * pool thread, which wakes this thread's runtime through its eventfd; the
 * runtime has parked in epoll_wait(2) by then and takes every readiness
 * pending there. (A call that ends at once was often over before the
 * runtime parked: its epoll stayed readable about half the time, never
 * with 1 ms. A timer turn does not leave the epoll quiet either: a Deno
 * timer that fires while another is armed (`--timeout`'s, the supervisor's
 * heartbeat) has the runtime wake itself through its eventfd again, and
 * the next blocking wait would return at once; a MessageChannel turn does
 * not park at all.) Input on `fds` ends the turn early.
 */
export async function parkTurn(fds: readonly number[] = []): Promise<void> {
  const turnFds = new Uint8Array(Math.max(8, fds.length * 8)); // its own: the call outlives this turn's caller
  const v = new DataView(turnFds.buffer);
  fds.forEach((fd, i) => {
    v.setInt32(i * 8, fd, true);
    v.setInt16(i * 8 + 4, POLLIN, true);
    v.setInt16(i * 8 + 6, 0, true);
  });
  await libc().poll(turnFds, BigInt(fds.length), 1);
}

/**
 * Find this thread's event-loop epoll fds, exactly: the ones that become
 * readable when a pool thread wakes this runtime (a non-blocking FFI call,
 * polled once by a quick turn so that its end has a waker, ending 10 ms
 * later while this thread blocks in poll(2) on every epoll fd that is quiet
 * then). Another epoll fd (a Worker's runtime, one inherited from the
 * parent, readable or not) does not see that wake-up; a probe that finds
 * none, or one a coincidence could have made (two tries must agree),
 * leaves the blocking wait off, until a later try ({@link probeDue}).
 * Once a process, when a guest first has a busy tap: ~25 ms, at most
 * ~250 ms a try.
 */
export async function findLoopFds(quickTurn: () => Promise<void>): Promise<void> {
  if (loopFds !== null && !probeDue()) return;
  probing = true;
  try {
    await probe(quickTurn);
  } finally {
    probing = false;
  }
}

/**
 * A probe that found nothing is tried again {@link PROBE_AGAIN_MS} later,
 * {@link PROBES} times in all: under CPU load its pool call can end later
 * than the probe looks (the 50 ms below) in all four tries (seen with
 * busy loops beside the net test: netd then never waited in place). A try
 * blocks this thread 200 ms at most when it finds nothing.
 */
const PROBES = 4;
const PROBE_AGAIN_MS = 1000;
let probesLeft = PROBES;
let probeAt = 0;
let probing = false;

/** Whether {@link findLoopFds} should run (again) now: the last probe gave up, tries are left and due, none runs. */
export function probeDue(): boolean {
  return loopFds !== null && loopFds.length === 0 && probesLeft > 0 && !probing &&
    performance.now() >= probeAt;
}

async function probe(quickTurn: () => Promise<void>): Promise<void> {
  probesLeft--;
  const all = epollFds();
  let agreed: number[] | null = null;
  for (let attempt = 0; attempt < 4 && all.length !== 0; attempt++) {
    await parkTurn(); // this runtime's epoll is quiet after it (nearly always: two tries agree)...
    const call = libc().poll(noFds, 0n, 10); // ...until this call ends on a pool thread
    await quickTurn();
    const busy = readable(all);
    const quiet = all.filter((fd) => !busy.includes(fd));
    const woke = quiet.length === 0 ? [] : readable(quiet, 50);
    await call;
    if (woke.length === 0) continue;
    if (
      agreed !== null && agreed.length === woke.length && agreed.every((fd) => woke.includes(fd))
    ) {
      loopFds = woke;
      return;
    }
    agreed = woke;
  }
  loopFds = [];
  probeAt = performance.now() + PROBE_AGAIN_MS;
}

/**
 * Blocking waits in a row that the event loop's fds ended at once, and the
 * time until which the wait is off after {@link MAX_SPINS} of them.
 */
let spins = 0;
let offUntil = 0;
/**
 * This many waits in a row ended at once by the event loop's fds, each
 * after a turn that should have taken what woke it: something keeps the
 * epoll readable that a turn does not clear. The guest then sleeps in the
 * event loop (the tap's poll thread watches it) for {@link OFF_MS}, as it
 * does without the blocking wait, rather than spin through turns.
 */
const MAX_SPINS = 8;
const OFF_MS = 1000;

/**
 * Whether the blocking wait can know the event loop's wake-ups here (its
 * epoll fds were found, {@link findLoopFds}) and is not backing off.
 */
export function canBlock(): boolean {
  return loopFds !== null && loopFds.length !== 0 && performance.now() >= offUntil;
}

let pfd = new Uint8Array(0);
let dv = new DataView(pfd.buffer);

/**
 * Block until one of `fds` is readable, the event loop has work, or
 * `timeoutMs` (capped at {@link MAX_BLOCK_MS}) passes. EINTR (a signal on
 * this thread) counts as work for the event loop, and so does one of
 * `watched` readable: the fd of a poll(2) of ours in flight on Deno's
 * blocking pool (a console's stdin: sys/clock.ts poolOps), whose end then
 * comes, or came without the eventfd write the wait would see; the event
 * loop's turn collects it.
 */
export function blockingWait(
  fds: readonly number[],
  timeoutMs: number,
  watched: readonly number[] = [],
): number {
  const loop = loopFds ?? [];
  const own = fds.length;
  const mine = own + watched.length;
  const n = mine + loop.length;
  if (pfd.length < n * 8) {
    pfd = new Uint8Array(n * 8);
    dv = new DataView(pfd.buffer);
  }
  for (let i = 0; i < n; i++) {
    dv.setInt32(i * 8, i < own ? fds[i] : i < mine ? watched[i - own] : loop[i - mine], true);
    dv.setInt16(i * 8 + 4, POLLIN, true);
    dv.setInt16(i * 8 + 6, 0, true);
  }
  const ms = Math.max(0, Math.min(MAX_BLOCK_MS, Math.ceil(timeoutMs)));
  const t0 = performance.now();
  const r = libc().poll32(pfd, n, ms);
  if (r === 0) {
    spins = 0;
    return WOKE_TIME;
  }
  for (let i = 0; i < own; i++) {
    if (r > 0 && dv.getInt16(i * 8 + 6, true) !== 0) {
      spins = 0;
      return WOKE_INPUT;
    }
  }
  // Read here, not before the input's return: a frame's way to the guest makes no clock call.
  const atOnce = performance.now() - t0 < 0.05;
  if (!atOnce) spins = 0;
  else if (++spins >= MAX_SPINS) {
    spins = 0;
    offUntil = performance.now() + OFF_MS;
  }
  return WOKE_LOOP;
}
