/**
 * The built-in guests through the real CLI (`lguest run ...`): hello, the
 * shell with piped input (backpressure: large input arrives whole), the
 * test guests that die (exit 126, one line of reason), exit statuses, --timeout, signals
 * and --verbose.
 *
 * @module
 */

import assert from "node:assert/strict";
import { EXIT } from "../launcher/cli.ts";
import {
  type CliResult,
  describe,
  hasStackTrace,
  lines,
  runCli,
  spawnCli,
} from "./helpers/run_cli.ts";

/** Run the shell with piped input. */
function shell(input: string, args: string[] = []): Promise<CliResult> {
  return runCli(["run", ...args, "shell"], { stdin: input });
}

/** Exit EXIT.GUEST_FAILED, exactly one stderr line naming the guest and the reason. */
function assertGuestDied(r: CliResult, guest: string, reason: string): void {
  const why = describe(r);
  assert.equal(r.code, EXIT.GUEST_FAILED, why);
  const err = lines(r.stderr);
  assert.equal(err.length, 1, `expected one stderr line\n${why}`);
  assert.ok(err[0].startsWith(`lguest: ${guest}: `), why);
  assert.ok(err[0].includes(reason), `want '${reason}'\n${why}`);
  assert.ok(!hasStackTrace(r.stdout + r.stderr), `stack trace\n${why}`);
}

// ---- hello ------------------------------------------------------------------

Deno.test("guests: hello prints the greeting and exits 0", async () => {
  const r = await runCli(["run", "hello"]);
  assert.equal(r.code, 0, describe(r));
  assert.match(r.stdout, /^Hello from an lguest guest! I have 32 MiB of RAM\.$/m, describe(r));
  assert.doesNotMatch(r.stdout, /command line/, describe(r));
  assert.equal(r.stderr, "", describe(r));
});

Deno.test("guests: ARGS after -- become the guest's command line", async () => {
  const r = await runCli(["run", "hello", "--", "root=/dev/lgba", "-v", "--quiet"]);
  assert.equal(r.code, 0, describe(r));
  assert.match(r.stdout, /^My command line: root=\/dev\/lgba -v --quiet$/m, describe(r));
  // "-v" after "--" is the guest's, not --verbose.
  assert.equal(r.stderr, "", describe(r));
});

Deno.test("guests: -v shows the layout and the device status bits on stderr", async () => {
  const r = await runCli(["run", "-v", "-m", "16M", "hello"]);
  assert.equal(r.code, 0, describe(r));
  assert.match(r.stdout, /Hello from an lguest guest! I have 16 MiB/, describe(r));
  assert.match(
    r.stderr,
    /^lguest: hello: 16777216 bytes RAM, devices at 0x[0-9a-f]+, top 0x[0-9a-f]+, 2 device\(s\)$/m,
    describe(r),
  );
  // Every guest has the rng (device 0 here) and the console, last.
  assert.match(r.stderr, /^lguest: hello: device 0: rng.*irq 1/m, describe(r));
  assert.match(r.stderr, /^lguest: hello: device 1: console.*irq 2/m, describe(r));
  assert.match(
    r.stderr,
    /^lguest: hello: device 1 \(console.*\) status 0x7 \(ACKNOWLEDGE\|DRIVER\|DRIVER_OK\)$/m,
    describe(r),
  );
  assert.match(r.stderr, /^lguest: hello: powered off$/m, describe(r));
  assert.ok(!hasStackTrace(r.stderr), describe(r));
});

// ---- shell with piped input -------------------------------------------------

Deno.test("guests: shell runs piped commands and powers off", async () => {
  const r = await shell("echo marker\npoweroff\n");
  assert.equal(r.code, 0, describe(r));
  const out = lines(r.stdout);
  assert.ok(out.includes("marker"), describe(r));
  assert.ok(out.includes("lguest$ echo marker"), describe(r)); // the guest's echo
  assert.equal(out.at(-1), "Powering off.", describe(r));
  assert.equal(r.stderr, "", describe(r));
});

