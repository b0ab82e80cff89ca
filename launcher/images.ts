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
import { files, MANIFEST, type ManifestEntry, READY } from "../guests/images/index.ts";
import type { FuelCounts } from "../engines/wasm_fuel.ts";
import { hostStackLine, isStackOverflow, printable } from "../sys/text.ts";
import { readInputFile } from "./input_file.ts";
import { meant } from "./args.ts";
import { permissionMessage } from "./exit.ts";

/** One built-in guest (an entry of `guests/images/manifest.json`). */
export type BuiltinGuest = ManifestEntry;

/** Every built-in guest (test guests included when `all`). */
export function builtinGuests(all = false): Promise<BuiltinGuest[]> {
  return Promise.resolve(all ? [...MANIFEST] : MANIFEST.filter((g) => !g.test));
}

/** The bytes of a built-in image file (`hello.wasm`), or null if there is none. */
export async function builtinFile(file: string): Promise<Uint8Array | null> {
  const table = files();
  const load = Object.hasOwn(table, file) ? table[file] : undefined;
  if (!load) return null;
  let mod: Embedded;
  try {
    mod = await load();
  } catch (e) {
    throw importFailed(file, `${file}.js`, e);
  }
  return await decode(mod, `${file}.js`);
}

/**
 * Why the module of built-in image `file` (`guests/images/MODULE`) did not
 * import, in one line: a permission it needs (a module imported through a
 * variable, as the test guests' are, is read with --allow-read), a module
 * that is not there (`deno task bundle` and `deno compile` leave the test
 * guests' and the as-built images' out, and there nothing beside the bundle
 * is imported: guests/images/index.ts `outside`; in a checkout, a deleted
 * file), or a damaged one (a truncated file: a syntax error).
 */
function importFailed(
  file: string,
  module: string,
  e: unknown,
  what = `built-in image ${file}`,
): UsageError {
  const where = `guests/images/${module}`;
  // guests/images/index.ts's `outside` imported nothing: the bundle, a compiled binary.
  if (e instanceof Error && e.name === "NotInBuild") return notInBuild(file);
  const testGuest = MANIFEST.some((g) => g.test && (g.file === file || g.x86_64 === file));
  // A bundle (this module is not launcher/images.ts there) has no test guest, whatever the error.
  if (testGuest && !import.meta.url.endsWith("/launcher/images.ts")) return notInBuild(file);
  const msg = e instanceof Error ? e.message : String(e);
  // A dynamic import without the permission throws a TypeError with the words of NotCapable.
  const perm = permissionMessage(
    /^Requires \w+ access/.test(msg) ? new Deno.errors.NotCapable(msg) : e,
  );
  if (perm !== null) return new UsageError(`${what}: its module ${where} ${perm}`);
  if (e instanceof TypeError && /^Module not found/.test(msg)) {
    if (testGuest) return notInBuild(file);
    // A large image's payload is a text module beside its module (guests/build.ts).
    const payload = /\/([\w.+-]+\.b64)"/.exec(msg)?.[1];
    return new UsageError(
      `${what}: its module ${where} is missing${
        payload ? ` its payload guests/images/${printable(payload)}` : ""
      } (a damaged checkout or build: 'deno task guests' writes it again)`,
    );
  }
  return damaged(what, module, e);
}

function notInBuild(file: string): UsageError {
  return new UsageError(`built-in image ${file} is not in this build (a test guest?)`);
}

/**
 * A module of `what` (`built-in image FILE`) that imported but does not hold its image whole;
 * `module` is its name in guests/images/ (the text module of its payload, if that is damaged).
 */
function damaged(what: string, module: string, e: unknown, part = "module"): UsageError {
  const why = printable((e instanceof Error ? e.message : String(e)).split("\n")[0], 100);
  // In a bundle (this module is not launcher/images.ts there) every module and payload is part of
  // the one file, which `deno task bundle` writes again.
  const bundle = !import.meta.url.endsWith("/launcher/images.ts");
  const where = bundle && !module.endsWith(" in this bundle)")
    ? `${module} (in this bundle)`
    : module;
  return new UsageError(
    `${what}: its ${part} guests/images/${printable(where)} is damaged (${why}): ` +
      `'deno task ${bundle ? "bundle" : "guests"}' writes it again`,
  );
}

