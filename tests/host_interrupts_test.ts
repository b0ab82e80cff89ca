/**
 * Interrupt delivery (protocol §4): the pending bitmap, blocked_interrupts,
 * irq_enabled, IDT presence, interrupt vs trap gates, HALT and wake-up.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  LHCALL_HALT,
  LHCALL_LOAD_IDT_ENTRY,
  LHCALL_SET_CLOCKEVENT,
  LHCALL_TS,
  LHREQ_BREAK,
  LHREQ_INITIALIZE,
  LHREQ_IRQ,
  X86_EFLAGS_IF,
} from "../abi/constants.ts";
import { LD_IRQ_ENABLED, LD_TIME_NSEC, LD_TIME_SEC } from "../abi/structs.ts";
import { Host } from "../host/host.ts";
import { interruptDeliverable, takeInterrupt, unblockedPending } from "../host/interrupts.ts";
import { closeAll, LD, makeHost, settled, sleep, type TestGuest } from "./helpers/guests.ts";
import { type GuestProgram, ScriptCpu } from "./helpers/script_cpu.ts";

function one(): TestGuest {
  return makeHost(1).guests[0];
}

function irqEnabled(t: TestGuest): number {
  return t.mem.u32(LD + LD_IRQ_ENABLED);
}

function launch(program: GuestProgram) {
  const host = new Host();
  const cpu = new ScriptCpu(program);
  const f = host.open(cpu);
  assert.equal(f.write([LHREQ_INITIALIZE, 64, 0, 0, 0xc0000000]), 16);
  return { f, cpu };
}

Deno.test("§4 the lowest pending unblocked IRQ is delivered first, one per event", () => {
  const t = one();
  for (const irq of [9, 2, 31]) t.gate(irq);
  for (const irq of [31, 9, 2]) assert.equal(t.file.write([LHREQ_IRQ, irq]), 0);
  const r = t.call(LHCALL_TS, 1);
  assert.equal(r.eax, LHCALL_TS);
  assert.deepEqual(r.irqs, [2, 9, 31]);
  assert.equal(t.guest.pending, 0);
  assert.equal(t.guest.counters.interrupts, 3);
  closeAll([t]);
});

Deno.test("§4 blocked_interrupts masks delivery; unmasking delivers at the next hypercall", () => {
  const t = one();
  t.gate(4);
  t.gate(6);
  t.cpu.api.setBlocked(1 << 4);
  t.file.write([LHREQ_IRQ, 4]);
  t.file.write([LHREQ_IRQ, 6]);
  assert.equal(unblockedPending(t.guest), 6);
  assert.deepEqual(t.call(LHCALL_TS).irqs, [6]);
  assert.equal(t.guest.pending, 1 << 4, "blocked IRQ stays pending");
  assert.deepEqual(t.call(LHCALL_TS).irqs, []);
  t.cpu.api.setBlocked(0); // no hypercall to tell the host (§4 "no immediate re-check")
  assert.deepEqual(t.call(LHCALL_TS).irqs, [4]);
  closeAll([t]);
});

Deno.test("§4 irq_enabled 0 defers delivery of a running guest", () => {
  const t = one();
  t.gate(3);
  t.cpu.api.setIrqEnabled(0);
  t.file.write([LHREQ_IRQ, 3]);
  assert.equal(interruptDeliverable(t.guest), false);
  assert.deepEqual(t.call(LHCALL_TS).irqs, []);
  assert.equal(t.guest.pending, 1 << 3);
  t.cpu.api.setIrqEnabled(X86_EFLAGS_IF);
  assert.equal(interruptDeliverable(t.guest), true);
  assert.deepEqual(t.call(LHCALL_TS).irqs, [3]);
  closeAll([t]);
});

Deno.test("§4 an IRQ without an IDT gate stays pending", () => {
  const t = one();
  t.file.write([LHREQ_IRQ, 7]);
  const r = t.call(LHCALL_TS);
  assert.equal(r.eax, LHCALL_TS);
  assert.deepEqual(r.irqs, []);
  assert.equal(t.guest.pending, 1 << 7);
  t.gate(7); // the gate's own hypercall is the next delivery point
  assert.deepEqual(t.irqs, [7]);
  assert.equal(t.guest.pending, 0);
  // A not-present entry removes the gate again.
  t.eax(LHCALL_LOAD_IDT_ENTRY, 0x27, 0, 0);
  t.file.write([LHREQ_IRQ, 7]);
  assert.deepEqual(t.call(LHCALL_TS).irqs, []);
  closeAll([t]);
});

Deno.test("§4 an interrupt gate clears irq_enabled; a trap gate leaves it", () => {
  const t = one();
  t.gate(1, 0xe);
  t.gate(2, 0xf);
  t.file.write([LHREQ_IRQ, 1]);
  t.call(LHCALL_TS, 0); // delivered, then our shim's "iret" sets 0x200 again
  t.file.write([LHREQ_IRQ, 1]);
  t.file.write([LHREQ_IRQ, 2]);
  // Take one by hand to see the gate's effect before the iret.
  assert.equal(takeInterrupt(t.guest), 1);
  assert.equal(irqEnabled(t), 0);
  t.cpu.api.setIrqEnabled(X86_EFLAGS_IF);
  assert.equal(takeInterrupt(t.guest), 2);
  assert.equal(irqEnabled(t), X86_EFLAGS_IF);
  closeAll([t]);
});

Deno.test("§4 delivery rewrites the time, even when no gate is present", () => {
  const t = one();
  t.mem.setU32(LD + LD_TIME_SEC, 0);
  t.mem.setU32(LD + LD_TIME_NSEC, 0);
  t.file.write([LHREQ_IRQ, 9]); // no gate
  assert.equal(takeInterrupt(t.guest), -1);
  assert.ok(Math.abs(t.mem.u32(LD + LD_TIME_SEC) - Date.now() / 1000) < 5);
  // Blocked: the check stops before step 4 and leaves the time alone.
  t.mem.setU32(LD + LD_TIME_SEC, 0);
  t.cpu.api.setBlocked(1 << 9);
  assert.equal(takeInterrupt(t.guest), -1);
  assert.equal(t.mem.u32(LD + LD_TIME_SEC), 0);
  closeAll([t]);
});

Deno.test("§4 IRQ 31 (the top bit) is delivered like any other", () => {
  const t = one();
  t.gate(31);
  t.file.write([LHREQ_IRQ, 31]);
  assert.deepEqual(t.call(LHCALL_TS).irqs, [31]);
  assert.equal(t.guest.pending, 0);
  closeAll([t]);
});

Deno.test("§4 HALT with only a blocked IRQ pending sleeps", async () => {
  const { f, cpu } = launch(async (g) => {
    await g.init({ blocked: 1 << 5 });
    await g.gate(5);
    await g.halt();
  });
  assert.equal(f.write([LHREQ_IRQ, 5]), 0);
  const p = f.read();
  assert.equal(await settled(p, 10), false, "blocked IRQ does not wake");
  assert.ok(f.guest!.halted);
  f.close();
  await p;
  cpu.check();
});

Deno.test("§4 waking a halted guest forces irq_enabled on, then delivers", async () => {
  const { f, cpu } = launch(async (g) => {
    await g.init();
    await g.gate(0);
    let seen = -1;
    g.onIrq(0, () => {
      seen = g.mem.u32(g.ld + LD_IRQ_ENABLED); // 0: the interrupt gate cleared it
    });
    g.setIrqEnabled(0); // "cli; hlt" is what Linux's safe_halt avoids, but HALT wakes anyway
    await g.hcall(LHCALL_SET_CLOCKEVENT, 1_000_000);
    await g.halt();
    return seen;
  });
  const r = await f.read();
  assert.equal(r.kind, "errno");
  cpu.check();
  assert.deepEqual(cpu.irqLog, [0]);
  assert.equal(cpu.result, 0);
  f.close();
});

Deno.test("§4 a halted guest with a pending IRQ but no gate: HALT returns, IRQ stays pending", () => {
  const t = one();
  t.file.write([LHREQ_IRQ, 12]);
  const r = t.call(LHCALL_HALT);
  assert.equal(r.eax, LHCALL_HALT);
  assert.equal(r.waited, false);
  assert.equal(t.guest.halted, false);
  assert.equal(t.guest.pending, 1 << 12);
  assert.equal(irqEnabled(t), X86_EFLAGS_IF);
  closeAll([t]);
});

Deno.test("§4 the timer wakes a halted guest; unmasking in the handler delivers the next IRQ", async () => {
  const { f, cpu } = launch(async (g) => {
    await g.init({ blocked: 1 << 8 });
    await g.gate(0);
    await g.gate(8);
    g.onIrq(0, () => g.setBlocked(0)); // no hypercall: delivered at the handler's "iret"
    f.write([LHREQ_IRQ, 8]); // pending but blocked: HALT sleeps
    await g.hcall(LHCALL_SET_CLOCKEVENT, 3_000_000);
    await g.halt();
  });
  const p = f.read();
  await sleep(0);
  assert.ok(f.guest!.halted);
  const r = await p;
  assert.equal(r.kind, "errno");
  cpu.check();
  assert.deepEqual(cpu.irqLog, [0, 8]);
  f.close();
});

Deno.test("§4 handlers may make hypercalls; the shim's iret re-enables interrupts", async () => {
  const { f, cpu } = launch(async (g) => {
    await g.init();
    await g.gate(3);
    await g.gate(4);
    const order: string[] = [];
    g.onIrq(3, async () => {
      order.push("3");
      assert.equal(g.mem.u32(g.ld + LD_IRQ_ENABLED), 0);
      f.guest!.pending |= 1 << 4; // raised inside the handler: waits for the iret
      assert.equal(await g.hcall(LHCALL_TS, 1), LHCALL_TS);
      order.push("3 done");
    });
    g.onIrq(4, () => {
      order.push("4");
    });
    f.guest!.pending |= 1 << 3;
    await g.hcall(LHCALL_TS, 0);
    return order;
  });
  await f.read();
  cpu.check();
  assert.deepEqual(cpu.result, ["3", "3 done", "4"]);
  f.close();
});

Deno.test("§4 BREAK on a running guest stops it at its next hypercall", async () => {
  let n = 0;
  const { f, cpu } = launch(async (g) => {
    await g.init();
    for (;;) {
      await g.hcall(LHCALL_TS, n++);
      if (n === 3) f.write([LHREQ_BREAK, 1]);
    }
  });
  const r = await f.read();
  assert.equal(r.kind, "errno");
  assert.equal((r as { errno: number }).errno, 11);
  assert.equal(n, 4, "the call after BREAK ran, then the guest stopped");
  assert.equal(f.guest!.ts, 3);
  f.write([LHREQ_BREAK, 0]);
  f.close();
  await sleep(0);
  cpu.check();
});

Deno.test("§4 idle handler: input fed just before the guest would sleep is delivered at once", async () => {
  let calls = 0;
  const { f, cpu } = launch(async (g) => {
    await g.init();
    await g.gate(3);
    let got = 0;
    g.onIrq(3, () => void got++);
    await g.halt(); // the idle handler raises IRQ 3: HALT returns after the handler
    await g.halt(); // nothing fed this time: sleeps until BREAK
    return got;
  });
  f.setIdleHandler(() => {
    calls++;
    if (calls !== 1) return false;
    f.write([LHREQ_IRQ, 3]);
    return true;
  });
  const p = f.read();
  assert.equal(await settled(p, 20), false, "the second HALT sleeps");
  assert.equal(calls, 2, "asked once per HALT that would sleep");
  assert.deepEqual(cpu.irqLog, [3]);
  f.write([LHREQ_BREAK, 1]);
  assert.equal((await p).kind, "errno");
  f.close();
});

Deno.test("§4 idle handler: input fed at every HALT does not keep the event loop out", async () => {
  let timerFired = false;
  const { f } = launch(async (g) => {
    await g.init();
    await g.gate(3);
    g.onIrq(3, () => {});
    for (let n = 0; n < 200_000; n++) {
      if (timerFired) return n; // a timer ran while input kept coming
      await g.halt();
    }
    return -1; // starved
  });
  f.setIdleHandler(() => {
    f.write([LHREQ_IRQ, 3]);
    return true;
  });
  setTimeout(() => timerFired = true, 0);
  const p = f.read();
  const r = await p;
  assert.equal(r.kind, "errno"); // the guest returned from its program: it died
  assert.ok(timerFired, "the timer ran while the guest was fed at every HALT");
  f.close();
});
