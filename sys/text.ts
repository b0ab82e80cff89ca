/**
 * Text from outside (a guest's CRASH message, names in an image, file
 * names) made safe to show on the user's terminal: data, never control.
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
