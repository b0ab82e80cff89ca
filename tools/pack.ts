/**
 * `deno run --allow-read=dist --allow-write=dist tools/pack.ts FILE`:
 * rewrite a bundle's image payloads 7 bits a character (the last step of
 * `deno task bundle`).
 *
 * Every byte of the bundle costs every start ~2 ns before its first
 * statement, whatever it is (Deno and V8 copy the source several times:
 * boot.first_byte, docs/performance.md), and 0.83 MB of it were the base64
 * of the large images' brotli (`"guests/images/NAME.b64"() { x = "..." }`,
 * the text payloads `deno bundle` inlines). Each becomes a
 * `launcher/images.ts` {@link Packed7}: a single-quoted string literal
 * holding the bytes 7 to every 8 characters (the densest pure-ASCII text;
 * raw control characters, NUL included, are kept in a string literal, and
 * only LF, CR, `'` and `\` are escaped: `\n`, `\r`, `\'`, `\\`), unpacked by
 * a small WebAssembly module when that image is decoded. A string's value
 * survives what Deno does to a file it loads as TypeScript (a copy with no
 * extension or a `.ts` name, a shebang script, `deno install`, stdin: its
 * emit drops comments, where session 7 first kept the payloads), a
 * rewrite of its line ends (none is inside the literal) and a minifier. Two
 * line feeds follow each literal: a damaged closing quote (even one made a
 * `\`, a line continuation) runs into one and the file does not load,
 * rather than swallowing the code after it. 8 characters for 7 bytes (~3%
 * more with the escapes) where base64 takes 4 for 3. Small payloads inline
 * in their modules (hello's, decoded at every `run hello`) keep their
 * base64: `Uint8Array.fromBase64` is native. The file stays pure ASCII
 * (tools/ascii.ts).
 *
 * @module
 */

import { type Packed7, unpack7 } from "../launcher/images.ts";

/** Where a module's start costs a step more (docs/performance.md, boot.first_byte). */
export const ONE_MIB = 1 << 20;

/** The unpacker `launcher/images.ts` embeds (as bytes: `wat2wasm`), in place, 8 characters → 7 bytes. */
export const UNPACK7_WAT = `(module
  (import "m" "m" (memory 1))
  (func (export "u") (param $end i32)
    (local $i i32) (local $o i32) (local $x i64)
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        (local.set $x (i64.load (local.get $i)))
        (local.set $x (i64.or
          (i64.and (local.get $x) (i64.const 0x007f007f007f007f))
          (i64.shr_u (i64.and (local.get $x) (i64.const 0x7f007f007f007f00)) (i64.const 1))))
        (local.set $x (i64.or
          (i64.and (local.get $x) (i64.const 0x00003fff00003fff))
          (i64.shr_u (i64.and (local.get $x) (i64.const 0x3fff00003fff0000)) (i64.const 2))))
        (local.set $x (i64.or
          (i64.and (local.get $x) (i64.const 0x000000000fffffff))
          (i64.shr_u (i64.and (local.get $x) (i64.const 0x0fffffff00000000)) (i64.const 4))))
        (i64.store (local.get $o) (local.get $x))
        (local.set $i (i32.add (local.get $i) (i32.const 8)))
        (local.set $o (i32.add (local.get $o) (i32.const 7)))
        (br $l)))))
`;

/**
 * `bytes` 7 bits a character: each 7 bytes (the last padded with zeros), as one little-endian
 * 56-bit number, give 8 characters of its 7-bit groups, lowest first.
 */
