/**
 * Launcher: lays out one guest's memory, creates its devices, initialises
 * it through `/dev/lguest` and runs the main loop of protocol §9.6:
 * Launcher-bound DMA goes to the device watching that key; device input
 * goes in by GETDMA + copy + LHREQ_IRQ while the guest is stopped, with
 * LHREQ_BREAK playing the Waker's part.
 *
 * @module
 */

import { HOST_STACK, printable } from "../sys/text.ts";
import {
  EAGAIN,
  ENOENT,
  LG_HINT,
  LGUEST_DEVICE_S_ACKNOWLEDGE,
  LGUEST_DEVICE_S_DRIVER,
  LGUEST_DEVICE_S_DRIVER_OK,
  LGUEST_DEVICE_S_FAILED,
  LGUEST_DEVICE_S_REMOVED,
  LGUEST_DEVICE_S_REMOVED_ACK,
  LGUEST_DEVICE_T_BLOCK,
  LHREQ_BREAK,
  LHREQ_GETDMA,
  LHREQ_INITIALIZE,
  LHREQ_IRQ,
} from "../abi/constants.ts";
import { DESC_SIZE, DESC_STATUS, DMA_USED_LEN } from "../abi/structs.ts";
import {
  type Device,
  type DeviceContext,
  fillBuffer,
  type InputBuffer,
} from "../devices/registry.ts";
import type { GuestCpu } from "../engines/engine.ts";
import type { Host, LguestFile } from "../host/host.ts";
import { DmaRanges, GuestMemory, hex } from "../host/memory.ts";
import { EXIT, exitCodeOf } from "./exit.ts";
import { type Layout, planLayout, writeBootParams, writeDeviceTable } from "./layout.ts";
import { warn } from "../sys/stdio.ts";
import { idleWaits } from "../sys/clock.ts";
import { hasLgfsMagic } from "../abi/lgfs_magic.ts";

/** The CRASH message of a clean power-off. */
export const POWER_DOWN = "CRASH: Power down";

/** How a guest run ended. */
export interface Outcome {
  /** Process exit code (launcher/exit.ts, README "Exit codes"). */
  code: number;
  /**
   * The guest's own exit status (0..255: power off = 0, exit(N) = N) when it
   * ended itself; undefined when it crashed, was killed or was stopped.
   */
  status?: number;
  /** The guest's death reason, or why the run was stopped. */
  reason: string;
}

/** Everything needed to start one guest. */
export interface GuestSpec {
  name: string;
  /** RAM size in bytes (whole pages). */
  memory: number;
  cmdline: string;
  /** Devices in table order; the console should be last (§9.1). */
  devices: Device[];
  /**
   * Makes the engine instance (the image is bound in) for `bytes` of
   * guest-physical space, the first `mem` of them RAM.
   */
  makeCpu(bytes: number, mem: number): GuestCpu;
  /**
   * Serve Launcher-bound DMA inside the hypercall (default true); false
   * runs every DMA through read() exactly as the 2.6.23 Launcher did.
   */
  inlineOutput?: boolean;
  /** Diagnostic sink for --verbose lines; undefined = quiet. */
  verbose?: (line: string) => void;
  /** Where the guest's hints go, one line each ({@link hintLine}); undefined = dropped. */
  hint?: (line: string) => void;
  /**
   * Let the run loop block the main thread on a busy tap's fd while every
   * guest sleeps (host/idle_wait.ts; default false): the CLI's, where the
   * process is ours; a program's own timers would wait for it.
   */
  blockingWait?: boolean;
}

/**
 * The line for hint `hint` of a guest (CRASH + LGUEST_CRASH_HINT,
 * docs/guest-abi.md §11): the launcher's own words; the guest's message is
 * at most a path in them, escaped and cut. Null for a number it does not
 * know, and for a hint that what the launcher knows of the guest's disks
 * contradicts (`disk0`: the bytes of its first disk, -1 when their number is
 * unknown, null when it has none, undefined when nothing is known): "no disk" only without one, "holds no lgfs" only
 * for a disk 0 that is not empty, "is empty" only for one of 0 bytes, and
 * neither when disk 0 starts with the lgfs magic (`disk0Lgfs`, read by the
 * host when the hint comes: the launcher never advises mkfs over an lgfs). A
 * guest cannot make the launcher say something false of its own run.
 */
