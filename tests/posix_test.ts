/**
 * The POSIX layer (guests/posix, docs/guest-abi.md §18) through the real
 * CLI: the built-in `lua` and `sqlite3` guests and the `test-posix-files`
 * guest (argv, environment, stdio, malloc, setjmp/longjmp, clocks,
 * randomness, files on an lgfs disk, exit statuses).
 *
 * @module
 */

import assert from "node:assert/strict";
import { EXIT } from "../launcher/cli.ts";
import { describe, lines, runCli, sleep, spawnCli } from "./helpers/run_cli.ts";
import { inTempDir } from "./helpers/resources.ts";

Deno.test("posix: lua -e print(6*7) prints 42", async () => {
  const r = await runCli(["run", "lua", "--", "-e", "print(6*7)"]);
  assert.equal(r.code, EXIT.OK, describe(r));
  assert.equal(r.stdout, "42\n", describe(r));
  assert.equal(r.stderr, "", describe(r));
});

Deno.test("posix: lua writes integers as snprintf's %lld did (its lua_integer2str is the layer's)", async () => {
  // Every digit count, both signs, the extremes, through tostring, .. and print.
  const script =
    `local t = {} for k = 0, 18 do local n = math.tointeger(10 ^ k) t[#t + 1] = tostring(n)
    t[#t + 1] = tostring(-n) t[#t + 1] = (n - 1) .. "" t[#t + 1] = tostring(1 - n) end
    print(table.concat(t, " ")) print(math.mininteger, math.maxinteger, 0, -0, 7 // 2, 2^53 | 0)`;
  const r = await runCli(["run", "lua", "--", "-e", script]);
  assert.equal(r.code, EXIT.OK, describe(r));
  const want: string[] = [];
  for (let k = 0n; k <= 18n; k++) {
    const n = 10n ** k;
    want.push(`${n}`, `${-n}`, `${n - 1n}`, `${1n - n}`);
  }
  assert.equal(
    r.stdout,
    `${want.join(" ")}\n-9223372036854775808\t9223372036854775807\t0\t0\t3\t9007199254740992\n`,
    describe(r),
  );
});

Deno.test("posix: lua's os.exit(3) and a Lua error reach the exit code", async () => {
  const [three, err] = await Promise.all([
    runCli(["run", "lua", "--", "-e", "os.exit(3)"]),
    runCli(["run", "lua", "--", "-e", "error('boom')"]),
  ]);
  assert.equal(three.code, 3, describe(three));
  assert.equal(three.stderr, "", describe(three));
  assert.equal(err.code, 1, describe(err));
  assert.match(err.stdout, /^lua: \(command line\):1: boom$/m, describe(err));
});

Deno.test("posix: lua runs a script from stdin to its end (console EOF), pcall and coroutines", async () => {
  const script = [
    "local ok, e = pcall(error, 'caught')",
    "print(ok, e)",
    "local co = coroutine.wrap(function(a) local b = coroutine.yield(a + 1) return b * 2 end)",
    "print(co(1), co(21))",
    "local t = {} for i = 1, 100000 do t[i] = i end print(#t)",
    "print(string.format('%5.2f', math.pi))",
  ].join("\n");
  const r = await runCli(["run", "lua", "--", "-"], { stdin: script });
  assert.equal(r.code, EXIT.OK, describe(r));
  assert.deepEqual(lines(r.stdout), ["false\tcaught", "2\t42", "100000", " 3.14"], describe(r));
});

Deno.test("posix: piped stdin is not a terminal: lua runs it as a script, sqlite3 prints no prompts", async () => {
  const [lua, sql] = await Promise.all([
    runCli(["run", "lua"], { stdin: "x = 5\nprint(x * 2)\n" }),
    runCli(["run", "sqlite3"], { stdin: "select 6 * 7;\n" }),
    // a failing exit says nothing about files no argument names
    runCli(["run", "sqlite3"], { stdin: "select 1;\n.exit 5\n" }),
    runCli(["run", "lua", "--", "-e", "io.open('/missing') os.exit(2)"]),
  ]);
  assert.equal(lua.code, EXIT.OK, describe(lua));
  assert.equal(lua.stdout, "10\n", describe(lua));
  assert.equal(sql.code, EXIT.OK, describe(sql));
  assert.equal(sql.stdout, "42\n", describe(sql));
});

