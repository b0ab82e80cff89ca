/**
 * The guest kit's printf engine (`guests/kit/libc.c`), built for the host
 * by `tests/native/printf.c` and run against its table of conversions: the
 * expected text of each case, the host C library's for every conversion
 * the kit shares with C, `snprintf`'s truncation and `printf`'s console
 * sink. Every kit guest prints through this code; its rare conversions are
 * split into functions of their own (docs/performance.md, boot.first_byte),
 * and this test holds the output to what it was.
 *
 * @module
 */

import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url).pathname;

Deno.test("kit printf: every conversion, width, flag and length as the table says (and as C says where the kit follows C)", async () => {
  const clang = await new Deno.Command("clang", { args: ["--version"], stdout: "null" })
    .output().then((o) => o.success, () => false);
  if (!clang) {
    console.log("  skipped: needs clang to build tests/native/printf.c for the host");
    return;
  }
  const dir = await Deno.makeTempDir({ prefix: "kit-printf-" });
  try {
    const bin = `${dir}/printf`;
    // -fno-builtin: the kit's memcpy and strlen must not become calls of themselves.
    const cc = await new Deno.Command("clang", {
      args: [
        "-std=gnu11",
        "-O2",
        "-ffreestanding",
        "-fno-builtin",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-Wno-ignored-attributes", // PRINTF_LIKE names printf, renamed kit_printf here
        `-I${ROOT}guests/include`,
        `-I${ROOT}guests/kit`,
        "-o",
        bin,
        `${ROOT}tests/native/printf.c`,
      ],
      stderr: "piped",
    }).output();
    assert.ok(cc.success, new TextDecoder().decode(cc.stderr));
    const run = await new Deno.Command(bin, { stdout: "piped", stderr: "piped" }).output();
    const out = new TextDecoder().decode(run.stdout);
    assert.ok(run.success, out + new TextDecoder().decode(run.stderr));
    assert.match(out, /^printf: (\d+) cases, 0 failed\n$/);
    assert.ok(Number(/(\d+) cases/.exec(out)![1]) >= 80, out);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