export function pack7(bytes: Uint8Array): string {
  const groups = Math.ceil(bytes.length / 7);
  const out = new Uint8Array(groups * 8);
  for (let g = 0; g < groups; g++) {
    // 56 bits as two halves of 28: bytes 0-3 and the low nibble of 3 in `lo`, the rest in `hi`.
    const at = (k: number) => bytes[g * 7 + k] ?? 0;
    const lo = (at(0) | at(1) << 8 | at(2) << 16 | (at(3) & 0x0f) << 24) >>> 0;
    const hi = (at(3) >>> 4 | at(4) << 4 | at(5) << 12 | at(6) << 20) >>> 0;
    for (let k = 0; k < 4; k++) {
      out[g * 8 + k] = (lo >>> (7 * k)) & 0x7f;
      out[g * 8 + 4 + k] = (hi >>> (7 * k)) & 0x7f;
    }
  }
  return new TextDecoder().decode(out);
}

/** `text` (7-bit) as a single-quoted string literal: every character raw but LF, CR, `'`, `\`. */
export function quoted(text: string): string {
  const escapes: Record<string, string> = { "\n": "\\n", "\r": "\\r", "'": "\\'", "\\": "\\\\" };
  return `'${text.replace(/[\n\r'\\]/g, (c) => escapes[c])}'`;
}

/**
 * A packed payload as the bundle's source text: a {@link Packed7} object literal, two line
 * feeds after its string (a damaged closing quote runs into them: the file does not load).
 */
export function packedSource(bytes: Uint8Array): string {
  return `{text:${quoted(pack7(bytes))}\n\n,length:${bytes.length}}`;
}

/**
 * `bundle` (a `deno bundle` output) with each text payload of guests/images (`NAME.b64`, base64)
 * packed; `payloads` names them with their base64 and packed lengths. Each is unpacked again
 * here and compared with its bytes.
 */
export function packBundle(
  bundle: string,
): { text: string; payloads: { name: string; base64: number; packed: number }[] } {
  const payloads: { name: string; base64: number; packed: number }[] = [];
  const text = bundle.replace(
    /("(?:[\w.+\-/]*\/)?guests\/images\/([\w.+-]+\.b64)"\s*(?::\s*function\s*)?\(\)\s*\{\s*[\w$]+\s*=\s*)"([A-Za-z0-9+/=]*)"/g,
    (_all, head: string, name: string, base64: string) => {
      const bytes = Uint8Array.fromBase64(base64);
      const source = packedSource(bytes);
      // The same bytes back, through the decoder the bundle runs.
      const back = (0, eval)(`(${source})`) as Packed7;
      const again = unpack7(back);
      if (again.length !== bytes.length || !again.every((b, i) => b === bytes[i])) {
        throw new Error(`pack: ${name} does not unpack to its bytes`);
      }
      payloads.push({ name, base64: base64.length, packed: source.length });
      return head + source;
    },
  );
  return { text, payloads };
}

if (import.meta.main) {
  const [file] = Deno.args;
  if (file === undefined || Deno.args.length !== 1) {
    console.error("usage: tools/pack.ts FILE");
    Deno.exit(125);
  }
  const { text, payloads } = packBundle(await Deno.readTextFile(file));
  // `deno bundle` inlines the large images' payloads this way: none found means its output
  // changed shape, and the bundle would ship them as base64. Say so; do not ship it quietly.
  if (payloads.length === 0) {
    console.error(`pack: ${file} holds no payload "guests/images/NAME.b64" to pack`);
    Deno.exit(1);
  }
  await Deno.writeTextFile(file, text);
  // Deno and V8 make ~250 more page faults (~0.3 ms) for a module of 1 MiB or more: the
  // bundle's start pays a step there (docs/performance.md, boot.first_byte). Say so.
  if (text.length >= ONE_MIB) {
    console.error(
      `pack: ${file} is ${text.length} bytes, not under 1 MiB (${ONE_MIB}): every start of it ` +
        `pays ~0.3 ms more (docs/performance.md, boot.first_byte)`,
    );
  }
  const sum = (k: "base64" | "packed") => payloads.reduce((n, p) => n + p[k], 0);
  console.error(
    `pack: ${payloads.length} payload(s), ${sum("base64")} characters of base64 -> ${
      sum("packed")
    } packed`,
  );
}
