/**
 * What the wasm engine's start-up path needs of the image checks without
 * loading them: the error class and the fuel interval. The checks
 * themselves (`wasm_profile.ts`, `wasm_fuel.ts`) are loaded only for an
 * image that was not checked and instrumented at build time (a user's
 * image; built-in guests are, by `deno task guests`).
 *
 * @module
 */

/** A user-facing problem with an image (bad file, outside the profile, …). */
export class ImageError extends Error {
  /** Always "ImageError". */
  override name = "ImageError";
}

/** Units of fuel (a unit: a loop iteration or call, per 64 bytes of code or of bulk memory) between two looks (`wasm_fuel.ts`). */
export const FUEL = 100_000;

/**
 * The name the instrumented module exports its fuel counter by (`$fuel`, a
 * mutable i32 global; a guest image exports nothing but `start`, the
 * profile): after a look that came late the engine refills it with less
 * than FUEL (`wasm.ts`), so code whose units are slow looks more often.
 */
export const FUEL_EXPORT = "lguest.fuel";
