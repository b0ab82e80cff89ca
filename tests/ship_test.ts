/**
 * Shipping (issue 11): the program runs the same from a checkout, from a
 * one-file bundle in an empty folder with the network removed, and from an
 * HTTP URL: built-in guests and the watchdog Worker come through the
 * module graph, nothing is read beside the module, and running a guest
 * resolves no npm or remote module.
 *
 * The offline runs use `unshare -n` (a new network namespace with only a
 * loopback that is down) and a fresh, empty DENO_DIR; where `unshare -n`
 * is not permitted (not root), they run with the network and say so.
 *
 * @module
 */

import assert from "node:assert/strict";
import { ROOT_PATH } from "./helpers/run_cli.ts";
import { lanPair } from "./helpers/resources.ts";
import { EXIT } from "../launcher/cli.ts";
import { embeddedPayload, writeEmbedding } from "../guests/build.ts";
import { DatabaseSync } from "node:sqlite";
import { assertHostStack } from "./helpers/v8_flags.ts";
import { COUNTING, NONE } from "./helpers/start_probe.ts";
import { asciiOnly } from "../tools/ascii.ts";
import { packBundle } from "../tools/pack.ts";
import {
  eagerCalls,
  eagerFunctions,
  lazySpans,
  MARK,
  markProfiled,
  unmark,
} from "../tools/eager.ts";

/** What `deno run` needs for the CLI with disks and pcap (README "Ship it"). */
const RUN_FLAGS = ["--allow-read", "--allow-write", "--allow-ffi"];

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** Can this process remove the network of a child (`unshare -n`)? */
const CAN_UNSHARE = await (async () => {
  try {
    const r = await new Deno.Command("unshare", { args: ["-n", "true"], stderr: "null" }).output();
    return r.success;
  } catch {
    return false;
  }
})();

