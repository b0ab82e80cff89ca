/**
 * The network end to end: the real `lguest` CLI as a subprocess, several
 * guests in one host from `--config` files written to temporary
 * directories, and a tap device inside a network namespace the test
 * creates and removes. Checked from the guests' own output (`ping`, `udp`,
 * `net`, test-netflood's counts), the `-v` counters and tap statistics,
 * and the `--pcap` files read back with our parser (devices/net/pcap.ts)
 * and, where installed, tshark. Issue 5; protocol §10.4, §5.4-5.6;
 * docs/guest-abi.md §16.
 *
 * Every case is an independent run, so the cases are steps that run
 * concurrently: one test for the segment cases, one for the namespace
 * cases (ignored, with the reason printed, where namespaces or a tun device
 * are not available).
 */

import assert from "node:assert/strict";
import { EXIT } from "../launcher/cli.ts";
import { readPcap } from "../devices/net/pcap.ts";
import type { DeviceContext } from "../devices/registry.ts";
import {
  Netns,
  netnsUnavailable,
  onPath,
  type PingResult,
  runCmd,
  withNetns,
} from "./helpers/netns.ts";
import {
  type CliResult,
  describe,
  hasStackTrace,
  LGUEST_CMD,
  lines,
  type LiveProcess,
  ROOT_PATH,
  runCli,
  spawnCli,
} from "./helpers/run_cli.ts";
import { cpuSeconds, inTempDir, lanPair, writeConfig } from "./helpers/resources.ts";

// ---- Helpers ----------------------------------------------------------------------

/** Steps run concurrently, which Deno allows only without sanitizers. */
const SANITIZERS_OFF = { sanitizeOps: false, sanitizeResources: false, sanitizeExit: false };

type Counters = Record<string, number>;

/** The `-v` line `lguest: NAME: counters {...}` of guest NAME. */
function counters(stderr: string, name: string): Counters {
  const m = new RegExp(`^lguest: ${name}: counters (\\{.*\\})$`, "m").exec(stderr);
  assert.ok(m, `no counters line for ${name} in stderr:\n${stderr}`);
  return JSON.parse(m[1]);
}

/** The `-v` line `lguest: NAME: tap IF: {...}` (devices/net/tap.ts close()). */
function tapStats(stderr: string, ifname: string): Record<string, number> {
  const m = new RegExp(`^lguest: [^:]+: tap ${ifname}: (\\{.*\\})$`, "m").exec(stderr);
  assert.ok(m, `no tap stats line for ${ifname} in stderr:\n${stderr}`);
  return JSON.parse(m[1]);
}

/** ping's summary line for ADDR in the shell's output: [transmitted, received, loss%]. */
function pingSummary(out: string, addr: string): [number, number, number] {
  const i = out.indexOf(`--- ${addr} ping statistics ---`);
  assert.ok(i >= 0, `no ping statistics for ${addr} in:\n${out}`);
  const m = /^(\d+) packets transmitted, (\d+) received, (\d+)% packet loss$/m.exec(out.slice(i));
  assert.ok(m, `no summary line for ${addr} in:\n${out.slice(i)}`);
  return [+m[1], +m[2], +m[3]];
}

/** The MAC a guest's netd line announces: `[name] netd: A/N on net0 (MAC M)`. */
function netdMac(out: string, name: string, addr: string): string {
  const m = new RegExp(
    `\\[${name}\\] netd: ${addr.replaceAll(".", "\\.")}/24 on net0 \\(MAC ` +
      `([0-9a-f:]{17})\\)$`,
    "m",
  ).exec(out);
  assert.ok(m, `no netd line for ${name} in:\n${out}`);
  return m[1];
}

interface Flood {
  count: number;
  size: number;
  taken: number;
  notTaken: number;
  txErrors: number;
}

/** test-netflood's result line of guest NAME. */
function floodLine(out: string, name: string): Flood {
  const m = new RegExp(
    `\\[${name}\\] netflood: (\\d+) frames of (\\d+) bytes to \\S+: (\\d+) taken, ` +
      `(\\d+) not taken, tx errors (\\d+)$`,
    "m",
  ).exec(out);
  assert.ok(m, `no netflood line for ${name} in:\n${out}`);
  const [count, size, taken, notTaken, txErrors] = m.slice(1).map(Number);
  return { count, size, taken, notTaken, txErrors };
}

// ---- Frames ---------------------------------------------------------------------

const mac = (f: Uint8Array, at: number) =>
  [...f.subarray(at, at + 6)].map((b) => b.toString(16).padStart(2, "0")).join(":");
const ipv4 = (f: Uint8Array, at: number) => [...f.subarray(at, at + 4)].join(".");
const u16 = (f: Uint8Array, at: number) => (f[at] << 8) | f[at + 1];

/** What a test needs to know of one captured frame. */
interface Decoded {
  dst: string;
  src: string;
  type: number;
  arp?: { op: number; sha: string; spa: string; tpa: string };
  icmp?: { type: number; src: string; dst: string; id: number; seq: number };
}

function decode(f: Uint8Array): Decoded {
  const d: Decoded = { dst: mac(f, 0), src: mac(f, 6), type: u16(f, 12) };
  if (d.type === 0x0806 && f.length >= 42) {
    d.arp = { op: u16(f, 20), sha: mac(f, 22), spa: ipv4(f, 28), tpa: ipv4(f, 38) };
  }
  if (d.type === 0x0800 && f.length >= 34 + 8 && f[23] === 1) {
    const l4 = 14 + (f[14] & 0xf) * 4;
    d.icmp = {
      type: f[l4],
      src: ipv4(f, 26),
      dst: ipv4(f, 30),
      id: u16(f, l4 + 4),
      seq: u16(f, l4 + 6),
    };
  }
  return d;
}

const BROADCAST = "ff:ff:ff:ff:ff:ff";

// ---- The two groups of concurrent steps -------------------------------------------

interface Step {
  name: string;
  fn: () => Promise<void>;
}

/** Cases of guests on segments, in one host each: run concurrently. */
const segmentSteps: Step[] = [];
/** Cases with a tap in a network namespace: run concurrently. */
const netnsSteps: Step[] = [];

const netnsWhy = await netnsUnavailable();
if (netnsWhy !== null) {
  console.log(`net_e2e: skipping the tap/namespace tests: ${netnsWhy}`);
}

// ---- 1. Two guests on one segment -------------------------------------------------

function pairCase(): Promise<CliResult> {
  return inTempDir(async (dir) => {
    const config = await writeConfig(dir, lanPair());
    return await runCli(["run", "--config", config], {
      stdin: "ping 10.0.0.1 5\nudp 10.0.0.1 7 hello lguest net\npoweroff\n",
      killAfterMs: 30_000,
    });
  });
}

segmentSteps.push({
  name: "two guests on one segment ping each other with 0 loss; UDP echo answers",
  async fn() {
    const r = await pairCase();
    const why = describe(r);
    assert.equal(r.code, 0, why);
    assert.equal(r.stderr, "", why);
    assert.equal(netdMac(r.stdout, "a", "10.0.0.1"), "02:00:00:00:00:00", why);
    const replies = lines(r.stdout)
      .map((l) => /^64 bytes from 10\.0\.0\.1: icmp_seq=(\d+) time=\d+\.\d{3} ms$/.exec(l))
      .filter((m) => m !== null).map((m) => +m[1]);
    assert.deepEqual(replies, [1, 2, 3, 4, 5], why);
    assert.deepEqual(pingSummary(r.stdout, "10.0.0.1"), [5, 5, 0], why);
    assert.match(r.stdout, /^5 packets transmitted, 5 received, 0% packet loss$/m, why);
    assert.match(
      r.stdout,
      /^16 bytes from 10\.0\.0\.1:7 time=\d+\.\d{3} ms: hello lguest net$/m,
      why,
    );
    assert.match(r.stdout, /^Powering off\.$/m, why);
  },
});

