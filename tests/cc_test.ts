/**
 * `lguest cc`: a user's own C program (stdio, malloc, files, setjmp)
 * builds with the documented command and runs as a guest; a compile error
 * and missing tools are one clear outcome each (exit 125).
 *
 * @module
 */

import assert from "node:assert/strict";
import { EXIT } from "../launcher/cli.ts";
import {
  describe,
  hasDevFull,
  LGUEST_CMD,
  lines,
  runCli,
  runCliAllowAll,
  shellQuote,
  spawnCli,
  spawnProcess,
} from "./helpers/run_cli.ts";
import { inTempDir } from "./helpers/resources.ts";
import { skipWithoutToolchain } from "./helpers/toolchain.ts";

const PROGRAM = `#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static jmp_buf back;

static void fail(const char *why) { printf("failing: %s\\n", why); longjmp(back, 1); }

int main(int argc, char **argv)
{
	const char *path = argc > 1 ? argv[1] : "/notes.txt";
	int n = argc > 2 ? atoi(argv[2]) : 100;
	char *buf = malloc(1 << 20);
	FILE *f;
	size_t got;

	if (setjmp(back))
		return 4;
	if (!buf)
		fail("malloc");
	f = fopen(path, "w");
	if (!f)
		fail("fopen");
	for (int i = 0; i < n; i++)
		fprintf(f, "line %d of %s\\n", i, argv[0]);
	fclose(f);
	f = fopen(path, "r");
	got = fread(buf, 1, 1 << 20, f);
	fclose(f);
	buf[got] = 0;
	printf("%s: %zu bytes, %s", path, got, strstr(buf, "line 99 of") ? "line 99 there\\n" : "no line 99\\n");
	free(buf);
	return 0;
}
`;

Deno.test("cc: a user's C program (stdio, malloc, files, setjmp) builds and runs", async () => {
  if (await skipWithoutToolchain()) return;
  await inTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/notes.c`, PROGRAM);
    const cc = await runCli([
      "cc",
      "-O2",
      "-Wall",
      "-Werror",
      "-o",
      `${dir}/notes.wasm`,
      `${dir}/notes.c`,
    ]);
    assert.equal(cc.code, EXIT.OK, describe(cc));
    const img = `${dir}/disk.img`;
    assert.equal((await runCli(["disk", "mkfs", img, "8M"])).code, EXIT.OK);
    const r = await runCli(["run", "--block", img, `${dir}/notes.wasm`, "--", "/n.txt", "200"]);
    assert.equal(r.code, EXIT.OK, describe(r));
    assert.deepEqual(lines(r.stdout), ["/n.txt: 3490 bytes, line 99 there"], describe(r));
    const get = await runCli(["disk", "get", img, "/n.txt", `${dir}/n.txt`]);
    assert.equal(get.code, EXIT.OK, describe(get));
    const text = await Deno.readTextFile(`${dir}/n.txt`);
    assert.equal(text.split("\n")[199], "line 199 of notes");
    // Without a disk the fopen fails and the longjmp path returns 4.
    const nodisk = await runCli(["run", `${dir}/notes.wasm`]);
    assert.equal(nodisk.code, 4, describe(nodisk));
    assert.match(nodisk.stdout, /^failing: fopen$/m, describe(nodisk));
  });
});

Deno.test("cc: an output that cannot be written (-o /dev/full) is one line, not LLVM's crash dump", async () => {
  if (await skipWithoutToolchain()) return;
  if (!hasDevFull()) return console.log("skipped: no /dev/full");
  await inTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/ok.c`, "int main(void) { return 0; }\n");
    // With -A (clang, its child, opens /dev/full itself).
    const { code, stderr: err } = await runCliAllowAll(["cc", "-o", "/dev/full", `${dir}/ok.c`]);
    assert.equal(code, EXIT.USAGE, err);
    assert.equal(
      err,
      "lguest: cc: -o /dev/full: cannot write it (No space left on device); nothing was built\n",
    );
  });
});

