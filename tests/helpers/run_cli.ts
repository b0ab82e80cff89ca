/**
 * Test helper: drive the real `lguest` CLI (`main.ts`) as a subprocess,
 * the way `deno task lguest` does, with a kill-timeout so that a hung run
 * fails its test instead of hanging the suite.
 *
 * - {@link runCli}: run to completion with a fixed stdin (or none) and
 *   collect stdout, stderr and the exit code.
 * - {@link spawnCli} / {@link spawnProcess}: a live process whose output can
 *   be awaited ({@link LiveProcess.waitFor}), typed into and signalled.
 *
 * @module
 */

import assert from "node:assert/strict";
import { EXIT } from "../../launcher/exit.ts";

/** The project root (cwd of every run). */
export const ROOT = new URL("../../", import.meta.url);
/** The project root as a path. */
export const ROOT_PATH = decodeURIComponent(ROOT.pathname).replace(/\/$/, "");

/** `deno` plus the arguments of `deno task lguest` (see deno.json; the task adds only `--allow-env=INIT_CWD,…`). */
export const LGUEST_CMD: readonly string[] = [
  Deno.execPath(),
  "run",
  "--allow-read",
  "--allow-write",
  "--allow-ffi",
  "--allow-run=ip,clang,clang-14",
  "main.ts",
];

/** Default kill-timeout of one CLI run. */
export const DEFAULT_KILL_MS = 20_000;

/** How a run ended. */
export interface CliResult {
  /** Exit code (128+N if it was killed by signal N). */
  code: number;
  /** The signal that killed it, if any. */
  signal: Deno.Signal | null;
  stdout: string;
  stderr: string;
  /** Wall-clock run time. */
  ms: number;
  /** True if the kill-timeout fired (the test should fail). */
  killed: boolean;
}

/** Options of a run. */
export interface RunOptions {
  /** Bytes for stdin (then EOF); null or undefined: stdin is /dev/null. */
  stdin?: string | Uint8Array | null;
  /** Kill the process (SIGKILL) after this long; default {@link DEFAULT_KILL_MS}. */
  killAfterMs?: number;
  /** Extra environment variables. */
  env?: Record<string, string>;
}

const enc = new TextEncoder();

/** Run `lguest ARGS...` to completion. */
export async function runCli(args: string[], opts: RunOptions = {}): Promise<CliResult> {
  const p = spawnCli(args, {
    stdin: opts.stdin == null ? "null" : "piped",
    killAfterMs: opts.killAfterMs,
    env: opts.env,
  });
  if (opts.stdin != null) {
    const data = typeof opts.stdin === "string" ? enc.encode(opts.stdin) : opts.stdin;
    // Written concurrently with the output being read: no pipe deadlock.
    p.write(data).then(() => p.closeStdin(), () => {});
  }
  return await p.result();
}

/**
 * Whether /dev/full (writes fail with ENOSPC) is here. Asked of the shell: the test task's
 * permissions do not let Deno stat a device (Deno.statSync throws NotCapable there).
 */
export function hasDevFull(): boolean {
  return new Deno.Command("sh", { args: ["-c", "test -c /dev/full"] }).outputSync().success;
}

/**
 * `deno run -A main.ts ARGS` to completion, stdin and stdout /dev/null: its exit code and
 * stderr. -A: Deno lets a process open a device (e.g. /dev/full) only with --allow-all, and
 * the test task's flags refuse it first.
 */