/** Run deno with `args` in `cwd`; `offline` removes the network where possible. */
async function deno(
  args: string[],
  opts: {
    cwd: string;
    denoDir?: string;
    stdin?: string;
    offline?: boolean;
    env?: Record<string, string>;
  },
): Promise<Ran> {
  const argv = [Deno.execPath(), ...args];
  if (opts.offline && CAN_UNSHARE) argv.unshift("unshare", "-n");
  const child = new Deno.Command(argv[0], {
    args: argv.slice(1),
    cwd: opts.cwd,
    stdin: opts.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", ...(opts.denoDir ? { DENO_DIR: opts.denoDir } : {}), ...opts.env },
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  if (opts.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(opts.stdin));
    await w.close();
  }
  const out = await child.output();
  clearTimeout(timer);
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

function show(r: Ran): string {
  return `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
}

/** The `--external` flags of `deno task bundle` (deno.json). */
const BUNDLE_EXTERNALS: string[] = (() => {
  const task: string = JSON.parse(
    Deno.readTextFileSync(new URL("../deno.json", import.meta.url)),
  ).tasks.bundle;
  return [...task.matchAll(/--external (\S+)/g)].flatMap((m) => ["--external", m[1]]);
})();

/** Bundle `entry` (relative to the root) into `out` with `deno bundle`, as `deno task bundle`. */
async function bundle(
  entry: string,
  out: string,
  extra: string[] = [],
): Promise<
  { functions: number; modules: number; methods: number; marks: number; calls: number }
> {
  const r = await deno(["bundle", "--quiet", "--platform", "deno", ...extra, "-o", out, entry], {
    cwd: ROOT_PATH,
  });
  assert.equal(r.code, 0, `deno bundle ${entry}\n${show(r)}`);
  // As `deno task bundle`: functions marked for eager compilation (tools/eager.ts) through the
  // minifier, then the bundle made pure ASCII (tools/ascii.ts), then (`--calls`) the arrows and
  // function expressions V8 still compiles lazily before run hello's first byte parenthesised,
  // then the large images' payloads packed 7 bits a character (tools/pack.ts).
  // The profile is of `lguest run hello`: another program is marked whole.
  const counts = await minifyEager(out, out, entry === "main.ts");
  await Deno.writeTextFile(out, asciiOnly(await Deno.readTextFile(out)));
  let calls = 0;
  if (entry === "main.ts") {
    const dir = out.replace(/[^/]*$/, "");
    const r = eagerCalls(await Deno.readTextFile(out), await lazySpans(out, dir));
    await Deno.writeTextFile(out, r.text);
    calls = r.wrapped;
  }
  await Deno.writeTextFile(out, packBundle(await Deno.readTextFile(out)).text);
  return { ...counts, calls };
}

/**
 * `deno task bundle`'s middle steps on the bundle `input`: mark what `run hello` calls
 * (tools/eager.ts --mark; with `profiled` false, every warm function), minify (`deno bundle
 * --minify`), turn the marks into parentheses (--unmark); the result in `out`.
 */
async function minifyEager(input: string, out: string, profiled = true) {
  const source = await Deno.readTextFile(input);
  const { text: markedText, functions, modules, methods } = profiled
    ? await markProfiled(source, out.replace(/[^/]*$/, ""))
    : eagerFunctions(source, MARK);
  const tmp = `${out}.marked.js`;
  await Deno.writeTextFile(tmp, markedText);
  const m = await deno(["bundle", "--quiet", "--minify", "--platform", "deno", "-o", out, tmp], {
    cwd: ROOT_PATH,
  });
  assert.equal(m.code, 0, `deno bundle --minify\n${show(m)}`);
  await Deno.remove(tmp);
  const { text, marks } = unmark(await Deno.readTextFile(out));
  await Deno.writeTextFile(out, text);
  return { functions, modules, methods, marks };
}

async function withTemp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "lguest_ship_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A watchdog probe's run: only the Worker can end it (tests/helpers/watchdog_probe.ts). */
function assertWatchdogEnded(r: Ran): void {
  assert.equal(r.code, EXIT.TIMEOUT, show(r));
  assert.match(r.stdout, /^blocking$/m, show(r));
  assert.match(r.stderr, /timed out after 0\.2 s \(guest not responding\)/, show(r));
}

const LAN = { guests: lanPair() };

Deno.test("ship: the bundle runs from an empty folder, offline: hello, a disk, two guests with --pcap", async () => {
  if (!CAN_UNSHARE) console.log("ship: unshare -n not permitted here: these runs keep the network");
  await withTemp(async (dir) => {
    const js = `${dir}/lguest.js`;
    await bundle("main.ts", js, BUNDLE_EXTERNALS);
    const work = `${dir}/empty`;
    await Deno.mkdir(work);
    const opts = { cwd: work, denoDir: `${dir}/deno_dir`, offline: true };

    const hello = await deno(["run", ...RUN_FLAGS, js, "run", "hello"], opts);
    assert.equal(hello.code, EXIT.OK, show(hello));
    // Its first run stored its V8 code cache (main.ts gives the event loop a turn before it
    // exits: without it the bundle was never cached by runs of hello, and every start compiled
    // it again: 23-25 ms against 17 to the first byte; docs/performance.md, boot).
    const cache = new DatabaseSync(`${dir}/deno_dir/v8_code_cache_v2`, { readOnly: true });
    const rows = cache.prepare("SELECT specifier FROM codecache WHERE specifier = ?")
      .all(`file://${js}`);
    cache.close();
    assert.equal(rows.length, 1, "the bundle's code cache after its first run");
    // The test guests stay out of the bundle: one line, not a stack trace.
    const testGuest = await deno(["run", ...RUN_FLAGS, js, "run", "test-crash"], opts);
    assert.equal(testGuest.code, EXIT.USAGE, show(testGuest));
    assert.equal(
      testGuest.stderr,
      "lguest: built-in image test-crash.wasm is not in this build (a test guest?)\n",
    );
    // ... even with a module of a test guest's name beside the bundle: the bundle imports
    // nothing beside itself (guests/images/index.ts `outside`), so that code never runs.
    const beside = `${dir}/beside`;
    await Deno.mkdir(beside);
    await Deno.copyFile(js, `${beside}/lguest.js`);
    const marker = `${dir}/marker.txt`;
    const planted = `Deno.writeTextFileSync(${JSON.stringify(marker)}, "ran\\n");\n` +
      `export const BASE64 = "", SIZE = 0, SHA256 = "";\n` +
      `export const FUEL = { loops: 0, entries: 0, bulk: 0, resumes: 0 };\n`;
    for (const f of ["test-args.wasm.ready.js", "test-args.wasm.js", "test-args.x86_64.elf.js"]) {
      await Deno.writeTextFile(`${beside}/${f}`, planted);
    }
    for (const engine of ["wasm", "kvm"]) {
      const r = await deno(
        ["run", "-A", `${beside}/lguest.js`, "run", "--engine", engine, "test-args"],
        { ...opts, cwd: beside },
      );
      if (engine === "kvm" && !/not in this build/.test(r.stderr) && /kvm/i.test(r.stderr)) {
        console.log(`ship: --engine kvm not tried here: ${r.stderr.trim()}`);
      } else {
        assert.equal(r.code, EXIT.USAGE, show(r));
        const file = engine === "wasm" ? "test-args.wasm" : "test-args.x86_64.elf";
        assert.equal(
          r.stderr,
          `lguest: built-in image ${file} is not in this build (a test guest?)\n`,
          show(r),
        );
      }
      assert.equal(
        await Deno.stat(marker).catch(() => null),
        null,
        `${engine}: the planted module ran`,
      );
    }
    assert.match(
      hello.stdout,
      /^Hello from an lguest guest! I have 32 MiB of RAM\.$/m,
      show(hello),
    );
    // The big images are in the bundle too.
    const luaArgs = ["run", ...RUN_FLAGS, js, "run", "lua", "--", "-e", "print(6*7)"];
    const lua = await deno(luaArgs, opts);
    assert.equal(lua.code, EXIT.OK, show(lua));
    assert.equal(lua.stdout, "42\n", show(lua));
    // Loaded as TypeScript (a copy with no extension or a `.ts` name, as a shebang script or
    // `deno install` makes it), whose emit drops comments: the packed payloads are string
    // literals (tools/pack.ts), and lua and sqlite3 run from such copies too.
    for (const name of [`${dir}/lguest`, `${dir}/lguest.ts`]) {
      await Deno.copyFile(js, name);
      const asTs = await deno(
        ["run", ...RUN_FLAGS, name, ...luaArgs.slice(RUN_FLAGS.length + 2)],
        opts,
      );
      assert.equal(asTs.code, EXIT.OK, `${name}: ${show(asTs)}`);
      assert.equal(asTs.stdout, "42\n", show(asTs));
      const sql = await deno(
        ["run", ...RUN_FLAGS, name, "run", "sqlite3", "--", ":memory:", "select 6*7;"],
        opts,
      );
      assert.equal(sql.code, EXIT.OK, `${name}: ${show(sql)}`);
      assert.equal(sql.stdout, "42\n", show(sql));
    }
    // Its payload is packed 7 bits a character (tools/pack.ts): a character changed in a copy
    // is one line naming it, exit 125, not a stack trace and not another image run.
    const damaged = `${dir}/damaged.js`;
    const text = await Deno.readTextFile(js);
    const lua0 = text.indexOf("{text:'", text.indexOf('"guests/images/lua.wasm.ready.b64"')) + 6;
    const lua1 = text.indexOf("'\n\n,length:", lua0);
    assert.ok(lua0 > 6 && lua1 > lua0 + 100_000, "lua's packed payload");
    let at = lua0 + 50_000;
    const plain = (i: number) => !"\\'\n\r".includes(text[i]);
    while (!plain(at - 1) || !plain(at) || !plain(at + 1) || !plain(at - 2)) at++;
    const c = String.fromCharCode(text.charCodeAt(at) ^ 0x55);
    assert.ok(!"\\'\n\r".includes(c));
    const copy = (at: number, c: string) => text.slice(0, at) + c + text.slice(at + 1);
    await Deno.writeTextFile(damaged, copy(at, c));
    const bad = await deno(
      ["run", ...RUN_FLAGS, damaged, ...luaArgs.slice(RUN_FLAGS.length + 2)],
      opts,
    );
    const luaDamaged =
      /^lguest: built-in image lua\.wasm: its payload guests\/images\/lua\.wasm\.ready\.b64 \(packed in this bundle\) is damaged \([^\n]+\): 'deno task bundle' writes it again\n$/;
    assert.equal(bad.code, EXIT.USAGE, show(bad));
    assert.match(bad.stderr, luaDamaged, show(bad));
    assert.equal(bad.stdout, "", show(bad));
    // Its string's quotes changed or cut: the file does not load (a closing quote runs into the
    // line feeds after it; an opening one leaves the text as code), or, if it did, lua's run is
    // that line and the other guests run: never another payload swallowed, another guest broken
    // or a stack trace (as a comment's closing `*` did).
    for (const [where, i] of [["opening", lua0], ["closing", lua1]] as const) {
      for (const r of ["x", "\\", '"', "`", "\n", ""]) {
        await Deno.writeTextFile(damaged, text.slice(0, i) + r + text.slice(i + 1));
        const label = `lua's ${where} quote made ${JSON.stringify(r)}`;
        const hi = await deno(["run", ...RUN_FLAGS, damaged, "run", "hello"], opts);
        if (hi.code !== EXIT.OK) {
          assert.equal(hi.stdout, "", `${label}: ${show(hi)}`);
          assert.match(
            hi.stderr,
            /^\S*error\S*: (Uncaught )?SyntaxError: /,
            `${label}: ${show(hi)}`,
          );
          continue;
        }
        assert.match(hi.stdout, /^Hello from an lguest guest!/m, `${label}: ${show(hi)}`);
        const l = await deno(
          ["run", ...RUN_FLAGS, damaged, ...luaArgs.slice(RUN_FLAGS.length + 2)],
          opts,
        );
        assert.equal(l.code, EXIT.USAGE, `${label}: ${show(l)}`);
        assert.match(l.stderr, luaDamaged, `${label}: ${show(l)}`);
        const sql = await deno(
          ["run", ...RUN_FLAGS, damaged, "run", "sqlite3", "--", ":memory:", "select 6*7;"],
          opts,
        );
        assert.equal(sql.stdout, "42\n", `${label}: ${show(sql)}`);
      }
    }
    // hello's payload is base64 inline in its module (no digest: docs/security.md); a character
    // of it that is not base64 is one line naming its module in the bundle, and the bundle's fix.
    const h = text.indexOf("AGFzbQ", text.indexOf('"guests/images/hello.wasm.ready.js"'));
    assert.ok(h > 0, "hello's inline base64");
    await Deno.writeTextFile(damaged, copy(h + 1000, "!"));
    const badHello = await deno(["run", ...RUN_FLAGS, damaged, "run", "hello"], opts);
    assert.equal(badHello.code, EXIT.USAGE, show(badHello));
    assert.match(
      badHello.stderr,
      /^lguest: built-in image hello\.wasm: its module guests\/images\/hello\.wasm\.ready\.js \(in this bundle\) is damaged \([^\n]+\): 'deno task bundle' writes it again\n$/,
      show(badHello),
    );
    // V8 flags (tests/v8_flags_test.ts): one line and 125 from the bundle too, never a trace.
    const jitless = await deno(["run", ...RUN_FLAGS, js, "run", "hello"], {
      ...opts,
      env: { DENO_V8_FLAGS: "--jitless" },
    });
    assert.equal(jitless.code, EXIT.USAGE, show(jitless));
    assert.equal(jitless.stderr, "lguest: this Deno has no WebAssembly (V8 flag --jitless?)\n");
    // lua only: hello reaches its end and Deno's own exit path overflows (v8_flags_test).
    const small = await deno(luaArgs, { ...opts, env: { DENO_V8_FLAGS: "--stack-size=60" } });
    assertHostStack(small, show(small));

    await Deno.writeFile(`${work}/disk.img`, new Uint8Array(1 << 20));
    const shell = await deno(["run", ...RUN_FLAGS, js, "run", "--block", "disk.img", "shell"], {
      ...opts,
      stdin: "blk write 0 0 shipped disk\npoweroff\n",
    });
    assert.equal(shell.code, EXIT.OK, show(shell));
    assert.match(shell.stdout, /wrote 1 sector\(s\)/, show(shell));
    const disk = await Deno.readFile(`${work}/disk.img`);
    assert.equal(new TextDecoder().decode(disk.subarray(0, 12)), "shipped disk");

    await Deno.writeTextFile(`${work}/lan.json`, JSON.stringify(LAN));
    const lan = await deno(
      ["run", ...RUN_FLAGS, js, "run", "--config", "lan.json", "--pcap", "lan.pcap"],
      { ...opts, stdin: "ping 10.0.0.1 2\npoweroff\n" },
    );
    assert.equal(lan.code, EXIT.OK, show(lan));
    assert.match(lan.stdout, /2 packets transmitted, 2 received/, show(lan));
    // A pcap header (24 bytes) and at least the two requests and replies.
    const pcap = await Deno.readFile(`${work}/lan.pcap`);
    assert.ok(pcap.length > 24 + 4 * (16 + 98), `pcap holds ${pcap.length} bytes`);

    // Nothing was written beside the bundle but what the runs asked for.
    const left = [];
    for await (const e of Deno.readDir(work)) left.push(e.name);
    assert.deepEqual(left.sort(), ["disk.img", "lan.json", "lan.pcap"]);
  });
});

