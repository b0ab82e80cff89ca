/**
 * Packet capture in the classic pcap format (Ethernet link type), written
 * record by record with synchronous writes, so a run that is killed still
 * leaves a readable file.
 *
 * @module
 */

import { libc, O_CREAT, O_TRUNC, O_WRONLY, openFile, SysError, writeAll } from "../../sys/libc.ts";
import type { FrameSink } from "../registry.ts";
import { UsageError } from "../registry.ts";

const LINKTYPE_ETHERNET = 1;
const SNAPLEN = 65535;

/** A pcap file open for appending frames. */
export class PcapWriter implements FrameSink {
  readonly path: string;
  #fd: number;
  frames = 0;

  constructor(path: string) {
    this.path = path;
    try {
      this.#fd = openFile(path, O_WRONLY | O_CREAT | O_TRUNC);
    } catch (e) {
      const code = e instanceof SysError ? e.code : (e as Error).message;
      throw new UsageError(`pcap ${path}: cannot create (${code})`);
    }
    const h = new DataView(new ArrayBuffer(24));
    h.setUint32(0, 0xa1b2c3d4, true);
    h.setUint16(4, 2, true);
    h.setUint16(6, 4, true);
    h.setUint32(16, SNAPLEN, true);
    h.setUint32(20, LINKTYPE_ETHERNET, true);
    writeAll(this.#fd, new Uint8Array(h.buffer));
  }

  /** Append one frame, time-stamped now. */
  frame(data: Uint8Array): void {
    if (this.#fd < 0) return;
    const ms = performance.timeOrigin + performance.now();
    const rec = new Uint8Array(16 + Math.min(data.length, SNAPLEN));
    const h = new DataView(rec.buffer);
    h.setUint32(0, Math.floor(ms / 1000), true);
    h.setUint32(4, Math.floor((ms % 1000) * 1000), true);
    h.setUint32(8, rec.length - 16, true);
    h.setUint32(12, data.length, true);
    rec.set(data.subarray(0, rec.length - 16), 16);
    writeAll(this.#fd, rec);
    this.frames++;
  }

  close(): void {
    if (this.#fd >= 0) libc().close(this.#fd);
    this.#fd = -1;
  }
}

/** pcap writers by path, so several devices naming one file share it. */
const open = new Map<string, { w: PcapWriter; users: number }>();

/** Get (or create) the writer for `path`; release it with {@link releasePcap}. */
export function acquirePcap(path: string): PcapWriter {
  const e = open.get(path);
  if (e) {
    e.users++;
    return e.w;
  }
  const w = new PcapWriter(path);
  open.set(path, { w, users: 1 });
  return w;
}

/** Drop one user of a shared writer; the last closes the file. */
export function releasePcap(w: PcapWriter): void {
  const e = open.get(w.path);
  if (!e || e.w !== w) return w.close();
  if (--e.users === 0) {
    open.delete(w.path);
    w.close();
  }
}

/** Read a pcap file back: its frames (our own parser, for tests and tools). */
export function readPcap(bytes: Uint8Array): { linktype: number; frames: Uint8Array[] } {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 24 || v.getUint32(0, true) !== 0xa1b2c3d4) {
    throw new Error("pcap: bad magic");
  }
  const frames: Uint8Array[] = [];
  let off = 24;
  while (off + 16 <= bytes.length) {
    const incl = v.getUint32(off + 8, true);
    if (off + 16 + incl > bytes.length) break; // a record cut short by a kill
    frames.push(bytes.slice(off + 16, off + 16 + incl));
    off += 16 + incl;
  }
  return { linktype: v.getUint32(20, true), frames };
}
