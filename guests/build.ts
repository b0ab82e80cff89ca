/**
 * guests/build.ts: build every guest image from the C sources.
 *
 *   deno run --allow-read --allow-write --allow-run guests/build.ts [--check]
 *
 * - `guests/*.c`      -> `guests/images/NAME.wasm` (built-in guests)
 * - `guests/test/*.c` -> `guests/images/test-NAME.wasm` (host test guests)
 * - the same sources -> `guests/images/NAME.x86_64.elf`, x86-64 images for
 *   the KVM engine (static ELF64 at 1 MiB, `kit/arch/x86_64/image.ld`),
 *   except for a source whose header says `@arch: wasm32` (it uses the
 *   wasm imports directly).
 * - `guests/images/manifest.json` lists them all: [{name, file, x86_64?,
 *   description, test?}]. The description is the `@guest:` line in each
 *   source's header.
 *
 * The kit's portable files (`kit/*.c`) go into an archive, so a guest links
 * only the kit files it uses (a driver whose file it does not use stays out,
 * and adding a driver leaves every other image byte for byte the same); the
 * arch files (`kit/arch/wasm32/*.c`: entry point, hypercalls) are linked
 * whole. Then the all-zero data segments (.bss) are dropped, since guest RAM
 * starts zeroed.
 * Builds are byte-reproducible: no debug info, relative paths only, fixed
 * flags. See docs/guest-abi.md §12.
 *
 * `--check` rebuilds into a temporary directory and exits 1, listing the
 * images that differ from the committed ones. A missing clang or wasm-ld is
 * one line on stderr and exit code 2. Tools: clang, wasm-ld (lld), llvm-ar
 * (llvm).
 */

import { type FuelCounts, instrumentFuel } from "../engines/wasm_fuel.ts";
import { checkProfile, ImageError } from "../engines/wasm_profile.ts";
import { brotli, payloadCheck } from "./payload_check.ts";

const GUESTS_DIR = decodeURIComponent(new URL(".", import.meta.url).pathname)
  .replace(/\/$/, "");
const ARCH = "wasm32";

/** Compiler flags; sources and include paths are relative to guests/. */
export const CFLAGS = [
  "--target=wasm32",
  "-std=gnu11",
  "-O2",
  "-ffreestanding",
  "-nostdlib",
  "-Wall",
  "-Wextra",
  "-Werror",
  "-Iinclude",
  "-Ikit",
];

/** Linker flags (wasm-ld). The host creates the memory; image at 1 MiB. */
export const LDFLAGS = [
  "--no-entry",
  "--import-memory",
  "--global-base=1048576",
  "-z",
  "stack-size=65536",
  "--export=start",
];

/**
 * The x86-64 build (KVM engine): freestanding, static, no red zone (there
 * is no interrupt stack switch at CPL3, but the kit's contract is the
 * kernel's), general registers only (the host does not enable SSE state).
 */
export const CFLAGS_X86_64 = [
  "--target=x86_64-unknown-none-elf",
  "-std=gnu11",
  "-O2",
  "-ffreestanding",
  "-nostdlib",
  "-fno-pic",
  "-fno-pie",
  "-mno-red-zone",
  "-mgeneral-regs-only",
  "-fno-stack-protector",
  "-fno-asynchronous-unwind-tables",
  "-fno-unwind-tables",
  "-Wall",
  "-Wextra",
  "-Werror",
  "-Iinclude",
  "-Ikit",
];

/** Linker flags (ld.lld): static ELF64 at 1 MiB, no page padding, stripped. */
export const LDFLAGS_X86_64 = [
  "-T",
  "kit/arch/x86_64/image.ld",
  "-static",
  "-nostdlib",
  "--build-id=none",
  "-z",
  "norelro",
  "-n",
  "-s",
];

interface Guest {
  name: string; // manifest name, e.g. "hello" or "test-crash"
  source: string; // relative to guests/
  description: string;
  test: boolean;
  /** Built for x86-64 too (no `@arch: wasm32` line). */
  x86: boolean;
}