Deno.test("posix: argv keeps word boundaries, NAME=VALUE words are the environment, status passes", async () => {
  const r = await runCli([
    "run",
    "test-posix-files",
    "--",
    "GREETING=hello world",
    "--",
    "a b",
    "",
    "x=1",
    "exit",
    "7",
  ]);
  assert.equal(r.code, 7, describe(r));
  const out = lines(r.stdout);
  for (
    const want of [
      "argc 6",
      "argv[0] = 'files'",
      "argv[1] = 'a b'",
      "argv[2] = ''",
      "argv[3] = 'x=1'",
      "GREETING=hello world",
      "longjmp came back with 42",
      "memcpy memmove memset: ok",
      "memcmp: ok",
      "malloc 8 MiB: ok",
      "monotonic ok: 1",
      "getentropy: 0",
      "to stderr",
    ]
  ) assert.ok(out.includes(want), `want '${want}'\n${describe(r)}`);
  const wall = Number(/^realtime (\d+)$/m.exec(r.stdout)?.[1]);
  assert.ok(Math.abs(wall - Date.now() / 1000) < 60, describe(r));
});

Deno.test("posix: stdin reads to EOF; without a disk / is empty and read-only", async () => {
  const r = await runCli(["run", "test-posix-files", "--", "stdin", "files"], {
    stdin: "one\ntwo",
  });
  assert.equal(r.code, EXIT.OK, describe(r));
  const out = lines(r.stdout);
  assert.ok(out.includes("stdin: one"), describe(r));
  assert.ok(out.includes("stdin: twostdin: EOF"), describe(r)); // the last line had no newline
  assert.ok(out.includes("mkdir /dir: Read-only file system"), describe(r));
  assert.ok(out.includes("fopen w: Read-only file system"), describe(r));
});

