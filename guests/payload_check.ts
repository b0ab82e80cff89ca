/**
 * The build's record of a generated module's payload (guests/build.ts,
 * guests/posix/build.ts), checked by a run when it decodes it
 * (launcher/images.ts `decode`).
 *
 * @module
 */

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
