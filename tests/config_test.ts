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
