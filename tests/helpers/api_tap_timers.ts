/**
 * Run by tests/net_e2e_test.ts inside a network namespace: an API program
 * (mod.ts startGuest, netd on a tap at the address given) with its own
 * 10 ms setInterval. Prints `ready` once netd is up, then counts the
 * interval's callbacks for 3 s (the test pings netd meanwhile) and prints
 * one JSON line: the count, the latest callback's lateness and two of the
 * guest's counters (waits left to the event loop, halts answered in place). A third
 * argument `blocking` asks for the blocking idle wait (blockingWait).
 *
 * @module
 */

import { startGuest } from "../../mod.ts";

const [hostIp, guestIp, wait] = Deno.args;
let ticks = 0;
let counting = false;
let last = performance.now();
let worst = 0;
const iv = setInterval(() => {
  const now = performance.now();
  if (counting) {
    ticks++;
    worst = Math.max(worst, now - last - 10);
  }
  last = now;
}, 10);
await using g = await startGuest({
  image: "netd",
  args: `ip=${guestIp}/24`,
  net: [`tap:lgt0,ip=${hostIp}/24`],
  timeoutMs: 30_000,
  blockingWait: wait === "blocking",
});
await g.expect(`netd: ${guestIp}`);
console.log("ready");
counting = true;
last = performance.now();
await new Promise((r) => setTimeout(r, 3000));
counting = false;
clearInterval(iv);
await g.stop();
const c = (await g.done).counters;
console.log(JSON.stringify({
  ticks,
  worstLateMs: Math.round(worst),
  waitsOff: c?.waitsOffForPoolOps,
  inPlace: c?.haltWaitsInPlace,
}));
