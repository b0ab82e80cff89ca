/**
 * The net device kind: `--net segment:NAME[,pcap=FILE]` or
 * `--net tap:IFNAME[,ip=ADDR/PREFIX][,bridge=BR][,pcap=FILE]` (repeatable).
 *
 * @module
 */

import { type Device, type FrameSink, registerDevice } from "../registry.ts";
import { acquirePcap, type PcapWriter, releasePcap } from "./pcap.ts";
import { SegmentNetDevice } from "./segment.ts";
import { type NetSpec, parseNetSpec } from "./spec.ts";
import { TapNetDevice } from "./tap.ts";

/** Wrap a device so its private pcap writer is released on close. */
function withPcap(dev: Device, w: PcapWriter | undefined): Device {
  if (!w) return dev;
  const close = dev.close?.bind(dev);
  dev.close = async () => {
    await close?.();
    releasePcap(w);
  };
  return dev;
}

registerDevice<NetSpec>({
  name: "net",
  option: "net",
  usage: "    --net segment:NAME[,pcap=FILE]  a NIC on inter-guest segment NAME (repeatable)\n" +
    "    --net tap:IF[,ip=A/P|,bridge=BR][,pcap=FILE]  a NIC on host tap device IF",
  parse: parseNetSpec,
  async create(spec, env): Promise<Device> {
    const own = spec.pcap ? acquirePcap(spec.pcap) : undefined;
    const sinks: FrameSink[] = [own, env.pcap].filter((s): s is FrameSink => s !== undefined);
    if (spec.kind === "segment") return withPcap(new SegmentNetDevice(spec.name, sinks), own);
    try {
      return withPcap(await TapNetDevice.open(spec.ifname, spec, sinks), own);
    } catch (e) {
      if (own) releasePcap(own);
      throw e;
    }
  },
});