Deno.test("posix: without --block: ENOENT to look up, EROFS to write, and one line on stderr saying what to do", async () => {
  const hint =
    /^lguest: (\S+): (\S+): no disk: run with --block disk\.img \(make one with 'lguest disk mkfs disk\.img 64M'\)$/;
  const hinted = (r: { stderr: string }) => lines(r.stderr).map((l) => hint.exec(l)?.slice(1, 3));
  const [look, write, script, sql, mem, quit, luaExit] = await Promise.all([
    // a look-up that finds nothing in a program that goes on: its own business
    runCli(["run", "lua", "--", "-e", "print((select(2, io.open('/missing'))))"]),
    // a write cannot work without a disk: told at once, once
    runCli([
      "run",
      "lua",
      "--",
      "-e",
      "print((select(2, io.open('/a', 'w')))) print((select(2, io.open('/b', 'w'))))",
    ]),
    // the script is not there and lua fails: told at the exit
    runCli(["run", "lua", "--", "/script.lua"]),
    runCli(["run", "sqlite3", "--", "/data.db"], { stdin: "create table t(x);\n" }),
    // sqlite3 looks for /.sqliterc; an in-memory database needs no disk
    runCli(["run", "sqlite3"], { stdin: "select 6 * 7;\n" }),
    // a failing exit says nothing about files no argument names
    runCli(["run", "sqlite3"], { stdin: "select 1;\n.exit 5\n" }),
    runCli(["run", "lua", "--", "-e", "io.open('/missing') os.exit(2)"]),
  ]);
  assert.equal(look.code, EXIT.OK, describe(look));
  assert.equal(look.stdout, "/missing: No such file or directory\n", describe(look));
  // The hint is lguest's, on its stderr: the program's output (stdout) stays its own.
  assert.equal(write.code, EXIT.OK, describe(write));
  assert.deepEqual(lines(write.stdout), [
    "/a: Read-only file system",
    "/b: Read-only file system",
  ], describe(write));
  assert.equal(
    write.stderr,
    "lguest: lua: /a: no disk: run with --block disk.img (make one with 'lguest disk mkfs disk.img 64M')\n",
    describe(write),
  );
  assert.equal(script.code, 1, describe(script));
  assert.equal(script.stdout, "lua: cannot open /script.lua: No such file or directory\n");
  assert.deepEqual(hinted(script), [["lua", "/script.lua"]], describe(script));
  assert.equal(sql.code, 1, describe(sql));
  assert.deepEqual(hinted(sql), [["sqlite3", "/data.db"]], describe(sql));
  assert.match(sql.stdout, /unable to open database "\/data\.db"/, describe(sql));
  assert.doesNotMatch(sql.stdout, /lguest|no disk/, describe(sql));
  assert.equal(mem.code, EXIT.OK, describe(mem));
  assert.equal(mem.stdout, "42\n", describe(mem));
  assert.equal(quit.code, 5, describe(quit));
  assert.equal(quit.stdout, "1\n", describe(quit));
  assert.equal(luaExit.code, 2, describe(luaExit));
  assert.equal(luaExit.stdout, "", describe(luaExit));
  // "./s.lua" is "/s.lua" (the working directory is /)
  const rel = await runCli(["run", "lua", "--", "./s.lua"]);
  assert.equal(rel.code, 1, describe(rel));
  assert.deepEqual(hinted(rel), [["lua", "/s.lua"]], describe(rel));
  for (const r of [look, mem, quit, luaExit]) assert.equal(r.stderr, "", describe(r));
});

Deno.test("posix: a --block disk of 0 bytes or without lgfs: one line on stderr saying so, not 'no disk'", async () => {
  await inTempDir(async (dir) => {
    await Deno.writeFile(`${dir}/empty.img`, new Uint8Array(0));
    await Deno.writeFile(`${dir}/raw.img`, new Uint8Array(1 << 20));
    const prog = "print((select(2, io.open('/x', 'w'))))";
    const [empty, raw] = await Promise.all([
      runCli(["run", "--block", `${dir}/empty.img`, "lua", "--", "-e", prog]),
      runCli(["run", "--block", `${dir}/raw.img`, "lua", "--", "-e", prog]),
    ]);
    assert.equal(empty.code, EXIT.OK, describe(empty));
    assert.equal(empty.stdout, "/x: Read-only file system\n", describe(empty));
    assert.equal(
      empty.stderr,
      "lguest: lua: disk 0 is empty (0 bytes; make a file system on it with 'lguest disk mkfs IMAGE 64M'); / is empty and read-only\n",
      describe(empty),
    );
    assert.equal(raw.code, EXIT.OK, describe(raw));
    assert.equal(raw.stdout, "/x: Read-only file system\n", describe(raw));
    assert.equal(
      raw.stderr,
      "lguest: lua: disk 0 holds no lgfs file system (make one with 'lguest disk mkfs'); / is empty and read-only\n",
      describe(raw),
    );
  });
});

Deno.test("posix: files, directories, rename, truncate, readdir on an lgfs disk", async () => {
  await inTempDir(async (dir) => {
    const img = `${dir}/disk.img`;
    const mk = await runCli(["disk", "mkfs", img, "8M"]);
    assert.equal(mk.code, EXIT.OK, describe(mk));
    const r = await runCli(["run", "--block", img, "test-posix-files", "--", "files"]);
    assert.equal(r.code, EXIT.OK, describe(r));
    const out = lines(r.stdout);
    for (
      const want of [
        "mkdir /dir: ok",
        "line 1: hello from a file",
        "size 30 regular 1",
        "old name gone: 1",
        "after truncate: 'hello' (5)",
        "fsync: ok",
        "entry b.txt",
        "rmdir non-empty: Directory not empty",
        "unlink: ok",
        "rmdir: ok",
        "link: Operation not permitted",
        "tmpfile reads 'tmp'",
      ]
    ) assert.ok(out.includes(want), `want '${want}'\n${describe(r)}`);
    const ls = await runCli(["disk", "ls", img]);
    assert.equal(ls.code, EXIT.OK, describe(ls));
    assert.doesNotMatch(ls.stdout, /dir|tmp/, describe(ls)); // removed, and tmpfile's file is gone
  });
});

