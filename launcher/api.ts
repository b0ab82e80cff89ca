/**
 * The API for programs and tests (exported by `mod.ts`): run a guest to its
 * end ({@link runGuest}), drive an interactive one ({@link startGuest}), or
 * run several in one host from the `--config` object form
 * ({@link startLab}). It goes through the same code as the CLI
 * (`launcher/runner.ts`), with each guest's console captured instead of
 * stdio, and its own timeout instead of the CLI's signal supervisor.
 *
 * @module
 */

import "../devices/all.ts";
import type { BlockSpec } from "../devices/block.ts";
import type { ConsoleBackend } from "../devices/console.ts";
import { deviceKinds, UsageError } from "../devices/registry.ts";
import { parseSize } from "./cli.ts";
import { checkCmdline, joinCmdline } from "./cmdline.ts";
import { type GuestPlan, parseConfig } from "./config.ts";
import { EXIT } from "./exit.ts";
import type { Outcome } from "./launcher.ts";
import { countersOf, HostRun, outcomeKind, type RunOptions } from "./runner.ts";

/** How a guest's run ended. */
export interface RunResult {
  /** The guest's name (its image's, unless one was given). */
  name: string;
  /**
   * The exit code the CLI would give (`EXIT`): the guest's own status
   * (0..123; power off = 0), 124 timeout, 126 crashed or killed or
   * stopped, 128+N signal.
   */
  code: number;
  /** The guest's own exit status (power off = 0) when it ended by itself. */
  status?: number;
  /** Why it ended: `CRASH: Power down`, the crash message, `timed out after 2 s`, `stopped`. */
  reason: string;
  /** What it wrote to its console (the last `maxOutput` characters). */
  output: string;
  /** How it ended in one word: powered off, exited, crashed, timeout, signal, stopped. */
  outcome: string;
  /** The hints it gave its user ({@link GuestOptions.onHint}), as `--json` gives them. */
  hints: string[];
  /** The host's counters of this guest (hypercalls, DMA, interrupts), as `--json` gives them. */
  counters: Record<string, number> | null;
  /** Each device in table order with its counters (null: it keeps none), as `--json`. */
  devices: { label: string; counters: Record<string, number> | null }[];
}

/** A disk: the typed form of `--block FILE[,ro][,sync][,direct][,nolock]`. */
export interface BlockOptions {
  /** The file backing the disk. */
  path: string;
  /** Read-only (`,ro`): writes fail, the file is locked shared. */
  readOnly?: boolean;
  /** Every write reaches the disk before it is acknowledged (`,sync`). */
  sync?: boolean;
  /** O_DIRECT where the file system allows it (`,direct`). */
  direct?: boolean;
  /** Do not lock the file (`,nolock`). */
  noLock?: boolean;
}

/**
 * A NIC: the typed form of `--net segment:NAME[,pcap=FILE]` or
 * `--net tap:IF[,ip=ADDR/PREFIX|,bridge=BR][,pcap=FILE]`.
 */
export type NetOptions =
  | { segment: string; pcap?: string }
  | { tap: string; ip?: string; bridge?: string; pcap?: string };

