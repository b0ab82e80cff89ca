/**
 * `/dev/lguest` as an object (protocol §6): write() requests and their
 * error order, read() running the guest, BREAK, death and close.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  EAGAIN,
  EBUSY,
  EINVAL,
  ENOENT,
  ENOSPC,
  EPERM,
  ERESTARTSYS,
  LHCALL_CRASH,
  LHCALL_SEND_DMA,
  LHCALL_TS,
  LHREQ_BREAK,
  LHREQ_GETDMA,
  LHREQ_INITIALIZE,
  LHREQ_IRQ,
  MAX_LGUEST_GUESTS,
  SWITCHER_ADDR,
} from "../abi/constants.ts";
import { Host, type LguestFile } from "../host/host.ts";
import {
  addGuest,
  ARR,
  BUF,
  closeAll,
  makeHost,
  openGuest,
  settled,
  sharedKey,
  sleep,
} from "./helpers/guests.ts";
import { type GuestProgram, putDma, ScriptCpu } from "./helpers/script_cpu.ts";

/** A host with one file running `program`, already initialised. */
function launch(program: GuestProgram, host = new Host()): { f: LguestFile; cpu: ScriptCpu } {
  const cpu = new ScriptCpu(program);
  const f = host.open(cpu);
  assert.equal(f.write([LHREQ_INITIALIZE, 64, 0, 0x100000, 0xc0000000]), 16);
  return { f, cpu };
}

// --- §6.1 write() -------------------------------------------------------------

Deno.test("§6.1 request before INITIALIZE is EINVAL", async () => {
  const host = new Host();
  const f = host.open(new ScriptCpu());
  for (const req of [[LHREQ_GETDMA, 0], [LHREQ_IRQ, 1], [LHREQ_BREAK, 1], [99, 0]]) {
    assert.equal(f.write(req), -EINVAL, `request ${req[0]}`);
  }
  assert.deepEqual(await f.read(), { kind: "errno", result: -EINVAL, errno: EINVAL });
  assert.equal(host.count, 0);
  f.close();
});

Deno.test("§6.1 INITIALIZE returns 16 and records pfn_limit, pgdir, start, page_offset", () => {
  const host = new Host();
  const cpu = new ScriptCpu();
  const f = host.open(cpu);
  assert.equal(f.write([LHREQ_INITIALIZE, 60, 0x3f000, 0x100020, 0xc0000000]), 16);
  const g = f.guest!;
  assert.equal(g.id, 0);
  assert.equal(g.pfnLimit, 60);
  assert.equal(g.mem.top, 60 * 4096);
  assert.equal(g.pgdir, 0x3f000);
  assert.equal(g.start, 0x100020);
  assert.equal(g.pageOffset, 0xc0000000);
  assert.equal(host.guests[0], g);
  assert.equal(cpu.port, f, "the engine is attached to the file");
  f.close();
});

Deno.test("§6.1 INITIALIZE twice is EBUSY", () => {
  const host = new Host();
  const { file } = openGuest(host);
  assert.equal(file.write([LHREQ_INITIALIZE, 64, 0, 0, 0xc0000000]), -EBUSY);
  assert.equal(host.count, 1);
  file.close();
});

Deno.test("§6.1 INITIALIZE with page_offset in the switcher slot is EINVAL", () => {
  const host = new Host();
  const f = host.open(new ScriptCpu());
  assert.equal(f.write([LHREQ_INITIALIZE, 64, 0, 0, SWITCHER_ADDR]), -EINVAL);
  assert.equal(f.write([LHREQ_INITIALIZE, 65, 0, 0, 0xc0000000]), -EINVAL, "RAM must cover top");
  assert.equal(host.count, 0);
  assert.equal(f.write([LHREQ_INITIALIZE, 64, 0, 0, SWITCHER_ADDR - 1]), 16);
  f.close();
});

Deno.test("§6.1 17th guest gets ENOSPC; §6.4 close frees the slot", () => {
  const host = new Host();
  const files = [];
  for (let i = 0; i < MAX_LGUEST_GUESTS; i++) {
    const { file, result } = openGuest(host, { pages: 2 });
    assert.equal(result, 16);
    assert.equal(file.guest!.id, i);
    files.push(file);
  }
  const { file: extra, result } = openGuest(host, { pages: 2 });
  assert.equal(result, -ENOSPC);
  assert.equal(extra.guest, null);
  files[5].close();
  assert.equal(extra.write([LHREQ_INITIALIZE, 2, 0, 0, 0xc0000000]), 16);
  assert.equal(extra.guest!.id, 5, "the freed guestid is reused");
  closeAll([...files.map((file) => ({ file })), { file: extra }]);
});

