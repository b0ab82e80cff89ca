/**
 * Block device backed by a file (protocol §10.3).
 *
 * The guest fills its device page {type, sector, bytes, result = 0} and
 * SEND_DMAs to the page key: the data sections for a write, an empty
 * "ping" for a read (the destination is its bound reply buffer). We serve
 * the request before the hypercall returns, write `result` (1 = OK,
 * 2 = error) and raise the device's IRQ.
 *
 * Our deviation (docs/deviations.md): every error — offset or write past
 * the end, no reply buffer, a read-only disk, a write whose sections do not
 * hold `bytes` bytes, an I/O error such as ENOSPC or EIO — answers
 * `result = 2` and is counted; the file is never grown or truncated, a
 * refused write writes nothing, and the Launcher goes on. A write is
 * acknowledged only after the data is in the file (page cache), and with
 * `,sync` after fdatasync.
 *
 * @module
 */

import {
  LGUEST_BLK_F_READONLY,
  LGUEST_BLOCK_ERROR,
  LGUEST_BLOCK_OK,
  LGUEST_BLOCK_READ,
  LGUEST_BLOCK_WRITE,
  LGUEST_DEVICE_F_RANDOMNESS,
  LGUEST_DEVICE_T_BLOCK,
  SECTOR_SIZE,
} from "../abi/constants.ts";
import { BLK_BYTES, BLK_NUM_SECTORS, BLK_RESULT, BLK_SECTOR, BLK_TYPE } from "../abi/structs.ts";
import { type Device, type DeviceContext, type InputBuffer, UsageError } from "./registry.ts";
import {
  cstr,
  ERRNO,
  libc,
  O_DIRECT,
  O_RDONLY,
  O_RDWR,
  openFile,
  pread,
  pwrite,
  SysError,
} from "../sys/libc.ts";
import { lockFile } from "../sys/filelock.ts";
import { permissionMessage } from "../launcher/exit.ts";
import type { BlockSpec } from "./block_spec.ts";

export { type BlockSpec, parseBlockSpec } from "./block_spec.ts";

/** fdatasync(2); throws SysError. */
function fdatasync(fd: number): void {
  if (libc().fdatasync(fd) !== 0) throw new SysError("fdatasync", ERRNO[0]);
}

/** The protocol's sector count is a u32 (§10.3): larger disks are refused. */
export const MAX_SECTORS = 0xffffffff;

/** Counters of one disk. */
export interface BlockStats {
  reads: number;
  writes: number;
  bytesRead: number;
  bytesWritten: number;
  errors: number;
}

function describe(e: unknown): string {
  return e instanceof SysError ? e.code : e instanceof Error ? e.message : String(e);
}

const S_IFMT = 0o170000, S_IFDIR = 0o040000, S_IFREG = 0o100000, S_IFBLK = 0o060000;

/**
 * The S_IFMT bits of `path` by statx(2), for paths Deno will not stat
 * without --allow-all (/dev/...): a negative errno on failure, or null
 * where libc has no statx.
 */
function fileType(path: string): number | null {
  const statx = libc().statx;
  if (!statx) return null;
  const buf = new Uint8Array(256); // struct statx; stx_mode is the u16 at 28
  const AT_FDCWD = -100, STATX_TYPE = 1;
  if (statx(AT_FDCWD, cstr(path), 0, STATX_TYPE, buf) !== 0) return -ERRNO[0];
  return new DataView(buf.buffer).getUint16(28, true) & S_IFMT;
}