Deno.test("guests: shell help, devices, mem and uptime", async () => {
  const r = await shell("help\ndevices\nmem\nuptime\nfrob\npoweroff\n");
  assert.equal(r.code, 0, describe(r));
  const out = r.stdout;
  for (const cmd of ["help", "echo ARGS...", "devices", "mem", "uptime", "poweroff"]) {
    assert.match(out, new RegExp(`^  ${cmd.replace(".", "\\.")}\\s+\\S`, "m"), `help: ${cmd}`);
  }
  // devices: the rng (index 0, IRQ 1; the shell links no rng driver: ACKNOWLEDGE only) and
  // the console (last, IRQ 2) with its driver.
  assert.match(out, /^idx type\s+features status irq pfn\s+driver$/m, describe(r));
  assert.match(out, /^\s*0 rng\s+0x[0-9a-f]{4}\s+0x0001\s+1 0x[0-9a-f]+ -$/m, describe(r));
  assert.match(out, /^\s*1 console\s+0x[0-9a-f]{4}\s+0x0007\s+2 0x[0-9a-f]+ \S+$/m, describe(r));
  // mem: RAM size and layout.
  assert.match(out, /^RAM:\s+32768 KiB \[0x00000000, 0x02000000\)$/m, describe(r));
  assert.match(out, /^heap:\s+\[0x[0-9a-f]+, 0x[0-9a-f]+\) used \d+ KiB, free \d+ KiB$/m);
  assert.match(out, /^devices: descriptor page 0x02000000$/m, describe(r));
  // uptime: a small, positive time.
  const up = /^up (\d+)\.(\d{3}) s$/m.exec(out);
  assert.ok(up, describe(r));
  assert.ok(Number(up[1]) < 30, describe(r));
  assert.match(out, /^unknown command: frob \(try help\)$/m, describe(r));
  assert.equal(r.stderr, "", describe(r));
});

Deno.test("guests: shell takes \\n, \\r and \\r\\n as Enter", async () => {
  const r = await shell("echo one\r\necho two\recho three\npoweroff\r\n");
  assert.equal(r.code, 0, describe(r));
  const results = lines(r.stdout).filter((l) => !l.startsWith("lguest"));
  assert.deepEqual(results, ["one", "two", "three", "Powering off."], describe(r));
});

Deno.test("guests: piped input larger than 64 KiB arrives whole and in order", async () => {
  const N = 2000;
  const pad = "x".repeat(48);
  const want: string[] = [];
  let input = "";
  for (let i = 0; i < N; i++) {
    const line = `line${String(i).padStart(4, "0")} ${pad}`;
    want.push(line);
    input += `echo ${line}\n`;
  }
  input += "poweroff\n";
  assert.ok(input.length > 64 * 1024, `input is ${input.length} bytes`);
  const r = await shell(input);
  assert.equal(r.code, 0, describe(r));
  assert.equal(r.stderr, "", describe(r));
  const got = lines(r.stdout).filter((l) => l.startsWith("line"));
  assert.equal(got.length, N, `echoed ${got.length} of ${N} lines`);
  assert.deepEqual(got, want);
  // And every command line was seen whole by the shell, in order.
  const typed = lines(r.stdout).filter((l) => l.startsWith("lguest$ echo "));
  assert.deepEqual(typed, want.map((l) => `lguest$ echo ${l}`));
  assert.equal(lines(r.stdout).at(-1), "Powering off.");
});

Deno.test("guests: input without poweroff, stdin left open, and --timeout 2 exits 124", async () => {
  // (At end of input the shell powers off: tests/console_eof_test.ts.)
  const p = spawnCli(["run", "--timeout", "2", "shell"], { stdin: "piped" });
  await p.write("echo still here\n");
  const r = await p.result();
  assert.equal(r.code, EXIT.TIMEOUT, describe(r));
  assert.ok(lines(r.stdout).includes("still here"), describe(r));
  const err = lines(r.stderr).filter((l) => l !== "");
  assert.equal(err.length, 1, describe(r));
  assert.match(err[0], /^lguest: .*timed out after 2 s/, describe(r));
  assert.ok(r.ms >= 1900 && r.ms < 10_000, describe(r));
  assert.ok(!hasStackTrace(r.stderr), describe(r));
});

// ---- guests that die --------------------------------------------------------

Deno.test("guests: test-badmem (store outside memory) exits 126 with one line", async () => {
  const r = await runCli(["run", "test-badmem"]);
  assertGuestDied(r, "test-badmem", "memory access out of bounds");
});

Deno.test("guests: test-baddma (bad DMA section) exits 126 with one line", async () => {
  const r = await runCli(["run", "test-baddma"]);
  assertGuestDied(r, "test-baddma", "bad DMA section");
});

