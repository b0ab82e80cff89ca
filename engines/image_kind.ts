/**
 * What a file that is no guest image for an engine is instead, for the
 * one line that refuses it: a disk image, a C source, an x86-64 ELF, a
 * WebAssembly module. Both engines ask, so `--engine kvm` and a config's
 * `"engine": "kvm"` say the same as the wasm engine.
 *
 * @module
 */

import { hasLgfsMagic } from "../abi/lgfs_magic.ts";

/** The smallest disk lgfs makes (launcher/lgfs.ts MIN_SIZE). */
const LGFS_MIN = 1 << 20;

/**
 * Is `bytes` C source by its content (whatever its name): text without NUL
 * in its first 4 KiB with an `#include` line or an `int main(`.
 */
function looksLikeC(bytes: Uint8Array): boolean {
  const head = bytes.subarray(0, 4096);
  if (head.length === 0 || head.includes(0)) return false;
  const text = new TextDecoder().decode(head);
  return /^[ \t]*#[ \t]*include[ \t]*[<"]/m.test(text) || /\bint\s+main\s*\(/.test(text);
}

/**
 * What a file too large to be a guest image is, from its first 4 KiB
 * (`head`), for the line that refuses it: the README's 64M disk given as
 * GUEST. An lgfs disk, or a new disk before its mkfs (it starts with a
 * block of zeros); null otherwise.
 */
export function largeKind(head: Uint8Array): string | null {
  if (hasLgfsMagic(head)) return "an lgfs disk image: give it with --block";
  if (head.length >= 4096 && head.every((b) => b === 0)) {
    return "it starts with zeros: a new disk image? make a file system on it with " +
      "'lguest disk mkfs IMAGE', then give it with --block";
  }
  return null;
}

/** Does `bytes` start with `text` (bytes 0..255)? */
function startsWith(bytes: Uint8Array, text: string): boolean {
  return text.length <= bytes.length && [...text].every((c, i) => bytes[i] === c.charCodeAt(0));
}

/**
 * What `bytes` (a file named `name`) is, said for a user who gave it as
 * the GUEST of `engine`: the hint of what to do with it, or null when the
 * file is nothing known (then the engine's own reason stands).
 */
export function otherKind(bytes: Uint8Array, name: string, engine: "wasm" | "kvm"): string | null {
  if (startsWith(bytes, "\x7fELF")) {
    return engine === "wasm" ? "an ELF: x86-64 images run with --engine kvm" : null;
  }
  if (startsWith(bytes, "\0asm")) {
    return engine === "kvm" ? "it is WebAssembly: run it with --engine wasm" : null;
  }
  if (hasLgfsMagic(bytes)) return "an lgfs disk image: give it with --block";
  if (/\.c$/i.test(name) || looksLikeC(bytes)) {
    return engine === "wasm"
      ? "a C source file? build an image of it with 'lguest cc -o prog.wasm FILE.c' first"
      : "a C source file? 'lguest cc -o prog.wasm FILE.c' builds a guest of it, which runs " +
        "with --engine wasm";
  }
  // A new disk image (truncate, dd if=/dev/zero) before its mkfs: nothing but zeros, and at least
  // the 1 MiB lgfs needs (a 1-byte zero file is no disk).
  if (bytes.length >= LGFS_MIN && bytes.every((b) => b === 0)) {
    return "only zeros: a new disk image? make a file system on it with " +
      "'lguest disk mkfs IMAGE', then give it with --block";
  }
  return null;
}