/** Open the backing file; user errors become one UsageError line. */
function openBacking(spec: BlockSpec): { fd: number; directFd: number; length: number } {
  let isFile: boolean, isDirectory: boolean, isBlockDevice: boolean, size: number | null = null;
  try {
    const st = Deno.statSync(spec.path);
    [isFile, isDirectory, isBlockDevice, size] = [
      st.isFile,
      st.isDirectory,
      !!st.isBlockDevice,
      st.size,
    ];
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new UsageError(`--block ${spec.path}: no such file`);
    }
    if (e instanceof Deno.errors.PermissionDenied) {
      throw new UsageError(`--block ${spec.path}: permission denied`);
    }
    if (!(e instanceof Deno.errors.NotCapable)) {
      throw new UsageError(`--block ${spec.path}: ${describe(e)}`);
    }
    // A device path (/dev/...), which Deno stats only with --allow-all: ask libc. Without
    // --allow-ffi there is no libc either: the line names the permission the stat lacked.
    let type: number | null;
    try {
      type = fileType(spec.path);
    } catch (e2) {
      const perm = permissionMessage(e) ?? permissionMessage(e2);
      if (perm === null) throw e2;
      throw new UsageError(`--block ${spec.path}: ${perm}`);
    }
    if (type === -2) throw new UsageError(`--block ${spec.path}: no such file`);
    if (type === -13 || type === -1) {
      throw new UsageError(`--block ${spec.path}: permission denied`);
    }
    if (type === null || type < 0) throw new UsageError(`--block ${spec.path}: ${describe(e)}`);
    [isFile, isDirectory, isBlockDevice] = [type === S_IFREG, type === S_IFDIR, type === S_IFBLK];
  }
  if (isDirectory) throw new UsageError(`--block ${spec.path}: is a directory`);
  if (!isFile && !isBlockDevice) {
    throw new UsageError(`--block ${spec.path}: not a regular file or block device`);
  }
  const mode = spec.readOnly ? O_RDONLY : O_RDWR;
  let fd: number;
  try {
    fd = openFile(spec.path, mode);
  } catch (e) {
    const perm = permissionMessage(e);
    if (perm !== null) throw new UsageError(`--block ${spec.path}: ${perm}`);
    const code = describe(e);
    if (code === "EACCES" || code === "EPERM" || code === "EROFS") {
      throw new UsageError(
        `--block ${spec.path}: permission denied${
          !spec.readOnly && opensReadOnly(spec.path) ? " (try ,ro)" : ""
        }`,
      );
    }
    throw new UsageError(`--block ${spec.path}: ${code}`);
  }
  // The file's length, or a block device's size (seek to the end, §10.3).
  const length = size ?? Number(libc().lseek(fd, 0n, 2));
  let refusal: string | null = null;
  if (Math.floor(length / SECTOR_SIZE) > MAX_SECTORS) {
    refusal = `too large (${length} bytes; the protocol's 32-bit sector count reaches 2 TiB)`;
  } else if (!spec.noLock) {
    try {
      if (!lockFile(fd, !spec.readOnly)) {
        refusal = `in use by another lguest (locked${
          spec.readOnly ? " for writing" : ""
        }; ,nolock to use it anyway)`;
      }
    } catch (e) {
      refusal = `cannot lock: ${(e as Error).message} (,nolock to use it unlocked)`;
    }
  }
  if (refusal !== null) {
    libc().close(fd);
    throw new UsageError(`--block ${spec.path}: ${refusal}`);
  }
  let directFd = -1;
  if (spec.direct) {
    try {
      directFd = openFile(spec.path, mode | O_DIRECT);
    } catch {
      directFd = -1; // the filesystem has no O_DIRECT (tmpfs): use the page cache
    }
  }
  return { fd, directFd, length };
}

/** Would ,ro open it (a read-only file or file system)? Only then does the refusal suggest it. */
function opensReadOnly(path: string): boolean {
  try {
    libc().close(openFile(path, O_RDONLY));
    return true;
  } catch {
    return false;
  }
}

/**
 * Merge sections that follow each other in the same memory into one view,
 * so a request of 16 contiguous pages is one pread/pwrite.
 */
