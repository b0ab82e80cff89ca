/**
 * A generated module's payload as the build writes it (guests/build.ts,
 * guests/posix/build.ts): its compression, and the record of what it
 * decodes to, checked by a run when it decodes it (launcher/images.ts
 * `decode`).
 *
 * @module
 */

import { brotliCompressSync, constants as zlib } from "node:zlib";

/**
 * The lines of a generated module that say what its payload decodes to:
 * its length and SHA-256 (base64), computed here at build time. A run
 * checks both when it decodes the payload (launcher/images.ts `decode`):
 * brotli has no checksum of its own, and a flipped base64 character can
 * decode to a valid image that is not the one the build checked and
 * instrumented (docs/security.md, built-in images).
 */
export async function payloadCheck(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return `export const SIZE = ${bytes.length};\n` +
    `export const SHA256 = "${new Uint8Array(digest).toBase64()}";\n`;
}

/**
 * Brotli at its best (quality 11, a 16 MiB window; node:zlib at build
 * time only, a run decodes with `DecompressionStream("brotli")`):
 * deterministic for one Deno, see `embeddedPayload`. Every byte of the
 * modules a run's module graph holds costs start-up time (boot.first_byte,
 * docs/performance.md): against gzip, sqlite3's image is 21% smaller.
 */
export function brotli(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(brotliCompressSync(bytes, {
    params: {
      [zlib.BROTLI_PARAM_QUALITY]: 11,
      [zlib.BROTLI_PARAM_LGWIN]: 24,
      [zlib.BROTLI_PARAM_SIZE_HINT]: bytes.length,
    },
  }));
}