/** What to run: one guest and its devices, console input and limits. */
export interface GuestOptions {
  /** A built-in guest's name (`lguest guests`), a path to an image, or its bytes. */
  image: string | Uint8Array;
  /** The guest's name (results, errors); default: the image's. */
  name?: string;
  /** The command line: as written, or its words (quoted as the CLI quotes them). */
  args?: string | readonly string[];
  /** RAM: `"32M"`, `"512K"`, `"1G"` (the CLI's sizes) or bytes; default 32 MiB. */
  memory?: string | number;
  /** The engine (`--engine`): `"wasm"` (default) or `"kvm"` (x86-64 under /dev/kvm). */
  engine?: string;
  /** Disks, as `--block` values or typed objects. */
  block?: readonly (string | BlockOptions)[];
  /** NICs, as `--net` values or typed objects. */
  net?: readonly (string | NetOptions)[];
  /** Other registered devices: CLI option name -> its values. */
  devices?: Readonly<Record<string, readonly string[]>>;
  /**
   * Console input. {@link runGuest}: this, then end of input (none: end of
   * input at once). {@link startGuest}: written first; more with
   * {@link GuestHandle.write}, end with {@link GuestHandle.closeInput}.
   */
  input?: string | Uint8Array | ReadableStream<Uint8Array>;
  /** Stop the guest after this many milliseconds (code 124). */
  timeoutMs?: number;
  /** Record every frame of the guest's NICs in this pcap file. */
  pcap?: string;
  /** Keep at most this many characters of console output (the latest); default 16 Mi. */
  maxOutput?: number;
  /** Called with each piece of console output as it comes. */
  onOutput?: (text: string) => void;
  /**
   * Called with each hint the guest asks the launcher to give its user (the
   * line the CLI prints on stderr after `lguest: NAME: `, e.g. a POSIX
   * program's `/data.db: no disk: run with --block ...`); never in `output`.
   */
  onHint?: (line: string) => void;
  /** Called with the lines the CLI's `--verbose` prints. */
  verbose?: (line: string) => void;
  /**
   * The CLI's blocking idle wait (default false): while a tap carries
   * frames less than 250 ms apart and every guest sleeps, the main thread
   * blocks in poll(2) on it for up to 50 ms at a time: one thread wake-up
   * per frame, but this program's own timers may fire up to ~50 ms late
   * meanwhile (I/O, signals and Workers still wake it at once).
   */
  blockingWait?: boolean;
}

/** A guest of a lab: the object form of one `--config` guest. */
export interface LabGuestConfig {
  /** Unique name: 1-32 letters, digits, `.`, `_`, `-`. */
  name: string;
  /** A built-in guest's name or a path to an image. */
  image: string;
  /** RAM, e.g. `"16M"`. */
  memory?: string;
  /** The command line, or its words. */
  args?: string | string[];
  /** `"stdio"`: when this guest ends, the others are stopped (its console is captured too). */
  console?: "stdio";
  /** Disks (`--block` values). */
  block?: string[];
  /** NICs (`--net` values). */
  net?: string[];
}

/** Several guests in one host: the object form of `--config FILE.json`. */
export interface LabConfig {
  /** The guests, in start order. */
  guests: LabGuestConfig[];
  /** Record every frame of every NIC in this pcap file. */
  pcap?: string;
}

/** Options of a whole lab. */
export interface LabOptions {
  /** Stop every guest after this many milliseconds (code 124). */
  timeoutMs?: number;
  /** The engine of every guest: `"wasm"` (default) or `"kvm"`. */
  engine?: string;
  /** Per guest, keep at most this many characters of console output. */
  maxOutput?: number;
  /** Called with each piece of any guest's console output. */
  onOutput?: (name: string, text: string) => void;
  /** Called with each hint a guest gives its user (see {@link GuestOptions.onHint}). */
  onHint?: (name: string, line: string) => void;
  /** Called with the lines the CLI's `--verbose` prints. */
  verbose?: (line: string) => void;
  /** The CLI's blocking idle wait on busy taps (default false; see {@link GuestOptions.blockingWait}). */
  blockingWait?: boolean;
}

/** {@link GuestHandle.expect} gave up: a timeout, or the guest ended first. */
export class ExpectError extends Error {
  /** Always "ExpectError". */
  override name = "ExpectError";
}

/** Options of {@link GuestHandle.expect}. */
export interface ExpectOptions {
  /** Give up after this many milliseconds; default 10 000. */
  timeoutMs?: number;
}

const DEFAULT_MAX_OUTPUT = 16 * 1024 * 1024;
const DEFAULT_EXPECT_MS = 10_000;

/** A guest's console for the API: output captured, input queued. */
class CapturedConsole {
  #text = "";
  /** Characters dropped from the front (beyond maxOutput). */
  #dropped = 0;
  readonly #max: number;
  readonly #onOutput?: (text: string) => void;
  readonly #decoder = new TextDecoder();
  #input: Uint8Array[] = [];
  #inputEnded = false;
  #closed = false;
  #reader: ReadableStreamDefaultReader<Uint8Array> | null = null;
  #wakeReader: (() => void) | null = null;
  #watchers = new Set<() => void>();

