/**
 * The guest command line (docs/guest-abi.md §3, GUIDE contract 2): the
 * Launcher quotes the user's words, the kit's `cmdline_split()` (run in the
 * test-args guest) gives them back exactly; no trailing space; 2047 bytes
 * at most (docs/deviations.md "command line").
 *
 * @module
 */

import assert from "node:assert/strict";
// Test-only dependency, inline (not in deno.json, see host_dma_property_test.ts).
// deno-lint-ignore no-import-prefix
import fc from "npm:fast-check@^3.23.2";
import { joinCmdline, quoteWord, splitCmdline } from "../launcher/cmdline.ts";
import { UsageError } from "../devices/registry.ts";
import { describe, runCli } from "./helpers/run_cli.ts";

/** Run test-args with these words; returns the line and the words it saw. */
async function guestWords(args: string[]): Promise<string[]> {
  const r = await runCli(["run", "test-args", "--", ...args]);
  assert.equal(r.code, 0, describe(r));
  const m = /^argc=(\d+)\n/.exec(r.stdout);
  assert.ok(m, describe(r));
  const rest = r.stdout.slice(m[0].length);
  const words = [...rest.matchAll(/^\[(.*)\]$/gm)].map((x) =>
    x[1].replace(/\\x([0-9a-f]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16)))
  );
  assert.equal(words.length, Number(m[1]), describe(r));
  return words;
}

Deno.test("cmdline: plain words as is, others quoted, one space between, none after", () => {
  assert.equal(joinCmdline(["ip=10.0.0.2/24", "-v"]), "ip=10.0.0.2/24 -v");
  assert.equal(quoteWord("a b"), '"a b"');
  assert.equal(quoteWord(""), '""');
  assert.equal(quoteWord('say "hi"'), '"say \\"hi\\""');
  assert.equal(quoteWord("back\\slash"), '"back\\\\slash"');
  assert.equal(quoteWord("it's"), `"it's"`);
  assert.equal(quoteWord("tab\there"), '"tab\there"');
  assert.equal(joinCmdline([]), "");
});

Deno.test("cmdline: splitting a joined line gives back the words (property)", () => {
  const word = fc.string({ unit: fc.constantFrom("a", " ", "\t", "\n", '"', "'", "\\", "é", "=") });
  fc.assert(fc.property(fc.array(word, { maxLength: 8 }), (words) => {
    assert.deepEqual(splitCmdline(joinCmdline(words)), words);
  }));
});

Deno.test("cmdline: hand-written lines (config args) split as documented", () => {
  assert.deepEqual(splitCmdline("  a\t b\n"), ["a", "b"]);
  assert.deepEqual(splitCmdline('a"b c"d ""'), ["ab cd", ""]);
  assert.deepEqual(splitCmdline("x\\y"), ["x\\y"]); // outside quotes \ is a byte
  assert.deepEqual(splitCmdline('"\\q"'), ["\\q"]); // inside, it escapes only " and \
  assert.deepEqual(splitCmdline('"open to the end'), ["open to the end"]);
});

Deno.test("cmdline: 2047 bytes fit, 2048 are refused", () => {
  assert.equal(joinCmdline(["x".repeat(2047)]).length, 2047);
  assert.throws(() => joinCmdline(["x".repeat(2048)]), UsageError);
  assert.throws(() => joinCmdline(["a b".repeat(682)]), /longer than 2047 bytes \(2048\)/);
});

Deno.test("cmdline: the guest's cmdline_split recovers every word", async () => {
  const words = ["plain", "two words", "", 'say "hi"', "back\\slash", "it's", "tab\tnl\nend", "é"];
  assert.deepEqual(await guestWords(words), words);
});

Deno.test("cmdline: a 2047-byte command line reaches the guest whole", async () => {
  const long = "y".repeat(2047);
  assert.deepEqual(await guestWords([long]), [long]);
  const r = await runCli(["run", "test-args", "--", long + "y"]);
  assert.match(r.stderr, /command line longer than 2047 bytes/, describe(r));
});

Deno.test("cmdline: no words, no command line", async () => {
  assert.deepEqual(await guestWords([]), []);
  // And what the guest gets has no trailing space (hello prints it whole).
  const r = await runCli(["run", "hello", "--", "a", "b c"]);
  assert.match(r.stdout, /^My command line: a "b c"$/m, describe(r));
});

Deno.test("cmdline: a config file's args may be a string (as is) or words (quoted)", async () => {
  const { parseConfig } = await import("../launcher/config.ts");
  const args = (v: unknown) =>
    parseConfig(JSON.stringify({ guests: [{ name: "a", image: "hello", args: v }] })).guests[0]
      .args;
  assert.equal(args("ip=10.0.0.1/24 x"), "ip=10.0.0.1/24 x");
  assert.equal(args(["a b", "", "c"]), '"a b" "" c');
  assert.throws(() => args([1]), /args: must be a string .* or an array of strings/);
  assert.throws(() => args("x".repeat(2048)), /args: command line longer than 2047 bytes/);
});
