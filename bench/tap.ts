/**
 * `net.tap.rtt`: host→guest ping round-trip time over a tap device (the
 * guest runs `netd`), against a veth pair between two network namespaces
 * in the same run. Everything lives in namespaces this benchmark creates
 * and deletes. Skipped, with the reason, without root, tun or `ip netns`.
 *
 * @module
 */

import { type Metric, metric, paired, skipped } from "./lib.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const NAME = "net.tap.rtt";
const REF = "veth pair, same run";

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

/** Median RTT in µs of `count` pings from namespace `ns` to `addr`. */
async function ping(ns: string, addr: string, count = 200): Promise<number> {
  const out = await must("ip", [
    "netns",
    "exec",
    ns,
    "ping",
    "-c",
    String(count),
    "-i",
    "0.002",
    "-W",
    "1",
    "-q",
    addr,
  ]);
  const m = /= [\d.]+\/([\d.]+)\//.exec(out);
  if (!m || !/ 0% packet loss/.test(out)) throw new Error(`bench: ping ${addr}: ${out.trim()}`);
  return Number(m[1]) * 1000;
}

async function why(): Promise<string | null> {
  if (Deno.uid() !== 0) return "needs root for network namespaces";
  // (Deno wants --allow-all to stat /dev files; ask test(1) instead.)
  if (!(await sh("test", ["-c", "/dev/net/tun"])).ok) return "no /dev/net/tun";
  if (!(await sh("ip", ["netns", "list"])).ok) return "no 'ip netns' (iproute2)";
  if (!(await sh("ping", ["-V"])).ok) return "no ping";
  return null;
}

/** Measure the metric (or skip it with the reason). */
export async function benchTap(): Promise<Metric> {
  const reason = await why();
  if (reason) return skipped(NAME, "µs", REF, reason);
  const a = `lgb-a-${Deno.pid}`, b = `lgb-b-${Deno.pid}`;
  let lguest: Deno.ChildProcess | undefined;
  try {
    await must("ip", ["netns", "add", a]);
    await must("ip", ["netns", "add", b]);
    await must("ip", ["-n", a, "link", "set", "lo", "up"]);
    await must("ip", ["link", "add", "vb0", "netns", a, "type", "veth", "peer", "vb1", "netns", b]);
    await must("ip", ["-n", a, "addr", "add", "10.88.0.1/24", "dev", "vb0"]);
    await must("ip", ["-n", b, "addr", "add", "10.88.0.2/24", "dev", "vb1"]);
    await must("ip", ["-n", a, "link", "set", "vb0", "up"]);
    await must("ip", ["-n", b, "link", "set", "vb1", "up"]);
    lguest = new Deno.Command("ip", {
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
    const reader = lguest.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let seen = "";
    while (!seen.includes("netd:")) {
      const { value, done } = await reader.read();
      if (done) throw new Error("bench: netd did not start");
      seen += value;
    }
    reader.releaseLock();
    await ping(a, "10.89.0.2", 20); // warm-up, ARP
    await ping(a, "10.88.0.2", 20);
    const p = await paired(() => ping(a, "10.89.0.2"), () => ping(a, "10.88.0.2"), {
      min: 5,
      max: 15,
    });
    return metric(NAME, "µs", p, REF, false);
  } finally {
    if (lguest) {
      try {
        lguest.kill("SIGTERM");
      } catch { /* already gone */ }
      await lguest.status;
    }
    await sh("ip", ["netns", "del", a]);
    await sh("ip", ["netns", "del", b]);
  }
}