interface ManifestEntry {
  name: string;
  file: string;
  x86_64?: string;
  description: string;
  test?: boolean;
}

class BuildError extends Error {}

interface Tools {
  clang: string;
  wasmLd: string;
  ar: string;
  ld: string;
}

async function findTool(candidates: string[]): Promise<string | null> {
  for (const tool of candidates) {
    try {
      const out = await new Deno.Command(tool, {
        args: ["--version"],
        stdout: "null",
        stderr: "null",
      }).output();
      if (out.success) return tool;
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }
  return null;
}

async function listC(dir: string): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(`${GUESTS_DIR}/${dir}`)) {
      if (e.isFile && e.name.endsWith(".c")) names.push(e.name);
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  return names.sort().map((n) => (dir === "." ? n : `${dir}/${n}`));
}

async function describe(source: string): Promise<{ description: string; x86: boolean }> {
  const text = await Deno.readTextFile(`${GUESTS_DIR}/${source}`);
  const m = text.match(/@guest:\s*(.+?)\s*$/m);
  if (!m) throw new BuildError(`${source}: no "@guest: description" line`);
  return { description: m[1], x86: !/@arch:\s*wasm32\b/.test(text) };
}

async function findGuests(): Promise<Guest[]> {
  const guests: Guest[] = [];
  for (const source of await listC(".")) {
    const name = source.replace(/\.c$/, "");
    guests.push({ name, source, ...await describe(source), test: false });
  }
  for (const source of await listC("test")) {
    const name = "test-" + source.replace(/^test\//, "").replace(/\.c$/, "");
    guests.push({ name, source, ...await describe(source), test: true });
  }
  return guests;
}

async function run(cmd: string, args: string[]): Promise<void> {
  const out = await new Deno.Command(cmd, {
    args,
    cwd: GUESTS_DIR,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) +
    new TextDecoder().decode(out.stderr);
  if (!out.success) {
    throw new BuildError(`${cmd} ${args.join(" ")}\n${text.trimEnd()}`);
  }
  if (text.trim()) console.error(text.trimEnd());
}

/** Build all images and the manifest into outDir; returns the file names. */
async function build(
  tools: Tools,
  outDir: string,
): Promise<string[]> {
  const guests = await findGuests();
  const kit = await listC("kit");
  const arch = await listC(`kit/arch/${ARCH}`);
  const objDir = await Deno.makeTempDir({ prefix: "lguest-guests-obj-" });
  try {
    const obj = (src: string) => `${objDir}/${src.replace(/\//g, "__")}.o`;
    const sources = [...kit, ...arch, ...guests.map((g) => g.source)];
    await Promise.all(
      sources.map((src) => run(tools.clang, [...CFLAGS, "-c", src, "-o", obj(src)])),
    );
    // D: deterministic (no dates, uids); s: a symbol index for wasm-ld.
    const archive = `${objDir}/libkit-${ARCH}.a`;
    await run(tools.ar, ["rcsD", archive, ...kit.map(obj)]);
    const x86 = await buildX86Objects(tools, objDir, kit, guests);

    await Deno.mkdir(outDir, { recursive: true });
    const files: string[] = [];
    const manifest: ManifestEntry[] = [];
    for (const g of guests) {
      const file = `${g.name}.wasm`;
      await run(tools.wasmLd, [
        ...LDFLAGS,
        "-o",
        `${outDir}/${file}`,
        obj(g.source),
        ...arch.map(obj),
        archive,
      ]);
      const image = `${outDir}/${file}`;
      await Deno.writeFile(image, dropZeroSegments(await Deno.readFile(image)));
      await Deno.chmod(image, 0o644); // wasm-ld marks its output executable
      files.push(file);
      const x86File = g.x86 ? `${g.name}.x86_64.elf` : undefined;
      if (x86File) {
        await run(tools.ld, [
          ...LDFLAGS_X86_64,
          "-o",
          `${outDir}/${x86File}`,
          x86.obj(g.source),
          ...x86.arch,
          x86.archive,
        ]);
        await Deno.chmod(`${outDir}/${x86File}`, 0o644);
        files.push(x86File);
      }
      manifest.push({
        name: g.name,
        file,
        ...(x86File ? { x86_64: x86File } : {}),
        description: g.description,
        ...(g.test ? { test: true } : {}),
      });
    }
    // The POSIX layer and the guests built on it (guests/posix/build.ts;
    // a copy of guests/ without it builds the kit guests only).
    const hasPosix = await readOrNull(`${GUESTS_DIR}/posix/build.ts`) !== null;
    const { buildPosix, writePosixLibModule } = hasPosix
      ? await import("./posix/build.ts")
      : { buildPosix: null, writePosixLibModule: null };
    const posix = buildPosix === null ? { images: [], files: [] } : await buildPosix(
      { ...tools, run: (cmd, args) => run(cmd, args) },
      GUESTS_DIR,
      kit,
      arch,
      CFLAGS,
      objDir,
      outDir,
    );
    for (const p of posix.images) {
      const image = `${outDir}/${p.file}`;
      await Deno.writeFile(image, dropZeroSegments(await Deno.readFile(image)));
      manifest.push(p);
    }
    files.push(...posix.files);
    if (writePosixLibModule) files.push(...await writePosixLibModule(outDir));
    await Deno.writeTextFile(
      `${outDir}/manifest.json`,
      JSON.stringify(manifest, null, 2) + "\n",
    );
    files.push("manifest.json");
    files.push(...await writeEmbedding(outDir, manifest));
    return files;
  } finally {
    await Deno.remove(objDir, { recursive: true });
  }
}

/** Compile the kit and the guests for x86-64; the kit's portable part as an archive. */
async function buildX86Objects(
  tools: Tools,
  objDir: string,
  kit: string[],
  guests: Guest[],
): Promise<{ obj: (src: string) => string; arch: string[]; archive: string }> {
  const arch = await listC("kit/arch/x86_64");
  const obj = (src: string) => `${objDir}/x86_64__${src.replace(/\//g, "__")}.o`;
  const sources = [...kit, ...arch, ...guests.filter((g) => g.x86).map((g) => g.source)];
  await Promise.all(
    sources.map((src) => run(tools.clang, [...CFLAGS_X86_64, "-c", src, "-o", obj(src)])),
  );
  const archive = `${objDir}/libkit-x86_64.a`;
  await run(tools.ar, ["rcsD", archive, ...kit.map(obj)]);
  return { obj, arch: arch.map(obj), archive };
}

/**
 * The image bytes an embedding module holds, or null if `text` is not one
 * or does not hold them whole (bad base64, a cut or damaged compressed
 * stream: `--check` lists such a module as differing, no stack trace).
 * `--check` compares these when a module's text differs: another Deno's
 * brotli may encode the same bytes differently. A module whose payload is
 * a text module beside it ({@link TEXT_PAYLOAD_ABOVE}) needs `beside`, which
 * reads that file (null: not there).
 */
export async function embeddedPayload(
  text: string,
  beside?: (name: string) => Promise<string | null>,
): Promise<Uint8Array | null> {
  let base64 = /^export const BASE64(?:: string)? =\n {2}"([A-Za-z0-9+/=]*)";$/m.exec(text)?.[1];
  if (base64 === undefined) {
    const from = TEXT_PAYLOAD.exec(text)?.[1];
    const read = from === undefined || !beside ? null : await beside(from);
    if (read === null || !/^[A-Za-z0-9+/=]*$/.test(read)) return null;
    base64 = read;
  }
  const format = /^export const BROTLI = true;$/m.test(text)
    ? "brotli"
    : /^export const GZIP = true;$/m.test(text)
    ? "gzip"
    : null;
  return await decodePayload(base64, format);
}

/** The bytes of a payload in base64 (of its brotli or gzip), or null if damaged. */
async function decodePayload(base64: string, format: "brotli" | "gzip" | null) {
  try {
    const raw = Uint8Array.fromBase64(base64);
    if (format === null) return raw;
    const stream = new Blob([raw]).stream()
      .pipeThrough(new DecompressionStream(format as CompressionFormat));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  } catch {
    return null;
  }
}

/** An image module's line that takes its payload from a text module beside it. */
const TEXT_PAYLOAD =
  /^export \{ default as BASE64 \} from "\.\/([\w.+-]+\.b64)" with \{ type: "text" \};$/m;

/**
 * A compressed payload longer than this (in base64) is a text module beside
 * its image module (`FILE.b64`, `FILE.ready.b64`), which re-exports it as
 * BASE64. Deno reads every JavaScript module of the module graph before the
 * program's first statement (~2 ns a byte: sqlite3's 0.58 MB module alone
 * ~410 page faults, ~1.2 ms), dynamic imports with a literal specifier
 * included, but a text import (`with { type: "text" }`) only when the module
 * importing it runs; it needs no permission either (boot.first_byte,
 * docs/performance.md). hello's checked image stays inline: it is read at
 * every run, and a second module costs more than its 15 KB.
 */
const TEXT_PAYLOAD_ABOVE = 16 << 10;

/**
 * Put the images into the module graph (contract 7): one module per image
 * file, `NAME.wasm.js`, holding its bytes brotli-compressed in base64, and `index.ts` with
 * the manifest and, per file, a loader that imports its module with a
 * static specifier. A run imports the small index and only the image it
 * runs, and the same imports work from a file, an HTTP URL, a bundle and a
 * compiled binary (launcher/images.ts). Each wasm image that passes the
 * guest-image profile also gets `NAME.wasm.ready.js`: the image checked and
 * fuel-instrumented as `compileImage` would at run time (the counts too),
 * which a run of a built-in guest compiles as it is. Every file the manifest names is
 * embedded, whatever its kind (a `file` field, or any other string field
 * naming a file of the directory, e.g. an image for another engine).
 * Returns the names of the files written.
 */
export async function writeEmbedding(dir: string, manifest: object[]): Promise<string[]> {
  const names = new Set<string>();
  const isFile = async (path: string) => {
    try {
      return (await Deno.stat(path)).isFile;
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return false;
      throw e;
    }
  };
  // Every string in an entry (nested ones too) that names a file under dir.
  const strings = (v: unknown): string[] =>
    typeof v === "string"
      ? [v]
      : v !== null && typeof v === "object"
      ? Object.values(v).flatMap(strings)
      : [];
  const testFiles = new Set<string>();
  for (const entry of manifest) {
    for (const v of strings(entry)) {
      const plausible = /^[\w.+-]+(\/[\w.+-]+)*$/.test(v) && !v.split("/").includes("..") &&
        v !== "manifest.json" && v !== "index.ts" && !/\.(ts|js)$/.test(v);
      if (!plausible || !await isFile(`${dir}/${v}`)) continue;
      names.add(v);
      if ((entry as { test?: unknown }).test === true) testFiles.add(v);
    }
  }
  const files = [...names].sort();
  const written: string[] = [];
  const header = "// Generated by `deno task guests` (guests/build.ts): do not edit.\n";
  // The image modules are JavaScript, their types in two shared declaration files: Deno runs a
  // TypeScript module as an emitted copy with an inline source map holding the source again
  // (hello's checked image: 15 KB of module, 35 KB emitted; sqlite3's 0.55 MB, ~1.3 MB), and
  // every byte of module text costs start-up time (boot.first_byte, docs/performance.md).
  await Deno.writeTextFile(
    `${dir}/${IMAGE_TYPES}`,
    `${header}/** The types of an image module (\`FILE.js\`). */\n` +
      PAYLOAD_TYPES +
      `/** The image, base64 (of its brotli if BROTLI). */\n` +
      `export declare const BASE64: string;\n` +
      `/** Set: BASE64 holds the image's brotli. */\n` +
      `export declare const BROTLI: boolean | undefined;\n`,
  );
  written.push(IMAGE_TYPES);
  await Deno.writeTextFile(
    `${dir}/${READY_TYPES}`,
    `${header}/** The types of a checked image module (\`FILE.ready.js\`). */\n` +
      `/** Where the build put the image's fuel checks. */\n` +
      `export declare const FUEL: { loops: number; entries: number; bulk: number; resumes: number };\n` +
      PAYLOAD_TYPES +
      `/** The checked and instrumented image, base64 (of its brotli if BROTLI). */\n` +
      `export declare const BASE64: string;\n` +
      `/** Set: BASE64 holds the image's brotli. */\n` +
      `export declare const BROTLI: boolean | undefined;\n`,
  );
  written.push(READY_TYPES);
  /** The self-types line of a module at `file` (in a subfolder: the declarations are at the top). */
  const selfTypes = (file: string, types: string) =>
    `// @ts-self-types="${"../".repeat(file.split("/").length - 1) || "./"}${types}"\n`;
  /**
   * The payload lines of the image module `module` holding `bytes`: their length and digest
   * (checked when a run decodes them: {@link payloadCheck}), then the BASE64 line, or its
   * re-export of the text module written (PAYLOAD names it).
   */
  const payloadLine = async (
    module: string,
    bytes: Uint8Array,
    base64: string,
    compressed: boolean,
  ) => {
    const check = await payloadCheck(bytes);
    if (!compressed || base64.length <= TEXT_PAYLOAD_ABOVE) {
      return `${check}export const BASE64 =\n  "${base64}";\n`;
    }
    const text = module.replace(/\.js$/, ".b64");
    await Deno.writeTextFile(`${dir}/${text}`, base64);
    written.push(text);
    const name = text.slice(text.lastIndexOf("/") + 1);
    return `${check}export const PAYLOAD = "${name}";\n` +
      `export { default as BASE64 } from "./${name}" with { type: "text" };\n`;
  };
  const ready: string[] = [];
  for (const file of files) {
    const bytes = await Deno.readFile(`${dir}/${file}`);
    await Deno.writeTextFile(
      `${dir}/${file}.js`,
      `${header}${
        selfTypes(file, IMAGE_TYPES)
      }/** ${file}, ${bytes.length} bytes, brotli, base64. */\n` +
        `export const BROTLI = true;\n` +
        await payloadLine(`${file}.js`, bytes, brotli(bytes).toBase64(), true),
    );
    written.push(`${file}.js`);
    const fuel = file.endsWith(".wasm") ? readyImage(bytes) : undefined;
    if (fuel === undefined) continue;
    // A small image stays plain: a run decodes it without a DecompressionStream (boot time).
    const zip = fuel.bytes.length > READY_COMPRESS_ABOVE;
    await Deno.writeTextFile(
      `${dir}/${file}.ready.js`,
      `${header}${
        selfTypes(file, READY_TYPES)
      }/**\n * ${file} checked against the guest-image profile and instrumented for\n` +
        ` * preemption at build time (engines/wasm_profile.ts, engines/wasm_fuel.ts):\n` +
        ` * ${fuel.bytes.length} bytes, ${
          zip ? "brotli, " : ""
        }base64, and where its fuel checks are.\n */\n` +
        `export const FUEL = ` +
        `{ loops: ${fuel.loops}, entries: ${fuel.entries}, bulk: ${fuel.bulk}, ` +
        `resumes: ${fuel.resumes} };\n` +
        (zip ? `export const BROTLI = true;\n` : "") +
        await payloadLine(
          `${file}.ready.js`,
          fuel.bytes,
          (zip ? brotli(fuel.bytes) : fuel.bytes).toBase64(),
          zip,
        ),
    );
    written.push(`${file}.ready.js`);
    ready.push(file);
  }
  // What a run may need is a static import() (in the module graph: Deno loads it with the
  // program, `deno bundle` and `deno compile` include it). The test guests' modules and the
  // wasm images as built (a run uses the checked ones) are imported through a variable: kept
  // out of the graph, since Deno reads every module of it at start-up (boot.first_byte).
  const loader = (f: string, module: string) =>
    testFiles.has(f) || module.endsWith(".wasm.js") && ready.includes(f)
      ? `  ${JSON.stringify(f)}: () => outside(${JSON.stringify(`./${module}`)}),\n`
      : `  ${JSON.stringify(f)}: () => import(${JSON.stringify(`./${module}`)}),\n`;
  const loaders = files.map((f) => loader(f, `${f}.js`));
  const readyLoaders = ready.map((f) => loader(f, `${f}.ready.js`));
  await Deno.writeTextFile(
    `${dir}/index.ts`,
    `${header}/**
 * The built-in guest images in the module graph: the manifest, and per
 * image file a loader of its base64 module (imported only when used).
 *
 * @module
 */

/** One entry of manifest.json. */
export interface ManifestEntry {
  /** The guest's name (\`lguest run NAME\`). */
  name: string;
  /** Its image file. */
  file: string;
  /** One line for \`lguest guests\`. */
  description: string;
  /** A guest for the host's tests, not listed by \`lguest guests\`. */
  test?: boolean;
  /** Further fields a build may add. */
  [field: string]: unknown;
}

/** manifest.json. */
export const MANIFEST: readonly ManifestEntry[] = ${JSON.stringify(manifest, null, 2)};

/**
 * Import a module kept out of the module graph (a test guest's image, a
 * wasm image as built): the specifier is a variable, so Deno does not load
 * it with the program (start-up) and \`deno bundle\` / \`deno compile\` leave
 * it out. Only this module as a checkout's \`guests/images/index.ts\` (a
 * file or an HTTP URL) imports it, from its own folder: in the bundle every
 * module has the bundle's URL, and \`import()\` would find (and run) a file
 * of that name beside the bundle; a compiled binary
 * (\`Deno.build.standalone\`) embeds none of them. There it imports nothing
 * and rejects with an Error named \`NotInBuild\` (launcher/images.ts: "not
 * in this build", one line).
 */
function outside<T>(specifier: string): Promise<T> {
  if (Deno.build.standalone || !import.meta.url.endsWith("/guests/images/index.ts")) {
    const e = new Error(\`\${specifier} is not in this build\`);
    e.name = "NotInBuild";
    return Promise.reject(e);
  }
  return import(specifier);
}

/** Image file name -> import of its module: see {@link files}. */
export type Files = Readonly<
  Record<
    string,
    () => Promise<
      { BASE64: string; BROTLI?: boolean; SIZE: number; SHA256: string; PAYLOAD?: string }
    >
  >
>;

let filesTable: Files | undefined;

/**
 * Image file name -> import of its module, made at the first call: a run of
 * a built-in wasm guest takes its image from {@link READY} and never needs
 * this table, whose ${files.length} closures cost every start ~0.06 ms as a
 * constant (boot.first_byte, docs/performance.md).
 */
export function files(): Files {
  return filesTable ??= {
${loaders.map((l) => `  ${l}`).join("")}  };
}

/** What a module of {@link READY} holds. */
export interface ReadyModule {
  /** Where the build put the image's fuel checks. */
  FUEL: { loops: number; entries: number; bulk: number; resumes: number };
  /** The checked and instrumented image, base64 (of its brotli if BROTLI). */
  BASE64: string;
  BROTLI?: boolean;
  /** The image's length in bytes. */
  SIZE: number;
  /** The image's SHA-256, base64. */
  SHA256: string;
  /** The text module BASE64 comes from, if any. */
  PAYLOAD?: string;
}

/**
 * Wasm image file name -> import of the module holding it as \`deno task
 * guests\` checked it against the guest-image profile and instrumented it
 * for preemption (\`--check\` verifies it is what the current code makes of
 * the image): a run of a built-in guest skips both passes.
 */
export const READY: Readonly<Record<string, () => Promise<ReadyModule>>> = {
${readyLoaders.join("")}};
`,
  );
  written.push("index.ts");
  return written;
}

/** The declarations of the image modules (`FILE.js`) and of the checked ones (`FILE.ready.js`). */
const IMAGE_TYPES = "image.d.ts", READY_TYPES = "ready.d.ts";

/** The declarations of {@link payloadCheck}'s lines and of PAYLOAD. */
const PAYLOAD_TYPES = `/** The image's length in bytes (checked when it is decoded). */\n` +
  `export declare const SIZE: number;\n` +
  `/** The image's SHA-256, base64 (checked when it is decoded). */\n` +
  `export declare const SHA256: string;\n` +
  `/** The text module BASE64 comes from (a payload above 16 KiB), if any. */\n` +
  `export declare const PAYLOAD: string | undefined;\n`;

/**
 * A checked image (`FILE.ready.js`) larger than this is compressed; a
 * smaller one (hello) stays plain: a run decodes it without a
 * DecompressionStream, which costs more than its bytes would.
 */
const READY_COMPRESS_ABOVE = 16 << 10;

/**
 * A built-in wasm image as a run needs it: checked against the profile and
 * fuel-instrumented (the same passes as `compileImage`, with validation),
 * or undefined if it does not pass (a run then gets the refusal itself).
 */
function readyImage(bytes: Uint8Array): (FuelCounts & { bytes: Uint8Array }) | undefined {
  try {
    checkProfile(bytes, "image");
  } catch (e) {
    if (e instanceof ImageError) return undefined;
    throw e;
  }
  const fuel = instrumentFuel(bytes);
  return "error" in fuel ? undefined : fuel;
}

async function readOrNull(path: string): Promise<Uint8Array | null> {
  try {
    return await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

/** LEB128 helpers for the tiny wasm rewrite below. */
function readLeb(b: Uint8Array, pos: number): [number, number] {
  let v = 0, shift = 0;
  for (;;) {
    const x = b[pos++];
    v += (x & 0x7f) * 2 ** shift;
    shift += 7;
    if (!(x & 0x80)) return [v, pos];
  }
}

function leb(v: number): number[] {
  const out: number[] = [];
  do {
    let x = v % 128;
    v = Math.floor(v / 128);
    if (v) x |= 0x80;
    out.push(x);
  } while (v);
  return out;
}

/**
 * Drop the data segments that are all zeros (.bss). With an imported memory
 * wasm-ld must write .bss out as zeros, but guest RAM always starts zeroed
 * (the Launcher's RAM is fresh anonymous memory), so they are dead weight:
 * about 20 KB per image. Only active segments with an `i32.const` offset are
 * expected; anything else leaves the module unchanged.
 */
export function dropZeroSegments(wasm: Uint8Array): Uint8Array {
  let pos = 8;
  while (pos < wasm.length) {
    const id = wasm[pos];
    const [size, body] = readLeb(wasm, pos + 1);
    const end = body + size;
    if (id !== 11) {
      pos = end;
      continue;
    }
    let [count, p] = readLeb(wasm, body);
    const kept: Uint8Array[] = [];
    for (; count > 0; count--) {
      const start = p;
      if (wasm[p] !== 0 || wasm[p + 1] !== 0x41) return wasm;
      [, p] = readLeb(wasm, p + 2); // the offset (signed, but we skip it)
      if (wasm[p++] !== 0x0b) return wasm;
      const [len, data] = readLeb(wasm, p);
      p = data + len;
      if (wasm.subarray(data, p).some((x) => x !== 0)) {
        kept.push(wasm.subarray(start, p));
      }
    }
    const payload = [...leb(kept.length), ...kept.flatMap((k) => [...k])];
    return new Uint8Array([
      ...wasm.subarray(0, pos),
      11,
      ...leb(payload.length),
      ...payload,
      ...wasm.subarray(end),
    ]);
  }
  return wasm;
}

/** Two embedding modules holding the same image bytes (however compressed). */
async function samePayload(
  file: string,
  a: Uint8Array,
  b: Uint8Array,
  dirA: string,
  dirB: string,
): Promise<boolean> {
  const dec = new TextDecoder();
  if (file.endsWith(".b64")) {
    // A text payload: brotli (TEXT_PAYLOAD_ABOVE, libposix.a.b64); gzip read too (an older
    // libposix.a.b64).
    const decode = async (x: Uint8Array) =>
      await decodePayload(dec.decode(x), "brotli") ?? await decodePayload(dec.decode(x), "gzip");
    const [pa, pb] = await Promise.all([a, b].map(decode));
    return pa !== null && pb !== null && sameBytes(pa, pb);
  }
  // Every line but the payload's must be the same (SIZE, SHA256, FUEL, the comments).
  const rest = (x: Uint8Array) =>
    dec.decode(x).replace(/^export const BASE64(?:: string)? =\n {2}"[A-Za-z0-9+/=]*";$/m, "");
  if (rest(a) !== rest(b)) return false;
  const folder = file.includes("/") ? file.slice(0, file.lastIndexOf("/") + 1) : "";
  const beside = (dir: string) => (name: string) =>
    readOrNull(`${dir}/${folder}${name}`)
      .then((t) => t === null ? null : dec.decode(t));
  const [pa, pb] = [
    await embeddedPayload(dec.decode(a), beside(dirA)),
    await embeddedPayload(dec.decode(b), beside(dirB)),
  ];
  return pa !== null && pb !== null && sameBytes(pa, pb);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

async function main(args: string[]): Promise<number> {
  const check = args.includes("--check");
  const unknown = args.filter((a) => a !== "--check");
  if (unknown.length) {
    console.error(`guests/build.ts: unknown argument ${unknown[0]} (usage: build.ts [--check])`);
    return 2;
  }
  const clang = await findTool(["clang", "clang-14"]);
  if (!clang) {
    console.error(
      "guests/build.ts: clang not found (need clang 14 with the wasm32 target: apt-get install clang lld)",
    );
    return 2;
  }
  const wasmLd = await findTool(["wasm-ld", "wasm-ld-14"]);
  if (!wasmLd) {
    console.error("guests/build.ts: wasm-ld not found (apt-get install lld)");
    return 2;
  }

  const ar = await findTool(["llvm-ar", "llvm-ar-14"]);
  if (!ar) {
    console.error("guests/build.ts: llvm-ar not found (apt-get install llvm)");
    return 2;
  }
  const ld = await findTool(["ld.lld", "ld.lld-14"]);
  if (!ld) {
    console.error("guests/build.ts: ld.lld not found (apt-get install lld)");
    return 2;
  }
  const tools = { clang, wasmLd, ar, ld };

  const imagesDir = `${GUESTS_DIR}/images`;
  if (!check) {
    const files = await build(tools, imagesDir);
    for (const f of files) {
      const size = (await Deno.stat(`${imagesDir}/${f}`)).size;
      console.log(`${String(size).padStart(8)}  guests/images/${f}`);
    }
    return 0;
  }

  const tmp = await Deno.makeTempDir({ prefix: "lguest-guests-check-" });
  try {
    const files = await build(tools, tmp);
    const stale: string[] = [];
    for (const f of files) {
      const committed = await readOrNull(`${imagesDir}/${f}`);
      const fresh = await Deno.readFile(`${tmp}/${f}`);
      if (!committed) stale.push(`${f} (missing)`);
      else if (
        !sameBytes(committed, fresh) &&
        !await samePayload(f, committed, fresh, imagesDir, tmp)
      ) {
        stale.push(`${f} (differs)`);
      }
    }
    for await (const e of Deno.readDir(imagesDir)) {
      if (e.isFile && !files.includes(e.name)) stale.push(`${e.name} (no source)`);
    }
    if (stale.length) {
      console.error("guests/build.ts: images out of date; run `deno task guests`:");
      for (const s of stale.sort()) console.error(`  guests/images/${s}`);
      return 1;
    }
    console.log(`guests/build.ts: ${files.length} images up to date`);
    return 0;
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (e) {
    if (e instanceof BuildError) {
      console.error(`guests/build.ts: ${e.message}`);
      Deno.exit(1);
    }
    throw e;
  }
}
