/**
 * Launcher: run one or several guests in one host.
 *
 * The guest with stdio gets stdin and stdout; every other guest's console
 * output goes to stdout with a `[name] ` prefix at each line start, and it
 * gets no input. When the stdio guest ends, the others are stopped and the
 * run exits with its code; with no stdio guest the run ends when all have
 * ended (exit 0 only if all powered off).
 *
 * @module
 */

import {
  fdFileType,
  libc,
  O_CREAT,
  O_NONBLOCK,
  O_WRONLY,
  openFile,
  pathIdentity,
  stdStreamIs,
  SysError,
  writeAll,
} from "../sys/libc.ts";

const S_IFIFO = 0o010000;

/** How long a --json FIFO's reader may take nothing before the report is given up (125). */
export const JSON_STALL_MS = 5_000;
import { printable } from "../sys/text.ts";
import {
  type ConsoleBackend,
  ConsoleDevice,
  LGUEST_CONSOLE_F_IN_LINE,
  LGUEST_CONSOLE_F_IN_TTY,
  LGUEST_CONSOLE_F_OUT_TTY,
  stdioBackend,
} from "../devices/console.ts";
import { type Device, type DeviceEnv, deviceKinds, UsageError } from "../devices/registry.ts";
import { RngDevice } from "../devices/rng.ts";
import type { PcapWriter } from "../devices/net/pcap.ts";
import { ImageError } from "../engines/wasm.ts";
import {
  engineUnavailable,
  parseEngine,
  prepareImage,
  prepareReady,
  type ReadyImage,
} from "../engines/select.ts";
import { Host } from "../host/host.ts";
import type { GuestPlan } from "./config.ts";
import { EXIT, MAX_PASSED_STATUS, permissionMessage } from "./exit.ts";
import { isBuiltinName, loadImage, loadReady } from "./images.ts";
import { GuestRun, type Outcome } from "./launcher.ts";
import type { Supervisor } from "./supervisor.ts";
import { describeWriteError, muteStderr, warn } from "../sys/stdio.ts";

/** Options of a whole run. */
export interface RunOptions {
  timeoutMs: number;
  verbose?: (line: string) => void;
  /** A guest's hint for the user, one line (the CLI: stderr); undefined = dropped. */
  hint?: (name: string, line: string) => void;
  /** `--pcap FILE`: every frame of every net device. */
  pcap?: string;
  /** The blocking idle wait on busy taps (GuestSpec.blockingWait): the CLI's, an API program's if it asks. */
  blockingWait?: boolean;
  /** `--json FILE`: how each guest ended and its counters ({@link RunReport}). */
  json?: string;
  /** `--config FILE`: read by the run, so never one of its outputs. */
  config?: string;
  /** The engine of guests that do not name one (`--engine`; default wasm). */
  engine?: string;
  /** Parse a memory size (the CLI's rules). */
  parseSize(text: string): number;
  defaultMemory: number;
  /**
   * The console of each guest (the API captures it); default: stdio for
   * the stdio guest, `[name] `-prefixed stdout for the others.
   */
  console?(plan: GuestPlan, name: string): { backend: ConsoleBackend; label: string };
  /**
   * Called when stdout cannot take a guest's output: its reader has gone
   * (EPIPE; no `error`) or a write failed (`error`).
   */
  onStdoutClosed?(error: unknown, guest: string): void;
}

/** Longest line a guest without stdio holds back before it is written out anyway. */
export const MAX_HELD_LINE = 4096;

/**
 * Console output of a guest without stdio: `[name] ` at each line start,
 * each line handed to `out` whole (one call), so that the lines of guests
 * sharing stdout never mix ("[a] AAAA[b] BBBB"). A line is held until its
 * newline; one without it is written out (and ended with a newline) when
 * it reaches {@link MAX_HELD_LINE} bytes or the guest ends.
 */
export function prefixBackend(name: string, out: (b: Uint8Array) => void): ConsoleBackend {
  const prefix = new TextEncoder().encode(`[${name}] `);
  const held = new Uint8Array(MAX_HELD_LINE);
  let n = 0;
  const emit = (end: boolean) => {
    const line = new Uint8Array(prefix.length + n + (end ? 1 : 0));
    line.set(prefix);
    line.set(held.subarray(0, n), prefix.length);
    if (end) line[line.length - 1] = 0x0a;
    n = 0;
    out(line);
  };
  return {
    // No read: this console has no input (and so no end of input either).
    write(data) {
      for (let i = 0; i < data.length;) {
        const nl = data.indexOf(0x0a, i);
        const stop = nl < 0 ? data.length : nl + 1;
        const take = Math.min(stop - i, MAX_HELD_LINE - n);
        held.set(data.subarray(i, i + take), n);
        n += take;
        i += take;
        if (held[n - 1] === 0x0a) emit(false);
        else if (n === MAX_HELD_LINE) emit(true);
      }
    },
    close() {
      if (n > 0) emit(true);
    },
  };
}

