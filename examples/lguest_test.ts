/**
 * Examples: lguest guests in `deno test`, through the public API only
 * (`mod.ts`). Run with `deno task test examples/` (or, outside this
 * repository, `deno test --allow-read --allow-write --allow-ffi`).
 *
 * @module
 */

import assert from "node:assert/strict";
import { runGuest, startGuest, startLab } from "../mod.ts";

Deno.test("example: hello runs to its end", async () => {
  const { code, reason, output } = await runGuest({ image: "hello", memory: "16M" });
  assert.equal(code, 0, reason);
  assert.equal(output, "Hello from an lguest guest! I have 16 MiB of RAM.\n");
});

Deno.test("example: the shell writes a disk; the bytes are in the file", async () => {
  const disk = await Deno.makeTempFile({ suffix: ".img" });
  try {
    await Deno.truncate(disk, 1 << 20);
    await using shell = await startGuest({ image: "shell", block: [disk], timeoutMs: 20_000 });
    await shell.expect("lguest$ ");
    shell.write("blk write 0 0 written by a guest\n");
    await shell.expect("wrote 1 sector(s)");
    shell.write("blk crc 0\n");
    const crc = await shell.expect(/crc32 [0-9a-f]{8}/);
    shell.write("poweroff\n");
    const result = await shell.done;
    assert.equal(result.code, 0, result.reason);
    assert.match(crc, /^crc32 /);
    const bytes = await Deno.readFile(disk);
    assert.equal(new TextDecoder().decode(bytes.subarray(0, 21)), "written by a guest\0\0\0");
  } finally {
    await Deno.remove(disk);
  }
});

Deno.test("example: two guests on one segment, one pinging the other", async () => {
  await using lab = await startLab({
    guests: [
      { name: "a", image: "netd", memory: "16M", net: ["segment:lan"], args: "ip=10.0.0.1/24" },
      { name: "b", image: "shell", net: ["segment:lan"], args: "ip=10.0.0.2/24" },
    ],
  }, { timeoutMs: 20_000 });
  const b = lab.guest("b");
  await b.expect("lguest$ ");
  b.write("ping 10.0.0.1 3\n");
  await b.expect("3 packets transmitted, 3 received");
  b.write("poweroff\n");
  assert.equal((await b.done).code, 0);
  // `await using` stops netd and closes everything the lab opened.
});
