/**
 * Every lguest device type number, in one table: 1..3 are 2.6.23's
 * (`LGUEST_DEVICE_T_*` in constants.ts); numbers from 4 on are this
 * project's. The C side is `guests/include/device_types.h`;
 * `tests/device_types_test.ts` fails if the two lists differ. A new device
 * type adds one entry here and one `X(...)` line there.
 *
 * @module
 */

import {
  LGUEST_DEVICE_T_BLOCK,
  LGUEST_DEVICE_T_CONSOLE,
  LGUEST_DEVICE_T_NET,
} from "./constants.ts";

/** Extension: the host random-number device (devices/rng.ts). */
export const LGUEST_DEVICE_T_RNG = 4;

/** One device type: its number, its C name (`LGUEST_DEVICE_T_<id>`) and a short name. */
export interface DeviceType {
  readonly type: number;
  readonly id: string;
  readonly name: string;
}

/** All device types, by number. */
export const DEVICE_TYPES: readonly DeviceType[] = [
  { type: LGUEST_DEVICE_T_CONSOLE, id: "CONSOLE", name: "console" },
  { type: LGUEST_DEVICE_T_NET, id: "NET", name: "net" },
  { type: LGUEST_DEVICE_T_BLOCK, id: "BLOCK", name: "block" },
  { type: LGUEST_DEVICE_T_RNG, id: "RNG", name: "rng" },
];

/** The short name of a device type ("unknown" if it has none). */
export function deviceTypeName(type: number): string {
  return DEVICE_TYPES.find((t) => t.type === type)?.name ?? "unknown";
}