// ---- 2. Three guests: a broadcast ARP, captured once ---------------------------------

interface ThreeResult {
  r: CliResult;
  frames: Uint8Array[];
  linktype: number;
}

function threeCase(): Promise<ThreeResult> {
  return inTempDir(async (dir) => {
    const config = await writeConfig(dir, [
      { name: "a", image: "netd", memory: "16M", net: ["segment:lan"], args: "ip=10.0.0.1/24" },
      { name: "c", image: "netd", memory: "16M", net: ["segment:lan"], args: "ip=10.0.0.3/24" },
      {
        name: "b",
        image: "shell",
        net: ["segment:lan"],
        args: "ip=10.0.0.2/24",
        console: "stdio",
      },
    ]);
    const pcap = `${dir}/lan.pcap`;
    const r = await runCli(["run", "--pcap", pcap, "--config", config], {
      // 10.0.0.9 is nobody: ARP asks 3 times (the same frame, from the same buffer).
      stdin: "ping 10.0.0.1 2\nping 10.0.0.3 2\nping 10.0.0.9 1\nnet\npoweroff\n",
      killAfterMs: 30_000,
    });
    const { frames, linktype } = readPcap(await Deno.readFile(pcap));
    return { r, frames, linktype };
  });
}

segmentSteps.push({
  name: "three guests — one broadcast ARP request is captured once, both answer",
  async fn() {
    const { r, frames, linktype } = await threeCase();
    const why = describe(r);
    assert.equal(r.code, 0, why);
    assert.equal(r.stderr, "", why);
    const macA = netdMac(r.stdout, "a", "10.0.0.1");
    const macC = netdMac(r.stdout, "c", "10.0.0.3");
    assert.notEqual(macA, macC);
    assert.deepEqual(pingSummary(r.stdout, "10.0.0.1"), [2, 2, 0], why);
    assert.deepEqual(pingSummary(r.stdout, "10.0.0.3"), [2, 2, 0], why);
    assert.match(r.stdout, /^From 10\.0\.0\.2 icmp_seq=1 Destination Host Unreachable$/m, why);
    // `net`: both peers in the table, both in the ARP cache.
    assert.match(r.stdout, new RegExp(`^  peer slot 0: ${macA}$`, "m"), why);
    assert.match(r.stdout, new RegExp(`^  peer slot 1: ${macC}$`, "m"), why);
    assert.match(r.stdout, new RegExp(`^arp: 10\\.0\\.0\\.1 at ${macA}$`, "m"), why);
    assert.match(r.stdout, new RegExp(`^arp: 10\\.0\\.0\\.3 at ${macC}$`, "m"), why);
    const macB = /^net0: MAC ([0-9a-f:]{17}), slot 2 of 682/m.exec(r.stdout)?.[1];
    assert.ok(macB, why);

    assert.equal(linktype, 1, "Ethernet link type");
    const d = frames.map(decode);
    const requests = (tpa: string) =>
      d.filter((f) => f.arp?.op === 1 && f.arp.tpa === tpa && f.src === macB);
    for (const tpa of ["10.0.0.1", "10.0.0.3"]) {
      const q = requests(tpa);
      assert.equal(q.length, 1, `one ARP request for ${tpa} captured (not one per peer)`);
      assert.equal(q[0].dst, BROADCAST);
      assert.equal(q[0].arp!.spa, "10.0.0.2");
    }
    // Asked 3 times, captured 3 times: a resend is not a broadcast copy.
    assert.equal(requests("10.0.0.9").length, 3, "each ARP retry captured");
    const replies = d.filter((f) => f.arp?.op === 2);
    assert.deepEqual(
      replies.map((f) => [f.src, f.dst, f.arp!.spa, f.arp!.tpa]).sort(),
      [[macA, macB, "10.0.0.1", "10.0.0.2"], [macC, macB, "10.0.0.3", "10.0.0.2"]].sort(),
      "one ARP reply from each netd, to the shell",
    );
    for (const [peer, peerMac] of [["10.0.0.1", macA], ["10.0.0.3", macC]]) {
      const echo = d.filter((f) => f.icmp && (f.icmp.src === peer || f.icmp.dst === peer));
      assert.deepEqual(
        echo.map((f) => [f.icmp!.type, f.icmp!.seq, f.src, f.dst]),
        [
          [8, 1, macB, peerMac],
          [0, 1, peerMac, macB],
          [8, 2, macB, peerMac],
          [0, 2, peerMac, macB],
        ],
        `echo requests and replies with ${peer}, in order`,
      );
    }
    assert.equal(frames.length, 5 + 2 + 8, "5 ARP requests, 2 replies, 8 ICMP echo frames");
    // The driver counts per DMA: each ARP request went to both peers.
    const tx = /^ {2}tx (\d+) packets, \d+ bytes, 0 errors, 0 dropped$/m.exec(r.stdout);
    assert.ok(tx, why);
    assert.equal(+tx[1], 5 * 2 + 4, "a broadcast is one DMA per peer");
  },
});

// ---- 3. Floods: a receiver that keeps up, and one that is full ---------------------

// netd and the shell empty their buffers in their IRQ handlers, and the
// launcher's host lets a full receiver run before the sender's one retry
// (Host yieldOnFull), so they may well take every frame: drops are counted
// if any, but asserted only for the receiver that stays full (test-netflood
// in its sink role keeps its net IRQ masked until the flooder has gone).

function floodCase(): Promise<CliResult> {
  return inTempDir(async (dir) => {
    const config = await writeConfig(dir, [
      { name: "a", image: "netd", memory: "16M", net: ["segment:lan"], args: "ip=10.0.0.1/24" },
      {
        name: "f",
        image: "test-netflood",
        memory: "8M",
        net: ["segment:lan"],
        args: "ip=10.0.0.9/24 dst=10.0.0.1 count=10000 size=1514",
      },
      {
        name: "g",
        image: "test-netflood",
        memory: "8M",
        net: ["segment:lan"],
        args: "ip=10.0.0.8/24 dst=10.0.0.2 count=10000 size=1514",
      },
      {
        name: "b",
        image: "shell",
        net: ["segment:lan"],
        args: "ip=10.0.0.2/24",
        console: "stdio",
      },
    ]);
    const p = spawnCli(["run", "-v", "--config", config], { stdin: "piped", killAfterMs: 40_000 });
    try {
      await p.waitFor(
        (s) => /\[f\] netflood: .*\n/.test(s) && /\[g\] netflood: .*\n/.test(s),
        30_000,
      );
      await p.write("net\nping 10.0.0.1 3\npoweroff\n");
      await p.closeStdin();
    } catch (e) {
      p.kill("SIGKILL");
      await p.result();
      throw e;
    }
    return await p.result();
  });
}

