/**
 * `deno task compile`: build the single self-contained binary `dist/lguest`
 * with the built-in guests embedded: they are in the module graph
 * (`guests/images/index.ts` and its per-image modules, statically
 * analysable dynamic imports, which `deno compile` includes), exactly as in
 * `deno task bundle`, and the watchdog Worker runs from source text
 * (`sys/worker.ts`), so no file needs `--include`. `deno compile` downloads Deno's
 * runtime (denort) the first time; where that download is impossible we
 * say so in one line and exit 1.
 *
 * @module
 */

const root = new URL("../", import.meta.url).pathname;
const args = [
  "compile",
  "--allow-read",
  "--allow-write",
  "--allow-ffi",
  "--allow-run=ip",
  "-o",
  "dist/lguest",
  "main.ts",
];
const out = await new Deno.Command(Deno.execPath(), { args, cwd: root, stderr: "piped" }).output();
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
