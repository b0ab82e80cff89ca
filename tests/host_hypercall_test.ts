/**
 * The hypercall dispatcher (protocol §3): the calling convention, every
 * call's validation, and the async ring.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  LG_HINT,
  LGUEST_CRASH_HINT,
  LGUEST_RESERVE_MEM,
  LHCALL_BIND_DMA,
  LHCALL_CRASH,
  LHCALL_FLUSH_ASYNC,
  LHCALL_FLUSH_TLB,
  LHCALL_HALT,
  LHCALL_LGUEST_INIT,
  LHCALL_LOAD_GDT,
  LHCALL_LOAD_IDT_ENTRY,
  LHCALL_LOAD_TLS,
  LHCALL_NEW_PGTABLE,
  LHCALL_SEND_DMA,
  LHCALL_SET_CLOCKEVENT,
  LHCALL_SET_PMD,
  LHCALL_SET_PTE,
  LHCALL_SET_STACK,
  LHCALL_TS,
  LHREQ_INITIALIZE,
  LHREQ_IRQ,
} from "../abi/constants.ts";
import { LD_GUESTID, LD_RESERVE_MEM, LD_TIME_SEC, LD_TSC_KHZ } from "../abi/structs.ts";
import { Host } from "../host/host.ts";
import { firstDiskBytes, firstDiskHoldsLgfs, hintLine } from "../launcher/launcher.ts";
import { BlockDevice } from "../devices/block.ts";
import { parseBlockSpec } from "../devices/block_spec.ts";
import { Lgfs, MemDev } from "../launcher/lgfs.ts";
import { RngDevice } from "../devices/rng.ts";
import { LGUEST_DEVICE_T_BLOCK } from "../abi/constants.ts";
import type { Device } from "../devices/registry.ts";
import { ARR, BUF, closeAll, LD, makeHost, openGuest, testGuest } from "./helpers/guests.ts";
import { idtGate, putRing, ringStatus, ScriptCpu, writeLguestData } from "./helpers/script_cpu.ts";

/** One initialised guest. */
function one() {
  const { host, guests } = makeHost(1);
  return { host, t: guests[0] };
}

// --- §3.1 calling convention ------------------------------------------------

Deno.test("§3.1 first hypercall must be LGUEST_INIT", () => {
  const host = new Host();
  const { file } = openGuest(host);
  const t = testGuest(file);
  const r = t.call(LHCALL_SEND_DMA, 0x3000, ARR);
  assert.ok(r.dead);
  assert.equal(t.dead, "hypercall 13 before LGUEST_INIT");
  assert.equal(t.guest.pendingDma, null);
  file.close();
});

Deno.test("§3.1 the async ring is not looked at before LGUEST_INIT", () => {
  const host = new Host();
  const { file, cpu } = openGuest(host);
  const t = testGuest(file);
  writeLguestData(cpu.view, LD);
  putRing(cpu.view, LD, 0, [LHCALL_TS, 5]);
  t.eax(LHCALL_LGUEST_INIT, LD);
  assert.equal(t.guest.ts, 0, "INIT did not run the ring");
  assert.equal(ringStatus(cpu.view, LD, 0), 0);
  t.eax(LHCALL_FLUSH_ASYNC);
  assert.equal(t.guest.ts, 5);
  assert.equal(ringStatus(cpu.view, LD, 0), 0xff);
  file.close();
});

Deno.test("§3.1 only BIND_DMA sets EAX; other calls return their own number", () => {
  const { t } = one();
  assert.equal(t.eax(LHCALL_TS, 1), LHCALL_TS);
  assert.equal(t.eax(LHCALL_FLUSH_ASYNC), 0);
  assert.equal(t.eax(LHCALL_NEW_PGTABLE, 0x5000), LHCALL_NEW_PGTABLE);
  assert.equal(t.eax(LHCALL_BIND_DMA, 0x3000, ARR, (1 << 8) | 3), 1);
  assert.equal(t.eax(LHCALL_BIND_DMA, 0x3000, ARR, (1 << 8) | 40), 0);
  closeAll([t]);
});