/**
 * A payload of the bundle, 7 bits a character (`tools/pack.ts`, the last step of `deno task
 * bundle`, writes it in place of a text payload's base64): `text` holds the bytes 7 to every 8
 * characters (each character's low 7 bits, little-endian, the last group padded with zeros), a
 * string literal in the bundle (its value survives Deno's TypeScript emit, which drops
 * comments: a copy of the bundle with no extension or a `.ts` name); `length` is the bytes'
 * count. A byte of module text costs every start ~2 ns, whatever it is (docs/performance.md,
 * boot.first_byte): 8 characters for 7 bytes, where base64 takes 4 for 3.
 */
export interface Packed7 {
  text: string;
  length: number;
}

/** The wasm module of {@link unpack7} (its source: tools/pack.ts `UNPACK7_WAT`), made once. */
let unpack7Module: WebAssembly.Module | undefined;

/**
 * The bytes of a packed payload ({@link Packed7}); a payload that is not as `tools/pack.ts`
 * writes it (a character outside 7 bits, a count that does not match) throws. The unpacker is a
 * small WebAssembly module; where WebAssembly fails (no wasm: V8's `--jitless`; a V8 limit such as
 * `--wasm-max-mem-pages`), it is the same loop in JavaScript: the payload is not damaged, and a
 * guest's own module meets the limit as in a checkout.
 */
export function unpack7(packed: Packed7): Uint8Array {
  const { text, length } = packed;
  if (typeof text !== "string" || !Number.isSafeInteger(length) || length < 0) {
    throw new Error("not a packed payload");
  }
  const chars = text.length;
  if (chars !== Math.ceil(length / 7) * 8) {
    throw new Error(`${chars} characters packed, ${length} bytes expected`);
  }
  // The characters as bytes, 8 spare at the end (the unpacker's last store writes 8).
  let memory: WebAssembly.Memory | null = null;
  let unpack: ((chars: number) => void) | null = null;
  if (typeof WebAssembly === "object") {
    try {
      memory = new WebAssembly.Memory({ initial: Math.ceil((chars + 8) / 65536) });
      unpack7Module ??= new WebAssembly.Module(
        Uint8Array.fromBase64(
          "AGFzbQEAAAABBQFgAX8AAggBAW0BbQIAAQMCAQAHBQEBdQAACo4BAYsBAgJ/AX4CQANAIAEgAE8NASABKQMA" +
            "IQMgA0L/gPyD8I/AP4MgA0KA/oH4h+CfgP8Ag0IBiIQhAyADQv//gIDw/w+DIANCgID8/4OAwP8/g0ICiIQh" +
            "AyADQv////8AgyADQoCAgIDw////D4NCBIiEIQMgAiADNwMAIAFBCGohASACQQdqIQIMAAsLCw==",
        ),
      );
      const instance = new WebAssembly.Instance(unpack7Module, { m: { m: memory } });
      unpack = instance.exports.u as (chars: number) => void;
    } catch (e) {
      if (isStackOverflow(e)) throw e;
      memory = null;
    }
  }
  const bytes = memory ? new Uint8Array(memory.buffer, 0, chars + 8) : new Uint8Array(chars + 8);
  const { read, written } = new TextEncoder().encodeInto(text, bytes);
  if (read !== chars || written !== chars) throw new Error("a character outside 7 bits");
  if (memory && unpack) unpack(chars);
  else unpack7Js(bytes, chars);
  return bytes.subarray(0, length);
}

/**
 * {@link unpack7}'s unpacker in JavaScript, in place (where there is no WebAssembly: V8's
 * `--jitless`; ~5 times slower cold): each 8 characters, two little-endian words of 4, give
 * 7 bytes.
 */
