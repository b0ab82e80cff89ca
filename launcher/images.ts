/**
 * Launcher: finding guest images, built-in or on disk.
 *
 * Built-in images live in `guests/images/` beside this program (embedded in
 * the compiled binary with `--include`), listed by `manifest.json`.
 *
 * @module
 */

import { UsageError } from "../devices/registry.ts";

/** One built-in guest. */
export interface BuiltinGuest {
  name: string;
  file: string;
  description: string;
  test?: boolean;
}

const IMAGES = new URL("../guests/images/", import.meta.url);
/** Largest image we read (a guest must also fit in its RAM). */
const MAX_IMAGE = 256 * 1024 * 1024;

/** Every built-in guest (test guests included when `all`). */
export async function builtinGuests(all = false): Promise<BuiltinGuest[]> {
  const list = JSON.parse(
    await Deno.readTextFile(new URL("manifest.json", IMAGES)),
  ) as BuiltinGuest[];
  return all ? list : list.filter((g) => !g.test);
}

/** Read a guest image by built-in name or path; user errors are one line. */
export async function loadImage(guest: string): Promise<{ name: string; bytes: Uint8Array }> {
  const builtin = (await builtinGuests(true)).find((g) => g.name === guest);
  if (builtin) {
    return { name: guest, bytes: await Deno.readFile(new URL(builtin.file, IMAGES)) };
  }
  const looksLikePath = guest.includes("/") || guest.includes(".");
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(guest);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new UsageError(
        looksLikePath
          ? `${guest}: no such file`
          : `unknown guest '${guest}' (not a built-in guest, see 'lguest guests', nor a file)`,
      );
    }
    if (e instanceof Deno.errors.PermissionDenied) {
      throw new UsageError(`${guest}: permission denied`);
    }
    throw new UsageError(`${guest}: ${(e as Error).message}`);
  }
  if (info.isDirectory) throw new UsageError(`${guest}: is a directory, not a guest image`);
  if (info.size > MAX_IMAGE) throw new UsageError(`${guest}: image larger than 256 MiB`);
  try {
    const name = guest.replace(/^.*\//, "").replace(/\.wasm$/, "");
    return { name, bytes: await Deno.readFile(guest) };
  } catch (e) {
    if (e instanceof Deno.errors.PermissionDenied) {
      throw new UsageError(`${guest}: permission denied`);
    }
    throw new UsageError(`${guest}: ${(e as Error).message}`);
  }
}