export async function runCliAllowAll(args: string[]): Promise<{ code: number; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT_PATH}/main.ts`, ...args],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).output();
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}

/** Options of a live process. */
export interface SpawnOptions {
  stdin?: "piped" | "null";
  killAfterMs?: number;
  env?: Record<string, string>;
}

/**
 * The engine every `lguest run` of this test process uses when the run
 * names none: `LGUEST_TEST_ENGINE` (e.g. `kvm`, to run a whole e2e file
 * under the KVM engine by hand); unset: the CLI's default.
 */
const TEST_ENGINE = (() => {
  try {
    return Deno.env.get("LGUEST_TEST_ENGINE") || null;
  } catch {
    return null;
  }
})();

/** Spawn `lguest ARGS...` and keep it live. */
export function spawnCli(args: string[], opts: SpawnOptions = {}): LiveProcess {
  if (TEST_ENGINE !== null && args[0] === "run" && !args.includes("--engine")) {
    args = ["run", "--engine", TEST_ENGINE, ...args.slice(1)];
  }
  return spawnProcess(LGUEST_CMD[0], [...LGUEST_CMD.slice(1), ...args], opts);
}

/** Spawn any program in the project root and keep it live. */
export function spawnProcess(cmd: string, args: string[], opts: SpawnOptions = {}): LiveProcess {
  return new LiveProcess(cmd, args, opts);
}

/** A running subprocess with collected output. */
export class LiveProcess {
  readonly child: Deno.ChildProcess;
  stdout = "";
  stderr = "";
  readonly #start = performance.now();
  readonly #writer: WritableStreamDefaultWriter<Uint8Array> | null;
  readonly #done: Promise<CliResult>;
  readonly #killTimer: ReturnType<typeof setTimeout>;
  #killed = false;
  #waiters: (() => void)[] = [];

  constructor(cmd: string, args: string[], opts: SpawnOptions) {
    this.child = new Deno.Command(cmd, {
      args,
      cwd: ROOT_PATH,
      stdin: opts.stdin ?? "null",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1", ...opts.env },
    }).spawn();
    this.#writer = opts.stdin === "piped" ? this.child.stdin.getWriter() : null;
    this.#killTimer = setTimeout(() => {
      this.#killed = true;
      try {
        this.child.kill("SIGKILL");
      } catch { /* already gone */ }
    }, opts.killAfterMs ?? DEFAULT_KILL_MS);
    const out = this.#collect(this.child.stdout, (s) => (this.stdout += s));
    const err = this.#collect(this.child.stderr, (s) => (this.stderr += s));
    this.#done = this.#finish(out, err);
  }

  async #finish(out: Promise<void>, err: Promise<void>): Promise<CliResult> {
    const status = await this.child.status;
    await Promise.all([out, err]);
    clearTimeout(this.#killTimer);
    try {
      await this.#writer?.close();
    } catch { /* already closed or broken */ }
    this.#notify();
    return {
      code: status.code,
      signal: status.signal,
      stdout: this.stdout,
      stderr: this.stderr,
      ms: performance.now() - this.#start,
      killed: this.#killed,
    };
  }

  async #collect(stream: ReadableStream<Uint8Array>, add: (s: string) => void): Promise<void> {
    const dec = new TextDecoder();
    for await (const chunk of stream) {
      add(dec.decode(chunk, { stream: true }));
      this.#notify();
    }
    add(dec.decode());
  }

  #notify(): void {
    const ws = this.#waiters;
    this.#waiters = [];
    for (const w of ws) w();
  }

  /**
   * Wait until stdout (or `which`) includes a string, matches a RegExp or
   * satisfies a predicate; throws after `ms` or when the process exits.
   */
  async waitFor(
    pattern: string | RegExp | ((text: string) => boolean),
    ms = 10_000,
    which: "stdout" | "stderr" = "stdout",
  ): Promise<void> {
    const test = () => {
      const text = which === "stdout" ? this.stdout : this.stderr;
      if (typeof pattern === "string") return text.includes(pattern);
      return pattern instanceof RegExp ? pattern.test(text) : pattern(text);
    };
    const deadline = performance.now() + ms;
    let ended = false;
    this.#done.then(() => (ended = true), () => (ended = true));
    while (!test()) {
      const left = deadline - performance.now();
      if (ended || left <= 0) {
        throw new Error(
          `waiting for ${
            typeof pattern === "string" ? JSON.stringify(pattern) : pattern
          } on ${which}: ${ended ? "process exited" : "timed out"}\n` +
            `stdout: ${JSON.stringify(this.stdout)}\nstderr: ${JSON.stringify(this.stderr)}`,
        );
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        timer = setTimeout(resolve, Math.min(left, 100));
      });
      clearTimeout(timer);
    }
  }

  /** Write bytes to stdin (stdin must be piped). */
  async write(data: string | Uint8Array): Promise<void> {
    if (!this.#writer) throw new Error("stdin is not piped");
    await this.#writer.write(typeof data === "string" ? enc.encode(data) : data);
  }

  /** Type text one character at a time, `delayMs` apart. */
  async type(text: string, delayMs = 15): Promise<void> {
    for (const ch of text) {
      await this.write(ch);
      await sleep(delayMs);
    }
  }

  /** Close stdin (EOF for the child). */
  async closeStdin(): Promise<void> {
    try {
      await this.#writer?.close();
    } catch { /* already closed or broken */ }
  }

  /** Send a signal (ignored if the process is gone). */
  kill(signal: Deno.Signal): void {
    try {
      this.child.kill(signal);
    } catch { /* already gone */ }
  }

  /** Wait for the end of the process. */
  result(): Promise<CliResult> {
    return this.#done;
  }
}

/** Resolve after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Lines of a text, without a trailing empty one. */
export function lines(text: string): string[] {
  const ls = text.split(/\r?\n/);
  if (ls.at(-1) === "") ls.pop();
  return ls;
}

/** Does the text contain a JavaScript stack-trace frame? */
export function hasStackTrace(text: string): boolean {
  return /^\s+at\s/m.test(text) || /Uncaught|error: Uncaught/.test(text);
}

/** A one-line description of a result, for assertion messages. */
export function describe(r: CliResult): string {
  return `exit ${r.code}${r.signal ? ` (${r.signal})` : ""}${
    r.killed ? " KILLED by timeout" : ""
  }` +
    ` after ${Math.round(r.ms)} ms\nstdout: ${JSON.stringify(r.stdout.slice(0, 2000))}` +
    `\nstderr: ${JSON.stringify(r.stderr.slice(0, 2000))}`;
}

/** A usage error: exit EXIT.USAGE, stdout empty, one stderr line "lguest: ..." matching `expect`, no stack trace. */
export function assertUsageError(r: CliResult, expect: RegExp | string): void {
  const why = describe(r);
  assert.equal(r.code, EXIT.USAGE, why);
  assert.equal(r.stdout, "", why);
  const err = lines(r.stderr);
  assert.equal(err.length, 1, `expected one stderr line\n${why}`);
  assert.match(err[0], /^lguest: /, why);
  if (typeof expect === "string") assert.ok(err[0].includes(expect), `want '${expect}'\n${why}`);
  else assert.match(err[0], expect, why);
  assert.ok(!hasStackTrace(r.stderr + r.stdout), `stack trace\n${why}`);
}

/** Quote a word for a POSIX shell. */
export function shellQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}