export function unpack7Js(bytes: Uint8Array, chars: number): void {
  const words = new Uint32Array(bytes.buffer, bytes.byteOffset, chars >>> 2);
  for (let i = 0, o = 0; i < words.length; i += 2, o += 7) {
    let a = words[i], b = words[i + 1];
    a = (a & 0x7f007f) | ((a & 0x7f007f00) >>> 1);
    a = (a & 0x3fff) | ((a & 0x3fff0000) >>> 2);
    b = (b & 0x7f007f) | ((b & 0x7f007f00) >>> 1);
    b = (b & 0x3fff) | ((b & 0x3fff0000) >>> 2);
    bytes[o] = a;
    bytes[o + 1] = a >>> 8;
    bytes[o + 2] = a >>> 16;
    bytes[o + 3] = (a >>> 24) | (b << 4);
    bytes[o + 4] = b >>> 4;
    bytes[o + 5] = b >>> 12;
    bytes[o + 6] = b >>> 20;
  }
}

/**
 * What an embedding module holds: base64, of the brotli of the bytes if it says so, their
 * length and SHA-256 (base64) as the build computed them, and the text module the base64
 * comes from, if any (guests/build.ts `payloadCheck`).
 */
export interface Embedded {
  BASE64: string | Packed7;
  BROTLI?: boolean;
  SIZE?: number;
  SHA256?: string;
  PAYLOAD?: string;
}

// Written `(function f() {...}).bind(null)`: compiled with the module, not again at every
// start on its first call (Deno's emit keeps these parentheses; docs/performance.md, boot).
/**
 * The bytes an embedding module holds; a module that does not hold them
 * whole (bad base64, a cut or damaged compressed stream) is one line
 * naming it (`module`, its name in guests/images/).
 */
export const decode = (async function decode(
  mod: Embedded,
  module: string,
  what = `built-in image ${module.replace(/(\.ready)?\.(js|ts)$/, "")}`,
): Promise<Uint8Array> {
  const { bytes, verified } = await decodeUnverified(mod, module, what);
  if (verified) await verified;
  return bytes;
}).bind(null);

/**
 * {@link decode}, its digest checked apart: `verified` rejects (the same one line) when the
 * bytes are not the build's (null: an inline payload, whose length alone is checked). A run overlaps that check with the image's compile and runs no
 * guest code before both are done (launcher/runner.ts); SHA-256 runs on Deno's blocking pool.
 */
const decodeUnverified = (async function decodeUnverified(
  mod: Embedded,
  module: string,
  what: string,
): Promise<{ bytes: Uint8Array; verified: Promise<void> | null }> {
  // Which file holds the payload: the text module beside the module (a large one), or itself.
  const text = typeof mod.PAYLOAD === "string" && /^[\w.+-]+\.b64$/.test(mod.PAYLOAD);
  // A bundle's text payload is packed 7 bits a character (tools/pack.ts).
  const packed = typeof mod.BASE64 === "object" && mod.BASE64 !== null;
  const [where, part] = text
    ? [packed ? `${mod.PAYLOAD!} (packed in this bundle)` : mod.PAYLOAD!, "payload"]
    : [module, "module"];
  let bytes: Uint8Array;
  try {
    if (typeof mod.BASE64 !== "string" && !packed) throw new Error("no BASE64 string");
    if (typeof mod.SIZE !== "number" || typeof mod.SHA256 !== "string") {
      throw damaged(what, module, new Error("no SIZE and SHA256 of its payload"));
    }
    const raw = typeof mod.BASE64 === "string"
      ? Uint8Array.fromBase64(mod.BASE64)
      : unpack7(mod.BASE64) as Uint8Array<ArrayBuffer>;
    if (!mod.BROTLI) {
      bytes = raw;
    } else {
      const stream = new Blob([raw]).stream()
        .pipeThrough(new DecompressionStream("brotli"));
      bytes = new Uint8Array(await new Response(stream).arrayBuffer());
    }
  } catch (e) {
    // A host whose own stack ran out (V8 --stack-size) failed here, not the payload.
    if (isStackOverflow(e)) throw new UsageError(hostStackLine());
    throw e instanceof UsageError ? e : damaged(what, where, e, part);
  }
  // Brotli has no checksum and base64 none either: one flipped character can decode to a valid
  // image that is not the one the build checked and instrumented. The build's length and
  // digest say it is (docs/security.md, built-in images).
  if (bytes.length !== mod.SIZE) {
    throw damaged(
      what,
      where,
      new Error(`${bytes.length} bytes decoded, the build wrote ${mod.SIZE}`),
      part,
    );
  }
  // The digest is checked for a payload that is a data file beside its module (FILE.b64), not
  // for one inline in its module: that is code like every other module, which nothing checks
  // either, and a process's first digest costs 0.3-0.7 ms of hello's first byte
  // (docs/security.md, built-in images).
  if (!text) return { bytes, verified: null };
  const verified = crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>).then(
    (digest) => {
      if (new Uint8Array(digest).toBase64() !== mod.SHA256) {
        throw damaged(what, where, new Error("its SHA-256 is not the one the build wrote"), part);
      }
    },
  );
  verified.catch(() => {}); // its caller awaits it; a run that failed before then drops it
  return { bytes, verified };
}).bind(null);

