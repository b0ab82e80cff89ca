/**
 * Packet capture in the classic pcap format (Ethernet link type), written
 * record by record with synchronous writes, so a run that is killed still
 * leaves a readable file.
 *
 * A capture failure is the host's, never a guest's: the file must be a
 * regular file (opened without blocking: a FIFO without a reader is
 * refused, not waited for), a header that cannot be written is a usage
 * error before any guest runs, and a record that cannot be written (a full
 * file system, EIO) stops the capture with one line on stderr — the
 * frame itself is delivered as usual and no guest is killed.
 *
 * @module
 */

import {
  fdFileType,
  libc,
  O_CREAT,
  O_NONBLOCK,
  O_TRUNC,
  O_WRONLY,
  openFile,
  S_IFREG,
  SysError,
  writeAll,
} from "../../sys/libc.ts";
import { permissionMessage } from "../../launcher/exit.ts";
import { printable } from "../../sys/text.ts";
import type { FrameSink } from "../registry.ts";
import { UsageError } from "../registry.ts";
import { warn } from "../../sys/stdio.ts";

const LINKTYPE_ETHERNET = 1;
const SNAPLEN = 65535;

/** A pcap file open for appending frames. */
export class PcapWriter implements FrameSink {
  readonly path: string;
  #fd: number;
  frames = 0;
  /** Why the capture stopped early (an errno name), or null. */
  failed: string | null = null;

  constructor(path: string) {
    this.path = path;
    const shown = printable(path);
    const code = (e: unknown) => e instanceof SysError ? e.code : (e as Error).message;
    try {
      // O_NONBLOCK: a FIFO without a reader fails (ENXIO) instead of blocking the open.
      this.#fd = openFile(path, O_WRONLY | O_CREAT | O_TRUNC | O_NONBLOCK);
    } catch (e) {
      const perm = permissionMessage(e);
      if (perm !== null) throw new UsageError(`pcap ${shown}: ${perm}`);
      if (code(e) === "ENXIO") throw new UsageError(`pcap ${shown}: not a regular file (a FIFO)`);
      throw new UsageError(`pcap ${shown}: cannot create (${code(e)})`);
    }
    const type = fdFileType(this.#fd);
    if (type !== null && type !== S_IFREG) {
      this.close();
      throw new UsageError(`pcap ${shown}: not a regular file`);
    }
    const h = new DataView(new ArrayBuffer(24));
    h.setUint32(0, 0xa1b2c3d4, true);
    h.setUint16(4, 2, true);
    h.setUint16(6, 4, true);
    h.setUint32(16, SNAPLEN, true);
    h.setUint32(20, LINKTYPE_ETHERNET, true);
    try {
      writeAll(this.#fd, new Uint8Array(h.buffer));
    } catch (e) {
      this.close();
      throw new UsageError(`pcap ${shown}: cannot write (${code(e)})`);
    }
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
    try {
      writeAll(this.#fd, rec);
    } catch (e) {
      // The host's problem, not the guest's whose frame this is: stop capturing, say so once.
      const code = e instanceof SysError ? e.code : (e as Error).message;
      this.close();
      this.failed = code;
      warn(
        `lguest: pcap ${printable(this.path)}: write failed (${code}); ` +
          `capture stopped after ${this.frames} frame(s), the run goes on`,
      );
      return;
    }
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