Deno.test("guests: test-badcall (unknown hypercall) exits 126 with one line", async () => {
  const r = await runCli(["run", "test-badcall"]);
  assertGuestDied(r, "test-badcall", "Bad hypercall 11");
});

Deno.test("guests: test-crash (CRASH hypercall) exits 126 with one line", async () => {
  const r = await runCli(["run", "test-crash"]);
  assertGuestDied(r, "test-crash", "CRASH: oops: test crash");
});

// ---- exit statuses -----------------------------------------------------------

Deno.test("guests: a guest's exit status 0..123 is the exit code, silently", async () => {
  const cases = ["0", "1", "3", "42", "123", "main 7", "main 0", "256"];
  const want = [0, 1, 3, 42, 123, 7, 0, 0];
  const results = await Promise.all(
    cases.map((c) => runCli(["run", "test-exit", "--", ...c.split(" ")])),
  );
  results.forEach((r, i) => {
    assert.equal(r.code, want[i], `${cases[i]}: ${describe(r)}`);
    assert.equal(r.stderr, "", `${cases[i]}: ${describe(r)}`);
  });
});

Deno.test("guests: a guest's exit status 124..255 exits 123 and names the status", async () => {
  for (const status of [124, 125, 126, 200, 255]) {
    const r = await runCli(["run", "test-exit", "--", String(status)]);
    assert.equal(r.code, EXIT.STATUS_HIGH, describe(r));
    const err = lines(r.stderr);
    assert.equal(err.length, 1, describe(r));
    assert.match(err[0], new RegExp(`^lguest: test-exit: exited with status ${status} \\(`));
  }
});

Deno.test("guests: -v tells the exit status", async () => {
  const r = await runCli(["run", "-v", "test-exit", "--", "5"]);
  assert.equal(r.code, 5, describe(r));
  assert.match(r.stderr, /^lguest: test-exit: exited with status 5$/m, describe(r));
});

// ---- a guest that spins -----------------------------------------------------

Deno.test("guests: test-spin with --timeout 1 exits 124 within seconds", async () => {
  const r = await runCli(["run", "--timeout", "1", "test-spin"], { killAfterMs: 15_000 });
  assert.equal(r.code, EXIT.TIMEOUT, describe(r));
  assert.match(r.stdout, /spinning/, describe(r));
  const err = lines(r.stderr).filter((l) => l !== "");
  assert.equal(err.length, 1, describe(r));
  assert.match(err[0], /^lguest: .*timed out after 1 s/, describe(r));
  assert.ok(r.ms < 5_000, `took ${Math.round(r.ms)} ms\n${describe(r)}`);
  assert.ok(!hasStackTrace(r.stderr), describe(r));
});

// Without a terminal or --timeout there is no watchdog thread: SIGTERM,
// SIGINT and SIGHUP keep their default action and end the process at once,
// which a shell sees as status 128+N (launcher/supervisor.ts).
Deno.test("guests: test-spin ended by SIGTERM exits 143", async () => {
  const p = spawnCli(["run", "test-spin"], { killAfterMs: 15_000 });
  await p.waitFor("spinning");
  const sent = performance.now();
  p.kill("SIGTERM");
  const r = await p.result();
  assert.equal(r.code, 143, describe(r));
  assert.ok(performance.now() - sent < 5_000, describe(r));
  assert.ok(!hasStackTrace(r.stderr), describe(r));
});

Deno.test("guests: test-spin with --timeout ended by SIGTERM exits 143 with a message", async () => {
  const p = spawnCli(["run", "--timeout", "30", "test-spin"], { killAfterMs: 15_000 });
  await p.waitFor("spinning");
  p.kill("SIGTERM");
  const r = await p.result();
  assert.equal(r.code, 143, describe(r));
  assert.equal(r.signal, null, `ended by exit(143), not by the signal\n${describe(r)}`);
  assert.match(r.stderr, /^lguest: .*SIGTERM/m, describe(r));
  assert.ok(!hasStackTrace(r.stderr), describe(r));
});

Deno.test("guests: a waiting shell ended by SIGTERM or SIGINT exits 128+N", async () => {
  for (const [signal, code] of [["SIGTERM", 143], ["SIGINT", 130]] as const) {
    const p = spawnCli(["run", "shell"], { stdin: "piped", killAfterMs: 15_000 });
    await p.waitFor("lguest$ ");
    p.kill(signal);
    const r = await p.result();
    assert.equal(r.code, code, describe(r));
    assert.ok(!hasStackTrace(r.stderr), describe(r));
  }
});
