/**
 * Host: interrupt delivery (protocol §4).
 *
 * The pending bitmap is set by LHREQ_IRQ, inter-guest DMA and the clock.
 * An interrupt is delivered at a hypercall boundary or on wake-up from
 * HALT: the lowest pending, unblocked IRQ whose IDT gate is present.
 *
 * @module
 */

import { FIRST_EXTERNAL_VECTOR, LGUEST_IRQS, X86_EFLAGS_IF } from "../abi/constants.ts";
import {
  LD_BLOCKED_INTERRUPTS,
  LD_IRQ_ENABLED,
  LD_TIME_NSEC,
  LD_TIME_SEC,
} from "../abi/structs.ts";
import type { Guest } from "./guest.ts";

/** The lowest IRQ that is pending and not blocked, or -1. */
export function unblockedPending(g: Guest): number {
  if (g.pending === 0 || g.lguestData === 0) return -1;
  const ready = g.pending & ~g.mem.u32(g.lguestData + LD_BLOCKED_INTERRUPTS);
  return ready === 0 ? -1 : 31 - Math.clz32(ready & -ready);
}

/** Would an interrupt be delivered now (the wake condition of HALT)? */
export function interruptDeliverable(g: Guest): boolean {
  const irq = unblockedPending(g);
  if (irq < 0) return false;
  if (g.halted) return true; // waking clears `halted` even without a gate (§4 step 3)
  if (g.mem.u32(g.lguestData + LD_IRQ_ENABLED) === 0) return false;
  return idtPresent(g, irq);
}

function idtPresent(g: Guest, irq: number): boolean {
  return (g.idt[2 * (FIRST_EXTERNAL_VECTOR + irq) + 1] & 0x8000) !== 0;
}

/** Write the wall-clock time into lguest_data (write_timestamp). */
export function writeTime(g: Guest): void {
  const ms = performance.timeOrigin + performance.now();
  const sec = Math.floor(ms / 1000);
  g.mem.setU32(g.lguestData + LD_TIME_SEC, sec);
  g.mem.setU32(g.lguestData + LD_TIME_NSEC, Math.floor((ms - sec * 1000) * 1e6));
}

/**
 * maybe_do_interrupt(): pick the IRQ to deliver now, apply the gate's
 * effects and return it, or -1. Interrupt gates (type 0xE) clear
 * `irq_enabled`; a halted guest is woken with `irq_enabled` forced on.
 * The engine runs the guest's handler for the returned IRQ.
 */
export function takeInterrupt(g: Guest): number {
  const irq = unblockedPending(g);
  if (irq < 0 || irq >= LGUEST_IRQS) return -1;
  const ie = g.lguestData + LD_IRQ_ENABLED;
  if (g.halted) {
    g.halted = false;
    g.mem.setU32(ie, X86_EFLAGS_IF);
  } else if (g.mem.u32(ie) === 0) {
    return -1;
  }
  writeTime(g);
  if (!idtPresent(g, irq)) return -1; // stays pending until a gate exists
  g.pending &= ~(1 << irq);
  const type = (g.idt[2 * (FIRST_EXTERNAL_VECTOR + irq) + 1] >>> 8) & 0xf;
  if (type === 0xe) g.mem.setU32(ie, 0);
  g.counters.interrupts++;
  return irq;
}
