/**
 * Decodes every built-in image (the wasm images as checked, the x86-64
 * ones, `lguest cc`'s libposix.a) through launcher/images.ts and prints
 * one JSON object of their SHA-256s (hex): run from the checkout and from
 * a bundle of this file (tools/pack.ts, tests/pack_test.ts).
 *
 * @module
 */

import { builtinFile, loadReady, posixLibrary } from "../../launcher/images.ts";
import { MANIFEST } from "../../guests/images/index.ts";

const hex = async (bytes: Uint8Array) =>
  new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>))
    .toHex();
const out: Record<string, string> = {};
for (const g of MANIFEST.filter((g) => !g.test)) {
  const ready = await loadReady(g.name);
  if (ready === null) throw new Error(`${g.name}: no checked image`);
  await ready.verified;
  out[`${g.file}.ready`] = await hex(ready.bytes);
  if (typeof g.x86_64 === "string") {
    const elf = await builtinFile(g.x86_64);
    if (elf === null) throw new Error(`${g.x86_64}: not built in`);
    out[g.x86_64] = await hex(elf);
  }
}
out["libposix.a"] = await hex(await (await posixLibrary()).archive());
console.log(JSON.stringify(out));
