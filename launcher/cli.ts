/**
 * The `lguest` command line: `run`, `guests`, `--help`, `--version`.
 *
 * Exit codes (README "Exit codes", launcher/exit.ts): 0..123 the guest's own
 * exit status (power off = 0; a status of 124..255 is reported as 123 with
 * the exact status on stderr); 124 --timeout expired; 125 usage error (bad
 * option, missing or invalid image, bad size; also a stdout write or the
 * --json report that failed, sys/stdio.ts); 126 the guest crashed or was
 * killed (reason on stderr; also: its output could not be written to
 * stdout); 128+N ended by signal N (130 also for three Ctrl-C within a
 * second, 141 a closed stdout).
 *
 * @module
 */

import { hostStackLine, isStackOverflow, printable } from "../sys/text.ts";
import { meant, type OptionSpec, parseOptions } from "./args.ts";
import { deviceKinds, UsageError } from "../devices/registry.ts";
import "../devices/all.ts";
import { ImageError } from "../engines/wasm.ts";
import { hasJspi, hasWasm, NO_WASM } from "../engines/jspi.ts";
import { engineUnavailable, parseEngine } from "../engines/select.ts";
import { VERSION } from "../version.ts";
import { builtinGuests } from "./images.ts";
import { runGuests } from "./runner.ts";
import { joinCmdline } from "./cmdline.ts";
import { MAX_MEMORY, MIN_MEMORY } from "./layout.ts";
import { EXIT, permissionMessage } from "./exit.ts";
import { print, stdoutFailure, warn } from "../sys/stdio.ts";

export { EXIT, exitCodeOf } from "./exit.ts";

/** Guest RAM without `-m` (as the help shows it). */
export const DEFAULT_MEMORY = "32M";
/**
 * {@link DEFAULT_MEMORY} in bytes, written out: parsing it at every start ran the process's
 * first regular expression, which costs V8 ~0.1 ms (boot.first_byte, docs/performance.md);
 * tests/boot_test.ts checks that the two agree.
 */
export const DEFAULT_MEMORY_BYTES = 32 * 1024 ** 2;

/** Option help lines: `[syntax, description]`, aligned by {@link formatOptions}. */
type OptionHelp = [string, string];

/**
 * Align option help: descriptions start in one column; a syntax too long
 * for it puts its description on the next line, at that column. Device
 * usage strings (registry) are lines of "--opt ARGS  description" (two or
 * more spaces before the description).
 */
export function formatOptions(rows: OptionHelp[], column = 24, width = 100): string {
  const out: string[] = [];
  for (const [syntax, text] of rows) {
    const head = `  ${syntax}`;
    const words = text.split(" ");
    const lines: string[] = [];
    let line = "";
    for (const w of words) {
      if (line && column + line.length + 1 + w.length > width) {
        lines.push(line);
        line = w;
      } else line = line ? `${line} ${w}` : w;
    }
    if (line) lines.push(line);
    if (head.length + 2 <= column) {
      out.push(head.padEnd(column) + (lines.shift() ?? ""));
    } else out.push(head);
    for (const l of lines) out.push(" ".repeat(column) + l);
  }
  return out.join("\n");
}

/** The registry's device usage strings as help rows. */
function deviceHelp(): OptionHelp[] {
  return deviceKinds().flatMap((k) =>
    k.usage.split("\n").map((l): OptionHelp => {
      const m = /^\s*(\S.*?)(?:\s{2,}(.*))?$/.exec(l);
      return m ? [m[1], m[2] ?? ""] : [l.trim(), ""];
    })
  );
}

const EXIT_HELP = `Exit codes: 0..123 the guest's exit status (0 powered off; 124..255 are
reported as 123), 124 timeout, 125 usage error (or stdout, --json not written),
126 guest crashed or was killed (or its output not written), 128+N signal N
(130: Ctrl-C, 141: stdout closed).`;

