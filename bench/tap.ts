/**
 * Tap benchmarks, in network namespaces this benchmark creates and deletes
 * (skipped, with the reason, without root, tun, `ip netns` or ping):
 *
 * - `net.tap.rtt`: ping round-trip time from namespace A to `netd` behind
 *   a tap (`lguest run` inside A), against ping across a veth pair from A
 *   to namespace B. A sample is the median of one ping run's replies; tap
 *   and veth runs alternate.
 * - `net.tap.rtt.floor`: ping round-trip time from A to a minimal C
 *   responder behind a tap of its own in A (`tap_echo.c`: blocking
 *   read(2), the reply made in place, write(2)), against the same veth
 *   pair: what any userspace program behind a tap pays on this machine.
 *   Tap, floor and veth runs take turns in each round (the order rotates),
 *   so the two metrics come from the same rounds; each metric's note gives
 *   the other side (net.tap.rtt against the floor).
 * - `net.tap.pps`: UDP datagrams per second echoed back to a sender in A
 *   by `netd`'s UDP echo (port 7) over the tap, against the same sender
 *   and a host UDP echo process in B across the veth pair. The sender
 *   keeps a window of 16 datagrams in flight for a
 *   fixed time and reports the echoes/s of its best 50 ms window. Both
 *   sender and echo are `udp.c`,
 *   built with the host's clang (skipped without it).
 *
 * @module
 */

import { median, type Metric, metric, paired, pairedJoint, skipped, spread } from "./lib.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const RTT = "net.tap.rtt";
const FLOOR = "net.tap.rtt.floor";
const PPS = "net.tap.pps";
const REF = "veth pair, same run";
const PPS_REF = "host UDP echo across a veth pair, same sender";

/** Build `bench/NAME.c` with the host's clang into `dir`; the binary, or null. */
async function build(dir: string, name: string): Promise<string | null> {
  const bin = `${dir}/${name}`;
  const src = new URL(`./${name}.c`, import.meta.url).pathname;
  const r = await sh("clang", ["-O2", "-o", bin, src]);
  return r.ok ? bin : null;
}

async function sh(cmd: string, args: string[]): Promise<{ ok: boolean; out: string }> {
  try {
    const o = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
    const dec = new TextDecoder();
    return { ok: o.success, out: dec.decode(o.stdout) + dec.decode(o.stderr) };
  } catch (e) {
    return { ok: false, out: (e as Error).message };
  }
}

async function must(cmd: string, args: string[]): Promise<string> {
  const r = await sh(cmd, args);
  if (!r.ok) throw new Error(`${cmd} ${args.join(" ")}: ${r.out.trim()}`);
  return r.out;
}

/**
 * Median RTT in µs of the replies of `count` pings from namespace `ns` to
 * `addr`. A run that lost a reply (later than ping's 1 s `-W`: seen under
 * heavy load, on the C responder too) is said on stderr and run again, twice
 * at most; a sample is always a run with every reply.
 */
async function ping(ns: string, addr: string, count = 200): Promise<number> {
  const args = ["netns", "exec", ns, "ping", "-c", String(count), "-i", "0.002", "-W", "1", addr];
  let last = "";
  for (let attempt = 0; attempt < 3; attempt++) {
    const r = await sh("ip", args);
    const times = [...r.out.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]) * 1000);
    if (r.ok && / 0% packet loss/.test(r.out) && times.length === count) {
      times.sort((a, b) => a - b);
      return times[times.length >> 1];
    }
    last = r.out.trim().split("\n").slice(-3).join(" ");
    console.error(`bench: ping ${addr} lost a reply (${last}); running it again`);
  }
  throw new Error(`bench: ping ${addr}: ${last}`);
}

/** Echoes per second the sender in `ns` gets back from `addr`:`port`. */
async function udpRate(bin: string, ns: string, addr: string, port: number): Promise<number> {
  const out = await must("ip", [
    "netns",
    "exec",
    ns,
    bin,
    "send",
    addr,
    String(port),
    "0.5",
    "16",
  ]);
  const v = Number(out.trim());
  if (!(v > 0)) throw new Error(`bench: UDP sender to ${addr}: ${out.trim()}`);
  return v;
}

async function why(): Promise<string | null> {
  if (Deno.uid() !== 0) return "needs root for network namespaces";
  // (Deno wants --allow-all to stat /dev files; ask test(1) instead.)
  if (!(await sh("test", ["-c", "/dev/net/tun"])).ok) return "no /dev/net/tun";
  if (!(await sh("ip", ["netns", "list"])).ok) return "no 'ip netns' (iproute2)";
  if (!(await sh("ping", ["-V"])).ok) return "no ping";
  return null;
}

/** Wait for `text` on a child's stdout. */
async function until(child: Deno.ChildProcess, text: string, what: string): Promise<void> {
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  while (!seen.includes(text)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`bench: ${what} did not start`);
    seen += value;
  }
  reader.releaseLock();
}

