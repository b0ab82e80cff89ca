/** The --config file format: good files parse; mistakes name the field and line. */

import assert from "node:assert/strict";
import "../devices/all.ts";
import { UsageError } from "../devices/registry.ts";
import { parseConfig } from "../launcher/config.ts";

Deno.test("config: the README example parses", () => {
  const plan = parseConfig(`{ "guests": [
    { "name": "a", "image": "netd",  "memory": "16M", "net": ["segment:lan"], "args": "ip=10.0.0.1/24" },
    { "name": "b", "image": "shell", "net": ["segment:lan"], "args": "ip=10.0.0.2/24", "console": "stdio" } ] }`);
  assert.equal(plan.guests.length, 2);
  assert.deepEqual(plan.guests[0], {
    name: "a",
    image: "netd",
    memory: "16M",
    args: "ip=10.0.0.1/24",
    stdio: false,
    devices: [["net", "segment:lan"]],
  });
  assert.equal(plan.guests[1].stdio, true);
});

function error(text: string): string {
  try {
    parseConfig(text);
  } catch (e) {
    assert.ok(e instanceof UsageError, String(e));
    assert.ok(!e.message.includes("\n"), "one line");
    return e.message;
  }
  throw new Error("no error for: " + text);
}

Deno.test("config: errors name the field and its line", () => {
  const two =
    `{ "guests": [\n  { "name": "a", "image": "hello" },\n  { "name": "a", "image": "hello" } ] }`;
  assert.match(error(two), /^line 3: guests\[1\]\.name: duplicate guest name 'a'$/);
  assert.match(
    error(`{"guests": [\n{"name": "x", "image": "hello",\n "memroy": "16M"}]}`),
    /^line 3: guests\[0\]\.memroy: unknown field/,
  );
  assert.match(error(`{"guests": [{"image": "hello"}]}`), /guests\[0\]: missing "name"/);
  assert.match(error(`{"guests": [{"name": "x"}]}`), /guests\[0\]: missing "image"/);
  assert.match(
    error(`{"guests": [{"name": "x", "image": "hello", "net": "segment:lan"}]}`),
    /guests\[0\]\.net: must be an array of strings/,
  );
  assert.match(
    error(`{"guests": [{"name": "x", "image": "a", "console": "stdio"},
      {"name": "y", "image": "a", "console": "stdio"}]}`),
    /^line 2: guests\[1\]\.console: only one guest can have stdio/,
  );
  assert.match(error(`{"guests": []}`), /guests: must be a non-empty array/);
  assert.match(error(`{"guest": []}`), /guest: unknown field/);
  assert.match(error(`{"guests": [\n{"name": "x",\n "image": }]}`), /^line 3: unexpected '}'/);
  assert.match(error(`{"guests": [1]}`), /guests\[0\]: must be an object/);
  assert.match(error(`[]`), /must hold an object/);
});

Deno.test("config: relative file names mean files beside the config file, not the current folder", async () => {
  const { relativeTo } = await import("../launcher/config.ts");
  const { describe, runCli } = await import("./helpers/run_cli.ts");
  const plan = parseConfig(`{ "guests": [
    { "name": "a", "image": "hello", "block": ["d.img,ro", "/abs.img"], "net": ["segment:lan,pcap=a.pcap"] },
    { "name": "b", "image": "prog.wasm" } ], "pcap": "all.pcap" }`);
  const r = relativeTo(plan, "cfg/lan.json", new Set(["hello"]));
  assert.equal(r.guests[0].image, "hello", "a built-in name stays built-in");
  assert.equal(r.guests[1].image, "cfg/prog.wasm");
  assert.deepEqual(r.guests[0].devices.map((d) => d[1]), [
    "cfg/d.img,ro",
    "/abs.img",
    "segment:lan,pcap=cfg/a.pcap",
  ]);
  assert.equal(r.pcap, "cfg/all.pcap");
  assert.equal(relativeTo(plan, "lan.json", new Set(["hello"])).pcap, "all.pcap");
  // End to end: run from another folder; the disk and the capture are found and written beside it.
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${dir}/d.img`, new Uint8Array(65536));
    await Deno.writeTextFile(
      `${dir}/run.json`,
      `{ "guests": [{ "name": "h", "image": "hello", "console": "stdio", "block": ["d.img"] }],
         "pcap": "out.pcap" }`,
    );
    const run = await runCli(["run", "--config", `${dir}/run.json`]);
    assert.equal(run.code, 0, describe(run));
    assert.ok((await Deno.stat(`${dir}/out.pcap`)).isFile, "pcap beside the config");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
