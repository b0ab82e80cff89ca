/**
 * Exit codes of `lguest` (README "Exit codes"), modelled on `docker run`:
 * the guest's own status passes through, and the launcher keeps a few codes
 * of its own above it, so a guest's status is never mistaken for a launcher
 * error.
 *
 * | code    | meaning                                                        |
 * | ------- | -------------------------------------------------------------- |
 * | 0..123  | the guest's own exit status (power off = 0, exit(N) = N)       |
 * | 123     | also: a guest status of 124..255 (exact status on stderr)      |
 * | 124     | `--timeout` expired                                            |
 * | 125     | usage error / input refused before any guest ran; a host that  |
 * |         | cannot run the engine (no /dev/kvm, V8 --jitless, its own      |
 * |         | stack exhausted: sys/text.ts `isStackOverflow`); stdout or the --json      |
 * |         | report could not be written (sys/stdio.ts)                     |
 * | 126     | the guest crashed (panic, trap) or was killed by the host      |
 * |         | (also: its output could not be written to stdout)              |
 * | 128+N   | ended by signal N (130 also for three Ctrl-C)                  |
 *
 * @module
 */

/** The launcher's own exit codes. */
export const EXIT = {
  OK: 0,
  /** A guest status of 124..255 is reported as this (see {@link exitCodeOf}). */
  STATUS_HIGH: 123,
  TIMEOUT: 124,
  USAGE: 125,
  GUEST_FAILED: 126,
  /** 128 + signal number. */
  SIGNAL_BASE: 128,
} as const;

/** Highest guest status that passes through unchanged. */
export const MAX_PASSED_STATUS = 123;

// Written `(function f() {...}).bind(null)`: compiled with the module, not again at every
// start on its first call (Deno's emit keeps these parentheses; docs/performance.md, boot).
/** The process exit code for a guest's own exit status (0..255). */
export const exitCodeOf = (function exitCodeOf(status: number): number {
  return status <= MAX_PASSED_STATUS ? status : EXIT.STATUS_HIGH;
}).bind(null);

/**
 * One line for a missing Deno permission (`Deno.errors.NotCapable`: the
 * process was started without `--allow-read`, `--allow-ffi`, ...), naming
 * the flag that is needed; null for any other error. A device file such as
 * `/dev/stdout` needs `--allow-all` in Deno whatever else is granted: that
 * gets its own line. Callers exit with {@link EXIT.USAGE}.
 */
export function permissionMessage(e: unknown): string | null {
  if (!(e instanceof Deno.errors.NotCapable)) return null;
  const m = /^Requires (\w+) access(?: to (.*?))?, run again with the (--allow-[\w-]+) flag/
    .exec(e.message);
  if (!m) return `missing Deno permission: ${e.message.split("\n")[0]}`;
  const [, kind, what, flag] = m;
  if (flag === "--allow-all" && what) {
    return `${what}: Deno opens a device or special file only with --allow-all; name a regular file`;
  }
  return `needs Deno's ${flag} permission (${kind} access${what ? ` to ${what}` : ""}): ` +
    `run with 'deno run ${flag} ...' (the installed lguest and 'deno task lguest' have it)`;
}