/** Measure both tap metrics (or skip them with the reason). */
export async function benchTap(): Promise<Metric[]> {
  const reason = await why();
  if (reason) {
    return [
      skipped(RTT, "µs", REF, reason),
      skipped(FLOOR, "µs", REF, reason),
      skipped(PPS, "echoes/s", PPS_REF, reason),
    ];
  }
  const a = `lgb-a-${Deno.pid}`, b = `lgb-b-${Deno.pid}`;
  const children: Deno.ChildProcess[] = [];
  const dir = await Deno.makeTempDir({ prefix: "lguest-bench-" });
  try {
    await must("ip", ["netns", "add", a]);
    await must("ip", ["netns", "add", b]);
    await must("ip", ["-n", a, "link", "set", "lo", "up"]);
    await must("ip", ["link", "add", "vb0", "netns", a, "type", "veth", "peer", "vb1", "netns", b]);
    await must("ip", ["-n", a, "addr", "add", "10.88.0.1/24", "dev", "vb0"]);
    await must("ip", ["-n", b, "addr", "add", "10.88.0.2/24", "dev", "vb1"]);
    await must("ip", ["-n", a, "link", "set", "vb0", "up"]);
    await must("ip", ["-n", b, "link", "set", "vb1", "up"]);
    const lguest = new Deno.Command("ip", {
      args: [
        "netns",
        "exec",
        a,
        Deno.execPath(),
        "run",
        "-A",
        MAIN,
        "run",
        "--net",
        "tap:lgb0,ip=10.89.0.1/24",
        "netd",
        "--",
        "ip=10.89.0.2/24",
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    children.push(lguest);
    await until(lguest, "netd:", "netd");
    const echoBin = await build(dir, "tap_echo");
    if (echoBin !== null) {
      const floor = new Deno.Command("ip", {
        args: ["netns", "exec", a, echoBin, "lgc0", "10.90.0.2"],
        stdin: "null",
        stdout: "piped",
        stderr: "null",
      }).spawn();
      children.push(floor);
      await until(floor, "up", "the C tap responder");
      await must("ip", ["-n", a, "addr", "add", "10.90.0.1/24", "dev", "lgc0"]);
      await must("ip", ["-n", a, "link", "set", "lgc0", "up"]);
      await ping(a, "10.90.0.2", 20);
    }
    await ping(a, "10.89.0.2", 20); // warm-up, ARP
    await ping(a, "10.88.0.2", 20);
    const tap = () => ping(a, "10.89.0.2"), veth = () => ping(a, "10.88.0.2");
    const out: Metric[] = [];
    if (echoBin === null) {
      out.push(metric(RTT, "µs", await paired(tap, veth, { min: 5, max: 15 }), REF, false));
      out.push(skipped(FLOOR, "µs", REF, "no clang to build the C tap responder"));
    } else {
      // Each round runs the three in a rotating order; the floor's samples
      // come from the rounds of net.tap.rtt's window.
      const floors: number[] = [];
      let round = 0;
      const rtt = await pairedJoint(async () => {
        const got = new Map<string, number>();
        const runs: [string, () => Promise<number>][] = [
          ["tap", tap],
          ["floor", () => ping(a, "10.90.0.2")],
          ["veth", veth],
        ];
        for (let i = 0; i < 3; i++) {
          const [k, f] = runs[(round + i) % 3];
          got.set(k, await f());
        }
        round++;
        floors.push(got.get("floor")!);
        return [got.get("tap")!, got.get("veth")!];
      }, { min: 5, max: 15 });
      const fv = floors.slice(-rtt.values.length);
      const fr = fv.map((v, i) => v / rtt.refs[i]);
      const fp = { ...rtt, values: fv, ratios: fr, stable: spread(fr) <= rtt.tolerance };
      const m = metric(RTT, "µs", rtt, REF, false), fm = metric(FLOOR, "µs", fp, REF, false);
      const over = rtt.values.map((v, i) => v / fv[i]);
      m.note = `C tap responder (net.tap.rtt.floor) in the same rounds: ${
        fm.value.toPrecision(3)
      } µs; netd ${median(over).toFixed(2)}× the floor, ${
        median(rtt.values.map((v, i) => v - fv[i])).toFixed(1)
      } µs more`;
      fm.note = "a minimal C program behind a tap (bench/tap_echo.c): read(2), reply, write(2)";
      out.push(m, fm);
    }
    const bin = await build(dir, "udp");
    if (bin === null) {
      out.push(skipped(PPS, "echoes/s", PPS_REF, "no clang to build the UDP sender"));
      return out;
    }
    const echo = new Deno.Command("ip", {
      args: ["netns", "exec", b, bin, "echo", "10.88.0.2", "7"],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    children.push(echo);
    await until(echo, "up", "the host UDP echo");
    await udpRate(bin, a, "10.89.0.2", 7); // warm-up
    await udpRate(bin, a, "10.88.0.2", 7);
    const tapRate = () => udpRate(bin, a, "10.89.0.2", 7);
    const pps = await paired(tapRate, () => udpRate(bin, a, "10.88.0.2", 7), {
      min: 5,
      max: 11,
    });
    out.push(metric(PPS, "echoes/s", pps, PPS_REF));
    return out;
  } finally {
    for (const c of children) {
      try {
        c.kill("SIGTERM");
      } catch { /* already gone */ }
      await c.status;
    }
    await sh("ip", ["netns", "del", a]);
    await sh("ip", ["netns", "del", b]);
    await Deno.remove(dir, { recursive: true });
  }
}