Deno.test("posix: sqlite3 on /data.db: piped SQL, a second run sees it, the host's SQLite reads it", async () => {
  await inTempDir(async (dir) => {
    const img = `${dir}/db.img`;
    assert.equal((await runCli(["disk", "mkfs", img, "16M"])).code, EXIT.OK);
    const sql = "create table t(a integer, b text);\n" +
      "with recursive n(i) as (select 1 union all select i + 1 from n where i < 1000)\n" +
      "insert into t select i, 'row ' || i from n;\n" +
      "create index t_b on t(b);\n" +
      "select count(*), sum(a) from t;\n";
    const first = await runCli(["run", "--block", img, "sqlite3", "--", "/data.db"], {
      stdin: sql,
    });
    assert.equal(first.code, EXIT.OK, describe(first));
    assert.match(first.stdout, /1000\|500500/, describe(first));
    const second = await runCli(["run", "--block", img, "sqlite3", "--", "/data.db"], {
      stdin: "select b from t where a = 777;\npragma integrity_check;\n",
    });
    assert.equal(second.code, EXIT.OK, describe(second));
    assert.match(second.stdout, /row 777/, describe(second));
    assert.match(second.stdout, /\bok\b/, describe(second));
    const out = `${dir}/data.db`;
    const get = await runCli(["disk", "get", img, "/data.db", out]);
    assert.equal(get.code, EXIT.OK, describe(get));
    let host: Deno.CommandOutput;
    try {
      host = await new Deno.Command("sqlite3", {
        args: [out, "pragma integrity_check; select count(*), max(b) from t;"],
        stdout: "piped",
        stderr: "piped",
      }).output();
    } catch {
      console.log("skipped the host check: no sqlite3 on this host (apt-get install sqlite3)");
      return;
    }
    const text = new TextDecoder().decode(host.stdout);
    assert.ok(host.success, new TextDecoder().decode(host.stderr));
    assert.deepEqual(lines(text), ["ok", "1000|row 999"]);
  });
});

Deno.test("posix: lua (setjmp/longjmp as wasm exceptions) stays preemptible: a busy loop ends at --timeout", async () => {
  const r = await runCli([
    "run",
    "--timeout",
    "1",
    "lua",
    "--",
    "-e",
    "while true do pcall(error, 'x') end",
  ], { killAfterMs: 15_000 });
  assert.equal(r.code, EXIT.TIMEOUT, describe(r));
  assert.ok(r.ms < 10_000, describe(r));
});

