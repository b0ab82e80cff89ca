/**
 * Everyday CLI: per-command --help, aligned help, `guests` refusing extra
 * arguments, and device options that are plain flags (registry `flag`).
 *
 * @module
 */

import assert from "node:assert/strict";
import { describe, runCli } from "./helpers/run_cli.ts";
import { EXIT } from "../launcher/exit.ts";
import { formatOptions, main } from "../launcher/cli.ts";
import { parseOptions } from "../launcher/args.ts";
import { type Device, registerDevice } from "../devices/registry.ts";
import { parseConfig } from "../launcher/config.ts";

Deno.test("help: each command prints its own usage", async () => {
  const [run, guests, disk, helpRun] = await Promise.all([
    runCli(["run", "--help"]),
    runCli(["guests", "--help"]),
    runCli(["disk", "--help"]),
    runCli(["help", "run"]),
  ]);
  for (const r of [run, guests, disk, helpRun]) {
    assert.equal(r.code, EXIT.OK, describe(r));
    assert.equal(r.stderr, "", describe(r));
  }
  assert.match(run.stdout, /Options for run:/);
  assert.doesNotMatch(run.stdout, /lguest disk/, "run --help is about run only");
  assert.equal(helpRun.stdout, run.stdout);
  assert.match(guests.stdout, /lguest guests/);
  assert.doesNotMatch(guests.stdout, /--memory/);
  assert.match(disk.stdout, /mkfs/);
});

Deno.test("help: descriptions are aligned; long options put theirs on the next line", async () => {
  const r = await runCli(["run", "--help"]);
  const opts = r.stdout.slice(
    r.stdout.indexOf("Options for run:\n") + 17,
    r.stdout.indexOf("\n\n", r.stdout.indexOf("Options for run:")),
  );
  const rows = opts.split("\n");
  assert.ok(rows.length >= 8, opts);
  for (const row of rows) {
    if (/^ {24}\S/.test(row)) continue; // a continuation line, at the column
    const body = row.trimStart();
    if (!/\S {2,}\S/.test(body)) continue; // an option alone on its line
    // An option and its description: the description starts at column 24.
    assert.ok(row[23] === " " && row[24] !== " ", `misaligned: ${JSON.stringify(row)}`);
  }
  assert.ok(rows.some((l) => /^ {6}--net tap:/.test(l)), "the tap line is an option row");
  assert.equal(
    formatOptions([["-x", "short"], ["--a-very-long-option=VALUE", "text"]]),
    "  -x                    short\n  --a-very-long-option=VALUE\n                        text",
  );
});

Deno.test("guests: extra arguments are refused", async () => {
  const r = await runCli(["guests", "shell"]);
  assert.equal(r.code, EXIT.USAGE, describe(r));
  assert.match(r.stderr, /^lguest: guests takes no arguments/, describe(r));
  assert.equal(r.stdout, "");
});

Deno.test("args: a repeatable boolean counts its uses", () => {
  const { values, positionals } = parseOptions(["--flag", "x", "--flag"], {
    flag: { type: "boolean", multiple: true },
  });
  assert.deepEqual(values.flag, ["", ""]);
  assert.deepEqual(positionals, ["x"]);
});

Deno.test("registry: a device option that is a plain flag does not swallow the guest", async () => {
  const made: string[] = [];
  registerDevice<string>({
    name: "testflag",
    option: "testflag",
    flag: true,
    usage: "    --testflag  a device with no value (test)",
    parse: (v) => {
      if (v !== "") throw new Error(`flag got a value: ${v}`);
      return v;
    },
    create(spec): Device {
      made.push(spec);
      return { type: 99, features: 0, numPages: 0, label: "testflag" };
    },
  });
  // The device is there (type 99, no driver) and "hello" is still the GUEST.
  const code = await main(["run", "--testflag", "--testflag", "hello"]);
  assert.equal(code, EXIT.OK);
  assert.equal(made.length, 2);
  assert.equal(await main(["run", "--testflag=1", "hello"]), EXIT.USAGE);
  // In a config file: true, false or a count.
  const devices = (v: unknown) =>
    parseConfig(JSON.stringify({ guests: [{ name: "a", image: "hello", testflag: v }] }))
      .guests[0].devices;
  assert.deepEqual(devices(true), [["testflag", ""]]);
  assert.deepEqual(devices(false), []);
  assert.deepEqual(devices(2), [["testflag", ""], ["testflag", ""]]);
  assert.throws(() => devices("x"), /testflag: must be true, false or a count/);
});