/** A built-in wasm image as `deno task guests` checked and instrumented it. */
export interface ReadyImageFile {
  name: string;
  /** The instrumented image: no guest code may run before `verified` resolves. */
  bytes: Uint8Array;
  /** Resolves when `bytes` are the build's (their length is checked already; null: nothing more). */
  verified: Promise<void> | null;
  /** Where its fuel checks are. */
  fuel: FuelCounts;
}

/**
 * `guest` names a built-in guest: the run takes its image from the module
 * graph, never from a file of that name (a built-in name wins over a file).
 */
export const isBuiltinName = (function isBuiltinName(guest: string): boolean {
  return MANIFEST.some((g) => g.name === guest);
}).bind(null);

/**
 * The checked and instrumented wasm image of built-in guest `guest`, or
 * null when `guest` is no built-in guest (a path: {@link loadImage} and
 * the full checks) or its image has none.
 */
export const loadReady = (async function loadReady(guest: string): Promise<ReadyImageFile | null> {
  const builtin = MANIFEST.find((g) => g.name === guest);
  const load = builtin && Object.hasOwn(READY, builtin.file) ? READY[builtin.file] : undefined;
  if (!load) return null;
  let mod: Awaited<ReturnType<typeof load>>;
  const module = `${builtin!.file}.ready.js`;
  try {
    mod = await load();
  } catch (e) {
    throw importFailed(builtin!.file, module, e);
  }
  const fuel = mod.FUEL as Partial<Record<keyof FuelCounts, unknown>> | null | undefined;
  const count = (n: unknown) => typeof n === "number" && Number.isSafeInteger(n) && n >= 0;
  if (
    typeof fuel !== "object" || fuel === null ||
    !count(fuel.loops) || !count(fuel.entries) || !count(fuel.bulk) || !count(fuel.resumes)
  ) {
    throw damaged(`built-in image ${builtin!.file}`, module, new Error("no FUEL counts"));
  }
  const { bytes, verified } = await decodeUnverified(
    mod,
    module,
    `built-in image ${builtin!.file}`,
  );
  return { name: guest, bytes, verified, fuel: fuel as FuelCounts };
}).bind(null);

/**
 * `lguest cc`'s library (guests/images/libposix.a.ts): the layer's headers, and a
 * function decoding libposix.a. A module or payload that is missing or damaged is one
 * line naming it (a UsageError), as an image's is.
 */
export async function posixLibrary(): Promise<
  { headers: Readonly<Record<string, string>>; archive: () => Promise<Uint8Array> }
> {
  const what = "cc: libposix.a";
  let mod: Embedded & { HEADERS?: unknown };
  try {
    mod = await import("../guests/images/libposix.a.ts");
  } catch (e) {
    throw importFailed("libposix.a", "libposix.a.ts", e, what);
  }
  const headers = mod.HEADERS;
  if (
    typeof headers !== "object" || headers === null ||
    !Object.values(headers).every((h) => typeof h === "string")
  ) {
    throw damaged(what, "libposix.a.ts", new Error("no HEADERS"));
  }
  return {
    headers: headers as Record<string, string>,
    archive: () => decode(mod, "libposix.a.ts", what),
  };
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
  const { largeKind } = await import("../engines/image_kind.ts");
  const file = await readInputFile(guest, LIMITS.imageBytes, "guest image", largeKind);
  return { name: guest.replace(/^.*\//, "").replace(/\.(wasm|elf)$/, ""), bytes: file };
}
