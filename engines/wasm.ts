/**
 * The WebAssembly engine: a guest is a wasm32 module whose linear memory is
 * the guest's RAM (guest-physical address = linear address).
 *
 * Imports (module "env"): `memory`; `hcall(eax, edx, ebx, ecx) -> eax`, a
 * plain import (the fast path); `event() -> i32`, plain; `wait()`, which
 * parks the guest's stack (JSPI) while the Host loop waits for the
 * Launcher, a timer or an interrupt, and from a fuel check that does not
 * stop the guest returns a microtask later (the queued microtasks, other
 * guests' resumes among them, run in that gap), or at once before the
 * guest's first park (a wasm function of `jspi.ts` {@link lazySuspending}:
 * V8 compiles its `Suspending` wrapper at the first park, not at
 * instantiation, docs/performance.md); optional
 * `rdtsc() -> i64`, a monotonic nanosecond count (the guest's TSC:
 * `lguest_data.tsc_khz` is 1000000), plain and cheap. Export: `start()`.
 * The event protocol is in `docs/guest-abi.md`.
 *
 * Interrupts are run by the guest's own shim when `event()` names one: JSPI
 * cannot suspend through a JS frame, so the engine never calls guest code
 * from inside an import (the handler may itself need to wait).
 *
 * The image is hostile input: {@link compileImage} checks it against the
 * guest-image profile (`wasm_profile.ts`) before V8 sees it. A built-in
 * guest's image was checked and instrumented by `deno task guests`
 * ({@link compileReady}); the checks' modules are loaded only for others.
 *
 * Preemption: {@link compileImage} instruments every loop header, every
 * function that calls, and every bulk memory instruction of the image
 * (`wasm_fuel.ts`) to call `wait()` every {@link FUEL} units of fuel (fewer
 * after a look that came late: {@link LOOK_MS}); an
 * image that cannot be instrumented is refused. A
 * `wait()` that no `LG_EV_WAIT` asked for is such a fuel check: the guest
 * goes on unless its time slice is over ({@link HypercallPort.preempt}),
 * in which case it stops exactly as for `LG_EV_WAIT` and the Host lets the
 * event loop in before resuming it.
 *
 * @module
 */

import { hostStackLine, isStackOverflow, printable } from "../sys/text.ts";
import type { GuestCpu, HypercallPort } from "./engine.ts";
import { LG_EV_WAIT, LG_EVENT } from "./engine.ts";
import { lazySuspending, type Park, promising } from "./jspi.ts";
import type { FuelCounts } from "./wasm_fuel.ts";
import { FUEL, FUEL_EXPORT, ImageError } from "./image_error.ts";
import { nowMs, nowNs } from "../sys/clock.ts";

export { ImageError };

/** Wasm page size. */
export const WASM_PAGE = 65536;

/** Thrown through guest frames to unwind a dead guest's stack. */
class GuestExit extends Error {
  constructor() {
    super("guest exited");
  }
}
let guestExit: GuestExit | null = null;

/**
 * Unwind a dead guest's stack: one GuestExit for the process, made at the
 * first exit, not at start-up (a process's first Error costs ~0.08 ms of
 * boot.first_byte, docs/performance.md).
 */
function exitGuest(): never {
  throw (guestExit ??= new GuestExit());
}

/** Rate of {@link rdtsc} in kHz: it counts nanoseconds. */
export const WASM_TSC_KHZ = 1_000_000;

/**
 * `env.rdtsc`: nanoseconds of the host's monotonic clock, as an i64: with
 * FFI allowed (the CLI), libc's clock_gettime(CLOCK_MONOTONIC) (the vDSO:
 * no system call), ~30 ns a reading from a guest; else `performance.now()`
 * in nanoseconds, ~100 ns (`sys/clock.ts`, the clock the Host's time slices
 * read too). It counts from its own origin.
 */
export function rdtsc(): bigint {
  return nowNs();
}

