/**
 * `lguest cc [clang flags] -o prog.wasm prog.c ...`: build a C program
 * written for a standard C library into an lguest guest image, on the
 * POSIX layer (docs/guest-abi.md §19).
 *
 * It runs the host's clang with the wasm32-wasi target, wasi-libc's headers
 * (never the host's: `-nostdinc`), the layer's headers and setjmp/longjmp
 * support, and links with wasm-ld against libposix.a (embedded in this
 * program: guests/images/libposix.a.ts), wasi-libc and compiler-rt. Every
 * other argument goes to clang as it is (`-O2`, `-I`, `-D`, `-c`, more
 * sources, objects, `-lm`, `-x c -` for a source on standard input ...); a
 * `-x LANG` never applies to the inputs cc adds itself. Without `-o` (or `--output`) the image is
 * `a.wasm`; an existing output that is not a wasm image (a disk image, say)
 * is refused, never overwritten, and so is a folder or a FIFO. A signal
 * that ends lguest (SIGINT, SIGTERM, SIGHUP) ends clang with it.
 *
 * Missing tools are one line naming the packages to install; a failed
 * compile shows clang's own diagnostics. Both exit 125 (EXIT.USAGE).
 *
 * @module
 */

import { UsageError } from "../devices/registry.ts";
import { EXIT } from "./exit.ts";
import { shownName } from "./lgfs.ts";
import { hasLgfsMagic } from "../abi/lgfs_magic.ts";
import { programFlags, WASI_SYSROOT_LIB as WASI_LIB } from "./wasi_flags.ts";
import { print, warn } from "../sys/stdio.ts";
import { posixLibrary } from "./images.ts";

const INSTALL =
  "apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32 (clang 14 with wasm-ld, Debian's wasi-libc and compiler-rt for wasm32)";

const USAGE = `Usage:
  lguest cc [clang flags] [-o prog.wasm] prog.c [more.c obj.o ...]

Without -o (or --output) the image is a.wasm. An existing -o file that is
not a wasm image (an lgfs disk, say) is refused, never overwritten.

Builds C programs written for a standard C library (stdio, malloc, files,
setjmp/longjmp, time) into an lguest guest image: stdin/stdout/stderr are the
console, files live on the first --block disk's lgfs file system, the exit
status is lguest's exit code (docs/guest-abi.md §19). Flags go to clang
(e.g. -O2, -Wall, -I DIR, -D X, -c, -lm; '-x c -' reads the source from
standard input). Then: lguest run ./prog.wasm -- ARGS

Needs: ${INSTALL}`;

async function runs(cmd: string, args: string[]): Promise<string | null> {
  try {
    const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "null" }).output();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : null;
  } catch (e) {
    // Without --allow-run every tool would look missing: say what is needed instead.
    if (e instanceof Deno.errors.NotCapable && !/\//.test(cmd)) {
      throw new UsageError(
        "cc: needs Deno's --allow-run=clang,clang-14 permission (and --allow-read --allow-write): " +
          "run with 'deno run --allow-run=clang,clang-14 ...' (the installed lguest and 'deno task lguest' have it)",
      );
    }
    return null;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}

/** The first bytes of a file (fewer if it is shorter; none if unreadable). */
async function head(path: string, n: number): Promise<Uint8Array> {
  try {
    using f = await Deno.open(path);
    const buf = new Uint8Array(n);
    const got = await f.read(buf);
    return buf.subarray(0, got ?? 0);
  } catch {
    return new Uint8Array(0);
  }
}

/** Whether the file starts as a wasm module does (\0asm). */
async function isWasm(path: string): Promise<boolean> {
  const h = await head(path, 4);
  return h.length === 4 && h[0] === 0 && h[1] === 0x61 && h[2] === 0x73 && h[3] === 0x6d;
}

/** What a non-wasm file is, for the message. */
async function kindOf(path: string): Promise<string> {
  return hasLgfsMagic(await head(path, 8)) ? "an lgfs disk image" : "it holds other data";
}

function statOrNull(path: string): Deno.FileInfo | null {
  try {
    return Deno.statSync(path);
  } catch {
    return null;
  }
}

