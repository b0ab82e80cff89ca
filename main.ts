/**
 * `lguest`: run lguest guests on Deno.
 *
 * This entry stays tiny so that `lguest --version` starts as fast as Deno
 * can; everything else loads on demand.
 *
 * @module
 */

import { VERSION } from "./version.ts";
import { print, stdoutFailure, warn } from "./sys/stdio.ts";
import { hostStackLine, hostStackSaid, isStackOverflow } from "./sys/text.ts";

// Written `(function f() {...}).bind(null)`: compiled with the module, not again at every
// start on its first call (Deno's emit keeps these parentheses; docs/performance.md, boot).
/**
 * `deno task lguest ...` runs us in the repository root, but the user typed
 * the command in another folder, which deno task passes as INIT_CWD: work
 * there, so relative paths (the image, --block, --pcap, --config) mean what
 * the user meant. Only for this checkout's own task: the task runner's user
 * agent and a working directory that is this file's folder.
 */
const fromTaskCwd = (function fromTaskCwd(): void {
  // The task runs this file: a bundle of it (dist/lguest.js) follows no task, and asks
  // nothing (the two permission queries below cost its start ~0.2 ms; boot.first_byte).
  if (!import.meta.url.endsWith("/main.ts")) return;
  // Without --allow-env (a bundle or URL run with least privilege) there is
  // no task to follow; query first so that Deno does not prompt.
  const granted = (variable: string) =>
    Deno.permissions.querySync({ name: "env", variable }).state === "granted";
  if (!granted("INIT_CWD") || !granted("npm_config_user_agent")) return;
  const init = Deno.env.get("INIT_CWD");
  if (!init || !Deno.env.get("npm_config_user_agent")?.startsWith("deno/")) return;
  const here = decodeURIComponent(new URL(".", import.meta.url).pathname).replace(/\/$/, "");
  try {
    if (import.meta.url.startsWith("file:") && Deno.cwd() === here) Deno.chdir(init);
  } catch {
    // INIT_CWD is gone or unreadable: stay where the task put us.
  }
}).bind(null);

/**
 * The program's modules did not load: if the error names a generated module of the build
 * (guests/images/index.ts, missing or damaged in a checkout: a truncated download, a bad merge),
 * say so in one line and return 125 (launcher/exit.ts EXIT.USAGE); anything else is thrown on.
 * Only on this path: a try around the import costs a start nothing.
 */
function generatedModuleFailed(e: unknown): number {
  const msg = e instanceof Error ? e.message : "";
  // "Module not found "file:///…/guests/images/index.ts"", or a SyntaxError "at file:///…:L:C".
  const file = /\/(guests\/images\/[\w.+-]+)(?:"|:\d)/.exec(msg)?.[1];
  if (!file) throw e;
  const why = /^Module not found/.test(msg)
    ? "is missing"
    : `is damaged (${msg.split("\n")[0].replace(/[^\x20-\x7e]/g, "?").slice(0, 100)})`;
  warn(`lguest: ${file} ${why}: 'deno task guests' writes it again`); // best effort: the code says it
  return 125;
}

/**
 * A host whose own stack ran out (V8 --stack-size in DENO_V8_FLAGS) in code no caller awaits
 * (Deno's lazily loaded Node timers, a rejection left to the event loop): one line and 125
 * (launcher/exit.ts EXIT.USAGE, as for a host that cannot run the engine), not Deno's uncaught
 * error with its stack trace. Anything else is left to Deno as before. Off once the CLI has its
 * exit code (the last turn of the loop, below, changes none).
 */
const hostStackNet = (function hostStackNet(): () => void {
  const net = (e: Event) => {
    const why = e instanceof PromiseRejectionEvent ? e.reason : (e as ErrorEvent).error;
    if (!isStackOverflow(why)) return;
    e.preventDefault();
    if (!hostStackSaid()) warn(`lguest: ${hostStackLine()}`);
    Deno.exit(125);
  };
  globalThis.addEventListener("unhandledrejection", net);
  globalThis.addEventListener("error", net);
  return () => {
    globalThis.removeEventListener("unhandledrejection", net);
    globalThis.removeEventListener("error", net);
  };
}).bind(null);

/**
 * One turn of Deno's event loop before the process exits. Deno stores a
 * module's V8 code cache in an event-loop turn after it loaded the module,
 * and `Deno.exit` ends the process at once: a run that never gave the loop a
 * turn after its modules loaded (`run hello` runs its guest to the end in
 * microtasks) left them uncached, and every later start compiled them again
 * (the bundle: 0 of 8 fresh copies cached after a run, 8 of 8 with this turn;
 * its first byte 23-25 ms uncached against 17 cached; docs/performance.md,
 * boot). A message through a MessageChannel is such a turn, without a timer
 * (Deno's first timer loads Node's timers). Whatever else that turn settles
 * cannot change the exit code: an unhandled rejection or an uncaught error
 * in it is not reported (the run has already said what it had to say).
 */
const eventLoopTurn = (function eventLoopTurn(): Promise<void> {
  const quiet = (e: Event) => e.preventDefault();
  globalThis.addEventListener("unhandledrejection", quiet);
  globalThis.addEventListener("error", quiet);
  return new Promise((resolve) => {
    const { port1, port2 } = new MessageChannel();
    port1.onmessage = () => {
      port1.close();
      resolve();
    };
    port2.postMessage(0);
  });
}).bind(null);

if (import.meta.main) {
  const args = Deno.args;
  if (args.length === 1 && (args[0] === "--version" || args[0] === "-V")) {
    try {
      print(`lguest ${VERSION}`);
    } catch (e) {
      Deno.exit(stdoutFailure(e, 125) ?? 1); // launcher/exit.ts EXIT.USAGE
    }
  } else {
    fromTaskCwd();
    const netOff = hostStackNet();
    // The watchdog Worker is only needed at a terminal or with --timeout (launcher/runner.ts
    // makes the same test to decide whether the run needs its supervisor).
    if (
      args[0] === "run" &&
      (Deno.stdin.isTerminal() || args.some((a) => a.startsWith("--timeout")))
    ) {
      (await import("./launcher/supervisor.ts")).prestartWatchdog();
    }
    let cli: typeof import("./launcher/cli.ts");
    try {
      cli = await import("./launcher/cli.ts");
    } catch (e) {
      Deno.exit(generatedModuleFailed(e));
    }
    const code = await cli.main(args);
    netOff(); // the last turn below changes no exit code
    // At a terminal the run reads it in turns of the loop anyway; the turn is for the rest.
    if (!Deno.stdin.isTerminal()) await eventLoopTurn();
    Deno.exit(code);
  }
}
