/**
 * guests/posix/build.ts: the POSIX layer (wasi-libc programs as lguest
 * guests, docs/guest-abi.md §19) and the guests built on it, called by
 * guests/build.ts:
 *
 * - `libposix.a`: the guest kit (without its own libc and allocator; its
 *   boot calls `lguest_posix_main` instead of `main`), the arch entry, the
 *   WASI calls (`wasi.c`), the setjmp/longjmp runtime (`sjlj.c`),
 *   wasi-libc's missing pieces (`stubs.c`), bulk-memory memcpy, memmove
 *   and memset (`memcpy.s`, `memmove.s`, `memset.s`) and a word-wise
 *   memcmp (`memcmp.c`). `lguest cc` links user programs against it
 *   (launcher/cc.ts), with wasi-libc and compiler-rt.
 * - `lua` and `sqlite3`: built from pinned upstream sources fetched at
 *   build time (sources.ts), never kept in git.
 * - `posix/test/*.c` -> `test-posix-NAME` (host tests).
 *
 * Every image is a plain lguest guest: imports env.memory, hcall, event,
 * wait, rdtsc; export start.
 *
 * @module
 */

import {
  extract,
  fetchSource,
  LUA,
  mkshellc,
  SQLITE_AMALGAMATION,
  SQLITE_SHELL,
} from "./sources.ts";
import { programFlags, WASI_SYSROOT_LIB } from "../../launcher/wasi_flags.ts";
import { brotli, payloadCheck } from "../payload_check.ts";

/** The tools, and how to run one in guests/. */
export interface PosixTools {
  clang: string;
  wasmLd: string;
  ar: string;
  run(cmd: string, args: string[], cwd?: string): Promise<void>;
}

/** One built image for the manifest. */
export interface PosixImage {
  name: string;
  file: string;
  description: string;
  test?: boolean;
}

/**
 * SQLite's compile-time options for the `sqlite3` guest; the benchmark's
 * native build of the same shell uses the same ones (bench/posix.ts).
 */
export const SQLITE_DEFINES: readonly string[] = [
  "-DSQLITE_THREADSAFE=0",
  "-DSQLITE_OMIT_LOAD_EXTENSION",
  "-DSQLITE_OMIT_POPEN",
  "-DSQLITE_NOHAVE_SYSTEM",
  "-DSQLITE_OMIT_WAL",
  // No file locks: one guest is one process, and the launcher locks the
  // whole disk image; a dot-file lock would outlive a killed guest.
  '-DSQLITE_DEFAULT_UNIX_VFS="unix-none"',
  // Temporary tables and sort spills in RAM: a guest without a disk has
  // no directory for them (PRAGMA temp_store = FILE puts them in "/").
  "-DSQLITE_TEMP_STORE=2",
];

/** clang's resource directory (its own headers and compiler-rt). */
export async function resourceDir(clang: string): Promise<string> {
  const out = await new Deno.Command(clang, { args: ["-print-resource-dir"], stdout: "piped" })
    .output();
  return new TextDecoder().decode(out.stdout).trim();
}

/** wasm-ld flags and libraries after the program's objects and libposix.a. */
export function linkFlags(res: string): { before: string[]; after: string[] } {
  return {
    before: [
      "--no-entry",
      "--import-memory",
      "--global-base=1048576",
      "-z",
      "stack-size=1048576",
      "--export=start",
      "--strip-all",
    ],
    after: [
      `-L${WASI_SYSROOT_LIB}`,
      "-lc",
      "-lwasi-emulated-signal",
      "-lwasi-emulated-process-clocks",
      "-lwasi-emulated-getpid",
      "-lm",
      `${res}/lib/wasi/libclang_rt.builtins-wasm32.a`,
    ],
  };
}

/**
 * A one-line C source that names the program (its argv[0]); the layer's
 * own default is "a.out".
 */
export function argv0Source(name: string): string {
  return `const char *lguest_argv0 = ${JSON.stringify(name)};\n`;
}

/** Where compiled objects of the pinned third-party sources are cached. */
function objectCacheDir(): string {
  const home = Deno.env.get("HOME") ?? "/tmp";
  return `${Deno.env.get("XDG_CACHE_HOME") ?? `${home}/.cache`}/lguest/objects`;
}