Deno.test("ship: the watchdog Worker starts from a file and from a bundle", async () => {
  const probe = "tests/helpers/watchdog_probe.ts";
  assertWatchdogEnded(await deno(["run", "--allow-ffi", probe], { cwd: ROOT_PATH }));
  await withTemp(async (dir) => {
    await bundle(probe, `${dir}/probe.js`);
    assertWatchdogEnded(
      await deno(["run", "--allow-ffi", "probe.js"], {
        cwd: dir,
        denoDir: `${dir}/deno_dir`,
        offline: true,
      }),
    );
  });
});

Deno.test("ship: the CLI and the watchdog Worker run from an HTTP URL", async () => {
  // Serves the checkout read-only on loopback, as a URL or JSR user fetches it.
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const path = decodeURIComponent(new URL(req.url).pathname);
    if (path.split("/").includes("..")) return new Response("bad path", { status: 400 });
    try {
      const body = await Deno.readFile(ROOT_PATH + path);
      return new Response(body, { headers: { "content-type": "application/typescript" } });
    } catch {
      return new Response("not found", { status: 404 });
    }
  });
  try {
    const base = `http://127.0.0.1:${server.addr.port}`;
    await withTemp(async (dir) => {
      const opts = { cwd: dir, denoDir: `${dir}/deno_dir` };
      const hello = await deno(["run", ...RUN_FLAGS, `${base}/main.ts`, "run", "hello"], opts);
      assert.equal(hello.code, EXIT.OK, show(hello));
      assert.match(hello.stdout, /^Hello from an lguest guest!/m, show(hello));
      const guests = await deno(["run", ...RUN_FLAGS, `${base}/main.ts`, "guests"], opts);
      assert.equal(guests.code, EXIT.OK, show(guests));
      assert.match(guests.stdout, /^shell\s+\S/m, show(guests));
      assertWatchdogEnded(
        await deno(["run", "--allow-ffi", `${base}/tests/helpers/watchdog_probe.ts`], opts),
      );
    });
  } finally {
    await server.shutdown();
  }
});