/**
 * A look (a fuel check's `wait()`) should come at least this often, in ms of
 * guest run time. FUEL units of ordinary code take ~0.1-0.3 ms, but a unit
 * is bytes of code, not time: a pointer chase through RAM (a cache miss a
 * load) ran ~0.25-1 s on FUEL units. So a look that comes later than this
 * refills the fuel with proportionally less ({@link refillAfter}, at least
 * {@link MIN_REFILL}), and each prompt look doubles it back up to FUEL.
 */
export const LOOK_MS = 1;
/** The least fuel a look refills (a look is ~1 µs: fewer units would spend the slice on looks). */
export const MIN_REFILL = 512;

/**
 * The fuel a look refills when the previous refill, `refill` units, ran
 * `ms` milliseconds of guest time: scaled down to come within
 * {@link LOOK_MS}, or doubled back towards FUEL when it did.
 */
export function refillAfter(refill: number, ms: number): number {
  if (ms > LOOK_MS) return Math.max(MIN_REFILL, Math.floor(refill * LOOK_MS / ms));
  return refill < FUEL ? Math.min(FUEL, refill * 2) : FUEL;
}

/** Where an image got fuel checks (or, for a module not from compileImage, why none). */
export type Preemption = FuelCounts | { error: string };

const preemption = new WeakMap<WebAssembly.Module, Preemption>();

/**
 * Where {@link compileImage} put a module's fuel checks ({@link compileImage}
 * refuses an image it cannot instrument, so every module it returns is
 * preemptible).
 */
export function preemptionOf(mod: WebAssembly.Module): Preemption {
  return preemption.get(mod) ?? { error: "not compiled by compileImage" };
}

/** One line for --verbose about {@link preemptionOf}. */
export function describePreemption(mod: WebAssembly.Module): string {
  const p = preemptionOf(mod);
  return "error" in p
    ? `not preemptible between hypercalls (${p.error})`
    : `preemptible: fuel checks at ${p.loops} loop header(s) and ${p.entries} function ` +
      `entr${p.entries === 1 ? "y" : "ies"}, ${p.resumes} resume point(s), ${p.bulk} bulk ` +
      `memory instruction(s) paying by length; a look every ${FUEL} units`;
}

/**
 * Check a guest image against the profile (`wasm_profile.ts`), instrument
 * it for preemption (`wasm_fuel.ts`) and compile it. Every refusal is an
 * {@link ImageError}, one printable line.
 */
export async function compileImage(bytes: Uint8Array, name: string): Promise<WebAssembly.Module> {
  const [{ checkProfile }, { instrumentFuel }] = await Promise.all([
    import("./wasm_profile.ts"),
    import("./wasm_fuel.ts"),
  ]);
  checkProfile(bytes, name);
  const shown = printable(name, 100);
  const fuel = instrumentFuel(bytes, { validate: false }); // validated below, and by compiling
  if ("error" in fuel) {
    const why = printable(fuel.error.replace(/^(unsupported|malformed): /, ""));
    throw new ImageError(
      fuel.error.startsWith("malformed")
        ? `${shown}: invalid WebAssembly image: ${why}`
        : `${shown}: ${why} (outside the guest-image profile, docs/guest-abi.md §1.1)`,
    );
  }
  // The image as the guest wrote it must be valid on its own: the
  // instrumentation appends a global ($fuel), a type and a function ($pay),
  // so an index one past the image's own would be valid after it and hand
  // the guest its own fuel (`global.set` of $fuel in a loop: never preempted).
  if (!WebAssembly.validate(bytes as Uint8Array<ArrayBuffer>)) {
    let msg = "the module does not validate";
    try {
      await WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>);
    } catch (e) {
      msg = (e as Error).message;
    }
    throw new ImageError(`${shown}: invalid WebAssembly image: ${printable(msg, 300)}`);
  }
  let mod: WebAssembly.Module;
  try {
    mod = await WebAssembly.compile(fuel.bytes as Uint8Array<ArrayBuffer>);
  } catch (e) {
    // The message of the original's own error, where it has one (its byte offsets are the file's).
    let msg = (e as Error).message;
    try {
      await WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>);
      msg = `the fuel instrumentation broke it (a bug): ${msg}`;
    } catch (orig) {
      msg = (orig as Error).message;
    }
    throw new ImageError(`${shown}: invalid WebAssembly image: ${printable(msg, 300)}`);
  }
  return preemptible(mod, fuel);
}

