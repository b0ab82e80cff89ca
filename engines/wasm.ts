/**
 * The WebAssembly engine: a guest is a wasm32 module whose linear memory is
 * the guest's RAM (guest-physical address = linear address).
 *
 * Imports (module "env"): `memory`; `hcall(eax, edx, ebx, ecx) -> eax`, a
 * plain import (the fast path); `event() -> i32`, plain; `wait()`, a JSPI
 * `WebAssembly.Suspending` import that parks the guest's stack while the
 * Host loop waits for the Launcher, a timer or an interrupt. Export:
 * `start()`. The event protocol is in `docs/guest-abi.md`.
 *
 * Interrupts are run by the guest's own shim when `event()` names one: JSPI
 * cannot suspend through a JS frame, so the engine never calls guest code
 * from inside an import (the handler may itself need to wait).
 *
 * Preemption: {@link compileImage} instruments every loop of the image
 * (`wasm_fuel.ts`) to call `wait()` every {@link FUEL} iterations. A
 * `wait()` that no `LG_EV_WAIT` asked for is such a fuel check: the guest
 * goes on unless its time slice is over ({@link HypercallPort.preempt}),
 * in which case it stops exactly as for `LG_EV_WAIT` and the Host lets the
 * event loop in before resuming it.
 *
 * @module
 */

import type { GuestCpu, HypercallPort } from "./engine.ts";
import { LG_EV_WAIT, LG_EVENT } from "./engine.ts";
import { promising, suspending } from "./jspi.ts";
import { FUEL, instrumentFuel } from "./wasm_fuel.ts";

/** Wasm page size. */
export const WASM_PAGE = 65536;

/** Thrown through guest frames to unwind a dead guest's stack. */
class GuestExit extends Error {
  constructor() {
    super("guest exited");
  }
}
const GUEST_EXIT = new GuestExit();

/** A user-facing problem with an image (bad file, wrong imports, …). */
export class ImageError extends Error {}

const REQUIRED_IMPORTS = new Set(["env.memory", "env.hcall", "env.event", "env.wait"]);

/** How an image was made preemptible: loops instrumented, or why not. */
export type Preemption = { loops: number } | { error: string };

const preemption = new WeakMap<WebAssembly.Module, Preemption>();

/**
 * Whether {@link compileImage} instrumented a module's loops for
 * preemption, and if not, why (a guest that is not instrumented still
 * runs; it just cannot be preempted between hypercalls).
 */
export function preemptionOf(mod: WebAssembly.Module): Preemption {
  return preemption.get(mod) ?? { error: "not compiled by compileImage" };
}

/** One line for --verbose about {@link preemptionOf}. */
export function describePreemption(mod: WebAssembly.Module): string {
  const p = preemptionOf(mod);
  return "error" in p
    ? `not preemptible between hypercalls (loops not instrumented: ${p.error})`
    : `preemptible: ${p.loops} loop(s) instrumented, a fuel check every ${FUEL} iterations`;
}

/**
 * Compile and validate a guest image, with its loops instrumented for
 * preemption (`wasm_fuel.ts`) when possible; when not, the original image
 * is used and {@link preemptionOf} says why.
 */
export async function compileImage(bytes: Uint8Array, name: string): Promise<WebAssembly.Module> {
  if (
    bytes.length < 8 || bytes[0] !== 0 || bytes[1] !== 0x61 || bytes[2] !== 0x73 ||
    bytes[3] !== 0x6d
  ) {
    throw new ImageError(`${name}: not a WebAssembly guest image (bad magic)`);
  }
  const fuel = instrumentFuel(bytes, { validate: false }); // compiling validates
  let mod: WebAssembly.Module | undefined;
  let how: Preemption = "error" in fuel ? fuel : { loops: fuel.loops };
  if (!("error" in fuel)) {
    try {
      mod = await WebAssembly.compile(fuel.bytes as Uint8Array<ArrayBuffer>);
    } catch (e) {
      how = { error: `the instrumented image does not compile: ${(e as Error).message}` };
    }
  }
  if (mod === undefined) {
    try {
      mod = await WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>);
    } catch (e) {
      throw new ImageError(`${name}: invalid WebAssembly image: ${(e as Error).message}`);
    }
  }
  preemption.set(mod, how);
  for (const imp of WebAssembly.Module.imports(mod)) {
    const id = `${imp.module}.${imp.name}`;
    if (!REQUIRED_IMPORTS.has(id)) {
      throw new ImageError(`${name}: imports ${id}, which the lguest guest ABI does not provide`);
    }
  }
  const start = WebAssembly.Module.exports(mod).find((e) => e.name === "start");
  if (!start || start.kind !== "function") {
    throw new ImageError(`${name}: does not export a start() function`);
  }
  return mod;
}