Deno.test("posix: sqlite3 has no WAL: a database left in WAL mode says 'file is not a database' (README)", async () => {
  await inTempDir(async (dir) => {
    const img = `${dir}/w.img`;
    assert.equal((await runCli(["disk", "mkfs", img, "8M"])).code, EXIT.OK);
    const make = await runCli(["run", "--block", img, "sqlite3", "--", "/w.db"], {
      stdin: "create table a(x); insert into a values (5);\n",
    });
    assert.equal(make.code, EXIT.OK, describe(make));
    const db = `${dir}/w.db`;
    assert.equal((await runCli(["disk", "get", img, "/w.db", db])).code, EXIT.OK);
    const bytes = await Deno.readFile(db);
    bytes[18] = bytes[19] = 2; // the header's WAL mode, as 'pragma journal_mode=wal' leaves it
    await Deno.writeFile(db, bytes);
    assert.equal((await runCli(["disk", "put", "-f", img, db, "/w.db"])).code, EXIT.OK);
    const r = await runCli(["run", "--block", img, "sqlite3", "--", "/w.db"], {
      stdin: "select * from a;\n",
    });
    assert.equal(r.code, 1, describe(r));
    assert.match(r.stdout, /file is not a database/, describe(r));
    bytes[18] = bytes[19] = 1; // journal_mode=delete
    await Deno.writeFile(db, bytes);
    assert.equal((await runCli(["disk", "put", "-f", img, db, "/w.db"])).code, EXIT.OK);
    const ok = await runCli(["run", "--block", img, "sqlite3", "--", "/w.db"], {
      stdin: "select * from a;\n",
    });
    assert.equal(ok.stdout, "5\n", describe(ok));
  });
});

// ---- Namespace calls are durable when they return (guest-abi §15.4) -----------------

/** `lguest disk ARGS` that must succeed. */
async function diskOk(args: string[]): Promise<string> {
  const r = await runCli(["disk", ...args]);
  assert.equal(r.code, EXIT.OK, describe(r));
  return r.stdout;
}

Deno.test("posix: a row sqlite3 committed survives --timeout, SIGTERM and SIGKILL of the launcher (no hot journal left)", async () => {
  await inTempDir(async (dir) => {
    // DELETE journal mode: the commit point is the unlink of the -journal.
    const ends = ["timeout", "SIGTERM", "SIGKILL"] as const;
    await Promise.all(ends.map(async (end, i) => {
      const img = `${dir}/${end}.img`;
      await diskOk(["mkfs", img, "16M"]);
      const make = await runCli(["run", "--block", img, "sqlite3", "--", "/k.db"], {
        stdin: "create table t(x);\n",
      });
      assert.equal(make.code, EXIT.OK, describe(make));
      const p = spawnCli([
        "run",
        ...(end === "timeout" ? ["--timeout", "8"] : []),
        "--block",
        img,
        "sqlite3",
        "--",
        "/k.db",
      ], { stdin: "piped", killAfterMs: 60_000 });
      await p.write(`insert into t values(${i + 1}); select 'ack';\n`);
      await p.waitFor(/^ack$/m, 30_000);
      if (end !== "timeout") p.kill(end);
      const r = await p.result();
      assert.ok(!r.killed, describe(r));
      if (end === "timeout") assert.equal(r.code, EXIT.TIMEOUT, describe(r));
      else assert.equal(r.signal, end, describe(r));
      assert.doesNotMatch(await diskOk(["ls", img]), /k\.db-journal/);
      assert.match(await diskOk(["check", img]), /: consistent: /);
      const read = await runCli(["run", "--block", img, "sqlite3", "--", "/k.db"], {
        stdin: "select * from t; pragma integrity_check;\n",
      });
      assert.equal(read.code, EXIT.OK, describe(read));
      assert.deepEqual(lines(read.stdout), [`${i + 1}`, "ok"], `${end}: ${describe(read)}`);
    }));
  });
});