Deno.test("§3.1 an interrupt handler's hypercalls do not clobber the interrupted EAX", async () => {
  // x86 restores EAX on iret; the event protocol must too.
  const host = new Host();
  const raise = () => f.guest!.pending |= 1 << 5; // the Launcher's LHREQ_IRQ
  const cpu = new ScriptCpu(async (g) => {
    await g.init();
    await g.gate(5);
    g.onIrq(5, async () => {
      assert.equal(await g.hcall(LHCALL_TS, 1), LHCALL_TS); // EAX 8 inside the handler
    });
    raise();
    const fail = await g.bind(0x3000, ARR, 1, 40); // irq >= 32: EAX 0
    await g.gate(5, 0xf); // a trap gate: interrupts stay on inside the handler
    let nested = false;
    g.onIrq(5, async () => {
      assert.equal(await g.bind(0x3004, ARR, 1, 40), 0); // EAX 0 inside the handler
      if (nested) return;
      nested = true;
      raise(); // a nested interrupt inside the handler's own event loop
      assert.equal(await g.hcall(LHCALL_NEW_PGTABLE, 0x5000), LHCALL_NEW_PGTABLE);
    });
    raise();
    const ok = await g.bind(0x3000, ARR, 1, 3);
    return [fail, ok];
  });
  const f = host.open(cpu);
  assert.equal(f.write([LHREQ_INITIALIZE, 64, 0, 0, 0xc0000000]), 16);
  const r = await f.read();
  assert.equal(r.kind, "errno");
  cpu.check();
  assert.equal(f.guest!.dead, "guest returned from start()");
  assert.deepEqual(cpu.irqLog, [5, 5, 5]);
  assert.deepEqual(cpu.result, [0, 1]);
  f.close();
});

// --- §3.2 the calls -------------------------------------------------------------

Deno.test("§3.2 LGUEST_INIT fills reserve_mem, guestid, tsc_khz and the time", () => {
  const { guests } = makeHost(3);
  for (const t of guests) {
    assert.equal(t.mem.u32(LD + LD_RESERVE_MEM), LGUEST_RESERVE_MEM);
    assert.equal(t.mem.u16(LD + LD_GUESTID), t.guest.id);
    assert.equal(t.mem.u32(LD + LD_TSC_KHZ), 0);
    const sec = t.mem.u32(LD + LD_TIME_SEC);
    assert.ok(Math.abs(sec - Date.now() / 1000) < 5, `time ${sec}`);
    assert.equal(t.guest.lguestData, LD);
  }
  assert.deepEqual(guests.map((t) => t.guest.id), [0, 1, 2]);
  closeAll(guests);
});

Deno.test("§3.2 LGUEST_INIT twice kills: already have lguest_data", () => {
  const { t } = one();
  assert.ok(t.call(LHCALL_LGUEST_INIT, LD).dead);
  assert.equal(t.dead, "LGUEST_INIT: already have lguest_data");
  closeAll([t]);
});

Deno.test("§3.2 LGUEST_INIT with lguest_data not inside top kills: bad guest page", () => {
  const host = new Host();
  const { file } = openGuest(host);
  const t = testGuest(file);
  const top = t.mem.top;
  assert.ok(t.call(LHCALL_LGUEST_INIT, top - 1127).dead);
  assert.match(t.dead!, /LGUEST_INIT: bad guest page 0x3fb99/);
  const { file: f2, cpu } = openGuest(host);
  writeLguestData(cpu.view, top - 1128);
  const t2 = testGuest(f2);
  assert.equal(t2.eax(LHCALL_LGUEST_INIT, top - 1128), LHCALL_LGUEST_INIT, "ends exactly at top");
  closeAll([t, t2]);
});

