/**
 * Text from outside (a guest's CRASH message, names in an image, file
 * names) made safe to show on the user's terminal: data, never control;
 * and the one line for a host that ran out of stack ({@link isStackOverflow}).
 *
 * @module
 */

// Written `(function f() {...}).bind(null)`: compiled with the module, not again at every
// start on its first call (Deno's emit keeps these parentheses; docs/performance.md, boot).
/**
 * `text` with every control character (C0, DEL, C1, and the Unicode line
 * and paragraph separators and bidirectional overrides) written as an
 * escape (`\n`, `\e`, `\x7f`, `\u202e`), backslashes doubled, and cut to
 * `max` characters with `…`: one printable line whatever it held.
 */
export const printable = (function printable(text: string, max = 200): string {
  let out = "";
  let n = 0;
  for (const ch of text) {
    if (n >= max) return out + "…";
    const c = ch.codePointAt(0)!;
    if (ch === "\\") out += "\\\\";
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else if (c === 0x1b) out += "\\e";
    else if (c < 0x20 || (c >= 0x7f && c < 0xa0)) out += `\\x${c.toString(16).padStart(2, "0")}`;
    else if (
      c === 0x2028 || c === 0x2029 || (c >= 0x202a && c <= 0x202e) ||
      (c >= 0x2066 && c <= 0x2069) || c === 0xfeff
    ) out += `\\u${c.toString(16).padStart(4, "0")}`;
    else out += ch;
    n++;
  }
  return out;
}).bind(null);

/** The one line for it (see {@link isStackOverflow}). */
export const HOST_STACK = "the host ran out of stack (V8 --stack-size?)";

let said = false;

/** {@link HOST_STACK}, for a message about to be shown: the process's net then says no more. */
export function hostStackLine(): string {
  said = true;
  return HOST_STACK;
}

/** Whether {@link hostStackLine} gave the line to a message already. */
export function hostStackSaid(): boolean {
  return said;
}

/**
 * Whether `e` is V8's stack overflow: a RangeError, an Error that wraps one (Deno's lazily
 * loaded internals rethrow it as "Uncaught RangeError: …"), or such a message as a string (a
 * rejection with a string). The host's own stack running out (a small `--stack-size` in
 * DENO_V8_FLAGS overflows in Deno's and lguest's own code) is the host's limit, never a damaged
 * payload or a guest's fault: one line ({@link hostStackLine}), exit 125 as for any host that
 * cannot run the engine (README "Exit codes"), whichever part of the run meets it first (main.ts
 * says it for a rejection no caller awaits, unless it was said already). Here, in a module every
 * run loads anyway: no module more before hello's first byte.
 */
export function isStackOverflow(e: unknown): boolean {
  const msg = e instanceof Error ? e.message : typeof e === "string" ? e : "";
  return msg.includes("Maximum call stack size exceeded"); // no regular expression (boot_test)
}