Deno.test("§6.1 writes to a dead guest return ENOENT, INITIALIZE included", () => {
  const { guests: [t] } = makeHost(1);
  t.mem.bytes.set(new TextEncoder().encode("bye\0"), BUF);
  t.call(LHCALL_CRASH, BUF);
  for (const req of [[LHREQ_GETDMA, 0x3000], [LHREQ_IRQ, 1], [LHREQ_BREAK, 1], [99, 0]]) {
    assert.equal(t.file.write(req), -ENOENT, `request ${req[0]}`);
  }
  assert.equal(t.file.write([LHREQ_INITIALIZE, 64, 0, 0, 0xc0000000]), -ENOENT);
  closeAll([t]);
});

Deno.test("§6.1 only the owner task may write, except BREAK: EPERM", async () => {
  const host = new Host();
  const owner = {}, other = {};
  const cpu = new ScriptCpu();
  const f = host.open(cpu);
  assert.equal(f.write([LHREQ_INITIALIZE, 64, 0, 0, 0xc0000000], owner), 16);
  assert.equal(f.write([LHREQ_IRQ, 1], other), -EPERM);
  assert.equal(f.write([LHREQ_GETDMA, 0x3000], other), -EPERM);
  assert.equal(f.write([LHREQ_INITIALIZE, 64, 0, 0, 0xc0000000], other), -EPERM);
  assert.equal(f.write([LHREQ_BREAK, 1], other), 0);
  assert.equal(f.write([LHREQ_BREAK, 0], other), 0);
  assert.equal(f.write([LHREQ_IRQ, 1], owner), 0);
  assert.deepEqual(await f.read(other), { kind: "errno", result: -EPERM, errno: EPERM });
  f.close();
});

Deno.test("§6.1 unknown request is EINVAL, with or without arguments", () => {
  const { guests: [t] } = makeHost(1);
  assert.equal(t.file.write([4, 0]), -EINVAL);
  assert.equal(t.file.write([0xffffffff, 0]), -EINVAL);
  assert.equal(t.file.write([7]), -EINVAL);
  assert.equal(t.dead, null);
  closeAll([t]);
});

Deno.test("§6.1 IRQ >= 32 is EINVAL; IRQ returns 0 (not a byte count) and sets pending", () => {
  const { guests: [t] } = makeHost(1);
  assert.equal(t.file.write([LHREQ_IRQ, 32]), -EINVAL);
  assert.equal(t.file.write([LHREQ_IRQ, 0xffffffff]), -EINVAL);
  assert.equal(t.guest.pending, 0);
  assert.equal(t.file.write([LHREQ_IRQ, 31]), 0);
  assert.equal(t.file.write([LHREQ_IRQ, 0]), 0);
  assert.equal(t.guest.pending >>> 0, 0x80000001);
  closeAll([t]);
});

Deno.test("§6.1 LHREQ_IRQ does not wake a halted guest; the next wake delivers it", async () => {
  const { f, cpu } = launch(async (g) => {
    await g.init();
    await g.gate(5);
    await g.halt();
    await g.hcall(LHCALL_SEND_DMA, 0x3000, 0x2400); // report to the Launcher
  });
  const p = f.read();
  await sleep(5);
  assert.ok(f.guest!.halted);
  assert.equal(f.write([LHREQ_IRQ, 5]), 0);
  assert.equal(await settled(p, 10), false, "LHREQ_IRQ did not wake the guest");
  assert.equal(f.write([LHREQ_BREAK, 1]), 0);
  assert.deepEqual(await p, { kind: "errno", result: -EAGAIN, errno: EAGAIN });
  assert.equal(f.write([LHREQ_BREAK, 0]), 0);
  const r = await f.read();
  assert.equal(r.kind, "dma");
  assert.deepEqual(cpu.irqLog, [5]);
  cpu.check();
  f.close();
});

Deno.test("§6.1 GETDMA returns the buffer's address with the irq in used_len", () => {
  const { guests: [t] } = makeHost(1);
  putDma(t.mem, ARR, [[BUF, 100]]);
  assert.equal(t.bind(0x3000, ARR, 1, 4), 1);
  assert.equal(t.file.write([LHREQ_GETDMA, 0x3000]), ARR);
  assert.equal(t.used(ARR), 4);
  assert.equal(t.file.write([LHREQ_GETDMA, 0x3000]), -ENOENT);
  closeAll([t]);
});

// --- §6.2 read() --------------------------------------------------------------

