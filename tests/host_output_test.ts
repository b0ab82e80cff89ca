/**
 * The launcher's own output when the host's stdout or stderr cannot take
 * it (sys/stdio.ts): a stderr that fails (`2>/dev/full`) drops lines and
 * changes nothing else; a stdout that fails ends the command with one line
 * and a documented code (README "Exit codes"); and the guests of a
 * `--config` run never share a line of stdout.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  hasDevFull,
  hasStackTrace,
  LGUEST_CMD,
  ROOT_PATH,
  runCli,
  runCliAllowAll,
  sleep,
  spawnCli,
} from "./helpers/run_cli.ts";
import { inTempDir, writeConfig } from "./helpers/resources.ts";
import { EXIT } from "../launcher/exit.ts";
import { MAX_HELD_LINE, prefixBackend } from "../launcher/runner.ts";

const FULL = "/dev/full";
// Asked of the shell (hasDevFull): Deno.statSync threw NotCapable under the test task's
// permissions, so `deno task test` skipped every test below that needs /dev/full.
const hasFull = hasDevFull();
const why = `${FULL} is missing (these tests need a device whose writes fail with ENOSPC)`;
if (!hasFull) console.log(`host_output_test: ${why}; its /dev/full tests are skipped`);

/** `lguest ARGS` under bash with `redirect` (e.g. `2>/dev/full`); stdout and stderr piped unless redirected. */
async function lguestWith(args: string[], redirect: string, killMs = 60_000) {
  const child = new Deno.Command("bash", {
    args: ["-c", `"$@" ${redirect}`, "bash", ...LGUEST_CMD, ...args],
    cwd: ROOT_PATH,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const kill = setTimeout(() => child.kill("SIGKILL"), killMs);
  const r = await child.output();
  clearTimeout(kill);
  const dec = new TextDecoder();
  return { code: r.code, stdout: dec.decode(r.stdout), stderr: dec.decode(r.stderr) };
}

/**
 * `lguest ARGS` in a process whose stdout pipe is non-blocking (the flag is on the pipe, as a
 * parent that set it for itself leaves it for its children), its wrapper written in DIR. Its
 * output is not read for 1.5 s, so that a large output fills the 64 KiB pipe and a write finds
 * it full.
 */
async function lguestNonBlocking(dir: string, args: string[]) {
  const wrapper = `${dir}/nonblock.ts`;
  const url = (p: string) => JSON.stringify(new URL(p, `file://${ROOT_PATH}/`).href);
  await Deno.writeTextFile(
    wrapper,
    `import { libc, O_NONBLOCK } from ${url("sys/libc.ts")};
const F_GETFL = 3, F_SETFL = 4;
libc().fcntl(1, F_SETFL, libc().fcntl(1, F_GETFL, 0) | O_NONBLOCK);
const { main } = await import(${url("launcher/cli.ts")});
Deno.exit(await main(Deno.args));
`,
  );
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-write", "--allow-ffi", wrapper, ...args],
    cwd: ROOT_PATH,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const kill = setTimeout(() => child.kill("SIGKILL"), 60_000);
  await new Promise((r) => setTimeout(r, 1500));
  const r = await child.output();
  clearTimeout(kill);
  const dec = new TextDecoder();
  return { code: r.code, stdout: dec.decode(r.stdout), stderr: dec.decode(r.stderr) };
}

Deno.test({
  name:
    "stderr unwritable (2>/dev/full): a hint, a kill line, the timeout line are dropped; guests and exit codes stay",
  ignore: !hasFull,
  async fn() {
    // The hint (no disk for /x) was written inside the hypercall: its ENOSPC killed the guest
    // ("internal error in hypercall"), then the kill line's killed the launcher (exit 1).
    const rs = await Promise.all([
      lguestWith(
        ["run", "lua", "--", "-e", 'io.open("/x","w") print("out") os.exit(4)'],
        "2>" + FULL,
      ),
      lguestWith(["run", "lua", "--", "-e", "os.exit(200)"], "2>" + FULL),
      lguestWith(["run", "--timeout", "1", "lua", "--", "-e", "while true do end"], "2>" + FULL),
      lguestWith(["disk", "ls", "no-such-image.img"], "2>" + FULL),
      lguestWith(["run", "--no-such-option", "hello"], "2>" + FULL),
    ]);
    const [hint, high, timeout, disk, usage] = rs;
    assert.equal(hint.code, 4, hint.stderr);
    assert.equal(hint.stdout, "out\n");
    assert.equal(high.code, EXIT.STATUS_HIGH);
    assert.equal(timeout.code, EXIT.TIMEOUT);
    assert.equal(disk.code, EXIT.USAGE);
    assert.equal(usage.code, EXIT.USAGE);
    for (const r of rs) assert.equal(r.stderr, "", "stderr went to /dev/full");
  },
});

Deno.test({
  name: "stderr unwritable: a guest's hints do not take down a neighbour (--config)",
  ignore: !hasFull,
  fn: () =>
    inTempDir(async (dir) => {
      const config = await writeConfig(dir, [
        {
          name: "victim",
          image: "lua",
          console: "stdio",
          args: [
            "-e",
            "local t=os.clock() while os.clock()-t < 0.5 do end print('victim done') os.exit(3)",
          ],
        },
        // Hints: no disk for /x (1), and then the same again (dropped as a repeat).
        {
          name: "hinter",
          image: "lua",
          args: ["-e", "io.open('/x','w') io.open('/y','w') print('hinter on')"],
        },
      ]);
      const r = await lguestWith(["run", "--config", config], "2>" + FULL);
      assert.equal(r.code, 3, r.stderr);
      assert.deepEqual(r.stdout.split("\n").sort(), ["", "[hinter] hinter on", "victim done"]);
    }),
});

Deno.test({
  name:
    "stdout unwritable (>/dev/full): a run ends with 126 and one line; --help, guests, --version, disk with 125 and one line, no trace",
  ignore: !hasFull,
  async fn() {
    const rs = await Promise.all([
      lguestWith(["run", "lua", "--", "-e", "for i=1,1000 do print(i) end"], ">" + FULL),
      lguestWith(["--help"], ">" + FULL),
      lguestWith(["run", "--help"], ">" + FULL),
      lguestWith(["guests"], ">" + FULL),
      lguestWith(["guests", "--json"], ">" + FULL),
      lguestWith(["--version"], ">" + FULL),
      lguestWith(["disk", "help"], ">" + FULL),
      lguestWith(["cc", "--help"], ">" + FULL),
    ]);
    const [run, ...rest] = rs;
    assert.equal(run.code, EXIT.GUEST_FAILED, run.stderr);
    assert.match(
      run.stderr,
      /^lguest: lua: stdout write failed \(ENOSPC: No space left on device\): the output from there on is lost\n$/,
    );
    for (const r of rest) {
      assert.equal(r.code, EXIT.USAGE, r.stderr);
      assert.ok(!hasStackTrace(r.stderr), r.stderr);
      assert.match(
        r.stderr,
        /^lguest: stdout: write failed \(ENOSPC: No space left on device\): the output is incomplete\n$/,
      );
    }
  },
});

Deno.test({
  name:
    "stdout unwritable: a guest that ends right after its last write (or whose last [name] line is written as it ends) ends with 126, not 0",
  ignore: !hasFull,
  async fn() {
    // The failed write stopped the run from a timer: the guest's power-off, right after its one
    // write, came first and the run exited 0 with the output lost and nothing said.
    await inTempDir(async (dir) => {
      // No stdio guest: its one line has no newline, so it is written only as the guest ends.
      const config = await writeConfig(dir, [
        { name: "held", image: "lua", args: ["-e", "io.write('x')"] },
      ]);
      const rs = await Promise.all([
        lguestWith(["run", "lua", "--", "-e", "print(42)"], ">" + FULL),
        lguestWith(["run", "lua", "--", "-e", 'print(string.rep("x", 9000))'], ">" + FULL),
        lguestWith(["run", "hello"], ">" + FULL),
        lguestWith(["run", "--config", config], ">" + FULL),
      ]);
      for (const [i, r] of rs.entries()) {
        assert.equal(r.code, EXIT.GUEST_FAILED, `run ${i}: ${r.stderr}`);
        assert.match(
          r.stderr,
          /^lguest: (lua|hello|held): stdout write failed \(ENOSPC: No space left on device\): the output from there on is lost\n$/,
        );
      }
    });
  },
});

Deno.test("--config: a held unfinished line is written when SIGTERM or SIGINT ends the run (143/130)", async () => {
  // Without a terminal or --timeout a signal kept its default action: the process ended at once
  // and each guest's held line (no newline yet) was lost: 0 bytes on stdout.
  await inTempDir(async (dir) => {
    const spin = (g: string) => `print('ready') io.write('held ${g}') io.flush() while true do end`;
    const config = await writeConfig(dir, [
      { name: "a", image: "lua", args: ["-e", spin("a")] },
      { name: "b", image: "lua", args: ["-e", spin("b")] },
    ]);
    for (const [signal, code] of [["SIGTERM", 143], ["SIGINT", 130]] as const) {
      const p = spawnCli(["run", "--config", config, "--json", `${dir}/r.json`], {
        killAfterMs: 60_000,
      });
      await p.waitFor((t) => t.includes("[a] ready\n") && t.includes("[b] ready\n"), 50_000);
      // Each guest's io.write comes just after its 'ready': give both time to make it (a loaded
      // CI run once signalled before guest a had, and its held line was rightly not there).
      await sleep(300);
      p.kill(signal);
      const r = await p.result();
      assert.equal(r.code, code, `${signal}: ${JSON.stringify(r)}`);
      for (const g of ["a", "b"]) assert.match(r.stdout, new RegExp(`^\\[${g}\\] held ${g}$`, "m"));
      assert.equal(r.stdout.split("\n").length, 5, r.stdout);
      assert.match(r.stderr, new RegExp(`^lguest: a: ended by ${signal}$`, "m"));
      const report = JSON.parse(await Deno.readTextFile(`${dir}/r.json`));
      assert.equal(report.exitCode, code);
    }
  });
});

Deno.test({
  name:
    "--config, stdout unwritable: the guest whose write failed is named, one line; its neighbours are 'stopped'",
  ignore: !hasFull,
  async fn() {
    // Before: every running guest got the failure as its own reason: one line a guest, and a guest
    // that had not written a whole line yet reported 'crashed: stdout write failed'.
    await inTempDir(async (dir) => {
      const quiet = "io.write('partial') io.flush() while true do end";
      const config = await writeConfig(dir, [
        { name: "q1", image: "lua", args: ["-e", quiet] },
        { name: "q2", image: "lua", args: ["-e", quiet] },
        { name: "w", image: "hello" },
      ]);
      const r = await lguestWith(
        ["run", "--config", config, "--json", `${dir}/r.json`],
        ">" + FULL,
      );
      assert.equal(r.code, EXIT.GUEST_FAILED, r.stderr);
      assert.match(
        r.stderr,
        /^lguest: w: stdout write failed \(ENOSPC: No space left on device\): the output from there on is lost\n$/,
      );
      const report = JSON.parse(await Deno.readTextFile(`${dir}/r.json`));
      const got = report.guests.map((g: { name: string; outcome: string; reason: string }) =>
        `${g.name} ${g.outcome} ${g.reason.split(" (")[0]}`
      );
      assert.deepEqual(got, [
        "q1 stopped stopped: w: stdout write failed",
        "q2 stopped stopped: w: stdout write failed",
        "w crashed stdout write failed",
      ]);
    });
  },
});

Deno.test({
  name: "--json FILE out of space at the end: one line with the error's name, no '(os error 28)'",
  async fn() {
    if (!hasFull) return console.log(`skipped: ${why}`);
    // With -A: the task's flags refuse /dev/full first.
    const { code, stderr: err } = await runCliAllowAll(["run", "--json", FULL, "hello"]);
    assert.equal(code, EXIT.USAGE, err);
    assert.equal(
      err,
      `lguest: --json ${FULL}: ENOSPC: No space left on device: the report is not written ` +
        "(the run's exit code was 0)\n",
    );
  },
});

Deno.test("--config: two guests' lines never share a line of stdout (each [name] line is written whole)", async () => {
  await inTempDir(async (dir) => {
    // io.write of several pieces: each piece reaches the console as a write of its own.
    const guest = (name: string, text: string) => ({
      name,
      image: "lua",
      args: ["-e", `for i=1,200 do io.write('${text}', '${text.toLowerCase()}', '\\n') end`],
    });
    const config = await writeConfig(dir, [guest("a", "AAAA"), guest("b", "BBBB")]);
    const r = await lguestWith(["run", "--config", config], "");
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.split("\n");
    assert.equal(lines.pop(), "");
    assert.equal(lines.length, 400);
    for (const l of lines) assert.match(l, /^\[a\] AAAAaaaa$|^\[b\] BBBBbbbb$/);
  });
});

Deno.test("prefixBackend: whole lines, a long line cut at MAX_HELD_LINE, the rest at close", () => {
  const got: string[] = [];
  const dec = new TextDecoder();
  const b = prefixBackend("g", (x) => got.push(dec.decode(x)));
  const enc = new TextEncoder();
  b.write(enc.encode("ab"));
  assert.deepEqual(got, []);
  b.write(enc.encode("c\nd"));
  assert.deepEqual(got, ["[g] abc\n"]);
  b.write(enc.encode("x".repeat(MAX_HELD_LINE)));
  assert.deepEqual(got, ["[g] abc\n", `[g] d${"x".repeat(MAX_HELD_LINE - 1)}\n`]);
  b.write(enc.encode("tail"));
  b.close?.();
  assert.deepEqual(got.slice(2), ["[g] xtail\n"]);
  b.close?.();
  assert.equal(got.length, 3);
});

Deno.test("--json FILE that cannot be written at the end (its folder removed during the run): one line, exit 125", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const json = `${dir}/gone/report.json`;
    await Deno.mkdir(`${dir}/gone`);
    const child = new Deno.Command(LGUEST_CMD[0], {
      args: [
        ...LGUEST_CMD.slice(1),
        "run",
        "--json",
        json,
        "lua",
        "--",
        "-e",
        "io.read() os.exit(5)",
      ],
      cwd: ROOT_PATH,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const kill = setTimeout(() => child.kill("SIGKILL"), 60_000);
    // The report's file is made (empty) before the guest runs; the guest then waits for a line.
    for (let i = 0; i < 600; i++) {
      try {
        Deno.statSync(json);
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    await Deno.remove(`${dir}/gone`, { recursive: true });
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode("go\n"));
    await w.close();
    const r = await child.output();
    clearTimeout(kill);
    const err = new TextDecoder().decode(r.stderr);
    assert.equal(r.code, EXIT.USAGE, err);
    assert.equal(
      err,
      `lguest: --json ${json}: no such file or directory: the report is not written ` +
        "(the run's exit code was 5)\n",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the launcher's code writes stderr and stdout only through sys/stdio.ts (console.* throws on a full device, and it catches that)", async () => {
  const found: string[] = [];
  const walk = async (dir: string) => {
    for await (const e of Deno.readDir(`${ROOT_PATH}/${dir}`)) {
      const path = `${dir}/${e.name}`;
      if (e.isDirectory) await walk(path);
      else if (e.name.endsWith(".ts")) {
        if (path === "sys/stdio.ts") continue;
        const text = await Deno.readTextFile(`${ROOT_PATH}/${path}`);
        text.split("\n").forEach((line, i) => {
          // Code, not a doc comment's example.
          if (/^\s*(\*|\/\/)/.test(line)) return;
          if (/\bconsole\.(log|error|warn|info|debug)\(/.test(line)) found.push(`${path}:${i + 1}`);
        });
      }
    }
  };
  for (const dir of ["launcher", "devices", "host", "engines", "sys"]) await walk(dir);
  for (const file of ["main.ts", "mod.ts", "core.ts"]) {
    const text = await Deno.readTextFile(`${ROOT_PATH}/${file}`);
    if (/^(?!\s*(\*|\/\/)).*\bconsole\.(log|error|warn|info|debug)\(/m.test(text)) found.push(file);
  }
  assert.deepEqual(found, []);
});

Deno.test("a non-blocking stdout that is full (a parent set O_NONBLOCK on the pipe) is waited for: no output lost, no 126", async () => {
  await inTempDir(async (dir) => {
    // Its ~109 KB fill the pipe.
    const r = await lguestNonBlocking(dir, [
      "run",
      "lua",
      "--",
      "-e",
      "for i=1,20000 do print(i) end",
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, Array.from({ length: 20000 }, (_, i) => `${i + 1}\n`).join(""));
  });
});

Deno.test("a full non-blocking stdout is waited for by every command, not only the console: disk get IMG F - whole, exit 0", async () => {
  // Before: the wait was the console's own; `disk get IMG F -` (also ls, --help, guests,
  // --version) met EAGAIN, said 'stdout: write failed' and exited 125 with the file cut.
  await inTempDir(async (dir) => {
    const text = Array.from({ length: 40000 }, (_, i) => `${i + 1}\n`).join(""); // ~230 KB
    await Deno.writeTextFile(`${dir}/big.txt`, text);
    const img = `${dir}/d.img`;
    for (
      const args of [["disk", "mkfs", img, "4M"], [
        "disk",
        "put",
        img,
        `${dir}/big.txt`,
        "/big.txt",
      ]]
    ) {
      const r = await runCli(args);
      assert.equal(r.code, 0, r.stderr);
    }
    const r = await lguestNonBlocking(dir, ["disk", "get", img, "/big.txt", "-"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, text);
  });
});

Deno.test("--config: a line of another guest that comes while the stdio guest's prompt is unfinished goes on a line of its own", async () => {
  await inTempDir(async (dir) => {
    const spin = (s: number) => `local t=os.clock() while os.clock()-t < ${s} do end`;
    const config = await writeConfig(dir, [
      { name: "a", image: "lua", args: ["-e", `${spin(0.3)} print('line of a')`] },
      {
        name: "b",
        image: "lua",
        console: "stdio",
        args: ["-e", `io.write('prompt> ') io.stdout:flush() ${spin(2)} print('done')`],
      },
    ]);
    const r = await lguestWith(["run", "--config", config], "");
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.split("\n");
    // Either order (a machine under load may run a first), never one line for both.
    assert.ok(lines.includes("[a] line of a"), r.stdout);
    assert.ok(lines.some((l) => /^prompt> (done)?$/.test(l)), r.stdout);
    assert.ok(r.stdout.endsWith("done\n"), r.stdout);
  });
});
