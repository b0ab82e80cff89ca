/**
 * Run by tests/idle_wait_test.ts in a process of its own: when does the end
 * of work on Deno's blocking pool wake a main thread blocked in the
 * blocking idle wait (host/idle_wait.ts blockingWait, poll(2) on Deno's
 * event-loop epoll fd)? A pool call `A` (a non-blocking FFI poll(2) of no
 * fds, 30 ms) ends while the main thread blocks for at most 80 ms; what
 * comes between A's start and the wait varies:
 *
 * - `fresh`: nothing (A started after the last turn) — A's end is missed;
 * - `turn`: a parked turn (host/idle_wait.ts parkTurn) — seen;
 * - `timer`: a 0 ms timer turn — seen;
 * - `channel`: a MessageChannel turn — seen (its message comes through
 *   the op driver's task, which the turn runs);
 * - `newer`: a parked turn, then another async op B started (left
 *   pending) — A's end is missed too, though A was started before the turn;
 * - `fdpoll`: instead of A, a pool poll(2) of a pipe, started after the
 *   last turn, with the pipe in the wait's watched fds (as host.ts adds a
 *   console's stdin: its readiness is WOKE_LOOP); a Worker writes the
 *   pipe after 20 ms — the wait sees the pipe (level-triggered: the byte
 *   stays until read), and one parked turn then collects the poll's end;
 * - `fdread`: the same with a pool read(2) of the pipe instead of the poll
 *   — the read takes the byte, the wait sees neither it nor the read's end.
 *
 * Why (deno_core's FuturesUnorderedDriver, tokio's task states): an async
 * op that does not finish at once is first polled with a no-op waker and
 * pushed to the op driver's queue, which wakes the driver's task (its
 * poll_task) from the main thread: tokio queues it on the current-thread
 * scheduler's local run queue (NOTIFIED), with no write to the driver's
 * eventfd. Until the scheduler runs that task (only after the main task's
 * poll returns: a turn), the new op has no real waker, and the end of any
 * other pool op wakes a task that is NOTIFIED already: tokio does nothing
 * (transition_to_notified: DoNothing), so no eventfd write reaches Deno's
 * epoll. Prints one JSON line: per case, how many of the rounds the wait
 * returned before its 80 ms (`seen`), and for fdpoll also how many poll
 * ends one parked turn collected.
 *
 * @module
 */

import * as iw from "../../host/idle_wait.ts";

const lib = Deno.dlopen("libc.so.6", {
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32", nonblocking: true },
  readNb: {
    name: "read",
    parameters: ["i32", "buffer", "usize"],
    result: "isize",
    nonblocking: true,
  },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  pipe: { parameters: ["buffer"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
});
const c = lib.symbols;

const channel = new MessageChannel();
const quickTurn = () =>
  new Promise<void>((resolve) => {
    channel.port1.onmessage = () => resolve();
    channel.port2.postMessage(0);
  });
await iw.findLoopFds(quickTurn);
if (!iw.canBlock()) {
  console.log(JSON.stringify({ skipped: "Deno's event-loop epoll fd not found" }));
  Deno.exit(0);
}

// A Worker that writes one byte to a pipe `ms` after it is asked (its own thread and runtime).
const writer = new Worker(
  `data:text/javascript,${
    encodeURIComponent(`
const w = Deno.dlopen("libc.so.6", { write: { parameters: ["i32", "buffer", "usize"], result: "isize" } });
const sab = new Int32Array(new SharedArrayBuffer(4));
onmessage = (e) => {
  Atomics.wait(sab, 0, 0, e.data.ms);
  w.symbols.write(e.data.fd, new Uint8Array([120]), 1n);
};
postMessage(0);`)
  }`,
  { type: "module" },
);
await new Promise((resolve) => writer.onmessage = resolve);

const noFds = new Uint8Array(8);
const ROUNDS = Number(Deno.args[0] ?? 5);
const WAIT_MS = 80;

/** One round: start A (30 ms), do `between`, wait; true if the wait ended before its time. */
async function round(between: () => Promise<void> | void): Promise<boolean> {
  await iw.parkTurn();
  const a = c.poll(noFds, 0n, 30);
  await between();
  const woke = iw.blockingWait([], WAIT_MS);
  await a;
  await iw.parkTurn();
  return woke !== iw.WOKE_TIME;
}

const pendingB: Promise<number>[] = [];
const cases: Record<string, () => Promise<void> | void> = {
  fresh: () => {},
  turn: () => iw.parkTurn(),
  timer: () => new Promise<void>((r) => setTimeout(r, 0)),
  channel: quickTurn,
  newer: async () => {
    await iw.parkTurn();
    pendingB.push(c.poll(noFds, 0n, 200));
  },
};

const result: Record<string, number> = { rounds: ROUNDS };
for (const [name, between] of Object.entries(cases)) {
  let seen = 0;
  for (let i = 0; i < ROUNDS; i++) if (await round(between)) seen++;
  result[name] = seen;
}
await Promise.all(pendingB);

// The pipe cases: the wait polls the pipe itself.
const fds = new Int32Array(2);
c.pipe(new Uint8Array(fds.buffer));
const [rfd, wfd] = fds;
for (const kind of ["fdpoll", "fdread"]) {
  let seen = 0, collected = 0;
  for (let i = 0; i < ROUNDS; i++) {
    await iw.parkTurn();
    let ended = false;
    const pfd = new Uint8Array(8);
    new DataView(pfd.buffer).setInt32(0, rfd, true);
    new DataView(pfd.buffer).setInt16(4, 1, true); // POLLIN
    const op = kind === "fdpoll" ? c.poll(pfd, 1n, 1000) : c.readNb(rfd, new Uint8Array(1), 1n);
    op.then(() => ended = true);
    writer.postMessage({ fd: wfd, ms: 20 });
    // As host.ts polls a console's stdin: a watched fd, whose readiness is the event loop's.
    const woke = iw.blockingWait([], WAIT_MS, [rfd]);
    if (woke === iw.WOKE_LOOP) seen++;
    await iw.parkTurn();
    if (ended) collected++;
    await op;
    if (kind === "fdpoll") c.read(rfd, new Uint8Array(1), 1n);
  }
  result[kind] = seen;
  if (kind === "fdpoll") result.fdpollCollected = collected;
}
c.close(rfd);
c.close(wfd);
writer.terminate();
channel.port1.close();
console.log(JSON.stringify(result));
