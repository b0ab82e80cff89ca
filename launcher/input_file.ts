/**
 * Launcher: reading a file the user named (a guest image, a config) as
 * hostile input: checked before it is read, read with a bound.
 *
 * Only a regular file is read — a FIFO, a device (`/dev/zero`), a socket
 * or a directory is refused after a stat, without opening it, so nothing
 * blocks or streams without end; its size is checked against the bound
 * before reading, and the read itself stops at the bound (a file that
 * grows, or a `/proc` file that says it is empty). Errors are one
 * {@link UsageError} line, the name shown printable.
 *
 * @module
 */

import { UsageError } from "../devices/registry.ts";
import { printable } from "../sys/text.ts";
import { permissionMessage } from "./exit.ts";

/** `n` bytes as "16 MiB", "64 KiB" or "100 bytes". */
export function sizeText(n: number): string {
  if (n >= 1 << 20 && n % (1 << 20) === 0) return `${n / (1 << 20)} MiB`;
  if (n >= 1 << 10 && n % (1 << 10) === 0) return `${n / (1 << 10)} KiB`;
  return `${n} bytes`;
}

/** The file type Deno's stat reports, in words, for refusals. */
function kindOf(info: Deno.FileInfo): string {
  if (info.isDirectory) return "a directory";
  if (info.isFifo) return "a FIFO";
  if (info.isCharDevice || info.isBlockDevice) return "a device";
  if (info.isSocket) return "a socket";
  return "not a regular file";
}

/**
 * Read the regular file `path`, at most `max` bytes; `what` names it in
 * messages ("guest image", "config file").
 */
export async function readInputFile(
  path: string,
  max: number,
  what: string,
  tooLarge?: (head: Uint8Array) => string | null,
): Promise<Uint8Array> {
  const shown = printable(path, 200);
  const fail = (e: unknown): never => {
    if (e instanceof Deno.errors.NotFound) throw new UsageError(`${shown}: no such file`);
    if (e instanceof Deno.errors.PermissionDenied) {
      throw new UsageError(`${shown}: permission denied`);
    }
    if (
      e instanceof Deno.errors.NotCapable &&
      Deno.permissions.querySync({ name: "read", path }).state !== "granted"
    ) {
      throw new UsageError(`${shown}: ${permissionMessage(e)}`);
    }
    if (e instanceof Deno.errors.NotCapable) {
      // Deno stats device and /proc paths only with --allow-all: they are not regular files.
      throw new UsageError(`${shown}: not a regular file, not a ${what}`);
    }
    throw new UsageError(`${shown}: ${printable((e as Error).message, 200)}`);
  };
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (e) {
    return fail(e);
  }
  if (!info.isFile) {
    const kind = kindOf(info);
    throw new UsageError(
      `${shown}: is ${kind === "not a regular file" ? "not a regular file" : kind}, not a ${what}`,
    );
  }
  if (info.size > max) {
    // What it is instead (`tooLarge`, from its first 4 KiB), when that can be read.
    let hint: string | null = null;
    if (tooLarge) {
      try {
        using f = await Deno.open(path, { read: true });
        if ((await f.stat()).isFile) {
          const head = new Uint8Array(4096);
          let n = 0;
          for (let got; n < head.length && (got = await f.read(head.subarray(n))) !== null;) {
            n += got;
          }
          hint = tooLarge(head.subarray(0, n));
        }
      } catch {
        // No hint: the size is the reason.
      }
    }
    throw new UsageError(
      `${shown}: ${what} larger than ${sizeText(max)}${hint === null ? "" : ` (${hint})`}`,
    );
  }
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch (e) {
    return fail(e);
  }
  try {
    const st = await file.stat(); // the file opened is the file checked
    if (!st.isFile) throw new UsageError(`${shown}: is ${kindOf(st)}, not a ${what}`);
    // Sized by stat, grown (to the bound) for a file that is longer than it said (/proc, growing).
    let buf = new Uint8Array(Math.min(Math.max(st.size, 4096), max) + 1);
    let n = 0;
    for (;;) {
      if (n === buf.length) {
        if (buf.length > max) {
          throw new UsageError(`${shown}: ${what} larger than ${sizeText(max)}`);
        }
        const bigger = new Uint8Array(Math.min(buf.length * 2, max + 1));
        bigger.set(buf);
        buf = bigger;
      }
      const got = await file.read(buf.subarray(n));
      if (got === null) return buf.subarray(0, n);
      n += got;
    }
  } catch (e) {
    if (e instanceof UsageError) throw e;
    return fail(e);
  } finally {
    file.close();
  }
}
