/**
 * Run by tests/idle_wait_test.ts in a process of its own: the blocking
 * idle wait (host/idle_wait.ts) next to a Worker (as the `--timeout`
 * supervisor), a timer armed all along (as its heartbeat) and, with the
 * argument `foreign`, an epoll fd that is not Deno's and is readable for
 * good (as one a parent leaks). Prints one JSON line: in how many of 20
 * rounds a wait blocked (ran to its time) within three tries, each try that
 * the event loop's fds ended at once followed by the run loop's turn.
 *
 * @module
 */

import * as iw from "../../host/idle_wait.ts";

const worker = new Worker("data:text/javascript,postMessage(1)", { type: "module" });
await new Promise((resolve) => worker.onmessage = resolve);

let foreign = -1;
if (Deno.args[0] === "foreign") {
  const lib = Deno.dlopen("libc.so.6", {
    epoll_create1: { parameters: ["i32"], result: "i32" },
    epoll_ctl: { parameters: ["i32", "i32", "i32", "buffer"], result: "i32" },
    pipe: { parameters: ["buffer"], result: "i32" },
    write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  });
  const c = lib.symbols;
  foreign = c.epoll_create1(0);
  const p = new Int32Array(2);
  c.pipe(new Uint8Array(p.buffer));
  c.write(p[1], new Uint8Array([1]), 1n);
  const ev = new Uint8Array(12);
  new DataView(ev.buffer).setUint32(0, 1, true); // EPOLLIN, level-triggered
  c.epoll_ctl(foreign, 1, p[0], ev); // EPOLL_CTL_ADD
}

const beat = setInterval(() => {}, 50);
const channel = new MessageChannel();
const quickTurn = () =>
  new Promise<void>((resolve) => {
    channel.port1.onmessage = () => resolve();
    channel.port2.postMessage(0);
  });
// host.ts's turn after a wait the event loop ended (on the main of before
// this test: a 1 ms timer).
const mod = iw as Partial<{
  findLoopFds(t: () => Promise<void>): Promise<void>;
  parkTurn(): Promise<void>;
}>;
const loopTurn = mod.parkTurn ?? (() => new Promise<void>((r) => setTimeout(r, 1)));
await mod.findLoopFds?.(quickTurn);

let blocked = 0;
const rounds = 20;
for (let i = 0; i < rounds; i++) {
  await new Promise((r) => setTimeout(r, 1)); // a timer turn (a wait whose time was up)
  for (let tries = 0; tries < 3; tries++) {
    const woke = iw.blockingWait([], 30);
    if (woke === iw.WOKE_TIME) {
      blocked++;
      break;
    }
    await loopTurn();
  }
}
clearInterval(beat);
channel.port1.close();
worker.terminate();
console.log(JSON.stringify({ blocked, rounds, foreign }));
