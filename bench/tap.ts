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
 * - `net.tap.rtt.js`: the same from A to a minimal Deno program behind a
 *   tap of its own in A (`tap_echo.ts`: lguest's own blocking wait, i.e.
 *   poll(2) on the tap and Deno's event-loop epoll fds, then read(2), the
 *   reply made in place in JavaScript, write(2)), against the same veth
 *   pair: what any Deno program with this wait pays, before lguest's own
 *   machinery (the guest, its interrupt and SEND_DMA).
 *
 *   Tap, floor, JS and veth runs take turns in each round (the order
 *   rotates), so the three metrics come from the same rounds; net.tap.rtt's
 *   note gives netd against the other two.
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
const JS = "net.tap.rtt.js";
const ECHO_TS = new URL("./tap_echo.ts", import.meta.url).pathname;
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

/**
 * Start a responder (`cmd IFNAME SUBNET.2`) in namespace `ns`: it creates
 * tap `ifname` and says "up"; the tap gets SUBNET.1/24 and one short ping
 * run (ARP). Null, or why it could not start (its last line on stderr).
 */
async function responder(
  ns: string,
  cmd: string[],
  ifname: string,
  subnet: string,
  children: Deno.ChildProcess[],
): Promise<string | null> {
  const child = new Deno.Command("ip", {
    args: ["netns", "exec", ns, ...cmd, ifname, `${subnet}.2`],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  children.push(child);
  try {
    await until(child, "up", cmd.join(" "));
  } catch (e) {
    const err = (await new Response(child.stderr).text()).trim().split("\n").at(-1);
    return err || (e as Error).message;
  }
  await must("ip", ["-n", ns, "addr", "add", `${subnet}.1/24`, "dev", ifname]);
  await must("ip", ["-n", ns, "link", "set", ifname, "up"]);
  await ping(ns, `${subnet}.2`, 20);
  return null;
}

/** Measure the tap metrics (or skip them with the reason). */
export async function benchTap(): Promise<Metric[]> {
  const reason = await why();
  if (reason) {
    return [
      skipped(RTT, "µs", REF, reason),
      skipped(FLOOR, "µs", REF, reason),
      skipped(JS, "µs", REF, reason),
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
    // The two responders, each behind a tap of its own in A (10.90.0.0/24:
    // C, 10.91.0.0/24: Deno); one that cannot start is skipped with why.
    const echoBin = await build(dir, "tap_echo");
    const floorWhy = echoBin === null
      ? "no clang to build the C tap responder"
      : await responder(a, [echoBin], "lgc0", "10.90.0", children);
    const jsWhy = await responder(
      a,
      [Deno.execPath(), "run", "--allow-ffi", ECHO_TS],
      "lgj0",
      "10.91.0",
      children,
    );
    await ping(a, "10.89.0.2", 20); // warm-up, ARP
    await ping(a, "10.88.0.2", 20);
    // Each round runs them all in a rotating order (tap, floor, JS, veth:
    // four runs of 200 pings); the responders' samples come from the rounds
    // of net.tap.rtt's window.
    const runs: [string, () => Promise<number>][] = [["tap", () => ping(a, "10.89.0.2")]];
    if (floorWhy === null) runs.push([FLOOR, () => ping(a, "10.90.0.2")]);
    if (jsWhy === null) runs.push([JS, () => ping(a, "10.91.0.2")]);
    runs.push(["veth", () => ping(a, "10.88.0.2")]);
    const sides = new Map<string, number[]>(runs.map(([k]) => [k, []]));
    let round = 0;
    const rtt = await pairedJoint(async () => {
      for (let i = 0; i < runs.length; i++) {
        const [k, f] = runs[(round + i) % runs.length];
        sides.get(k)!.push(await f());
      }
      round++;
      return [sides.get("tap")!.at(-1)!, sides.get("veth")!.at(-1)!];
    }, { min: 5, max: 15 });
    const m = metric(RTT, "µs", rtt, REF, false), out: Metric[] = [m], notes: string[] = [];
    /** A responder's metric from the rounds of net.tap.rtt's window; netd's samples over it. */
    const side = (name: string, note: string): [Metric, number[], number[]] => {
      const v = sides.get(name)!.slice(-rtt.values.length);
      const r = v.map((x, i) => x / rtt.refs[i]);
      const p = { ...rtt, values: v, ratios: r, stable: spread(r) <= rtt.tolerance };
      const sm = metric(name, "µs", p, REF, false);
      sm.note = note;
      out.push(sm);
      return [sm, rtt.values.map((x, i) => x / v[i]), rtt.values.map((x, i) => x - v[i])];
    };
    if (floorWhy === null) {
      const [fm, times, more] = side(
        FLOOR,
        "a minimal C program behind a tap (bench/tap_echo.c): read(2), reply, write(2)",
      );
      notes.push(
        `C responder (net.tap.rtt.floor), same rounds: ${fm.value.toPrecision(3)} µs, ` +
          `netd ${median(times).toFixed(2)}× it, ${median(more).toFixed(1)} µs more`,
      );
    } else out.push(skipped(FLOOR, "µs", REF, floorWhy));
    if (jsWhy === null) {
      const [jm, , more] = side(
        JS,
        "a minimal Deno program behind a tap (bench/tap_echo.ts): our wait's poll(2), read(2), " +
          "the reply in JavaScript, write(2)",
      );
      notes.push(
        `netd ${median(more).toFixed(1)} µs over the JS responder ` +
          `(net.tap.rtt.js, ${jm.value.toPrecision(3)} µs)`,
      );
    } else out.push(skipped(JS, "µs", REF, jsWhy));
    if (notes.length !== 0) m.note = notes.join("; ");
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
