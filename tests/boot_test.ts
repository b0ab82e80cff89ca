/**
 * Start-up (boot.first_byte, docs/performance.md): what a run of a
 * built-in guest must not do before the guest's first byte reaches stdout,
 * each of which once cost every run time: load an FFI library
 * (`Deno.dlopen` of libc: ~2.3 ms), arm a timer (Deno's first `setTimeout`
 * loads Node's timers: ~4.5 ms), start a Worker (~45 ms of the main
 * thread), make an Error (a process's first: ~0.08 ms) or make a JSPI
 * `WebAssembly.Suspending` (V8 compiles its wrapper when a module importing
 * it is instantiated: ~0.5 ms; engines/jspi.ts `lazySuspending`) or hash
 * (a process's first `crypto.subtle.digest`: 0.3-0.7 ms), run a regular
 * expression (a process's first: ~0.1 ms) or make or use a TextEncoder (a
 * process's first, and its first encode: ~0.05 ms each). Counted, not
 * timed: a child process runs the CLI's `main` with those wrapped and
 * reports their counts at its first stdout write.
 *
 * @module
 */

import assert from "node:assert/strict";
import { COUNTING, NONE } from "./helpers/start_probe.ts";
import { DEFAULT_MEMORY, DEFAULT_MEMORY_BYTES, parseSize } from "../launcher/cli.ts";
import { LGFS_MAGIC } from "../abi/lgfs_magic.ts";

const CLI = new URL("../launcher/cli.ts", import.meta.url).href;

const PROBE = `
${COUNTING}
let atFirstByte = null;
const write = Deno.stdout.writeSync.bind(Deno.stdout);
Deno.stdout.writeSync = (b) => { atFirstByte ??= { ...counts }; return write(b); };
const { main } = await import(${JSON.stringify(CLI)});
const code = await main(JSON.parse(Deno.args[0]));
console.error(JSON.stringify({ code, atFirstByte }));
`;

/** Run `lguest ARGS` in a child with the probe; the counts at the first byte. */
async function countsAtFirstByte(args: string[], stdin: "null" | "piped") {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-config", PROBE, JSON.stringify(args)],
    stdin,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin === "piped") await child.stdin.close(); // a pipe already at end of file
  const out = await child.output();
  const err = new TextDecoder().decode(out.stderr);
  const last = err.trim().split("\n").at(-1) ?? "";
  assert.ok(out.success && last.startsWith("{"), err);
  return JSON.parse(last) as {
    code: number;
    atFirstByte: {
      dlopen: number;
      timers: number;
      workers: number;
      errors: number;
      suspending: number;
      queries: number;
      digests: number;
      regexps: number;
      encoders: number;
    } | null;
  };
}

Deno.test("boot: run hello loads no FFI library, arms no timer, starts no Worker, makes no Error and no Suspending, asks no permission, hashes nothing, runs no regular expression and encodes no text before its first byte", async () => {
  for (const stdin of ["null", "piped"] as const) {
    const r = await countsAtFirstByte(["run", "hello"], stdin);
    assert.equal(r.code, 0);
    assert.deepEqual(
      r.atFirstByte,
      NONE,
      `stdin ${stdin}`,
    );
  }
});

Deno.test("boot: the values written out to spare a start its first regular expression and encoder are the ones they stand for", () => {
  assert.equal(DEFAULT_MEMORY_BYTES, parseSize(DEFAULT_MEMORY));
  assert.deepEqual(LGFS_MAGIC, new TextEncoder().encode("LGFS1\0\0\0"));
});

/** The modules `deno run main.ts run ...` loads before any dynamic import: the static closure. */
async function staticClosure(entry: string): Promise<Set<string>> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", new URL(entry, import.meta.url).pathname],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    modules: {
      specifier: string;
      dependencies?: { code?: { specifier: string }; isDynamic?: boolean }[];
    }[];
  };
  const bySpecifier = new Map(info.modules.map((m) => [m.specifier, m]));
  const root = new URL("../", import.meta.url).href;
  const seen = new Set<string>();
  const walk = (spec: string) => {
    if (seen.has(spec)) return;
    seen.add(spec);
    for (const d of bySpecifier.get(spec)?.dependencies ?? []) {
      // A type-only import has no `code`; a dynamic one loads only when it runs.
      if (d.code && !d.isDynamic) walk(d.code.specifier);
    }
  };
  walk(new URL(entry, import.meta.url).href);
  return new Set([...seen].map((s) => s.slice(root.length)));
}