// Written `(function f() {...}).bind(null)`: compiled with the module, not again at every
// start on its first call (Deno's emit keeps these parentheses; docs/performance.md, boot).
/**
 * The CLI's stdout, shared by the guests of a run: the stdio guest writes
 * its bytes as they come; a whole `[name] ` line of another guest that
 * comes while the stdio guest's line is unfinished (a prompt) goes on a
 * line of its own. `onClosed`: {@link stdioBackend}'s.
 */
const sharedStdout = (function sharedStdout(onClosed: (e: unknown, guest: string) => void) {
  let writer = ""; // the guest whose write this is: the one a failed write is told of
  const stdout = stdioBackend((e) => onClosed(e, writer));
  let open = false;
  const NL = new Uint8Array([0x0a]);
  return {
    stdio: (guest: string): ConsoleBackend => ({
      read: stdout.read,
      pollFd: stdout.pollFd,
      readSync: stdout.readSync,
      // An arrow, not a method: compiled with the bundle (devices/console.ts stdioBackend).
      write: (data: Uint8Array) => {
        if (data.length === 0) return;
        writer = guest;
        stdout.write(data);
        open = data[data.length - 1] !== 0x0a;
      },
    }),
    line: (guest: string) => (b: Uint8Array) => {
      writer = guest;
      if (open) stdout.write(NL);
      open = false;
      stdout.write(b);
    },
  };
}).bind(null);

/** One guest made ready: image compiled, devices created. */
export interface Prepared {
  plan: GuestPlan;
  devices: Device[];
  console: ConsoleDevice;
  image: ReadyImage;
  memory: number;
  name: string;
}

const prepare = (async function prepare(
  plan: GuestPlan,
  env: DeviceEnv,
  opts: RunOptions,
  stdout: () => ReturnType<typeof sharedStdout>,
): Promise<Prepared> {
  const where = (msg: string) => (plan.stdio && plan.name === "" ? msg : `${plan.name}: ${msg}`);
  const devices: Device[] = [];
  try {
    const memory = plan.memory === undefined ? opts.defaultMemory : opts.parseSize(plan.memory);
    const engine = parseEngine(plan.engine ?? opts.engine ?? "wasm");
    const unavailable = await engineUnavailable(engine);
    if (unavailable !== null) throw new UsageError(unavailable);
    // A built-in wasm guest comes checked and instrumented from the build.
    const ready = !plan.bytes && engine === "wasm" ? await loadReady(plan.image) : null;
    const file = ready ??
      (plan.bytes
        ? { name: plan.name || "guest", bytes: plan.bytes }
        : await loadImage(plan.image, engine));
    // A built-in image's digest is checked while it compiles: no guest code runs before both,
    // and a damaged payload is said as such even when its compile failed first.
    const verified = ready?.verified;
    const image = ready && verified
      ? (await Promise.all([
        prepareReady(ready.bytes, ready.fuel, ready.name).catch(async (e) => {
          await verified;
          throw e;
        }),
        verified,
      ]))[0]
      : ready
      ? await prepareReady(ready.bytes, ready.fuel, ready.name)
      : await prepareImage(engine, file.bytes, file.name);
    // A name from a file name (any bytes but '/') starts every "lguest: NAME: ..."
    // line of the run: printable and bounded (the image's checks escape it themselves).
    const name = plan.name || printable(file.name, 64);
    opts.verbose?.(`${name}: ${image.describe}`);
    if (plan.devices.length >= 15) {
      throw new UsageError("too many devices: a guest has at most 14 plus the rng and the console");
    }
    for (const [option, value, parsed] of plan.devices) {
      const kind = deviceKinds().find((k) => k.option === option)!;
      devices.push(await kind.create(parsed ?? kind.parse(value), env));
    }
    devices.push(new RngDevice());
    let choice = opts.console?.(plan, name);
    if (!choice) {
      const out = stdout();
      choice = plan.stdio
        ? { backend: out.stdio(name), label: "console: stdio" }
        : { backend: prefixBackend(plan.name, out.line(name)), label: "console: output" };
    }
    // At a terminal the guest is told so (console feature bits: isatty()).
    const tty = plan.stdio && !opts.console
      ? (Deno.stdin.isTerminal() ? LGUEST_CONSOLE_F_IN_TTY : 0) |
        (Deno.stdout.isTerminal() ? LGUEST_CONSOLE_F_OUT_TTY : 0)
      : 0;
    const console_ = new ConsoleDevice(choice.backend, choice.label, tty);
    devices.push(console_);
    return { plan, devices, console: console_, image, memory, name };
  } catch (e) {
    for (const d of devices) await d.close?.(); // those created before the failure
    if (e instanceof UsageError) throw new UsageError(where(e.message));
    if (e instanceof ImageError) throw new ImageError(where(e.message));
    throw e;
  }
}).bind(null);