Deno.test("§3.2 CRASH kills with the message, at most 127 bytes", () => {
  const { guests: [a, b] } = makeHost(2);
  a.mem.bytes.set(new TextEncoder().encode("Power down\0ignored"), BUF);
  assert.ok(a.call(LHCALL_CRASH, BUF).dead);
  assert.equal(a.dead, "CRASH: Power down");
  b.mem.bytes.set(new TextEncoder().encode("x".repeat(300)), BUF);
  b.call(LHCALL_CRASH, BUF);
  assert.equal(b.dead, "CRASH: " + "x".repeat(127));
  closeAll([a, b]);
});

Deno.test("§3.2 CRASH with a message past top kills naming CRASH and the address", () => {
  const { t } = one();
  t.call(LHCALL_CRASH, t.mem.top - 100);
  assert.match(t.dead!, /CRASH: bad read address 0x3ff9c/);
  closeAll([t]);
});

Deno.test("extension: CRASH + LGUEST_CRASH_HINT is no death: each hint once, unknown ones dropped", () => {
  const { guests: [a, b] } = makeHost(2);
  const got: [number, string][] = [];
  a.guest.onHint = (hint, message) => got.push([hint, message]);
  a.mem.bytes.set(new TextEncoder().encode("/data.db\0ignored"), BUF);
  assert.equal(a.eax(LHCALL_CRASH, BUF, LGUEST_CRASH_HINT, LG_HINT.NO_DISK), LHCALL_CRASH);
  a.eax(LHCALL_CRASH, BUF, LGUEST_CRASH_HINT, LG_HINT.NO_DISK); // once per run
  for (const n of [0, 31, 32, 0x80000000, 0xffffffff]) {
    a.eax(LHCALL_CRASH, BUF, LGUEST_CRASH_HINT, n);
  }
  a.mem.bytes.set(new TextEncoder().encode("y".repeat(300)), BUF);
  a.eax(LHCALL_CRASH, BUF, LGUEST_CRASH_HINT, LG_HINT.NO_LGFS); // 127 bytes at most
  assert.deepEqual(got, [[1, "/data.db"], [0, "/data.db"], [31, "/data.db"], [2, "y".repeat(127)]]);
  assert.equal(a.dead, null);
  // The message must be readable, as any CRASH's; without a receiver hints are dropped.
  b.call(LHCALL_CRASH, b.mem.top - 100, LGUEST_CRASH_HINT, LG_HINT.NO_DISK);
  assert.match(b.dead!, /CRASH: bad read address 0x3ff9c/);
  closeAll([a, b]);
  // The launcher's words: the message only as an escaped, cut argument; unknown numbers say nothing.
  assert.equal(
    hintLine(LG_HINT.NO_DISK, "/a\n\x1b[31mb"),
    "/a\\n\\e[31mb: no disk: run with --block disk.img (make one with 'lguest disk mkfs disk.img 64M')",
  );
  assert.equal(
    hintLine(LG_HINT.NO_DISK, "z".repeat(127)),
    `${"z".repeat(100)}…: no disk: ` +
      "run with --block disk.img (make one with 'lguest disk mkfs disk.img 64M')",
  );
  assert.match(hintLine(LG_HINT.EMPTY_DISK, "anything")!, /^disk 0 is empty \(0 bytes; /);
  assert.equal(hintLine(0, "x"), null);
  assert.equal(hintLine(31, "x"), null);
});

Deno.test("§3.2 LOAD_GDT: 32 entries load, more than 32 kills", () => {
  const { guests: [a, b] } = makeHost(2);
  for (let i = 0; i < 64; i++) a.mem.setU32(BUF + 4 * i, 0x1000 + i);
  assert.equal(a.eax(LHCALL_LOAD_GDT, BUF, 32), LHCALL_LOAD_GDT);
  assert.equal(a.guest.gdt[0], 0x1000);
  assert.equal(a.guest.gdt[63], 0x1000 + 63);
  b.call(LHCALL_LOAD_GDT, BUF, 33);
  assert.match(b.dead!, /LOAD_GDT: too many gdt entries 33/);
  closeAll([a, b]);
});

Deno.test("§3.2 LOAD_IDT_ENTRY: a bad gate type kills", () => {
  const { t } = one();
  const [lo, hi] = idtGate(0xc); // call gate
  t.call(LHCALL_LOAD_IDT_ENTRY, 0x21, lo, hi);
  assert.match(t.dead!, /LOAD_IDT_ENTRY: bad IDT type 12/);
  closeAll([t]);
});

Deno.test("§3.2 LOAD_IDT_ENTRY: vectors 2, 8, 15 and 31 are ignored, even with a bad type", () => {
  const { t } = one();
  const [lo, hi] = idtGate(0x5);
  for (const v of [2, 8, 15, 31]) {
    assert.equal(t.eax(LHCALL_LOAD_IDT_ENTRY, v, lo, hi), LHCALL_LOAD_IDT_ENTRY);
    assert.equal(t.guest.idt[2 * v + 1], 0);
  }
  assert.equal(t.dead, null);
  closeAll([t]);
});

Deno.test("§3.2 LOAD_IDT_ENTRY: 0..63 and 0x80 stored; others ignored; not-present zeroes", () => {
  const { t } = one();
  const [lo, hi] = idtGate(0xf, 0xc0101234);
  t.eax(LHCALL_LOAD_IDT_ENTRY, 63, lo, hi);
  assert.equal(t.guest.idt[2 * 63], ((0x61 << 16) | 0x1234) >>> 0);
  assert.equal(t.guest.idt[2 * 63 + 1], (hi & 0xffffef00) >>> 0);
  t.eax(LHCALL_LOAD_IDT_ENTRY, 0x80, lo, hi);
  assert.notEqual(t.guest.syscallIdt[1], 0);
  const [blo, bhi] = idtGate(0x3);
  t.eax(LHCALL_LOAD_IDT_ENTRY, 64, blo, bhi); // out of range: ignored before the type check
  t.eax(LHCALL_LOAD_IDT_ENTRY, 0xffffffff, blo, bhi);
  assert.equal(t.dead, null);
  t.eax(LHCALL_LOAD_IDT_ENTRY, 63, 0x1234, 0x0e00); // not present
  assert.deepEqual([t.guest.idt[126], t.guest.idt[127]], [0, 0]);
  closeAll([t]);
});

Deno.test("§3.2 SET_STACK: more than 2 pages kills; a segment without RPL 1 kills", () => {
  const { guests: [a, b, c] } = makeHost(3);
  assert.equal(a.eax(LHCALL_SET_STACK, 0x69, 0xc0001000, 2), LHCALL_SET_STACK);
  assert.deepEqual(a.guest.stack, { ss: 0x69, esp: 0xc0001000, pages: 2 });
  b.call(LHCALL_SET_STACK, 0x69, 0xc0001000, 3);
  assert.match(b.dead!, /SET_STACK: bad stack pages 3/);
  c.call(LHCALL_SET_STACK, 0x68, 0xc0001000, 1);
  assert.match(c.dead!, /SET_STACK: bad stack segment 104/);
  closeAll([a, b, c]);
});

Deno.test("§3.2 Bad hypercall 11, and any number beyond 16", () => {
  for (const nr of [11, 17, 0x80000000, 0xffffffff]) {
    const { t } = one();
    assert.ok(t.call(nr, 1, 2, 3).dead);
    assert.equal(t.dead, `Bad hypercall ${nr}`);
    closeAll([t]);
  }
});

Deno.test("§3.2 TS, NEW_PGTABLE (cache of 4), FLUSH_TLB, SET_PTE, SET_PMD, LOAD_TLS", () => {
  const { t } = one();
  t.eax(LHCALL_TS, 1);
  assert.equal(t.guest.ts, 1);
  for (const p of [0x1000, 0x2000, 0x3000, 0x4000, 0x5000, 0x3000]) t.eax(LHCALL_NEW_PGTABLE, p);
  assert.deepEqual(t.guest.pgdirs, [0x5000, 0x4000, 0x3000, 0x2000]);
  t.eax(LHCALL_FLUSH_TLB, 0);
  assert.equal(t.guest.pgdirs.length, 4);
  t.eax(LHCALL_FLUSH_TLB, 1);
  assert.equal(t.guest.pgdirs.length, 0);
  t.eax(LHCALL_SET_PTE, 0x5000, 0xc0000000, 0x1007);
  t.eax(LHCALL_SET_PMD, 0x5000, 1023);
  for (let i = 0; i < 6; i++) t.mem.setU32(BUF + 4 * i, 0xa0 + i);
  t.eax(LHCALL_LOAD_TLS, BUF, 0);
  assert.deepEqual([...t.guest.gdt.subarray(12, 18)], [0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5]);
  assert.equal(t.dead, null);
  t.call(LHCALL_LOAD_TLS, t.mem.top - 23);
  assert.match(t.dead!, /LOAD_TLS: bad read address/);
  closeAll([t]);
});

Deno.test("§3.2 SET_CLOCKEVENT raises IRQ 0 and wakes a halted guest", async () => {
  const host = new Host();
  const cpu = new ScriptCpu(async (g) => {
    await g.init();
    await g.gate(0);
    let ticks = 0;
    g.onIrq(0, () => {
      ticks++;
    });
    await g.hcall(LHCALL_SET_CLOCKEVENT, 2_000_000); // 2 ms
    await g.halt();
    return ticks;
  });
  const f = host.open(cpu);
  assert.equal(f.write([LHREQ_INITIALIZE, 64, 0, 0, 0xc0000000]), 16);
  const r = await f.read();
  assert.equal(r.kind, "errno");
  cpu.check();
  assert.equal(cpu.result, 1, "IRQ 0 ran once");
  assert.ok(cpu.waits >= 1, "the guest slept until the timer");
  assert.equal(f.guest!.clockTimer, undefined, "one-shot");
  f.close();
});

Deno.test("§3.2 SET_CLOCKEVENT 0 cancels the timer", async () => {
  const { t } = one();
  t.eax(LHCALL_SET_CLOCKEVENT, 1_000_000);
  t.eax(LHCALL_SET_CLOCKEVENT, 0);
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(t.guest.pending, 0);
  t.eax(LHCALL_SET_CLOCKEVENT, 1_000_000);
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(t.guest.pending, 1);
  closeAll([t]);
});

Deno.test("§3.2 HALT waits; the halted guest is not run until an interrupt is deliverable", () => {
  const { t } = one();
  const r = t.call(LHCALL_HALT);
  assert.ok(r.waited);
  assert.ok(t.guest.halted);
  closeAll([t]);
});

// --- §3.3 the async ring ----------------------------------------------------------

Deno.test("§3.3 async ring runs before the sync call and stops at 0xFF", () => {
  const { t } = one();
  const v = t.mem;
  putRing(v, LD, 0, [LHCALL_TS, 5]);
  putRing(v, LD, 1, [LHCALL_NEW_PGTABLE, 0x7000]);
  putRing(v, LD, 3, [LHCALL_TS, 99]); // after the 0xFF gap at 2: not run
  assert.equal(t.eax(LHCALL_TS, 7), LHCALL_TS);
  assert.equal(t.guest.ts, 7, "sync call ran last");
  assert.deepEqual(t.guest.pgdirs, [0x7000]);
  assert.deepEqual([0, 1, 2, 3].map((i) => ringStatus(v, LD, i)), [0xff, 0xff, 0xff, 0]);
  assert.equal(t.guest.nextHcall, 2);
  assert.equal(t.guest.counters.asyncHypercalls, 2);
  closeAll([t]);
});

Deno.test("§3.3 the host cursor resumes where it stopped and wraps modulo 64", () => {
  const { t } = one();
  const v = t.mem;
  t.guest.nextHcall = 62;
  putRing(v, LD, 62, [LHCALL_TS, 1]);
  putRing(v, LD, 63, [LHCALL_TS, 2]);
  putRing(v, LD, 0, [LHCALL_TS, 3]);
  putRing(v, LD, 5, [LHCALL_TS, 50]); // not reached: entry 1 is 0xFF
  t.eax(LHCALL_FLUSH_ASYNC);
  assert.equal(t.guest.ts, 3);
  assert.equal(t.guest.nextHcall, 1);
  putRing(v, LD, 1, [LHCALL_TS, 4]);
  t.eax(LHCALL_FLUSH_ASYNC);
  assert.equal(t.guest.ts, 4);
  assert.equal(t.guest.nextHcall, 2);
  closeAll([t]);
});

Deno.test("§3.3 all 64 ready: exactly 64 run per exit; garbage status bytes count as ready", () => {
  const { t } = one();
  const v = t.mem;
  for (let i = 0; i < 64; i++) putRing(v, LD, i, [LHCALL_TS, i + 1], i % 2 ? 0x7e : 0);
  t.eax(LHCALL_FLUSH_ASYNC);
  assert.equal(t.guest.counters.asyncHypercalls, 64);
  assert.equal(t.guest.ts, 64);
  for (let i = 0; i < 64; i++) assert.equal(ringStatus(v, LD, i), 0xff);
  assert.equal(t.guest.nextHcall, 0);
  closeAll([t]);
});

Deno.test("§3.3 the ring stops after a Launcher DMA; the sync call runs on the next read", async () => {
  const host = new Host();
  const KEY = 0x3000, TX = 0x2400;
  const cpu = new ScriptCpu(async (g) => {
    await g.init();
    putRing(g.mem, g.ld, 0, [LHCALL_SEND_DMA, KEY, TX]);
    putRing(g.mem, g.ld, 1, [LHCALL_TS, 3]);
    return await g.hcall(LHCALL_TS, 9);
  });
  const f = host.open(cpu);
  assert.equal(f.write([LHREQ_INITIALIZE, 64, 0, 0, 0xc0000000]), 16);
  const r = await f.read();
  assert.deepEqual(r, { kind: "dma", result: 8, dma: TX, key: KEY });
  const g = f.guest!;
  assert.equal(g.ts, 0, "neither ring[1] nor the sync call ran yet");
  assert.equal(ringStatus(cpu.view, cpu.ld, 0), 0xff);
  assert.equal(ringStatus(cpu.view, cpu.ld, 1), 0);
  assert.ok(g.regs.trapped);
  await f.read(); // resumes: ring[1], then the sync call, then the program ends
  cpu.check();
  assert.equal(g.ts, 9);
  assert.equal(ringStatus(cpu.view, cpu.ld, 1), 0xff);
  assert.equal(cpu.result, LHCALL_TS);
  f.close();
});

Deno.test("§3.3 two Launcher DMAs in the ring reach the Launcher one by one, in order", async () => {
  const host = new Host();
  const cpu = new ScriptCpu(async (g) => {
    await g.init();
    putRing(g.mem, g.ld, 0, [LHCALL_SEND_DMA, 0x3000, 0x2400]);
    putRing(g.mem, g.ld, 1, [LHCALL_SEND_DMA, 0x3004, 0x2500]);
    await g.hcall(LHCALL_SEND_DMA, 0x3008, 0x2600);
  });
  const f = host.open(cpu);
  assert.equal(f.write([LHREQ_INITIALIZE, 64, 0, 0, 0xc0000000]), 16);
  const seen = [];
  for (let r = await f.read(); r.kind === "dma"; r = await f.read()) seen.push([r.key, r.dma]);
  cpu.check();
  assert.deepEqual(seen, [[0x3000, 0x2400], [0x3004, 0x2500], [0x3008, 0x2600]]);
  f.close();
});

Deno.test("§3.3 a bad hypercall in the ring kills with its number; later entries do not run", () => {
  const { t } = one();
  putRing(t.mem, LD, 0, [99]);
  putRing(t.mem, LD, 1, [LHCALL_TS, 4]);
  assert.ok(t.call(LHCALL_TS, 1).dead);
  assert.equal(t.dead, "Bad hypercall 99");
  assert.equal(t.guest.ts, 0);
  closeAll([t]);
});

Deno.test("§3.3 BIND_DMA and LHREQ_IRQ through the ring: results are discarded", () => {
  const { t } = one();
  putRing(t.mem, LD, 0, [LHCALL_BIND_DMA, 0x3000, ARR, (1 << 8) | 3]);
  t.eax(LHCALL_FLUSH_ASYNC);
  assert.notEqual(t.guest.bindings[0], null);
  assert.equal(t.file.write([LHREQ_IRQ, 4]), 0);
  assert.equal(t.guest.pending, 1 << 4);
  closeAll([t]);
});

Deno.test("hints say nothing the guest's disks contradict: no disk only without one, no lgfs / empty only for a disk 0 of that size", () => {
  const noDisk = (d: number | null | undefined) => hintLine(LG_HINT.NO_DISK, "/x", d);
  const noLgfs = (d: number | null | undefined) => hintLine(LG_HINT.NO_LGFS, "", d);
  const empty = (d: number | null | undefined) => hintLine(LG_HINT.EMPTY_DISK, "", d);
  // A guest without --block: only "no disk" (before: any of the three, at the guest's word).
  assert.match(noDisk(null)!, /^\/x: no disk: /);
  assert.equal(noLgfs(null), null);
  assert.equal(empty(null), null);
  // A disk of 1 MiB: only "holds no lgfs".
  assert.equal(noDisk(1 << 20), null);
  assert.match(noLgfs(1 << 20)!, /^disk 0 holds no lgfs/);
  assert.equal(empty(1 << 20), null);
  // A disk of 0 bytes: only "is empty".
  assert.equal(noDisk(0), null);
  assert.equal(noLgfs(0), null);
  assert.match(empty(0)!, /^disk 0 is empty/);
  // Nothing known (hintLine's own callers): as the guest says.
  assert.match(noDisk(undefined)!, /no disk/);
  assert.match(empty(undefined)!, /is empty/);
  // A disk of unknown size (a block device without a length): either disk 0 hint, not "no disk".
  assert.equal(noDisk(-1), null);
  assert.match(noLgfs(-1)!, /^disk 0 holds no lgfs/);
  assert.match(empty(-1)!, /^disk 0 is empty/);
  // firstDiskBytes: the first block device's length, null without one.
  const disk = (length: number) => ({ type: LGUEST_DEVICE_T_BLOCK, length }) as unknown as Device;
  assert.equal(firstDiskBytes([new RngDevice()]), null);
  assert.equal(firstDiskBytes([new RngDevice(), disk(4096), disk(0)]), 4096);
  assert.equal(
    firstDiskBytes([{ type: LGUEST_DEVICE_T_BLOCK } as unknown as Device]),
    -1,
  );
});

Deno.test("hints never advise mkfs over a disk 0 that holds lgfs: 'holds no lgfs' and 'is empty' are dropped when the host reads the magic at block 0", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const lgfs = `${dir}/lgfs.img`, zeros = `${dir}/zeros.img`;
    const mem = new MemDev(new Uint8Array(1 << 20));
    Lgfs.mkfs(mem);
    await Deno.writeFile(lgfs, mem.bytes);
    await Deno.writeFile(zeros, new Uint8Array(1 << 20));
    const real = new BlockDevice(parseBlockSpec(lgfs));
    const blank = new BlockDevice(parseBlockSpec(zeros));
    try {
      assert.equal(firstDiskHoldsLgfs([new RngDevice(), real]), true);
      assert.equal(firstDiskHoldsLgfs([blank, real]), false);
      assert.equal(firstDiskHoldsLgfs([new RngDevice()]), false);
      assert.deepEqual(real.stats.reads, 0); // the host's look is not the guest's I/O
    } finally {
      real.close();
      blank.close();
    }
    // With the magic there, the guest's word does not make either disk 0 hint.
    assert.equal(hintLine(LG_HINT.NO_LGFS, "", 1 << 20, true), null);
    assert.equal(hintLine(LG_HINT.EMPTY_DISK, "", -1, true), null);
    assert.match(hintLine(LG_HINT.NO_LGFS, "", 1 << 20, false)!, /^disk 0 holds no lgfs/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