Deno.test("§6.2 read runs the guest until a Launcher DMA: [dma, key], result 8", async () => {
  const { f, cpu } = launch(async (g) => {
    await g.init();
    await g.send(0x3004, 0x2400);
    await g.send(0x3008, 0x2500);
    return "done";
  });
  assert.deepEqual(await f.read(), { kind: "dma", result: 8, dma: 0x2400, key: 0x3004 });
  assert.deepEqual(await f.read(), { kind: "dma", result: 8, dma: 0x2500, key: 0x3008 });
  assert.deepEqual(await f.read(), { kind: "errno", result: -ENOENT, errno: ENOENT });
  assert.equal(cpu.result, "done");
  f.close();
});

Deno.test("§6.2 read after death: ENOENT then the reason", async () => {
  const { f, cpu } = launch(async (g) => {
    await g.init();
    g.mem.bytes.set(new TextEncoder().encode("Power down\0"), 0x5000);
    await g.hcall(LHCALL_CRASH, 0x5000);
    throw new Error("not reached");
  });
  assert.deepEqual(await f.read(), { kind: "errno", result: -ENOENT, errno: ENOENT });
  const reason = "CRASH: Power down";
  const expect = { kind: "reason", result: reason.length + 1, reason };
  assert.deepEqual(await f.read(), expect);
  assert.deepEqual(await f.read(), expect, "and again");
  cpu.check();
  assert.ok(cpu.finished);
  f.close();
});

Deno.test("§0 only the first kill reason is kept", async () => {
  const { guests: [t] } = makeHost(1);
  t.file.kill("first");
  t.file.kill("second");
  t.guest.kill("third");
  assert.deepEqual(await t.file.read(), { kind: "errno", result: -ENOENT, errno: ENOENT });
  assert.equal((await t.file.read() as { reason: string }).reason, "first");
  closeAll([t]);
});

Deno.test("§0 a guest killed while it sleeps never runs again; close unwinds it", async () => {
  const { f, cpu } = launch(async (g) => {
    await g.init();
    await g.halt();
    throw new Error("a dead guest ran");
  });
  const p = f.read();
  await sleep(5);
  f.kill("killed by the Launcher");
  assert.deepEqual(await p, { kind: "errno", result: -ENOENT, errno: ENOENT });
  assert.equal(((await f.read()) as { reason: string }).reason, "killed by the Launcher");
  assert.equal(cpu.finished, false, "still parked, never resumed");
  f.close();
  await sleep(0);
  assert.ok(cpu.finished);
  cpu.check(); // unwound by the exit sentinel, not by the throw after halt()
});

Deno.test("§6.2 BREAK makes read return EAGAIN and wakes a halted guest", async () => {
  const { f, cpu } = launch(async (g) => {
    await g.init();
    await g.halt();
  });
  const p = f.read();
  await sleep(5);
  assert.equal(await settled(p), false, "halted guest sleeps");
  const other = {};
  assert.equal(f.write([LHREQ_BREAK, 1], other), 0, "the Waker is another task");
  assert.deepEqual(await p, { kind: "errno", result: -EAGAIN, errno: EAGAIN });
  // The Waker's write blocks until someone writes off.
  const released = f.breakReleased();
  assert.equal(await settled(released), false);
  assert.deepEqual(await f.read(), { kind: "errno", result: -EAGAIN, errno: EAGAIN });
  assert.equal(f.write([LHREQ_BREAK, 0]), 0);
  assert.equal(await settled(released), true);
  assert.equal(await settled(f.read(), 10), false, "halted again, no interrupt pending");
  cpu.check();
  f.close();
});

Deno.test("§6.2 a halted guest sleeps until an inter-guest DMA wakes it", async () => {
  const host = new Host();
  const rx = launch(async (g) => {
    await g.init();
    await g.gate(3);
    let got = 0;
    g.onIrq(3, () => {
      got = g.mem.u32(ARR);
    });
    putDma(g.mem, ARR, [[BUF, 64]]);
    assert.equal(await g.bind(0x3f000, ARR, 1, 3), 1);
    await g.halt();
    return got;
  }, host);
  rx.f.mapShared({ start: 0x3f000, length: 4096, objectId: 1, objectOffset: 0 });
  const done = rx.f.read();
  await sleep(5);
  assert.equal(await settled(done), false, "halted");
  const tx = addGuest(host, { sharedObject: 1 });
  tx.dma(ARR, [[BUF, 20]]);
  tx.send(sharedKey(tx), ARR);
  assert.equal(tx.used(ARR), 20);
  assert.equal((await done).kind, "errno");
  rx.cpu.check();
  assert.equal(rx.cpu.result, 20, "the handler ran after the wake");
  closeAll([tx, { file: rx.f }]);
});