Deno.test("ship: a built-in guest needs no permission, from a checkout and from the bundle", async () => {
  // README's permission table: its image comes through the module graph (a literal import), not
  // through an import of a variable, which Deno allows only with --allow-read.
  await withTemp(async (dir) => {
    const js = `${dir}/lguest.js`;
    const eager = await bundle("main.ts", js, BUNDLE_EXTERNALS);
    // tools/eager.ts still finds the shapes `deno bundle` writes (else it would silently do nothing).
    assert.ok(
      eager.functions > 30 && eager.modules > 20 && eager.methods > 25,
      JSON.stringify(eager),
    );
    // Every mark came through the minifier.
    assert.equal(eager.marks, eager.functions + eager.modules + eager.methods);
    // The calls' arrows were found, and none is left: a second profile finds nothing to take.
    assert.ok(eager.calls > 20, JSON.stringify(eager));
    const source = await Deno.readTextFile(js);
    const spans = await lazySpans(js, dir);
    const left = eagerCalls(source, spans);
    assert.equal(left.wrapped, 0);
    // The console's stdout path is arrows (devices/console.ts, launcher/runner.ts), compiled with
    // the bundle: no object literal's method `write` is compiled at the guest's first byte.
    const lateWrites = spans.filter(([start]) => source.slice(start - 5, start) === "write");
    assert.deepEqual(lateWrites.map(([s]) => source.slice(s - 5, s + 40)), []);
    for (const program of [`${ROOT_PATH}/main.ts`, js]) {
      for (const [guest, out] of [["hello", /^Hello from an lguest guest!/m], ["lua", /^42$/m]]) {
        const args = guest === "lua" ? ["--", "-e", "print(6*7)"] : [];
        const r = await deno(["run", program, "run", guest as string, ...args], { cwd: dir });
        assert.equal(r.code, EXIT.OK, `${program} run ${guest}\n${show(r)}`);
        assert.match(r.stdout, out as RegExp, show(r));
      }
    }
    // What the bundle's run hello does before its first byte (tests/boot_test.ts counts the
    // same for a checkout's CLI): each of these once cost every start (docs/performance.md).
    await Deno.writeTextFile(`${dir}/probe.js`, BUNDLE_PROBE);
    const flags = ["--allow-read", "--allow-write", "--allow-env", "--allow-ffi"];
    const r = await deno(["run", ...flags, "--preload", "probe.js", js, "run", "hello"], {
      cwd: dir,
    });
    assert.equal(r.code, EXIT.OK, show(r));
    const counts = r.stderr.split("\n").find((l) => l.startsWith("{"));
    assert.deepEqual(JSON.parse(counts ?? "null"), NONE, show(r));
    // No batch of V8's baseline compiler (Sparkplug) before the first byte (docs/performance.md,
    // boot): V8 traces it on stdout, which stdbuf keeps line by line in order with the guest's
    // bytes. What V8 queues is decided by what the code runs, not by timing.
    const trace = await new Deno.Command("stdbuf", {
      args: [
        "-oL",
        Deno.execPath(),
        "run",
        ...flags,
        "--v8-flags=--trace-baseline-batch-compilation",
        js,
        "run",
        "hello",
      ],
      cwd: dir,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const out = new TextDecoder().decode(trace.stdout);
    const byte = out.indexOf("Hello from an lguest guest!");
    assert.ok(trace.success && byte > 0, out);
    const before = out.slice(0, byte);
    assert.match(
      before,
      /Enqueued SFI/,
      "the trace is in order (else this check would see nothing)",
    );
    assert.doesNotMatch(before, /Compiling current batch/, before);
  });
});

/**
 * A `--preload` module for the bundle: counts what a start must not do before its first
 * byte (tests/helpers/start_probe.ts; a bundle follows no `deno task`: main.ts's INIT_CWD check
 * asked two permission queries, ~0.2 ms), and writes the counts to stderr at the first stdout
 * write.
 */
const BUNDLE_PROBE = `
${COUNTING}
const write = Deno.stdout.writeSync.bind(Deno.stdout);
let said = false;
Deno.stdout.writeSync = (b) => {
  if (!said) {
    said = true;
    const at = JSON.stringify(counts); // before the encoder below, which counts
    Deno.stderr.writeSync(new TextEncoder().encode(at + "\\n"));
  }
  return write(b);
};
`;

Deno.test("ship: the image generator embeds every file the manifest names, in subfolders too", async () => {
  await withTemp(async (dir) => {
    const a = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 255]);
    const b = new Uint8Array(70_000).map((_, i) => (i * 7) & 255);
    await Deno.writeFile(`${dir}/a.wasm`, a);
    await Deno.mkdir(`${dir}/x86_64`);
    await Deno.writeFile(`${dir}/x86_64/a.bin`, b);
    // Incompressible: its payload (above 16 KiB of base64) becomes a text module beside it.
    const c = crypto.getRandomValues(new Uint8Array(20_000));
    await Deno.writeFile(`${dir}/x86_64/c.bin`, c);
    const manifest = [
      { name: "a", file: "a.wasm", description: "d", images: { kvm: "x86_64/a.bin" } },
      { name: "c", file: "x86_64/c.bin", description: "a large payload" },
      { name: "missing", file: "nope.wasm", description: "no such file: not embedded" },
    ];
    const written = await writeEmbedding(dir, manifest);
    assert.deepEqual(written.sort(), [
      "a.wasm.js",
      "image.d.ts",
      "index.ts",
      "ready.d.ts",
      "x86_64/a.bin.js",
      "x86_64/c.bin.b64",
      "x86_64/c.bin.js",
    ]);
    const cModule = await Deno.readTextFile(`${dir}/x86_64/c.bin.js`);
    assert.match(
      cModule,
      /^export \{ default as BASE64 \} from "\.\/c\.bin\.b64" with \{ type: "text" \};$/m,
    );
    assert.doesNotMatch(cModule, /^export const BASE64/m);
    const beside = (name: string) => Deno.readTextFile(`${dir}/x86_64/${name}`);
    assert.deepEqual(await embeddedPayload(cModule, beside), c);
    assert.equal(await embeddedPayload(cModule), null); // its text module not given
    assert.equal(await embeddedPayload(cModule, () => Promise.resolve("AG!z")), null);
    // JavaScript (no emitted copy at run time), typed by the shared declarations.
    assert.match(
      await Deno.readTextFile(`${dir}/x86_64/a.bin.js`),
      /^\/\/ @ts-self-types="\.\.\/image\.d\.ts"$/m,
    );
    const index = await import(`file://${dir}/index.ts`);
    assert.deepEqual(index.MANIFEST, manifest);
    assert.deepEqual(Object.keys(index.files()).sort(), ["a.wasm", "x86_64/a.bin", "x86_64/c.bin"]);
    // The module re-exports the text module's content as BASE64.
    const cLoaded = await index.files()["x86_64/c.bin"]();
    assert.equal(cLoaded.BASE64, await Deno.readTextFile(`${dir}/x86_64/c.bin.b64`));
    assert.equal(cLoaded.BROTLI, true);
    // Brotli in base64; --check compares what the modules hold, not how it is compressed.
    for (const [file, bytes] of [["a.wasm", a], ["x86_64/a.bin", b]] as const) {
      const mod = await index.files()[file]();
      assert.equal(mod.BROTLI, true);
      assert.deepEqual(await embeddedPayload(await Deno.readTextFile(`${dir}/${file}.js`)), bytes);
      const plain = `export const BASE64: string =\n  "${bytes.toBase64()}";\n`;
      assert.deepEqual(await embeddedPayload(plain), bytes);
    }
    assert.ok(b.length > 3 * (await Deno.stat(`${dir}/x86_64/a.bin.js`)).size, "compressed");
  });
});

