/**
 * lguest for Deno: run lguest (Linux 2.6.23) paravirtual guests from
 * programs and tests.
 *
 * - {@link runGuest}: run a guest to its end → `{ code, reason, output }`.
 * - {@link startGuest}: an interactive guest: {@link GuestHandle.write},
 *   {@link GuestHandle.expect}, {@link GuestHandle.stop}, `await using`.
 * - {@link startLab}: several guests in one host, from the object form of
 *   `lguest run --config FILE.json`.
 *
 * Importing this module registers the built-in devices (console, block,
 * net). Bad input throws the same one-line errors the CLI prints, typed:
 * {@link UsageError} (options, values, files) and {@link ImageError} (the
 * image). Running a guest needs `--allow-read --allow-write --allow-ffi`
 * (disks, taps and the terminal go through libc), plus `--allow-env` and
 * `--allow-run` only for taps; nothing is fetched over the network.
 *
 * The building blocks (the Host, `/dev/lguest` as an object, the engines,
 * the device registry and device classes, the ABI tables) are in
 * `./core.ts`.
 *
 * @example Run a guest to its end
 * ```ts
 * import { runGuest } from "@lguest/deno";
 *
 * const { code, output } = await runGuest({ image: "hello", memory: "16M" });
 * console.log(code, output); // 0 "Hello from an lguest guest! I have 16 MiB of RAM.\n"
 * ```
 *
 * @module
 */

export {
  type BlockOptions,
  ExpectError,
  type ExpectOptions,
  type GuestHandle,
  type GuestOptions,
  type Lab,
  type LabConfig,
  type LabGuestConfig,
  type LabOptions,
  type NetOptions,
  runGuest,
  type RunResult,
  startGuest,
  startLab,
} from "./launcher/api.ts";
export { UsageError } from "./devices/registry.ts";
export { ImageError } from "./engines/wasm.ts";
export { EXIT } from "./launcher/exit.ts";
export { type BuiltinGuest, builtinGuests } from "./launcher/images.ts";
export { type ManifestEntry } from "./guests/images/index.ts";
export { VERSION } from "./version.ts";