Deno.test("boot: the CLI's static imports leave out devices, images, the supervisor and tools that run hello does not use", async () => {
  // Each of these is a literal dynamic import (in the module graph: no permission needed), loaded
  // only by the run that needs it; a static import would load it at every start.
  const closure = await staticClosure("../launcher/cli.ts");
  const lazy = [
    "devices/block.ts",
    "devices/net/net.ts",
    "devices/net/segment.ts",
    "devices/net/tap.ts",
    "devices/net/pcap.ts",
    "launcher/disk.ts",
    // The file system's code (the run path asks only its magic: abi/lgfs_magic.ts).
    "launcher/lgfs.ts",
    "launcher/cc.ts",
    "launcher/config.ts",
    "engines/kvm.ts",
    "engines/wasm_profile.ts",
    "engines/wasm_fuel.ts",
    // Only for a terminal or --timeout (launcher/runner.ts).
    "launcher/supervisor.ts",
    "launcher/supervisor_worker.ts",
    "launcher/termios.ts",
    "sys/worker.ts",
    // Only for a guest with a wait fd (a tap: host/host.ts).
    "host/idle_wait.ts",
  ];
  for (const m of lazy) assert.ok(!closure.has(m), `${m} is a static import of the CLI`);
  const images = [...closure].filter((m) =>
    m.startsWith("guests/images/") && m !== "guests/images/index.ts"
  );
  assert.deepEqual(images, [], "image payloads are imported when used");
  assert.ok(closure.has("host/host.ts") && closure.has("devices/all.ts"), [...closure].join(" "));
});

Deno.test("boot: the checkout's module graph holds no large image payload (text modules beside the image modules, read when imported)", async () => {
  // Deno reads every JavaScript module of the graph before the first statement, a text import
  // only when the module importing it runs (guests/build.ts TEXT_PAYLOAD_ABOVE).
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", new URL("../main.ts", import.meta.url).pathname],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    modules: { specifier: string; size?: number }[];
  };
  const images = info.modules.filter((m) => /\/guests\/images\/[^/]+\.[jt]s$/.test(m.specifier));
  assert.ok(images.length >= 10, `image modules in the graph: ${images.length}`);
  const large = images.filter((m) => (m.size ?? 0) > 20 << 10).map((m) =>
    `${m.specifier} ${m.size}`
  );
  assert.deepEqual(large, [], "image modules of the graph above 20 KiB");
  const lua = await Deno.readTextFile(
    new URL("../guests/images/lua.wasm.ready.js", import.meta.url),
  );
  assert.match(
    lua,
    /^export \{ default as BASE64 \} from "\.\/lua\.wasm\.ready\.b64" with \{ type: "text" \};$/m,
  );
});

