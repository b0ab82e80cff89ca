/**
 * The net.tap.rtt.js responder (bench/tap.ts runs it; it is not a guest):
 * the least a Deno program with lguest's blocking wait does to answer a
 * ping, measured next to netd and the C responder (tap_echo.c) in the same
 * rounds.
 *
 *   deno run --allow-ffi bench/tap_echo.ts IFNAME ADDR
 *
 * creates tap IFNAME as tap_echo.c does (IFF_TAP | IFF_NO_PI, here through
 * Deno FFI: sys/libc.ts), prints "up", then answers ARP requests and ICMP
 * echo requests for the IPv4 address ADDR. The wait is the product's own,
 * host/idle_wait.ts, with nothing else: Deno's event-loop epoll fds found by
 * the same probe (`findLoopFds`), then `blockingWait`'s poll(2) on the tap
 * and those fds on the main thread (`poll32`, 50 ms at most); the frame's
 * read(2) and the reply's write(2) are the tap device's calls (`read32`,
 * `write32`); the reply is made in place in JavaScript. What netd adds on
 * the same path (the guest's interrupt, its resume and handler in wasm,
 * SEND_DMA and its checked ranges, the run loop's turns) is not here.
 * Without FFI or with no event-loop epoll fd found it prints why on stderr
 * and exits 1 (the bench then skips the metric with that line).
 *
 * @module
 */

import { libc } from "../sys/libc.ts";
import {
  blockingWait,
  canBlock,
  findLoopFds,
  parkTurn,
  WOKE_INPUT,
  WOKE_LOOP,
} from "../host/idle_wait.ts";

const MAC = [0x02, 0x00, 0x00, 0x00, 0xfe, 0x02];
const TUNSETIFF = 0x400454ca, IFF_TAP = 0x0002, IFF_NO_PI = 0x1000;
const O_RDWR = 2, O_NONBLOCK = 0o4000, O_CLOEXEC = 0o2000000, F_SETFL = 4;

function fail(why: string): never {
  console.error(`tap_echo.ts: ${why}`);
  Deno.exit(1);
}

const [name, addr] = Deno.args;
const me = (addr ?? "").split(".").map(Number);
if (!name || me.length !== 4 || me.some((b) => !(b >= 0 && b <= 255))) {
  fail("usage: tap_echo.ts IFNAME ADDR");
}
let c: ReturnType<typeof libc>;
try {
  c = libc();
} catch (e) {
  fail(`no FFI: ${(e as Error).message}`);
}
const fd = c.open(new TextEncoder().encode("/dev/net/tun\0"), O_RDWR | O_CLOEXEC, 0);
const ifr = new Uint8Array(40);
ifr.set(new TextEncoder().encode(name));
new DataView(ifr.buffer).setUint16(16, IFF_TAP | IFF_NO_PI, true);
if (fd < 0 || c.ioctl(fd, BigInt(TUNSETIFF), ifr) < 0) fail(`cannot create tap ${name}`);
c.fcntl(fd, F_SETFL, O_NONBLOCK | O_RDWR); // a wake-up without a frame never blocks in read(2)

// A quick event-loop turn for the probe (a MessageChannel message, as host.ts's).
const chan = new MessageChannel();
const quickTurn = () =>
  new Promise<void>((resolve) => {
    chan.port1.onmessage = () => resolve();
    chan.port2.postMessage(0);
  });
await findLoopFds(quickTurn);
chan.port1.close();
if (!canBlock()) fail("no event-loop epoll fd found (the blocking wait would be off)");
console.log("up");

const f = new Uint8Array(2048), tmp = new Uint8Array(6), tap = [fd];
for (;;) {
  const woke = blockingWait(tap, 50);
  // The event loop has work (a signal, I/O): give it the turn the product gives.
  if (woke === WOKE_LOOP) await parkTurn(tap);
  if (woke !== WOKE_INPUT) continue;
  const n = c.read32(fd, f, f.length);
  if (n < 14) continue;
  const type = f[12] << 8 | f[13];
  if (type === 0x0806 && n >= 42 && f[21] === 1 && same(f, 38, me)) {
    // ARP request for us: the reply names our MAC.
    f.copyWithin(0, 6, 12);
    f.set(MAC, 6);
    f[21] = 2;
    f.copyWithin(32, 22, 32); // target = the asker
    f.set(MAC, 22);
    f.set(me, 28);
    c.write32(fd, f, 42);
    continue;
  }
  if (type !== 0x0800 || n < 14 + 20 + 8) continue;
  const ihl = (f[14] & 15) * 4, icmp = 14 + ihl;
  if (f[23] !== 1 || !same(f, 30, me) || n < icmp + 8 || f[icmp] !== 8) continue;
  tmp.set(f.subarray(0, 6)); // swap the MACs
  f.copyWithin(0, 6, 12);
  f.set(tmp, 6);
  tmp.set(f.subarray(26, 30)); // swap the addresses (the header sum holds)
  f.copyWithin(26, 30, 34);
  f.set(tmp.subarray(0, 4), 30);
  f[icmp] = 0; // echo reply: the sum gains 0x0800 (RFC 1624)
  let sum = (f[icmp + 2] << 8 | f[icmp + 3]) + 0x0800;
  sum = (sum & 0xffff) + (sum >> 16);
  f[icmp + 2] = sum >> 8;
  f[icmp + 3] = sum & 0xff;
  c.write32(fd, f, n);
}

function same(b: Uint8Array, at: number, ip: number[]): boolean {
  return b[at] === ip[0] && b[at + 1] === ip[1] && b[at + 2] === ip[2] && b[at + 3] === ip[3];
}