Deno.test("cc: a compile error shows clang's diagnostics and exits 125", async () => {
  if (await skipWithoutToolchain()) return;
  await inTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/bad.c`, "int main(void) { return undefined_thing; }\n");
    const r = await runCli(["cc", "-o", `${dir}/bad.wasm`, `${dir}/bad.c`]);
    assert.equal(r.code, EXIT.USAGE, describe(r));
    assert.match(r.stderr, /undefined_thing/, describe(r));
    assert.match(r.stderr, /^lguest: cc: clang failed/m, describe(r));
  });
});

Deno.test("cc: no input file is one line (not clang's 'undefined symbol: main')", async () => {
  for (const args of [["-o", "x.wasm"], ["-O2", "-Wall"], ["-x", "c"]]) {
    const r = await runCli(["cc", ...args]);
    assert.equal(r.code, EXIT.USAGE, describe(r));
    assert.equal(
      r.stderr,
      "lguest: cc: no input files (name the program's .c files)\n",
      describe(r),
    );
  }
});

Deno.test("cc: a program on standard input (-x c -) builds and runs; -x LANG never reaches cc's own inputs", async () => {
  if (await skipWithoutToolchain()) return;
  await inTempDir(async (dir) => {
    // Was: the user's -x c compiled the appended libposix.a as C (~90 lines of errors), and
    // clang's stdin was /dev/null (with -x none after it: "undefined symbol: main").
    for (
      const [args, src, status] of [
        [["-x", "c", "-"], "int main(void) { return 5; }\n", 5],
        [["-x", "c", "-", "-x", "none"], "int main(void) { return 6; }\n", 6],
        [["-x", "c++", "-"], 'extern "C" int main() { return 7; }\n', 7],
      ] as const
    ) {
      const img = `${dir}/s${status}.wasm`;
      const cc = await runCli(["cc", "-O2", "-o", img, ...args], { stdin: src });
      assert.equal(cc.code, EXIT.OK, describe(cc));
      assert.equal(cc.stderr, "", describe(cc));
      const r = await runCli(["run", img]);
      assert.equal(r.code, status, describe(r));
    }
  });
});

Deno.test("cc: -o naming an input (prog.c) is refused in one line; the source is kept", async () => {
  if (await skipWithoutToolchain()) return;
  await inTempDir(async (dir) => {
    const src = `${dir}/p.c`, text = "int main(void) { return 0; }\n";
    await Deno.writeTextFile(src, text);
    for (const args of [["-o", src, src], [`-o${src}`, src], ["-O2", src, "-o", `${dir}/./p.c`]]) {
      const r = await runCli(["cc", ...args]);
      assert.equal(r.code, EXIT.USAGE, describe(r));
      assert.match(
        r.stderr,
        /^lguest: cc: -o \S+p\.c is the input \S+p\.c: it would be overwritten\n$/,
      );
      assert.equal(await Deno.readTextFile(src), text);
    }
  });
});

Deno.test("cc: a wasm-opt on PATH is never run: the image is what wasm-ld made, binaryen or not", async () => {
  // clang runs the first wasm-opt it finds after linking with any -O (binaryen installed):
  // its default features refused wasi-libc's bulk-memory code, so every -O build failed.
  if (await skipWithoutToolchain()) return;
  await inTempDir(async (dir) => {
    await Deno.mkdir(`${dir}/bin`);
    await Deno.writeTextFile(`${dir}/bin/wasm-opt`, "#!/bin/sh\necho wasm-opt ran >&2\nexit 3\n", {
      mode: 0o755,
    });
    await Deno.writeTextFile(
      `${dir}/p.c`,
      '#include <stdio.h>\nint main(void) { puts("built"); }\n',
    );
    const env = { PATH: `${dir}/bin:${Deno.env.get("PATH") ?? "/usr/bin:/bin"}` };
    const cc = await runCli(["cc", "-O2", "-o", `${dir}/p.wasm`, `${dir}/p.c`], { env });
    assert.equal(cc.code, EXIT.OK, describe(cc));
    assert.doesNotMatch(cc.stderr, /wasm-opt ran/, describe(cc));
    const r = await runCli(["run", `${dir}/p.wasm`]);
    assert.deepEqual([r.code, lines(r.stdout)], [EXIT.OK, ["built"]], describe(r));
    // The same with TMPDIR mounted noexec (clang skips a no-op it may not execute there), in a
    // mount namespace of its own: root and unshare(1) only.
    if (Deno.uid() !== 0) {
      console.log("  cc_test: skipping the noexec TMPDIR case: not root (mount)");
      return;
    }
    const tmp = `${dir}/noexec`;
    await Deno.mkdir(tmp);
    const line = [...LGUEST_CMD, "cc", "-O2", "-o", `${dir}/q.wasm`, `${dir}/p.c`]
      .map(shellQuote).join(" ");
    const nx = await spawnProcess("unshare", [
      "-m",
      "sh",
      "-c",
      `mount -t tmpfs -o noexec tmpfs ${shellQuote(tmp)} && TMPDIR=${shellQuote(tmp)} exec ${line}`,
    ], { env }).result();
    assert.equal(nx.code, EXIT.OK, describe(nx));
    assert.doesNotMatch(nx.stderr, /wasm-opt ran/, describe(nx));
  });
});

Deno.test("cc: without clang it says in one line what to install", async () => {
  const r = await runCli(["cc", "-o", "x.wasm", "x.c"], { env: { PATH: "/nonexistent" } });
  assert.equal(r.code, EXIT.USAGE, describe(r));
  // Deno itself notes that the --allow-run names do not resolve ("Info ..."): not ours.
  const err = lines(r.stderr).filter((l) => !l.startsWith("Info "));
  assert.equal(err.length, 1, describe(r));
  assert.match(
    err[0],
    /^lguest: cc: clang.* not found: apt-get install clang lld wasi-libc/,
    describe(r),
  );
});

Deno.test("cc: a program that names environ gets its argv and the environment both", async () => {
  if (await skipWithoutToolchain()) return;
  await inTempDir(async (dir) => {
    // Naming `environ` makes wasi-libc fill it in a constructor, before main's argv.
    await Deno.writeTextFile(
      `${dir}/env.c`,
      `#include <stdio.h>
extern char **environ;
int main(int argc, char **argv)
{
	printf("argc=%d", argc);
	for (int i = 1; i < argc; i++)
		printf(" %s", argv[i]);
	for (char **e = environ; *e; e++)
		printf(" [%s]", *e);
	printf("\\n");
	return 0;
}
`,
    );
    const cc = await runCli(["cc", "-o", `${dir}/env.wasm`, `${dir}/env.c`]);
    assert.equal(cc.code, EXIT.OK, describe(cc));
    const r = await runCli(["run", `${dir}/env.wasm`, "--", "FOO=bar", "a", "b c"]);
    assert.equal(r.code, EXIT.OK, describe(r));
    assert.deepEqual(lines(r.stdout), ["argc=3 a b c [FOO=bar] [HOME=/]"], describe(r));
  });
});

Deno.test("cc: a program with its own memcpy still gets the layer's memset", async () => {
  if (await skipWithoutToolchain()) return;
  await inTempDir(async (dir) => {
    // libposix.a has memcpy, memmove and memset in one member each: one member with all three
    // would clash with the program's own memcpy as soon as memset pulled it in.
    await Deno.writeTextFile(
      `${dir}/own.c`,
      `#include <stdio.h>
#include <string.h>
static int mine;
void *memcpy(void *restrict d, const void *restrict s, size_t n)
{
	char *a = d;
	const char *b = s;
	mine++;
	while (n--)
		*a++ = *b++;
	return d;
}
int main(void)
{
	char x[32], y[32] = "copied";
	void *(*volatile set)(void *, int, size_t) = memset;
	void *(*volatile copy)(void *, const void *, size_t) = memcpy;
	set(x, 'z', sizeof x);
	copy(x, y, 7);
	printf("%s %c mine=%d\\n", x, x[31], mine);
	return 0;
}
`,
    );
    const cc = await runCli(["cc", "-o", `${dir}/own.wasm`, `${dir}/own.c`]);
    assert.equal(cc.code, EXIT.OK, describe(cc));
    const r = await runCli(["run", `${dir}/own.wasm`]);
    assert.equal(r.code, EXIT.OK, describe(r));
    assert.deepEqual(lines(r.stdout), ["copied z mine=1"], describe(r));
  });
});

Deno.test("cc: -o a folder or a FIFO is refused in one line, before clang (was clang's lines / a hang)", async () => {
  await inTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/p.c`, "int main(void) { return 0; }\n");
    await Deno.mkdir(`${dir}/out`);
    await new Deno.Command("mkfifo", { args: [`${dir}/fifo`] }).output();
    for (const [out, kind] of [["out", "a directory"], ["fifo", "a FIFO"]]) {
      for (
        const args of [["-o", `${dir}/${out}`, `${dir}/p.c`], [
          "-c",
          `-o${dir}/${out}`,
          `${dir}/p.c`,
        ]]
      ) {
        const r = await runCli(["cc", ...args], { killAfterMs: 20_000 });
        assert.equal(r.code, EXIT.USAGE, describe(r));
        assert.match(
          r.stderr,
          new RegExp(`^lguest: cc: -o \\S+/${out} is ${kind}: name a file for the output\\n$`),
        );
      }
    }
  });
});

