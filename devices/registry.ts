/**
 * The device registry: a small, dependency-free table of device kinds.
 *
 * A device module calls {@link registerDevice} with its name, CLI option,
 * usage text, a parser for the option's value and a factory. The CLI and
 * the config-file loader are built from this table, so adding a device
 * touches no core file. A device instance (frontend) talks to the guest
 * only through its {@link DeviceContext}; its backend (stdio, file, tap,
 * segment) stays inside the module. How to write one: docs/devices.md.
 *
 * @module
 */

import type { Host } from "../host/host.ts";
import type { Guest } from "../host/guest.ts";
import type { DmaRanges, GuestMemory } from "../host/memory.ts";

/**
 * Bad user input (an option, a value, a config field, a missing file): one
 * line; the CLI prints it and exits with `EXIT.USAGE` (125), the API throws
 * it as is.
 */
export class UsageError extends Error {
  /** Always "UsageError". */
  override name = "UsageError";
}

/** A guest input buffer obtained by GETDMA. */
export interface InputBuffer {
  /** Guest-physical address of the lguest_dma. */
  readonly addr: number;
  /** The key GETDMA took it on. */
  readonly key: number;
  /** The binding's IRQ. */
  readonly irq: number;
  /**
   * Its sections, checked, as live views of guest memory; sections that
   * follow each other in memory come as one view (same bytes, same order).
   */
  readonly sections: Uint8Array[];
}

/**
 * Copy `data` (its first `length` bytes: no view made of them for a
 * frame's read buffer) into `buf`'s sections in order, as much as they
 * hold; the bytes copied (the used_len to {@link DeviceContext.complete}
 * it with).
 */
export function fillBuffer(buf: InputBuffer, data: Uint8Array, length = data.length): number {
  const total = Math.min(length, data.length), sections = buf.sections;
  let n = 0;
  for (let i = 0; i < sections.length && n < total; i++) {
    const s = sections[i], end = Math.min(total, n + s.length);
    // The whole of data goes as it is (no view); otherwise the part that fits.
    s.set(n === 0 && end === data.length ? data : data.subarray(n, end));
    n = end;
  }
  return n;
}

/** What the Launcher offers a device. */
export interface DeviceContext {
  /** Descriptor index; the device's IRQ is index + 1. */
  readonly index: number;
  /** Guest-physical address of the device's first page (0 if none). */
  readonly pageAddr: number;
  /** The guest's memory through the one checked path. */
  readonly memory: GuestMemory;
  /** The host this guest runs in (shared objects, the DMA engine). */
  readonly host: Host;
  /** The guest's Host state (its id, counters), once initialised. */
  readonly guest: Guest;
  /** The guest's name in this run. */
  readonly name: string;
  /**
   * Map shared object `objectId` over this device's pages (the Launcher's
   * MAP_SHARED of a file, §10.4b): keys in the pages canonicalise to the
   * object. `sync` keeps this guest's copy coherent, `mayBind` limits the
   * keys the guest may bind there (see SharedRegion).
   */
  mapShared(
    objectId: number,
    sync?: (g: Guest) => void,
    mayBind?: (g: Guest, offset: number) => boolean,
  ): void;
  /**
   * Feed input: GETDMA on `key`, copy `data` into the buffer's sections,
   * store the byte count in used_len and raise the buffer's IRQ. Returns
   * the bytes delivered, or -1 if the guest has no free buffer (nothing is
   * written: the caller keeps its data). Only valid inside input().
   */
  deliver(key: number, data: Uint8Array): number;
  /**
   * GETDMA on `key`: a free input buffer of the guest with its sections as
   * live views and the binding's IRQ, or null if there is none. Give it
   * back with {@link complete} (or {@link giveBack}). Only valid while the
   * guest is stopped.
   */
  takeBuffer(key: number): InputBuffer | null;
  /** Store `usedLen` in the buffer's used_len and raise its IRQ. */
  complete(buf: InputBuffer, usedLen: number): void;
  /**
   * Give a buffer from {@link takeBuffer} back unfilled, without an IRQ:
   * free again (used_len 0), and the next input on its key lands in it,
   * as if it had never been taken (inputs keep the guest's order).
   */
  giveBack(buf: InputBuffer): void;
  /** Raise an IRQ (LHREQ_IRQ) without a buffer. */
  raise(irq: number): void;
  /** Ask for input() to be called soon (the Waker's BREAK). */
  requestInput(): void;
  /** A line for --verbose. */
  log(msg: string): void;
  /** Kill the guest (bad guest-supplied data the device cannot serve). */
  kill(reason: string): void;
  /** End the whole run with an exit code (e.g. three Ctrl-C). */
  exit(code: number, why: string): void;
}