/** Record where `mod`'s fuel checks are (the counts only, not the instrumented bytes). */
function preemptible(mod: WebAssembly.Module, fuel: FuelCounts): WebAssembly.Module {
  const { loops, entries, resumes, bulk } = fuel;
  preemption.set(mod, { loops, entries, resumes, bulk });
  return mod;
}

/**
 * Compile a built-in image that `deno task guests` already checked against
 * the profile and instrumented (`guests/images/index.ts` READY, verified
 * by `deno task guests --check`); `fuel` is where the build put its checks.
 * Only for images of the module graph: anything else goes through
 * {@link compileImage}.
 */
export function compileReady(
  bytes: Uint8Array,
  fuel: FuelCounts,
  name: string,
): WebAssembly.Module {
  let mod: WebAssembly.Module;
  try {
    // Synchronously: the build checked this image and its size, and V8 compiles a module's
    // functions lazily anyway (Liftoff, at each one's first call), so what is left is decoding and
    // validation, no slower here than on a worker (sqlite3's 1.3 MB 3.6-5.2 ms against 3.8-6.4);
    // `WebAssembly.compile` took a worker thread and an event-loop turn more, ~0.1 ms of every
    // start, and a start in a few ended ms late (boot.first_byte, docs/performance.md).
    mod = new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>);
  } catch (e) {
    // A build that does not fit this Deno's V8: the same one line as for any image.
    const why = printable((e as Error).message, 300);
    throw new ImageError(`${printable(name, 100)}: invalid WebAssembly image: ${why}`);
  }
  return preemptible(mod, fuel);
}

/**
 * Where an import finds the guest's port, and what the host's own code last threw out of an
 * import (`thrown`): an error that then comes out of the guest's `start` is the host's, not a
 * guest fault, whatever its class ({@link faultReason}).
 */
export interface ImportSlot {
  port: HypercallPort | null;
  thrown?: unknown;
}

/**
 * The plain `env.hcall` import over a port: the fast path is one call into
 * the Host; a dead guest's stack is unwound by throwing through it. What
 * the host's code throws is kept in the slot on its way out (a store, no
 * call: the host's stack may be all but gone).
 */
export function hcallImport(
  slot: ImportSlot,
): (eax: number, edx: number, ebx: number, ecx: number) => number {
  return (eax, edx, ebx, ecx) => {
    try {
      if (slot.thrown !== undefined) hostFailed(slot);
      const p = slot.port!;
      const r = p.hypercall(eax >>> 0, edx >>> 0, ebx >>> 0, ecx >>> 0);
      if (r === LG_EVENT && p.dead !== null) exitGuest();
      return r | 0;
    } catch (e) {
      keepHostError(slot, e);
      throw e;
    }
  };
}

/** Keep the first error the host's own code threw out of an import (a store, no call). */
function keepHostError(slot: ImportSlot, e: unknown): void {
  if (slot.thrown === undefined && !(e instanceof GuestExit)) slot.thrown = e;
}

/**
 * The guest called into the host again after the host's own code failed in an import: it
 * caught that error (legacy exception handling's `catch_all` catches JavaScript exceptions) and
 * went on. The host's failure ends it, with the host's reason (found by attack: a guest that
 * caught the host's stack overflow powered off with 0, or trapped as a "guest fault", 126).
 */
function hostFailed(slot: ImportSlot): never {
  killForHost(slot);
  exitGuest();
}

/** Kill the slot's guest, if it still lives, with the reason for what the host's code threw. */
function killForHost(slot: ImportSlot): void {
  const p = slot.port;
  if (p !== null && p.dead === null) p.kill(hostReason(slot.thrown));
}