  constructor(max: number, onOutput?: (text: string) => void) {
    if (!(Number.isInteger(max) && max > 0)) {
      throw new UsageError(`maxOutput must be a positive integer (got ${max})`);
    }
    this.#max = max;
    this.#onOutput = onOutput;
  }

  get text(): string {
    return this.#text;
  }

  get dropped(): number {
    return this.#dropped;
  }

  get closed(): boolean {
    return this.#closed;
  }

  #append(text: string): void {
    if (text === "") return;
    this.#text += text;
    if (this.#text.length > this.#max) {
      const cut = this.#text.length - this.#max;
      this.#text = this.#text.slice(cut);
      this.#dropped += cut;
    }
    try {
      this.#onOutput?.(text);
    } catch (e) {
      // Not inside the guest's hypercall: the caller's error surfaces on its own.
      queueMicrotask(() => {
        throw e;
      });
    }
    this.notify();
  }

  /** Wake everyone waiting for output or the end. */
  notify(): void {
    for (const w of [...this.#watchers]) w();
  }

  /** Resolves on the next output or end (or after `ms`). */
  changed(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#watchers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#watchers.add(done);
    });
  }

  write(data: string | Uint8Array): void {
    if (this.#inputEnded) throw new UsageError("console input was closed (closeInput)");
    const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data.slice();
    if (bytes.length === 0) return;
    this.#input.push(bytes);
    this.#wake();
  }

  endInput(): void {
    this.#inputEnded = true;
    this.#wake();
  }

  /** Feed a stream, then end the input. */
  async pipe(stream: ReadableStream<Uint8Array>): Promise<void> {
    const reader = this.#reader = stream.getReader();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done || this.#closed) break;
        if (value.length) {
          this.#input.push(value.slice());
          this.#wake();
        }
      }
    } catch {
      // a failing source is an end of input
    } finally {
      this.#reader = null;
      reader.releaseLock();
      this.endInput();
    }
  }

  #wake(): void {
    const w = this.#wakeReader;
    this.#wakeReader = null;
    w?.();
  }

  readonly backend: ConsoleBackend = {
    read: async (buf) => {
      while (this.#input.length === 0 && !this.#inputEnded && !this.#closed) {
        await new Promise<void>((resolve) => (this.#wakeReader = resolve));
      }
      const head = this.#input[0];
      if (head === undefined || this.#closed) return null;
      const n = Math.min(buf.length, head.length);
      buf.set(head.subarray(0, n));
      if (n === head.length) this.#input.shift();
      else this.#input[0] = head.subarray(n);
      return n;
    },
    write: (data) => this.#append(this.#decoder.decode(data, { stream: true })),
    // A read waits for write(), closeInput() or close(), each of which queues or ends input
    // first; pipe()'s stream may read on Deno's blocking pool (sys/clock.ts poolOps).
    readIsLocal: () =>
      this.#reader === null && this.#input.length === 0 && !this.#inputEnded && !this.#closed,
    close: () => {
      if (this.#closed) return;
      this.#closed = true;
      this.#append(this.#decoder.decode());
      this.#reader?.cancel().catch(() => {});
      this.#wake();
      this.notify();
    },
  };
}

/**
 * A running guest: its console output, input, and how it ended. `await
 * using` (or {@link GuestHandle.stop}) stops it; either way every file, fd
 * and tap its devices opened is closed once {@link GuestHandle.done}
 * resolves.
 */
export interface GuestHandle extends AsyncDisposable {
  /** The guest's name. */
  readonly name: string;
  /** Resolves when the guest has ended and its devices are closed. */
  readonly done: Promise<RunResult>;
  /** All console output so far (the last `maxOutput` characters). */
  readonly output: string;
  /** The result once the guest has ended, else null. */
  readonly result: RunResult | null;
  /** Queue console input for the guest (it reads it at its own pace). */
  write(data: string | Uint8Array): void;
  /** End the console input (the guest sees end of input). */
  closeInput(): void;
  /**
   * Wait until the output after the previous match contains `pattern`;
   * returns the matched text and moves past it. Throws {@link ExpectError}
   * if it does not come within `timeoutMs` (default 10 s) or the guest
   * ends first.
   */
  expect(pattern: string | RegExp, options?: ExpectOptions): Promise<string>;
  /** Stop the guest (code 126, reason "stopped") and wait for its end. */
  stop(): Promise<RunResult>;
  /** Stop the guest (a lab's guest: the whole lab) and wait until all it opened is closed. */
  [Symbol.asyncDispose](): Promise<void>;
}

class Handle implements GuestHandle {
  readonly name: string;
  readonly done: Promise<RunResult>;
  readonly #console: CapturedConsole;
  readonly #stop: (code: number, why: string) => void;
  readonly #disposeAll: (() => Promise<void>) | null;
  /** Absolute position (characters) where the next expect() searches. */
  #cursor = 0;
  #result: RunResult | null = null;

  constructor(
    name: string,
    console: CapturedConsole,
    outcome: Promise<Outcome>,
    counters: () => Pick<RunResult, "counters" | "devices" | "hints">,
    stop: (code: number, why: string) => void,
    disposeAll: (() => Promise<void>) | null,
  ) {
    this.name = name;
    this.#console = console;
    this.#stop = stop;
    this.#disposeAll = disposeAll;
    this.done = outcome.then((o) => {
      this.#result = { name, ...o, output: console.text, outcome: outcomeKind(o), ...counters() };
      console.notify();
      return this.#result;
    });
  }

  /** All console output so far (the last `maxOutput` characters). */
  get output(): string {
    return this.#console.text;
  }

  /** The result once the guest has ended, else null. */
  get result(): RunResult | null {
    return this.#result;
  }

  /** Queue console input for the guest (it reads it at its own pace). */
  write(data: string | Uint8Array): void {
    this.#console.write(data);
  }

  /** End the console input (the guest sees end of input). */
  closeInput(): void {
    this.#console.endInput();
  }

  /**
   * Wait until the output after the previous match contains `pattern`;
   * returns the matched text and moves past it. Throws {@link ExpectError}
   * if it does not come within `timeoutMs` or the guest ends first.
   */
  async expect(pattern: string | RegExp, options: ExpectOptions = {}): Promise<string> {
    const ms = options.timeoutMs ?? DEFAULT_EXPECT_MS;
    const deadline = performance.now() + ms;
    for (;;) {
      const base = this.#console.dropped;
      const from = Math.max(0, this.#cursor - base);
      const text = this.#console.text;
      let at = -1, len = 0;
      if (typeof pattern === "string") {
        at = text.indexOf(pattern, from);
        len = pattern.length;
      } else {
        const re = new RegExp(pattern.source, pattern.flags.replace(/[gy]/g, "") + "g");
        re.lastIndex = from;
        const m = re.exec(text);
        if (m) [at, len] = [m.index, m[0].length];
      }
      if (at >= 0) {
        this.#cursor = base + at + len;
        return text.slice(at, at + len);
      }
      const tail = JSON.stringify(text.slice(Math.max(from, text.length - 200)));
      if (this.#console.closed && !this.#result) {
        // The console closes as the guest ends: its result follows at once.
        await this.done.catch(() => {});
        continue;
      }
      if (this.#result) {
        throw new ExpectError(
          `${this.name}: ${pattern} not seen: the guest ended (${this.#result.reason}); ` +
            `output after the last match ends with ${tail}`,
        );
      }
      const left = deadline - performance.now();
      if (left <= 0) {
        throw new ExpectError(
          `${this.name}: ${pattern} not seen within ${ms} ms; output after the last match ends with ${tail}`,
        );
      }
      await this.#console.changed(left);
    }
  }

  /** Stop the guest (code 126, reason "stopped") and wait for its end. */
  async stop(): Promise<RunResult> {
    this.#stop(EXIT.GUEST_FAILED, "stopped");
    return await this.done;
  }

  /** Stop the guest (for a lab's guest: the whole lab) and close all it opened. */
  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#disposeAll) return await this.#disposeAll();
    await this.stop();
  }
}

/** Several guests in one host, each with its {@link GuestHandle}. */
export interface Lab extends AsyncDisposable {
  /** The guests, in config order. */
  readonly guests: readonly GuestHandle[];
  /** Resolves when every guest has ended. */
  readonly done: Promise<RunResult[]>;
  /** The guest named `name`; throws {@link UsageError} if there is none. */
  guest(name: string): GuestHandle;
  /** Stop every guest and wait until all have ended. */
  stop(): Promise<RunResult[]>;
  /** Stop every guest and wait until every file, fd and tap they opened is closed. */
  [Symbol.asyncDispose](): Promise<void>;
}

class LabImpl implements Lab {
  readonly guests: readonly GuestHandle[];
  readonly done: Promise<RunResult[]>;
  readonly #stopAll: () => void;

  constructor(guests: GuestHandle[], done: Promise<RunResult[]>, stopAll: () => void) {
    this.guests = guests;
    this.done = done;
    this.#stopAll = stopAll;
  }

  /** The guest named `name`; throws {@link UsageError} if there is none. */
  guest(name: string): GuestHandle {
    const g = this.guests.find((h) => h.name === name);
    if (!g) {
      throw new UsageError(
        `no guest '${name}' in this lab (${this.guests.map((h) => h.name).join(", ")})`,
      );
    }
    return g;
  }

  /** Stop every guest and wait until all have ended. */
  async stop(): Promise<RunResult[]> {
    this.#stopAll();
    return await this.done;
  }

  /** Stop every guest and close every file, fd and tap they opened. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

function memoryText(memory: string | number | undefined): string | undefined {
  if (typeof memory !== "number") return memory;
  if (!Number.isInteger(memory) || memory <= 0 || memory % 4096 !== 0) {
    throw new UsageError(`memory ${memory}: bytes must be a positive multiple of 4K`);
  }
  return `${memory / 1024}K`;
}

const BLOCK_FIELDS = ["path", "readOnly", "sync", "direct", "noLock"];
const NET_FIELDS = ["segment", "tap", "ip", "bridge", "pcap"];

function checkFields(o: object, allowed: string[], what: string): void {
  for (const k of Object.keys(o)) {
    if (!allowed.includes(k)) {
      throw new UsageError(`${what}: unknown field '${k}' (use ${allowed.join(", ")})`);
    }
  }
}

/** One typed or string device value, checked as the CLI checks it. */
function deviceEntry(option: string, v: unknown): [string, string, unknown?] {
  const kind = deviceKinds().find((k) => k.option === option);
  if (!kind) {
    const known = deviceKinds().map((k) => k.option).join(", ");
    throw new UsageError(`unknown device '${option}' (registered: ${known})`);
  }
  if (typeof v === "string") {
    kind.parse(v);
    return [option, v];
  }
  if (v === null || typeof v !== "object") {
    throw new UsageError(`${option}: a device is a string or an object (got ${v})`);
  }
  if (option === "block") {
    const o = v as BlockOptions;
    checkFields(o, BLOCK_FIELDS, "block");
    if (typeof o.path !== "string" || o.path === "") {
      throw new UsageError("block: path must be a non-empty string");
    }
    const spec: BlockSpec = {
      path: o.path,
      readOnly: o.readOnly === true,
      sync: o.sync === true,
      direct: o.direct === true,
      noLock: o.noLock === true,
    };
    const flags = ["readOnly", "sync", "direct", "noLock"].filter((f) =>
      spec[f as keyof BlockSpec] === true
    );
    return [option, [o.path, ...flags].join(","), spec];
  }
  if (option === "net") {
    const o = v as Record<string, unknown>;
    checkFields(o, NET_FIELDS, "net");
    const str = (k: string) => {
      if (o[k] !== undefined && typeof o[k] !== "string") {
        throw new UsageError(`net: ${k} must be a string`);
      }
      return o[k] as string | undefined;
    };
    const [segment, tap] = [str("segment"), str("tap")];
    if ((segment === undefined) === (tap === undefined)) {
      throw new UsageError("net: give exactly one of segment and tap");
    }
    const parts = segment !== undefined ? [`segment:${segment}`] : [`tap:${tap}`];
    for (const k of ["ip", "bridge", "pcap"]) {
      const x = str(k);
      if (x !== undefined) parts.push(`${k}=${x}`);
    }
    const value = parts.join(",");
    kind.parse(value);
    return [option, value];
  }
  throw new UsageError(`${option}: give its value as a string`);
}

function planOf(o: GuestOptions): GuestPlan {
  if (o === null || typeof o !== "object") throw new UsageError("guest options must be an object");
  const image = o.image;
  if (!(image instanceof Uint8Array) && (typeof image !== "string" || image === "")) {
    throw new UsageError("image must be a built-in guest's name, a path or the image's bytes");
  }
  const name = o.name ?? "";
  if (typeof name !== "string") throw new UsageError("name must be a string");
  const args = o.args === undefined
    ? ""
    : typeof o.args === "string"
    ? checkCmdline(o.args)
    : joinCmdline([...o.args]);
  const devices: [string, string, unknown?][] = [];
  for (const v of o.block ?? []) devices.push(deviceEntry("block", v));
  for (const v of o.net ?? []) devices.push(deviceEntry("net", v));
  for (const [option, values] of Object.entries(o.devices ?? {})) {
    for (const v of values) devices.push(deviceEntry(option, v));
  }
  const memory = memoryText(o.memory);
  if (memory !== undefined) parseSize(memory); // a bad size before anything is opened
  return {
    name,
    image: typeof image === "string" ? image : name || "guest",
    bytes: image instanceof Uint8Array ? image : undefined,
    memory,
    args,
    stdio: true, // a lone guest: its errors are not prefixed with a name
    devices,
    engine: o.engine,
  };
}

function runOptions(
  consoles: Map<GuestPlan, CapturedConsole>,
  pcap: string | undefined,
  verbose: ((line: string) => void) | undefined,
  hint?: (name: string, line: string) => void,
  blockingWait?: boolean,
): RunOptions {
  return {
    timeoutMs: 0,
    verbose,
    hint,
    blockingWait,
    pcap,
    parseSize,
    defaultMemory: parseSize("32M"),
    console: (plan) => ({ backend: consoles.get(plan)!.backend, label: "console: captured" }),
  };
}

function checkTimeout(ms: number | undefined): void {
  if (ms !== undefined && !(ms > 0 && ms <= 2 ** 31 - 1)) {
    throw new UsageError(`timeoutMs must be a positive number of milliseconds (got ${ms})`);
  }
}

/** Start the guests of a prepared run; the handles and the whole run's end. */
async function launch(
  hostRun: HostRun,
  consoles: CapturedConsole[],
  timeoutMs: number | undefined,
  primary: number,
  lab: boolean,
): Promise<{ handles: GuestHandle[]; all: Promise<RunResult[]>; stopAll: () => void }> {
  await hostRun.start();
  const stopAll = () => hostRun.stop(EXIT.GUEST_FAILED, "stopped");
  const whole = hostRun.run(primary >= 0 ? hostRun.prepared[primary] : undefined);
  let timer: ReturnType<typeof setTimeout> | undefined;
  if (timeoutMs !== undefined) {
    timer = setTimeout(
      () => hostRun.stop(EXIT.TIMEOUT, `timed out after ${timeoutMs / 1000} s`),
      timeoutMs,
    );
  }
  whole.finally(() => clearTimeout(timer)).catch(() => {});
  const disposeAll = lab
    ? async () => {
      stopAll();
      await all;
    }
    : null;
  const handles = hostRun.prepared.map((p, i) =>
    new Handle(
      p.name,
      consoles[i],
      hostRun.ended[i],
      () => ({ ...countersOf(hostRun, i), hints: [...(hostRun.hints[i] ?? [])] }),
      (code, why) => hostRun.runs[i].stop(code, why),
      disposeAll,
    )
  );
  const all = whole.then(() => Promise.all(handles.map((h) => h.done)));
  return { handles, all, stopAll };
}

/**
 * Start one guest and return its {@link GuestHandle} (write, expect, stop;
 * `await using` stops it and closes everything it opened).
 *
 * @example A shell, driven like a user at its console
 * ```ts
 * import { startGuest } from "@lguest/deno";
 *
 * await using shell = await startGuest({ image: "shell", timeoutMs: 10_000 });
 * await shell.expect("lguest$ ");
 * shell.write("echo hi there\n");
 * await shell.expect("hi there");
 * shell.write("poweroff\n");
 * const { code } = await shell.done;
 * console.log(code); // 0
 * ```
 */
export async function startGuest(options: GuestOptions): Promise<GuestHandle> {
  checkTimeout(options.timeoutMs);
  const plan = planOf(options);
  const console_ = new CapturedConsole(options.maxOutput ?? DEFAULT_MAX_OUTPUT, options.onOutput);
  const hostRun = await HostRun.prepare(
    [plan],
    runOptions(
      new Map([[plan, console_]]),
      options.pcap,
      options.verbose,
      options.onHint && ((_, line) => options.onHint!(line)),
      options.blockingWait,
    ),
  );
  const { handles } = await launch(hostRun, [console_], options.timeoutMs, -1, false);
  const input = options.input;
  if (input instanceof ReadableStream) console_.pipe(input);
  else if (input !== undefined) console_.write(input);
  return handles[0];
}

/**
 * Run one guest to its end: its exit code, the reason and its console
 * output. Input (if any) is given, then end of input.
 *
 * @example Hello, and a shell with a disk
 * ```ts
 * import { runGuest } from "@lguest/deno";
 *
 * const hello = await runGuest({ image: "hello", timeoutMs: 10_000 });
 * console.log(hello.code, hello.output); // 0 "Hello from an lguest guest! ..."
 *
 * const disk = await Deno.makeTempFile();
 * await Deno.truncate(disk, 1 << 20);
 * const shell = await runGuest({
 *   image: "shell",
 *   block: [{ path: disk }],
 *   input: "blk write 0 0 hello disk\npoweroff\n",
 *   timeoutMs: 10_000,
 * });
 * console.log(shell.output.includes("wrote 1 sector(s)")); // true
 * await Deno.remove(disk);
 * ```
 */
export async function runGuest(options: GuestOptions): Promise<RunResult> {
  const guest = await startGuest(options); // a stream's end is the end of input
  if (!(options.input instanceof ReadableStream)) guest.closeInput();
  try {
    return await guest.done;
  } finally {
    await guest[Symbol.asyncDispose]();
  }
}

/**
 * Start several guests in one host from the object form of
 * `--config FILE.json`; each has its {@link GuestHandle}. A guest with
 * `console: "stdio"` ends the lab when it ends, as in the CLI.
 *
 * @example Two guests on one segment, one pinging the other
 * ```ts
 * import { startLab } from "@lguest/deno";
 *
 * await using lab = await startLab({
 *   guests: [
 *     { name: "a", image: "netd", memory: "16M", net: ["segment:lan"], args: "ip=10.0.0.1/24" },
 *     { name: "b", image: "shell", net: ["segment:lan"], args: "ip=10.0.0.2/24" },
 *   ],
 * }, { timeoutMs: 20_000 });
 * const b = lab.guest("b");
 * await b.expect("lguest$ ");
 * b.write("ping 10.0.0.1 2\n");
 * await b.expect("2 received");
 * ```
 */
export async function startLab(config: LabConfig, options: LabOptions = {}): Promise<Lab> {
  checkTimeout(options.timeoutMs);
  let plan;
  try {
    plan = parseConfig(JSON.stringify(config, null, 2) ?? "", { memory: parseSize });
  } catch (e) {
    // The object has no lines of its own: keep the field path only.
    if (e instanceof UsageError) throw new UsageError(e.message.replace(/^line \d+: /, ""));
    throw e;
  }
  const consoles = new Map<GuestPlan, CapturedConsole>();
  for (const g of plan.guests) {
    if (options.engine !== undefined) g.engine = options.engine;
    const on = options.onOutput;
    consoles.set(
      g,
      new CapturedConsole(
        options.maxOutput ?? DEFAULT_MAX_OUTPUT,
        on && ((text) => on(g.name, text)),
      ),
    );
  }
  const hostRun = await HostRun.prepare(
    plan.guests,
    runOptions(consoles, plan.pcap, options.verbose, options.onHint, options.blockingWait),
  );
  const { handles, all, stopAll } = await launch(
    hostRun,
    plan.guests.map((g) => consoles.get(g)!),
    options.timeoutMs,
    plan.guests.findIndex((g) => g.stdio),
    true,
  );
  return new LabImpl(handles, all, stopAll);
}
