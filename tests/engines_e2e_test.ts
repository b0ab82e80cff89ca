/**
 * The end-to-end suite, once per engine (tests/helpers/engines.ts): the
 * console, the shell, a block device, a segment with a pcap, a tap in a
 * namespace, guests that die, hostile guests next to a neighbour that
 * must keep answering, and timeouts. Each case is written once; the
 * engine is only the `--engine` words (or a config file's `"engine"`).
 * KVM-only cases: the x86-64 hostile guest (privileged instructions,
 * other I/O ports, the host's page tables, wild pointers, spinning) and a
 * wasm guest pinging a kvm guest on one segment.
 *
 * @module
 */

import assert from "node:assert/strict";
import { EXIT } from "../launcher/cli.ts";
import { runGuest } from "../mod.ts";
import { readPcap } from "../devices/net/pcap.ts";
import { engineTest } from "./helpers/engines.ts";
import { netnsUnavailable, withNetns } from "./helpers/netns.ts";
import { genData, type GuestConf, inTempDir, writeConfig } from "./helpers/resources.ts";
import {
  describe,
  hasStackTrace,
  LGUEST_CMD,
  lines,
  runCli,
  spawnCli,
  spawnProcess,
} from "./helpers/run_cli.ts";

/** The stderr lines that are not empty. */
const errLines = (s: string) => lines(s).filter((l) => l !== "");

/** ping's summary for ADDR: [transmitted, received]. */
function pingSummary(out: string, addr: string): [number, number] {
  const i = out.indexOf(`--- ${addr} ping statistics ---`);
  assert.ok(i >= 0, `no ping statistics for ${addr} in:\n${out}`);
  const m = /^(\d+) packets transmitted, (\d+) received/m.exec(out.slice(i));
  assert.ok(m, out);
  return [+m[1], +m[2]];
}

// ---- Console and shell --------------------------------------------------------------

engineTest("console: hello prints the greeting and powers off (exit 0)", async (e) => {
  const r = await runCli(["run", ...e.args, "hello"]);
  assert.equal(r.code, EXIT.OK, describe(r));
  assert.match(r.stdout, /^Hello from an lguest guest! I have 32 MiB of RAM\.$/m, describe(r));
  assert.equal(r.stderr, "", describe(r));
});

engineTest("console: the words after -- are the guest's command line", async (e) => {
  const r = await runCli(["run", ...e.args, "test-args", "--", "one", "two words", 'q"x']);
  assert.equal(r.code, EXIT.OK, describe(r));
  assert.equal(r.stdout, 'argc=3\n[one]\n[two words]\n[q"x]\n', describe(r));
});

engineTest("api: runGuest({ engine }) runs the guest on that engine", async (e) => {
  const r = await runGuest({ image: "hello", engine: e.name, memory: 16 << 20 });
  assert.equal(r.code, EXIT.OK, r.reason);
  assert.match(r.output, /^Hello from an lguest guest! I have 16 MiB of RAM\.$/m);
});

engineTest("shell: piped commands run, poweroff exits 0", async (e) => {
  const r = await runCli(["run", ...e.args, "-m", "16M", "shell"], {
    stdin: "echo hi there\nmem\npoweroff\n",
  });
  assert.equal(r.code, EXIT.OK, describe(r));
  assert.match(r.stdout, /^hi there$/m, describe(r));
  assert.match(r.stdout, /^RAM: +16384 KiB/m, describe(r));
  assert.match(r.stdout, /^Powering off\.$/m, describe(r));
});

// ---- Block --------------------------------------------------------------------------