/** Run-wide settings a device may use. */
export interface DeviceEnv {
  /** `--pcap FILE`: every frame of every net device of the run. */
  pcap?: FrameSink;
}

/** Where captured frames go (a pcap writer). */
export interface FrameSink {
  frame(data: Uint8Array): void;
}

/** One device as the Launcher drives it. */
export interface Device {
  readonly type: number;
  readonly features: number;
  readonly numPages: number;
  /** Short description for --verbose and `devices` listings. */
  readonly label: string;
  /** Called once the layout is known and before the guest starts. */
  init?(ctx: DeviceContext): void | Promise<void>;
  /** The key whose Launcher-bound DMA this device serves (after init; fixed from then on). */
  watchKey?(): number;
  /**
   * Serve a Launcher-bound DMA; the result becomes the sender's used_len.
   * `sections` are checked live views, adjacent ones merged (as InputBuffer).
   */
  output?(sections: Uint8Array[], ctx: DeviceContext): number;
  /**
   * As {@link output}, with the sections as checked (address, length)
   * pairs in guest memory, no views allocated (preferred when present);
   * `r.view(i)` gives section i as a view, kept from send to send while
   * the guest names the same range. `r` is valid only during the call.
   */
  outputRanges?(r: DmaRanges, ctx: DeviceContext): number;
  /** Move pending input into the guest (the guest is stopped). */
  input?(ctx: DeviceContext): void;
  /**
   * Look for input without blocking (the guest has halted and would
   * sleep): queue what is there and return true if input() has work.
   */
  poll?(): boolean;
  /**
   * Append the host fds whose readability means {@link poll} would find
   * input, if a blocking wait on them is worth it now (input came lately):
   * while every guest sleeps, the run loop may block in poll(2) on them
   * instead of returning to the event loop (host/idle_wait.ts).
   */
  waitFds?(out: number[]): void;
  /**
   * The guest sleeps in the event loop (no blocking wait): watch the fds
   * from there until input comes (the tap's poll thread).
   */
  watch?(): void;
  /**
   * The run loop is about to block on the {@link waitFds} inside the
   * guest's halt (host/host.ts, the halt wait in place): the guest is
   * stopped and nothing runs until the next {@link poll} or
   * {@link disarmWait}. A device may take the buffer its next input will
   * fill now (`ctx.takeBuffer`), off the path between the wake-up and the
   * guest's answer; poll() fills it, or disarmWait() gives it back.
   */
  armWait?(): void;
  /** The wait that {@link armWait} prepared for is over: give back what poll() did not fill. */
  disarmWait?(): void;
  /** Does the device hold input it could not deliver yet? */
  hasPendingInput?(): boolean;
  /** Release host resources (files, fds, listeners). */
  close?(): void | Promise<void>;
}

/** A kind of device: how to parse its option and make instances. */
export interface DeviceKind<Spec = unknown> {
  /** Registry name, e.g. "block". */
  readonly name: string;
  /** Long CLI option without dashes, e.g. "block"; repeatable. */
  readonly option: string;
  /**
   * Help: one line per form, `--block FILE[,ro|,sync|,direct]  description`
   * (two or more spaces before the description; `lguest run --help` aligns
   * the descriptions).
   */
  readonly usage: string;
  /**
   * True: the option is a plain flag (`--rng`), taking no value; each use
   * adds one device, and parse() gets "". In a config file its field is
   * `true` (one device) or a count. Default: the option takes a value.
   */
  readonly flag?: boolean;
  /** Parse an option value; throw UsageError with one clear line. */
  parse(value: string): Spec;
  /** Make a device (open files etc.); throw UsageError on user errors. */
  create(spec: Spec, env: DeviceEnv): Device | Promise<Device>;
}

const kinds = new Map<string, DeviceKind>();

/** Add a device kind to the registry. */
export function registerDevice<S>(kind: DeviceKind<S>): void {
  if (kinds.has(kind.name)) throw new Error(`registry: device ${kind.name} registered twice`);
  kinds.set(kind.name, kind as DeviceKind);
}

/** Every registered kind, in registration order. */
export function deviceKinds(): DeviceKind[] {
  return [...kinds.values()];
}

/** The kind whose CLI option is `option`, if any. */
export function kindByOption(option: string): DeviceKind | undefined {
  return [...kinds.values()].find((k) => k.option === option);
}