function runUsage(): string {
  const rows: OptionHelp[] = [
    [
      "-m, --memory SIZE",
      `guest RAM, e.g. 16M, 512K, 1G (plain number: MiB; default ${DEFAULT_MEMORY})`,
    ],
    ["    --engine NAME", "wasm (default; runs anywhere) or kvm (x86-64 code under /dev/kvm)"],
    ["    --timeout SECS", "end the run after SECS seconds (e.g. 10, 2.5, 500ms)"],
    ["-v, --verbose", "show the memory layout, device status bits and counters"],
    ["    --config FILE", "run several guests in one host (JSON; see README)"],
    ["    --pcap FILE", "record every frame of every net device (pcap format)"],
    ["    --json FILE", "write how each guest ended and its device counters as JSON"],
    ...deviceHelp().map(([o, t]): OptionHelp => [`    ${o}`, t]),
    ["-h, --help", "this help"],
  ];
  return `Usage:
  lguest run [options] GUEST [-- ARGS...]   run a guest; ARGS become its command line
  lguest run [options] --config FILE.json   run several guests in one host

GUEST is a built-in guest name (see 'lguest guests') or a path to an image
(.wasm for the wasm engine, an x86-64 ELF for kvm).
ARGS: each word reaches the guest as one word (docs/guest-abi.md §3).

Options for run:
${formatOptions(rows)}

${EXIT_HELP}`;
}

const GUESTS_USAGE = `Usage:
  lguest guests             list the built-in guests (name and description)
  lguest guests --json      the same as a JSON array of {name, description}`;

function usage(): string {
  return `lguest ${VERSION}: run lguest (Linux 2.6.23) paravirtual guests on Deno

Usage:
  lguest run [options] GUEST [-- ARGS...]   run a guest; ARGS become its command line
  lguest run [options] --config FILE.json   run several guests in one host
  lguest guests [--json]                    list the built-in guests
  lguest disk mkfs|ls|put|get|rm|check ...  files on lgfs disk images ('lguest disk help')
  lguest cc [clang flags] -o P.wasm P.c     build a C program into a guest ('lguest cc --help')
  lguest --help | --version
  lguest COMMAND --help                     help for one command

${runUsage().slice(runUsage().indexOf("GUEST is"))}`;
}

// Written `(function f() {...}).bind(null)`: compiled with the module, not again at every
// start on its first call (Deno's emit keeps these parentheses; docs/performance.md, boot).
/** Parse a memory size: K/M/G suffixes; a plain number is MiB. */
export const parseSize = (function parseSize(text: string): number {
  const m = /^(\d+)\s*([kmg]?)(i?b)?$/i.exec(text.trim());
  if (!m) throw new UsageError(`invalid memory size '${text}' (use e.g. 16M, 512K, 1G)`);
  const unit = (m[2] || "m").toLowerCase();
  const bytes = Number(m[1]) * { k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[unit]!;
  if (bytes % 4096 !== 0) throw new UsageError(`memory size '${text}' is not a multiple of 4K`);
  if (bytes < MIN_MEMORY || bytes > MAX_MEMORY) {
    throw new UsageError(`memory size '${text}' out of range (2M to 3G)`);
  }
  return bytes;
}).bind(null);

/** Parse a timeout: seconds, or with an s/ms suffix. Returns ms. */
export function parseTimeout(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s)?$/.exec(text.trim());
  const ms = m ? Number(m[1]) * (m[2] === "ms" ? 1 : 1000) : NaN;
  if (!m || !(ms > 0) || ms > 2 ** 31 - 1) {
    throw new UsageError(`invalid timeout '${text}' (use seconds, e.g. 10 or 2.5, or 500ms)`);
  }
  return ms;
}

function fail(msg: string): number {
  // One line whatever a message quotes (names are escaped where they are quoted; this is a net).
  const line = [...msg].map((c) => {
    const n = c.charCodeAt(0);
    return n < 0x20 || (n >= 0x7f && n <= 0x9f) ? `\\x${n.toString(16).padStart(2, "0")}` : c;
  }).join("");
  warn(`lguest: ${line}`);
  return EXIT.USAGE;
}

