/**
 * The API of `mod.ts` (issue 11): results, typed one-line errors equal to
 * the CLI's, expect-style handles, labs, timeouts, input streams, and that
 * every file descriptor a run opened (FFI fds of disks included, which
 * Deno's leak checker cannot see) is closed when it ends or is disposed.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  EXIT,
  ExpectError,
  ImageError,
  runGuest,
  type RunResult,
  startGuest,
  startLab,
  UsageError,
} from "../mod.ts";
import { lines, runCli } from "./helpers/run_cli.ts";
import { libc } from "../sys/libc.ts";
import { netnsUnavailable, runCmd } from "./helpers/netns.ts";

/** Open fds of this process below 4096 (fcntl F_GETFD; Deno guards /proc/self/fd). */
function openFds(): number {
  let n = 0;
  for (let fd = 0; fd < 4096; fd++) if (libc().fcntl(fd, 1, 0) >= 0) n++;
  return n;
}

async function withDisks(n: number, fn: (paths: string[]) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "lguest_api_" });
  try {
    const paths = [];
    for (let i = 0; i < n; i++) {
      const p = `${dir}/d${i}.img`;
      await Deno.writeFile(p, new Uint8Array(64 * 1024));
      paths.push(p);
    }
    await fn(paths);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("api: runGuest gives code, status, reason and the console output", async () => {
  const r = await runGuest({ image: "hello", memory: 16 * 1024 * 1024 });
  const { counters, devices, ...rest } = r;
  assert.deepEqual(
    rest,
    {
      name: "hello",
      code: EXIT.OK,
      status: 0,
      reason: "CRASH: Power down",
      output: "Hello from an lguest guest! I have 16 MiB of RAM.\n",
      outcome: "powered off",
      hints: [],
    } satisfies Omit<RunResult, "counters" | "devices">,
  );
  // The counters --json gives: the host's, and each device's.
  assert.ok(counters!.hypercalls > 0);
  const cons = devices.find((d) => d.label.startsWith("console"))!;
  assert.equal(cons.counters!.out, rest.output.length);
  const crash = await runGuest({ image: "test-crash", name: "c" });
  assert.equal(crash.code, EXIT.GUEST_FAILED);
  assert.equal(crash.name, "c");
  assert.match(crash.reason, /oops: test crash/);
  // Image bytes work as well as names.
  const bytes = await Deno.readFile(new URL("../guests/images/hello.wasm", import.meta.url));
  const fromBytes = await runGuest({ image: bytes, name: "mine", memory: "8M" });
  assert.equal(fromBytes.code, EXIT.OK);
  assert.match(fromBytes.output, /I have 8 MiB/);
});

Deno.test("api: a guest's hint goes to onHint, never into its output", async () => {
  const hints: string[] = [];
  const r = await runGuest({
    image: "lua",
    args: ["-e", "print((select(2, io.open('/t.txt', 'w'))))"],
    onHint: (line) => hints.push(line),
  });
  assert.equal(r.code, EXIT.OK);
  assert.equal(r.output, "/t.txt: Read-only file system\n");
  assert.deepEqual(hints, [
    "/t.txt: no disk: run with --block disk.img (make one with 'lguest disk mkfs disk.img 64M')",
  ]);
  assert.deepEqual(r.hints, hints); // and in the result
  const lab: [string, string][] = [];
  await using l = await startLab({
    guests: [{ name: "l", image: "lua", args: ["-e", "io.open('/u', 'w')"], console: "stdio" }],
  }, { onHint: (name, line) => lab.push([name, line]) });
  assert.equal((await l.guest("l").done).code, EXIT.OK);
  assert.deepEqual(lab.map(([n, line]) => [n, line.split(":")[0]]), [["l", "/u"]]);
});

Deno.test("api: bad input throws the CLI's one-line error, typed", async () => {
  const cases: [Parameters<typeof runGuest>[0], string[], typeof UsageError][] = [
    [{ image: "no-such-guest" }, ["run", "no-such-guest"], UsageError],
    [{ image: "hello", memory: "3X" }, ["run", "-m", "3X", "hello"], UsageError],
    [{ image: "hello", block: ["/nonexistent/d.img"] }, [
      "run",
      "--block",
      "/nonexistent/d.img",
      "hello",
    ], UsageError],
    [
      { image: "hello", block: ["x.img,fast"] },
      ["run", "--block", "x.img,fast", "hello"],
      UsageError,
    ],
    [{ image: "hello", net: ["wifi:x"] }, ["run", "--net", "wifi:x", "hello"], UsageError],
  ];
  for (const [opts, argv, type] of cases) {
    const cli = await runCli(argv);
    assert.equal(cli.code, EXIT.USAGE, cli.stderr);
    const err = await runGuest(opts).then(() => null, (e) => e);
    assert.ok(err instanceof type, `${JSON.stringify(opts)}: ${err}`);
    assert.equal(err.name, type.name);
    assert.equal(`lguest: ${err.message}`, lines(cli.stderr)[0], JSON.stringify(opts));
  }
  const bad = await runGuest({ image: new Uint8Array([1, 2, 3, 4]) }).then(() => null, (e) => e);
  assert.ok(bad instanceof ImageError, String(bad));
  assert.equal(bad.name, "ImageError");
  assert.doesNotMatch(bad.message, /\n/);
  // API-only values get one line too.
  for (
    const opts of [
      { image: "hello", memory: 4097 },
      { image: "hello", timeoutMs: -1 },
      { image: "hello", block: [{ path: "" }] },
      { image: "hello", block: [{ path: "d.img", fast: true }] },
      { image: "hello", net: [{ segment: "a", tap: "b" }] },
      { image: "hello", devices: { floppy: ["a"] } },
      { image: "hello", engine: "nonesuch" },
      { image: "" },
    ]
  ) {
    const e = await runGuest(opts as Parameters<typeof runGuest>[0]).then(() => null, (e) => e);
    assert.ok(e instanceof UsageError, `${JSON.stringify(opts)}: ${e}`);
    assert.doesNotMatch(e.message, /\n/);
  }
});

Deno.test("api: every fd a run opened is closed: after the end, after a failure, after dispose", async () => {
  await withDisks(5, async (disks) => {
    const before = openFds();
    const r = await runGuest({ image: "hello", block: disks });
    assert.equal(r.code, EXIT.OK, r.reason);
    assert.equal(openFds(), before, "after a run with five disks");

    // The fifth disk is missing: the four opened before it are closed.
    const missing = [...disks.slice(0, 4), `${disks[4]}.missing`];
    await assert.rejects(runGuest({ image: "hello", block: missing }), UsageError);
    assert.equal(openFds(), before, "after a failed start");

    // A shell left running: `await using` stops it and closes its disks;
    // the exclusive locks go with the fds, so the disks can be used again.
    {
      await using shell = await startGuest({ image: "shell", block: disks, timeoutMs: 20_000 });
      await shell.expect("lguest$ ");
      assert.ok(openFds() > before);
    }
    assert.equal(openFds(), before, "after await using");
    const again = await runGuest({ image: "hello", block: disks });
    assert.equal(again.code, EXIT.OK, again.reason);
  });
});

Deno.test("api: expect moves past each match; gives up on a timeout or the guest's end", async () => {
  const shell = await startGuest({ image: "shell", timeoutMs: 20_000 });
  try {
    await shell.expect("lguest$ ");
    shell.write("echo one\necho two\n");
    assert.equal(await shell.expect(/o\w+/), "one");
    assert.equal(await shell.expect(/t\w+/), "two");
    const t0 = performance.now();
    await assert.rejects(shell.expect("never printed", { timeoutMs: 200 }), (e) => {
      assert.ok(e instanceof ExpectError);
      assert.equal(e.name, "ExpectError");
      assert.match(e.message, /not seen within 200 ms/);
      return true;
    });
    assert.ok(performance.now() - t0 < 5000, "the timeout ends the wait");
    shell.write("poweroff\n");
    await assert.rejects(shell.expect("never printed"), /the guest ended \(CRASH: Power down\)/);
    assert.equal((await shell.done).code, EXIT.OK);
  } finally {
    await shell.stop();
  }
});

Deno.test("api: stop, timeout, a stream as input, and the output cap", async () => {
  const shell = await startGuest({ image: "shell" });
  await shell.expect("lguest$ ");
  const stopped = await shell.stop();
  assert.equal(stopped.code, EXIT.GUEST_FAILED);
  assert.equal(stopped.reason, "stopped");

  const spin = await runGuest({ image: "test-spin", timeoutMs: 300 });
  assert.equal(spin.code, EXIT.TIMEOUT);
  assert.equal(spin.reason, "timed out after 0.3 s");
  assert.equal(spin.output, "spinning\n");

  const parts = ["echo from ", "a stream\n", "poweroff\n"];
  const stream = new ReadableStream<Uint8Array>({
    pull(c) {
      const p = parts.shift();
      if (p === undefined) c.close();
      else c.enqueue(new TextEncoder().encode(p));
    },
  });
  const fed = await runGuest({ image: "shell", input: stream, timeoutMs: 20_000, maxOutput: 40 });
  assert.equal(fed.code, EXIT.OK, fed.reason);
  assert.ok(fed.output.length <= 40);
  assert.match(fed.output, /Powering off\.\n$/);
});

Deno.test("api: a lab from the --config object form; its errors name the field", async () => {
  await assert.rejects(
    startLab({ guests: [{ name: "a", image: "hello" }, { name: "a", image: "hello" }] }),
    (e) => e instanceof UsageError && e.message === "guests[1].name: duplicate guest name 'a'",
  );
  await assert.rejects(
    startLab({ guests: [{ name: "a", image: "hello", net: ["segment:"] }] }),
    UsageError,
  );
  // The "stdio" guest's end stops the others, as in the CLI.
  const out: string[] = [];
  const lab = await startLab({
    guests: [
      { name: "d", image: "netd", net: ["segment:s"], args: "ip=10.9.0.1/24" },
      { name: "h", image: "hello", console: "stdio" },
    ],
  }, { timeoutMs: 20_000, onOutput: (name, text) => out.push(`${name}:${text}`) });
  const [d, h] = await lab.done;
  assert.equal(h.code, EXIT.OK);
  assert.equal(d.reason, "stopped: h ended");
  assert.ok(out.some((o) => o.startsWith("h:Hello")), out.join(""));
  assert.throws(() => lab.guest("x"), UsageError);
  assert.equal(lab.guest("h").result?.code, EXIT.OK);
});

Deno.test("api: await using closes a tap: its fd and the interface are gone after", async () => {
  const why = await netnsUnavailable();
  if (why) {
    console.log(`api: tap test skipped: ${why}`);
    return;
  }
  const ifname = `lgapi${Deno.pid % 100000}`;
  const before = openFds();
  {
    await using netd = await startGuest({
      image: "netd",
      net: [{ tap: ifname }],
      args: "ip=10.213.0.2/24",
      timeoutMs: 20_000,
    });
    await netd.expect("netd: 10.213.0.2/24");
    assert.equal((await runCmd("ip", ["link", "show", ifname])).code, 0, "the tap exists");
    assert.ok(openFds() > before);
  }
  assert.equal(openFds(), before, "after await using");
  assert.notEqual((await runCmd("ip", ["link", "show", ifname])).code, 0, "the tap is gone");
});

Deno.test("api: two guests of a lab given one writable disk: a UsageError naming both; ,ro for both runs", async () => {
  const img = await Deno.makeTempFile();
  try {
    await Deno.truncate(img, 65536);
    await assert.rejects(
      startLab({
        guests: [
          { name: "a", image: "hello", block: [img] },
          { name: "b", image: "hello", block: [`${img},ro`] },
        ],
      }),
      (e) =>
        e instanceof UsageError &&
        /^b: block .*,ro: the same disk as guest a's block .* \(guests of one run share a disk only when every one has it ,ro\)$/
          .test(e.message),
    );
    await using lab = await startLab({
      guests: [
        { name: "a", image: "hello", block: [`${img},ro`] },
        { name: "b", image: "hello", block: [`${img},ro`] },
      ],
    });
    assert.equal((await lab.guest("a").done).code, EXIT.OK);
    assert.equal((await lab.guest("b").done).code, EXIT.OK);
  } finally {
    await Deno.remove(img);
  }
});
