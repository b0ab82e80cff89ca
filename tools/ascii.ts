/**
 * `deno run --allow-read=dist --allow-write=dist tools/ascii.ts FILE`:
 * rewrite a bundle so that it is pure ASCII (the last step of `deno task
 * bundle`).
 *
 * V8 keeps a source with any non-ASCII character as a two-byte string, and
 * Deno converts it from UTF-8 first: for the 1.5 MB bundle that costs
 * ~2.5 ms of every start before its first statement (boot.first_byte,
 * docs/performance.md). `deno bundle` already escapes strings, template
 * literals and identifiers; what is left is in the comments it keeps
 * (`§`, `…`). Each character outside ASCII becomes `\uXXXX` (a surrogate
 * pair above U+FFFF): the same character in a string, a regular expression
 * or an identifier, plain text in a comment. Only a raw template string
 * (`String.raw`) would see the difference, and the bundle holds none with
 * such a character (`deno bundle` escapes them).
 *
 * @module
 */

/** `text` with every character outside ASCII written as `\uXXXX`. */
export function asciiOnly(text: string): string {
  return text.replace(
    /[\u0080-\uffff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

if (import.meta.main) {
  const [file] = Deno.args;
  if (file === undefined || Deno.args.length !== 1) {
    console.error("usage: tools/ascii.ts FILE");
    Deno.exit(125);
  }
  const text = await Deno.readTextFile(file);
  const out = asciiOnly(text);
  if (out !== text) await Deno.writeTextFile(file, out);
}