/**
 * Two guests of one host (a `--config` run, a lab) given the same disk file would meet its
 * lock as "in use by another lguest" (the lock is per open file): say what
 * happened instead. Disks that are `,ro` for every guest may be shared, and
 * `,nolock` is the user's choice.
 */
export const refuseSharedDisks = (function refuseSharedDisks(
  guests: { name: string; devices: [string, string, unknown?][] }[],
): void {
  const block = deviceKinds().find((k) => k.option === "block");
  if (block === undefined) return;
  const seen = new Map<string, { guest: string; value: string; readOnly: boolean }>();
  for (const g of guests) {
    for (const [opt, value, parsed] of g.devices) {
      if (opt !== "block") continue;
      const spec = (parsed ?? block.parse(value)) as {
        path: string;
        readOnly?: boolean;
        noLock?: boolean;
      };
      if (spec.noLock) continue;
      const key = fileKey(spec.path);
      if (key === undefined) continue; // opening it reports the problem
      const first = seen.get(key);
      if (first === undefined) {
        seen.set(key, { guest: g.name, value, readOnly: !!spec.readOnly });
      } else if (first.guest === g.name) {
        throw new UsageError(
          `${g.name}: block ${value}: the same disk as block ${first.value} (a guest uses a disk once)`,
        );
      } else if (!first.readOnly || !spec.readOnly) {
        throw new UsageError(
          `${g.name}: block ${value}: the same disk as guest ${first.guest}'s block ${first.value} ` +
            `(guests of one run share a disk only when every one has it ,ro)`,
        );
      }
    }
  }
}).bind(null);

/**
 * The file `path` names, by device and inode (any name, link or symlink);
 * undefined: none yet, or not to be read (without --allow-read for it this
 * asks nothing: at a terminal Deno would stop on a prompt; opening the file
 * says in one line which flag it needs).
 */
function fileKey(path: string): string | undefined {
  if (!readable(path)) return undefined;
  try {
    const st = Deno.statSync(path);
    return st.ino === null ? undefined : `${st.dev}:${st.ino}`;
  } catch {
    return undefined;
  }
}

/** Deno's read permission for `path` is granted (asked without a prompt). */
const readable = (function readable(path: string): boolean {
  return Deno.permissions.querySync({ name: "read", path }).state === "granted";
}).bind(null);

/** `path` is a FIFO (false: not there yet, or not to be seen: a later open says what is wrong). */
function isFifo(path: string): boolean {
  try {
    return Deno.statSync(path).isFifo === true;
  } catch {
    return false;
  }
}

/**
 * A file the run writes (`--json`, `--pcap`, a NIC's `pcap=`) that is one it
 * reads or writes as something else (a guest's image or disk, the config
 * file, the other report) would be destroyed by it: `--json d.img` with
 * `--block d.img` left the disk a JSON text, `--json prog.wasm prog.wasm`
 * truncated the image before it was read. Refused before any file is opened,
 * by device and inode (any name or link), else by its absolute name (a file
 * not there yet). NICs may share one pcap file (one writer records them all).
 */