/**
 * The plain `env.hcall` import over a port: the fast path is one call into
 * the Host; a dead guest's stack is unwound by throwing through it.
 */
export function hcallImport(
  slot: { port: HypercallPort | null },
): (eax: number, edx: number, ebx: number, ecx: number) => number {
  return (eax, edx, ebx, ecx) => {
    const p = slot.port!;
    const r = p.hypercall(eax >>> 0, edx >>> 0, ebx >>> 0, ecx >>> 0);
    if (r === LG_EVENT && p.dead !== null) throw GUEST_EXIT;
    return r | 0;
  };
}

/** Describe an exception that came out of guest code as a kill reason. */
function faultReason(e: unknown): string {
  if (e instanceof WebAssembly.RuntimeError) return `guest fault: ${e.message}`;
  if (e instanceof RangeError && /call stack/i.test(e.message)) {
    return "guest fault: stack overflow";
  }
  return `internal error in hypercall: ${e instanceof Error ? e.message : String(e)}`;
}

/** One wasm guest: its module instance, memory and suspended stack. */
export class WasmCpu implements GuestCpu {
  readonly memory: Uint8Array;
  readonly wasmMemory: WebAssembly.Memory;
  #instance: WebAssembly.Instance;
  #port: HypercallPort | null = null;
  /** The port, where the hcall import finds it (set by attach). */
  readonly #slot: { port: HypercallPort | null } = { port: null };
  #started = false;
  #closed = false;
  #stopped: (() => void) | undefined;
  #resume: (() => void) | undefined;

  /**
   * @param mod a module from {@link compileImage}
   * @param bytes RAM size; rounded up to whole wasm pages
   */
  constructor(mod: WebAssembly.Module, bytes: number) {
    const pages = Math.ceil(bytes / WASM_PAGE);
    this.wasmMemory = new WebAssembly.Memory({ initial: pages, maximum: pages });
    this.memory = new Uint8Array(this.wasmMemory.buffer);
    const port = (): HypercallPort => this.#port!;
    const hcall = hcallImport(this.#slot);
    /** event() said LG_EV_WAIT: the next wait() is the protocol's, not a fuel check. */
    let expected = false;
    const event = (): number => {
      const p = port();
      if (p.dead !== null) throw GUEST_EXIT;
      const ev = p.event() | 0;
      if (ev === LG_EV_WAIT) expected = true;
      return ev;
    };
    /** Stop: run() resolves; the next run() resumes the guest. */
    const park = async (): Promise<void> => {
      const stopped = this.#stopped;
      this.#stopped = undefined;
      await new Promise<void>((resolve) => {
        this.#resume = resolve;
        stopped?.();
      });
      if (this.#closed || port().dead !== null) throw GUEST_EXIT;
    };
    const wait = suspending((): Promise<void> | undefined => {
      if (expected) {
        expected = false;
        return park();
      }
      // A fuel check from an instrumented loop. JSPI suspends even when this
      // returns undefined (the value goes through Promise.resolve), but the
      // guest resumes in a microtask: the event loop does not get in.
      const p = this.#port;
      if (p === null) return undefined;
      if (this.#closed || p.dead !== null) throw GUEST_EXIT;
      return p.preempt() ? park() : undefined;
    });
    try {
      this.#instance = new WebAssembly.Instance(mod, {
        env: { memory: this.wasmMemory, hcall, event, wait },
      });
    } catch (e) {
      const msg = (e as Error).message;
      if (/memory/i.test(msg)) {
        throw new ImageError(`guest image needs more memory than ${bytes} bytes: ${msg}`);
      }
      throw new ImageError(`cannot instantiate guest image: ${msg}`);
    }
  }

  attach(port: HypercallPort): void {
    this.#port = port;
    this.#slot.port = port;
  }

  run(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.#stopped = resolve;
      if (!this.#started) {
        this.#started = true;
        const start = promising(this.#instance.exports.start as () => unknown);
        start().then(
          () => this.#port!.kill("guest returned from start()"),
          (e: unknown) => {
            if (!(e instanceof GuestExit)) this.#port!.kill(faultReason(e));
          },
        ).finally(() => {
          const s = this.#stopped;
          this.#stopped = undefined;
          s?.();
        });
      } else {
        const r = this.#resume;
        this.#resume = undefined;
        if (r) r();
        else resolve(); // nothing to resume: the guest already ended
      }
    });
  }

  close(): void {
    this.#closed = true;
    const r = this.#resume;
    this.#resume = undefined;
    r?.();
  }
}