/** Pids of the processes whose command line holds `needle` (ps(1): the test task cannot read /proc). */
async function processesWith(needle: string): Promise<number[]> {
  const out = await new Deno.Command("ps", { args: ["-eo", "pid=,args="], stdout: "piped" })
    .output();
  return new TextDecoder().decode(out.stdout).split("\n").filter((l) => l.includes(needle))
    .map((l) => Number(l.trim().split(/\s+/)[0]));
}

Deno.test("cc: a signal that ends lguest ends clang too (none left behind)", async () => {
  if (await skipWithoutToolchain()) return;
  await inTempDir(async (dir) => {
    // An input that is a FIFO nobody writes: clang waits on it until it is stopped.
    const input = `${dir}/waits.c`;
    await new Deno.Command("mkfifo", { args: [input] }).output();
    const p = spawnCli(["cc", "-c", "-o", `${dir}/waits.o`, input], { killAfterMs: 30_000 });
    try {
      // clang started (its command line names the FIFO), not lguest's deno process
      const clang = async () => (await processesWith(input)).filter((pid) => pid !== p.child.pid);
      for (let i = 0; i < 200 && (await clang()).length === 0; i++) {
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.ok((await clang()).length > 0, "clang did not start");
      p.child.kill("SIGTERM");
      // lguest's own end (a clang left behind would hold its output pipes open)
      const status = await p.child.status;
      assert.equal(status.code, EXIT.SIGNAL_BASE + 15);
      for (let i = 0; i < 100 && (await clang()).length > 0; i++) {
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.deepEqual(await clang(), [], "clang left behind");
      const r = await p.result();
      assert.match(r.stderr, /lguest: cc: stopped by a signal \(clang with it\)\n$/);
    } finally {
      for (const pid of await processesWith(input)) {
        try {
          Deno.kill(pid, "SIGKILL");
        } catch { /* gone */ }
      }
    }
  });
});