export const refuseOutputOverInput = (function refuseOutputOverInput(
  guests: GuestPlan[],
  outputs: { json?: string; pcap?: string; config?: string },
): void {
  // Asked when first needed: a run with no file to check (`run hello`) asks Deno nothing (its
  // first permission queries cost the bundle's start ~0.1 ms; boot.first_byte).
  let cwdIs: string | undefined, ffiIs: boolean | undefined;
  const cwd = () => cwdIs ??= readable(".") ? Deno.cwd() : ".";
  const ffi = () => ffiIs ??= Deno.permissions.querySync({ name: "ffi" }).state === "granted";
  // A file not there yet is known by its name: absolute, with '.' and '..' taken out
  // (`./x` and `sub/../x` are `x`: two of them were written over each other).
  const abs = (p: string) => {
    const parts: string[] = [];
    for (const part of (p.startsWith("/") ? p : `${cwd()}/${p}`).split("/")) {
      if (part === "" || part === ".") continue;
      if (part === "..") parts.pop();
      else parts.push(part);
    }
    return "name:/" + parts.join("/");
  };
  // Standard output or error that is the file `path` names (`exists`: known to be one) is
  // refused. No --allow-ffi: not asked (at a terminal Deno would stop on a prompt; a disk is then
  // not opened, opening it names the flag, and an image is only read). Nor for a name that is no
  // file (a built-in guest's: `run hello` loads no FFI library, boot.first_byte).
  const refuseStdStream = (path: string, exists: boolean, label: string, what: string) => {
    let which: "stdout" | "stderr" | null = null;
    if (exists && ffi()) {
      try {
        which = stdStreamIs(pathIdentity(path));
      } catch (e) {
        if (!(e instanceof Deno.errors.NotCapable)) throw e;
      }
    }
    if (which !== null) {
      if (which === "stderr") muteStderr(); // the line would land on the file too
      throw new UsageError(
        `standard ${which === "stdout" ? "output" : "error"} is the same file as ${label} ` +
          `(a run does not write ${what})`,
      );
    }
  };
  const inputs = new Map<string, string>();
  const input = (path: string, label: string) => {
    const k = fileKey(path);
    if (k !== undefined && !inputs.has(k)) inputs.set(k, label);
    // The launcher's own stdout or stderr (the guest's console, its messages) on a file it
    // reads: `run --block d.img hello 1<>d.img` wrote "Hello" over the disk's superblock. A
    // device (/dev/...), which Deno stats only with --allow-all, is asked too.
    refuseStdStream(path, k !== undefined || path.startsWith("/dev/"), label, "over its own input");
  };
  if (outputs.config !== undefined) input(outputs.config, `--config ${printable(outputs.config)}`);
  const several = guests.length > 1 || guests.some((g) => g.name !== "");
  const pcaps: [string, string][] = [];
  if (outputs.pcap !== undefined) pcaps.push([outputs.pcap, `--pcap ${printable(outputs.pcap)}`]);
  for (const g of guests) {
    const of = several ? `guest ${g.name}'s ` : "";
    // A built-in guest's name is no file the run reads (and a stat that fails throws: Deno's
    // first error of a process cost the bundle ~6 ms of boot.first_byte, docs/performance.md).
    if (g.bytes === undefined && !isBuiltinName(g.image)) {
      input(g.image, `${of}image ${printable(g.image)}`);
    }
    for (const [opt, value, parsed] of g.devices) {
      const kind = deviceKinds().find((k) => k.option === opt);
      if (kind === undefined) continue;
      const spec = (parsed ?? kind.parse(value)) as { path?: unknown; pcap?: unknown };
      if (typeof spec.path === "string") input(spec.path, `${of}--${opt} ${printable(value)}`);
      if (typeof spec.pcap === "string") {
        pcaps.push([spec.pcap, `${of}--${opt} ${printable(value)}`]);
      }
    }
  }
  const check = (path: string, label: string, others: Map<string, string>) => {
    const k = fileKey(path);
    const over = (k !== undefined ? others.get(k) : undefined) ?? others.get(abs(path));
    if (over !== undefined) {
      throw new UsageError(
        `${label}: the same file as ${over} (a run does not write over its own input)`,
      );
    }
    // The launcher's own stdout or stderr on this output (`--json o.json > o.json`): the
    // report or capture and the console would write over each other.
    refuseStdStream(path, k !== undefined, label, "two outputs into one file");
  };
  for (const [path, label] of pcaps) check(path, label, inputs);
  if (outputs.json !== undefined) {
    // Against the inputs and the pcap files the run writes (an input's label first).
    const others = new Map<string, string>();
    for (const [path, l] of pcaps) {
      const k = fileKey(path);
      if (k !== undefined) others.set(k, l);
      others.set(abs(path), l);
    }
    for (const [k, l] of inputs) others.set(k, l);
    check(outputs.json, `--json ${printable(outputs.json)}`, others);
  }
}).bind(null);

/**
 * The guests of one host, from plans to outcomes: {@link HostRun.prepare}
 * (images, devices, consoles), {@link HostRun.start} (memory, boot data,
 * LHREQ_INITIALIZE), {@link HostRun.run}. The CLI adds the supervisor
 * (signals, terminal, --timeout); the API (launcher/api.ts) adds captured
 * consoles and its own timeout. Every file, fd and tap a guest's devices
 * opened is closed when that guest ends, or by {@link HostRun.close} when
 * the run never started.
 */
export class HostRun {
  readonly host: Host = new Host({ yieldOnFull: true });
  readonly prepared: Prepared[] = [];
  readonly runs: GuestRun[] = [];
  /** The hints each guest gave (`--json`'s `hints`), in plan order. */
  readonly hints: string[][] = [];
  /** Each guest's outcome, in plan order, once {@link HostRun.run} has begun. */
  readonly ended: Promise<Outcome>[] = [];
  readonly #opts: RunOptions;
  readonly #pcap: PcapWriter | undefined;
  readonly #releasePcap: ((w: PcapWriter) => void) | undefined;
  #released = false;
  #running = false;

  private constructor(opts: RunOptions, pcap?: typeof import("../devices/net/pcap.ts")) {
    this.#opts = opts;
    this.#pcap = pcap && opts.pcap ? pcap.acquirePcap(opts.pcap) : undefined;
    this.#releasePcap = pcap?.releasePcap;
  }

