/**
 * The guest's command line from the user's words (docs/guest-abi.md §3).
 *
 * A word that is non-empty and holds no space, tab, newline, `"`, `'` or
 * `\` is written as is; any other word is written in double quotes with
 * `"` and `\` escaped (`\"`, `\\`). Words are separated by one space, with
 * none after the last (2.6.23 left one: docs/deviations.md). The kit's
 * `cmdline_split()` (guests/kit/cmdline.c) recovers the words;
 * {@link splitCmdline} is the same parser in TypeScript.
 *
 * @module
 */

import { COMMAND_LINE_SIZE } from "../abi/constants.ts";
import { UsageError } from "../devices/registry.ts";

const PLAIN = /^[^ \t\n"'\\]+$/;

/** Quote one word (see the module comment). */
export function quoteWord(word: string): string {
  return PLAIN.test(word) ? word : `"${word.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

// Written `(function f() {...}).bind(null)`: compiled with the module, not again at every
// start on its first call (Deno's emit keeps these parentheses; docs/performance.md, boot).
/**
 * Join the user's words into a command line. Throws a UsageError if the
 * result does not fit the guest's 2048-byte buffer (2047 bytes and a NUL).
 */
export const joinCmdline = (function joinCmdline(words: string[]): string {
  return checkCmdline(words.map(quoteWord).join(" "));
}).bind(null);

/** A command line as written: refused (UsageError) if it is 2048 bytes or more. */
export const checkCmdline = (function checkCmdline(line: string): string {
  // No encoder for the empty line (a run without arguments; a process's first ~0.05 ms).
  const bytes = line === "" ? 0 : new TextEncoder().encode(line).length;
  if (bytes >= COMMAND_LINE_SIZE) {
    throw new UsageError(`command line longer than ${COMMAND_LINE_SIZE - 1} bytes (${bytes})`);
  }
  if (line.includes("\0")) throw new UsageError("command line holds a NUL byte");
  return line;
}).bind(null);

/** Split a command line into words exactly as the kit's `cmdline_split()`. */
export function splitCmdline(line: string): string[] {
  const words: string[] = [];
  const space = (c: string) => c === " " || c === "\t" || c === "\n";
  let i = 0;
  for (;;) {
    while (i < line.length && space(line[i])) i++;
    if (i >= line.length) return words;
    let word = "";
    let quoted = false;
    while (i < line.length && (quoted || !space(line[i]))) {
      let c = line[i++];
      if (c === '"') {
        quoted = !quoted;
        continue;
      }
      if (quoted && c === "\\" && (line[i] === '"' || line[i] === "\\")) c = line[i++];
      word += c;
    }
    words.push(word);
  }
}