export function hintLine(
  hint: number,
  message: string,
  disk0?: number | null,
  disk0Lgfs = false,
): string | null {
  if (disk0Lgfs && (hint === LG_HINT.NO_LGFS || hint === LG_HINT.EMPTY_DISK)) return null;
  switch (hint) {
    case LG_HINT.NO_DISK:
      if (disk0 !== undefined && disk0 !== null) return null;
      return `${printable(message, 100)}: no disk: run with --block disk.img ` +
        "(make one with 'lguest disk mkfs disk.img 64M')";
    case LG_HINT.NO_LGFS:
      if (disk0 === null || disk0 === 0) return null;
      return "disk 0 holds no lgfs file system (make one with 'lguest disk mkfs'); " +
        "/ is empty and read-only";
    case LG_HINT.EMPTY_DISK:
      if (disk0 === null || (disk0 !== undefined && disk0 > 0)) return null;
      return "disk 0 is empty (0 bytes; make a file system on it with " +
        "'lguest disk mkfs IMAGE 64M'); / is empty and read-only";
  }
  return null;
}

/**
 * Whether the first disk among `devices` starts with the lgfs superblock's
 * magic now (read by the host, {@link BlockDevice.readHead}); false for none
 * or a disk it cannot read.
 */
export function firstDiskHoldsLgfs(devices: Device[]): boolean {
  const disk = devices.find((d) => d.type === LGUEST_DEVICE_T_BLOCK) as
    | { readHead?: (n: number) => Uint8Array | null }
    | undefined;
  const head = typeof disk?.readHead === "function" ? disk.readHead(8) : null;
  return head !== null && hasLgfsMagic(head);
}

// Written `(function f() {...}).bind(null)`: compiled with the module, not again at every
// start on its first call (Deno's emit keeps these parentheses; docs/performance.md, boot).
/** The bytes of the first disk among `devices` ({@link hintLine}'s `disk0`); null for none, -1 if unknown. */
export const firstDiskBytes = (function firstDiskBytes(devices: Device[]): number | null {
  const disk = devices.find((d) => d.type === LGUEST_DEVICE_T_BLOCK);
  if (disk === undefined) return null;
  const length = (disk as { length?: unknown }).length;
  return typeof length === "number" ? length : -1;
}).bind(null);

const STATUS_BITS: [number, string][] = [
  [LGUEST_DEVICE_S_ACKNOWLEDGE, "ACKNOWLEDGE"],
  [LGUEST_DEVICE_S_DRIVER, "DRIVER"],
  [LGUEST_DEVICE_S_DRIVER_OK, "DRIVER_OK"],
  [LGUEST_DEVICE_S_REMOVED, "REMOVED"],
  [LGUEST_DEVICE_S_REMOVED_ACK, "REMOVED_ACK"],
  [LGUEST_DEVICE_S_FAILED, "FAILED"],
];

/** Name the bits of a device status word. */
export function statusNames(status: number): string {
  const names = STATUS_BITS.filter(([b]) => status & b).map(([, n]) => n);
  return names.length ? names.join("|") : "none";
}

/** One guest under a Launcher. */
export class GuestRun {
  readonly spec: GuestSpec;
  readonly layout: Layout;
  readonly file: LguestFile;
  readonly memory: GuestMemory;
  readonly #contexts: DeviceContext[];
  #stopped: Outcome | null = null;
  #breaking = false;
  #status: number[];
  /** Requests a device failed to serve (its backend threw), by device. */
  readonly #failures: number[] = [];
  /** Watched key -> index of the first device serving it (after init). */
  #byKey = new Map<number, number>();
  /** The sections of the request being served (output) and of the input buffer taken. */
  readonly #ranges = new DmaRanges();
  readonly #inRanges = new DmaRanges();
  /** LHREQ_IRQ's request, its IRQ set per call (#complete). */
  readonly #irqReq = [LHREQ_IRQ, 0];

