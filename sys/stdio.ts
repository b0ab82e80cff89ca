/**
 * The launcher's own stderr and stdout lines.
 *
 * stderr is best effort: a message the launcher writes there (a hint, a
 * guest's end, an error line) is never worth a guest. A stderr that cannot
 * be written (`2>/dev/full`, a log on a full disk, a closed pipe) drops the
 * line, and the run, its guests and the exit code go on as if it had been
 * read. (`console.error` throws there instead, inside a hypercall if a hint
 * was being said: the guest died for it and the launcher with it.)
 *
 * stdout is data: what the user asked for (`--help`, `guests`, a file
 * `get` to `-`) must arrive whole or the command says it did not. A write
 * that fails throws; {@link outputFailure} turns the error into the
 * command's end (README "Exit codes").
 *
 * @module
 */

import { ERRNO, errnoName, libc, O_NONBLOCK, pollFd, POLLOUT } from "./libc.ts";

/** Made at the first text printed: a run's console writes bytes (a process's first ~0.05 ms). */
let encoder: TextEncoder | undefined;

/** Bytes written to stdout so far, up to {@link CHECK_AT}. */
let total = 0;
/** Is stdout non-blocking (a parent set O_NONBLOCK on the pipe)? null: not asked yet. */
let nonBlocking: boolean | null = null;
/**
 * Asked once this much has been written: a pipe (64 KiB) cannot be full of
 * our output before, and a run that prints less loads no FFI library for it
 * (boot.first_byte).
 */
const CHECK_AT = 32 * 1024;

/**
 * Write all of `data` to stdout (throws what the write throws). The one
 * writer of stdout: the console's and every command's (`disk get IMG F -`,
 * `disk ls`, `--help`, `guests`, `--version`). A non-blocking stdout (a
 * parent set O_NONBLOCK on the pipe) that is full is waited for (poll), as
 * a blocking one waits inside the write. Such a stdout is written with
 * write(2) itself: Deno's writeSync there can throw WouldBlock after part of
 * its lines went out (seen on 2.9: 64 KiB out, then the error), so what to
 * write again is unknown (before: the file repeated, 13 MB for 230 KB).
 * Stops early when `stop()` says so.
 */
export function writeStdout(data: Uint8Array, stop?: () => boolean): void {
  if (nonBlocking === null && total + data.length > CHECK_AT) {
    try {
      const F_GETFL = 3;
      nonBlocking = (libc().fcntl(1, F_GETFL, 0) & O_NONBLOCK) !== 0;
    } catch {
      nonBlocking = false; // no FFI (a program using the API without --allow-ffi)
    }
  }
  if (nonBlocking) return writeRaw(data, stop);
  total += data.length;
  let off = 0;
  while (off < data.length && !stop?.()) {
    try {
      off += Deno.stdout.writeSync(data.subarray(off));
    } catch (e) {
      if (e instanceof Deno.errors.WouldBlock && waitWritable(1)) continue;
      throw e;
    }
  }
}

/** All of `data` to fd 1 by write(2), waiting while it is full; throws as Deno's writes do. */
function writeRaw(data: Uint8Array, stop?: () => boolean): void {
  const EINTR = 4, EAGAIN = 11, EPIPE = 32;
  let off = 0;
  while (off < data.length && !stop?.()) {
    const part = data.subarray(off) as Uint8Array<ArrayBuffer>;
    const n = Number(libc().write(1, part, BigInt(part.length)));
    if (n >= 0) {
      off += n;
      continue;
    }
    const e = ERRNO[0];
    if (e === EINTR || (e === EAGAIN && waitWritable(1))) continue;
    if (e === EPIPE) throw new Deno.errors.BrokenPipe("Broken pipe (os error 32)");
    const text: Record<number, string> = {
      5: "Input/output error",
      27: "File too large",
      28: "No space left on device",
      122: "Disk quota exceeded",
    };
    throw Object.assign(new Error(`${text[e] ?? errnoName(e)} (os error ${e})`), {
      code: errnoName(e),
    });
  }
}

/** Wait until `fd` can be written (poll(2), POLLOUT); false if that cannot be known. */
function waitWritable(fd: number): boolean {
  const EINTR = 4;
  const pfd = pollFd(fd, POLLOUT);
  try {
    for (;;) {
      const r = libc().poll_sync(pfd, 1n, -1);
      if (r > 0) return true;
      if (r < 0 && ERRNO[0] === EINTR) continue;
      return false;
    }
  } catch {
    return false; // no FFI (a program using the API without --allow-ffi)
  }
}

let stderrMuted = false;

/**
 * Drop every later {@link warn} line: stderr is a file the launcher must not
 * write (the disk image it refuses to run over, `2<>d.img`); the exit code
 * says the rest.
 */
export function muteStderr(): void {
  stderrMuted = true;
}

/**
 * One line on stderr, best effort: a write error drops it (see the module's
 * doc). Through `console.error`, so that a program using the API (or a test)
 * that redirects it gets these lines too.
 */
export function warn(line: string): void {
  if (stderrMuted) return;
  try {
    console.error(line);
  } catch {
    // Nowhere to say it: the line is lost, nothing else.
  }
}

/** An error of a write to stdout, raised by {@link print}. */
export class StdoutError extends Error {
  constructor(cause: unknown) {
    super(`stdout: write failed (${describeWriteError(cause)})`, { cause });
  }
}

/** `ENOSPC: No space left on device` out of Deno's `No space left on device (os error 28)`. */
export function describeWriteError(e: unknown): string {
  const msg = e instanceof Error ? e.message.replace(/ \(os error \d+\)$/, "") : String(e);
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === "string" && code !== "" ? `${code}: ${msg}` : msg;
}

/** All of `data` on stdout, or a {@link StdoutError}. */
export function printBytes(data: Uint8Array): void {
  try {
    writeStdout(data);
  } catch (e) {
    throw new StdoutError(e);
  }
}

/** `text` and a newline on stdout, all of it, or a {@link StdoutError}. */
export function print(text: string): void {
  printBytes((encoder ??= new TextEncoder()).encode(`${text}\n`));
}

/**
 * The exit code of a command whose stdout write failed ({@link StdoutError}),
 * null for any other error. A reader that has gone (EPIPE, `| head`) ends
 * it with 141 as SIGPIPE would, silently; any other error (ENOSPC, EIO:
 * `> /dev/full`, a full disk) with one line on stderr and `code`.
 */
export function stdoutFailure(e: unknown, code: number): number | null {
  if (!(e instanceof StdoutError)) return null;
  if (e.cause instanceof Deno.errors.BrokenPipe) return 128 + 13;
  warn(`lguest: ${e.message}: the output is incomplete`);
  return code;
}
