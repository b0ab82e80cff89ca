/**
 * Launcher: the `--config FILE.json` format for several guests in one host.
 *
 * ```json
 * { "guests": [
 *     { "name": "a", "image": "netd",  "memory": "16M", "net": ["segment:lan"], "args": "ip=10.0.0.1/24" },
 *     { "name": "b", "image": "shell", "net": ["segment:lan"], "args": "ip=10.0.0.2/24", "console": "stdio" } ],
 *   "pcap": "all.pcap" }
 * ```
 *
 * Per-guest fields mirror the CLI: `name` (required, unique), `image`
 * (required: built-in name or path), `memory`, `engine` (`"wasm"` or
 * `"kvm"`; default: the CLI's `--engine`), `args` (the command line),
 * `console` (`"stdio"` for at most one guest), and one array per device
 * option (`net`, `block`). Errors name the field and its line.
 *
 * @module
 */

import { deviceKinds, UsageError } from "../devices/registry.ts";
import { type EngineName, parseEngine } from "../engines/select.ts";
import { checkCmdline, joinCmdline } from "./cmdline.ts";
import { readInputFile } from "./input_file.ts";
import { printable } from "../sys/text.ts";
import { builtinGuests } from "./images.ts";

/** The largest config file read, and how deep its values may nest. */
export const MAX_CONFIG_BYTES = 1 << 20, MAX_CONFIG_DEPTH = 32;

/** One guest of a config file, validated. */
export interface GuestPlan {
  name: string;
  image: string;
  memory?: string;
  args: string;
  stdio: boolean;
  /**
   * [device option, value] in file order, by option; a third element is
   * the value already parsed (the API's typed device objects).
   */
  devices: [string, string, unknown?][];
  /** The image's bytes (the API), instead of reading `image`. */
  bytes?: Uint8Array;
  /**
   * The engine this guest runs on (contract 8: `"wasm"` or `"kvm"`);
   * undefined: the run's default (`--engine`, else wasm).
   */
  engine?: string;
}

/** A whole config file. */
export interface RunPlan {
  guests: GuestPlan[];
  pcap?: string;
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** A JSON parser that remembers where each value starts (for messages). */
class Parser {
  readonly text: string;
  pos = 0;
  readonly where = new Map<string, number>();
  constructor(text: string) {
    this.text = text;
  }
  line(at: number): number {
    return this.text.slice(0, at).split("\n").length;
  }
  fail(msg: string, at = this.pos): never {
    throw new UsageError(`line ${this.line(at)}: ${msg}`);
  }
  ws(): void {
    while (/\s/.test(this.text[this.pos] ?? "")) this.pos++;
  }
  value(path: string, depth = 0): Json {
    this.ws();
    if (depth > MAX_CONFIG_DEPTH) this.fail(`values nested more than ${MAX_CONFIG_DEPTH} deep`);
    this.where.set(path, this.pos);
    const c = this.text[this.pos];
    if (c === "{") return this.object(path, depth + 1);
    if (c === "[") return this.array(path, depth + 1);
    if (c === '"') return this.string();
    const m = /^(-?\d+(\.\d+)?([eE][+-]?\d+)?|true|false|null)/.exec(this.text.slice(this.pos));
    if (!m) this.fail(c === undefined ? "unexpected end of file" : `unexpected '${c}'`);
    this.pos += m[0].length;
    return JSON.parse(m[0]);
  }
  string(): string {
    const m = /^"(?:[^"\\\n]|\\.)*"/.exec(this.text.slice(this.pos));
    if (!m) this.fail("unterminated string");
    this.pos += m[0].length;
    return JSON.parse(m[0]);
  }
  object(path: string, depth: number): { [k: string]: Json } {
    const out: { [k: string]: Json } = {};
    this.pos++;
    this.ws();
    if (this.text[this.pos] === "}") return this.pos++, out;
    for (;;) {
      this.ws();
      if (this.text[this.pos] !== '"') this.fail("expected a field name in quotes");
      const key = this.string();
      this.ws();
      if (this.text[this.pos++] !== ":") this.fail(`expected ':' after "${key}"`, this.pos - 1);
      out[key] = this.value(path ? `${path}.${key}` : key, depth);
      this.ws();
      const c = this.text[this.pos++];
      if (c === "}") return out;
      if (c !== ",") this.fail("expected ',' or '}'", this.pos - 1);
    }
  }
  array(path: string, depth: number): Json[] {
    const out: Json[] = [];
    this.pos++;
    this.ws();
    if (this.text[this.pos] === "]") return this.pos++, out;
    for (;;) {
      out.push(this.value(`${path}[${out.length}]`, depth));
      this.ws();
      const c = this.text[this.pos++];
      if (c === "]") return out;
      if (c !== ",") this.fail("expected ',' or ']'", this.pos - 1);
    }
  }
}