engineTest("block: disktest's random reads and writes verify, the file holds them", async (e) => {
  await inTempDir(async (dir) => {
    const img = `${dir}/disk.img`;
    await Deno.writeFile(img, new Uint8Array(2 << 20));
    const r = await runCli([
      "run",
      ...e.args,
      "--block",
      img,
      "disktest",
      "--",
      "seed=7",
      "ops=400",
    ], { killAfterMs: 60_000 });
    assert.equal(r.code, EXIT.OK, describe(r));
    assert.match(r.stdout, /^disktest: 400 ops OK$/m, describe(r));
    const bytes = await Deno.readFile(img);
    assert.equal(bytes.length, 2 << 20);
    assert.ok(bytes.some((b) => b !== 0), "the guest's writes are in the file");
  });
});

engineTest(
  "block: lgfs commits what a kit guest wrote (no fsync, no close) while it waits for input, once; the bytes are the guest's",
  async (e) => {
    await inTempDir(async (dir) => {
      const img = `${dir}/fs.img`;
      const mk = await runCli(["disk", "mkfs", img, "4M"]);
      assert.equal(mk.code, EXIT.OK, describe(mk));
      // nolock: the test reads the disk while the run has it.
      const p = spawnCli([
        "run",
        ...e.args,
        "--block",
        `${img},nolock`,
        "test-fstest",
        "--",
        "idle",
        "/f",
        "100000",
        "5",
      ], { stdin: "piped", killAfterMs: 90_000 });
      await p.waitFor(/^idle \/f 100000 [0-9a-f]{8}$/m, 30_000);
      const t0 = performance.now();
      let seen = false;
      while (!seen && performance.now() - t0 < 30_000) {
        const ls = await runCli(["disk", "ls", img, "/"]);
        seen = ls.code === EXIT.OK && / 100000 .* f$/m.test(ls.stdout);
        if (!seen) await new Promise((r) => setTimeout(r, 300));
      }
      console.log(
        `  committed ${((performance.now() - t0) / 1000).toFixed(1)} s after the wait began`,
      );
      assert.ok(seen, "the size never reached the disk while the guest waited");
      await new Promise((r) => setTimeout(r, 1500));
      await p.closeStdin();
      const r = await p.result();
      assert.equal(r.code, EXIT.OK, describe(r));
      // one commit while waiting: none once nothing was pending
      assert.match(r.stdout, /^idle commits 1$/m, describe(r));
      const get = await runCli(["disk", "get", img, "/f", `${dir}/f.out`]);
      assert.equal(get.code, EXIT.OK, describe(get));
      assert.deepEqual(await Deno.readFile(`${dir}/f.out`), genData(5, 100000));
    });
  },
);

// ---- Network ------------------------------------------------------------------------

function netd(engine: string, ip: string, name = "a"): GuestConf & { engine: string } {
  return { name, image: "netd", memory: "16M", net: ["segment:lan"], args: `ip=${ip}/24`, engine };
}

function shell(engine: string, ip: string): GuestConf & { engine: string } {
  return {
    name: "b",
    image: "shell",
    memory: "16M",
    net: ["segment:lan"],
    args: `ip=${ip}/24`,
    console: "stdio",
    engine,
  };
}

/** Shell `b` pings netd `a` on segment lan; returns the run and the pcap's frames. */
async function pingOnSegment(a: GuestConf, b: GuestConf) {
  return await inTempDir(async (dir) => {
    const config = await writeConfig(dir, [a, b]);
    const pcap = `${dir}/lan.pcap`;
    const r = await runCli(["run", "--pcap", pcap, "--config", config], {
      stdin: "ping 10.0.0.1 3\nudp 10.0.0.1 7 hello\npoweroff\n",
      killAfterMs: 40_000,
    });
    return { r, frames: readPcap(await Deno.readFile(pcap)).frames };
  });
}

engineTest("segment: two guests ping with 0 loss, UDP echo answers, pcap has it all", async (e) => {
  const { r, frames } = await pingOnSegment(netd(e.name, "10.0.0.1"), shell(e.name, "10.0.0.2"));
  assert.equal(r.code, EXIT.OK, describe(r));
  assert.deepEqual(pingSummary(r.stdout, "10.0.0.1"), [3, 3], describe(r));
  assert.match(r.stdout, /bytes from 10\.0\.0\.1:7 time=\S+ ms: hello$/m, describe(r));
  const icmp = frames.filter((f) => f[12] === 8 && f[13] === 0 && f[23] === 1);
  assert.equal(icmp.length, 6, "3 echo requests and 3 replies captured");
});

