/**
 * Parsing `--block FILE[,ro][,sync][,direct][,nolock]` (the block device
 * itself, devices/block.ts, is loaded only when a run has a disk).
 *
 * @module
 */

import { UsageError } from "./registry.ts";

/** What `--block FILE[,ro][,sync][,direct][,nolock]` asks for. */
export interface BlockSpec {
  path: string;
  readOnly: boolean;
  sync: boolean;
  direct: boolean;
  /** Skip the flock(2) lock (exclusive read-write, shared `,ro`): `,nolock`. */
  noLock: boolean;
}

/** Parse the option value. */
export function parseBlockSpec(value: string): BlockSpec {
  const [path, ...opts] = value.split(",");
  if (!path) throw new UsageError(`--block needs a FILE (got '${value}')`);
  const spec: BlockSpec = { path, readOnly: false, sync: false, direct: false, noLock: false };
  for (const o of opts) {
    if (o === "ro") spec.readOnly = true;
    else if (o === "sync") spec.sync = true;
    else if (o === "direct") spec.direct = true;
    else if (o === "nolock") spec.noLock = true;
    else {
      throw new UsageError(
        `--block ${value}: unknown option '${o}' (use ro, sync, direct, nolock)`,
      );
    }
  }
  return spec;
}