  /** Load and check every guest's image and create its devices. */
  static async prepare(plans: GuestPlan[], opts: RunOptions): Promise<HostRun> {
    refuseSharedDisks(plans);
    // The capture's module only for a run with --pcap (boot.first_byte, docs/performance.md).
    const run = new HostRun(opts, opts.pcap ? await import("../devices/net/pcap.ts") : undefined);
    const env: DeviceEnv = { pcap: run.#pcap };
    try {
      let stdout: ReturnType<typeof sharedStdout> | undefined;
      const shared = () => stdout ??= sharedStdout((e, g) => opts.onStdoutClosed?.(e, g));
      for (const plan of plans) run.prepared.push(await prepare(plan, env, opts, shared));
    } catch (e) {
      await run.close();
      throw e;
    }
    return run;
  }

  /** Lay out and initialise every guest in the host. */
  async start(): Promise<void> {
    const hint = this.#opts.hint;
    try {
      for (const p of this.prepared) {
        const given: string[] = [];
        this.hints.push(given);
        this.runs.push(
          await GuestRun.create(this.host, {
            name: p.name,
            memory: p.memory,
            cmdline: p.plan.args,
            devices: p.devices,
            makeCpu: (top, mem) => p.image.makeCpu(top, mem),
            verbose: this.#opts.verbose,
            blockingWait: this.#opts.blockingWait,
            hint: (line) => {
              given.push(line);
              hint?.(p.name, line);
            },
          }),
        );
      }
    } catch (e) {
      for (const r of this.runs) r.stop(EXIT.GUEST_FAILED, "start-up failed");
      await this.close();
      if (e instanceof ImageError || e instanceof UsageError) throw e;
      throw new ImageError((e as Error).message);
    }
  }

  /**
   * Stop every guest (each ends with this code and reason). With `cause`, the
   * guest the reason is about: the others of a run of several are `stopped:`
   * because of it (one line said, not one a guest).
   */
  stop(code: number, why: string, cause?: string): void {
    const several = this.runs.length > 1;
    this.runs.forEach((r, i) =>
      r.stop(
        code,
        cause === undefined || !several || this.prepared[i].name === cause
          ? why
          : `stopped: ${cause}: ${why}`,
      )
    );
  }

  /**
   * Run every guest to its end; the outcomes in plan order. When the
   * `primary` guest (the CLI's stdio guest) ends, the others are stopped.
   */
  async run(primary?: Prepared): Promise<Outcome[]> {
    this.#running = true;
    try {
      this.ended.push(...this.runs.map((r, i) =>
        r.run().then((o) => {
          // What the host still holds once this guest is gone (its slot, bindings released).
          this.#opts.verbose?.(
            `${this.prepared[i].name}: gone; the host holds ${this.host.count} guest(s), ` +
              `${this.host.dma.bindingCount} DMA binding(s)`,
          );
          if (this.prepared[i] === primary) this.stop(o.code, `stopped: ${primary.name} ended`);
          return o;
        })
      ));
      return await Promise.all(this.ended);
    } finally {
      this.#release();
    }
  }