/** Run the CLI; returns the exit code. */
export const main = (async function main(argv: string[]): Promise<number> {
  try {
    return await dispatch(argv);
  } catch (e) {
    if (e instanceof UsageError || e instanceof ImageError) return fail(e.message);
    if (isStackOverflow(e)) return fail(hostStackLine());
    const perm = permissionMessage(e);
    if (perm !== null) return fail(perm);
    // The host refused a file (EACCES) somewhere no message names it: one line, not a trace.
    if (e instanceof Deno.errors.PermissionDenied) return fail(e.message.split("\n")[0]);
    // What the user asked for could not be written out (`lguest --help > /dev/full`).
    const failed = stdoutFailure(e, EXIT.USAGE);
    if (failed !== null) return failed;
    throw e;
  }
}).bind(null);

const dispatch = (async function dispatch(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case undefined:
      warn(usage()); // a usage error: on stderr, as `lguest cc` and `lguest disk` alone
      return EXIT.USAGE;
    case "-h":
    case "--help":
      print(usage());
      return EXIT.OK;
    case "help":
      // `lguest help COMMAND` = `lguest COMMAND --help`
      if (rest.length === 0) {
        print(usage());
        return EXIT.OK;
      }
      if (rest.length === 1 && rest[0] === "help") {
        // `lguest help help`: help's help is the general help.
        print(usage());
        return EXIT.OK;
      }
      if (rest.length > 1 || !["run", "guests", "disk", "cc"].includes(rest[0])) {
        throw new UsageError(
          `help: unknown command '${rest.join(" ")}' (run, guests, disk, cc, help)`,
        );
      }
      return await dispatch([rest[0], "--help"]);
    case "-V":
    case "--version":
      if (rest.length > 0) throw new UsageError(`${cmd} takes no arguments (got '${rest[0]}')`);
      print(`lguest ${VERSION}`);
      return EXIT.OK;
    case "guests":
      if (rest.length === 1 && (rest[0] === "--help" || rest[0] === "-h")) {
        print(GUESTS_USAGE);
        return EXIT.OK;
      }
      if (rest.length === 1 && rest[0] === "--json") {
        const list = (await builtinGuests()).map(({ name, description }) => ({
          name,
          description,
        }));
        print(JSON.stringify(list, null, 2));
        return EXIT.OK;
      }
      if (rest.length > 0) {
        const extra = rest.find((a) => a !== "--json");
        throw new UsageError(
          extra === undefined
            ? "guests takes --json once (see 'lguest guests --help')"
            : `guests takes no arguments but --json (got '${
              printable(extra)
            }'; see 'lguest guests --help')`,
        );
      }
      for (const g of await builtinGuests()) print(`${g.name.padEnd(10)} ${g.description}`);
      return EXIT.OK;
    case "run":
      return await runCommand(rest);
    case "disk":
      // Loaded only here: `run` does not pay for the disk tools (boot.first_byte).
      return (await import("./disk.ts")).diskCommand(rest);
    case "cc":
      // Loaded only here, like disk (it embeds libposix.a).
      return (await import("./cc.ts")).ccCommand(rest);
    default:
      return fail(
        `unknown command '${cmd}' (${
          meant(cmd, ["run", "guests", "disk", "cc", "help", "--help", "--version"])
        }try 'lguest --help')`,
      );
  }
}).bind(null);

const parseRunArgs = (function parseRunArgs(argv: string[]) {
  const options: Record<string, OptionSpec> = {
    memory: { type: "string", short: "m" },
    engine: { type: "string" },
    timeout: { type: "string" },
    config: { type: "string" },
    pcap: { type: "string" },
    json: { type: "string" },
    verbose: { type: "boolean", short: "v" },
    help: { type: "boolean", short: "h" },
  };
  for (const k of deviceKinds()) {
    options[k.option] = { type: k.flag ? "boolean" : "string", multiple: true };
  }
  return parseOptions(argv, options);
}).bind(null);