/** clang, its resource dir, wasm-ld: or a UsageError naming what is missing. */
async function findToolchain(): Promise<{ clang: string; res: string }> {
  let clang: string | null = null;
  for (const c of ["clang", "clang-14"]) {
    if (await runs(c, ["--version"]) !== null) {
      clang = c;
      break;
    }
  }
  const missing: string[] = [];
  if (!clang) missing.push("clang");
  // clang runs wasm-ld itself: ask it where (a bare name means not found)
  const ld = clang ? await runs(clang, ["--target=wasm32-wasi", "-print-prog-name=wasm-ld"]) : null;
  if (clang && !(ld?.startsWith("/") && await exists(ld))) missing.push("wasm-ld (lld)");
  if (!await exists(`${WASI_LIB}/libc.a`)) missing.push("wasi-libc");
  const res = clang ? await runs(clang, ["-print-resource-dir"]) ?? "" : "";
  if (clang && !await exists(`${res}/lib/wasi/libclang_rt.builtins-wasm32.a`)) {
    missing.push("compiler-rt for wasm32");
  }
  if (missing.length) {
    throw new UsageError(`cc: ${missing.join(", ")} not found: ${INSTALL}`);
  }
  return { clang: clang!, res };
}

/** `lguest cc ...`; returns the exit code. */
export async function ccCommand(argv: string[]): Promise<number> {
  if (argv.length === 0) {
    warn(USAGE);
    return EXIT.USAGE;
  }
  if (argv.some((a) => a === "--help" || a === "-h")) {
    print(USAGE);
    return EXIT.OK;
  }
  // An input: a file name, or `-` (clang reads that source from standard input, with `-x LANG`);
  // not the value of -o/--output/-x given apart.
  const isInput = (i: number) =>
    (argv[i] === "-" || !argv[i].startsWith("-")) &&
    !["-o", "--output", "-x"].includes(argv[i - 1]);
  const fromStdin = argv.some((a, i) => a === "-" && isInput(i));
  // Our own argv0.c is an input too: without this, no input is clang's "undefined symbol: main".
  if (!argv.some((_, i) => isInput(i))) {
    throw new UsageError("cc: no input files (name the program's .c files)");
  }
  const compileOnly = argv.some((a) => a === "-c" || a === "-E" || a === "-S" || a === "-M");
  // -o FILE, -oFILE, --output FILE, --output=FILE (clang's spellings);
  // without one the image is a.wasm.
  let output = "a.wasm";
  let named = false;
  for (const [i, a] of argv.entries()) {
    if (a === "-o" || a === "--output") {
      if (i + 1 >= argv.length) throw new UsageError(`cc: ${a} needs a file name`);
      [output, named] = [argv[i + 1], true];
    } else if (a.startsWith("--output=")) {
      [output, named] = [a.slice("--output=".length), true];
    } else if (a.startsWith("-o") && a.length > 2 && argv[i - 1] !== "-o") {
      [output, named] = [a.slice(2), true];
    }
  }
  if (output === "") throw new UsageError("cc: -o needs a file name (got '')");
  // As gcc: the output must not be one of the inputs (-o prog.c prog.c would replace the source).
  const out = statOrNull(output);
  // The image is written by name: a folder is clang's three lines, and a FIFO blocks the linker
  // until a reader comes (a hang, found by attack). A character device (/dev/null) is written.
  const kind = out?.isDirectory
    ? "a directory"
    : out?.isFifo
    ? "a FIFO"
    : out?.isSocket
    ? "a socket"
    : out?.isBlockDevice
    ? "a block device"
    : null;
  if (kind) {
    throw new UsageError(`cc: -o ${shownName(output)} is ${kind}: name a file for the output`);
  }
  if (out) {
    for (const [i, a] of argv.entries()) {
      if (!isInput(i) || a === "-") continue;
      const st = statOrNull(a);
      if (st && st.dev === out.dev && st.ino === out.ino) {
        throw new UsageError(
          `cc: -o ${shownName(output)} is the input ${shownName(a)}: it would be overwritten`,
        );
      }
    }
    // A program image replaces only a program image (or an empty file):
    // never a disk image or other data given by a slip of -o.
    if (!compileOnly && out.isFile && out.size > 0 && !await isWasm(output)) {
      throw new UsageError(
        `cc: -o ${shownName(output)} exists and is not a wasm image (${await kindOf(
          output,
        )}): it would be overwritten; ` +
          "remove it or name another output",
      );
    }
  }
  // The library first: a missing or damaged one is one line naming its file, toolchain or not.
  const lib = await posixLibrary();
  const archiveBytes = compileOnly ? null : await lib.archive();
  const { clang, res } = await findToolchain();
  const tmp = await Deno.makeTempDir({ prefix: "lguest-cc-" });
  try {
    const include = `${tmp}/include`;
    for (const [name, text] of Object.entries(lib.headers)) {
      const path = `${include}/${name}`;
      await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
      await Deno.writeTextFile(path, text);
    }
    // clang's driver runs `wasm-opt` after linking with any -O when it finds one (binaryen
    // installed): a build that then depends on the machine, and binaryen's default features
    // refuse the bulk-memory code wasi-libc links in ("bulk memory is disabled"). `-B` puts
    // this no-op first in clang's program search, so the image is what wasm-ld made, with or
    // without binaryen. A link to `true`, not a script: clang skips a file it may not execute,
    // and a script in a temporary directory mounted noexec is one (found by attack), while a
    // link is judged by its target's mount.
    const bin = `${tmp}/bin`;
    await Deno.mkdir(bin);
    const trueBin = ["/bin/true", "/usr/bin/true"].find((p) => {
      try {
        return Deno.statSync(p).isFile;
      } catch {
        return false;
      }
    });
    if (trueBin) await Deno.symlink(trueBin, `${bin}/wasm-opt`);
    else {
      await Deno.writeTextFile(`${bin}/wasm-opt`, "#!/bin/sh\nexit 0\n", { mode: 0o755 });
    }
    const args = [`-B${bin}/`, ...programFlags(res, include), ...argv];
    if (archiveBytes) {
      const archive = `${tmp}/libposix.a`;
      await Deno.writeFile(archive, archiveBytes);
      const name = output.replace(/^.*\//, "").replace(/\.wasm$/, "") || "a.out";
      const argv0 = `${tmp}/argv0.c`;
      await Deno.writeTextFile(argv0, `const char *lguest_argv0 = ${JSON.stringify(name)};\n`);
      if (!named) args.push("-o", output);
      args.push(
        // A user's `-x LANG` (`-x c -`: the source on stdin) stays in force for every later input:
        // `-x none` gives ours back their own kinds (argv0.c is C, libposix.a an archive).
        "-x",
        "none",
        argv0,
        "-nostartfiles",
        `-L${WASI_LIB}`,
        "-Wl,--no-entry,--import-memory,--global-base=1048576,-z,stack-size=1048576",
        "-Wl,--export=start,--undefined=start,--strip-all",
        archive,
        "-lwasi-emulated-signal",
        "-lwasi-emulated-process-clocks",
        "-lwasi-emulated-getpid",
        "-lm",
      );
    }
    // clang's stderr is read, not inherited: a linker that cannot write the output (-o /dev/full,
    // a full disk) aborts with LLVM's crash dump, which is one line here instead.
    const child = new Deno.Command(clang, {
      args,
      // `-` is a source on standard input: clang reads it there, as it would without lguest.
      stdin: fromStdin ? "inherit" : "null",
      stdout: "inherit",
      stderr: "piped",
    }).spawn();
    // A signal that ends lguest ends clang with it (killed, it would build on, or hang, alone).
    let stopped: number | undefined;
    const handlers = ([["SIGINT", 2], ["SIGTERM", 15], ["SIGHUP", 1]] as const).map(
      ([signal, n]) => {
        const handler = () => {
          stopped ??= EXIT.SIGNAL_BASE + n;
          try {
            child.kill(); // SIGTERM
          } catch {
            // it has ended already
          }
        };
        Deno.addSignalListener(signal, handler);
        return [signal, handler] as const;
      },
    );
    let r: Deno.CommandOutput;
    try {
      r = await child.output();
    } finally {
      for (const [signal, handler] of handlers) Deno.removeSignalListener(signal, handler);
    }
    if (stopped !== undefined) {
      warn("lguest: cc: stopped by a signal (clang with it)");
      return stopped;
    }
    const diagnostics = new TextDecoder().decode(r.stderr);
    const io = /^LLVM ERROR: IO failure on output stream: (.*)$/m.exec(diagnostics);
    if (!r.success && io) {
      warn(`lguest: cc: -o ${shownName(output)}: cannot write it (${io[1]}); nothing was built`);
      return EXIT.USAGE;
    }
    if (r.stderr.length > 0) {
      try {
        Deno.stderr.writeSync(r.stderr);
      } catch {
        // stderr unwritable: its diagnostics are lost, the exit code still says it
      }
    }
    if (!r.success) {
      warn(`lguest: cc: clang failed (exit ${r.code}); nothing was built`);
      return EXIT.USAGE;
    }
    if (!compileOnly) await Deno.chmod(output, 0o644).catch(() => {});
    return EXIT.OK;
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}
