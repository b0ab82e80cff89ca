/**
 * lguest for Deno: the building blocks under `mod.ts`, for writing devices,
 * engines or tools.
 *
 * - `abi`: constants and i386 layouts of the lguest 2.6.23 ABI.
 * - `Host`, `LguestFile`: the hypervisor core, `/dev/lguest` as an object.
 * - `WasmCpu`, `compileImage`: the WebAssembly engine.
 * - `KvmCpu`, `parseX86Image`, `kvmUnavailable`: the KVM engine (x86-64
 *   guests under /dev/kvm; docs/guest-abi.md §18).
 * - `GuestRun`: the Launcher for one guest; `registerDevice`: the device
 *   registry; `ConsoleDevice`, `BlockDevice`: device classes.
 *
 * @module
 */

import "./devices/all.ts";

export * as abi from "./abi/mod.ts";
export * from "./host/mod.ts";
export type { GuestCpu, HypercallPort } from "./engines/engine.ts";
export { LG_EV_DONE, LG_EV_WAIT, LG_EVENT } from "./engines/engine.ts";
export { compileImage, ImageError, WasmCpu } from "./engines/wasm.ts";
export { KvmCpu, kvmUnavailable, parseX86Image, type X86Image } from "./engines/kvm.ts";
export { GuestRun, type GuestSpec, type Outcome, POWER_DOWN } from "./launcher/launcher.ts";
export { type Layout, planLayout } from "./launcher/layout.ts";
export {
  type Device,
  type DeviceContext,
  type DeviceEnv,
  type DeviceKind,
  deviceKinds,
  type FrameSink,
  type InputBuffer,
  registerDevice,
  UsageError,
} from "./devices/registry.ts";
export { type ConsoleBackend, ConsoleDevice, stdioBackend } from "./devices/console.ts";
export { BlockDevice, type BlockSpec, type BlockStats } from "./devices/block.ts";
export { VERSION } from "./version.ts";
