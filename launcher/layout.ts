/**
 * Launcher: the guest-physical memory layout (protocol §9.2) and the boot
 * header fields it writes (§9.3).
 *
 * ```
 * 0x0000   boot parameters (e820 map, command-line pointer)
 * 0x1000   command line, NUL-terminated
 * 1 MiB    the guest image (wasm data, stack, heap up to mem)
 * mem      device descriptor page: 16 x lguest_device_desc
 * mem+4K   device pages, in device-table order
 * top      = mem + 4096 * (1 + pages); pfn_limit = top / 4096
 * ```
 *
 * @module
 */

import {
  BOOT_CMDLINE_ADDR,
  BOOT_CMDLINE_PTR,
  BOOT_E820MAP,
  BOOT_E820NR,
  BOOT_HARDWARE_SUBARCH,
  COMMAND_LINE_SIZE,
  E820_RAM,
  LGUEST_MAX_DEVICES,
  PAGE_SIZE,
  SUBARCH_LGUEST,
} from "../abi/constants.ts";
import { DESC_SIZE, type DeviceDesc, type LeView, writeDesc } from "../abi/structs.ts";

/** Smallest RAM we accept: boot pages plus a 1 MiB image area. */
export const MIN_MEMORY = 2 * 1024 * 1024;
/** Largest RAM: wasm32 addresses end at 4 GiB; keep room for device pages. */
export const MAX_MEMORY = 3 * 1024 * 1024 * 1024;

/** Where everything lives for one guest. */
export interface Layout {
  /** RAM size, and the address of the device descriptor page. */
  mem: number;
  /** First address of each device's pages (0 for a device with none). */
  pageAddr: number[];
  /** First invalid address. */
  top: number;
  pfnLimit: number;
}

/** Lay out RAM, the descriptor page and `pages[i]` pages for device i. */
export function planLayout(mem: number, pages: readonly number[]): Layout {
  if (mem % PAGE_SIZE !== 0) throw new RangeError("layout: memory must be whole pages");
  if (pages.length > LGUEST_MAX_DEVICES) {
    throw new RangeError(`layout: at most ${LGUEST_MAX_DEVICES} devices`);
  }
  let next = mem + PAGE_SIZE;
  const pageAddr = pages.map((n) => {
    if (n === 0) return 0;
    const at = next;
    next += n * PAGE_SIZE;
    return at;
  });
  return { mem, pageAddr, top: next, pfnLimit: next / PAGE_SIZE };
}

// Written `(function f() {...}).bind(null)`: compiled with the module, not again at every
// start on its first call (Deno's emit keeps these parentheses; docs/performance.md, boot).
/** Write the boot header, e820 map and command line (§9.3). */
export const writeBootParams = (function writeBootParams(
  v: LeView,
  mem: number,
  cmdline: string,
): void {
  // No encoder for the empty line (a run without arguments; a process's first ~0.05 ms).
  const bytes = cmdline === "" ? new Uint8Array(0) : new TextEncoder().encode(cmdline);
  if (bytes.length >= COMMAND_LINE_SIZE) {
    throw new RangeError(`layout: command line longer than ${COMMAND_LINE_SIZE - 1} bytes`);
  }
  v.setU8(BOOT_E820NR, 1);
  v.setU64(BOOT_E820MAP, 0);
  v.setU64(BOOT_E820MAP + 8, mem);
  v.setU32(BOOT_E820MAP + 16, E820_RAM);
  v.setU32(BOOT_CMDLINE_PTR, BOOT_CMDLINE_ADDR);
  v.setU32(BOOT_HARDWARE_SUBARCH, SUBARCH_LGUEST);
  v.bytes.set(bytes, BOOT_CMDLINE_ADDR);
  v.setU8(BOOT_CMDLINE_ADDR + bytes.length, 0);
}).bind(null);

/** Fill the descriptor page at `layout.mem`; pfn comes from the layout. */
export const writeDeviceTable = (function writeDeviceTable(
  v: LeView,
  layout: Layout,
  devices: readonly Omit<DeviceDesc, "pfn" | "status">[],
): void {
  devices.forEach((d, i) => {
    writeDesc(v, layout.mem + i * DESC_SIZE, {
      type: d.type,
      features: d.features, // may be a getter (a segment's slot)
      numPages: d.numPages,
      status: 0,
      pfn: layout.pageAddr[i] / PAGE_SIZE,
    });
  });
}).bind(null);