Deno.test("boot: the image modules are JavaScript (a run reads no emitted copy of them), typed by their declarations", async () => {
  const dir = new URL("../guests/images/", import.meta.url);
  const index = await Deno.readTextFile(new URL("index.ts", dir));
  const specs = [...index.matchAll(/(?:import|outside)\("(\.\/[^"]+)"\)/g)].map((m) => m[1]);
  assert.ok(specs.length > 10, `loaders found: ${specs.length}`);
  for (const s of specs) {
    assert.ok(s.endsWith(".js"), `${s}: an image module in TypeScript`);
    const text = await Deno.readTextFile(new URL(s, dir));
    const types = s.endsWith(".ready.js") ? "ready.d.ts" : "image.d.ts";
    assert.match(
      text,
      new RegExp(`^// @ts-self-types="\\./${types.replaceAll(".", "\\.")}"$`, "m"),
      s,
    );
  }
});

/**
 * The fields of each line of V8's log (`--log-function-events`) of `program` (relative to the
 * repository) run with `args` and `--allow-read`, stdin closed; the run must succeed.
 */
async function v8FunctionEvents(dir: string, program: string, ...args: string[]) {
  const log = `${dir}/v8.log`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      `--v8-flags=--log-function-events,--logfile=${log},--no-logfile-per-isolate`,
      new URL(`../${program}`, import.meta.url).pathname,
      ...args,
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  return (await Deno.readTextFile(log)).split("\n").map((line) => line.split(","));
}

/**
 * The run path's top-level functions that every start calls are written
 * `(function f(...) { ... }).bind(null)`: V8 compiles a function expression
 * in parentheses with its module (its "PIFE" heuristic), so Deno's code cache
 * holds it compiled, where a declared function is compiled again at every
 * start, on its first call (docs/performance.md, boot.first_byte). Deno's
 * TypeScript emit drops the parentheses of `const f = (function ...)`; it
 * keeps them before `.bind`. This checks in V8's own log of a real
 * `run hello` that none of them is compiled lazily, i.e. that the emit
 * still keeps them.
 */
Deno.test("boot: the run path's functions written (function f() {...}).bind(null) are compiled with their module, not at first call", async () => {
  const root = new URL("../", import.meta.url);
  const dir = await Deno.makeTempDir();
  try {
    // script-details,ID,URL,... and function,parse-function,ID,START,END,TIME,STAMP,NAME: the
    // functions V8 compiled lazily (on their first call).
    const scripts = new Map<string, string>();
    const lazy = new Map<string, string[]>();
    for (const f of await v8FunctionEvents(dir, "main.ts", "run", "hello")) {
      if (f[0] === "script-details" && f[2]?.startsWith(root.href)) {
        scripts.set(f[1], f[2].slice(root.href.length));
      } else if (f[0] === "function" && f[1] === "parse-function" && scripts.has(f[2])) {
        const file = scripts.get(f[2])!;
        lazy.set(file, [...(lazy.get(file) ?? []), f[7]]);
      }
    }
    let eager = 0;
    const compiledLate: string[] = [];
    for (const file of scripts.values()) {
      const text = await Deno.readTextFile(new URL(file, root));
      const names = [...text.matchAll(/^(?:export )?const ([\w$]+) = \((?:async )?function \1\(/gm)]
        .map((m) => m[1]);
      for (const name of names) {
        // Another function or method of the same name in the file (runner.ts: HostRun's
        // `prepare`) cannot be told apart in the log: not counted.
        const defs = text.match(
          new RegExp(`^\\s*(?:export |static )?(?:async )?(?:function )?${name}\\(`, "gm"),
        );
        if (defs) continue;
        eager++;
        if (lazy.get(file)?.includes(name)) compiledLate.push(`${file}: ${name}`);
      }
    }
    assert.ok(eager >= 20, `functions in the eager form found on the run path: ${eager}`);
    assert.deepEqual(compiledLate, [], "compiled at their first call");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * Deno 2.9 defines the global timers (`setTimeout`, `clearTimeout`, ...) lazily: the first read
 * of one loads Node's timers and ~20 modules of its compatibility layer (~4 ms). A `run hello`
 * sets no timer, and must not touch one either (runner.ts once called `clearTimeout` on no
 * timer at every run's end: spawn to exit 23.9 -> 19.8 ms without it; docs/performance.md). This
 * compares the scripts V8 loads in a whole run with those of Deno printing one byte.
 */
Deno.test("boot: run hello loads none of Deno's Node compatibility modules that Deno printing one byte does not", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const loaded = async (program: string, ...args: string[]) => {
      const urls = new Set<string>();
      for (const f of await v8FunctionEvents(dir, program, ...args)) {
        if (f[0] === "script-details" && /^(node:|ext:deno_node\/)/.test(f[2] ?? "")) {
          urls.add(f[2]);
        }
      }
      return urls;
    };
    const reference = await loaded("bench/one_byte.ts");
    const run = await loaded("main.ts", "run", "hello");
    assert.deepEqual([...run].filter((u) => !reference.has(u)), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
