/**
 * Command-line edges a new user hits: --help after any subcommand, `help
 * help`, a missing Deno permission (one line, exit EXIT.USAGE, never a stack
 * trace), the same disk given twice, stray words and empty option values.
 *
 * @module
 */

import assert from "node:assert/strict";
import { describe, ROOT_PATH, runCli } from "./helpers/run_cli.ts";
import { EXIT } from "../launcher/exit.ts";
import { parseNetSpec } from "../devices/net/spec.ts";

/** `deno run FLAGS main.ts ARGS` in `cwd` (fewer permissions than the task). */
async function runWith(flags: string[], args: string[], cwd: string) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-prompt", ...flags, `${ROOT_PATH}/main.ts`, ...args],
    cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("help: -h/--help after every disk subcommand and cc is help, never a file name", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    const cmds = [
      ["disk", "mkfs", "--help", `${tmp}/x.img`, "1M"],
      ["disk", "mkfs", `${tmp}/x.img`, "-h"],
      ["disk", "ls", "-h"],
      ["disk", "put", "--help"],
      ["disk", "get", "-h"],
      ["disk", "rm", "--help"],
      ["disk", "check", "-h"],
      ["cc", "-o", "a.wasm", "--help"],
      ["help", "help"],
    ];
    const rs = await Promise.all(cmds.map((c) => runCli(c)));
    rs.forEach((r, i) => {
      assert.equal(r.code, EXIT.OK, `${cmds[i].join(" ")}: ${describe(r)}`);
      assert.match(r.stdout, /Usage/, cmds[i].join(" "));
      assert.equal(r.stderr, "", cmds[i].join(" "));
    });
    assert.deepEqual([...Deno.readDirSync(tmp)], [], "no file was made");
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("help: the usage's descriptions start in one column", async () => {
  const r = await runCli(["--help"]);
  const rows = r.stdout.split("\n").filter((l) => /^ {2}lguest \S/.test(l) && /\S {2,}\S/.test(l));
  assert.ok(rows.length >= 5, r.stdout);
  const col = (l: string) =>
    l.search(/\S {2,}\S/) + l.slice(l.search(/\S {2,}\S/)).search(/ \S/) + 1;
  const cols = new Set(rows.map(col));
  assert.equal(cols.size, 1, rows.join("\n"));
});

Deno.test("words the commands do not take are refused with one line", async () => {
  const [version, guests, twice] = await Promise.all([
    runCli(["--version", "extra"]),
    runCli(["guests", "--json", "x"]),
    runCli(["guests", "--json", "--json"]),
  ]);
  assert.equal(twice.code, EXIT.USAGE, describe(twice));
  assert.equal(twice.stderr, "lguest: guests takes --json once (see 'lguest guests --help')\n");
  assert.equal(version.code, EXIT.USAGE, describe(version));
  assert.match(version.stderr, /^lguest: --version takes no arguments \(got 'extra'\)\n$/);
  assert.equal(guests.code, EXIT.USAGE, describe(guests));
  assert.match(guests.stderr, /got 'x'/, describe(guests));
  for (const bad of ["segment:lan,pcap=", "segment:lan,pcap=a,pcap=b", "tap:t0,ip="]) {
    assert.throws(() => parseNetSpec(bad), /needs a value|given twice/, bad);
  }
});

Deno.test("a missing Deno permission is one line naming the flag, exit EXIT.USAGE", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${tmp}/d.img`, new Uint8Array(65536));
    const rw = ["--allow-read", "--allow-write"];
    const [ffi, read, dev] = await Promise.all([
      runWith(["--allow-read"], ["run", "--block", "d.img", "hello"], tmp),
      runWith([], ["run", "./nosuch.wasm"], tmp),
      (async () => {
        const t = [...rw, "--allow-ffi"];
        await Deno.writeTextFile(`${tmp}/n.txt`, "notes\n");
        await runWith(t, ["disk", "mkfs", "e.img", "1M"], tmp);
        await runWith(t, ["disk", "put", "e.img", "n.txt", "/n.txt"], tmp);
        return await runWith(t, ["disk", "get", "e.img", "/n.txt", "/dev/stdout"], tmp);
      })(),
    ]);
    assert.equal(ffi.code, EXIT.USAGE, ffi.stderr);
    assert.match(ffi.stderr, /^lguest: --block d\.img: needs Deno's --allow-ffi permission/);
    assert.equal(read.code, EXIT.USAGE, read.stderr);
    assert.match(read.stderr, /^lguest: \.\/nosuch\.wasm: needs Deno's --allow-read permission/);
    assert.equal(dev.code, EXIT.USAGE, dev.stderr);
    assert.match(dev.stderr, /^lguest disk: .*\/dev\/stdout.*--allow-all; name a regular file\n$/);
    const [cc, json, disk] = await Promise.all([
      runWith(["--allow-read", "--allow-write"], ["cc", "-o", "a.wasm", "a.c"], tmp),
      runWith(["--allow-read"], ["run", "--json", "j.json", "hello"], tmp),
      runWith(["--allow-read"], ["disk", "ls", "e.img"], tmp),
    ]);
    assert.match(cc.stderr, /^lguest: cc: needs Deno's --allow-run=clang,clang-14 permission/);
    assert.match(json.stderr, /^lguest: --json j\.json: needs Deno's --allow-write permission/);
    assert.match(disk.stderr, /^lguest disk: needs Deno's --allow-ffi permission/);
    // No permission at all, and the API without --allow-ffi: the stat's fallback for device
    // paths went to libc and threw Deno's raw NotCapable for ffi (the CLI's line without its
    // `--block d.img:`, the API not a UsageError).
    await Deno.writeTextFile(
      `${tmp}/api.ts`,
      `import { runGuest, UsageError } from ${JSON.stringify(`file://${ROOT_PATH}/mod.ts`)};\n` +
        `try { await runGuest({ image: "shell", block: ["d.img"], input: "poweroff\\n" }); }\n` +
        `catch (e) { console.error(e instanceof UsageError ? "UsageError: " + e.message : e); }\n`,
    );
    const api = (flags: string[]) =>
      new Deno.Command(Deno.execPath(), {
        args: ["run", "--no-prompt", ...flags, "api.ts"],
        cwd: tmp,
        stdin: "null",
      }).output().then((o) => new TextDecoder().decode(o.stderr));
    const [none, apiNone, apiRead] = await Promise.all([
      runWith([], ["run", "--block", "d.img", "hello"], tmp),
      api([`--allow-read=${ROOT_PATH}`]),
      api([`--allow-read=${ROOT_PATH},d.img`]),
    ]);
    assert.match(none.stderr, /^lguest: --block d\.img: needs Deno's --allow-read permission/);
    assert.match(apiNone, /^UsageError: --block d\.img: needs Deno's --allow-read permission/);
    assert.match(apiRead, /^UsageError: --block d\.img: needs Deno's --allow-ffi permission/);
    for (const r of [ffi, read, dev, cc, json, disk, none]) {
      assert.equal(r.code, EXIT.USAGE, r.stderr);
      assert.equal(r.stderr.split("\n").length, 2, `one line: ${r.stderr}`);
      assert.doesNotMatch(r.stderr, /Uncaught|run again with/);
    }
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("--config: two guests given one writable disk says so (not 'another lguest'); ,ro for all is shared", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${tmp}/d.img`, new Uint8Array(65536));
    const config = (a: string, b: string) =>
      JSON.stringify({
        guests: [
          { name: "a", image: "hello", block: [a] },
          { name: "b", image: "hello", block: [b] },
        ],
      });
    await Deno.writeTextFile(`${tmp}/rw.json`, config("d.img", "./d.img,ro"));
    const r = await runCli(["run", "--config", `${tmp}/rw.json`]);
    assert.equal(r.code, EXIT.USAGE, describe(r));
    assert.match(
      r.stderr,
      /^lguest: b: block .*\.\/d\.img,ro: the same disk as guest a's block .*d\.img \(guests of one run share a disk only when every one has it ,ro\)\n$/,
    );
    await Deno.writeTextFile(`${tmp}/ro.json`, config("d.img,ro", "d.img,ro"));
    const ok = await runCli(["run", "--config", `${tmp}/ro.json`]);
    assert.equal(ok.code, EXIT.OK, describe(ok));
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("--block: the same disk twice in one run says so (not 'another lguest')", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    const img = `${tmp}/d.img`;
    await Deno.writeFile(img, new Uint8Array(65536));
    const r = await runCli(["run", "--block", img, "--block", `${tmp}/./d.img,ro`, "hello"]);
    assert.equal(r.code, EXIT.USAGE, describe(r));
    assert.match(
      r.stderr,
      /\/\.\/d\.img,ro: the same disk as --block .*\/d\.img \(a run uses a disk once\)\n$/,
    );
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("--json/--pcap naming a file the run reads (its disk, its image, the config, the other report) is refused, the file untouched", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    const img = `${tmp}/d.img`;
    const disk = new Uint8Array(65536).fill(7);
    await Deno.writeFile(img, disk);
    await Deno.link(img, `${tmp}/hard.img`);
    await Deno.symlink(img, `${tmp}/soft.img`);
    const wasm = `${tmp}/hello.wasm`;
    await Deno.copyFile(`${ROOT_PATH}/guests/images/hello.wasm`, wasm);
    const image = await Deno.readFile(wasm);
    const conf = `${tmp}/c.json`;
    const confText = JSON.stringify({
      guests: [{ name: "a", image: "hello", net: ["segment:s,pcap=c.json"] }],
    });
    await Deno.writeTextFile(conf, confText);
    const cases: [string[], RegExp][] = [
      [["--block", img, "--json", img], /--json .*d\.img: the same file as --block .*d\.img/],
      [
        ["--block", img, "--json", `${tmp}/soft.img`],
        /--json .*soft\.img: the same file as --block/,
      ],
      [
        ["--block", img, "--net", "segment:s", "--pcap", `${tmp}/hard.img`],
        /--pcap .*hard\.img: the same/,
      ],
      [
        ["--block", img, "--net", `segment:s,pcap=${img}`],
        /--net segment:s,pcap=.*: the same file as --block/,
      ],
      [["--json", wasm], /--json .*hello\.wasm: the same file as image .*hello\.wasm/],
      [
        ["--json", `${tmp}/r`, "--net", "segment:s", "--pcap", `${tmp}/r`],
        /--json .*r: the same file as --pcap/,
      ],
    ];
    const rs = await Promise.all(
      cases.map(([o]) => runCli(["run", ...o, o.includes(wasm) ? wasm : "hello"])),
    );
    rs.forEach((r, i) => {
      assert.equal(r.code, EXIT.USAGE, `${cases[i][0].join(" ")}: ${describe(r)}`);
      assert.match(r.stderr, cases[i][1]);
      assert.match(r.stderr, /\(a run does not write over its own input\)\n$/);
      assert.equal(r.stderr.split("\n").length, 2, r.stderr);
    });
    const c = await runCli(["run", "--config", conf]);
    assert.equal(c.code, EXIT.USAGE, describe(c));
    assert.match(
      c.stderr,
      /^lguest: guest a's --net segment:s,pcap=.*c\.json: the same file as --config/,
    );
    const j = await runCli(["run", "--config", conf.replace("c.json", "./c.json"), "--json", conf]);
    assert.equal(j.code, EXIT.USAGE, describe(j));
    assert.deepEqual(await Deno.readFile(img), disk);
    assert.deepEqual(await Deno.readFile(wasm), image);
    assert.equal(await Deno.readTextFile(conf), confText);
    assert.equal(await exists(`${tmp}/r`), false);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("cli: two outputs in one file are refused: --json and --pcap by two spellings of a new file, stdout on --json or --pcap", async () => {
  // Before: `--pcap p.pcap --json ./p.pcap` (or sub/../p.pcap) ran with exit 0 and the capture was
  // the report; `--json o.json > o.json` lost the console's line, `>> p.pcap` broke the capture.
  const tmp = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${tmp}/sub`);
    for (const json of [`${tmp}/./p.pcap`, `${tmp}/sub/../p.pcap`]) {
      const r = await runCli([
        "run",
        "--net",
        "segment:s",
        "--pcap",
        `${tmp}/p.pcap`,
        "--json",
        json,
        "hello",
      ]);
      assert.equal(r.code, EXIT.USAGE, describe(r));
      assert.match(r.stderr, /--json .*p\.pcap: the same file as --pcap/);
      assert.equal(await exists(`${tmp}/p.pcap`), false);
    }
    for (
      const [opts, file, label] of [
        [`--json ${tmp}/o.json`, `${tmp}/o.json`, "--json"],
        [`--net segment:s --pcap ${tmp}/p2.pcap`, `${tmp}/p2.pcap`, "--pcap"],
      ]
    ) {
      const out = await new Deno.Command("bash", {
        args: [
          "-c",
          `"$@" ${opts} hello > ${file}`,
          "bash",
          Deno.execPath(),
          "run",
          "-A",
          `${ROOT_PATH}/main.ts`,
          "run",
        ],
        stderr: "piped",
      }).output();
      const err = new TextDecoder().decode(out.stderr);
      assert.equal(out.code, EXIT.USAGE, err);
      assert.match(err, new RegExp(`standard output is the same file as ${label} `));
    }
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

Deno.test("a closed stdout (lguest run ... | head) ends the run with 141 (SIGPIPE), not after the guest's last line", async () => {
  const main = `${ROOT_PATH}/main.ts`;
  const cmd = new Deno.Command("bash", {
    args: [
      "-c",
      `set -o pipefail; "$0" run -A "$1" run lua -- -e "while true do print(1) end" | head -c 2`,
      Deno.execPath(),
      main,
    ],
    stdout: "piped",
    stderr: "piped",
  });
  const child = cmd.spawn();
  const kill = setTimeout(() => child.kill("SIGKILL"), 60_000);
  const r = await child.output();
  clearTimeout(kill);
  const err = new TextDecoder().decode(r.stderr);
  assert.equal(new TextDecoder().decode(r.stdout), "1\n");
  assert.equal(r.code, EXIT.SIGNAL_BASE + 13, err);
  assert.match(err, /^lguest: lua: stdout closed \(SIGPIPE\)\n$/);
});

/** `lguest run --json JSON hello` in `dir`, with exactly the permissions `perms` (no prompt). */
function runJsonHello(dir: string, perms: string[], json: string): Promise<Deno.CommandOutput> {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-prompt", ...perms, `${ROOT_PATH}/main.ts`, "run", "--json", json, "hello"],
    cwd: dir,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(20_000),
  }).output();
}

Deno.test("--json FIFO without --allow-ffi: one line, exit 125 (before: blocked opening it)", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    await new Deno.Command("mkfifo", { args: [`${tmp}/f`] }).output();
    const out = await runJsonHello(tmp, ["--allow-read", "--allow-write"], "f");
    const err = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, EXIT.USAGE, err);
    assert.equal(err, "lguest: --json f: a FIFO needs --allow-ffi\n");
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("--json with --allow-write only: a FIFO nobody reads is one line, 125 (before: hung forever); one with a reader and a plain file get the report", async () => {
  const tmp = await Deno.makeTempDir();
  const lguest = (json: string) => runJsonHello(tmp, ["--allow-write"], json);
  try {
    await new Deno.Command("mkfifo", { args: [`${tmp}/f`] }).output();
    const alone = await lguest("f");
    const err = new TextDecoder().decode(alone.stderr);
    assert.equal(alone.code, EXIT.USAGE, err);
    assert.equal(new TextDecoder().decode(alone.stdout), "", "no guest ran");
    assert.equal(
      err,
      "lguest: --json f: it does not open for writing within 1 s (a FIFO nobody reads?): " +
        "a FIFO needs a reader, or --allow-ffi\n",
    );
    // A reader waiting on the FIFO: the report comes through it, written once at the end.
    const reading = Deno.open(`${tmp}/f`, { read: true })
      .then(async (f) => JSON.parse(await new Response(f.readable).text()));
    const [read, withReader] = await Promise.all([reading, lguest("f")]);
    assert.equal(withReader.code, EXIT.OK, new TextDecoder().decode(withReader.stderr));
    assert.equal(read.guests[0].outcome, "powered off");
    await Deno.writeTextFile(`${tmp}/r.json`, "old contents, longer than nothing");
    const plain = await lguest("r.json");
    assert.equal(plain.code, EXIT.OK, new TextDecoder().decode(plain.stderr));
    assert.equal(JSON.parse(await Deno.readTextFile(`${tmp}/r.json`)).exitCode, 0);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