/** The kill reason for an error the host's own code threw: its stack line, or a host bug. */
function hostReason(e: unknown): string {
  if (isStackOverflow(e)) return hostStackLine();
  return `internal error in hypercall: ${e instanceof Error ? e.message : String(e)}`;
}

/**
 * Describe an exception that came out of guest code as a kill reason. `host` is what the host's
 * own code last threw out of an import ({@link ImportSlot}): the same object coming out of the
 * guest is the host's failure, never a guest fault. A RangeError "Maximum call stack size
 * exceeded" is both V8's wasm stack overflow (the guest's own frames: a guest fault) and what
 * the host's code in a hypercall throws when a small --stack-size runs out there (Deno's lazily
 * loaded timers, at the guest's first clock timer): its class cannot tell them apart, and Deno
 * wraps the latter as a RangeError or a plain Error from one run to the next (the bundle said
 * `guest fault: stack overflow` in about half its runs under DENO_V8_FLAGS=--stack-size=60).
 * The guest's wasm runs on its own JSPI stack and every import on the host's, so an overflow
 * thrown in an import's body is the host's stack; one in the guest's own frames is the guest's.
 */
function faultReason(e: unknown, host: unknown): string {
  // Once the host's code has failed in an import, whatever ends the guest is the host's failure
  // (the guest may have caught that error and trapped on its own after it).
  if (host !== undefined) return hostReason(host);
  if (e instanceof WebAssembly.RuntimeError) return `guest fault: ${e.message}`;
  const WasmException = (WebAssembly as unknown as { Exception?: new () => unknown }).Exception;
  if (WasmException && e instanceof WasmException) {
    return "guest fault: an exception the guest threw was not caught";
  }
  if (e instanceof RangeError && /call stack/i.test(e.message)) {
    return "guest fault: stack overflow";
  }
  return hostReason(e);
}

/** One wasm guest: its module instance, memory and suspended stack. */
export class WasmCpu implements GuestCpu {
  readonly memory: Uint8Array;
  readonly wasmMemory: WebAssembly.Memory;
  readonly tscKhz: number = WASM_TSC_KHZ;
  #instance: WebAssembly.Instance;
  #port: HypercallPort | null = null;
  /** The port, where the hcall import finds it (set by attach). */
  readonly #slot: ImportSlot = { port: null, thrown: undefined };
  #started = false;
  #closed = false;
  #stopped: (() => void) | undefined;
  #resume: (() => void) | undefined;
  /** When the guest last started running (run() or a look that let it go on): its run time since. */
  #resumed = 0;