async function hex(data: Uint8Array): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", data as Uint8Array<ArrayBuffer>);
  return [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Compile a pinned third-party source (Lua, SQLite) through a cache: the
 * key is the compiler's version, the flags (temporary paths left out), the
 * source and every header of the layer (posix/include). Only the object is
 * cached, so a changed layer or flag still rebuilds; CI starts empty.
 */
async function cachedCompile(
  tools: PosixTools,
  keyParts: string[],
  flags: string[],
  src: string,
  out: string,
): Promise<void> {
  const enc = new TextEncoder();
  const parts = [enc.encode(keyParts.join("\0")), await Deno.readFile(src)];
  const key = await hex(new Uint8Array(parts.flatMap((p) => [...p])));
  const cached = `${objectCacheDir()}/${key}.o`;
  try {
    await Deno.copyFile(cached, out);
    return;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  await tools.run(tools.clang, [...flags, "-c", src, "-o", out]);
  await Deno.mkdir(objectCacheDir(), { recursive: true });
  const tmp = `${cached}.${crypto.randomUUID()}`;
  await Deno.copyFile(out, tmp);
  await Deno.rename(tmp, cached);
}

/** What else a third-party object depends on: clang's version, our headers. */
async function cacheKeyBase(tools: PosixTools, guestsDir: string, tmpDir: string, flags: string[]) {
  const v = await new Deno.Command(tools.clang, { args: ["--version"], stdout: "piped" }).output();
  const parts = [new TextDecoder().decode(v.stdout)];
  const walk = async (dir: string) => {
    const names: string[] = [];
    for await (const e of Deno.readDir(dir)) names.push(e.name);
    for (const n of names.sort()) {
      const p = `${dir}/${n}`;
      if ((await Deno.stat(p)).isDirectory) await walk(p);
      else parts.push(n, await Deno.readTextFile(p));
    }
  };
  await walk(`${guestsDir}/posix/include`);
  parts.push(...flags.map((f) => f.replaceAll(tmpDir, "$TMP")));
  return parts;
}

/**
 * Build libposix.a, the built-in POSIX guests and the POSIX test guests.
 * `kit`/`arch` are the kit's source lists (relative to guests/) and
 * `kitCflags` the flags the kit is built with for the other guests; objects
 * go to objDir, images to outDir. Returns the images and libposix.a's name.
 */
export async function buildPosix(
  tools: PosixTools,
  guestsDir: string,
  kit: string[],
  arch: string[],
  kitCflags: readonly string[],
  objDir: string,
  outDir: string,
): Promise<{ images: PosixImage[]; files: string[] }> {
  const res = await resourceDir(tools.clang);
  const o = (src: string) => `${objDir}/posix__${src.replace(/[/.]/g, "_")}.o`;
  // The kit for wasi-libc programs: not its libc.c and alloc.c (wasi-libc
  // has them), and its boot calls lguest_posix_main (wasi.c) for main.
  const kitFlags = [
    ...kitCflags.map((f) => f === "--target=wasm32" ? "--target=wasm32-wasi" : f),
    "-Dmain=lguest_posix_main",
  ];
  const kitSrc = kit.filter((s) => s !== "kit/libc.c" && s !== "kit/alloc.c");
  const prog = programFlags(res, "posix/include");
  // The layer's own C (on the kit and wasi-libc at once).
  const layerFlags = [
    ...prog,
    "-std=gnu11",
    "-O2",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-Iinclude",
    "-Ikit",
  ];
  const layer: [string, string[]][] = [
    ...[...kitSrc, ...arch].map((s) => [s, kitFlags] as [string, string[]]),
    ["posix/wasi.c", layerFlags],
    ["posix/crc32.c", layerFlags],
    ["posix/sjlj.c", [...prog, "-O2", "-Wall", "-Wextra", "-Werror"]],
    ["posix/stubs.c", [...prog, "-O2", "-Wall", "-Wextra", "-Werror"]],
    // memcpy, memmove, memset as bulk memory instructions (memcpy.s: why not C), one a
    // member, so that a program's own memcpy does not clash with our memset.
    ...["memcpy", "memmove", "memset"].map((f) =>
      [`posix/${f}.s`, ["--target=wasm32-wasi", "-mbulk-memory"]] as [string, string[]]
    ),
    ["posix/memcmp.c", [...prog, "-O2", "-fno-builtin", "-Wall", "-Wextra", "-Werror"]],
  ];
  await Promise.all(
    layer.map(([src, flags]) => tools.run(tools.clang, [...flags, "-c", src, "-o", o(src)])),
  );
  const lib = `${outDir}/libposix.a`;
  await Deno.remove(lib).catch(() => {});
  // Members are pulled by what refers to them: `start` (--undefined=start)
  // brings the arch entry and the kit's boot, wasi-libc's references to
  // __imported_wasi_snapshot_preview1_* bring wasi.c.
  await tools.run(tools.ar, ["rcsD", lib, ...layer.map(([src]) => o(src))]);

  const link = linkFlags(res);
  const images: PosixImage[] = [];
  /** Link an image; `ldExtra`: flags for wasm-ld before the rest. */
  const linkImage = async (name: string, objs: string[], ldExtra: string[] = []) => {
    const argv0 = `${objDir}/posix__argv0_${name}.c`;
    await Deno.writeTextFile(argv0, argv0Source(name.replace(/^test-posix-/, "")));
    await tools.run(tools.clang, [...prog, "-O2", "-c", argv0, "-o", `${argv0}.o`]);
    const file = `${outDir}/${name}.wasm`;
    await tools.run(tools.wasmLd, [
      ...ldExtra,
      ...link.before,
      "--undefined=start",
      "-o",
      file,
      ...objs,
      `${argv0}.o`,
      lib,
      ...link.after,
    ]);
    await Deno.chmod(file, 0o644);
  };

  // Test guests: posix/test/*.c.
  for await (const e of Deno.readDir(`${guestsDir}/posix/test`)) {
    if (!e.isFile || !e.name.endsWith(".c")) continue;
    const src = `posix/test/${e.name}`;
    const text = await Deno.readTextFile(`${guestsDir}/${src}`);
    const m = text.match(/@guest:\s*(.+?)\s*$/m);
    if (!m) throw new Error(`${src}: no "@guest: description" line`);
    await tools.run(tools.clang, [
      ...prog,
      "-O2",
      "-Wall",
      "-Wextra",
      "-Werror",
      "-c",
      src,
      "-o",
      o(src),
    ]);
    const name = `test-posix-${e.name.replace(/\.c$/, "")}`;
    await linkImage(name, [o(src)]);
    images.push({ name, file: `${name}.wasm`, description: m[1], test: true });
  }
  images.sort((a, b) => a.name.localeCompare(b.name));

  // Lua 5.4.4.
  const srcDir = `${objDir}/posix-src`;
  const luaTar = await fetchSource(LUA);
  await extract(luaTar, srcDir, ["lua-5.4.4/src"]);
  const luaDir = `${srcDir}/lua-5.4.4/src`;
  const luaFiles = [
    ..."lapi lcode lctype ldebug ldo ldump lfunc lgc llex lmem lobject lopcodes lparser lstate"
      .split(" "),
    ..."lstring ltable ltm lundump lvm lzio lauxlib lbaselib lcorolib ldblib liolib lmathlib"
      .split(" "),
    ..."loadlib loslib lstrlib ltablib lutf8lib linit lua".split(" "),
  ];
  const luaFlags = [
    ...prog,
    "-O2",
    "-DLUA_COMPAT_5_3",
    "-DLUA_TMPNAMBUFSIZE=32",
    "-Dlua_tmpnam(b,e)={ int lguest_tmpnam(char *); e = lguest_tmpnam(b); }",
    // The REPL only at a terminal (LUA_USE_POSIX's test; the rest of it is not for WASI).
    "-Dlua_stdin_is_tty()=isatty(0)",
    "-include",
    "unistd.h",
    // Lua's hook for local configuration (posix/lua/lua_user.h: integers to strings).
    "-Iposix/lua",
    '-DLUA_USER_H="lua_user.h"',
    // Link-time optimization: Lua's API calls (lua_geti, lua_compare, …) are inlined into
    // the libraries that make them (table.sort 15% faster, the benchmark 7%).
    "-flto",
    "-Wno-deprecated-declarations",
  ];
  const luaObj = (f: string) => `${objDir}/lua_${f}.o`;
  const luaKey = [
    ...await cacheKeyBase(tools, guestsDir, objDir, luaFlags),
    await Deno.readTextFile(`${guestsDir}/posix/lua/lua_user.h`),
  ];
  await Promise.all(
    luaFiles.map((f) =>
      cachedCompile(tools, [...luaKey, f], luaFlags, `${luaDir}/${f}.c`, luaObj(f))
    ),
  );
  // The objects are LLVM bitcode: the code is generated at the link, with setjmp/longjmp
  // as wasm exceptions as for every other object.
  await linkImage("lua", luaFiles.map(luaObj), ["-mllvm", "-wasm-enable-sjlj"]);
  images.push({
    name: "lua",
    file: "lua.wasm",
    description: "Lua 5.4.4, the standalone interpreter (lua -e CODE, lua FILE, lua - for stdin)",
  });

  // SQLite: the amalgamation and the shell.
  const sqlTgz = await fetchSource(SQLITE_AMALGAMATION);
  await extract(sqlTgz, srcDir, [
    "package/deps/sqlite3/sqlite3.c",
    "package/deps/sqlite3/sqlite3.h",
  ]);
  const shellTar = await fetchSource(SQLITE_SHELL);
  await extract(shellTar, srcDir, ["sqlite3-3.40.1/src", "sqlite3-3.40.1/ext"]);
  const amalg = `${srcDir}/package/deps/sqlite3`;
  await Deno.writeTextFile(`${amalg}/shell.c`, await mkshellc(`${srcDir}/sqlite3-3.40.1/src`));
  const sqlFlags = [
    ...prog,
    "-O2",
    // LLVM inlines less than at -O2 (225; -Os: 75): the image 1.38 -> 1.14 MB, its checked
    // brotli's base64 in the bundle 577 -> 522 KB (~1.7 ns a byte at every start of the bundle,
    // boot.first_byte); posix.sqlite.* measured unchanged. -Os (484 KB) made the warm insert
    // ~10% slower (docs/performance.md).
    "-mllvm",
    "-inline-threshold=100",
    "-I",
    amalg,
    ...SQLITE_DEFINES,
    "-Wno-deprecated-declarations",
  ];
  const sqlKey = await cacheKeyBase(tools, guestsDir, objDir, sqlFlags);
  await Promise.all([
    cachedCompile(
      tools,
      [...sqlKey, "sqlite3.c"],
      sqlFlags,
      `${amalg}/sqlite3.c`,
      `${objDir}/sqlite3.o`,
    ),
    cachedCompile(tools, [...sqlKey, "shell.c"], sqlFlags, `${amalg}/shell.c`, `${objDir}/shell.o`),
  ]);
  await linkImage("sqlite3", [`${objDir}/shell.o`, `${objDir}/sqlite3.o`]);
  images.push({
    name: "sqlite3",
    file: "sqlite3.wasm",
    description: "SQLite 3.53.2 shell (sqlite3 [FILE]; files on the --block disk's lgfs)",
  });

  return { images, files: [...images.map((i) => i.file), "libposix.a"] };
}

/**
 * `libposix.a.ts` beside the images: libposix.a (brotli, base64) and the layer's
 * headers, in the module graph for `lguest cc` (launcher/cc.ts), which
 * works from wherever lguest runs. The base64 is a text module beside it,
 * `libposix.a.b64`: Deno reads every JavaScript and TypeScript module of
 * the graph at every start, a text import only when `cc` imports the
 * module (guests/build.ts TEXT_PAYLOAD_ABOVE, boot.first_byte). Returns the
 * files written.
 */
export async function writePosixLibModule(outDir: string): Promise<string[]> {
  const lib = await Deno.readFile(`${outDir}/libposix.a`);
  const guestsDir = decodeURIComponent(new URL("..", import.meta.url).pathname);
  const headers: Record<string, string> = {};
  for (const h of ["setjmp.h", "stdio.h", "stdlib.h", "pwd.h", "sys/stat.h"]) {
    headers[h] = await Deno.readTextFile(`${guestsDir}/posix/include/${h}`);
  }
  // Brotli at its best, as the images (guests/payload_check.ts `brotli`): the bundle holds it, and its
  // size is start-up time (~1.7 ns a byte of base64, boot.first_byte): 72 KB of gzip's base64,
  // 56 KB of brotli's. Decoded only by `lguest cc`.
  const zipped = brotli(lib);
  await Deno.writeTextFile(
    `${outDir}/libposix.a.ts`,
    "// Generated by `deno task guests` (guests/build.ts): do not edit.\n" +
      `/** libposix.a, ${lib.length} bytes, brotli, base64 (guests/posix/build.ts). */\n` +
      `export const BROTLI = true;\n` +
      await payloadCheck(lib) +
      `export const PAYLOAD = "libposix.a.b64";\n` +
      `export { default as BASE64 } from "./libposix.a.b64" with { type: "text" };\n` +
      `/** The layer's own headers, by name. */\n` +
      `export const HEADERS: Readonly<Record<string, string>> = ${
        JSON.stringify(headers, null, 2)
      };\n`,
  );
  await Deno.writeTextFile(`${outDir}/libposix.a.b64`, zipped.toBase64());
  return ["libposix.a.ts", "libposix.a.b64"];
}
