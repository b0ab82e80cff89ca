/**
 * The blocking idle wait: when every guest of the process sleeps and one of
 * them has a host fd that recently carried input (a tap), the main thread
 * itself blocks in poll(2) on those fds and on Deno's own event-loop
 * (epoll) fds, instead of returning to the event loop and being woken by
 * Deno's poll thread. A frame then costs one thread wake-up, not two; on
 * the 2-core PVM machines a wake-up of a halted vCPU costs ~12 µs
 * (docs/performance.md "net.tap.rtt").
 *
 * What keeps the event loop alive while the main thread blocks here:
 *
 * - Deno's epoll fds are in the poll set: I/O, signals (Ctrl-C, SIGTERM),
 *   finished work of the blocking pool (stdin reads, FFI calls, child
 *   processes) and messages from Workers make them readable, and the wait
 *   returns for an event-loop turn at once.
 * - Timers are not fds: the wait ends at the nearest guest timer's deadline
 *   and in any case after {@link MAX_BLOCK_MS}, so any other timer
 *   (`--timeout`, a program's own) fires at most that late.
 * - It is only used while a device says input came recently (the tap:
 *   frames less than 250 ms apart): an idle guest sleeps in the event loop
 *   as before and costs no CPU.
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

/**
 * Deno's event-loop epoll fds (`anon_inode:[eventpoll]` among the first
 * fds; created at start-up, before any guest), found once through
 * readlink(2) on /proc/self/fd (FFI: no read permission needed).
 */
function eventLoopFds(): number[] {
  if (loopFds !== null) return loopFds;
  const found: number[] = [];
  const c = libc();
  const buf = new Uint8Array(64);
  const enc = new TextEncoder();
  for (let fd = 0; fd < 64; fd++) {
    const n = Number(c.readlink(enc.encode(`/proc/self/fd/${fd}\0`), buf, BigInt(buf.length)));
    if (n > 0 && new TextDecoder().decode(buf.subarray(0, n)) === "anon_inode:[eventpoll]") {
      found.push(fd);
    }
  }
  loopFds = found;
  return found;
}

/** Whether the blocking wait can know the event loop's wake-ups here (its epoll fds were found). */
export function canBlock(): boolean {
  return eventLoopFds().length !== 0;
}

let pfd = new Uint8Array(0);
let dv = new DataView(pfd.buffer);

/**
 * Block until one of `fds` is readable, the event loop has work, or
 * `timeoutMs` (capped at {@link MAX_BLOCK_MS}) passes. EINTR (a signal on
 * this thread) counts as work for the event loop.
 */
export function blockingWait(fds: number[], timeoutMs: number): number {
  const loop = eventLoopFds();
  const n = fds.length + loop.length;
  if (pfd.length < n * 8) {
    pfd = new Uint8Array(n * 8);
    dv = new DataView(pfd.buffer);
  }
  for (let i = 0; i < n; i++) {
    dv.setInt32(i * 8, i < fds.length ? fds[i] : loop[i - fds.length], true);
    dv.setInt16(i * 8 + 4, POLLIN, true);
    dv.setInt16(i * 8 + 6, 0, true);
  }
  const ms = Math.max(0, Math.min(MAX_BLOCK_MS, Math.ceil(timeoutMs)));
  const r = libc().poll_sync(pfd, BigInt(n), ms);
  if (r === 0) return WOKE_TIME;
  for (let i = 0; i < fds.length; i++) {
    if (r > 0 && dv.getInt16(i * 8 + 6, true) !== 0) return WOKE_INPUT;
  }
  return WOKE_LOOP;
}
