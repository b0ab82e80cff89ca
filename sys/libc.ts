/**
 * The few libc calls we need, through Deno FFI, loaded on first use.
 *
 * We use libc instead of `node:fs` on purpose: loading Deno's Node
 * compatibility layer costs ~50 ms at start-up, and libc gives what the
 * devices need anyway — positional I/O straight into guest memory
 * (pread/pwrite on a view of the wasm memory), O_DIRECT, fdatasync, ioctl
 * for /dev/net/tun, tcgetattr/tcsetattr for the terminal.
 *
 * @module
 */

/**
 * The symbols' table, made at the first dlopen: a run that loads no library (`run hello`) does
 * not build its ~30 nested literals at every start (~0.025 ms; boot.first_byte).
 */
const symbols = () => ({
  open: { parameters: ["buffer", "i32", "i32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  pread: { parameters: ["i32", "buffer", "usize", "i64"], result: "isize" },
  pwrite: { parameters: ["i32", "buffer", "usize", "i64"], result: "isize" },
  fdatasync: { parameters: ["i32"], result: "i32" },
  lseek: { parameters: ["i32", "i64", "i32"], result: "i64" },
  ftruncate: { parameters: ["i32", "i64"], result: "i32" },
  ioctl: { parameters: ["i32", "u64", "buffer"], result: "i32" },
  fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" },
  flock: { parameters: ["i32", "i32"], result: "i32" },
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32", nonblocking: true },
  // The same poll(2) on the calling (main) thread: host/idle_wait.ts.
  poll_sync: { name: "poll", parameters: ["buffer", "u64", "i32"], result: "i32" },
  // A frame's path (devices/net/tap.ts, host/idle_wait.ts): 32-bit numbers, no BigInt made or
  // converted per call (lengths here are at most 64 KiB; a count of fds, a few).
  read32: { name: "read", parameters: ["i32", "buffer", "u32"], result: "i32" },
  write32: { name: "write", parameters: ["i32", "buffer", "u32"], result: "i32" },
  poll32: { name: "poll", parameters: ["buffer", "u32", "i32"], result: "i32" },
  // preadv2(2) of one iovec at the file's position (offset -1), RWF_NOWAIT: devices/console.ts.
  preadv2_32: {
    name: "preadv2",
    parameters: ["i32", "buffer", "i32", "i64", "i32"],
    result: "i32",
  },
  readlink: { parameters: ["buffer", "buffer", "usize"], result: "isize" },
  tcgetattr: { parameters: ["i32", "buffer"], result: "i32" },
  tcsetattr: { parameters: ["i32", "i32", "buffer"], result: "i32" },
  tcgetpgrp: { parameters: ["i32"], result: "i32" },
  tcsetpgrp: { parameters: ["i32", "i32"], result: "i32" },
  getpid: { parameters: [], result: "i32" },
  clock_gettime: { parameters: ["i32", "buffer"], result: "i32" },
  getpgrp: { parameters: [], result: "i32" },
  setpgid: { parameters: ["i32", "i32"], result: "i32" },
  signal: { parameters: ["i32", "pointer"], result: "pointer" },
  __errno_location: { parameters: [], result: "pointer" },
  _exit: { parameters: ["i32"], result: "void" },
  // statx(2) (glibc 2.28+): file types Deno will not stat without --allow-all (/dev paths).
  statx: {
    parameters: ["i32", "buffer", "i32", "u32", "buffer"],
    result: "i32",
    optional: true,
  },
} as const);

/** The loaded symbols. */
export type Libc = Deno.DynamicLibrary<ReturnType<typeof symbols>>["symbols"];

let lib: Deno.DynamicLibrary<ReturnType<typeof symbols>> | null = null;

/**
 * This thread's errno: a view of its four bytes, made when libc is first
 * loaded (a placeholder reading 0 before). Read it as `ERRNO[0]` in the
 * function that made the failing call, right after it, with no JavaScript
 * call in between: V8 services interrupts at a function's entry and return
 * (tiering, installing optimised code, finalisers), and that work makes
 * system calls of its own. Seen (session 7, strace): abseil's
 * once-a-process CPU-frequency probe, which V8 reaches through a contended
 * `absl::Mutex`, opened `/sys/devices/system/cpu/cpu0/tsc_freq_khz`
 * (ENOENT on these machines) on the main thread between a failing
 * TUNSETIFF and the `errno()` call that was to read its EPERM: in about
 * one start of twenty a tap without CAP_NET_ADMIN said "errno 2" (an
 * earlier flock EWOULDBLOCK read back as ENOENT was the same). A wrong
 * errno there is not only a wrong message: a tap read's EAGAIN or
 * KVM_RUN's EINTR read as ENOENT would end a device or a guest.
 */
export let ERRNO: Int32Array = new Int32Array(1);

/** libc's symbols (dlopen on first call). */
export function libc(): Libc {
  if (lib === null) {
    lib = Deno.dlopen("libc.so.6", symbols());
    const p = lib.symbols.__errno_location();
    if (p !== null) ERRNO = new Int32Array(Deno.UnsafePointerView.getArrayBuffer(p, 4));
  }
  return lib.symbols;
}

/** Names of the errno values our messages mention. */
const ERRNO_NAMES: Record<number, string> = {
  1: "EPERM",
  2: "ENOENT",
  5: "EIO",
  9: "EBADF",
  11: "EAGAIN",
  12: "ENOMEM",
  13: "EACCES",
  16: "EBUSY",
  17: "EEXIST",
  19: "ENODEV",
  21: "EISDIR",
  22: "EINVAL",
  27: "EFBIG",
  28: "ENOSPC",
  6: "ENXIO",
  30: "EROFS",
  122: "EDQUOT",
};

/** "ENOSPC" for 28, "errno 99" otherwise. */
export function errnoName(e: number): string {
  return ERRNO_NAMES[e] ?? `errno ${e}`;
}

/** S_IFMT bits of a file mode, and the regular-file type. */
export const S_IFMT = 0o170000, S_IFREG = 0o100000;

/**
 * The S_IFMT bits of the open file `fd` (statx(2) with AT_EMPTY_PATH), or
 * null where libc has no statx or the call fails.
 */
export function fdFileType(fd: number): number | null {
  const statx = libc().statx;
  if (!statx) return null;
  const buf = new Uint8Array(256); // struct statx; stx_mode is the u16 at 28
  const AT_EMPTY_PATH = 0x1000, STATX_TYPE = 1;
  if (statx(fd, cstr(""), AT_EMPTY_PATH, STATX_TYPE, buf) !== 0) return null;
  return new DataView(buf.buffer).getUint16(28, true) & S_IFMT;
}

/**
 * The device and inode of the open file `fd` ("major:minor:ino", statx(2)
 * with AT_EMPTY_PATH), to tell whether two descriptors are one file; null
 * where libc has no statx or the call fails.
 */
export function fdIdentity(fd: number): string | null {
  return statxIdentity(fd, "", 0x1000 /* AT_EMPTY_PATH */);
}

/** {@link fdIdentity} of the file `path` names (a symlink followed); null: none, or no statx. */
export function pathIdentity(path: string): string | null {
  return statxIdentity(-100, /* AT_FDCWD */ path, 0);
}

function statxIdentity(dirfd: number, path: string, flags: number): string | null {
  const statx = libc().statx;
  if (!statx) return null;
  const buf = new Uint8Array(256); // stx_ino u64 at 32, stx_dev_major/minor u32 at 136/140
  const STATX_INO = 0x100;
  if (statx(dirfd, cstr(path), flags, STATX_INO, buf) !== 0) return null;
  const v = new DataView(buf.buffer);
  return `${v.getUint32(136, true)}:${v.getUint32(140, true)}:${v.getBigUint64(32, true)}`;
}

/**
 * Which of the launcher's standard output and error is the file `identity`
 * ({@link fdIdentity}), stderr first; null: neither (or unknown). A command
 * whose output is its own disk or image would write over it
 * (`lguest disk ls d.img 1<>d.img`). When it is stderr, the refusal cannot
 * be said there either: {@link muteStderr}.
 */
export function stdStreamIs(identity: string | null): "stdout" | "stderr" | null {
  if (identity === null) return null;
  if (fdIdentity(2) === identity) return "stderr";
  if (fdIdentity(1) === identity) return "stdout";
  return null;
}

/** A NUL-terminated C string. */
export function cstr(s: string): Uint8Array<ArrayBuffer> {
  return new TextEncoder().encode(s + "\0") as Uint8Array<ArrayBuffer>;
}

/** poll(2)'s events. */
export const POLLIN = 1, POLLOUT = 4;

/** A `struct pollfd { int fd; short events; short revents; }` for one fd, for `poll`/`poll_sync`. */
export function pollFd(fd: number, events: number): Uint8Array<ArrayBuffer> {
  const pfd = new Uint8Array(8);
  const v = new DataView(pfd.buffer);
  v.setInt32(0, fd, true);
  v.setInt16(4, events, true);
  return pfd;
}

/** Open flags (Linux x86-64). */
export const O_RDONLY = 0;
export const O_WRONLY = 1;
export const O_RDWR = 2;
export const O_CREAT = 0x40;
export const O_TRUNC = 0x200;
export const O_NONBLOCK = 0x800;
export const O_DIRECT = 0x4000;
export const O_CLOEXEC = 0x80000;

/** An error from a libc call: the errno and its name. */
export class SysError extends Error {
  readonly errno: number;
  readonly code: string;
  constructor(what: string, e: number) {
    super(`${what}: ${errnoName(e)}`);
    this.errno = e;
    this.code = errnoName(e);
  }
}

/** open(2); throws SysError. */
export function openFile(path: string, flags: number, mode = 0o644): number {
  const fd = libc().open(cstr(path), flags | O_CLOEXEC, mode);
  if (fd < 0) {
    const e = ERRNO[0]; // before the message is built: nothing else may run between open and it
    throw new SysError(`open ${path}`, e);
  }
  return fd;
}

/** pread(2) into a view (of guest memory, typically); throws SysError. */
export function pread(fd: number, buf: Uint8Array, pos: number): number {
  const n = Number(
    libc().pread(fd, buf as Uint8Array<ArrayBuffer>, BigInt(buf.length), BigInt(pos)),
  );
  if (n < 0) throw new SysError("pread", ERRNO[0]);
  return n;
}

/** pwrite(2) from a view; throws SysError. */
export function pwrite(fd: number, buf: Uint8Array, pos: number): number {
  const n = Number(
    libc().pwrite(fd, buf as Uint8Array<ArrayBuffer>, BigInt(buf.length), BigInt(pos)),
  );
  if (n < 0) throw new SysError("pwrite", ERRNO[0]);
  return n;
}

/**
 * Write all of `buf` at the current position; throws SysError. With
 * `stallMs`, `fd` may be non-blocking: a full pipe is waited for (poll) but
 * for at most `stallMs` without progress, then SysError EAGAIN.
 */
export function writeAll(fd: number, buf: Uint8Array, stallMs?: number): void {
  let off = 0;
  while (off < buf.length) {
    const part = buf.subarray(off) as Uint8Array<ArrayBuffer>;
    const n = Number(libc().write(fd, part, BigInt(part.length)));
    if (n < 0) {
      const e = ERRNO[0];
      if (e === 4) continue; // EINTR
      if (e === 11 && stallMs !== undefined && pollWritable(fd, stallMs)) continue;
      throw new SysError("write", e);
    }
    off += n;
  }
}

/** Wait up to `ms` for `fd` to take a write (poll(2), POLLOUT); false at the time limit. */
function pollWritable(fd: number, ms: number): boolean {
  const pfd = pollFd(fd, POLLOUT);
  const end = performance.now() + ms;
  for (;;) {
    const left = Math.max(0, Math.ceil(end - performance.now()));
    const r = libc().poll_sync(pfd, 1n, left);
    if (r > 0) return true;
    if (r < 0 && ERRNO[0] === 4 && left > 0) continue; // EINTR
    return false;
  }
}
