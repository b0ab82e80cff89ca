/**
 * The supervisor's Worker: ends the process when the main thread cannot
 * (a guest spinning without hypercalls). See `supervisor.ts`.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import {
  HB,
  HEARTBEAT_MS,
  SIGNALS,
  STALE_MS,
  type SupervisorInit,
  TERM,
  TERMIOS_OFF,
} from "./supervisor.ts";
import { restoreTerminal, TERMIOS_SIZE } from "./termios.ts";
import { libc } from "../sys/libc.ts";

self.onmessage = (e: MessageEvent<SupervisorInit>) => {
  const { shared, timeoutMs } = e.data;
  const i32 = new Int32Array(shared, 0, 2);
  const termios = new Uint8Array(shared, TERMIOS_OFF, TERMIOS_SIZE);

  const stale = () => (Date.now() % 2 ** 31) - Atomics.load(i32, HB) > STALE_MS;
  const hardExit = (code: number, why: string) => {
    if (Atomics.load(i32, TERM) === 1) restoreTerminal(termios.slice());
    Deno.stderr.writeSync(new TextEncoder().encode(`\nlguest: ${why}\n`));
    libc()._exit(code);
  };

  for (const [name, num] of Object.entries(SIGNALS)) {
    Deno.addSignalListener(name as Deno.Signal, () => {
      // The main thread handles signals itself while it is responsive. It
      // may also handle this one and only then block in a spinning guest:
      // keep checking for a while, not just once (its last beat may be a
      // little younger than the signal).
      const heard = performance.now();
      const check = () => {
        if (stale()) hardExit(128 + num, `ended by ${name} (guest not responding)`);
        else if (performance.now() - heard < 2 * STALE_MS) setTimeout(check, HEARTBEAT_MS);
      };
      setTimeout(check, STALE_MS);
    });
  }
  self.postMessage("ready"); // see Supervisor.ready
  if (timeoutMs > 0) {
    setTimeout(function check() {
      if (stale()) hardExit(124, `timed out after ${timeoutMs / 1000} s (guest not responding)`);
      else setTimeout(check, STALE_MS);
    }, timeoutMs + STALE_MS);
  }
};
