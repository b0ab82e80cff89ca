/**
 * The bundle's image payloads 7 bits a character (tools/pack.ts, the last
 * step of `deno task bundle`; launcher/images.ts `unpack7`): any bytes
 * round-trip, through the WebAssembly unpacker and the JavaScript one, from
 * a string literal that is pure ASCII and holds no raw line end; a payload
 * that is not as packed throws; and a bundle decodes every built-in image to
 * the same bytes as the checkout, with its large payloads packed, not
 * base64, also when Deno loads it as TypeScript (a copy with no extension
 * or a `.ts` name: its emit drops comments).
 *
 * @module
 */

import assert from "node:assert/strict";
import { ROOT_PATH } from "./helpers/run_cli.ts";
import { type Packed7, unpack7, unpack7Js } from "../launcher/images.ts";
import { pack7, packBundle, packedSource, quoted, UNPACK7_WAT } from "../tools/pack.ts";

/** A packed payload as the bundle holds it: its source text evaluated. */
function packed(bytes: Uint8Array): Packed7 {
  return new Function(`return ${packedSource(bytes)}`)() as Packed7;
}

/** `unpack7` without WebAssembly (V8's --jitless): the same, in JavaScript. */
function unpackJs(p: Packed7): Uint8Array {
  const bytes = new Uint8Array(p.text.length + 8);
  new TextEncoder().encodeInto(p.text, bytes);
  unpack7Js(bytes, p.text.length);
  return bytes.subarray(0, p.length);
}

function random(n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(b.subarray(i, i + 65536));
  return b;
}

Deno.test("pack: any bytes round-trip 7 bits a character, in WebAssembly and in JavaScript", () => {
  const cases = [...Array.from({ length: 40 }, (_, n) => random(n)), random(100_003)];
  cases.push(new Uint8Array(50).fill(0xff), new Uint8Array(50));
  for (const bytes of cases) {
    const text = pack7(bytes);
    assert.equal(text.length, Math.ceil(bytes.length / 7) * 8);
    assert.ok(/^[\0-\x7f]*$/.test(text), "pure ASCII");
    const source = packedSource(bytes);
    const literal = /^\{text:('.*')\n\n,length:\d+\}$/s.exec(source)?.[1];
    assert.ok(literal, source.slice(0, 40));
    assert.ok(!/[\n\r]/.test(literal), "no raw line end in the literal");
    assert.equal((0, eval)(literal), text);
    const p = packed(bytes);
    assert.equal(p.text, text);
    assert.deepEqual(unpack7(p), bytes, `${bytes.length} bytes`);
    assert.deepEqual(unpackJs(p), bytes, `${bytes.length} bytes, in JavaScript`);
  }
  // Every 7-bit value, the four escaped ones included, through the literal and back.
  const all = new Uint8Array(8 * 128 + 8);
  for (let i = 0; i < 8 * 128; i++) all[i] = (i * 37) & 0x7f;
  unpack7Js(all, 8 * 128);
  const every = all.slice(0, 7 * 128);
  const text = pack7(every);
  assert.equal(new Set(text).size, 128);
  assert.equal(quoted(text).length, text.length + 2 + 4 * 8, "LF, CR, ' and \\ escaped");
  assert.deepEqual(unpack7(packed(every)), every);
});

Deno.test("pack: the unpacker's WebAssembly is the source it says", async () => {
  const wat = await Deno.makeTempFile({ suffix: ".wat" });
  try {
    await Deno.writeTextFile(wat, UNPACK7_WAT);
    const r = await new Deno.Command("wat2wasm", { args: [wat, "--output=-"], stderr: "piped" })
      .output().catch(() => null);
    if (r === null) {
      console.log("pack: wat2wasm (wabt) not installed: the embedded bytes are not compared");
      return;
    }
    assert.ok(r.success, new TextDecoder().decode(r.stderr));
    const images = await Deno.readTextFile(`${ROOT_PATH}/launcher/images.ts`);
    const embedded =
      /unpack7Module \?\?= new WebAssembly\.Module\(\s*Uint8Array\.fromBase64\(([^)]+)\)/
        .exec(images)?.[1];
    assert.ok(embedded, "the embedded module in launcher/images.ts");
    const base64 = [...embedded.matchAll(/"([A-Za-z0-9+/=]*)"/g)].map((m) => m[1]).join("");
    assert.deepEqual(Uint8Array.fromBase64(base64), r.stdout);
  } finally {
    await Deno.remove(wat);
  }
});

