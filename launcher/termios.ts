/**
 * Launcher: the terminal, through libc (tcgetattr/tcsetattr via FFI).
 *
 * We put a terminal stdin in cbreak mode (no ICANON, no ECHO, ISIG kept):
 * the guest sees every key as typed, and Ctrl-C still arrives as SIGINT,
 * so a run can always be ended even while a guest spins without making
 * hypercalls (the supervisor thread hears the signal). The launcher turns
 * each SIGINT into a 0x03 byte for the guest (protocol §10.2's exit hack
 * then counts them). The saved settings are restored on every exit path.
 *
 * Ctrl-C must reach us once. A terminal sends SIGINT to its whole
 * foreground process group; a parent in that group that also forwards
 * SIGINT to its child (`deno task` does) makes every press arrive twice.
 * So when we share the foreground group with our parent, we move into a
 * group of our own and make it the terminal's foreground group
 * ({@link takeForeground}), as a job-control shell does for a job; the
 * parent no longer hears the key, and gets the terminal back when we end
 * ({@link giveBackForeground}).
 *
 * Ctrl-Z (VSUSP) is switched off in cbreak mode and goes to the guest as a
 * byte (0x1a), however lguest was started: stopping our group alone under
 * `deno task` would leave the user's shell waiting on a parent that is not
 * stopped, and the installed command behaves the same. Ctrl-\ (SIGQUIT)
 * ends the run with 131 and restores the terminal, like SIGTERM.
 *
 * @module
 */

import { libc } from "../sys/libc.ts";

/** sizeof(struct termios) on Linux x86-64 (glibc). */
export const TERMIOS_SIZE = 60;
const LFLAG = 12;
const CC = 17;
const ICANON = 0x2;
const ECHO = 0x8;
const VTIME = 5;
const VMIN = 6;
const VSUSP = 10;
const TCSANOW = 0;
const SIGTTIN = 21;
const SIGTTOU = 22;

/** Save fd 0's settings into `saved` and switch it to cbreak mode. */
export function enterCbreak(saved: Uint8Array): boolean {
  const c = libc();
  if (c.tcgetattr(0, saved as Uint8Array<ArrayBuffer>) !== 0) return false;
  const t = saved.slice();
  const dv = new DataView(t.buffer);
  dv.setUint32(LFLAG, dv.getUint32(LFLAG, true) & ~(ICANON | ECHO), true);
  t[CC + VMIN] = 1;
  t[CC + VTIME] = 0;
  t[CC + VSUSP] = 0; // _POSIX_VDISABLE: Ctrl-Z is a byte for the guest (the saved settings put it back)
  return c.tcsetattr(0, TCSANOW, t) === 0;
}

/**
 * If we share the terminal's foreground process group with our parent,
 * move into our own group and make it the foreground group (see the module
 * comment). Returns the group to give the terminal back to, or 0 if
 * nothing changed (we already lead our group, as under an interactive
 * shell, or we are not in the foreground at all).
 */
export function takeForeground(): number {
  const c = libc();
  const fg = c.tcgetpgrp(0);
  const me = c.getpid();
  if (fg <= 0 || fg !== c.getpgrp() || fg === me) return 0;
  // A background group may not set the foreground group unless it ignores
  // SIGTTOU; ignoring it also lets us restore the terminal afterwards.
  c.signal(SIGTTOU, Deno.UnsafePointer.create(1n)); // SIG_IGN
  if (c.setpgid(0, 0) !== 0) return 0;
  if (c.tcsetpgrp(0, me) !== 0) {
    c.setpgid(0, fg); // back into the parent's group: no harm done
    return 0;
  }
  return fg;
}

/** Give the terminal back to `pgrp` (from {@link takeForeground}; 0: nothing to do). */
export function giveBackForeground(pgrp: number): void {
  if (pgrp <= 0) return;
  // From here on we are a background group of the terminal, about to exit: a read of it
  // (the console's, still pending or started in a last turn of the event loop) would stop
  // the whole process with SIGTTIN, and the run hang at its end (pty_test, 1-3 of 12 runs).
  // Ignored, such a read fails with EIO instead.
  libc().signal(SIGTTIN, Deno.UnsafePointer.create(1n)); // SIG_IGN
  libc().tcsetpgrp(0, pgrp);
}

/** Put back the settings saved by {@link enterCbreak}. */
export function restoreTerminal(saved: Uint8Array): void {
  libc().tcsetattr(0, TCSANOW, saved as Uint8Array<ArrayBuffer>);
}
