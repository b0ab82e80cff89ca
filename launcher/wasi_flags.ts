/**
 * How a C program is compiled against Debian's wasi-libc and the POSIX
 * layer: shared by `lguest cc` (launcher/cc.ts) and the build of the
 * built-in POSIX guests (guests/posix/build.ts), so a user's program is
 * compiled exactly as `lua` and `sqlite3` are.
 *
 * @module
 */

/** Where Debian's wasi-libc is (apt-get install wasi-libc). */
export const WASI_SYSROOT_INCLUDE = "/usr/include/wasm32-wasi";
/** Debian's wasi-libc libraries. */
export const WASI_SYSROOT_LIB = "/usr/lib/wasm32-wasi";

/**
 * clang flags for a program's sources: wasm32-wasi, only these headers
 * (clang's own in `res`, the layer's `posixInclude`, wasi-libc's; never the
 * host's /usr/include), setjmp/longjmp through wasm exceptions.
 */
export function programFlags(res: string, posixInclude: string): string[] {
  return [
    "--target=wasm32-wasi",
    "-nostdinc",
    "-isystem",
    `${res}/include`,
    "-isystem",
    posixInclude,
    "-isystem",
    WASI_SYSROOT_INCLUDE,
    "-mllvm",
    "-wasm-enable-sjlj",
    "-D_WASI_EMULATED_SIGNAL",
    "-D_WASI_EMULATED_PROCESS_CLOCKS",
    "-D_WASI_EMULATED_GETPID",
  ];
}