/**
 * The same disk file given twice to one run would be refused by its own
 * lock as "in use by another lguest": say what happened instead.
 */
function refuseTwice(disks: Map<string, string>, value: string, spec: { path: string }): void {
  let key: string;
  try {
    const st = Deno.statSync(spec.path);
    if (st.ino === null) return;
    key = `${st.dev}:${st.ino}`;
  } catch {
    return; // opening it reports the problem
  }
  const first = disks.get(key);
  if (first !== undefined) {
    throw new UsageError(
      `--block ${value}: the same disk as --block ${first} (a run uses a disk once)`,
    );
  }
  disks.set(key, value);
}

const runCommand = (async function runCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseRunArgs(argv);
  if (values.help) {
    print(runUsage());
    return EXIT.OK;
  }
  // An empty file name ('') is one line naming the option, not Deno's "Empty path".
  for (const name of ["json", "pcap", "config"]) {
    if (values[name] === "") throw new UsageError(`--${name} needs a FILE (got '')`);
  }
  if (positionals[0] === "") throw new UsageError("run needs a GUEST (got '')");
  const timeoutMs = values.timeout === undefined ? 0 : parseTimeout(values.timeout as string);
  const engine = values.engine === undefined ? undefined : parseEngine(values.engine as string);
  if (engine !== undefined) {
    const why = await engineUnavailable(engine);
    if (why !== null) throw new UsageError(why);
  }
  const verbose = values.verbose ? (line: string) => warn(`lguest: ${line}`) : undefined;
  if (!hasJspi) {
    // As --engine kvm without /dev/kvm: a host that cannot run the engine is one line, 125.
    throw new UsageError(
      hasWasm ? "this Deno has no WebAssembly JSPI; use Deno 2.9 or later" : NO_WASM,
    );
  }
  const opts = {
    timeoutMs,
    verbose,
    hint: (name: string, line: string) => warn(`lguest: ${name}: ${line}`),
    // The process is ours: the main thread may block on a busy tap (host/idle_wait.ts).
    blockingWait: true,
    pcap: values.pcap as string | undefined,
    engine,
    json: values.json as string | undefined,
    parseSize,
    defaultMemory: DEFAULT_MEMORY_BYTES,
  };
  if (values.config !== undefined) {
    if (positionals.length > 0) {
      throw new UsageError("give either --config FILE or a GUEST, not both");
    }
    const devOpts = deviceKinds().filter((k) => values[k.option] !== undefined);
    if (devOpts.length > 0 || values.memory !== undefined) {
      throw new UsageError(
        "with --config, put memory and devices in the file (per guest), not on the command line",
      );
    }
    // Loaded only here: a run without --config does not pay for it (boot.first_byte).
    const { loadConfig } = await import("./config.ts");
    const plan = await loadConfig(values.config as string, { memory: parseSize });
    opts.pcap ??= plan.pcap;
    return await runGuests(plan.guests, { ...opts, config: values.config as string });
  }
  const [guest, ...args] = positionals;
  if (guest === undefined) throw new UsageError("run needs a GUEST (see 'lguest guests')");
  const cmdline = joinCmdline(args);
  const memory = values.memory as string | undefined;
  if (memory !== undefined) parseSize(memory); // report a bad size before loading anything
  const devices: [string, string][] = [];
  const disks = new Map<string, string>(); // dev:ino -> the --block value that named it
  for (const kind of deviceKinds()) {
    for (const value of (values[kind.option] as string[] | undefined) ?? []) {
      const spec = kind.parse(value);
      devices.push([kind.option, value]);
      if (kind.option === "block") refuseTwice(disks, value, spec as { path: string });
    }
  }
  return await runGuests([{
    name: "",
    image: guest,
    memory,
    args: cmdline,
    stdio: true,
    devices,
  }], opts);
}).bind(null);