Deno.test("posix: lua's write-temp-then-rename (and a remove) survive SIGKILL of the launcher: the new name holds all the new bytes", async () => {
  await inTempDir(async (dir) => {
    const img = `${dir}/l.img`;
    await diskOk(["mkfs", img, "16M"]);
    const old = "old contents\n";
    for (const name of ["a.cfg", "b.cfg", "gone.txt"]) {
      await Deno.writeTextFile(`${dir}/${name}`, old);
      await diskOk(["put", img, `${dir}/${name}`, `/${name}`]);
    }
    // a.cfg: written, closed, renamed over. b.cfg: written and flushed
    // but still open (no fsync, no close: lgfs has its size and blocks
    // only in the cache) when renamed over. Then the run waits on stdin.
    const script = [
      'local a = assert(io.open("/a.tmp", "w")) a:write(string.rep("A", 100000)) a:close()',
      'assert(os.rename("/a.tmp", "/a.cfg"))',
      'local b = assert(io.open("/b.tmp", "w")) b:write(string.rep("B", 70000), "end") b:flush()',
      'assert(os.rename("/b.tmp", "/b.cfg"))',
      'assert(os.remove("/gone.txt"))',
      'print("renamed") io.read()',
    ].join("\n");
    const p = spawnCli(["run", "--block", img, "lua", "--", "-e", script], {
      stdin: "piped",
      killAfterMs: 60_000,
    });
    await p.waitFor(/^renamed$/m, 30_000);
    p.kill("SIGKILL");
    const r = await p.result();
    assert.equal(r.signal, "SIGKILL", describe(r));
    assert.ok(!r.killed, describe(r));
    assert.match(await diskOk(["check", img]), /: consistent: 2 files, /);
    const ls = await diskOk(["ls", img]);
    assert.doesNotMatch(ls, /\.tmp|gone\.txt/, ls);
    await diskOk(["get", img, "/a.cfg", `${dir}/a.out`]);
    await diskOk(["get", img, "/b.cfg", `${dir}/b.out`]);
    assert.equal(await Deno.readTextFile(`${dir}/a.out`), "A".repeat(100000));
    assert.equal(await Deno.readTextFile(`${dir}/b.out`), "B".repeat(70000) + "end");
  });
});

Deno.test("posix: abort() crashes saying so (126) and keeps what the program wrote, as a process's abort does", async () => {
  await inTempDir(async (dir) => {
    const img = `${dir}/a.img`;
    const mk = await runCli(["disk", "mkfs", img, "1M"]);
    assert.equal(mk.code, EXIT.OK, describe(mk));
    const r = await runCli(["run", "--block", img, "test-posix-files", "--", "abort"]);
    assert.equal(r.code, EXIT.GUEST_FAILED, describe(r));
    assert.equal(r.stderr, "lguest: test-posix-files: CRASH: abort() called\n", describe(r));
    // written, never closed: the abort committed its size
    const get = await runCli(["disk", "get", img, "/aborted.txt", "-"]);
    assert.equal(get.code, EXIT.OK, describe(get));
    assert.equal(get.stdout, "kept\n", describe(get));
  });
});

Deno.test("posix: a file that grows by write() alone is committed every 5 s: a SIGKILL loses only its last seconds", async () => {
  await inTempDir(async (dir) => {
    const img = `${dir}/g.img`;
    const mk = await runCli(["disk", "mkfs", img, "1M"]);
    assert.equal(mk.code, EXIT.OK, describe(mk));
    // A line every 100 ms, never closed or synced; killed after 7 s of it.
    const p = spawnCli(["run", "--block", img, "test-posix-files", "--", "grow"], {
      killAfterMs: 60_000,
    });
    await p.waitFor(/^grow 70$/m, 40_000);
    p.kill("SIGKILL");
    const r = await p.result();
    assert.equal(r.signal, "SIGKILL", describe(r));
    const get = await runCli(["disk", "get", img, "/grow.txt", "-"]);
    assert.equal(get.code, EXIT.OK, describe(get));
    const got = lines(get.stdout);
    // Committed at the first write 5 s after the mount (line ~50): a whole prefix of the lines.
    assert.ok(got.length >= 20, `${got.length} lines kept\n${describe(get)}`);
    got.forEach((l, i) => assert.equal(l, `line ${String(i + 1).padStart(6, "0")}`));
    assert.ok(get.stdout.endsWith("\n"), describe(get));
  });
});

