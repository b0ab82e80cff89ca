/**
 * Test helper: throw-away Linux network namespaces (`ip netns`), veth
 * pairs, and running programs (the lguest CLI, ping, python3) inside them,
 * each with a kill-timeout.
 *
 * ```ts
 * const why = await netnsUnavailable();
 * if (why === null) {
 *   await withNetns("tap", async (ns) => {
 *     const lg = ns.spawnCli(["run", "--net", "tap:lgt0,ip=10.77.0.1/24", "netd", "--", "ip=10.77.0.2/24"]);
 *     await lg.waitFor("netd: ");
 *     const p = await ns.ping("10.77.0.2", { count: 5 });
 *     ...
 *   }); // the namespace is deleted even if the body throws
 * }
 * ```
 *
 * Namespaces are named `lgt<pid>-<tag><n>`, so concurrent test processes
 * never collide. Deleting a namespace removes the devices in it (its side
 * of a veth pair takes the other side with it) once no process is left in
 * it: stop what you spawned there first (withNetns does not kill it).
 *
 * @module
 */

import { LGUEST_CMD, type LiveProcess, spawnProcess } from "./run_cli.ts";

/** How a command ended. */
export interface CmdResult {
  code: number;
  stdout: string;
  stderr: string;
  /** True if the kill-timeout fired. */
  killed: boolean;
}

/** Run a program to completion (stdin from `stdin`, or /dev/null). */
export async function runCmd(
  cmd: string,
  args: string[],
  opts: { stdin?: string; killAfterMs?: number } = {},
): Promise<CmdResult> {
  const p = spawnProcess(cmd, args, {
    stdin: opts.stdin === undefined ? "null" : "piped",
    killAfterMs: opts.killAfterMs ?? 15_000,
  });
  if (opts.stdin !== undefined) p.write(opts.stdin).then(() => p.closeStdin(), () => {});
  const r = await p.result();
  return { code: r.code, stdout: r.stdout, stderr: r.stderr, killed: r.killed };
}

/** `ip ARGS...`; throws with ip's first stderr line on failure. */
export async function ip(args: string[]): Promise<string> {
  let r: CmdResult;
  try {
    r = await runCmd("ip", args);
  } catch (e) {
    throw new Error(`cannot run 'ip ${args.join(" ")}': ${(e as Error).message}`);
  }
  if (r.code !== 0) {
    throw new Error(`ip ${args.join(" ")}: ${r.stderr.trim().split("\n")[0] || `exit ${r.code}`}`);
  }
  return r.stdout;
}

/** Is `name` an executable on PATH? */
export function onPath(name: string): boolean {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    if (!dir) continue;
    try {
      const st = Deno.statSync(`${dir}/${name}`);
      if (st.isFile && st.mode !== null && (st.mode & 0o111) !== 0) return true;
    } catch { /* not here */ }
  }
  return false;
}

/** Delete namespaces left by test processes that were killed (`lgt<dead pid>-*`). */
async function removeStale(): Promise<void> {
  const list = await ip(["netns", "list"]).catch(() => "");
  for (const line of list.split("\n")) {
    const m = /^(lgt(\d+)-\S+)/.exec(line);
    if (!m || +m[2] === Deno.pid) continue;
    const alive = await runCmd("test", ["-d", `/proc/${m[2]}`]).then(
      (r) => r.code === 0,
      () => true,
    );
    if (!alive) await ip(["netns", "del", m[1]]).catch(() => {});
  }
}

let probed: Promise<string | null> | undefined;

/**
 * Why namespace tests cannot run here (not root, no /dev/net/tun, no
 * iproute2, `ip netns add` refused), or null if they can. Probed once.
 */
export function netnsUnavailable(): Promise<string | null> {
  probed ??= (async () => {
    if (Deno.build.os !== "linux") return "not Linux";
    if (Deno.uid() !== 0) return "not root";
    // (Deno's own stat of a /dev path needs --allow-all: ask test(1).)
    if ((await runCmd("test", ["-c", "/dev/net/tun"]).catch(() => null))?.code !== 0) {
      return "no /dev/net/tun";
    }
    if (!onPath("ip")) return "no 'ip' command (iproute2)";
    await removeStale();
    const name = `lgt${Deno.pid}-probe`;
    try {
      await ip(["netns", "add", name]);
    } catch (e) {
      return `cannot create a network namespace (${(e as Error).message})`;
    }
    await ip(["netns", "del", name]).catch(() => {});
    return null;
  })();
  return probed;
}

let serial = 0;

/** Result of {@link Netns.ping}. */
export interface PingResult {
  /** "ping" or "python3" (when ping is not installed). */
  tool: string;
  transmitted: number;
  received: number;
  lossPercent: number;
  /** Round-trip time of each reply, in milliseconds. */
  rttMs: number[];
  output: string;
}

