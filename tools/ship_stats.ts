/**
 * The figures of README "Ship it": builds `dist/lguest.js` (`deno task
 * bundle`), then times `run hello` from a checkout (`deno task lguest`,
 * `deno run main.ts`) and from the bundle in an empty folder, interleaved
 * in one run: the median wall time of N spawns each (spawn to exit).
 *
 *   deno run -A tools/ship_stats.ts [N]
 *
 * @module
 */

const root = decodeURIComponent(new URL("../", import.meta.url).pathname);
const deno = Deno.execPath();
const FLAGS = [
  "--allow-read",
  "--allow-write",
  "--allow-ffi",
  "--allow-run=ip",
];
const n = Number(Deno.args[0] ?? 20);

async function run(cmd: string[], cwd: string): Promise<number> {
  const t0 = performance.now();
  const out = await new Deno.Command(cmd[0], { args: cmd.slice(1), cwd, stdout: "piped" })
    .output();
  const ms = performance.now() - t0;
  if (!out.success || !new TextDecoder().decode(out.stdout).includes("Hello")) {
    throw new Error(`${cmd.join(" ")} failed`);
  }
  return ms;
}

const bundle = await new Deno.Command(deno, { args: ["task", "-q", "bundle"], cwd: root }).output();
if (!bundle.success) throw new Error("deno task bundle failed");
const empty = await Deno.makeTempDir({ prefix: "lguest_ship_" });
const js = `${root}dist/lguest.js`;
const cases: [string, string[], string][] = [
  ["deno task lguest run hello", [deno, "task", "-q", "lguest", "run", "hello"], root],
  ["deno run … main.ts run hello", [deno, "run", ...FLAGS, "main.ts", "run", "hello"], root],
  ["deno run … dist/lguest.js run hello (empty folder)", [
    deno,
    "run",
    ...FLAGS,
    js,
    "run",
    "hello",
  ], empty],
];
const times: number[][] = cases.map(() => []);
for (const [, cmd, cwd] of cases) await run(cmd, cwd); // warm the caches
for (let i = 0; i < n; i++) {
  for (let c = 0; c < cases.length; c++) times[c].push(await run(cases[c][1], cases[c][2]));
}
await Deno.remove(empty, { recursive: true });
const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(`dist/lguest.js: ${(await Deno.stat(js)).size} bytes`);
for (let c = 0; c < cases.length; c++) {
  console.log(`${median(times[c]).toFixed(0).padStart(5)} ms  ${cases[c][0]} (median of ${n})`);
}