Deno.test("pack: a payload that is not as packed throws", () => {
  const bytes = random(1000);
  const good = packed(bytes);
  const withText = (text: string, rest: Partial<Packed7> = {}): Packed7 => ({
    ...good,
    text,
    ...rest,
  });
  assert.deepEqual(unpack7(withText(good.text)), bytes);
  assert.throws(
    () => unpack7(withText(good.text.slice(8))),
    /characters packed, 1000 bytes expected/,
  );
  assert.throws(() => unpack7(withText(`\u00e9${good.text.slice(1)}`)), /outside 7 bits/);
  assert.throws(() => unpack7(withText(good.text, { length: 1007 })), /expected/);
  assert.throws(() => unpack7({ ...good, text: (() => "x") as unknown as string }), /not a packed/);
  assert.throws(() => unpack7(withText("", { length: -1 })), /not a packed/);
});

Deno.test("pack: where WebAssembly fails (a V8 limit), the JavaScript unpacker does it: not damage", () => {
  const bytes = random(200_000);
  const Memory = WebAssembly.Memory;
  try {
    // As V8's --wasm-max-mem-pages=1 makes it: the unpacker's memory cannot be had.
    WebAssembly.Memory = function () {
      throw new RangeError("WebAssembly.Memory(): could not allocate memory");
    } as unknown as typeof WebAssembly.Memory;
    assert.deepEqual(unpack7(packed(bytes)), bytes);
  } finally {
    WebAssembly.Memory = Memory;
  }
});

Deno.test("pack: a bundle decodes every built-in image to the checkout's bytes, its large payloads packed", async () => {
  const dir = await Deno.makeTempDir({ prefix: "lguest_pack_" });
  try {
    const probe = "tests/helpers/pack_probe.ts";
    const run = async (args: string[]) => {
      const r = await new Deno.Command(Deno.execPath(), {
        args,
        cwd: ROOT_PATH,
        stdin: "null",
        env: { NO_COLOR: "1" },
      }).output();
      const dec = new TextDecoder();
      assert.equal(r.code, 0, `deno ${args.join(" ")}: ${dec.decode(r.stderr)}`);
      return dec.decode(r.stdout);
    };
    const js = `${dir}/probe.js`;
    await run(["bundle", "--quiet", "--platform", "deno", "-o", js, probe]);
    const base64 = await Deno.readTextFile(js);
    const { text, payloads } = packBundle(base64);
    await Deno.writeTextFile(js, text);
    // Every text payload of the bundle is packed, and none is left as a long base64 string.
    const names = [...base64.matchAll(/"guests\/images\/([\w.+-]+\.b64)"/g)].map((m) => m[1]);
    assert.ok(names.includes("sqlite3.wasm.ready.b64") && names.includes("lua.wasm.ready.b64"));
    assert.deepEqual(payloads.map((p) => p.name).sort(), [...new Set(names)].sort());
    const left = /"[A-Za-z0-9+/]{16384,}={0,2}"/.exec(text);
    assert.equal(left, null, `a base64 string of ${left?.[0].length} characters left`);
    // 8 characters for 7 bytes and the escapes (LF, CR, ' and \: 4 of 128 values, two
    // characters each), where base64 takes 4 for 3.
    let bound = 0, b64 = 0;
    for (const p of payloads) {
      const n = await Deno.readTextFile(`${ROOT_PATH}/guests/images/${p.name}`);
      const bytes = Uint8Array.fromBase64(n).length;
      bound += Math.ceil(Math.ceil(bytes / 7) * 8 * (1 + 1 / 25)) + 100;
      b64 += n.length;
    }
    assert.ok(base64.length - text.length >= b64 - bound, `${base64.length} -> ${text.length}`);
    assert.ok(text.length < base64.length * 0.9, `${base64.length} -> ${text.length}`);
    assert.ok(/^[\0-\x7f]*$/.test(text), "the bundle is pure ASCII");
    // The same bytes as the checkout decodes (and checks: length and SHA-256).
    const checkout = JSON.parse(await run(["run", probe]));
    assert.ok(Object.keys(checkout).length >= 10, Object.keys(checkout).join(" "));
    assert.deepEqual(JSON.parse(await run(["run", js])), checkout);
    // Loaded as TypeScript, whose emit drops comments (a copy with no extension or a `.ts`
    // name, as a shebang script or `deno install` makes it): the same bytes.
    for (const name of [`${dir}/probe`, `${dir}/probe.ts`]) {
      await Deno.copyFile(js, name);
      assert.deepEqual(JSON.parse(await run(["run", name])), checkout, name);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
