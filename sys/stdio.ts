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

const encoder = new TextEncoder();

/** Write all of `data` to `file` (throws what the write throws). */
function writeAll(file: { writeSync(p: Uint8Array): number }, data: Uint8Array): void {
  for (let off = 0; off < data.length;) off += file.writeSync(data.subarray(off));
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
    writeAll(Deno.stdout, data);
  } catch (e) {
    throw new StdoutError(e);
  }
}

/** `text` and a newline on stdout, all of it, or a {@link StdoutError}. */
export function print(text: string): void {
  printBytes(encoder.encode(`${text}\n`));
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