  private constructor(spec: GuestSpec, layout: Layout, file: LguestFile, memory: GuestMemory) {
    this.spec = spec;
    this.layout = layout;
    this.file = file;
    this.memory = memory;
    this.#status = spec.devices.map(() => 0);
    this.#contexts = spec.devices.map((_, i) => this.#context(i));
  }

  /** Lay out memory, write boot data, LHREQ_INITIALIZE, init devices. */
  static async create(host: Host, spec: GuestSpec): Promise<GuestRun> {
    const layout = planLayout(spec.memory, spec.devices.map((d) => d.numPages));
    const cpu = spec.makeCpu(layout.top, layout.mem);
    const memory = new GuestMemory(cpu.memory, layout.pfnLimit);
    writeBootParams(memory, layout.mem, spec.cmdline);
    const file = host.open(cpu);
    const r = file.write([LHREQ_INITIALIZE, layout.pfnLimit, 0, 0, 0]);
    if (r < 0) {
      file.close();
      throw new Error(
        r === -28 ? "too many guests: a host runs at most 16" : `LHREQ_INITIALIZE failed: ${r}`,
      );
    }
    const run = new GuestRun(spec, layout, file, memory);
    const say = spec.hint;
    const disk0 = firstDiskBytes(spec.devices);
    if (say) {
      file.guest!.onHint = (hint, message) => {
        const lgfs = (hint === LG_HINT.NO_LGFS || hint === LG_HINT.EMPTY_DISK) &&
          firstDiskHoldsLgfs(spec.devices);
        const line = hintLine(hint, message, disk0, lgfs);
        if (line === null) return;
        // A hint is no death, whatever its sink does (the CLI's is a best-effort stderr line).
        try {
          say(line);
        } catch {
          // dropped
        }
      };
    }
    // Serve device output inside the hypercall (LguestFile.setOutputHandler);
    // `inlineOutput: false` keeps every DMA on the read() round trip.
    if (spec.inlineOutput !== false) file.setOutputHandler((dma, key) => run.#output(dma, key));
    // Devices that can look for input without blocking do so before the guest sleeps.
    if (spec.devices.some((d) => d.poll)) file.setIdleHandler(() => run.#idle());
    // ...and may block the thread on their fds while every guest sleeps (the CLI).
    if (spec.blockingWait && spec.devices.some((d) => d.waitFds)) {
      idleWaits.possible = true; // a console reading stdin polls it first (sys/clock.ts)
      file.setWaitFds((out) => run.#waitFds(out), () => {
        for (const d of spec.devices) d.watch?.();
      }, {
        arm: () => {
          if (run.#stopped) return;
          for (const d of spec.devices) d.armWait?.();
        },
        disarm: () => {
          for (const d of spec.devices) d.disarmWait?.();
        },
      });
    }
    for (let i = 0; i < spec.devices.length; i++) {
      await spec.devices[i].init?.(run.#contexts[i]);
    }
    // After init: a device may learn its features there (a segment slot).
    writeDeviceTable(memory, layout, spec.devices);
    // handle_output's lookup, once: the first device watching each key.
    spec.devices.forEach((d, i) => {
      const key = d.output || d.outputRanges ? d.watchKey?.() : undefined;
      if (key !== undefined && !run.#byKey.has(key)) run.#byKey.set(key, i);
    });
    spec.verbose?.(
      `${spec.name}: ${layout.mem} bytes RAM, devices at ${hex(layout.mem)}, top ${
        hex(layout.top)
      }, ${spec.devices.length} device(s)`,
    );
    spec.devices.forEach((d, i) =>
      spec.verbose?.(
        `${spec.name}: device ${i}: ${d.label}, irq ${i + 1}, page ${hex(layout.pageAddr[i])}`,
      )
    );
    return run;
  }

  #context(index: number): DeviceContext {
    const pageAddr = this.layout.pageAddr[index];
    const file = this.file;
    return {
      index,
      pageAddr,
      memory: this.memory,
      host: this.file.host,
      get guest() {
        return file.guest!;
      },
      name: this.spec.name,
      mapShared: (objectId, sync, mayBind) =>
        this.file.mapShared({
          start: pageAddr,
          length: this.spec.devices[index].numPages * 4096,
          objectId,
          objectOffset: 0,
          sync,
          mayBind,
        }),
      deliver: (key, data) => this.#deliver(key, data),
      takeBuffer: (key) => this.#takeBuffer(key),
      complete: (buf, usedLen) => this.#complete(buf, usedLen),
      giveBack: (buf) => file.host.dma.giveBack(file.guest!, buf.key, buf.addr),
      raise: (irq) => void this.file.write([LHREQ_IRQ, irq]),
      requestInput: () => this.#requestInput(),
      log: (msg) => this.spec.verbose?.(`${this.spec.name}: ${msg}`),
      kill: (reason) => this.file.kill(reason),
      exit: (code, why) => this.stop(code, why),
    };
  }

  /** GETDMA: a free buffer of the guest on `key`, checked (§9.6). */
  #takeBuffer(key: number): InputBuffer | null {
    const addr = this.file.write([LHREQ_GETDMA, key]);
    if (addr < 0) return null;
    const irq = this.memory.u32(addr + DMA_USED_LEN);
    const bad = this.memory.ranges(addr, this.#inRanges);
    if (bad !== null) {
      this.file.kill(`GETDMA buffer for key ${hex(key)}: ${bad}`);
      return null;
    }
    return { addr, key, irq, sections: this.#inRanges.mergedViews() };
  }

  #complete(buf: InputBuffer, usedLen: number): void {
    this.memory.setU32(buf.addr + DMA_USED_LEN, usedLen);
    const req = this.#irqReq; // one request array, not one per frame
    req[1] = buf.irq;
    this.file.write(req);
  }

  /** GETDMA + copy + used_len + LHREQ_IRQ (§9.6 "Feeding input"). */
  #deliver(key: number, data: Uint8Array): number {
    const buf = this.#takeBuffer(key);
    if (buf === null) return -1;
    const n = fillBuffer(buf, data);
    this.#complete(buf, n);
    return n;
  }

  #requestInput(): void {
    if (this.#breaking || this.#stopped) return;
    this.#breaking = true;
    this.file.write([LHREQ_BREAK, 1]);
  }

  /** Stop the run from outside (timeout, signal, a device's exit). */
  stop(code: number, reason: string): void {
    if (this.#stopped) return;
    this.#stopped = { code, reason };
    this.file.kill(reason);
  }

  /** The main loop; resolves when the guest is dead. */
  async run(): Promise<Outcome> {
    const file = this.file;
    for (;;) {
      const r = await file.read();
      if (this.spec.verbose) this.#reportStatus();
      if (r.kind === "dma") {
        this.#output(r.dma, r.key);
        this.#pollInput();
        continue;
      }
      if (r.kind === "errno" && r.errno === EAGAIN) {
        // BREAK off before the devices run: a device that asks for another
        // turn inside input() (a partial delivery) must get it, not have its
        // BREAK cleared behind it.
        this.#breaking = false;
        file.write([LHREQ_BREAK, 0]);
        this.#handleInput();
        continue;
      }
      if (r.kind === "errno" && r.errno === ENOENT) {
        const why = await file.read();
        const reason = why.kind === "reason" ? why.reason : "guest died";
        return this.#finish(reason);
      }
      return this.#finish(`running guest failed: ${r.kind === "errno" ? -r.errno : r.kind}`);
    }
  }

  async #finish(reason: string): Promise<Outcome> {
    const status = this.file.guest?.exitStatus ?? (reason === POWER_DOWN ? 0 : null);
    for (const d of this.spec.devices) await d.close?.();
    this.file.close();
    if (this.#stopped) return this.#stopped;
    // The host's own stack ran out in this guest's hypercall (V8 --stack-size): not the guest's
    // failure but the host's, 125 as for a host that cannot run the engine (README "Exit codes").
    // No guest text makes this reason (a guest's own are prefixed: `CRASH: `, `guest fault: `).
    if (status === null) {
      return { code: reason === HOST_STACK ? EXIT.USAGE : EXIT.GUEST_FAILED, reason };
    }
    return { code: exitCodeOf(status), status, reason };
  }

  /** handle_output(): the first device watching `key` serves it (§9.6). */
  #output(dma: number, key: number): boolean {
    const i = this.#byKey.get(key);
    if (i === undefined) {
      this.spec.verbose?.(`${this.spec.name}: pending dma ${hex(dma)}, key ${hex(key)}`);
      return true;
    }
    const dev = this.spec.devices[i];
    let used = 0;
    if (dev.outputRanges) {
      const bad = this.memory.ranges(dma, this.#ranges);
      if (bad !== null) {
        this.file.kill(`SEND_DMA to the Launcher (key ${hex(key)}): ${bad}`);
        return true;
      }
      try {
        used = dev.outputRanges(this.#ranges, this.#contexts[i]);
      } catch (e) {
        this.#deviceFailed(i, e);
      }
    } else {
      const bad = this.memory.ranges(dma, this.#ranges);
      if (bad !== null) {
        this.file.kill(`SEND_DMA to the Launcher (key ${hex(key)}): ${bad}`);
        return true;
      }
      try {
        used = dev.output!(this.#ranges.mergedViews(), this.#contexts[i]);
      } catch (e) {
        this.#deviceFailed(i, e);
      }
    }
    this.memory.setU32(dma + DMA_USED_LEN, used);
    return true;
  }

  /**
   * A device's backend threw while serving the guest's request: the host's
   * failure, not the guest's (docs/security.md "Host errors stay on the
   * host"). The request is dropped (used_len 0) and counted; the user gets
   * one line the first time; the guest runs on.
   */
  #deviceFailed(i: number, e: unknown): void {
    const n = (this.#failures[i] = (this.#failures[i] ?? 0) + 1);
    if (n === 1) {
      const why = printable(e instanceof Error ? e.message : String(e), 200);
      warn(
        `lguest: ${this.spec.name}: device ${i} (${this.spec.devices[i].label}) failed ` +
          `(${why}); the request was dropped, the guest goes on`,
      );
    }
    this.spec.verbose?.(`${this.spec.name}: device ${i}: ${n} failed request(s)`);
  }

  /**
   * The guest halted: input already waiting goes in before it sleeps. (A
   * tap's frame taken straight into the guest's buffer by its poll() is in
   * already: input() runs only if a device says it holds some, or cannot
   * say.)
   */
  #idle(): boolean {
    if (this.#stopped) return false;
    let any = false;
    const devices = this.spec.devices;
    for (let i = 0; i < devices.length; i++) if (devices[i].poll?.()) any = true;
    if (any && this.#inputPending()) this.#handleInput();
    return any;
  }

  /** A device holds input for the guest (one without hasPendingInput may). */
  #inputPending(): boolean {
    const devices = this.spec.devices;
    for (let i = 0; i < devices.length; i++) {
      const d = devices[i];
      if (d.input && (d.hasPendingInput === undefined || d.hasPendingInput())) return true;
    }
    return false;
  }

  #waitFds(out: number[]): void {
    if (this.#stopped) return;
    for (const d of this.spec.devices) d.waitFds?.(out);
  }

  /** The guest is stopped: give waiting input another chance now. */
  #pollInput(): void {
    if (this.spec.devices.some((d) => d.hasPendingInput?.())) this.#handleInput();
  }

  #handleInput(): void {
    this.spec.devices.forEach((d, i) => {
      if (d.input && this.file.guest?.dead === null) d.input(this.#contexts[i]);
    });
  }

  #reportStatus(): void {
    this.spec.devices.forEach((d, i) => {
      const s = this.memory.u16(this.layout.mem + i * DESC_SIZE + DESC_STATUS);
      if (s !== this.#status[i]) {
        this.#status[i] = s;
        this.spec.verbose?.(
          `${this.spec.name}: device ${i} (${d.label}) status ${hex(s)} (${statusNames(s)})`,
        );
      }
    });
  }
}
