/**
 * Registers every device kind with the registry (the console is built in:
 * every guest has exactly one, last in its table).
 *
 * A kind's option parser is here; its device's code (devices/block.ts,
 * devices/net/*) is loaded when a run first creates one, through a literal
 * import (part of the module graph: no permission needed), so that a run
 * without disks or NICs does not load it (boot.first_byte,
 * docs/performance.md).
 *
 * @module
 */

import { registerDevice } from "./registry.ts";
import { type BlockSpec, parseBlockSpec } from "./block_spec.ts";
import { type NetSpec, parseNetSpec } from "./net/spec.ts";

registerDevice<BlockSpec>({
  name: "block",
  option: "block",
  usage: "    --block FILE[,ro|,sync|,direct|,nolock]  a disk backed by FILE (repeatable)",
  parse: parseBlockSpec,
  create: async (spec) => new (await import("./block.ts")).BlockDevice(spec),
});

registerDevice<NetSpec>({
  name: "net",
  option: "net",
  usage: "    --net segment:NAME[,pcap=FILE]  a NIC on inter-guest segment NAME (repeatable)\n" +
    "    --net tap:IF[,ip=A/P|,bridge=BR][,pcap=FILE]  a NIC on host tap device IF",
  parse: parseNetSpec,
  create: async (spec, env) => (await import("./net/net.ts")).createNet(spec, env),
});
