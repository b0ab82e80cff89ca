/**
 * The Host: what the lguest kernel module did.
 *
 * @module
 */
export { Host, LguestFile, type ReadResult, type Task } from "./host.ts";
export { type Binding, Guest, type GuestCounters, type SharedRegion } from "./guest.ts";
export { canonicalKey, DmaEngine, isShared } from "./dma.ts";
export { GuestMemory, hex } from "./memory.ts";
export { doHcall, doHypercalls, hcallName } from "./hypercalls.ts";
export { interruptDeliverable, takeInterrupt, unblockedPending } from "./interrupts.ts";