const GUEST_FIELDS = ["name", "image", "memory", "engine", "args", "console"];

/**
 * A guest's `args`: a string is the command line as written; an array of
 * strings is a list of words, quoted as the CLI quotes the words after `--`.
 */
function argsOf(v: Json | undefined, bad: (msg: string) => never): string {
  if (v === undefined) return "";
  const words = Array.isArray(v) ? v : [v];
  if (words.some((w) => typeof w !== "string")) {
    bad("must be a string (the command line) or an array of strings (its words)");
  }
  try {
    return Array.isArray(v) ? joinCmdline(v as string[]) : checkCmdline(v as string);
  } catch (e) {
    if (e instanceof UsageError) bad(e.message);
    throw e;
  }
}

/** Value checks the CLI supplies (they throw a one-line UsageError). */
export interface ConfigChecks {
  /** A `memory` value, e.g. the CLI's size parser. */
  memory?: (text: string) => unknown;
}

/** Parse and validate a config file's text. */
export function parseConfig(text: string, checks: ConfigChecks = {}): RunPlan {
  const p = new Parser(text);
  const root = p.value("");
  p.ws();
  if (p.pos < text.length) p.fail("unexpected text after the end");
  const at = (path: string) =>
    `line ${p.line(p.where.get(path) ?? 0)}${path === "" ? "" : `: ${path}`}`;
  const bad = (path: string, msg: string): never => {
    throw new UsageError(`${at(path)}: ${msg}`);
  };
  if (root === null || typeof root !== "object" || Array.isArray(root)) {
    bad("", 'the file must hold an object with a "guests" array');
  }
  const top = root as { [k: string]: Json };
  for (const k of Object.keys(top)) {
    if (k !== "guests" && k !== "pcap") bad(k, "unknown field (use guests, pcap)");
  }
  if (!Array.isArray(top.guests) || top.guests.length === 0) {
    bad("guests", "must be a non-empty array of guests");
  }
  if (top.pcap !== undefined && typeof top.pcap !== "string") bad("pcap", "must be a file name");
  const optionNames = deviceKinds().map((k) => k.option);
  const names = new Set<string>();
  let stdio = 0;
  const guests = (top.guests as Json[]).map((g, i): GuestPlan => {
    const base = `guests[${i}]`;
    if (g === null || typeof g !== "object" || Array.isArray(g)) bad(base, "must be an object");
    const o = g as { [k: string]: Json };
    for (const k of Object.keys(o)) {
      if (!GUEST_FIELDS.includes(k) && !optionNames.includes(k)) {
        bad(`${base}.${k}`, `unknown field (use ${[...GUEST_FIELDS, ...optionNames].join(", ")})`);
      }
    }
    const str = (k: string, required: boolean): string | undefined => {
      const v = o[k];
      if (v === undefined) return required ? bad(base, `missing "${k}"`) : undefined;
      if (typeof v !== "string" || (required && v === "")) bad(`${base}.${k}`, "must be a string");
      return v as string;
    };
    const name = str("name", true)!;
    if (!/^[A-Za-z0-9_.-]{1,32}$/.test(name)) {
      bad(`${base}.name`, "must be 1-32 letters, digits, . _ -");
    }
    if (names.has(name)) bad(`${base}.name`, `duplicate guest name '${name}'`);
    names.add(name);
    const console_ = str("console", false);
    if (console_ !== undefined && console_ !== "stdio") {
      bad(`${base}.console`, 'must be "stdio" (or left out)');
    }
    if (console_ === "stdio" && ++stdio > 1) {
      bad(`${base}.console`, "only one guest can have stdio");
    }
    const devices: [string, string, unknown?][] = [];
    for (const opt of optionNames) {
      let v = o[opt];
      if (v === undefined) continue;
      const kind = deviceKinds().find((k) => k.option === opt)!;
      if (kind.flag) {
        // A flag device: true (one), false (none) or a count.
        if (v === true || v === false) v = v ? 1 : 0;
        if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > 15) {
          bad(`${base}.${opt}`, "must be true, false or a count (0-15)");
        }
        v = Array(v as number).fill("");
      } else if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) {
        bad(`${base}.${opt}`, "must be an array of strings");
      }
      (v as string[]).forEach((x, j) => {
        try {
          kind.parse(x); // a bad value names its field and line, as other mistakes do
        } catch (e) {
          if (e instanceof UsageError) bad(`${base}.${opt}[${j}]`, e.message);
          throw e;
        }
        devices.push([opt, x]);
      });
    }
    const memory = str("memory", false);
    if (memory !== undefined && checks.memory) {
      try {
        checks.memory(memory); // a bad size names its field and line too
      } catch (e) {
        if (e instanceof UsageError) bad(`${base}.memory`, e.message);
        throw e;
      }
    }
    const engineText = str("engine", false);
    let engine: EngineName | undefined;
    if (engineText !== undefined) {
      try {
        engine = parseEngine(engineText);
      } catch (e) {
        if (e instanceof UsageError) bad(`${base}.engine`, e.message);
        throw e;
      }
    }
    return {
      name,
      image: str("image", true)!,
      memory,
      ...(engine !== undefined ? { engine } : {}),
      args: argsOf(o.args, (msg) => bad(`${base}.args`, msg)),
      stdio: console_ === "stdio",
      devices,
    };
  });
  return { guests, pcap: top.pcap as string | undefined };
}