Deno.test("§6.2 read from another task is EPERM; a closed file is EINVAL", async () => {
  const { guests: [t] } = makeHost(1);
  assert.deepEqual(await t.file.read({}), { kind: "errno", result: -EPERM, errno: EPERM });
  t.file.close();
  assert.deepEqual(await t.file.read(), { kind: "errno", result: -EINVAL, errno: EINVAL });
  assert.equal(t.file.write([LHREQ_IRQ, 1]), -EINVAL);
  assert.equal(t.file.write([LHREQ_INITIALIZE, 64, 0, 0, 0xc0000000]), -EINVAL);
});

Deno.test("§6.2 close wakes a sleeping read", async () => {
  const { f } = launch(async (g) => {
    await g.init();
    await g.halt();
  });
  const p = f.read();
  await sleep(5);
  f.close();
  assert.deepEqual(await p, { kind: "errno", result: -ERESTARTSYS, errno: ERESTARTSYS });
});

Deno.test("§6.2 a Launcher DMA is synchronous: the guest sees the Launcher's used_len", async () => {
  const { f, cpu } = launch(async (g) => {
    await g.init();
    putDma(g.mem, 0x2400, [[BUF, 10]]);
    await g.send(0x3000, 0x2400);
    return g.mem.u32(0x2400);
  });
  const r = await f.read();
  assert.equal(r.kind, "dma");
  const secs = f.guest!.mem.sections(0x2400);
  assert.ok(Array.isArray(secs) && secs.length === 1 && secs[0].length === 10);
  f.guest!.mem.setU32(0x2400, 10);
  await f.read();
  cpu.check();
  assert.equal(cpu.result, 10);
  f.close();
});

// --- §6.4 close --------------------------------------------------------------

Deno.test("§6.4 close releases bindings, the slot and the timer; the engine is closed", async () => {
  const { host, guests: [a, b] } = makeHost(2, { sharedObject: 3 });
  putDma(b.mem, ARR, [[BUF, 64]]);
  assert.equal(b.bind(sharedKey(b), ARR, 1, 3), 1);
  b.eax(9, 50_000_000); // SET_CLOCKEVENT 50 ms
  assert.notEqual(b.guest.clockTimer, undefined);
  b.file.close();
  assert.equal(b.guest.clockTimer, undefined);
  assert.equal(host.guests[1], null);
  assert.ok(b.guest.bindings.every((x) => x === null));
  a.dma(ARR, [[BUF, 8]]);
  a.send(sharedKey(a), ARR);
  assert.equal(a.guest.counters.dmaNoReceiver, 1);
  assert.equal(a.eax(LHCALL_TS, 1), LHCALL_TS);
  assert.equal(await settled(b.cpu.run()), true, "a closed engine does not run");
  closeAll([a]);
});

Deno.test("§5.4 a sender's waits on a receiver that never runs again leave nothing behind", async () => {
  const host = new Host({ yieldOnFull: true });
  // The receiver: one buffer, its IRQ blocked, so once full it sleeps for good.
  const rx = launch(async (g) => {
    await g.init({ blocked: 1 << 3 });
    await g.gate(3);
    putDma(g.mem, ARR, [[BUF, 64]]);
    assert.equal(await g.bind(0x3f000, ARR, 1, 3), 1);
    await g.halt();
  }, host);
  rx.f.mapShared({ start: 0x3f000, length: 4096, objectId: 1, objectOffset: 0 });
  const rxDone = rx.f.read();
  await sleep(5);
  const SENDS = 200;
  const tx = launch(async (g) => {
    await g.init();
    putDma(g.mem, 0x2400, [[BUF, 20]]);
    let taken = 0;
    for (let i = 0; i < SENDS; i++) {
      await g.send(0x3f000, 0x2400);
      if (g.mem.u32(0x2400) !== 0) taken++;
    }
    return taken;
  }, host);
  tx.f.mapShared({ start: 0x3f000, length: 4096, objectId: 1, objectOffset: 0 });
  await tx.f.read(); // runs until the program returns (the guest then dies)
  tx.cpu.check();
  assert.equal(tx.cpu.result, 1, "the first frame fills the one buffer; the rest are dropped");
  assert.equal(tx.f.guest!.counters.dmaDroppedFull, SENDS - 1);
  assert.equal(rx.f.guest!.stopWaiters, 0, "no waiter left on the sleeping receiver");
  assert.equal(await settled(rxDone), false, "the receiver still sleeps");
  closeAll([{ file: tx.f }, { file: rx.f }]);
});