function coalesce(sections: Uint8Array[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const s of sections) {
    const last = out[out.length - 1];
    if (last && last.buffer === s.buffer && last.byteOffset + last.length === s.byteOffset) {
      out[out.length - 1] = new Uint8Array(s.buffer, last.byteOffset, last.length + s.length);
    } else {
      out.push(s);
    }
  }
  return out;
}

/** O_DIRECT needs 512-aligned buffer addresses, lengths and offsets. */
function directOk(sections: Uint8Array[], offset: number): boolean {
  if (offset % 512 !== 0) return false;
  return sections.every((s) => s.byteOffset % 512 === 0 && s.length % 512 === 0);
}

/** One disk: the frontend of §10.3 over a file backend. */
export class BlockDevice implements Device {
  readonly type = LGUEST_DEVICE_T_BLOCK;
  readonly features: number;
  readonly numPages = 1;
  readonly label: string;
  readonly spec: BlockSpec;
  readonly stats: BlockStats = { reads: 0, writes: 0, bytesRead: 0, bytesWritten: 0, errors: 0 };
  /** Addressable bytes: whole sectors of the file. */
  readonly length: number;
  readonly #fd: number;
  readonly #directFd: number;
  #ctx: DeviceContext | null = null;
  #closed = false;

  constructor(spec: BlockSpec) {
    this.spec = spec;
    // RANDOMNESS as 2.6.23; READONLY (ours) lets a guest say "read-only" for ,ro.
    this.features = LGUEST_DEVICE_F_RANDOMNESS | (spec.readOnly ? LGUEST_BLK_F_READONLY : 0);
    const { fd, directFd, length } = openBacking(spec);
    this.#fd = fd;
    this.#directFd = directFd;
    this.length = length - (length % SECTOR_SIZE);
    const opts = [
      spec.readOnly && "ro",
      spec.sync && "sync",
      directFd >= 0 && "direct",
      spec.noLock && "nolock",
    ].filter(Boolean).join(",");
    this.label = `block: ${spec.path}${opts ? ` (${opts})` : ""}, ${
      this.length / SECTOR_SIZE
    } sectors`;
    if (spec.direct && directFd < 0) this.label += " (no O_DIRECT on this filesystem)";
    if (length % SECTOR_SIZE !== 0) {
      this.label += `, last ${length % SECTOR_SIZE} bytes not addressable`;
    }
  }

  /**
   * The first `n` bytes of the disk as the host reads them (read-only, not
   * the guest's I/O: no stats), to check what a guest says of its disk
   * (launcher.ts, hints); null when they cannot be read.
   */
  readHead(n: number): Uint8Array | null {
    const buf = new Uint8Array(Math.min(n, this.length));
    try {
      let done = 0;
      while (done < buf.length) {
        const got = pread(this.#fd, buf.subarray(done), done);
        if (got <= 0) break;
        done += got;
      }
      return buf.subarray(0, done);
    } catch {
      return null;
    }
  }

  init(ctx: DeviceContext): void {
    this.#ctx = ctx;
    ctx.memory.setU32(ctx.pageAddr + BLK_NUM_SECTORS, this.length / SECTOR_SIZE);
  }

  watchKey(): number {
    return this.#ctx!.pageAddr;
  }

  /** Serve one request; the sender's used_len becomes 0 (§10.3 step 8). */
  output(sections: Uint8Array[], ctx: DeviceContext): number {
    const m = ctx.memory, page = ctx.pageAddr;
    const type = m.i32(page + BLK_TYPE);
    const offset = m.u32(page + BLK_SECTOR) * SECTOR_SIZE;
    const bytes = m.u32(page + BLK_BYTES);
    const reply = ctx.takeBuffer(page);
    let result = LGUEST_BLOCK_ERROR;
    let used = 0;
    if (reply === null) {
      this.#error(`request without a reply buffer bound on ${page}`);
    } else if (type === LGUEST_BLOCK_WRITE) {
      result = this.#write(sections, offset, bytes);
    } else if (type === LGUEST_BLOCK_READ) {
      used = this.#read(reply, offset);
      result = used >= 0 && used === bytes ? LGUEST_BLOCK_OK : LGUEST_BLOCK_ERROR;
      if (used >= 0 && used !== bytes) {
        this.#error(`read of ${used} bytes into the reply buffer but ${bytes} in the request`);
      }
      if (used < 0) used = 0;
    } else {
      this.#error(`unknown request type ${type}`);
    }
    m.setI32(page + BLK_RESULT, result);
    if (reply !== null) ctx.complete(reply, used);
    else ctx.raise(ctx.index + 1);
    return 0;
  }

  #error(why: string): void {
    this.stats.errors++;
    this.#ctx?.log(`block ${this.spec.path}: ${why}`);
  }