  /**
   * @param mod a module from {@link compileImage} or {@link compileReady}; any other is a TypeError
   * @param bytes RAM size; rounded up to whole wasm pages
   */
  constructor(mod: WebAssembly.Module, bytes: number) {
    // A module compiled anywhere else has neither fuel checks nor its memory.grow rewritten (a
    // grow detaches every host view of its RAM: docs/security.md "Guest memory never moves").
    if (!preemption.has(mod)) {
      throw new TypeError("WasmCpu: the module must come from compileImage (or compileReady)");
    }
    const pages = Math.ceil(bytes / WASM_PAGE);
    this.wasmMemory = new WebAssembly.Memory({ initial: pages, maximum: pages });
    this.memory = new Uint8Array(this.wasmMemory.buffer);
    const port = (): HypercallPort => this.#port!;
    const hcall = hcallImport(this.#slot);
    /** event() said LG_EV_WAIT: the next wait() is the protocol's, not a fuel check. */
    let expected = false;
    const slot = this.#slot;
    const event = (): number => {
      try {
        if (slot.thrown !== undefined) hostFailed(slot);
        const p = port();
        if (p.dead !== null) exitGuest();
        const ev = p.event() | 0;
        if (ev === LG_EV_WAIT) expected = true;
        return ev;
      } catch (e) {
        keepHostError(slot, e); // the host's (faultReason), as in hcall
        throw e;
      }
    };
    /** The fuel counter ($fuel, exported by the instrumentation), set once instantiated. */
    let fuel: WebAssembly.Global | undefined;
    /** What the last look refilled. */
    let refill = FUEL;
    /** Stop: run() resolves; the next run() resumes the guest. */
    const park = async (): Promise<void> => {
      const stopped = this.#stopped;
      this.#stopped = undefined;
      await new Promise<void>((resolve) => {
        this.#resume = resolve;
        stopped?.();
      });
      if (this.#closed || port().dead !== null) exitGuest();
    };
    /**
     * A dead guest that goes on running — it caught the GuestExit thrown
     * through it (legacy exception handling's `catch_all` catches JavaScript
     * exceptions too) — stops for good at its next fuel check: its stack
     * stays suspended on a promise that never settles (and is collected with
     * it), so it can neither spin nor hold the event loop.
     */
    const parkForever = (): Promise<void> => {
      const stopped = this.#stopped;
      this.#stopped = undefined;
      stopped?.();
      return new Promise<void>(() => {});
    };
    // Decides only: a park it returns is made inside the Suspending import, once the guest's stack
    // holds its frames (jspi.ts); undefined: the guest goes on.
    const wait = lazySuspending((): Park | undefined => {
      try {
        if (expected) {
          expected = false;
          return park;
        }
        // A fuel check from an instrumented loop: the guest goes on unless its slice is over.
        const p = this.#port;
        if (p === null) return undefined;
        if (slot.thrown !== undefined) killForHost(slot); // as hostFailed, for a guest that spins
        if (this.#closed || p.dead !== null) return parkForever;
        // The check refilled FUEL; code whose units are slow gets less (LOOK_MS).
        const now = nowMs(), next = refillAfter(refill, now - this.#resumed);
        if (next !== FUEL && fuel !== undefined) fuel.value = next;
        refill = next;
        this.#resumed = now;
        return p.preempt() ? park : undefined;
      } catch (e) {
        keepHostError(slot, e); // the host's (faultReason), as in hcall
        throw e;
      }
    });
    try {
      this.#instance = new WebAssembly.Instance(mod, {
        env: { memory: this.wasmMemory, hcall, event, wait, rdtsc },
      });
      fuel = this.#instance.exports[FUEL_EXPORT] as WebAssembly.Global | undefined;
    } catch (e) {
      const msg = (e as Error).message;
      const max = /declared maximum (\d+)/.exec(msg);
      if (max) {
        throw new ImageError(
          `the guest image declares at most ${+max[1] * 64} KiB of memory, less than the ` +
            `guest's ${pages * 64} KiB (RAM and device pages): give less memory, or link ` +
            `the image without a maximum`,
        );
      }
      const min = /declared initial (?:of )?(\d+)/.exec(msg);
      if (min) {
        throw new ImageError(
          `the guest image needs at least ${+min[1] * 64} KiB of memory, more than the ` +
            `guest's ${pages * 64} KiB (RAM and device pages): give more memory (-m)`,
        );
      }
      if (/memory/i.test(msg)) {
        throw new ImageError(
          `guest image needs more memory than ${bytes} bytes: ${printable(msg, 300)}`,
        );
      }
      throw new ImageError(`cannot instantiate guest image: ${printable(msg, 300)}`);
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
      this.#resumed = nowMs();
      if (!this.#started) {
        this.#started = true;
        const start = promising(this.#instance.exports.start as () => unknown);
        start().then(
          () =>
            this.#port!.kill(
              this.#slot.thrown === undefined
                ? "guest returned from start()"
                : hostReason(this.#slot.thrown),
            ),
          (e: unknown) => {
            if (!(e instanceof GuestExit)) this.#port!.kill(faultReason(e, this.#slot.thrown));
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

  /** The Host blocked inside event() while the guest was halted: its run time starts again. */
  haltedInPlace(now: number = nowMs()): void {
    this.#resumed = now;
  }

  close(): void {
    this.#closed = true;
    const r = this.#resume;
    this.#resume = undefined;
    r?.();
  }
}
