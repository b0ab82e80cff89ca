/**
 * Parsing `--net` values:
 * `segment:NAME[,pcap=FILE]` and `tap:IFNAME[,ip=ADDR/PREFIX][,bridge=BR][,pcap=FILE]`.
 *
 * @module
 */

import { UsageError } from "../registry.ts";

/** A parsed `--net` value. */
export type NetSpec =
  | { kind: "segment"; name: string; pcap?: string }
  | { kind: "tap"; ifname: string; ip?: string; bridge?: string; pcap?: string };

/** Linux IFNAMSIZ - 1. */
export const MAX_IFNAME = 15;

/** Parse one `--net` value; one-line UsageError on mistakes. */
export function parseNetSpec(value: string): NetSpec {
  const [head, ...opts] = value.split(",");
  const colon = head.indexOf(":");
  const kind = colon < 0 ? head : head.slice(0, colon);
  const name = colon < 0 ? "" : head.slice(colon + 1);
  const kv = new Map<string, string>();
  for (const o of opts) {
    const eq = o.indexOf("=");
    if (eq <= 0) throw new UsageError(`--net ${value}: option '${o}' is not KEY=VALUE`);
    const key = o.slice(0, eq);
    if (eq === o.length - 1) throw new UsageError(`--net ${value}: ${key}= needs a value`);
    if (kv.has(key)) throw new UsageError(`--net ${value}: ${key}= given twice`);
    kv.set(key, o.slice(eq + 1));
  }
  const take = (allowed: string[]) => {
    for (const k of kv.keys()) {
      if (!allowed.includes(k)) {
        throw new UsageError(`--net ${value}: unknown option '${k}' (use ${allowed.join(", ")})`);
      }
    }
  };
  if (kind === "segment") {
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(name)) {
      throw new UsageError(`--net ${value}: segment name must be 1-64 letters, digits, . _ -`);
    }
    take(["pcap"]);
    return { kind, name, pcap: kv.get("pcap") };
  }
  if (kind === "tap") {
    if (name.length === 0) throw new UsageError(`--net ${value}: tap needs an interface name`);
    if (name.length > MAX_IFNAME) {
      throw new UsageError(`--net ${value}: interface name longer than ${MAX_IFNAME} characters`);
    }
    if (!/^[A-Za-z0-9_.-]+$/.test(name)) {
      throw new UsageError(`--net ${value}: bad interface name '${name}'`);
    }
    take(["ip", "bridge", "pcap"]);
    const ip = kv.get("ip");
    if (ip !== undefined && !/^(\d{1,3}\.){3}\d{1,3}\/\d{1,2}$/.test(ip)) {
      throw new UsageError(`--net ${value}: ip must be ADDR/PREFIX, e.g. 10.0.0.1/24`);
    }
    if (ip !== undefined && kv.has("bridge")) {
      throw new UsageError(`--net ${value}: give ip= or bridge=, not both`);
    }
    return { kind, ifname: name, ip, bridge: kv.get("bridge"), pcap: kv.get("pcap") };
  }
  throw new UsageError(`--net ${value}: expected segment:NAME or tap:IFNAME`);
}