  #release(): void {
    if (this.#released) return;
    this.#released = true;
    if (this.#pcap) this.#releasePcap?.(this.#pcap);
  }

  /**
   * Close every device of a run that never ran, and the capture (once a
   * run has begun, each guest closes its own devices when it ends).
   */
  async close(): Promise<void> {
    if (!this.#running) {
      this.#running = true;
      for (const p of this.prepared) for (const d of p.devices) await d.close?.();
    }
    this.#release();
  }
}

/** What `lguest run --json FILE` writes. */
export interface RunReport {
  /** The process's exit code. */
  exitCode: number;
  guests: {
    name: string;
    /** powered off, exited, crashed, timeout, signal, stopped */
    outcome: string;
    /** The exit code for this guest alone (README "Exit codes"). */
    code: number;
    /** The guest's own exit status, when it ended by itself. */
    status?: number;
    reason: string;
    /** The hints it gave its user, as the CLI prints them after `lguest: NAME: ` (stderr). */
    hints: string[];
    /** The host's counters of this guest (hypercalls, DMA, interrupts...). */
    counters: Record<string, number> | null;
    /** Each device in table order with its counters (null: it keeps none). */
    devices: { label: string; counters: Record<string, number> | null }[];
  }[];
}

function fileError(e: unknown): string {
  const perm = permissionMessage(e);
  if (perm !== null) return perm;
  if (e instanceof Deno.errors.NotFound) return "no such file or directory";
  if (e instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (e instanceof Deno.errors.IsADirectory) return "is a directory";
  // "No space left on device", not "... (os error 28)"; with its name where Deno gives one.
  const text = (e as Error).message.split(/[:\n]/)[0].replace(/ \(os error \d+\)$/, "");
  const code = (e as { code?: unknown }).code;
  return typeof code === "string" && /^E[A-Z]+$/.test(code) ? `${code}: ${text}` : text;
}

/** How an outcome ended, in one word. */
export function outcomeKind(o: Outcome): string {
  if (o.status === 0) return "powered off";
  if (o.status !== undefined) return "exited";
  if (o.code === EXIT.TIMEOUT) return "timeout";
  if (o.reason.startsWith("stopped")) return "stopped";
  if (o.code > EXIT.SIGNAL_BASE) return "signal";
  return "crashed";
}

/** The counters of guest `i` of a run: the host's, and each device's. */
export function countersOf(run: HostRun, i: number): {
  counters: Record<string, number> | null;
  devices: { label: string; counters: Record<string, number> | null }[];
} {
  const c = run.runs[i]?.file.guest?.counters;
  return {
    counters: c ? { ...c } as unknown as Record<string, number> : null,
    devices: run.prepared[i].devices.map((d) => {
      const stats = (d as { stats?: Record<string, number> }).stats;
      return { label: d.label, counters: stats ? { ...stats } : null };
    }),
  };
}

/** Say how one guest of a CLI run ended (stderr; the quiet cases only with -v). */
const sayEnd = (function sayEnd(
  name: string,
  o: Outcome,
  several: boolean,
  opts: { verbose?: (line: string) => void },
  counters: object | undefined,
): void {
  if (opts.verbose && counters) opts.verbose(`${name}: counters ${JSON.stringify(counters)}`);
  if (o.status === 0) opts.verbose?.(`${name}: powered off`);
  else if (o.status !== undefined && o.status === o.code) {
    opts.verbose?.(`${name}: exited with status ${o.status}`);
  } else if (o.status !== undefined) {
    warn(
      `lguest: ${name}: exited with status ${o.status} (exit code ${o.code}: ` +
        `statuses above ${MAX_PASSED_STATUS} are reported as ${EXIT.STATUS_HIGH})`,
    );
  } else if (!(several && o.reason.startsWith("stopped: "))) {
    // The reason may hold guest text (a CRASH message): shown as data, one bounded line.
    warn(`lguest: ${name}: ${printable(o.reason, 300)}`);
  }
}).bind(null);

function report(run: HostRun, outcomes: Outcome[], exitCode: number): RunReport {
  return {
    exitCode,
    guests: outcomes.map((o, i) => ({
      name: run.prepared[i].name,
      outcome: outcomeKind(o),
      code: o.code,
      ...(o.status !== undefined ? { status: o.status } : {}),
      reason: o.reason,
      hints: run.hints[i] ?? [],
      ...countersOf(run, i),
    })),
  };
}

/** What a run uses of its {@link Supervisor}. */
type Watch = Pick<Supervisor, "ready" | "onStop" | "onInterrupt" | "close" | "cbreak">;

/**
 * A run with neither a terminal nor --timeout: nothing to watch. Signals keep
 * their default action (they end the process at once), as with a Supervisor
 * that has nothing to watch.
 */
const UNWATCHED: Watch = {
  ready: Promise.resolve(),
  cbreak: false,
  onStop() {},
  onInterrupt() {},
  close() {},
};

/** How long an open of --json FILE for writing may take before it is taken for a FIFO nobody reads. */
const JSON_OPEN_MS = 1000;

/**
 * --json `path` with --allow-write only (no stat, no libc): its open for writing blocks on a
 * FIFO nobody reads, so it is made off the main thread (Deno's file ops run on its blocking
 * pool) and one that does not open within JSON_OPEN_MS is refused in one line (a regular file
 * or a device opens at once). One that opens is emptied through its descriptor (ftruncate needs
 * no read access): a regular file is then closed (null: the report is written by name at the
 * end, as with the other permissions); a FIFO with a reader or a device (EINVAL) is kept open
 * and the report written through it, as with --allow-ffi. Anything else (no such folder, a
 * folder, no access) is null too: the write that follows says what is wrong.
 */
async function openJsonWriteOnly(path: string): Promise<Deno.FsFile | null> {
  const opening = Deno.open(path, { write: true, create: true });
  let file: Deno.FsFile | null;
  try {
    file = await within(opening, JSON_OPEN_MS);
  } catch {
    return null;
  }
  if (file === null) {
    opening.then((f) => f.close(), () => {}); // a reader that comes later gets an end of file
    throw new UsageError(
      `--json ${printable(path)}: it does not open for writing within ${JSON_OPEN_MS / 1000} s ` +
        "(a FIFO nobody reads?): a FIFO needs a reader, or --allow-ffi",
    );
  }
  try {
    file.truncateSync(0);
  } catch (e) {
    if (e instanceof Error && /os error 22\b/.test(e.message)) return file; // not a regular file
    file.close();
    return null;
  }
  file.close();
  return null;
}

/** Write `bytes` through `file`; a reader that takes nothing for `ms` is an error (EAGAIN). */
async function writeWithin(file: Deno.FsFile, bytes: Uint8Array, ms: number): Promise<void> {
  for (let done = 0; done < bytes.length;) {
    const n = await within(file.write(bytes.subarray(done)), ms);
    if (n === null) throw new SysError("write", 11); // EAGAIN
    done += n;
  }
}

/** What `p` settles to, or null when it has not settled within `ms` (then left to itself). */
async function within<T>(p: Promise<T>, ms: number): Promise<T | null> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<null>((resolve) => timer = setTimeout(() => resolve(null), ms));
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Run the guests; returns the process exit code. */
export const runGuests = (async function runGuests(
  plans: GuestPlan[],
  opts: RunOptions,
): Promise<number> {
  refuseOutputOverInput(plans, opts);
  let jsonFifo = -1;
  let jsonHeld: Deno.FsFile | null = null;
  if (opts.json !== undefined) {
    // Refuse an unwritable --json FILE before any guest runs; a FIFO nobody reads is refused
    // (opened without blocking: ENXIO) instead of hanging the run. That test is libc's: without
    // --allow-ffi (README: --json needs --allow-write only) it is not tried, so a terminal shows
    // no prompt for ffi; a FIFO it can see (--allow-read) is then refused in one line.
    const ffi = Deno.permissions.querySync({ name: "ffi" }).state === "granted";
    const read = !ffi && readable(opts.json);
    if (read) {
      if (isFifo(opts.json)) {
        throw new UsageError(`--json ${printable(opts.json)}: a FIFO needs --allow-ffi`);
      }
    } else if (!ffi) {
      // --allow-write alone (README's table): the write below would block on a FIFO nobody
      // reads, with no line (found by attack).
      jsonHeld = await openJsonWriteOnly(opts.json);
    }
    if (ffi) {
      try {
        const fd = openFile(opts.json, O_WRONLY | O_CREAT | O_NONBLOCK);
        if (fdFileType(fd) === S_IFIFO) {
          // Keep it open for the report: closing it now would be the reader's end of file. It
          // stays non-blocking: a reader that takes nothing for JSON_STALL_MS does not hang the run.
          jsonFifo = fd;
        } else libc().close(fd);
      } catch (e) {
        const code = e instanceof SysError ? e.code : "";
        // ENXIO: a FIFO nobody reads. Any other failure falls through to Deno's write below,
        // which says what is wrong, but that write's open blocks on a FIFO until a reader comes:
        // a FIFO is never given to it (an errno read through FFI after the failed open is the
        // main thread's last, not always open's: a test run hung twice here, with no line).
        const fifo = code === "ENXIO" || isFifo(opts.json);
        if (fifo) throw new UsageError(`--json ${printable(opts.json)}: a FIFO without a reader`);
      }
    }
    try {
      if (jsonFifo < 0 && !jsonHeld) Deno.writeTextFileSync(opts.json, "");
    } catch (e) {
      throw new UsageError(`--json ${opts.json}: ${fileError(e)}`);
    }
  }
  // stdout's reader has gone (`lguest run ... | head`): the run ends as the
  // 2.6.23 Launcher did, killed by SIGPIPE (141), instead of running on
  // with its output going nowhere. Any other write error (ENOSPC: `>` a file
  // on a full disk, EIO) ends it too, the guests killed by the host (126),
  // rather than going on with what they print lost unsaid. Stopped at once,
  // inside the console write (a stop only marks each guest dead and wakes
  // it; the first stop's code and reason are the outcome): a guest that
  // powers off right after its last write, or whose last `[name]` line is
  // written as it ends, has the failed write decide its outcome, not the
  // power-off (before, the stop waited for a timer and lost that race).
  let hostRunOf: HostRun | undefined;
  opts = {
    ...opts,
    // The guest whose write failed is the one named; a neighbour is `stopped:` because of it.
    onStdoutClosed: (e, guest) =>
      e === undefined
        ? hostRunOf?.stop(EXIT.SIGNAL_BASE + 13, "stdout closed (SIGPIPE)", guest)
        : hostRunOf?.stop(
          EXIT.GUEST_FAILED,
          `stdout write failed (${describeWriteError(e)}): the output from there on is lost`,
          guest,
        ),
  };
  const hostRun = hostRunOf = await HostRun.prepare(plans, opts);
  const { prepared, runs } = hostRun;
  const stdioGuest = prepared.find((p) => p.plan.stdio);
  // Only a terminal or --timeout needs the supervisor (signals, the watchdog Worker, termios):
  // without them its modules are not loaded (boot.first_byte, docs/performance.md). The test on
  // the arguments is main.ts's: where main.ts started the Worker early, the supervisor adopts it
  // (or ends it when nothing needs watching).
  // A guest without stdio holds its unfinished line until it ends: a signal then ends the run
  // in order (its guests stopped, the held lines written), not at once.
  const holds = !opts.console && prepared.some((p) => !p.plan.stdio);
  const watch = opts.timeoutMs > 0 || Deno.stdin.isTerminal() || holds ||
      Deno.args.some((a) => a.startsWith("--timeout"))
    ? await import("./supervisor.ts")
    : null;
  const supervisor: Watch = watch
    ? new watch.Supervisor({
      timeoutMs: opts.timeoutMs,
      terminal: stdioGuest !== undefined && Deno.stdin.isTerminal(),
      signals: holds,
    })
    : UNWATCHED;
  // A terminal left in line mode (no --allow-ffi, or termios refused) echoes what is typed
  // itself: the guest is told before its device table is written, or every line shows twice.
  if (stdioGuest && (stdioGuest.console.features & LGUEST_CONSOLE_F_IN_TTY) && !supervisor.cbreak) {
    stdioGuest.console.features |= LGUEST_CONSOLE_F_IN_LINE;
  }
  try {
    await hostRun.start();
  } catch (e) {
    supervisor.close();
    throw e;
  }
  const stopAll = (code: number, why: string) => hostRun.stop(code, why);
  supervisor.onStop(stopAll);
  let notResponding: ReturnType<typeof setTimeout> | undefined;
  if (stdioGuest && watch) {
    const file = runs[prepared.indexOf(stdioGuest)].file;
    supervisor.onInterrupt(() => {
      stdioGuest.console.interrupt();
      // A guest spinning without hypercalls never reads its Ctrl-C; it is
      // preempted, so the Launcher hears the signal, but the guest does not.
      // As when such a guest blocked the whole process (supervisor.ts): a
      // guest that is running and has made no hypercall for STALE_MS is not
      // responding, and the Ctrl-C ends the run.
      const g = file.guest;
      const before = g?.counters.hypercalls;
      clearTimeout(notResponding);
      notResponding = setTimeout(() => {
        if (g && g.dead === null && !g.halted && g.counters.hypercalls === before) {
          stopAll(EXIT.SIGNAL_BASE + 2, "ended by SIGINT (guest not responding)");
        }
      }, watch.STALE_MS);
    });
  }
  const several = runs.length > 1;
  // Each guest's end is said when it happens: in a run of several guests
  // one may die long before the others end.
  const said = (i: number) => (o: Outcome) => {
    sayEnd(prepared[i].name, o, several, opts, runs[i].file.guest?.counters);
    return o;
  };
  let outcomes: Outcome[];
  try {
    await supervisor.ready;
    const all = hostRun.run(stdioGuest);
    outcomes = await Promise.all(hostRun.ended.map((p, i) => p.then(said(i))));
    await all;
  } finally {
    // Only when set: the first read of the global clearTimeout (or setTimeout) makes Deno 2.9
    // load Node's timers, ~4 ms after the guest's end of every run (docs/performance.md, boot).
    if (notResponding !== undefined) clearTimeout(notResponding);
    supervisor.close();
  }

  // A guest in whose hypercall the host's own stack ran out (its outcome 125, launcher.ts) makes
  // the run the host's failure, whichever guest it was.
  const exitCode = outcomes.some((o) => o.code === EXIT.USAGE)
    ? EXIT.USAGE
    : stdioGuest
    ? outcomes[prepared.indexOf(stdioGuest)].code
    : outcomes.find((o) => o.code !== EXIT.OK)?.code ?? EXIT.OK;
  if (opts.json !== undefined) {
    try {
      const text = JSON.stringify(report(hostRun, outcomes, exitCode), null, 2) + "\n";
      if (jsonFifo >= 0) {
        try {
          writeAll(jsonFifo, new TextEncoder().encode(text), JSON_STALL_MS);
        } finally {
          libc().close(jsonFifo);
        }
      } else if (jsonHeld) {
        try {
          await writeWithin(jsonHeld, new TextEncoder().encode(text), JSON_STALL_MS);
        } finally {
          jsonHeld.close();
        }
      } else Deno.writeTextFileSync(opts.json, text);
    } catch (e) {
      // The report the user asked for is lost (its folder removed during the run, a full disk):
      // not a success (README "Exit codes"); the line keeps the code it would have held.
      const why = e instanceof SysError && e.code === "EAGAIN"
        ? `its reader took nothing for ${JSON_STALL_MS / 1000} s`
        : fileError(e);
      warn(
        `lguest: --json ${printable(opts.json)}: ${why}: the report is not written ` +
          `(the run's exit code was ${exitCode})`,
      );
      return EXIT.USAGE;
    }
  }
  return exitCode;
}).bind(null);
