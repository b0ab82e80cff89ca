/**
 * Launcher: finding guest images, built-in or on disk.
 *
 * Built-in images are in the module graph (contract 7): `deno task guests`
 * writes `guests/images/index.ts` (the manifest and one loader per image
 * file) and one base64 module per image, so they travel with the program
 * whether it is run from a checkout, an HTTP URL, a bundle or a compiled
 * binary, and no file is read beside the module. A run decodes only the
 * image it runs. A built-in wasm image is run as the build checked and
 * instrumented it ({@link loadReady}); {@link loadImage} gives the image
 * as built (tests, tools).
 *
 * @module
 */

import { UsageError } from "../devices/registry.ts";
import { FILES, MANIFEST, type ManifestEntry, READY } from "../guests/images/index.ts";
import type { FuelCounts } from "../engines/wasm_fuel.ts";
import { printable } from "../sys/text.ts";
import { readInputFile } from "./input_file.ts";
import { meant } from "./args.ts";

/** One built-in guest (an entry of `guests/images/manifest.json`). */
export type BuiltinGuest = ManifestEntry;

/** Every built-in guest (test guests included when `all`). */
export function builtinGuests(all = false): Promise<BuiltinGuest[]> {
  return Promise.resolve(all ? [...MANIFEST] : MANIFEST.filter((g) => !g.test));
}

/** The bytes of a built-in image file (`hello.wasm`), or null if there is none. */
export async function builtinFile(file: string): Promise<Uint8Array | null> {
  const load = Object.hasOwn(FILES, file) ? FILES[file] : undefined;
  if (!load) return null;
  let mod: Embedded;
  try {
    mod = await load();
  } catch {
    // `deno task bundle` leaves the test guests' modules out of dist/lguest.js.
    throw new UsageError(`built-in image ${file} is not in this build (a test guest?)`);
  }
  return await decode(mod);
}

/** What an embedding module holds: base64, of the brotli or gzip of the bytes if it says so. */
interface Embedded {
  BASE64: string;
  BROTLI?: boolean;
  GZIP?: boolean;
}

/** The bytes an embedding module holds. */
async function decode(mod: Embedded): Promise<Uint8Array> {
  const raw = Uint8Array.fromBase64(mod.BASE64);
  const format = mod.BROTLI ? "brotli" : mod.GZIP ? "gzip" : null;
  if (format === null) return raw;
  const stream = new Blob([raw]).stream()
    .pipeThrough(new DecompressionStream(format as CompressionFormat));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** A built-in wasm image as `deno task guests` checked and instrumented it. */
export interface ReadyImageFile {
  name: string;
  /** The instrumented image. */
  bytes: Uint8Array;
  /** Where its fuel checks are. */
  fuel: FuelCounts;
}

/**
 * The checked and instrumented wasm image of built-in guest `guest`, or
 * null when `guest` is no built-in guest (a path: {@link loadImage} and
 * the full checks) or its image has none.
 */
export async function loadReady(guest: string): Promise<ReadyImageFile | null> {
  const builtin = MANIFEST.find((g) => g.name === guest);
  const load = builtin && Object.hasOwn(READY, builtin.file) ? READY[builtin.file] : undefined;
  if (!load) return null;
  let mod: Awaited<ReturnType<typeof load>>;
  try {
    mod = await load();
  } catch {
    // `deno task bundle` leaves the test guests' modules out of dist/lguest.js.
    throw new UsageError(`built-in image ${builtin!.file} is not in this build (a test guest?)`);
  }
  return { name: guest, bytes: await decode(mod), fuel: mod.FUEL };
}

/**
 * Read a guest image by built-in name or path; user errors are one line.
 * A built-in guest's image is the one for `engine`: `file` (wasm32) or
 * `x86_64` (an ELF for the KVM engine) in its manifest entry.
 */
export async function loadImage(
  guest: string,
  engine: "wasm" | "kvm" = "wasm",
): Promise<{ name: string; bytes: Uint8Array }> {
  const builtin = MANIFEST.find((g) => g.name === guest);
  if (builtin && engine === "kvm") {
    const file = typeof builtin.x86_64 === "string" ? builtin.x86_64 : undefined;
    const bytes = file && await builtinFile(file);
    if (!bytes) {
      throw new UsageError(`guest '${guest}' has no x86-64 image: it runs with --engine wasm only`);
    }
    return { name: guest, bytes };
  }
  const bytes = builtin && await builtinFile(builtin.file);
  if (bytes) return { name: guest, bytes };
  const looksLikePath = guest.includes("/") || guest.includes(".");
  try {
    await Deno.lstat(guest);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound && !looksLikePath) {
      throw new UsageError(
        `unknown guest '${printable(guest, 100)}' (${
          meant(guest, MANIFEST.map((g) => g.name))
        }not a built-in guest, see 'lguest guests', nor a file)`,
      );
    }
  }
  // A regular file of at most the profile's image size, checked before it is read.
  const { LIMITS } = await import("../engines/wasm_profile.ts");
  const file = await readInputFile(guest, LIMITS.imageBytes, "guest image");
  return { name: guest.replace(/^.*\//, "").replace(/\.(wasm|elf)$/, ""), bytes: file };
}