  #write(sections: Uint8Array[], offset: number, bytes: number): number {
    const total = sections.reduce((n, s) => n + s.length, 0);
    if (this.spec.readOnly) {
      this.#error("write to a read-only disk");
      return LGUEST_BLOCK_ERROR;
    }
    // Checked before writing: an error answer means nothing was written.
    if (total !== bytes) {
      this.#error(`write of ${total} bytes in the sections but ${bytes} in the request`);
      return LGUEST_BLOCK_ERROR;
    }
    if (offset + total > this.length) {
      this.#error(`write of ${total} bytes at ${offset} past the end (${this.length})`);
      return LGUEST_BLOCK_ERROR;
    }
    try {
      this.#io(sections, offset, (fd, s, pos) => {
        let done = 0;
        while (done < s.length) done += pwrite(fd, done === 0 ? s : s.subarray(done), pos + done);
        return done;
      });
      if (this.spec.sync) fdatasync(this.#fd);
    } catch (e) {
      this.#error(`write at ${offset}: ${describe(e)}`);
      return LGUEST_BLOCK_ERROR;
    }
    this.stats.writes++;
    this.stats.bytesWritten += total;
    return LGUEST_BLOCK_OK;
  }

  /** Read into the reply buffer; returns the byte count or -1. */
  #read(reply: InputBuffer, offset: number): number {
    if (offset >= this.length) {
      this.#error(`read at ${offset} past the end (${this.length})`);
      return -1;
    }
    let total = 0;
    try {
      total = this.#io(reply.sections, offset, (fd, s, pos) => {
        const n = Math.min(s.length, this.length - pos);
        let done = 0;
        while (done < n) {
          const got = pread(fd, done === 0 && n === s.length ? s : s.subarray(done, n), pos + done);
          if (got === 0) break;
          done += got;
        }
        return done;
      });
    } catch (e) {
      this.#error(`read at ${offset}: ${describe(e)}`);
      return -1;
    }
    const pos = offset + total;
    this.stats.reads++;
    this.stats.bytesRead += pos - offset;
    return pos - offset;
  }

  /**
   * Run `op` over the sections at consecutive file positions, stopping at
   * the first short one; returns the bytes moved. With `,direct` the
   * O_DIRECT descriptor is tried first, and a request it refuses (EINVAL:
   * memory not aligned as O_DIRECT needs) is redone through the page cache.
   */
  #io(
    sections: Uint8Array[],
    offset: number,
    op: (fd: number, s: Uint8Array, pos: number) => number,
  ): number {
    sections = coalesce(sections);
    const run = (fd: number) => {
      let pos = offset;
      for (const s of sections) {
        const n = op(fd, s, pos);
        pos += n;
        if (n < s.length) break;
      }
      return pos - offset;
    };
    if (this.#directFd >= 0 && directOk(sections, offset)) {
      try {
        return run(this.#directFd);
      } catch (e) {
        if (describe(e) !== "EINVAL") throw e;
      }
    }
    return run(this.#fd);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#directFd >= 0) libc().close(this.#directFd);
    libc().close(this.#fd);
    this.#ctx?.log(`block ${this.spec.path}: ${JSON.stringify(this.stats)}`);
  }
}