engineTest("segment: a wasm guest and a kvm guest ping each other on one segment", async () => {
  for (const [na, nb] of [["kvm", "wasm"], ["wasm", "kvm"]]) {
    const { r } = await pingOnSegment(netd(na, "10.0.0.1"), shell(nb, "10.0.0.2"));
    assert.equal(r.code, EXIT.OK, `netd ${na}, shell ${nb}: ${describe(r)}`);
    assert.deepEqual(pingSummary(r.stdout, "10.0.0.1"), [3, 3], describe(r));
  }
}, { only: ["kvm"] });

const netnsWhy = await netnsUnavailable();
if (netnsWhy !== null) console.log(`engines: skipping the tap cases: ${netnsWhy}`);

engineTest("tap: the host pings a guest through a tap in a namespace, 0 loss", async (e) => {
  if (netnsWhy !== null) return;
  await withNetns("eng", async (ns) => {
    const lg = ns.spawnCli(
      ["run", ...e.args, "--timeout", "30", "--net", "tap:lgt0,ip=10.78.0.1/24", "netd", "--"]
        .concat(["ip=10.78.0.2/24"]),
      { killAfterMs: 40_000 },
    );
    try {
      await lg.waitFor(/^netd: 10\.78\.0\.2\/24 on net0/m, 15_000);
      const ping = await ns.ping("10.78.0.2", { count: 3, interval: 0.2, wait: 1 });
      assert.equal(ping.received, 3, ping.output);
      lg.kill("SIGTERM");
      const r = await lg.result();
      assert.equal(r.code, 143, describe(r));
      assert.ok(!hasStackTrace(r.stderr), describe(r));
    } finally {
      lg.kill("SIGKILL");
      await lg.result();
    }
  });
}, { sanitize: false });

// ---- Guests that die, hostile guests, timeouts -----------------------------------------

for (
  const [guest, reason] of [
    ["test-badmem", /./],
    ["test-baddma", /bad DMA section/],
    ["test-badcall", /Bad hypercall 11/],
    ["test-crash", /CRASH: oops: test crash/],
  ] as const
) {
  engineTest(`faults: ${guest} exits ${EXIT.GUEST_FAILED} with one line`, async (e) => {
    const r = await runCli(["run", ...e.args, guest]);
    assert.equal(r.code, EXIT.GUEST_FAILED, describe(r));
    const err = errLines(r.stderr);
    assert.equal(err.length, 1, describe(r));
    assert.match(err[0], new RegExp(`^lguest: ${guest}: `), describe(r));
    assert.match(err[0], reason, describe(r));
  });
}

/**
 * Run guest `x` (not stdio) next to a stdio shell; once x has printed
 * `marker` (its hostile act follows in the same time slice), the shell
 * must still answer. Returns the run.
 */
/**
 * Run guest `x` beside a shell `b` in one host; once `x` printed `marker`
 * (and, if given, the host printed `errMarker` on stderr), check that `b`
 * still answers, then power `b` off, which ends the run.
 */
async function withNeighbour(
  engine: string,
  x: GuestConf,
  marker: RegExp,
  errMarker?: RegExp,
) {
  return await inTempDir(async (dir) => {
    const config = await writeConfig(dir, [
      { ...x, engine } as GuestConf,
      { name: "b", image: "shell", memory: "16M", console: "stdio", engine } as GuestConf,
    ]);
    const p = spawnCli(["run", "--timeout", "30", "--config", config], {
      stdin: "piped",
      killAfterMs: 40_000,
    });
    try {
      await p.waitFor(marker, 20_000);
      // The run ends when b powers off: a guest whose fault comes after its
      // marker must have reached it by then, or a slow machine loses the line.
      if (errMarker) await p.waitFor(errMarker, 20_000, "stderr");
      await p.write("echo neighbour ok\n");
      await p.waitFor(/^(lguest\$ )?neighbour ok$/m, 20_000);
      await p.write("poweroff\n");
      await p.closeStdin();
    } catch (err) {
      p.kill("SIGKILL");
      await p.result();
      throw err;
    }
    return await p.result();
  });
}