segmentSteps.push({
  name: "floods of netd and of the shell — every frame taken or counted, none corrupt; " +
    "netd still answers",
  async fn() {
    const r = await floodCase();
    const why = describe(r);
    assert.equal(r.code, 0, why);
    assert.ok(!hasStackTrace(r.stderr), why);
    for (const name of ["f", "g"]) {
      const fl = floodLine(r.stdout, name);
      const c = counters(r.stderr, name);
      console.log(
        `  ${name}: ${fl.count} x ${fl.size} B: ${fl.taken} taken, ${fl.notTaken} not taken ` +
          `(dmaDroppedFull ${c.dmaDroppedFull})`,
      );
      assert.equal(fl.taken + fl.notTaken, fl.count, why);
      assert.ok(fl.taken > 0, why);
      assert.ok(fl.txErrors >= fl.notTaken, why);
      // What the guest counts as failed sends is what the host dropped.
      assert.equal(fl.txErrors, c.dmaDroppedFull + c.dmaNoReceiver + c.dmaAbandoned, why);
      assert.equal(c.dmaAbandoned, 0, why);
    }
    // The shell took g's datagrams whole: checksums verified, all dropped as "no port".
    const g = floodLine(r.stdout, "g");
    assert.match(
      r.stdout,
      /^ {2}rx \d+ packets, \d+ bytes, 0 dropped \(0 bad length\), \d+ irqs$/m,
    );
    const drops =
      /^dropped \d+ of \d+ frames: other MAC 0, ethertype 0, malformed 0, .*no port (\d+),/m
        .exec(r.stdout);
    assert.ok(drops, why);
    assert.equal(+drops[1], g.taken, "every datagram the shell took arrived intact");
    // And netd, flooded, answers as before.
    assert.deepEqual(pingSummary(r.stdout, "10.0.0.1"), [3, 3, 0], why);
  },
});

function fullReceiverCase(): Promise<CliResult> {
  return inTempDir(async (dir) => {
    // Guest ids (and so MACs 02:00:ID:00:00:00) follow the order of the file.
    const config = await writeConfig(dir, [
      {
        name: "s",
        image: "test-netflood",
        memory: "8M",
        net: ["segment:lan"],
        args: "sink from=02:00:01:00:00:00",
      },
      {
        name: "h",
        image: "test-netflood",
        memory: "8M",
        net: ["segment:lan"],
        args: "dst=02:00:00:00:00:00 count=3000 size=1514",
      },
    ]);
    return await runCli(["run", "-v", "--config", config], { killAfterMs: 30_000 });
  });
}

segmentSteps.push({
  name: "a full receiver — the sender's frames are dropped and counted, the 64 kept " +
    "are intact and in order",
  async fn() {
    const r = await fullReceiverCase();
    const why = describe(r);
    assert.equal(r.code, 0, why);
    assert.match(r.stdout, /\[s\] netflood: sink on net0 \(MAC 02:00:00:00:00:00\)$/m, why);
    const h = floodLine(r.stdout, "h");
    const c = counters(r.stderr, "h");
    console.log(
      `  h: ${h.count} frames to a full receiver: ${h.taken} taken, ${h.notTaken} dropped ` +
        `(tx errors ${h.txErrors}, dmaDroppedFull ${c.dmaDroppedFull})`,
    );
    // The receiver bound 64 buffers (NET_RX_BUFS) and never gave one back until the end.
    assert.equal(h.taken, 64, why);
    assert.equal(h.notTaken, h.count - 64, why);
    assert.ok(h.notTaken > 0);
    assert.equal(h.txErrors, h.notTaken, "the sender's driver counts each drop");
    assert.equal(c.dmaDroppedFull, h.notTaken, "the host counts each drop");
    assert.equal(c.dmaToGuest, 64, why);
    assert.equal(counters(r.stderr, "s").dmaDroppedFull, 0, why);
    assert.match(
      r.stdout,
      /\[s\] netflood: sink: 64 frames from 02:00:01:00:00:00 \(64 intact, 0 corrupt\), seq 0\.\.63, 0 other frames$/m,
      why,
    );
  },
});

// ---- 4. The host pings a guest through a tap in a namespace -------------------------

/**
 * For the runs that netd never ends: a backstop, and it makes the launcher
 * handle SIGTERM itself (without a terminal or a timeout it leaves SIGTERM
 * its default action, and then nothing closes the devices, so the `-v` exit
 * report with the tap's counters is never written).
 */
const TIMEOUT = ["--timeout", "30"];

interface TapResult {
  r: CliResult;
  ping: PingResult;
  frames: Uint8Array[];
  linktype: number;
  tshark: string | null;
}

