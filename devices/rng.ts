/**
 * The random-number device (an extension; type 4, `LGUEST_DEVICE_T_RNG`):
 * every guest has one, just before the console.
 *
 * One page; its address is the key. The guest SEND_DMAs an `lguest_dma` to
 * that key: the device fills every section with random bytes from the
 * host's CSPRNG (`crypto.getRandomValues`) inside the hypercall and sets
 * `used_len` to the total. The page's contents are not used. See
 * docs/guest-abi.md §17.
 *
 * @module
 */

import { LGUEST_DEVICE_T_RNG } from "../abi/device_types.ts";
import type { Device, DeviceContext } from "./registry.ts";

/** crypto.getRandomValues fills at most this many bytes per call. */
const MAX_FILL = 65536;

/** The host random-number device. */
export class RngDevice implements Device {
  readonly type = LGUEST_DEVICE_T_RNG;
  readonly features = 0;
  readonly numPages = 1;
  readonly label = "rng: host random numbers";
  #key = 0;
  /** Bytes handed out, for --verbose. */
  readonly stats = { bytes: 0, requests: 0 };

  init(ctx: DeviceContext): void {
    this.#key = ctx.pageAddr;
  }

  watchKey(): number {
    return this.#key;
  }

  output(sections: Uint8Array[]): number {
    let n = 0;
    for (const s of sections) {
      for (let off = 0; off < s.length; off += MAX_FILL) {
        crypto.getRandomValues(s.subarray(off, off + MAX_FILL));
      }
      n += s.length;
    }
    this.stats.bytes += n;
    this.stats.requests++;
    return n;
  }
}
