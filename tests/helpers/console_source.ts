/**
 * A console backend for unit tests of `devices/console.ts`: it yields the
 * given chunks of input, one per read, then end of input; output is dropped.
 *
 * @module
 */

import type { ConsoleBackend } from "../../devices/console.ts";

/** A byte source of these chunks, then end of input. */
export function source(chunks: string[]): ConsoleBackend {
  const enc = new TextEncoder();
  return {
    read(buf) {
      const c = chunks.shift();
      if (c === undefined) return Promise.resolve(null);
      buf.set(enc.encode(c));
      return Promise.resolve(c.length);
    },
    write() {},
  };
}