engineTest("hostile: nesting interrupts forever kills only that guest", async (e) => {
  const r = await runCli([
    "run",
    ...e.args,
    "--timeout",
    "20",
    "test-hostile-nest",
    "--",
    "secs=1",
  ]);
  assert.equal(r.code, EXIT.GUEST_FAILED, describe(r));
  assert.deepEqual(errLines(r.stderr), [
    "lguest: test-hostile-nest: interrupts nested deeper than 256 levels",
  ]);
});

engineTest(
  "hostile: scribbling over its device pages and lguest_data during I/O hurts only itself",
  async (e) => {
    await inTempDir(async (dir) => {
      const sImg = `${dir}/s.img`, nImg = `${dir}/n.img`;
      await Deno.writeFile(sImg, new Uint8Array(1 << 20).fill(0x11));
      await Deno.writeFile(nImg, new Uint8Array(1 << 20).fill(0x22));
      const config = await writeConfig(dir, [
        netd(e.name, "10.0.0.1"),
        {
          name: "s",
          image: "test-hostile-scribble",
          memory: "16M",
          net: ["segment:lan"],
          block: [sImg],
          args: "ip=10.0.0.3/24 peer=10.0.0.1 rounds=3000 seed=7",
          engine: e.name,
        } as GuestConf,
        { ...shell(e.name, "10.0.0.2"), block: [nImg] },
      ]);
      const p = spawnCli(["run", "--timeout", "60", "--config", config], {
        stdin: "piped",
        killAfterMs: 70_000,
      });
      try {
        await p.write("ping 10.0.0.1 2\nblk write 0 1 from the neighbour\n");
        await p.waitFor(/\[s\] scribble: done$/m, 50_000);
        await p.write("ping 10.0.0.3 2\necho ok\npoweroff\n");
        await p.closeStdin();
      } catch (err) {
        p.kill("SIGKILL");
        await p.result();
        throw err;
      }
      const r = await p.result();
      const why = describe(r);
      assert.equal(r.code, EXIT.OK, why);
      assert.match(r.stdout, /^\[s\] scribble: ping 10\.0\.0\.1 ok$/m, why);
      assert.deepEqual(pingSummary(r.stdout, "10.0.0.1"), [2, 2], why);
      assert.match(r.stdout, /^(lguest\$ )?ok$/m, why);
      const n = await Deno.readFile(nImg);
      assert.equal(new TextDecoder().decode(n.subarray(512, 530)), "from the neighbour");
      assert.ok(
        n.subarray(1024).every((b) => b === 0x22),
        "the neighbour's disk is otherwise intact",
      );
      assert.ok(!hasStackTrace(r.stderr), why);
    });
  },
);

engineTest("timeouts: test-spin with --timeout 1 exits 124 within 2 s of it", async (e) => {
  const p = spawnCli(["run", ...e.args, "--timeout", "1", "test-spin"], { killAfterMs: 15_000 });
  await p.waitFor("spinning");
  const spinning = performance.now(); // the guest runs: the 1 s started before it
  const r = await p.result();
  const after = performance.now() - spinning;
  assert.equal(r.code, EXIT.TIMEOUT, describe(r));
  const err = errLines(r.stderr);
  assert.equal(err.length, 1, describe(r));
  assert.match(err[0], /^lguest: test-spin: timed out after 1 s$/, describe(r));
  assert.ok(after < 2_000, `ended ${Math.round(after)} ms after the guest started spinning`);
});

