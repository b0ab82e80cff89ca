/**
 * `deno task compile`: build the single self-contained binary `dist/lguest`
 * with the built-in guests embedded. Its entry is the bundle's,
 * `tools/ship_entry.ts`: `main.ts` with the images a checkout leaves out of
 * its start-up graph as static imports (`guests/images/embedded.ts`), so
 * every built-in image is in the module graph that `deno compile` embeds,
 * and no file needs `--include` (the watchdog Worker runs from source text,
 * `sys/worker.ts`). `deno compile` downloads Deno's runtime (denort) the
 * first time; where that download is impossible we say so in one line and
 * exit 1.
 *
 * @module
 */

const root = new URL("../", import.meta.url).pathname;

/** `deno compile`'s arguments. */
export const COMPILE_ARGS: readonly string[] = [
  "compile",
  "--allow-read",
  "--allow-write",
  "--allow-ffi",
  "--allow-run=ip",
  "-o",
  "dist/lguest",
  "tools/ship_entry.ts",
];

if (import.meta.main) {
  const args = [...COMPILE_ARGS];
  const out = await new Deno.Command(Deno.execPath(), { args, cwd: root, stderr: "piped" })
    .output();
  const err = new TextDecoder().decode(out.stderr);
  if (out.success) {
    console.log("compile: built dist/lguest");
    Deno.exit(0);
  }
  if (/denort|download|dns|network|connect/i.test(err)) {
    console.error(
      "compile: deno compile could not download Deno's runtime (denort) on this machine (no network); " +
        "use 'deno task lguest ...' or 'deno task install' instead",
    );
  } else {
    console.error(`compile: deno compile failed: ${err.trim().split("\n").slice(-1)[0]}`);
  }
  Deno.exit(1);
}