Deno.test("ship: tools/ascii.ts makes a bundle pure ASCII without changing what it does", () => {
  const js = 'const s = "a\u00a7b\u{1f600}c"; /* \u00a7 \u2026 */ const r = /\u00e9/; ' +
    "const caf\u00e9 = 1; globalThis.__ascii = [s, r.test('\u00e9'), caf\u00e9];";
  const out = asciiOnly(js);
  assert.ok(/^[\x20-\x7e]*$/.test(out), out);
  (0, eval)(out);
  const g = globalThis as Record<string, unknown>;
  assert.deepEqual(g.__ascii, ["a\u00a7b\u{1f600}c", true, 1]);
  delete g.__ascii;
});

Deno.test("ship: tools/eager.ts marks a bundle's functions for eager compilation without changing what it does", async () => {
  // The shapes `deno bundle` writes: module bodies under __esm, functions declared at the top
  // level (hoisted: used above their declaration), and blocks the tool must leave alone.
  const bundle = `var __esm = (fn, res) => function __init() {
  return fn && (res = (0, fn[Object.getOwnPropertyNames(fn)[0]])(fn = 0)), res;
};

// a.ts
var A;
var init_a = __esm({
  "a.ts"() {
    A = early() + later();
  }
});
function early() {
  return 1;
}

// b.ts
var B = used();
function used() {
  return \`x
}
y\`.length;
}
async function* gen() {
  yield 1;
}
function later() {
  return 2;
}
function meta() {
  return typeof import.meta.url;
}

// c.ts
var bound;
var init_c = __esm({
  "c.ts"() {
    bound = function bound2(x) {
      return x + 1;
    }.bind(null);
  }
});

// launcher/disk.ts
function cold() {
  return 3;
}
var coldBound = function coldBound2() {
  return 4;
}.bind(null);
init_a();
init_c();
globalThis.__eager.push([A, B, typeof gen, cold(), meta(), bound(1), coldBound()]);
`;
  const out = eagerFunctions(bundle);
  // early, later, gen, meta (import.meta is module syntax, which the tool's parse of a block
  // alone stands in for: main.ts's fromTaskCwd, called at every start), bound (the sources'
  // `(function f() {...}).bind(null)`, whose parentheses `deno bundle` drops); not used (its
  // block ends inside a template), nor cold and coldBound (a module run never calls).
  assert.equal(out.functions, 5);
  assert.match(out.text, /^var meta = \(function meta\(\) \{$/m);
  assert.equal(out.modules, 2);
  assert.match(out.text, /^ {4}bound = \(function bound2\(x\) \{\n.*\n {4}\}\)\.bind\(null\);$/m);
  assert.match(out.text, /^var coldBound = function coldBound2\(\) \{$/m);
  // For the minifier, as a call of MARK that --unmark makes the parenthesis again.
  const marked = eagerFunctions(bundle, MARK).text;
  assert.match(marked, new RegExp(`^ {4}bound = ${MARK}\\(function bound2\\(x\\) \\{$`, "m"));
  assert.equal(
    unmark(marked).text.split("\n").find((l) => l.includes("bound2")),
    "    bound = (function bound2(x) {",
  );
  // Profiled (--mark): a probing copy reports its first call by its name; marked only if called.
  assert.match(
    eagerFunctions(bundle, "", { probe: true }).text,
    /^ {4}bound = \(function bound2\(x\) \{ __lguestHit\("bound"\);$/m,
  );
  assert.equal(eagerFunctions(bundle, "", { only: new Set(["bound"]) }).functions, 1);
  assert.equal(eagerFunctions(bundle, "", { only: new Set(["early"]) }).functions, 1);
  assert.match(out.text, /^var early = \(function early\(\) \{$/m);
  assert.match(out.text, /^async function\* gen|^var gen = \(async function\* gen\(\) \{$/m);
  assert.match(out.text, /^ {2}"a\.ts": \(function\(\) \{$/m);
  assert.match(out.text, /^function cold\(\) \{$/m);
  assert.match(out.text, /^function used\(\) \{$/m);
  // A `#!` line stays the first line.
  const shebang = eagerFunctions(`#!/usr/bin/env -S deno run\n${bundle}`).text;
  assert.match(shebang, /^#!\/usr\/bin\/env -S deno run\nvar early = /);
  const g = globalThis as unknown as { __eager: unknown[] };
  g.__eager = [];
  await withTemp(async (dir) => {
    for (const [name, text] of [["before.js", bundle], ["after.js", out.text]]) {
      await Deno.writeTextFile(`${dir}/${name}`, text);
      await import(`file://${dir}/${name}`);
    }
  });
  const ran = [3, 5, "function", 3, "string", 2, 4];
  assert.deepEqual(g.__eager, [ran, ran]);
  delete (g as { __eager?: unknown }).__eager;
});

Deno.test("ship: tools/eager.ts defines a dynamically imported module's namespace when its body runs, not at every start", async () => {
  const bundle = `var __defProp = Object.defineProperty;
var __esm = (fn, res) => function __init() {
  return fn && (res = (0, fn[Object.getOwnPropertyNames(fn)[0]])(fn = 0)), res;
};
var __export = (target, all) => {
  for (var name in all)
    __defProp(target, name, { get: all[name], enumerable: true });
};

// x.ts
var x_exports = {};
__export(x_exports, {
  A: () => A,
  f: () => f
});
function f() {
  return A + 1;
}
var A;
var init_x = __esm({
  "x.ts"() {
    A = 41;
  }
});

// launcher/disk.ts
var disk_exports = {};
__export(disk_exports, {
  cold: () => cold
});
var cold;
var init_disk = __esm({
  "launcher/disk.ts"() {
    cold = 3;
  }
});
const before = Object.keys(x_exports).length;
const x = await Promise.resolve().then(() => (init_x(), x_exports));
const d = await Promise.resolve().then(() => (init_disk(), disk_exports));
const desc = Object.getOwnPropertyDescriptor(x, "A");
globalThis.__eagerExports.push([before, x.A, x.f(), Object.keys(x), d.cold, init_x() === undefined,
  typeof desc.get, desc.set, desc.enumerable, desc.configurable]);
`;
  const out = eagerFunctions(bundle).text;
  // Both calls now open their module's body (a cold module's too: its body runs only when used).
  assert.doesNotMatch(out, /^__export\(/m);
  // Defined at once by the builtin (no loop of JavaScript: docs/performance.md, boot).
  assert.match(
    out,
    /^ {2}"x\.ts": \(function\(\) \{\n {4}Object\.defineProperties\(x_exports, \{$/m,
  );
  assert.match(out, /^ {6}A: \{ get: \(\) => A, enumerable: true \},$/m);
  assert.match(
    out,
    /^ {2}"launcher\/disk\.ts"\(\) \{\n {4}Object\.defineProperties\(disk_exports, \{$/m,
  );
  const g = globalThis as unknown as { __eagerExports?: unknown[] };
  g.__eagerExports = [];
  await withTemp(async (dir) => {
    await Deno.writeTextFile(`${dir}/before.js`, bundle);
    await Deno.writeTextFile(`${dir}/after.js`, out);
    for (const name of ["before.js", "after.js"]) await import(`file://${dir}/${name}`);
  });
  // Not defined before its body ran: the one difference, which nothing of the bundle can see.
  const [first, second] = g.__eagerExports as unknown[][];
  assert.deepEqual(first.slice(1), [
    41,
    42,
    ["A", "f"],
    3,
    true,
    "function",
    undefined,
    true,
    false,
  ]);
  assert.deepEqual(second.slice(1), first.slice(1));
  assert.deepEqual([first[0], second[0]], [2, 0]);
  delete g.__eagerExports;
});

Deno.test("ship: tools/eager.ts --calls parenthesises the arrows and function expressions it is given, and nothing else, without changing what they do", () => {
  const text = [
    "const xs = [1, 2, 3].map(x=>x*2), f = function named(a) { return a + 1; };",
    "const o = { m(a) { return a; }, get g() { return 1; }, k: async (a)=>a };",
    "function decl(a) { return xs.find((v)=>v===a) ?? f(a); }",
    "const sum = [1, 2].reduce((a,b)=>a+b, 0), t = true ? ()=>1 : null;",
    "globalThis.__calls = [xs, f(1), o.m(2), o.g, decl(4), sum, t(), typeof o.k];",
  ].join("\n");
  // V8's ranges: an arrow's from its parameters, a function expression's from its parameter list.
  const span = (from: string, to: string, after = 0): [number, number] => {
    const a = text.indexOf(from, after);
    return [a, text.indexOf(to, a) + to.length];
  };
  const spans: [number, number][] = [
    span("x=>x*2", "x*2"),
    [text.indexOf("(a) { return a + 1"), text.indexOf("a + 1; }") + 8],
    [text.indexOf("(a) { return a; }"), text.indexOf("return a; }") + 11], // a method: left
    [text.indexOf("() { return 1; }"), text.indexOf("return 1; }") + 11], // a getter: left
    span("async (a)=>a", "=>a"),
    [text.indexOf("(a) { return xs"), text.indexOf("f(a); }") + 7], // a declaration: left
    span("(v)=>v===a", "===a"),
    span("(a,b)=>a+b", "a+b"),
    span("()=>1", "=>1"),
    [text.indexOf("x=>x"), text.indexOf("x=>x") + 3], // cut short (`x=>x` of `x=>x*2`): left
  ];
  const out = eagerCalls(text, spans);
  assert.equal(out.wrapped, 6);
  assert.match(out.text, /\.map\(\(x=>x\*2\)\)/);
  assert.match(out.text, /f = \(function named\(a\) \{ return a \+ 1; \}\)/);
  assert.match(out.text, /k: \(async \(a\)=>a\)/);
  assert.match(out.text, /\.find\(\(\(v\)=>v===a\)\)/);
  assert.match(out.text, /\? \(\(\)=>1\) :/);
  assert.match(out.text, /^function decl\(a\)/m);
  assert.match(out.text, /\{ m\(a\) \{ return a; \}, get g\(\) \{/);
  const g = globalThis as unknown as { __calls?: unknown };
  for (const code of [text, out.text]) {
    new Function(code)();
    assert.deepEqual(g.__calls, [[2, 4, 6], 2, 2, 1, 4, 3, 1, "function"]);
  }
  delete g.__calls;
});

Deno.test("ship: tools/eager.ts compiles warm classes' methods with their module, through the minifier too", async () => {
  // The class shapes `deno bundle` writes: a class's own name where its code uses it, private
  // fields and methods, accessors, static, async and generator methods, a method named like a
  // function of the module (a method binds no name in its body), a constructor, and a derived
  // class (its constructor calls super(), so it stays). A device's class stays lazy. Static
  // initialisers that call moved static methods (one of them through the class's own name), and
  // the methods' and accessors' names (s6-atk-bundle finding 3: 'this.helper is not a function',
  // and names that were "").
  const bundle = `var __esm = (fn, res) => function __init() {
  return fn && (res = (0, fn[Object.getOwnPropertyNames(fn)[0]])(fn = 0)), res;
};

// host/c.ts
var C, S, T, D;
var init_c = __esm({
  "host/c.ts"() {
    C = class _C {
      #n = 1;
      static made = 0;
      constructor(n) {
        this.#n = n;
        _C.made++;
      }
      get n() {
        return this.#n;
      }
      set n(v) {
        this.#n = v;
      }
      early() {
        return early() + this.#n;
      }
      static make(n) {
        return new _C(n);
      }
      async twice() {
        return 2 * this.#n;
      }
      *count() {
        yield this.#n;
      }
      #hidden() {
        return -this.#n;
      }
      hidden() {
        return this.#hidden();
      }
    };
    S = class {
      static helper() {
        return 42;
      }
      static answer = this.helper();
    };
    T = class _T {
      v = 6;
      static #made = _T.make();
      static make() {
        return new _T().times(7);
      }
      times(k) {
        return this.v * k;
      }
      static get made() {
        return _T.#made;
      }
    };
    D = class extends C {
      constructor(n) {
        super(n);
        this.d = n + 1;
      }
      #p() {
        return this.d;
      }
      p() {
        return this.#p();
      }
    };
  }
});
function early() {
  return 100;
}

// devices/block.ts
var Lazy;
var init_block = __esm({
  "devices/block.ts"() {
    Lazy = class {
      run() {
        return 4;
      }
    };
  }
});
init_c();
init_block();
const c = C.make(5);
c.n = 7;
const proto = Object.getOwnPropertyDescriptor(C.prototype, "early");
const n = Object.getOwnPropertyDescriptor(C.prototype, "n");
globalThis.__eagerClasses.push([
  c.n, c.early(), await c.twice(), [...c.count()], c.hidden(), C.made, new Lazy().run(),
  Object.keys(C.prototype), proto.enumerable, proto.writable, proto.configurable,
  typeof n.get, typeof n.set, n.enumerable, typeof C.make, new D(2).p(), C.length,
  S.answer, T.made, C.prototype.early.name, n.get.name, n.set.name, C.make.name,
  C.prototype.twice.name, C.prototype.count.name, Object.getOwnPropertyDescriptor(T, "made").get.name,
]);
`;
  const out = eagerFunctions(bundle);
  // n (get and set), early, make, twice, count, hidden, the constructor and #hidden; S's helper;
  // T's make, times and made; D's p and #p, not its constructor; nothing of devices/block.ts.
  assert.equal(out.methods, 15);
  assert.match(out.text, /^ {6}static \[\(__eager0 = \[\{$/m);
  // Each function the value of a property named as its method: its name.
  assert.match(out.text, /^ {8}"early": \(function\(\) \{$/m);
  assert.match(out.text, /^ {8}"get n": \(function\(\) \{$/m);
  assert.match(out.text, /^ {6}run\(\) \{$/m);
  // A constructor and a #private method keep a stub that calls their function.
  assert.match(
    out.text,
    /^ {6}constructor\(__arg0\) \{\n {8}return __eager0\[0\]\["constructor"\]\.apply/m,
  );
  assert.match(out.text, /^ {6}#hidden\(\) \{\n {8}return __eager0\[0\]\["#hidden"\]\.apply/m);
  assert.match(out.text, /^ {6}constructor\(n\) \{\n {8}super\(n\);$/m);
  // Each method put in place by its own defineProperty (no shared installer: docs/performance.md).
  assert.match(
    out.text,
    /^ {8}Object\.defineProperty\(this\.prototype, "early", \{ value: __eager0\[0\]\["early"\], writable: true, configurable: true \}\);$/m,
  );
  assert.match(
    out.text,
    /^ {8}__eagerHad = Object\.getOwnPropertyDescriptor\(this\.prototype, "n"\);$/m,
  );
  // A class with a static initialiser has them defined in a static block before it (one whose
  // moved functions use its own name makes that name the class first); others after the class.
  assert.match(
    out.text,
    /^ {6}static \{\n {8}T = this;\n {8}Object\.defineProperty\(this, "make", /m,
  );
  assert.match(out.text, /^ {6}static \{\n {8}Object\.defineProperty\(this, "helper", /m);
  assert.match(out.text, /^ {4}Object\.defineProperty\(D\.prototype, "p", /m);
  assert.ok(!out.text.includes("__eagerInstall"));
  const g = globalThis as unknown as { __eagerClasses: unknown[] };
  g.__eagerClasses = [];
  await withTemp(async (dir) => {
    await Deno.writeTextFile(`${dir}/before.js`, bundle);
    await Deno.writeTextFile(`${dir}/after.js`, out.text);
    await Deno.writeTextFile(`${dir}/input.js`, bundle);
    // Through the minifier as `deno task bundle` does: `_C` in a computed name would throw there.
    const min = await minifyEager(`${dir}/input.js`, `${dir}/min.js`, false);
    assert.deepEqual([min.methods, min.marks], [15, min.functions + min.modules + 15]);
    assert.ok(!(await Deno.readTextFile(`${dir}/min.js`)).includes(MARK));
    for (const name of ["before.js", "after.js", "min.js"]) await import(`file://${dir}/${name}`);
  });
  const expected = [
    7,
    107,
    14,
    [7],
    -7,
    1,
    4,
    [],
    false,
    true,
    true,
    "function",
    "function",
    false,
    "function",
    3,
    1,
    42,
    42,
    "early",
    "get n",
    "set n",
    "make",
    "twice",
    "count",
    "get made",
  ];
  assert.deepEqual(g.__eagerClasses, [expected, expected, expected]);
  delete (g as { __eagerClasses?: unknown }).__eagerClasses;
});

Deno.test("ship: tools/eager.ts --unmark turns every mark into a parenthesis and leaves none", () => {
  const r = unmark(`var f = ${MARK}(function() {}), g = [${MARK}(async function() {})];`);
  assert.deepEqual(r, { text: "var f = (function() {}), g = [(async function() {})];", marks: 2 });
  assert.throws(() => unmark(`var ${MARK} = 1;`), /no call/);
});

Deno.test("ship: tools/eager.ts --mark compiles with the bundle what run hello calls before its first byte, no more", async () => {
  // A bundle that calls some of its functions and methods before its first byte, one after it
  // (after the byte is not profiled) and one never; the profile run is a real `deno run`.
  const bundle = `var __esm = (fn, res) => function __init() {
  return fn && (res = (0, fn[Object.getOwnPropertyNames(fn)[0]])(fn = 0)), res;
};

// host/p.ts
var P;
var init_p = __esm({
  "host/p.ts"() {
    P = class {
      used() {
        return called() + 1;
      }
      get never() {
        return 2;
      }
    };
  }
});
var init_q = __esm({
  "host/q.ts"() {
    never();
  }
});
function called() {
  return 1;
}
function after() {
  return 3;
}
function never() {
  return 4;
}
init_p();
const n = new P().used();
Deno.stdout.writeSync(new TextEncoder().encode(String(n)));
after();
`;
  await withTemp(async (dir) => {
    const r = await markProfiled(bundle, dir);
    assert.deepEqual([r.functions, r.modules, r.methods, r.profiled], [1, 1, 1, 3]);
    assert.match(r.text, new RegExp(`^var called = ${MARK}\\(function called\\(\\) \\{$`, "m"));
    assert.match(r.text, new RegExp(`^ {2}"host/p\\.ts": ${MARK}\\(function\\(\\) \\{$`, "m"));
    assert.match(r.text, new RegExp(`^ {8}"used": ${MARK}\\(function\\(\\) \\{$`, "m"));
    for (
      const lazy of [
        /^function after\(\) \{$/m,
        /^function never\(\) \{$/m,
        /^ {2}"host\/q\.ts"\(\) \{$/m,
      ]
    ) {
      assert.match(r.text, lazy);
    }
    assert.match(r.text, /^ {6}get never\(\) \{$/m);
    // The probe ran beside the bundle and is gone.
    assert.deepEqual([...Deno.readDirSync(dir)], []);
  });
});

Deno.test("ship: the JSR package (deno publish --dry-run) holds what a run loads and no test guest or as-built image: the CLI and the API run from its files alone", async () => {
  const dry = await new Deno.Command(Deno.execPath(), {
    args: ["publish", "--dry-run", "--allow-dirty"],
    cwd: ROOT_PATH,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const said = new TextDecoder().decode(dry.stdout) + new TextDecoder().decode(dry.stderr);
  assert.equal(dry.code, 0, said);
  const root = `file://${ROOT_PATH}/`;
  const files = [...said.matchAll(/^ {3}(file:\/\/\S+) \(/gm)].map((m) => m[1])
    .filter((u) => u.startsWith(root)).map((u) => decodeURIComponent(u.slice(root.length)));
  assert.ok(files.includes("mod.ts") && files.includes("main.ts"), said);
  const images = files.filter((f) => f.startsWith("guests/images/"));
  // Left out: what only tests and tools load (README "The package").
  assert.deepEqual(images.filter((f) => /\/test-|\.wasm\.(js|b64)$|\.(wasm|elf|a)$/.test(f)), []);
  const dir = await Deno.makeTempDir({ prefix: "lguest-package-" });
  try {
    for (const f of files) {
      await Deno.mkdir(`${dir}/${f}`.replace(/\/[^/]*$/, ""), { recursive: true });
      await Deno.copyFile(`${ROOT_PATH}/${f}`, `${dir}/${f}`);
    }
    const run = async (args: string[], stdin = "") => {
      const p = new Deno.Command(Deno.execPath(), {
        args: ["run", "--quiet", "--no-prompt", ...RUN_FLAGS, ...args],
        cwd: dir,
        env: { NO_COLOR: "1" },
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
        signal: AbortSignal.timeout(60_000),
      }).spawn();
      const w = p.stdin.getWriter();
      await w.write(new TextEncoder().encode(stdin));
      await w.close();
      const r = await p.output();
      const dec = new TextDecoder();
      return { code: r.code, stdout: dec.decode(r.stdout), stderr: dec.decode(r.stderr) };
    };
    await Deno.writeTextFile(
      `${dir}/api.ts`,
      'import { runGuest } from "./mod.ts";\n' +
        'const r = await runGuest({ image: "shell", input: "echo api\\npoweroff\\n" });\n' +
        "console.log(r.code, r.output.includes('api'));\n",
    );
    const [hello, lua, sqlite, shell, api] = await Promise.all([
      run(["main.ts", "run", "hello"]),
      run(["main.ts", "run", "lua", "--", "-e", "print(6*7)"]),
      run(["main.ts", "run", "sqlite3"], "select 6*7;\n"),
      run(["main.ts", "run", "shell"], "echo hi\npoweroff\n"),
      run(["api.ts"]),
    ]);
    assert.match(hello.stdout, /^Hello from an lguest guest!/, hello.stderr);
    assert.equal(lua.stdout, "42\n", lua.stderr);
    assert.match(sqlite.stdout, /^42$/m, sqlite.stderr);
    assert.match(shell.stdout, /hi/, shell.stderr);
    assert.equal(api.stdout, "0 true\n", api.stderr);
    // A test guest is not in the package: one line.
    const t = await run(["main.ts", "run", "test-exit"]);
    assert.equal(t.code, EXIT.USAGE, t.stderr);
    assert.match(
      t.stderr,
      /^lguest: built-in image test-exit\.wasm is not in this build \(a test guest\?\)\n$/,
    );
    // cc's library and the x86-64 images are there (decoded and checked; cc -c needs no clang to
    // get that far when clang is missing: then the line names the packages).
    await Deno.writeTextFile(`${dir}/p.c`, "int main(void) { return 0; }\n");
    const cc = await run(["--allow-run=clang,clang-14", "main.ts", "cc", "-o", "p.wasm", "p.c"]);
    assert.ok(cc.code === EXIT.OK || /not found: apt-get install/.test(cc.stderr), cc.stderr);
    const kvm = await run(["main.ts", "run", "--engine", "kvm", "hello"]);
    assert.ok(
      /^Hello from an lguest guest!/.test(kvm.stdout) || /kvm/i.test(kvm.stderr),
      kvm.stdout + kvm.stderr,
    );
    assert.doesNotMatch(kvm.stderr, /is missing|is damaged/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