/** ICMP echo with a raw socket, for machines without ping (prints ping's summary line). */
const PY_PING = `
import os, select, socket, struct, sys, time
dst, count, interval, wait = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
def csum(b):
    if len(b) % 2: b += b"\\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16: s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
ident, data, got = os.getpid() & 0xFFFF, bytes(range(56)), 0
for seq in range(1, count + 1):
    hdr = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
    pkt = struct.pack("!BBHHH", 8, 0, csum(hdr + data), ident, seq) + data
    t0 = time.time()
    s.sendto(pkt, (dst, 0))
    while True:
        left = t0 + wait - time.time()
        if left <= 0 or not select.select([s], [], [], left)[0]:
            print("no answer yet for icmp_seq=%d" % seq)
            break
        b, addr = s.recvfrom(4096)
        icmp = b[(b[0] & 15) * 4:]
        if addr[0] == dst and icmp[0] == 0 and struct.unpack("!HH", icmp[4:8]) == (ident, seq):
            got += 1
            print("%d bytes from %s: icmp_seq=%d time=%.3f ms%s" % (len(icmp), dst, seq,
                  (time.time() - t0) * 1000, "" if icmp[8:] == data else " (wrong data)"))
            break
    if seq < count:
        time.sleep(max(0.0, t0 + interval - time.time()))
print("%d packets transmitted, %d received, %d%% packet loss" % (count, got, (count - got) * 100 // count))
`;

/** A network namespace made for a test. */
export class Netns {
  readonly name: string;
  #removed = false;

  private constructor(name: string) {
    this.name = name;
  }

  /** Create `lgt<pid>-<tag><n>` with its loopback up. */
  static async create(tag = "t"): Promise<Netns> {
    const ns = new Netns(`lgt${Deno.pid}-${tag}${serial++}`);
    await ip(["netns", "add", ns.name]);
    try {
      await ns.ip(["link", "set", "lo", "up"]);
    } catch (e) {
      await ns.remove();
      throw e;
    }
    return ns;
  }

  /** `ip ARGS...` inside the namespace. */
  ip(args: string[]): Promise<string> {
    return ip(["-n", this.name, ...args]);
  }

  /** Run a program inside the namespace to completion. */
  run(
    cmd: string,
    args: string[],
    opts: { stdin?: string; killAfterMs?: number } = {},
  ): Promise<CmdResult> {
    return runCmd("ip", ["netns", "exec", this.name, cmd, ...args], opts);
  }

  /**
   * Spawn a program inside the namespace and keep it live. `ip netns exec`
   * execs the program, so signals sent to the LiveProcess reach it.
   */
  spawn(
    cmd: string,
    args: string[],
    opts: { stdin?: "piped" | "null"; killAfterMs?: number } = {},
  ): LiveProcess {
    return spawnProcess("ip", ["netns", "exec", this.name, cmd, ...args], opts);
  }

  /** The lguest CLI (`main.ts ARGS...`) inside the namespace. */
  spawnCli(
    args: string[],
    opts: { stdin?: "piped" | "null"; killAfterMs?: number } = {},
  ): LiveProcess {
    return this.spawn(LGUEST_CMD[0], [...LGUEST_CMD.slice(1), ...args], opts);
  }

  /**
   * A veth pair: `ifname` here, `peerIf` in `peer` (another namespace, or
   * this one if omitted), each optionally with an address (`10.0.0.1/24`),
   * both up.
   */
  async veth(
    ifname: string,
    peerIf: string,
    opts: { peer?: Netns; addr?: string; peerAddr?: string } = {},
  ): Promise<void> {
    const peer = opts.peer ?? this;
    await this.ip([
      "link",
      "add",
      ifname,
      "type",
      "veth",
      "peer",
      "name",
      peerIf,
      "netns",
      peer.name,
    ]);
    if (opts.addr) await this.ip(["addr", "add", opts.addr, "dev", ifname]);
    if (opts.peerAddr) await peer.ip(["addr", "add", opts.peerAddr, "dev", peerIf]);
    await this.ip(["link", "set", ifname, "up"]);
    await peer.ip(["link", "set", peerIf, "up"]);
  }

  /**
   * Ping `addr` from inside the namespace: `ping -c COUNT -i INTERVAL -W
   * WAIT`, or a python3 raw-socket equivalent where ping is not installed.
   */
  async ping(
    addr: string,
    opts: { count?: number; interval?: number; wait?: number } = {},
  ): Promise<PingResult> {
    const count = opts.count ?? 5, interval = opts.interval ?? 0.2, wait = opts.wait ?? 1;
    const killAfterMs = (count * (interval + wait) + 10) * 1000;
    const tool = onPath("ping") ? "ping" : "python3";
    const r = tool === "ping"
      ? await this.run(
        "ping",
        ["-n", "-c", `${count}`, "-i", `${interval}`, "-W", `${wait}`, addr],
        {
          killAfterMs,
        },
      )
      : await this.run("python3", ["-c", PY_PING, addr, `${count}`, `${interval}`, `${wait}`], {
        killAfterMs,
      });
    const output = r.stdout + r.stderr;
    const m = /(\d+) packets transmitted, (\d+) received,.*?(\d+(?:\.\d+)?)% packet loss/.exec(
      output,
    );
    if (!m) throw new Error(`${tool} ${addr}: no summary line (exit ${r.code})\n${output}`);
    const rttMs = [...output.matchAll(/^\d+ bytes from .* time=(\d+(?:\.\d+)?) ms/gm)].map((x) =>
      +x[1]
    );
    return { tool, transmitted: +m[1], received: +m[2], lossPercent: +m[3], rttMs, output };
  }

  /** Delete the namespace (idempotent; errors are ignored). */
  async remove(): Promise<void> {
    if (this.#removed) return;
    this.#removed = true;
    await ip(["netns", "del", this.name]).catch(() => {});
  }
}

/** Run `fn` with a fresh namespace that is deleted afterwards, whatever happens. */
export async function withNetns<T>(tag: string, fn: (ns: Netns) => Promise<T>): Promise<T> {
  const ns = await Netns.create(tag);
  try {
    return await fn(ns);
  } finally {
    await ns.remove();
  }
}
