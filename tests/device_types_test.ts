/**
 * Device type numbers have one table per language (abi/device_types.ts,
 * guests/include/device_types.h) and they must agree; and the guest kit is
 * linked so that a new kit driver leaves the images of guests that do not
 * use it byte for byte the same.
 *
 * @module
 */

import assert from "node:assert/strict";
import { DEVICE_TYPES } from "../abi/device_types.ts";
import * as C from "../abi/constants.ts";

const ROOT = new URL("../", import.meta.url);
const read = (p: string) => Deno.readTextFileSync(new URL(p, ROOT));

Deno.test("device types: the TypeScript table and the C list agree", () => {
  const header = read("guests/include/device_types.h");
  const inC = [...header.matchAll(/X\((\d+),\s*(\w+),\s*"([^"]+)"\)/g)].map((m) => ({
    type: Number(m[1]),
    id: m[2],
    name: m[3],
  }));
  assert.ok(inC.length >= 3, "no X(...) lines found in device_types.h");
  assert.deepEqual(inC, DEVICE_TYPES.map((t) => ({ ...t })));
  const numbers = DEVICE_TYPES.map((t) => t.type);
  assert.equal(new Set(numbers).size, numbers.length, "a type number is used twice");
  assert.ok(!numbers.includes(0), "type 0 is an empty slot");
  // 2.6.23's three are also in lguest.h and constants.ts: same numbers.
  const lguestH = read("guests/include/lguest.h");
  for (const t of DEVICE_TYPES.filter((t) => t.type <= 3)) {
    const m = new RegExp(`#define LGUEST_DEVICE_T_${t.id}\\s+(\\d+)`).exec(lguestH);
    assert.equal(Number(m?.[1]), t.type, `lguest.h LGUEST_DEVICE_T_${t.id}`);
    assert.equal((C as Record<string, unknown>)[`LGUEST_DEVICE_T_${t.id}`], t.type);
  }
});

async function haveTools(): Promise<string | null> {
  for (const tool of ["clang", "wasm-ld", "llvm-ar"]) {
    try {
      await new Deno.Command(tool, { args: ["--version"], stdout: "null", stderr: "null" })
        .output();
    } catch {
      return tool;
    }
  }
  return null;
}

Deno.test("guest kit: a new driver changes no image of a guest that does not use it", async (t) => {
  const missing = await haveTools();
  if (missing) {
    console.log(`skipped: ${missing} is not installed (needed to build guests)`);
    return;
  }
  const top = await Deno.makeTempDir({ prefix: "lguest-kit-driver-" });
  // A copy of guests/ (without the POSIX layer) and what build.ts imports beside it.
  const tmp = `${top}/guests`;
  try {
    await Deno.mkdir(tmp);
    const src = new URL("guests/", ROOT).pathname;
    const root = new URL(".", ROOT).pathname;
    const cp = await new Deno.Command("cp", {
      args: [
        "-r",
        `${src}build.ts`,
        `${src}payload_check.ts`,
        `${src}include`,
        `${src}kit`,
        `${src}hello.c`,
        tmp,
      ],
    }).output();
    assert.ok(cp.success);
    const cpDeps = await new Deno.Command("cp", {
      args: ["-r", `${root}engines`, `${root}sys`, `${root}abi`, top],
    }).output();
    assert.ok(cpDeps.success);
    await Deno.copyFile(`${src}shell.c`, `${tmp}/shell.c`);
    // A newcomer's driver: one new file, nothing else edited.
    await Deno.writeTextFile(
      `${tmp}/kit/newdev.c`,
      `#include "kit.h"
static unsigned seen;
static int newdev_probe(struct lg_device *dev) { (void)dev; seen++; return 0; }
static const struct lg_driver newdev_driver = { .name = "newdev", .type = 99, .probe = newdev_probe };
KIT_DRIVER(newdev_driver);
unsigned newdev_devices(void) { return seen; }
`,
    );
    // ... and a guest that uses it.
    await Deno.writeTextFile(
      `${tmp}/newdevuser.c`,
      `/* @guest: uses the newdev driver */
#include "kit.h"
unsigned newdev_devices(void);
int main(void) { printf("newdev devices: %u\\n", newdev_devices()); return 0; }
`,
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-read", "--allow-write", "--allow-run", "--allow-env", "build.ts"],
      cwd: tmp,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    await t.step("hello and shell are unchanged", async () => {
      for (const name of ["hello", "shell"]) {
        const fresh = await Deno.readFile(`${tmp}/images/${name}.wasm`);
        const committed = await Deno.readFile(new URL(`guests/images/${name}.wasm`, ROOT));
        assert.deepEqual(fresh, committed, `${name}.wasm changed`);
      }
    });
    await t.step("the guest that uses it links the driver", async () => {
      const user = await Deno.readFile(`${tmp}/images/newdevuser.wasm`);
      const hello = await Deno.readFile(`${tmp}/images/hello.wasm`);
      const text = (b: Uint8Array) => new TextDecoder("latin1").decode(b);
      assert.ok(text(user).includes("newdev\0"), "driver name not in the image");
      assert.ok(!text(hello).includes("newdev\0"));
    });
  } finally {
    await Deno.remove(top, { recursive: true });
  }
});
