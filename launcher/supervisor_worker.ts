/**
 * The supervisor's Worker: ends the process when the main thread cannot
 * (a guest spinning without hypercalls). See `supervisor.ts`.
 *
 * {@link watchdog} runs inside the Worker from its source text
 * (`sys/worker.ts`), so it uses no import and no name of this module:
 * every constant comes in the first message ({@link SupervisorInit}), and
 * it opens libc itself for `tcsetattr`, `tcsetpgrp` and `_exit`.
 *
 * @module
 */

/** What the Worker is told at start: the shared block and its layout. */
export interface SupervisorInit {
  shared: SharedArrayBuffer;
  timeoutMs: number;
  /** Int32 index of the heartbeat, of the "terminal in cbreak mode" flag, of the group to give the terminal back to. */
  hb: number;
  term: number;
  fg: number;
  /** Byte offset and size of the saved termios in `shared`. */
  termiosOff: number;
  termiosSize: number;
  heartbeatMs: number;
  staleMs: number;
  /** Signals that end a run, with their numbers. */
  signals: Record<string, number>;
  /** Exit codes (launcher/exit.ts): --timeout, and 128 for "signal N" = 128 + N. */
  timeoutCode: number;
  signalBase: number;
}

/** The Worker's code (self-contained: see the module comment). */
export function watchdog(): void {
  // The Worker's global scope (typed here without `/// <reference lib="deno.worker" />`,
  // a directive JSR refuses).
  const scope = self as unknown as {
    onmessage: (e: MessageEvent<SupervisorInit>) => void;
    postMessage(message: unknown): void;
  };
  // What fails in here (under a small V8 --stack-size, Deno's lazily loaded timers overflow
  // this thread's stack first) is told to the main thread, which stops the run in one line,
  // instead of being thrown: an uncaught error here is ~80 lines from Deno, then exit 1.
  const failed = (e: unknown) => {
    try {
      scope.postMessage({ failed: e instanceof Error ? e.message : String(e) });
    } catch {
      // nothing more can be done from here: the main thread's onerror is the last net
    }
  };
  // Deno's lazy load that fails also leaves its promise rejected: told, not reported by Deno.
  (scope as unknown as EventTarget).addEventListener("unhandledrejection", (e: Event) => {
    e.preventDefault();
    failed((e as PromiseRejectionEvent).reason);
  });
  scope.onmessage = (e: MessageEvent<SupervisorInit>) => {
    try {
      init(e);
    } catch (err) {
      failed(err);
    }
  };
  const init = (e: MessageEvent<SupervisorInit>) => {
    const { shared, timeoutMs, hb, term, fg, termiosOff, termiosSize, heartbeatMs, staleMs } =
      e.data;
    const { signals, timeoutCode, signalBase } = e.data;
    const i32 = new Int32Array(shared, 0, 3);
    const termios = new Uint8Array(shared, termiosOff, termiosSize);
    let lib:
      | Deno.DynamicLibrary<{
        tcsetattr: { parameters: ["i32", "i32", "buffer"]; result: "i32" };
        tcsetpgrp: { parameters: ["i32", "i32"]; result: "i32" };
        poll: { parameters: ["buffer", "u64", "i32"]; result: "i32" };
        _exit: { parameters: ["i32"]; result: "void" };
      }>
      | null = null;
    const libc = () =>
      lib ??= Deno.dlopen("libc.so.6", {
        tcsetattr: { parameters: ["i32", "i32", "buffer"], result: "i32" },
        tcsetpgrp: { parameters: ["i32", "i32"], result: "i32" },
        poll: { parameters: ["buffer", "u64", "i32"], result: "i32" },
        _exit: { parameters: ["i32"], result: "void" },
      });
    /**
     * Whether stderr takes a short line now (poll(2), POLLOUT, 100 ms at most): the main thread
     * this thread ends is often stuck writing to a reader that takes nothing, and stderr can be
     * the same pipe or a terminal stopped with Ctrl-S: a blocking write of the line here hung the
     * exit itself (found by attack: neither --timeout nor a signal ended such a run).
     */
    const stderrTakes = (): boolean => {
      const pfd = new Uint8Array(8); // struct pollfd { int fd; short events, revents; }
      const v = new DataView(pfd.buffer);
      v.setInt32(0, 2, true);
      v.setInt16(4, 4, true); // POLLOUT
      try {
        return libc().symbols.poll(pfd, 1n, 100) === 1 && (v.getInt16(6, true) & 4) !== 0;
      } catch {
        return false;
      }
    };

    const stale = () => (Date.now() % 2 ** 31) - Atomics.load(i32, hb) > staleMs;
    const hardExit = (code: number, why: string) => {
      // TCSANOW = 0: put back the settings the main thread saved.
      if (Atomics.load(i32, term) === 1) libc().symbols.tcsetattr(0, 0, termios.slice());
      const group = Atomics.load(i32, fg);
      if (group > 0) libc().symbols.tcsetpgrp(0, group);
      try {
        if (stderrTakes()) Deno.stderr.writeSync(new TextEncoder().encode(`\nlguest: ${why}\n`));
      } catch {
        // stderr unwritable (2>/dev/full): the exit code still says it.
      }
      libc().symbols._exit(code);
    };

    for (const [name, num] of Object.entries(signals)) {
      Deno.addSignalListener(name as Deno.Signal, () => {
        // The main thread handles signals itself while it is responsive. It
        // may also handle this one and only then block in a spinning guest:
        // keep checking for a while, not just once (its last beat may be a
        // little younger than the signal).
        const heard = performance.now();
        const check = () => {
          if (stale()) hardExit(signalBase + num, `ended by ${name} (guest not responding)`);
          else if (performance.now() - heard < 2 * staleMs) setTimeout(check, heartbeatMs);
        };
        try {
          setTimeout(check, staleMs);
        } catch (err) {
          failed(err);
        }
      });
    }
    scope.postMessage("ready"); // see Supervisor.ready
    if (timeoutMs > 0) {
      setTimeout(function check() {
        if (stale()) {
          hardExit(timeoutCode, `timed out after ${timeoutMs / 1000} s (guest not responding)`);
        } else setTimeout(check, staleMs);
      }, timeoutMs + staleMs);
    }
  };
}
