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
const TCSANOW = 0;

/** Save fd 0's settings into `saved` and switch it to cbreak mode. */
export function enterCbreak(saved: Uint8Array): boolean {
  const c = libc();
  if (c.tcgetattr(0, saved as Uint8Array<ArrayBuffer>) !== 0) return false;
  const t = saved.slice();
  const dv = new DataView(t.buffer);
  dv.setUint32(LFLAG, dv.getUint32(LFLAG, true) & ~(ICANON | ECHO), true);
  t[CC + VMIN] = 1;
  t[CC + VTIME] = 0;
  return c.tcsetattr(0, TCSANOW, t) === 0;
}

/** Put back the settings saved by {@link enterCbreak}. */
export function restoreTerminal(saved: Uint8Array): void {
  libc().tcsetattr(0, TCSANOW, saved as Uint8Array<ArrayBuffer>);
}
