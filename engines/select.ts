/**
 * Choosing an engine: `--engine wasm|kvm`, `"engine"` in a config file,
 * the API's `engine` option. Host and devices never know which one runs a
 * guest; only the Launcher's image loading and `makeCpu` differ.
 *
 * @module
 */

import { UsageError } from "../devices/registry.ts";
import type { GuestCpu } from "./engine.ts";
import { compileImage, compileReady, describePreemption, WasmCpu } from "./wasm.ts";
import type { FuelCounts } from "./wasm_fuel.ts";
import { hasWasm, NO_WASM } from "./jspi.ts";

/** The KVM engine, loaded only when a guest asks for it (start-up of wasm runs). */
function kvm(): Promise<typeof import("./kvm.ts")> {
  return import("./kvm.ts");
}

/** The engines, default first. */
export const ENGINE_NAMES = ["wasm", "kvm"] as const;
/** An engine's name. */
export type EngineName = typeof ENGINE_NAMES[number];

// Written `(function f() {...}).bind(null)`: compiled with the module, not again at every
// start on its first call (Deno's emit keeps these parentheses; docs/performance.md, boot).
/** Check an engine name (a one-line UsageError otherwise). */
export const parseEngine = (function parseEngine(text: string): EngineName {
  if ((ENGINE_NAMES as readonly string[]).includes(text)) return text as EngineName;
  throw new UsageError(`unknown engine '${text}' (use ${ENGINE_NAMES.join(" or ")})`);
}).bind(null);

/**
 * Why `engine` cannot run on this machine (one line, for the user), or
 * null. The wasm engine can wherever V8 has WebAssembly.
 */
export const engineUnavailable = (async function engineUnavailable(
  engine: EngineName,
): Promise<string | null> {
  // A V8 without WebAssembly (--jitless): one line where the engine is chosen (API, --config).
  if (engine === "wasm") return hasWasm ? null : NO_WASM;
  const why = (await kvm()).kvmUnavailable();
  return why === null
    ? null
    : `--engine kvm: ${why}; the default engine (wasm) needs nothing, leave --engine out`;
}).bind(null);

/** An image made ready for one engine. */
export interface ReadyImage {
  /** One line for --verbose. */
  describe: string;
  /** Make a guest: `top` guest-physical bytes, `mem` of them RAM. */
  makeCpu(top: number, mem: number): GuestCpu;
}

/** Check and prepare an image's bytes for `engine` (ImageError on bad input). */
export async function prepareImage(
  engine: EngineName,
  bytes: Uint8Array,
  name: string,
): Promise<ReadyImage> {
  if (engine === "kvm") {
    const why = await engineUnavailable(engine);
    if (why !== null) throw new UsageError(why);
    const { KvmCpu, kvmFlavour, parseX86Image } = await kvm();
    const image = parseX86Image(bytes, name);
    return {
      describe:
        `kvm engine (${kvmFlavour()}): x86-64 image, ${image.segments.length} segment(s), ` +
        `entry 0x${image.entry.toString(16)}; preempted by a timer signal every time slice`,
      makeCpu: (top, mem) => new KvmCpu(image, top, mem),
    };
  }
  return wasmImage(await compileImage(bytes, name));
}

/**
 * A built-in wasm image that the build checked and instrumented
 * (`launcher/images.ts` loadReady): compiled as it is (synchronously:
 * {@link compileReady}). Async all the same: a refused image is a
 * rejection, which runner.ts's prepare holds until the payload's digest is
 * known (a damaged payload is said as such).
 */
// deno-lint-ignore require-await
export const prepareReady = (async function prepareReady(
  bytes: Uint8Array,
  fuel: FuelCounts,
  name: string,
): Promise<ReadyImage> {
  return wasmImage(compileReady(bytes, fuel, name));
}).bind(null);

const wasmImage = (function wasmImage(mod: WebAssembly.Module): ReadyImage {
  return {
    describe: describePreemption(mod),
    makeCpu: (top) => new WasmCpu(mod, top),
  };
}).bind(null);