function tapCase(): Promise<TapResult> {
  return inTempDir((dir) =>
    withNetns("tap", async (ns) => {
      const pcapPath = `${dir}/tap.pcap`;
      const lg = ns.spawnCli(
        [
          "run",
          "-v",
          ...TIMEOUT,
          "--net",
          "tap:lgt0,ip=10.77.0.1/24",
          "--pcap",
          pcapPath,
          "netd",
          "--",
          "ip=10.77.0.2/24",
        ],
        { killAfterMs: 30_000 },
      );
      try {
        await lg.waitFor(/^netd: 10\.77\.0\.2\/24 on net0 \(MAC /m, 15_000);
        const ping = await ns.ping("10.77.0.2", { count: 5, interval: 0.2, wait: 1 });
        lg.kill("SIGTERM");
        const r = await lg.result();
        const bytes = await Deno.readFile(pcapPath);
        const { frames, linktype } = readPcap(bytes);
        let tshark: string | null = null;
        if (onPath("tshark")) {
          const t = await runCmd("tshark", ["-r", pcapPath, "-T", "fields", "-e", "icmp.type"]);
          assert.equal(t.code, 0, `tshark -r failed:\n${t.stderr}`);
          tshark = t.stdout;
        }
        return { r, ping, frames, linktype, tshark };
      } finally {
        lg.kill("SIGKILL"); // no-op if it has ended
        await lg.result();
      }
    })
  );
}

netnsSteps.push({
  name: "the host pings a guest through a tap in a network namespace, 0 loss; the " +
    "pcap reads back with the ICMP frames",
  async fn() {
    const { r, ping, frames, linktype, tshark } = await tapCase();
    const why = describe(r);
    console.log(`  host ping via ${ping.tool}: ${ping.received}/${ping.transmitted} answered`);
    assert.equal(ping.transmitted, 5, ping.output);
    assert.equal(ping.received, 5, `${ping.tool}:\n${ping.output}\n${why}`);
    assert.equal(ping.lossPercent, 0, ping.output);
    assert.equal(r.code, 143, `ended by SIGTERM: ${why}`);
    assert.ok(!hasStackTrace(r.stderr), why);
    const stats = tapStats(r.stderr, "lgt0");
    assert.ok(stats.txFrames >= 6, `ARP reply + 5 echo replies went out: ${why}`);
    assert.equal(stats.txErrors, 0, why);

    assert.equal(linktype, 1);
    const d = frames.map(decode);
    const requests = d.filter((f) =>
      f.icmp?.type === 8 && f.icmp.src === "10.77.0.1" && f.icmp.dst === "10.77.0.2"
    );
    const replies = d.filter((f) =>
      f.icmp?.type === 0 && f.icmp.src === "10.77.0.2" && f.icmp.dst === "10.77.0.1"
    );
    assert.equal(requests.length, 5, "5 echo requests from the host in the pcap");
    assert.equal(replies.length, 5, "5 echo replies from the guest in the pcap");
    assert.deepEqual(
      replies.map((f) => [f.icmp!.id, f.icmp!.seq]),
      requests.map((f) => [f.icmp!.id, f.icmp!.seq]),
    );
    for (const f of replies) assert.equal(f.src, "02:00:00:00:00:00", "from the guest's MAC");
    assert.ok(
      d.some((f) => f.arp?.op === 2 && f.arp.spa === "10.77.0.2"),
      "the guest's ARP reply is in the pcap",
    );
    if (tshark === null) {
      console.log("  tshark is not installed: the pcap was checked with our parser only");
    } else {
      const types = lines(tshark).filter((l) => l !== "");
      const [req, rep] = ["8", "0"].map((t) => types.filter((x) => x === t).length);
      console.log(`  tshark -r: ${frames.length} frames, ${req} echo requests, ${rep} replies`);
      assert.equal(lines(tshark).length, frames.length, "tshark reads as many frames as we do");
      assert.equal(req, 5, `tshark: ${tshark}`);
      assert.equal(rep, 5, `tshark: ${tshark}`);
    }
  },
});

// ---- 5. Malformed frames from the tap --------------------------------------------

/**
 * Frames of the given lengths onto IFACE with an AF_PACKET raw socket, one
 * line each: `sent N` or `refused N ERRNO`.
 */
const PY_SEND = `
import errno, socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((sys.argv[1], 0))
head = bytes.fromhex("020000000000" "02000000fe01" "88b5")
for n in map(int, sys.argv[2:]):
    frame = (head + bytes(range(256)) * 40)[:n]
    try:
        s.send(frame)
        print("sent %d" % n)
    except OSError as e:
        print("refused %d %s" % (n, errno.errorcode.get(e.errno, e.errno)))
`;

interface MalformedResult {
  r: CliResult;
  sent: string;
  ping: PingResult;
}

function malformedCase(): Promise<MalformedResult> {
  return withNetns("bad", async (ns) => {
    const lg = ns.spawnCli(
      [
        "run",
        "-v",
        ...TIMEOUT,
        "--net",
        "tap:lgt0,ip=10.78.0.1/24",
        "netd",
        "--",
        "ip=10.78.0.2/24",
      ],
      { killAfterMs: 30_000 },
    );
    try {
      await lg.waitFor(/^netd: 10\.78\.0\.2\/24 on net0/m, 15_000);
      // Room for frames over 1514 bytes on the host side of the tap.
      await ns.ip(["link", "set", "lgt0", "mtu", "9000"]);
      // Runts (10, 13 bytes): Linux refuses to send a frame shorter than its
      // Ethernet header (dev_validate_header: len < min_header_len is EINVAL,
      // even with CAP_SYS_RAWIO), and a tap reader only ever gets what the
      // kernel sends, so a runt cannot reach us here; they are tried anyway
      // and counted only if the kernel let them through. 14 and 1514 bytes
      // are the edges of what is well formed; 1515 and 9014 are oversize.
      const py = await ns.run("python3", [
        "-c",
        PY_SEND,
        "lgt0",
        "10",
        "13",
        "14",
        "1514",
        "1515",
        "9014",
      ]);
      assert.equal(py.code, 0, `python3 AF_PACKET sender failed:\n${py.stderr}`);
      const ping = await ns.ping("10.78.0.2", { count: 3, interval: 0.2, wait: 1 });
      lg.kill("SIGTERM");
      return { r: await lg.result(), sent: py.stdout, ping };
    } finally {
      lg.kill("SIGKILL");
      await lg.result();
    }
  });
}

netnsSteps.push({
  name: "malformed frames from the tap (oversize; runts where the kernel sends " +
    "them) are dropped and counted, the guest goes on",
  async fn() {
    const { r, sent, ping } = await malformedCase();
    const why = describe(r);
    const out = lines(sent);
    const ok = (n: number) => out.includes(`sent ${n}`);
    assert.ok(ok(14) && ok(1514) && ok(1515) && ok(9014), `sender: ${sent}`);
    const runts = [10, 13].filter(ok);
    if (runts.length === 0) console.log("  runts: refused by the kernel (EINVAL), as expected");
    const malformed = 2 + runts.length;
    assert.equal(r.code, 143, why);
    const stats = tapStats(r.stderr, "lgt0");
    console.log(`  tap lgt0: ${JSON.stringify(stats)}`);
    assert.equal(stats.rxDroppedMalformed, malformed, `1515, 9014 (and any runt): ${why}`);
    assert.ok(stats.rxDroppedMalformed >= 2);
    assert.equal(ping.transmitted, 3, ping.output);
    assert.equal(ping.received, 3, `the guest still answers after them:\n${ping.output}`);
  },
});

// ---- 5a. Tap frames reach the guest in order ----------------------------------------

/**
 * UDP echo (netd's port 7) with up to W datagrams in flight, numbered: the
 * numbers of the echoes in the order they came back, as JSON. A reply
 * that does not come within half a second counts as lost (none should be).
 */
const PY_UDP_ORDER = `
import json, socket, struct, sys, time
addr, n, w = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
s.connect((addr, 7))
s.settimeout(0.5)
got, sent, lost, end = [], 0, 0, time.monotonic() + 20
while (sent < n or sent - lost > len(got)) and time.monotonic() < end:
    while sent < n and sent - lost - len(got) < w:
        s.send(struct.pack("!I", sent) + b"x" * 60)
        sent += 1
    try:
        got.append(struct.unpack("!I", s.recv(2048)[:4])[0])
    except socket.timeout:
        lost = sent - len(got)
print(json.dumps({"sent": sent, "got": got}))
`;

function udpOrderCase(): Promise<{ r: CliResult; sent: number; got: number[] }> {
  return withNetns("ord", async (ns) => {
    const lg = ns.spawnCli(
      [
        "run",
        ...TIMEOUT,
        "--net",
        "tap:lgt0,ip=10.79.0.1/24",
        "netd",
        "--",
        "ip=10.79.0.2/24",
      ],
      { killAfterMs: 40_000 },
    );
    try {
      await lg.waitFor(/^netd: 10\.79\.0\.2\/24 on net0/m, 15_000);
      const py = await ns.run("python3", ["-c", PY_UDP_ORDER, "10.79.0.2", "3000", "8"], {
        killAfterMs: 30_000,
      });
      assert.equal(py.code, 0, `python3 UDP sender failed:\n${py.stderr}`);
      lg.kill("SIGTERM");
      const { sent, got } = JSON.parse(py.stdout) as { sent: number; got: number[] };
      return { r: await lg.result(), sent, got };
    } finally {
      lg.kill("SIGKILL");
      await lg.result();
    }
  });
}

netnsSteps.push({
  name: "bursts of UDP echoes to netd on a tap (8 in flight) come back in the order sent: " +
    "GETDMA fills the receive ring circularly, as the guest reads it",
  async fn() {
    const { r, sent, got } = await udpOrderCase();
    const why = describe(r);
    const late = got.filter((x, i) => i > 0 && x < got[i - 1]).length;
    const dups = got.length - new Set(got).size;
    console.log(`  ${got.length} of ${sent} echoes, ${late} after a later one, ${dups} twice`);
    assert.equal(sent, 3000, why);
    assert.ok(got.length >= 2900, `${got.length} of ${sent} echoes came back: ${why}`);
    assert.equal(dups, 0);
    assert.equal(late, 0, `${late} of ${got.length} echoes came back after a later one`);
  },
});

// ---- 5b. The run loop's blocking wait on a busy tap ------------------------------------

/**
 * An API program's own 10 ms interval next to netd on a tap pinged every
 * 200 ms (the tap is busy: frames less than 250 ms apart): the program's
 * timers keep their pace. Before, the library blocked the main thread on
 * the tap too, and the interval fired about once per frame or 50 ms wait
 * (~30% of its callbacks, some ~240 ms late); the blocking wait is the
 * CLI's now, an API program's only if it asks (GuestOptions.blockingWait).
 */
function apiTimersCase(blocking: boolean): Promise<
  {
    ticks: number;
    worstLateMs: number;
    waitsOff: number;
    inPlace: number;
    ping: PingResult;
    stderr: string;
  }
> {
  return withNetns(blocking ? "apib" : "apit", async (ns) => {
    const script = new URL("./helpers/api_tap_timers.ts", import.meta.url).pathname;
    const wait = blocking ? ["blocking"] : [];
    const p = ns.spawn(
      Deno.execPath(),
      ["run", "--quiet", "-A", script, "10.86.0.1", "10.86.0.2", ...wait],
      {
        killAfterMs: 30_000,
      },
    );
    try {
      await p.waitFor(/^ready$/m, 15_000);
      // 2.2 s of pings inside the program's 3 s (15 took 2.8 s: under load the last fell after
      // its end, 13 of 15 answered).
      const ping = await ns.ping("10.86.0.2", { count: 12, interval: 0.2, wait: 1 });
      const r = await p.result();
      const line = r.stdout.trim().split("\n").pop()!;
      return { ...JSON.parse(line), ping, stderr: r.stderr };
    } finally {
      p.kill("SIGKILL"); // no-op if it has ended
      await p.result();
    }
  });
}

netnsSteps.push({
  name: "an API program's own timers keep their pace while a tap next to it is busy " +
    "(with blockingWait, fire at least every ~50 ms)",
  async fn() {
    const { ticks, worstLateMs, ping, stderr } = await apiTimersCase(false);
    console.log(
      `  ${ticks} callbacks of a 10 ms interval in 3 s (worst ${worstLateMs} ms late); pings ${ping.received}/${ping.transmitted}`,
    );
    assert.ok(ping.received >= ping.transmitted - 1, ping.output + stderr);
    // ~300 expected; a loaded machine may lose some, the library's wait lost ~70-90%.
    assert.ok(
      ticks >= 150,
      `${ticks} callbacks of a 10 ms interval in 3 s (worst ${worstLateMs} ms late)`,
    );
    // Asked for (blockingWait: true): a wait lasts 50 ms at most, and the turn
    // after it runs the timers due: an interval fires at least ~every 50 ms
    // (~60-100 in 3 s; before, only at the next frame: ~20).
    const b = await apiTimersCase(true);
    console.log(
      `  with blockingWait: ${b.ticks} callbacks (worst ${b.worstLateMs} ms late); pings ${b.ping.received}/${b.ping.transmitted}; ${b.waitsOff} waits left to the event loop, ${b.inPlace} in place`,
    );
    assert.ok(b.ping.received >= b.ping.transmitted - 1, b.ping.output + b.stderr);
    assert.ok(b.ticks >= 40, `with blockingWait: ${b.ticks} callbacks of a 10 ms interval in 3 s`);
    // The wait was asked for and is used: the console's read of the program's input (open,
    // nothing written) kept it off at every halt before (sys/clock.ts poolOps localRead).
    assert.equal(b.waitsOff, 0, JSON.stringify(b));
  },
});

interface BusyTapResult {
  r: CliResult;
  inPlace: number;
  burst: PingResult;
  idleCpu: number;
  quietCpu: number;
  stopMs: number;
}

/**
 * netd on a tap: idle, a fast ping burst (frames 10 ms apart: the run loop
 * blocks on the tap itself, host/idle_wait.ts), idle again, then a second
 * burst cut short by SIGTERM.
 */
function busyTapCase(): Promise<BusyTapResult> {
  return withNetns("busy", async (ns) => {
    const lg = ns.spawnCli(
      [
        "run",
        "-v",
        ...TIMEOUT,
        "--net",
        "tap:lgt0,ip=10.83.0.1/24",
        "netd",
        "--",
        "ip=10.83.0.2/24",
      ],
      { killAfterMs: 30_000 },
    );
    try {
      await lg.waitFor(/^netd: 10\.83\.0\.2\/24 on net0 \(MAC /m, 15_000);
      const pid = lg.child.pid;
      const idle0 = await cpuSeconds(pid);
      await new Promise((r) => setTimeout(r, 1500));
      const idleCpu = (await cpuSeconds(pid))! - idle0!;
      const burst = await ns.ping("10.83.0.2", { count: 50, interval: 0.01, wait: 1 });
      // The tap counts as busy for 250 ms after its last frames (devices/net/tap.ts HOT_MS).
      await new Promise((r) => setTimeout(r, 1200));
      const quiet0 = await cpuSeconds(pid);
      await new Promise((r) => setTimeout(r, 1500));
      const quietCpu = (await cpuSeconds(pid))! - quiet0!;
      const second = ns.ping("10.83.0.2", { count: 200, interval: 0.005, wait: 1 });
      await new Promise((r) => setTimeout(r, 500));
      const t0 = performance.now();
      lg.kill("SIGTERM");
      const r = await lg.result();
      const stopMs = performance.now() - t0;
      await second;
      return {
        r,
        inPlace: counters(r.stderr, "netd").haltWaitsInPlace,
        burst,
        idleCpu,
        quietCpu,
        stopMs,
      };
    } finally {
      lg.kill("SIGKILL"); // no-op if it has ended
      await lg.result();
    }
  });
}

netnsSteps.push({
  name: "a tap guest answers a fast ping burst, uses almost no CPU while idle before " +
    "and after it, and SIGTERM during a burst ends the run at once",
  async fn() {
    const { r, inPlace, burst, idleCpu, quietCpu, stopMs } = await busyTapCase();
    const why = describe(r);
    console.log(
      `  burst ${burst.received}/${burst.transmitted}; CPU in 1.5 s idle: ${
        idleCpu.toFixed(2)
      } s ` +
        `before, ${quietCpu.toFixed(2)} s after; SIGTERM to exit ${
          stopMs.toFixed(0)
        } ms; ${inPlace} halts answered in place`,
    );
    assert.equal(burst.received, burst.transmitted, burst.output);
    // The busy tap's frames reach the guest inside its halt (the halt wait in
    // place, host/host.ts), not through a park and resume of its stack: nearly
    // every ping once the tap counts as busy (0 before).
    assert.ok(
      inPlace >= burst.received / 2,
      `${inPlace} halts answered in place, ${burst.received} pings in the first burst`,
    );
    // A run loop that spun would use ~1.5 s of CPU here; an idle one uses ~0.
    assert.ok(idleCpu < 0.3, `idle before the burst: ${idleCpu} s of CPU in 1.5 s`);
    assert.ok(quietCpu < 0.3, `idle after the burst: ${quietCpu} s of CPU in 1.5 s`);
    assert.equal(r.code, 143, why);
    assert.ok(stopMs < 2000, `SIGTERM during a burst: exit after ${stopMs} ms`);
    assert.ok(!hasStackTrace(r.stderr), why);
  },
});

/**
 * netd on a tap as users run it, at a shell: its console's stdin open (a
 * pipe nobody writes). The console's read of it, in flight on Deno's
 * blocking pool for good, kept the blocking idle wait off (a pool op whose
 * end the wait would not see: 0 halts answered in place, every frame
 * through the event loop). Now the console polls stdin first and the wait
 * polls stdin too (sys/clock.ts poolOps): the frames reach netd inside its
 * halt, and no read of stdin is ever in flight without input.
 */
function openStdinTapCase(): Promise<{ r: CliResult; ping: PingResult }> {
  return withNetns("open", async (ns) => {
    const lg = ns.spawnCli(
      [
        "run",
        "-v",
        ...TIMEOUT,
        "--net",
        "tap:lgt0,ip=10.89.0.1/24",
        "netd",
        "--",
        "ip=10.89.0.2/24",
      ],
      { stdin: "piped", killAfterMs: 30_000 },
    );
    try {
      await lg.waitFor(/^netd: 10\.89\.0\.2\/24 on net0 \(MAC /m, 15_000);
      const ping = await ns.ping("10.89.0.2", { count: 100, interval: 0.01, wait: 1 });
      lg.kill("SIGTERM");
      return { r: await lg.result(), ping };
    } finally {
      lg.kill("SIGKILL");
      await lg.result();
    }
  });
}

netnsSteps.push({
  name: "netd on a tap with its stdin open (a pipe, as at a shell) answers in its halt " +
    "(the console's stdin does not keep the blocking wait off)",
  async fn() {
    const { r, ping } = await openStdinTapCase();
    const why = describe(r);
    const c = counters(r.stderr, "netd");
    console.log(
      `  ${ping.received}/${ping.transmitted} answered; ${c.haltWaitsInPlace} in place, ` +
        `${c.waitsOffForPoolOps} waits left to the event loop, ${c.waitsWatchingPoolOps} ` +
        `watching stdin`,
    );
    assert.equal(ping.received, ping.transmitted, ping.output);
    // Before: 0 in place, ~100 left to the event loop. A tenth, not a half: in a fresh-clone CI
    // run beside two other engineers' loads (session 7) 18 of 100 were in place, none left to
    // the event loop (it is the count below that the broken mechanism moves).
    assert.ok(c.haltWaitsInPlace >= ping.received / 10, why);
    assert.equal(c.waitsOffForPoolOps, 0, why); // no input: no read in flight, ever
    assert.ok(c.waitsWatchingPoolOps > 0, why);
    assert.equal(r.code, 143, why);
  },
});

/**
 * A shell on a busy tap, pinged 120 ms apart: most waits in place end by
 * their 50 ms cap, not a frame, each after the tap took the guest's next
 * receive buffer (TapNetDevice.armWait): the buffer must go back untouched
 * every time (disarmWait), or the guest's driver would find a "frame" of
 * a few bytes (its bad-length count). Then `net` from stdin prints the
 * driver's counts.
 */
function armedTapCase(): Promise<{ r: CliResult; ping: PingResult }> {
  return withNetns("arm", async (ns) => {
    const lg = ns.spawnCli(
      [
        "run",
        "-v",
        ...TIMEOUT,
        "--net",
        "tap:lgt0,ip=10.81.0.1/24",
        "shell",
        "--",
        "ip=10.81.0.2/24",
      ],
      { stdin: "piped", killAfterMs: 40_000 },
    );
    try {
      await lg.waitFor(/\$ $/m, 15_000);
      // All input now, and its end: no console read is in flight while the host pings
      // (one would keep the guest from waiting in place: sys/clock.ts poolOps); the
      // shell's own ping keeps it busy meanwhile.
      await lg.write("ping 10.81.0.1 5\nnet\npoweroff\n");
      await lg.closeStdin();
      const ping = await ns.ping("10.81.0.2", { count: 25, interval: 0.12, wait: 1 });
      return { r: await lg.result(), ping };
    } finally {
      lg.kill("SIGKILL"); // no-op if it has ended
      await lg.result();
    }
  });
}

netnsSteps.push({
  name: "waits in place that end without a frame give the receive buffer they took back " +
    "untouched: the guest's driver counts no bad frame",
  async fn() {
    const { r, ping } = await armedTapCase();
    const why = describe(r);
    assert.equal(r.code, 0, why);
    assert.equal(ping.received, ping.transmitted, ping.output);
    const m = /rx (\d+) packets, \d+ bytes, (\d+) dropped \((\d+) bad length\)/.exec(r.stdout);
    assert.ok(m, `no rx line from 'net':\n${why}`);
    const [rx, dropped, bad] = [+m[1], +m[2], +m[3]];
    const inPlace = counters(r.stderr, "shell").haltWaitsInPlace;
    console.log(`  rx ${rx} packets, ${dropped} dropped (${bad} bad length); ${inPlace} in place`);
    assert.ok(rx >= ping.received, why);
    assert.equal(bad, 0, why);
    assert.equal(dropped, 0, why);
    assert.ok(inPlace >= ping.received / 2, `${inPlace} halts answered in place: ${why}`);
  },
});

/** Two netd guests on two taps in one host, both pinged fast at once. */
function twoTapsCase(): Promise<{ r: CliResult; pings: PingResult[] }> {
  return inTempDir((dir) =>
    withNetns("two", async (ns) => {
      const config = await writeConfig(dir, [
        { name: "a", image: "netd", net: ["tap:lgt0,ip=10.84.0.1/24"], args: "ip=10.84.0.2/24" },
        { name: "b", image: "netd", net: ["tap:lgt1,ip=10.84.1.1/24"], args: "ip=10.84.1.2/24" },
      ]);
      const lg = ns.spawnCli(["run", ...TIMEOUT, "--config", config], { killAfterMs: 30_000 });
      try {
        await lg.waitFor(/netd: 10\.84\.0\.2\/24 on net0/, 15_000);
        await lg.waitFor(/netd: 10\.84\.1\.2\/24 on net0/, 15_000);
        const pings = await Promise.all(
          ["10.84.0.2", "10.84.1.2"].map((a) =>
            ns.ping(a, { count: 100, interval: 0.005, wait: 1 })
          ),
        );
        lg.kill("SIGTERM");
        return { r: await lg.result(), pings };
      } finally {
        lg.kill("SIGKILL");
        await lg.result();
      }
    })
  );
}

netnsSteps.push({
  name: "two guests on two taps in one host both answer fast pings at once, 0 loss",
  async fn() {
    const { r, pings } = await twoTapsCase();
    for (const p of pings) assert.equal(p.received, p.transmitted, p.output);
    assert.equal(r.code, 143, describe(r));
  },
});

/** Echo latencies (ms) of lines typed while the tap was busy, and while it was idle. */
interface Echoes {
  busy: number[];
  idle: number[];
  ping: PingResult;
}

/**
 * Type `echo lNx` lines to the shell one at a time (each ended by `eol`)
 * and take each line's ms from its write to its echo, in three rounds of
 * two halves: netd's tap busy (pinged 100 ms apart: frames under 250 ms
 * apart, so netd's run loop blocks in its idle wait, whose cap of 50 ms a
 * held line waits for), then idle (no frame for 300 ms: no blocking wait,
 * so nothing can hold a line; the reference). Each line comes 55-65 ms
 * after the last one's echo (random: no lock-step with the wait's cap):
 * where a wait that misses stdin's input holds the most lines (with the
 * wait's poll of stdin left out, 50-70 ms after the echo: 60 % of the
 * lines held 20-50 ms; 0-40 or 70-150 ms: 5-40 %; an event-loop turn
 * gives the console's poll its waker and frees the line).
 */
async function echoBusyAndIdle(
  ns: Netns,
  addr: string,
  lg: LiveProcess,
  eol: string,
): Promise<Echoes> {
  const out: Echoes = { busy: [], idle: [], ping: {} as PingResult };
  const pings: PingResult[] = [];
  let n = 0;
  const typeFor = async (ms: number, into: number[]) => {
    const end = performance.now() + ms;
    while (performance.now() < end) {
      const i = n++;
      const t0 = performance.now();
      await lg.write(`echo l${i}x${eol}`);
      await lg.waitFor(`\nl${i}x`, 5000);
      into.push(performance.now() - t0);
      await new Promise((r) => setTimeout(r, 55 + Math.random() * 10));
    }
  };
  for (let round = 0; round < 3; round++) {
    const pinging = ns.ping(addr, { count: 16, interval: 0.1, wait: 1 });
    await new Promise((r) => setTimeout(r, 250)); // the tap is busy from here on
    await typeFor(900, out.busy);
    pings.push(await pinging);
    await new Promise((r) => setTimeout(r, 300)); // and idle from here on
    await typeFor(900, out.idle);
  }
  const transmitted = pings.reduce((a, p) => a + p.transmitted, 0);
  const received = pings.reduce((a, p) => a + p.received, 0);
  out.ping = {
    tool: pings[0].tool,
    transmitted,
    received,
    lossPercent: transmitted === 0 ? 0 : Math.round(100 * (1 - received / transmitted)),
    rttMs: pings.flatMap((p) => p.rttMs),
    output: pings.map((p) => p.output).join("\n"),
  };
  return out;
}

/** The `q` quantile of `xs` (0.5: the median; nearest rank). */
function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? Infinity;
}

function echoSummary(e: Echoes): string {
  const show = (lat: number[]) =>
    `${lat.map((ms) => ms.toFixed(1)).join(" ")} (median ${quantile(lat, 0.5).toFixed(1)}, ` +
    `75th percentile ${quantile(lat, 0.75).toFixed(1)})`;
  return `echo ms, tap busy: ${show(e.busy)}; idle: ${show(e.idle)}`;
}

/**
 * Typed lines were not held by netd's blocking wait: the 75th percentile of the echoes while
 * the tap is busy is at most {@link HELD_MS} over that while it is idle, in the same run. Not
 * a count of slow lines (load delays some lines 0.1-0.5 s; a held one is 0-50 ms late), nor a
 * bound on one figure (at load 7, two busy loops of the tests' priority, busy medians of
 * 5-35 ms came with the wait working), nor the median: with the wait's poll of stdin left
 * out, 50-75 % of the busy lines were held, busy medians 5-40 ms over idle, 75th
 * percentiles 29-44 ms over (eight runs, quiet machine). With the blocking wait off at that
 * load (nothing can hold a line), busy 75th percentiles were 1.3 under to 4.9 ms over idle.
 */
function assertNotHeld(e: Echoes, why: string): void {
  assert.ok(e.busy.length >= 10 && e.idle.length >= 10, why);
  // Busy against idle in the same run: load lifts both; held lines (most of them) the busy one.
  const over = quantile(e.busy, 0.75) - quantile(e.idle, 0.75);
  assert.ok(
    over <= HELD_MS,
    `typed lines held (busy 75th percentile ${over.toFixed(1)} ms over idle): ${why}`,
  );
}

/** The bound on the busy 75th percentile's excess above. */
const HELD_MS = 20;

/**
 * A shell on the console next to netd on a busy tap (found by attack): each
 * typed line must reach the shell at once. While netd's run loop blocked in
 * poll(2) with the console's stdin read in flight on Deno's blocking pool,
 * the read's end did not reach the fds the wait polls (an async op started
 * after the event loop's last turn leaves Deno's op driver marked as woken:
 * sys/clock.ts poolOps), so a line waited for netd's next frame or the
 * wait's 50 ms cap (pinged 45 ms apart: 4-7 of 30 lines 40-50 ms late).
 * Then the wait was left off while the read was in flight, i.e. all the
 * time; now the console polls stdin before it reads and the wait polls
 * stdin too: netd waits in its halt between the lines ({@link
 * echoBusyAndIdle}, {@link assertNotHeld}).
 */
function consoleNextToTapCase(): Promise<{ r: CliResult; echoes: Echoes }> {
  return inTempDir((dir) =>
    withNetns("cons", async (ns) => {
      const config = await writeConfig(dir, [
        { name: "nd", image: "netd", net: ["tap:lgt0,ip=10.85.0.1/24"], args: "ip=10.85.0.2/24" },
        { name: "sh", image: "shell", console: "stdio" },
      ]);
      const lg = ns.spawnCli(["run", "-v", ...TIMEOUT, "--config", config], {
        stdin: "piped",
        killAfterMs: 40_000,
      });
      try {
        await lg.waitFor(/netd: 10\.85\.0\.2\/24 on net0/, 15_000);
        await lg.waitFor(/\$ $/m, 15_000);
        const echoes = await echoBusyAndIdle(ns, "10.85.0.2", lg, "\n");
        lg.kill("SIGTERM");
        return { r: await lg.result(), echoes };
      } finally {
        lg.kill("SIGKILL");
        await lg.result();
      }
    })
  );
}

netnsSteps.push({
  name: "a shell's typed lines reach it at once next to netd on a busy tap (its blocking " +
    "wait does not hide the console's read)",
  async fn() {
    const { r, echoes } = await consoleNextToTapCase();
    assertShellBesideBusyTap(echoes, counters(r.stderr, "nd"), describe(r), 4);
  },
});

/**
 * What both shell-beside-netd steps ask (a pipe, a terminal): every ping but
 * one answered, lines typed while the tap is busy not held ({@link
 * assertNotHeld}), the waits watched stdin, and netd waited in its halt for
 * at least 1 / `inPlaceDivisor` of the pings (0 in place while any read was
 * in flight).
 */
function assertShellBesideBusyTap(
  echoes: Echoes,
  nd: Counters,
  why: string,
  inPlaceDivisor: number,
): void {
  const { ping } = echoes;
  const echo = echoSummary(echoes);
  console.log(
    `  ${echo}; ${nd.haltWaitsInPlace} in place, ${nd.waitsOffForPoolOps} waits left to the ` +
      `event loop, ${nd.waitsWatchingPoolOps} watching stdin; ping ${ping.received}/${ping.transmitted}`,
  );
  assert.ok(ping.received >= ping.transmitted - 1, ping.output);
  assertNotHeld(echoes, `${echo}: ${why}`);
  assert.ok(nd.waitsWatchingPoolOps > 0, why);
  assert.ok(nd.haltWaitsInPlace >= ping.received / inPlaceDivisor, why);
}

/**
 * The same at a terminal (a pty from util-linux `script`, the console in
 * cbreak mode): lines typed to the shell come at once, and netd waits in
 * its halt while the console polls the terminal (before: 0 in place, every
 * frame through the event loop, while the read of the terminal was in
 * flight).
 */
function ptyNextToTapCase(): Promise<{ echoes: Echoes; nd: Counters }> {
  return inTempDir((dir) =>
    withNetns("pty", async (ns) => {
      const config = await writeConfig(dir, [
        { name: "nd", image: "netd", net: ["tap:lgt0,ip=10.88.0.1/24"], args: "ip=10.88.0.2/24" },
        { name: "sh", image: "shell", console: "stdio" },
      ]);
      const quote = (a: string) => `'${a.replaceAll("'", `'\\''`)}'`;
      const cmd =
        [...LGUEST_CMD, "run", "-v", ...TIMEOUT, "--config", config].map(quote).join(" ") +
        ` 2>${quote(`${dir}/stderr`)}`;
      const lg = ns.spawn("script", ["-qfc", cmd, "/dev/null"], {
        stdin: "piped",
        killAfterMs: 40_000,
      });
      try {
        await lg.waitFor(/\$ $/m, 15_000);
        const echoes = await echoBusyAndIdle(ns, "10.88.0.2", lg, "\r");
        lg.kill("SIGTERM");
        await lg.result();
        return { echoes, nd: counters(await Deno.readTextFile(`${dir}/stderr`), "nd") };
      } finally {
        lg.kill("SIGKILL");
        await lg.result();
      }
    })
  );
}

netnsSteps.push({
  name: "at a terminal, a shell's typed lines reach it at once next to netd on a busy tap, " +
    "and netd waits in its halt meanwhile",
  async fn() {
    if (!onPath("script")) {
      console.log("  skipped: no util-linux 'script' for a pty");
      return;
    }
    const { echoes, nd } = await ptyNextToTapCase();
    // A tenth: 35-42 of 48 here (0 before); a terminal's run has the supervisor's 50 ms
    // heartbeat, whose turns end some waits, and a frame after a wait that ran its time takes
    // the run loop's way.
    assertShellBesideBusyTap(echoes, nd, JSON.stringify(nd), 10);
  },
});

/**
 * netd on a tap next to test-spin, a guest that computes without a break:
 * pinged 10 ms apart, netd must answer. The spinner's fuel looks each
 * suspend its stack for a microtask (engines/jspi.ts lazySuspending, from
 * its first park on), and a frame's way to netd is a chain of promise hops
 * that runs in those gaps; when a look was a plain call (8f444ac) each hop
 * waited for the end of the spinner's slice: 26-65 % of these pings lost,
 * replies 0.4-1.5 s late.
 */
function tapNextToSpinnerCase(): Promise<{ r: CliResult; ping: PingResult }> {
  return inTempDir((dir) =>
    withNetns("spin", async (ns) => {
      const config = await writeConfig(dir, [
        { name: "nd", image: "netd", net: ["tap:lgt0,ip=10.87.0.1/24"], args: "ip=10.87.0.2/24" },
        { name: "spin", image: "test-spin" },
      ]);
      const lg = ns.spawnCli(["run", ...TIMEOUT, "--config", config], { killAfterMs: 30_000 });
      try {
        await lg.waitFor(/netd: 10\.87\.0\.2\/24 on net0/, 15_000);
        const ping = await ns.ping("10.87.0.2", { count: 100, interval: 0.01, wait: 1 });
        lg.kill("SIGTERM");
        return { r: await lg.result(), ping };
      } finally {
        lg.kill("SIGKILL");
        await lg.result();
      }
    })
  );
}

netnsSteps.push({
  name: "a tap guest next to a guest that spins answers pings 10 ms apart",
  async fn() {
    const { r, ping } = await tapNextToSpinnerCase();
    const rtt = ping.rttMs.toSorted((a, b) => a - b);
    const median = rtt[rtt.length >> 1] ?? Infinity;
    console.log(
      `  ${ping.received}/${ping.transmitted} answered next to the spinner, median RTT ${
        median.toFixed(1)
      } ms`,
    );
    // 0 lost and ~3 ms on a quiet machine; the bounds leave room for a loaded one (8f444ac:
    // 26-65 % lost, median 0.4-1 s).
    assert.ok(ping.received >= ping.transmitted * 0.85, ping.output);
    assert.ok(median < 100, ping.output);
    assert.equal(r.code, 143, describe(r));
  },
});

// ---- 6. Net configuration errors ------------------------------------------------------

function configCase(): Promise<CliResult[]> {
  return inTempDir(async (dir) => {
    const write = async (file: string, net: string) => {
      const path = `${dir}/${file}`;
      await Deno.writeTextFile(
        path,
        `{ "guests": [\n  { "name": "a", "image": "netd",\n    "net": [${
          JSON.stringify(net)
        }], "args": "ip=10.0.0.1/24" } ] }\n`,
      );
      return path;
    };
    const option = await write("option.json", "segment:lan,mtu=9000");
    const long = await write("long.json", "tap:abcdefghijklmnop"); // 16 characters
    return await Promise.all([
      runCli(["run", "--config", option]),
      runCli(["run", "--config", long]),
      runCli(["run", "--net", "segment:lan,mtu=9000", "netd"]),
      runCli(["run", "--net", "tap:abcdefghijklmnop", "netd"]),
    ]);
  });
}

segmentSteps.push({
  name: "config errors — unknown segment option, tap name of 16 characters: one " +
    "line, exit 125",
  async fn() {
    const [option, long, cliOption, cliLong] = await configCase();
    const expect: [CliResult, RegExp][] = [
      [option, /^lguest: \S+option\.json: line 3: guests\[0\]\.net\[0\]: .*unknown option 'mtu'/],
      [long, /^lguest: \S+long\.json: line 3: guests\[0\]\.net\[0\]: .*longer than 15 characters/],
      [cliOption, /^lguest: --net segment:lan,mtu=9000: unknown option 'mtu'/],
      [cliLong, /^lguest: --net tap:abcdefghijklmnop: interface name longer than 15 characters/],
    ];
    for (const [r, re] of expect) {
      const why = describe(r);
      assert.equal(r.code, EXIT.USAGE, why);
      assert.equal(r.stdout, "", why);
      assert.equal(lines(r.stderr).length, 1, why);
      assert.match(r.stderr, re, why);
    }
  },
});

// ---- The namespace helper's veth pair (the bench's reference path) ------------------

function vethCase(): Promise<PingResult> {
  return withNetns("va", async (a) => {
    const b = await Netns.create("vb");
    try {
      await a.veth("lgv0", "lgv1", { peer: b, addr: "10.79.0.1/24", peerAddr: "10.79.0.2/24" });
      return await a.ping("10.79.0.2", { count: 3, interval: 0.2, wait: 1 });
    } finally {
      await b.remove();
    }
  });
}

netnsSteps.push({
  name: "helper — a veth pair between two namespaces answers ping",
  async fn() {
    const p = await vethCase();
    assert.deepEqual([p.transmitted, p.received, p.lossPercent], [3, 3, 0], p.output);
    assert.equal(p.rttMs.length, 3, p.output);
  },
});

// ---- The tests ----------------------------------------------------------------------

Deno.test({
  name: "net e2e: guests on segments (several in one host, --config)",
  ...SANITIZERS_OFF,
  async fn(t) {
    await Promise.allSettled(segmentSteps.map((st) => t.step({ ...st, ...SANITIZERS_OFF })));
  },
});

Deno.test({
  name: "net e2e: a tap in a network namespace the test creates and removes",
  ignore: netnsWhy !== null,
  ...SANITIZERS_OFF,
  async fn(t) {
    await Promise.allSettled(netnsSteps.map((st) => t.step({ ...st, ...SANITIZERS_OFF })));
  },
});

Deno.test({
  name: "tap with ip= or bridge= without --allow-run=ip: one line naming the flag, exit 125",
  ignore: netnsWhy !== null,
  ...SANITIZERS_OFF,
  async fn() {
    // Before: "cannot run 'ip ...' (is iproute2 installed?)", with ip installed.
    await withNetns("perm", async (ns) => {
      const noRun = (net: string) =>
        ns.run(Deno.execPath(), [
          "run",
          "--allow-ffi",
          `${ROOT_PATH}/main.ts`,
          "run",
          "--timeout",
          "5",
          "--net",
          net,
          "netd",
        ], { killAfterMs: 30_000 });
      for (const net of ["tap:lgt0,ip=10.85.0.1/24", "tap:lgt0,bridge=lgbr0"]) {
        const r = await noRun(net);
        assert.equal(r.code, EXIT.USAGE, r.stderr);
        assert.match(
          r.stderr,
          /^lguest: cannot run 'ip [^']+': ip= and bridge= need Deno's --allow-run=ip permission: run with 'deno run --allow-run=ip \.\.\.'.*\n$/,
        );
      }
    });
  },
});

Deno.test({
  name: "a frame that finds a receive buffer with no room counts as dropped, not received",
  ignore: netnsWhy !== null,
  ...SANITIZERS_OFF,
  async fn() {
    // A tap this test creates in its own namespace's stead: the process cannot enter
    // one, so a name and a subnet of its own (pid) in the root namespace, gone at close().
    const { TapNetDevice } = await import("../devices/net/tap.ts");
    const sub = `10.198.${Deno.pid % 250}`;
    const dev = await TapNetDevice.open(`lgz${Deno.pid % 100000}`, { ip: `${sub}.1/24` }, []);
    let asked = 0;
    let offered = 0;
    const ctx = {
      pageAddr: 0,
      memory: { bytes: new Uint8Array(4096) },
      guest: { dead: null },
      name: "z",
      // The guest's buffer has no sections: taken, used_len 0, nothing copied.
      deliver: () => (offered++, 0),
      requestInput: () => asked++,
      log: () => {},
    } as unknown as DeviceContext;
    try {
      dev.init(ctx);
      // The kernel's ARP requests for the peer go out of the tap.
      await runCmd("ping", ["-c", "2", "-i", "0.3", "-W", "1", `${sub}.2`]);
      for (let i = 0; i < 30 && asked === 0; i++) await new Promise((r) => setTimeout(r, 100));
      dev.input(ctx);
      assert.ok(offered > 0, `no frame came from the tap: ${JSON.stringify(dev.stats)}`);
      assert.equal(dev.stats.rxFrames, 0, JSON.stringify(dev.stats));
      assert.equal(dev.stats.rxDroppedNoBuffer, offered, JSON.stringify(dev.stats));
    } finally {
      await dev.close();
    }
  },
});