/** Where a config error came from: prefix the message with the file. */
export async function loadConfig(path: string, checks: ConfigChecks = {}): Promise<RunPlan> {
  // A regular file of at most MAX_CONFIG_BYTES, checked before it is read.
  const bytes = await readInputFile(path, MAX_CONFIG_BYTES, "config file");
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new UsageError(`${printable(path)}: not UTF-8 text`);
  }
  let plan: RunPlan;
  try {
    plan = parseConfig(text, checks);
  } catch (e) {
    if (e instanceof UsageError) {
      throw new UsageError(`${printable(path)}: ${printable(e.message, 400)}`);
    }
    throw e;
  }
  const builtins = new Set((await builtinGuests(true)).map((g) => g.name));
  return relativeTo(plan, path, builtins);
}

/**
 * Relative file names in a config file mean files beside it (as in most
 * tools' config files), not in the current folder: `image` (unless it
 * names a built-in guest), `block` files, `pcap=` of `net` values and the
 * top-level `pcap`. Absolute names are kept.
 */
export function relativeTo(plan: RunPlan, configPath: string, builtins: Set<string>): RunPlan {
  const slash = configPath.lastIndexOf("/");
  const dir = slash < 0 ? "" : configPath.slice(0, slash + 1);
  const at = (p: string) => (dir === "" || p.startsWith("/") ? p : dir + p);
  const device = ([opt, value, parsed]: [string, string, unknown?]): [string, string, unknown?] => {
    if (opt === "block") {
      const comma = value.indexOf(",");
      const file = comma < 0 ? value : value.slice(0, comma);
      return [opt, at(file) + (comma < 0 ? "" : value.slice(comma)), parsed];
    }
    if (opt === "net") {
      return [opt, value.replace(/(^|,)pcap=([^,]+)/g, (_m, c, f) => `${c}pcap=${at(f)}`), parsed];
    }
    return [opt, value, parsed];
  };
  return {
    guests: plan.guests.map((g) => ({
      ...g,
      image: builtins.has(g.image) ? g.image : at(g.image),
      devices: g.devices.map(device),
    })),
    ...(plan.pcap !== undefined ? { pcap: at(plan.pcap) } : {}),
  };
}