Deno.test("posix: what a program wrote and flushed is committed while it waits (sleep, console input): a SIGKILL after the wait keeps it all; no commit while nothing is pending", async () => {
  await inTempDir(async (dir) => {
    const enough = "important\n".repeat(1000);
    const lines100 = Array.from(
      { length: 100 },
      (_, i) => `line ${String(i + 1).padStart(6, "0")}\n`,
    ).join("");
    // C: 100 lines written and flushed, never closed, then sleep(1) forever.
    // Lua: written and flushed, then waiting for a line that never comes.
    const shapes = [
      {
        img: `${dir}/c.img`,
        file: "/idle.txt",
        want: lines100,
        args: ["test-posix-files", "--", "idle"],
        marker: /^idle$/m,
      },
      {
        img: `${dir}/lua.img`,
        file: "/notes.txt",
        want: enough,
        args: [
          "lua",
          "--",
          "-e",
          [
            'local f = assert(io.open("/notes.txt", "w"))',
            'f:write(string.rep("important\\n", 1000)) f:flush()',
            'print("flushed") io.flush() io.read("l")',
          ].join(" "),
        ],
        marker: /^flushed$/m,
      },
    ];
    await Promise.all(shapes.map(async (s) => {
      await diskOk(["mkfs", s.img, "4M"]);
      // nolock: the test reads the disk while the run has it.
      const p = spawnCli(["run", "--block", `${s.img},nolock`, ...s.args], {
        stdin: "piped",
        killAfterMs: 90_000,
      });
      await p.waitFor(s.marker, 30_000);
      const t0 = performance.now();
      let got = "";
      while (performance.now() - t0 < 30_000) {
        const r = await runCli(["disk", "get", s.img, s.file, "-"]);
        if (r.code === EXIT.OK && r.stdout === s.want) {
          got = r.stdout;
          break;
        }
        await sleep(300);
      }
      const waited = (performance.now() - t0) / 1000;
      console.log(`  ${s.file}: committed ${waited.toFixed(1)} s after the program went idle`);
      assert.equal(got.length, s.want.length, `${s.file} not committed within 30 s of idling`);
      // Nothing pending any more: the waits that follow write nothing.
      const before = (await Deno.stat(s.img)).mtime?.getTime();
      await sleep(2500);
      assert.equal(
        (await Deno.stat(s.img)).mtime?.getTime(),
        before,
        `${s.img} written while idle`,
      );
      p.kill("SIGKILL");
      const r = await p.result();
      assert.equal(r.signal, "SIGKILL", describe(r));
      assert.match(await diskOk(["check", s.img]), /: consistent: /);
      assert.equal(await diskOk(["get", s.img, s.file, "-"]), s.want);
    }));
  });
});

Deno.test("posix: poll() on stdin with a timeout ends at the timeout when no input comes", async () => {
  const p = spawnCli(["run", "test-posix-files", "--", "poll"], {
    stdin: "piped",
    killAfterMs: 60_000,
  });
  // 1 s asked; generous bound for a loaded machine (before: until input or its end)
  await p.waitFor(/^poll 0$/m, 20_000);
  await p.closeStdin();
  const r = await p.result();
  assert.equal(r.code, EXIT.OK, describe(r));
});

Deno.test("posix: a program that busy-polls stdin (poll with timeout 0, never waiting) gets the input", async () => {
  // Input that comes while it spins: before, it never reached the program (interrupts arrive only
  // at hypercalls, and poll(0) made none: docs/guest-abi.md §19 poll_oneoff).
  const p = spawnCli(["run", "--timeout", "30", "test-posix-files", "--", "pollspin"], {
    stdin: "piped",
    killAfterMs: 60_000,
  });
  await p.waitFor(/^pollspin$/m, 20_000);
  const t0 = performance.now();
  await p.write("late\n");
  // a time slice or two; generous bound for a loaded machine
  await p.waitFor(/^pollspin: late$/m, 5_000);
  console.log(`  input reached the spinning poll after ${(performance.now() - t0).toFixed(0)} ms`);
  await p.closeStdin();
  const r = await p.result();
  assert.equal(r.code, EXIT.OK, describe(r));
});