engineTest(
  "timeouts: a guest doing block I/O flat out keeps no timer out (--timeout 1)",
  async (e) => {
    await inTempDir(async (dir) => {
      const img = `${dir}/disk.img`;
      await Deno.writeFile(img, new Uint8Array(4 << 20));
      const r = await runCli([
        "run",
        ...e.args,
        "--timeout",
        "1",
        "--block",
        img,
        "disktest",
        "--",
        "ops=100000000",
      ], { killAfterMs: 15_000 });
      assert.equal(r.code, EXIT.TIMEOUT, describe(r));
      // The timer itself fired on the main thread, not the watchdog's "not responding".
      assert.deepEqual(errLines(r.stderr), ["lguest: disktest: timed out after 1 s"], describe(r));
      assert.ok(r.ms < 5_000, `took ${Math.round(r.ms)} ms (Deno start-up included)`);
    });
  },
);

engineTest("timeouts: a spinning guest is preempted; its neighbour shell answers", async (e) => {
  const r = await withNeighbour(
    e.name,
    { name: "x", image: "test-spin", memory: "8M" },
    /\[x\] spinning/,
  );
  assert.equal(r.code, EXIT.OK, describe(r));
});

/** The x86-64 hostile cases and the fault each must be named by. */
const X86_FAULTS: [string, RegExp][] = [
  ["hlt", /general protection fault: privileged instruction hlt at rip 0x[0-9a-f]+$/],
  ["cli-hlt", /general protection fault: privileged instruction (cli|hlt) at rip 0x/],
  ["port", /out to I\/O port 0x80 \(1 byte\) at rip 0x/],
  ["in", /in from I\/O port 0x60 \(1 byte\) at rip 0x/],
  ["pt", /page fault: write to 0x100000000 \(the host's page tables.*\) at rip 0x/],
  ["ptread", /page fault: read from 0x100000000 \(the host's page tables.*\) at rip 0x/],
  ["wild", /page fault: write to 0x80000000 \(outside guest RAM\) at rip 0x/],
  ["exec", /page fault: (read from|instruction fetch from) 0x90000000 .*at rip 0x90000000$/],
  ["cr3", /privileged instruction mov to\/from a control register at rip 0x/],
  ["wrmsr", /privileged instruction wrmsr at rip 0x/],
  ["lidt", /privileged instruction lidt at rip 0x/],
  ["int", /(general protection fault|invalid opcode).* at rip 0x/],
  ["int3", /(breakpoint|general protection fault).* at rip 0x/],
  ["ud2", /invalid opcode: instruction ud2 at rip 0x/],
  ["syscall", /invalid opcode: instruction syscall at rip 0x[0-9a-f]+$/],
  ["fakesys", /page fault: (read from|instruction fetch from) 0x10000b108 .*at rip 0x10000b108$/],
  ["swapgs", /general protection fault: privileged instruction swapgs at rip 0x/],
  ["vmcall", /general protection fault: privileged instruction vmcall at rip 0x/],
  ["sysretq", /general protection fault: privileged instruction sysret at rip 0x/],
];

engineTest("hostile x86-64: each fault kills only that guest, one line naming it", async (e) => {
  await Promise.all(X86_FAULTS.map(async ([what, fault]) => {
    const r = await withNeighbour(
      e.name,
      {
        name: "x",
        image: "test-x86fault",
        memory: "8M",
        args: `do=${what}`,
      },
      /\[x\] x86fault: /,
      /guest fault: /,
    );
    const why = `do=${what}: ${describe(r)}`;
    assert.equal(r.code, EXIT.OK, why);
    assert.match(r.stdout, /neighbour ok$/m, why);
    const err = errLines(r.stderr);
    assert.equal(err.length, 1, why);
    assert.match(err[0], /^lguest: x: guest fault: /, why);
    assert.match(err[0], fault, why);
  }));
}, { only: ["kvm"] });

engineTest("hostile x86-64: a guest spinning without hypercalls is preempted", async (e) => {
  for (const what of ["spin", "pause-spin"]) {
    const r = await withNeighbour(e.name, {
      name: "x",
      image: "test-x86fault",
      memory: "8M",
      args: `do=${what}`,
    }, /\[x\] x86fault: /);
    assert.equal(r.code, EXIT.OK, describe(r));
    assert.equal(r.stderr, "", describe(r));
  }
}, { only: ["kvm"] });

// ---- Without KVM ----------------------------------------------------------------------

/** Run the CLI as LGUEST_CMD does, also allowed to read LGUEST_KVM_DEVICE. */
function runWithoutKvm(args: string[]) {
  const [deno, run, ...rest] = LGUEST_CMD;
  return spawnProcess(deno, [run, "--allow-env=LGUEST_KVM_DEVICE", ...rest, ...args], {
    env: { LGUEST_KVM_DEVICE: "/nonexistent/kvm" },
  }).result();
}

Deno.test("engines: --engine kvm without KVM is one line and the usage exit code", async () => {
  for (
    const args of [
      ["run", "--engine", "kvm", "hello"],
      ["run", "--engine", "kvm", "--timeout", "5", "shell"],
    ]
  ) {
    const r = await runWithoutKvm(args);
    assert.equal(r.code, EXIT.USAGE, describe(r));
    assert.equal(r.stdout, "", describe(r));
    const err = errLines(r.stderr);
    assert.equal(err.length, 1, describe(r));
    assert.match(
      err[0],
      /^lguest: --engine kvm: no \/nonexistent\/kvm; the default engine \(wasm\) needs nothing/,
    );
  }
  await inTempDir(async (dir) => {
    const config = await writeConfig(dir, [
      { name: "a", image: "hello", engine: "kvm" } as GuestConf,
    ]);
    const r = await runWithoutKvm(["run", "--config", config]);
    assert.equal(r.code, EXIT.USAGE, describe(r));
    assert.equal(errLines(r.stderr).length, 1, describe(r));
    assert.match(r.stderr, /a: --engine kvm: no \/nonexistent\/kvm/, describe(r));
  });
});

Deno.test("engines: a bad --engine or config engine is one line and the usage exit code", async () => {
  const r = await runCli(["run", "--engine", "qemu", "hello"]);
  assert.equal(r.code, EXIT.USAGE, describe(r));
  assert.deepEqual(errLines(r.stderr), ["lguest: unknown engine 'qemu' (use wasm or kvm)"]);
  await inTempDir(async (dir) => {
    const config = await writeConfig(dir, [{ name: "a", image: "hello", engine: 7 } as never]);
    const r = await runCli(["run", "--config", config]);
    assert.equal(r.code, EXIT.USAGE, describe(r));
    assert.match(r.stderr, /guests\[0\]\.engine: must be a string/, describe(r));
  });
});

engineTest("engines: the other engine's image is refused with one line", async (e) => {
  const other = e.name === "kvm" ? "guests/images/hello.wasm" : "guests/images/hello.x86_64.elf";
  const r = await runCli(["run", ...e.args, other]);
  assert.equal(r.code, EXIT.USAGE, describe(r));
  const err = errLines(r.stderr);
  assert.equal(err.length, 1, describe(r));
  assert.match(err[0], e.name === "kvm" ? /not an x86-64 guest image/ : /WebAssembly|magic|wasm/i);
});

engineTest(
  "engines: a wasm-only built-in guest (lua) under kvm is one line, exit 125",
  async (e) => {
    const r = await runCli(["run", ...e.args, "lua", "--", "-e", "print(1)"]);
    assert.equal(r.code, EXIT.USAGE, describe(r));
    assert.deepEqual(errLines(r.stderr), [
      "lguest: guest 'lua' has no x86-64 image: it runs with --engine wasm only",
    ]);
  },
  { only: ["kvm"] },
);
