/**
 * The net device: `--net segment:NAME[,pcap=FILE]` or
 * `--net tap:IFNAME[,ip=ADDR/PREFIX][,bridge=BR][,pcap=FILE]` (repeatable).
 * The kind is registered by devices/all.ts, which loads this module (and
 * the segment, tap and pcap modules) only when a run has a NIC.
 *
 * @module
 */

import type { Device, DeviceEnv, FrameSink } from "../registry.ts";
import { acquirePcap, type PcapWriter, releasePcap } from "./pcap.ts";
import { SegmentNetDevice } from "./segment.ts";
import type { NetSpec } from "./spec.ts";
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

/** Make the NIC a `--net` value asks for. */
export async function createNet(spec: NetSpec, env: DeviceEnv): Promise<Device> {
  const own = spec.pcap ? acquirePcap(spec.pcap) : undefined;
  const sinks: FrameSink[] = [own, env.pcap].filter((s): s is FrameSink => s !== undefined);
  if (spec.kind === "segment") return withPcap(new SegmentNetDevice(spec.name, sinks), own);
  try {
    return withPcap(await TapNetDevice.open(spec.ifname, spec, sinks), own);
  } catch (e) {
    if (own) releasePcap(own);
    throw e;
  }
}
