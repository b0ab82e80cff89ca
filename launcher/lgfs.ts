/**
 * lgfs on the host: the on-disk format of the guest kit's file system
 * (guests/kit/fs.c, docs/disk-format.md), read and written by `lguest disk`.
 *
 * A disk image is whatever a guest left there, so everything read from it
 * is hostile: every block number, size, name, count and checksum is checked
 * before use; walks are bounded (each inode and each block is visited at
 * most once, so a cycle or a shared block is an error, not a loop); a
 * problem is an {@link LgfsError} with one line of text, never another
 * exception.
 *
 * Writes follow the same journal protocol as the guest: changed metadata
 * goes to the journal, then a commit block with the CRC-32 of the
 * transaction, then home; file data is written in place before the commit
 * that makes it reachable; a block freed in a transaction is reused only
 * after it. So a host `put` killed at any moment leaves a consistent disk.
 *
 * @module
 */

export const BS = 4096;
const NDIRECT = 12;
const PTRS = BS / 4;
const IPB = BS / 128;
const DPB = BS / 128;
export const NAME_MAX = 120;
export const ROOT_INO = 1;
/**
 * How deep `lguest disk` makes folders, counted from the top (/a is 1 deep):
 * what `put` makes (and the folders of its PATH) stays within it, so `get -r`
 * of any folder copies all of it. A guest may make deeper ones; `rm -r` and
 * the host's cleanup remove a tree of any depth.
 */
export const MAX_DEPTH = 64;
/** Largest file: 12 direct, 1024 indirect, 1024^2 double indirect blocks. */
export const MAX_FILE = (NDIRECT + PTRS + PTRS * PTRS) * BS;
const MAX_DIR_BLOCKS = NDIRECT + PTRS;
const JDESC_MAX = (BS - 24) / 4;
/** Journal size written by mkfs (blocks). */
export const JOURNAL_BLOCKS = 128;
/** Smallest file system mkfs makes (bytes). */
export const MIN_SIZE = 1 << 20;
/** Largest disk: the block device's sector numbers are 32-bit. */
export const MAX_SIZE = 2 ** 32 * 512 - BS;
const MAX_INODES = 65536;
const DIRTY_MAX = 32;
const PENDING_MAX = 1024;
const PENDING_BMS = 16;

export const S_IFMT = 0o170000;
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const DT_DIR = 4;
export const DT_REG = 8;

import { hasLgfsMagic, LGFS_MAGIC } from "../abi/lgfs_magic.ts";

const enc = new TextEncoder();
const MAGIC_JD = enc.encode("LGFSJRNL");
const MAGIC_JC = enc.encode("LGFSCMIT");

/** A corrupt or unusable image, or a refused request: one line of text. */
export class LgfsError extends Error {}

/** Bad or hostile on-disk data. */
export class CorruptError extends LgfsError {}

/** An error a guest would get as this errno (ENOENT, EEXIST, ...). */
export class FsError extends LgfsError {
  constructor(readonly code: string, msg: string) {
    super(msg);
  }
}

// ---- CRC-32 (zlib) ------------------------------------------------------------

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** zlib's crc32(crc, data): feed the result back in to continue. */
export function crc32(crc: number, data: Uint8Array): number {
  let c = ~crc >>> 0;
  for (let i = 0; i < data.length; i++) c = CRC_TABLE[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

const POPCOUNT = Uint8Array.from({ length: 256 }, (_, i) => {
  let n = 0;
  for (let v = i; v; v >>= 1) n += v & 1;
  return n;
});

// ---- Devices ------------------------------------------------------------------

/** Block storage: whole 4 KiB blocks. */
export interface BlockDev {
  /** Size in bytes. */
  readonly size: number;
  read(blk: number, buf: Uint8Array): void;
  write(blk: number, buf: Uint8Array): void;
  /** Make the writes so far durable before any later one (fdatasync); optional. */
  sync?(): void;
}

/** An image in memory (tests). */
export class MemDev implements BlockDev {
  writes = 0;
  /** Throw after this many more writes (simulated crash), if set. */
  crashAfter: number | null = null;
  constructor(readonly bytes: Uint8Array) {}
  get size(): number {
    return this.bytes.length;
  }
  read(blk: number, buf: Uint8Array): void {
    const off = blk * BS;
    if (off + buf.length > this.bytes.length) {
      throw new LgfsError(`read past the end (block ${blk})`);
    }
    buf.set(this.bytes.subarray(off, off + buf.length));
  }
  write(blk: number, buf: Uint8Array): void {
    const off = blk * BS;
    if (off + buf.length > this.bytes.length) {
      throw new LgfsError(`write past the end (block ${blk})`);
    }
    if (this.crashAfter !== null && this.crashAfter-- <= 0) throw new CrashError();
    this.bytes.set(buf, off);
    this.writes++;
  }
}

/** Thrown by {@link MemDev} at its simulated crash point. */
export class CrashError extends Error {}

// ---- Little-endian helpers ------------------------------------------------------

function u32(b: Uint8Array, off: number): number {
  return (b[off] | b[off + 1] << 8 | b[off + 2] << 16 | b[off + 3] << 24) >>> 0;
}
function put32(b: Uint8Array, off: number, v: number): void {
  b[off] = v & 0xff;
  b[off + 1] = (v >>> 8) & 0xff;
  b[off + 2] = (v >>> 16) & 0xff;
  b[off + 3] = (v >>> 24) & 0xff;
}
function u64(b: Uint8Array, off: number): number {
  return u32(b, off) + u32(b, off + 4) * 2 ** 32; // exact up to 2^53
}
function put64(b: Uint8Array, off: number, v: number): void {
  put32(b, off, v % 2 ** 32);
  put32(b, off + 4, Math.floor(v / 2 ** 32));
}
function bytesEq(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

// ---- Geometry -----------------------------------------------------------------

/** The superblock's fields. */
export interface Geometry {
  blocks: number;
  jstart: number;
  jblocks: number;
  bstart: number;
  bblocks: number;
  istart: number;
  iblocks: number;
  inodes: number;
  dstart: number;
}

/** The layout mkfs gives a disk of `bytes` bytes. */
export function layout(bytes: number): Geometry {
  const blocks = Math.floor(Math.min(bytes, MAX_SIZE) / BS);
  const jstart = 1, jblocks = JOURNAL_BLOCKS;
  const bstart = jstart + jblocks;
  const bblocks = Math.ceil(blocks / (BS * 8));
  const istart = bstart + bblocks;
  const want = Math.min(MAX_INODES, Math.max(128, Math.floor(blocks / 8)));
  const iblocks = Math.ceil(want / IPB);
  return {
    blocks,
    jstart,
    jblocks,
    bstart,
    bblocks,
    istart,
    iblocks,
    inodes: iblocks * IPB,
    dstart: istart + iblocks,
  };
}

/** Whether `head` (a disk's first bytes) starts with the lgfs superblock's magic. */

function parseSuper(b: Uint8Array, devBytes: number): Geometry {
  if (!hasLgfsMagic(b)) {
    throw new CorruptError("not an lgfs disk (no superblock; make one with 'lguest disk mkfs')");
  }
  if (crc32(0, b.subarray(0, BS - 4)) !== u32(b, BS - 4)) {
    throw new CorruptError("bad superblock checksum");
  }
  if (u32(b, 8) !== 1) throw new CorruptError(`unsupported lgfs version ${u32(b, 8)}`);
  if (u32(b, 12) !== BS) throw new CorruptError(`bad block size ${u32(b, 12)}`);
  const g: Geometry = {
    blocks: u32(b, 16),
    jstart: u32(b, 20),
    jblocks: u32(b, 24),
    bstart: u32(b, 28),
    bblocks: u32(b, 32),
    istart: u32(b, 36),
    iblocks: u32(b, 40),
    inodes: u32(b, 44),
    dstart: u32(b, 48),
  };
  const ok = g.jstart === 1 && g.jblocks >= 8 && g.bstart === g.jstart + g.jblocks &&
    g.bblocks > 0 && g.bblocks * BS * 8 >= g.blocks && g.istart === g.bstart + g.bblocks &&
    g.iblocks > 0 && g.inodes === g.iblocks * IPB && g.dstart === g.istart + g.iblocks &&
    g.dstart < g.blocks && u32(b, 52) === ROOT_INO;
  if (!ok) throw new CorruptError("bad superblock geometry");
  if (g.blocks * BS > devBytes) {
    throw new CorruptError(
      `the file system (${g.blocks * BS} bytes) is larger than the disk (${devBytes} bytes)`,
    );
  }
  return g;
}

function superBlock(g: Geometry, nowNs: number): Uint8Array {
  const b = new Uint8Array(BS);
  b.set(LGFS_MAGIC);
  const fields = [
    1,
    BS,
    g.blocks,
    g.jstart,
    g.jblocks,
    g.bstart,
    g.bblocks,
    g.istart,
    g.iblocks,
    g.inodes,
    g.dstart,
    ROOT_INO,
  ];
  fields.forEach((v, i) => put32(b, 8 + 4 * i, v));
  put64(b, 56, nowNs);
  put32(b, BS - 4, crc32(0, b.subarray(0, BS - 4)));
  return b;
}

// ---- Inodes -----------------------------------------------------------------------

/** An inode, decoded. */
export interface Inode {
  mode: number;
  nlink: number;
  size: number;
  mtime: number;
  ctime: number;
  direct: number[];
  ind: number;
  dind: number;
  parent: number;
  /**
   * The put mark (bytes 92..99, 16 hex digits; absent when zero): the
   * random part of the temporary name `lguest disk put` gave the folder it
   * builds ({@link isPutTemp}). A folder is a killed put's leftover only when
   * its name and its mark agree: a guest's own `.lguest-put-…` folder (the
   * guest kit zeroes these bytes) is never removed.
   */
  mark?: string;
}

function decodeInode(b: Uint8Array, off: number): Inode {
  const direct: number[] = [];
  for (let i = 0; i < NDIRECT; i++) direct.push(u32(b, off + 32 + 4 * i));
  return {
    mode: u32(b, off),
    nlink: u32(b, off + 4),
    size: u64(b, off + 8),
    mtime: u64(b, off + 16),
    ctime: u64(b, off + 24),
    direct,
    ind: u32(b, off + 80),
    dind: u32(b, off + 84),
    parent: u32(b, off + 88),
    ...(u32(b, off + 92) || u32(b, off + 96)
      ? {
        mark: [...b.subarray(off + 92, off + 100)].map((x) => x.toString(16).padStart(2, "0")).join(
          "",
        ),
      }
      : {}),
  };
}

function encodeInode(b: Uint8Array, off: number, n: Inode): void {
  b.fill(0, off, off + 128);
  put32(b, off, n.mode);
  put32(b, off + 4, n.nlink);
  put64(b, off + 8, n.size);
  put64(b, off + 16, n.mtime);
  put64(b, off + 24, n.ctime);
  n.direct.forEach((v, i) => put32(b, off + 32 + 4 * i, v));
  put32(b, off + 80, n.ind);
  put32(b, off + 84, n.dind);
  put32(b, off + 88, n.parent);
  if (n.mark !== undefined && /^[0-9a-f]{16}$/.test(n.mark)) {
    for (let i = 0; i < 8; i++) b[off + 92 + i] = parseInt(n.mark.slice(2 * i, 2 * i + 2), 16);
  }
}

export function isDir(n: Inode): boolean {
  return (n.mode & S_IFMT) === S_IFDIR;
}

/** A directory entry. */
export interface DirEntry {
  /** The name (bytes that are not UTF-8 decoded with U+FFFD). */
  name: string;
  /** Whether the name's bytes are UTF-8 (a host file name can be made of it). */
  utf8: boolean;
  /** The name's bytes as on the disk. */
  raw: Uint8Array;
  ino: number;
  type: number;
  /** Entry index (for removal). */
  slot: number;
}

/**
 * The bytes of a name that is not UTF-8 written as {@link shownEntry} shows
 * it (`"\xff\xfe"`: in quotes, printable ASCII but `"` and `\` as is, any
 * other byte as `\xNN`), or null for any other text. Host paths are text
 * (Deno.args), so this is how a user names such a name in a PATH argument
 * (`lguest disk rm d.img '/"\xff\xfe"'`); a name that is UTF-8 is always
 * itself: an entry whose name is that very text (`"\xff"`, quotes and all)
 * is found first.
 */
export function escapedName(name: string): Uint8Array | null {
  const m = /^"((?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\x[0-9a-fA-F]{2})+)"$/.exec(name);
  if (m === null) return null;
  const out: number[] = [];
  for (let i = 0; i < m[1].length;) {
    if (m[1][i] === "\\") {
      out.push(parseInt(m[1].slice(i + 2, i + 4), 16));
      i += 4;
    } else out.push(m[1].charCodeAt(i++));
  }
  const bytes = new Uint8Array(out);
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    return null; // UTF-8: a name that can be typed as it is
  } catch {
    return bytes;
  }
}

/** Is this a name a directory may hold (1..120 bytes, no '/', no NUL, not . or ..)? */
export function validName(name: string): boolean {
  const n = enc.encode(name).length;
  return n >= 1 && n <= NAME_MAX && !/[\/\0]/.test(name) && name !== "." && name !== "..";
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * A name as every host message shows it: a guest chose it, so one with a
 * control character (a newline faking a line, an escape sequence for the
 * terminal) or a leading `"` is shown as a JSON string, quoted and
 * escaped (C1 controls too); any other name as it is.
 */
export function shownName(name: string): string {
  // deno-lint-ignore no-control-regex
  if (!/[\u0000-\u001f\u007f-\u009f]/.test(name) && !name.startsWith(`"`)) return name;
  return JSON.stringify(name).replace(
    /[\u007f-\u009f]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/**
 * An entry's name as messages and `ls` show it: a UTF-8 one as
 * {@link shownName}; one that is not UTF-8 (only a guest makes it) byte by
 * byte in double quotes, `"\xff\xfe"` (printable ASCII as it is), so it
 * never looks like a name of U+FFFD characters.
 */
export function shownEntry(e: Pick<DirEntry, "name" | "utf8" | "raw">): string {
  if (e.utf8) return shownName(e.name);
  let out = "";
  for (const b of e.raw) {
    out += b >= 0x20 && b < 0x7f && b !== 0x22 && b !== 0x5c
      ? String.fromCharCode(b)
      : `\\x${b.toString(16).padStart(2, "0")}`;
  }
  return `"${out}"`;
}

/** A name in quotes: 'name', or as shownName shows a hostile one ("\u001b…"). */
export function quoted(name: string): string {
  const s = shownName(name);
  return s === name ? `'${name}'` : s;
}

/** The one line refusing a folder deeper than {@link MAX_DEPTH}. */
export function tooDeep(path: string): string {
  return `${shownName(path)}: folders nested more than ${MAX_DEPTH} deep from the top ` +
    "(lguest disk makes none deeper)";
}

/** Whether every word of w is 0. */
function zeros(w: Uint32Array): boolean {
  for (let i = 0; i < w.length; i++) if (w[i] !== 0) return false;
  return true;
}

// ---- The file system ---------------------------------------------------------------

/** Options of {@link Lgfs.open}. */
export interface OpenOptions {
  /** Replay the journal onto the disk and allow changes (else read-only, journal in memory). */
  writable: boolean;
  /** ns since 1970 for mtimes (default: Date.now()). */
  now?: () => number;
}

/** What `check` found. */
export interface CheckReport {
  files: number;
  /** Blocks marked used that no file uses (left by an I/O error; harmless). */
  leaked: number;
  dirs: number;
  orphans: number;
  usedBlocks: number;
  freeBlocks: number;
  journalReplayed: boolean;
  /**
   * Folders a killed `put` left under a temporary name ({@link isPutTemp}),
   * by path (a name that is not UTF-8 shown with U+FFFD); not those inside
   * another one (they go with it).
   */
  leftovers: string[];
  /** The same folders as their directory's inode and their own. */
  leftoverEntries: { dir: number; ino: number }[];
}

/**
 * Whether a name is a temporary name of `lguest disk put`: a new folder is
 * built under such a name beside its place and renamed into place in one
 * transaction, so a put that is killed leaves only such a folder, which the
 * next `put` or `rm` removes. `put` refuses to make names of this form.
 */
export function isPutTemp(name: string): boolean {
  return /^\.lguest-put-[0-9a-f]{16}$/.test(name);
}

/** Whether folder inode `n` named `name` is one a put made: the name's 16 hex digits are its mark. */
export function isPutLeftover(name: string, n: Inode): boolean {
  return isPutTemp(name) && n.mark === name.slice(-16);
}

/** A fresh temporary name for {@link isPutTemp}. */
export function putTempName(): string {
  const r = crypto.getRandomValues(new Uint8Array(8));
  return `.lguest-put-${[...r].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/** An lgfs file system on a {@link BlockDev}. */
export class Lgfs {
  readonly g: Geometry;
  #dev: BlockDev;
  #writable: boolean;
  #now: () => number;
  /** Read-only: the journal's committed transaction, applied in memory. */
  #overlay = new Map<number, Uint8Array>();
  /** Writable: metadata cache (dirty entries stay until commit). */
  #cache = new Map<number, { data: Uint8Array; dirty: boolean }>();
  #dirty = new Set<number>();
  #pending: number[] = [];
  #pendingBms = new Set<number>();
  #seq = 1;
  #ballocHint = 0;
  #ialocHint = ROOT_INO + 1;
  journalReplayed = false;
  commits = 0;

  private constructor(dev: BlockDev, g: Geometry, opts: OpenOptions) {
    this.#dev = dev;
    this.g = g;
    this.#writable = opts.writable;
    this.#now = opts.now ?? (() => Date.now() * 1e6);
    this.#ballocHint = g.dstart;
  }

  /** Format: write a fresh file system over the whole device. */
  static mkfs(dev: BlockDev, opts: { now?: () => number } = {}): Lgfs {
    if (dev.size < MIN_SIZE) {
      throw new LgfsError(`a disk of ${dev.size} bytes is too small (at least ${MIN_SIZE})`);
    }
    const g = layout(dev.size);
    const now = (opts.now ?? (() => Date.now() * 1e6))();
    const zero = new Uint8Array(BS);
    // First the old superblock goes (and reaches the disk before anything
    // else is rewritten): a crash part-way leaves "not an lgfs disk", never
    // an old superblock over a half-rewritten bitmap and inode table.
    dev.write(0, zero);
    dev.sync?.();
    dev.write(g.jstart, zero); // no transaction to replay
    for (let b = 0; b < g.bblocks; b++) {
      const bits = new Uint8Array(BS);
      const first = b * BS * 8;
      if (first < g.dstart || first + BS * 8 > g.blocks) {
        for (let i = 0; i < BS * 8; i++) {
          const blk = first + i;
          if (blk < g.dstart || blk >= g.blocks) bits[i >> 3] |= 1 << (i & 7);
        }
      }
      dev.write(g.bstart + b, bits);
    }
    for (let b = 0; b < g.iblocks; b++) {
      const blk = new Uint8Array(BS);
      if (b === 0) {
        encodeInode(blk, ROOT_INO * 128, {
          mode: S_IFDIR | 0o755,
          nlink: 1,
          size: 0,
          mtime: now,
          ctime: now,
          direct: new Array(NDIRECT).fill(0),
          ind: 0,
          dind: 0,
          parent: ROOT_INO,
        });
      }
      dev.write(g.istart + b, blk);
    }
    dev.sync?.(); // everything it describes is on the disk before the superblock
    dev.write(0, superBlock(g, now)); // last: the disk is lgfs from here on
    dev.sync?.();
    return Lgfs.open(dev, { writable: true, now: opts.now });
  }

  /** Open the file system on dev (throws CorruptError for a bad superblock or root). */
  static open(dev: BlockDev, opts: OpenOptions): Lgfs {
    if (dev.size < BS) throw new CorruptError("not an lgfs disk (smaller than one block)");
    const sb = new Uint8Array(BS);
    dev.read(0, sb);
    const g = parseSuper(sb, dev.size);
    const fs = new Lgfs(dev, g, opts);
    fs.#loadJournal();
    const root = fs.inode(ROOT_INO);
    if (!isDir(root)) throw new CorruptError("the root is not a directory");
    return fs;
  }

  // ---- Blocks ----

  #raw(blk: number): Uint8Array {
    const b = new Uint8Array(BS);
    this.#dev.read(blk, b);
    return b;
  }

  /** A metadata block (bitmap, inode table, pointer or directory block). */
  #meta(blk: number): Uint8Array {
    if (!Number.isInteger(blk) || blk < this.g.bstart || blk >= this.g.blocks) {
      throw new CorruptError(`metadata block ${blk} out of range`);
    }
    const o = this.#overlay.get(blk);
    if (o) return o;
    const c = this.#cache.get(blk);
    if (c) return c.data;
    const data = this.#raw(blk);
    if (this.#writable) {
      if (this.#cache.size >= 4096) {
        for (const [k, v] of this.#cache) if (!v.dirty) this.#cache.delete(k);
      }
      this.#cache.set(blk, { data, dirty: false });
    }
    return data;
  }

  #metaW(blk: number): Uint8Array {
    if (!this.#writable) throw new LgfsError("the file system is open read-only");
    const data = this.#meta(blk);
    this.#cache.get(blk)!.dirty = true;
    this.#dirty.add(blk);
    return data;
  }

  #metaNew(blk: number): Uint8Array {
    const data = new Uint8Array(BS);
    this.#cache.set(blk, { data, dirty: true });
    this.#dirty.add(blk);
    return data;
  }

  #dataOk(b: number): boolean {
    return b >= this.g.dstart && b < this.g.blocks;
  }

  #checkData(b: number, what: string): number {
    if (b !== 0 && !this.#dataOk(b)) throw new CorruptError(`${what}: block ${b} out of range`);
    return b;
  }

  // ---- Journal ----

  #loadJournal(): void {
    const g = this.g;
    const d = this.#raw(g.jstart);
    if (!bytesEq(d.subarray(0, 8), MAGIC_JD)) return;
    this.#seq = u64(d, 8) + 1;
    const n = u32(d, 16);
    if (n === 0 || n > JDESC_MAX || n + 2 > g.jblocks) return;
    const targets: number[] = [];
    for (let i = 0; i < n; i++) {
      const t = u32(d, 24 + 4 * i);
      if (t < g.bstart || t >= g.blocks) return;
      targets.push(t);
    }
    let crc = crc32(0, d);
    const images: Uint8Array[] = [];
    for (let i = 0; i < n; i++) {
      const img = this.#raw(g.jstart + 1 + i);
      crc = crc32(crc, img);
      images.push(img);
    }
    const c = this.#raw(g.jstart + 1 + n);
    if (
      !bytesEq(c.subarray(0, 8), MAGIC_JC) || u64(c, 8) !== u64(d, 8) || u32(c, 16) !== n ||
      u32(c, 20) !== crc
    ) return;
    this.journalReplayed = true;
    targets.forEach((t, i) => {
      if (this.#writable) this.#dev.write(t, images[i]);
      else this.#overlay.set(t, images[i]);
    });
  }

  /** Write the current transaction: journal, commit block, home. */
  commit(): void {
    const g = this.g;
    for (const b of this.#pending) this.#bitmapSet(b, false);
    this.#pending = [];
    this.#pendingBms.clear();
    const dirty = [...this.#dirty].map((b) => [b, this.#cache.get(b)!] as const);
    if (dirty.length === 0) return;
    if (dirty.length > JDESC_MAX || dirty.length + 2 > g.jblocks) {
      throw new LgfsError(`internal: transaction of ${dirty.length} blocks`);
    }
    const d = new Uint8Array(BS);
    d.set(MAGIC_JD);
    put64(d, 8, this.#seq);
    put32(d, 16, dirty.length);
    dirty.forEach(([blk], i) => put32(d, 24 + 4 * i, blk));
    let crc = crc32(0, d);
    dirty.forEach(([, v], i) => {
      crc = crc32(crc, v.data);
      this.#dev.write(g.jstart + 1 + i, v.data);
    });
    this.#dev.write(g.jstart, d);
    const c = new Uint8Array(BS);
    c.set(MAGIC_JC);
    put64(c, 8, this.#seq);
    put32(c, 16, dirty.length);
    put32(c, 20, crc);
    this.#dev.write(g.jstart + 1 + dirty.length, c);
    for (const [blk, v] of dirty) {
      this.#dev.write(blk, v.data);
      v.dirty = false;
    }
    this.#dirty.clear();
    const clean = new Uint8Array(BS); // the journal is clean: no blocks, the same seq
    clean.set(MAGIC_JD);
    put64(clean, 8, this.#seq);
    this.#dev.write(g.jstart, clean);
    this.#seq++;
    this.commits++;
  }

  #step(): void {
    if (
      this.#dirty.size >= DIRTY_MAX || this.#pending.length >= PENDING_MAX - 8 ||
      this.#pendingBms.size >= PENDING_BMS
    ) this.commit();
  }

  // ---- Allocation ----

  #bitmapSet(b: number, used: boolean): void {
    const p = this.#metaW(this.g.bstart + Math.floor(b / (BS * 8)));
    const bit = b % (BS * 8);
    if (used) p[bit >> 3] |= 1 << (bit & 7);
    else p[bit >> 3] &= ~(1 << (bit & 7));
  }

  #balloc(): number {
    const g = this.g;
    let b = this.#ballocHint;
    for (let scanned = 0; scanned < g.blocks; scanned++, b++) {
      if (b >= g.blocks || b < g.dstart) b = g.dstart;
      const p = this.#meta(g.bstart + Math.floor(b / (BS * 8)));
      const bit = b % (BS * 8);
      if (p[bit >> 3] === 0xff && (bit & 7) === 0 && b + 8 <= g.blocks) {
        b += 7;
        scanned += 7;
        continue;
      }
      if (!(p[bit >> 3] & (1 << (bit & 7)))) {
        this.#bitmapSet(b, true);
        this.#ballocHint = b + 1;
        return b;
      }
    }
    throw new FsError("ENOSPC", "no space left on the disk");
  }

  #bfree(b: number): void {
    this.#cache.delete(b);
    this.#dirty.delete(b);
    this.#pending.push(b);
    this.#pendingBms.add(Math.floor(b / (BS * 8)));
  }

  // ---- Inodes ----

  #inoOk(ino: number): boolean {
    return Number.isInteger(ino) && ino >= 1 && ino < this.g.inodes;
  }

  /** Inode ino, decoded (CorruptError for a bad number). */
  inode(ino: number): Inode {
    if (!this.#inoOk(ino)) throw new CorruptError(`inode number ${ino} out of range`);
    const n = decodeInode(this.#meta(this.g.istart + Math.floor(ino / IPB)), (ino % IPB) * 128);
    if (n.mode !== 0) {
      const t = n.mode & S_IFMT;
      if (t !== S_IFDIR && t !== S_IFREG) {
        throw new CorruptError(`inode ${ino}: unknown type ${n.mode.toString(8)}`);
      }
      if (n.size > MAX_FILE) {
        throw new CorruptError(`inode ${ino}: size ${n.size} beyond the largest file`);
      }
      if (t === S_IFDIR && (n.size % BS !== 0 || n.size > MAX_DIR_BLOCKS * BS)) {
        throw new CorruptError(`inode ${ino}: bad directory size ${n.size}`);
      }
    }
    return n;
  }

  #iput(ino: number, n: Inode): void {
    encodeInode(this.#metaW(this.g.istart + Math.floor(ino / IPB)), (ino % IPB) * 128, n);
  }

  #ialloc(mode: number, parent: number, mark?: string): number {
    for (let i = 0; i < this.g.inodes; i++) {
      let ino = this.#ialocHint + i;
      if (ino >= this.g.inodes) ino = ROOT_INO + 1 + (ino - this.g.inodes) % (this.g.inodes - 2);
      if (!this.#inoOk(ino) || ino === ROOT_INO) continue;
      if (this.inode(ino).mode === 0) {
        const t = this.#now();
        this.#iput(ino, {
          mode,
          nlink: 1,
          size: 0,
          mtime: t,
          ctime: t,
          direct: new Array(NDIRECT).fill(0),
          ind: 0,
          dind: 0,
          parent,
          ...(mark === undefined ? {} : { mark }),
        });
        this.#ialocHint = ino + 1;
        return ino;
      }
    }
    throw new FsError("ENOSPC", "no free inodes left on the disk");
  }

  // ---- Block maps ----

  /** Physical block of logical block lbn (0 = hole). */
  bmap(n: Inode, lbn: number): number {
    if (lbn < NDIRECT) return this.#checkData(n.direct[lbn], "block map");
    lbn -= NDIRECT;
    if (lbn < PTRS) {
      if (!this.#checkData(n.ind, "indirect block")) return 0;
      return this.#checkData(u32(this.#meta(n.ind), lbn * 4), "block map");
    }
    lbn -= PTRS;
    if (lbn >= PTRS * PTRS) return 0;
    if (!this.#checkData(n.dind, "double indirect block")) return 0;
    const mid = this.#checkData(u32(this.#meta(n.dind), Math.floor(lbn / PTRS) * 4), "block map");
    if (!mid) return 0;
    return this.#checkData(u32(this.#meta(mid), (lbn % PTRS) * 4), "block map");
  }

  #ptrAlloc(blk: number, idx: number, metaNew: boolean): number {
    const v = this.#checkData(u32(this.#meta(blk), idx * 4), "block map");
    if (v) return v;
    const nb = this.#balloc();
    if (metaNew) this.#metaNew(nb);
    put32(this.#metaW(blk), idx * 4, nb);
    return nb;
  }

  /** For a hole at lbn: the next logical block that may be mapped (whole missing pointer blocks skipped). */
  #holeEnd(n: Inode, lbn: number): number {
    if (lbn < NDIRECT) return lbn + 1;
    if (lbn < NDIRECT + PTRS) return n.ind ? lbn + 1 : NDIRECT + PTRS;
    if (!n.dind) return NDIRECT + PTRS + PTRS * PTRS;
    const hi = Math.floor((lbn - NDIRECT - PTRS) / PTRS);
    const mid = this.#checkData(u32(this.#meta(n.dind), hi * 4), "block map");
    return mid ? lbn + 1 : NDIRECT + PTRS + (hi + 1) * PTRS;
  }

  /** Blocks [result, end) of the file are all holes because their pointer blocks are missing. */
  #holeStart(n: Inode, end: number): number {
    for (;;) {
      const lbn = end - 1;
      if (lbn < NDIRECT) return end;
      if (lbn < NDIRECT + PTRS) {
        if (n.ind) return end;
        end = NDIRECT;
        continue;
      }
      if (!n.dind) {
        end = NDIRECT + PTRS;
        continue;
      }
      const hi = Math.floor((lbn - NDIRECT - PTRS) / PTRS);
      if (this.#checkData(u32(this.#meta(n.dind), hi * 4), "block map")) return end;
      end = NDIRECT + PTRS + hi * PTRS;
    }
  }

  /** Like bmap, filling a hole (n changes; the caller writes it back). */
  #bmapAlloc(n: Inode, lbn: number, dirData: boolean): [number, boolean] {
    const before = lbn;
    if (lbn < NDIRECT) {
      if (n.direct[lbn]) return [this.#checkData(n.direct[lbn], "block map"), false];
      n.direct[lbn] = this.#balloc();
      if (dirData) this.#metaNew(n.direct[lbn]);
      return [n.direct[lbn], true];
    }
    const had = this.bmap(n, before);
    if (had) return [had, false];
    lbn -= NDIRECT;
    if (lbn < PTRS) {
      if (!n.ind) {
        n.ind = this.#balloc();
        this.#metaNew(n.ind);
      }
      return [this.#ptrAlloc(n.ind, lbn, dirData), true];
    }
    lbn -= PTRS;
    if (lbn >= PTRS * PTRS) throw new FsError("EFBIG", "file too large");
    if (!n.dind) {
      n.dind = this.#balloc();
      this.#metaNew(n.dind);
    }
    const mid = this.#ptrAlloc(n.dind, Math.floor(lbn / PTRS), true);
    return [this.#ptrAlloc(mid, lbn % PTRS, dirData), true];
  }

  #ptrClear(blk: number, idx: number): boolean {
    const v = this.#checkData(u32(this.#meta(blk), idx * 4), "block map");
    const p = this.#metaW(blk);
    if (v) {
      put32(p, idx * 4, 0);
      this.#bfree(v);
    }
    for (let i = 0; i < PTRS; i++) if (u32(p, i * 4)) return false;
    return true;
  }

  #bunmap(n: Inode, lbn: number): void {
    if (lbn < NDIRECT) {
      if (this.#checkData(n.direct[lbn], "block map")) {
        this.#bfree(n.direct[lbn]);
        n.direct[lbn] = 0;
      }
      return;
    }
    lbn -= NDIRECT;
    if (lbn < PTRS) {
      if (this.#checkData(n.ind, "indirect block") && this.#ptrClear(n.ind, lbn)) {
        this.#bfree(n.ind);
        n.ind = 0;
      }
      return;
    }
    lbn -= PTRS;
    if (!this.#checkData(n.dind, "double indirect block") || lbn >= PTRS * PTRS) return;
    const hi = Math.floor(lbn / PTRS);
    const mid = this.#checkData(u32(this.#meta(n.dind), hi * 4), "block map");
    if (!mid || !this.#ptrClear(mid, lbn % PTRS)) return;
    if (this.#ptrClear(n.dind, hi)) {
      this.#bfree(n.dind);
      n.dind = 0;
    }
  }

  /** Truncate inode ino to len (commits between blocks, as the guest). */
  truncate(ino: number, len: number): void {
    let n = this.inode(ino);
    if (len < n.size && len % BS) {
      const pb = this.bmap(n, Math.floor(len / BS));
      if (pb) {
        const b = this.#raw(pb);
        b.fill(0, len % BS);
        this.#dev.write(pb, b);
      }
    }
    const keep = Math.ceil(len / BS);
    let last = Math.ceil(n.size / BS);
    while (last > keep) {
      last = Math.max(keep, this.#holeStart(n, last));
      if (last === keep) break;
      last--;
      this.#bunmap(n, last);
      if (n.size > last * BS) n.size = Math.max(len, last * BS);
      n.mtime = n.ctime = this.#now();
      this.#iput(ino, n);
      this.#step();
      n = this.inode(ino);
    }
    n.size = len;
    n.mtime = n.ctime = this.#now();
    this.#iput(ino, n);
  }

  // ---- Directories ----

  /** The entries of directory ino (CorruptError for bad ones). */
  *entries(ino: number): Generator<DirEntry> {
    const d = this.inode(ino);
    if (!isDir(d)) throw new FsError("ENOTDIR", "not a directory");
    for (let b = 0; b < d.size / BS; b++) {
      const pb = this.bmap(d, b);
      if (!pb) continue;
      const blk = this.#meta(pb).slice();
      for (let i = 0; i < DPB; i++) {
        const off = i * 128;
        const e = u32(blk, off);
        if (!e) continue;
        const len = blk[off + 5];
        if (len < 1 || len > NAME_MAX) {
          throw new CorruptError(`directory ${ino}: bad name length ${len}`);
        }
        const raw = blk.subarray(off + 8, off + 8 + len);
        // Names are bytes: no '/', no NUL, not "." or "..".
        if (
          raw.includes(0x2f) || raw.includes(0) || (raw[0] === 0x2e &&
            (len === 1 || (len === 2 && raw[1] === 0x2e)))
        ) {
          const shown = new TextDecoder().decode(raw);
          throw new CorruptError(`directory ${ino}: bad name ${JSON.stringify(shown)}`);
        }
        let name: string, isUtf8 = true;
        try {
          name = utf8.decode(raw);
        } catch {
          name = new TextDecoder().decode(raw); // shown with U+FFFD; get refuses it
          isUtf8 = false;
        }
        if (!this.#inoOk(e)) throw new CorruptError(`directory ${ino}: inode ${e} out of range`);
        yield { name, utf8: isUtf8, raw, ino: e, type: blk[off + 4], slot: b * DPB + i };
      }
    }
  }

  lookupIn(dir: number, name: string): DirEntry | null {
    const raw = escapedName(name);
    let byBytes: DirEntry | null = null;
    for (const e of this.entries(dir)) {
      if (e.utf8 && e.name === name) return e; // the name itself first
      if (raw !== null && byBytes === null && !e.utf8 && bytesEq(e.raw, raw)) byBytes = e;
    }
    return byBytes;
  }

  /** Resolve an absolute path: the inode, or null if the last name does not exist. */
  resolve(path: string): { ino: number | null; dir: number; name: string } {
    let cur = ROOT_INO, dir = ROOT_INO, name = "";
    let ino: number | null = ROOT_INO;
    for (const part of path.split("/")) {
      if (part === "" || part === ".") continue;
      if (ino === null) {
        throw new FsError("ENOENT", `${shownName(path)}: no such file or directory`);
      }
      if (!isDir(this.inode(ino))) {
        throw new FsError("ENOTDIR", `${shownName(path)}: not a directory`);
      }
      cur = ino;
      if (part === "..") {
        ino = cur === ROOT_INO ? ROOT_INO : this.inode(cur).parent;
        dir = ino;
        name = "";
        continue;
      }
      if ((escapedName(part) ?? enc.encode(part)).length > NAME_MAX) {
        throw new FsError("ENAMETOOLONG", `${shownName(path)}: name too long`);
      }
      dir = cur;
      name = part;
      ino = this.lookupIn(cur, part)?.ino ?? null;
    }
    return { ino, dir, name };
  }

  #dirAdd(dir: number, name: string, ino: number, type: number): void {
    const d = this.inode(dir);
    let slot = -1;
    for (let b = 0; b < d.size / BS && slot < 0; b++) {
      const pb = this.bmap(d, b);
      if (!pb) continue;
      const blk = this.#meta(pb);
      for (let i = 0; i < DPB; i++) {
        if (!u32(blk, i * 128)) {
          slot = b * DPB + i;
          break;
        }
      }
    }
    if (slot < 0) {
      const nb = d.size / BS;
      if (nb >= MAX_DIR_BLOCKS) throw new FsError("ENOSPC", "directory full");
      this.#bmapAlloc(d, nb, true);
      d.size += BS;
      slot = nb * DPB;
    }
    d.mtime = d.ctime = this.#now();
    this.#iput(dir, d);
    const p = this.#metaW(this.bmap(d, Math.floor(slot / DPB)));
    const off = (slot % DPB) * 128;
    const nm = enc.encode(name);
    p.fill(0, off, off + 128);
    put32(p, off, ino);
    p[off + 4] = type;
    p[off + 5] = nm.length;
    p.set(nm, off + 8);
  }

  /** Point the entry in slot of directory dir at inode ino (same name, same type). */
  #dirSet(dir: number, slot: number, ino: number): void {
    const d = this.inode(dir);
    const p = this.#metaW(this.bmap(d, Math.floor(slot / DPB)));
    put32(p, (slot % DPB) * 128, ino);
    d.mtime = d.ctime = this.#now();
    this.#iput(dir, d);
  }

  #dirDel(dir: number, slot: number): void {
    const d = this.inode(dir);
    const p = this.#metaW(this.bmap(d, Math.floor(slot / DPB)));
    const off = (slot % DPB) * 128;
    p.fill(0, off, off + 128);
    d.mtime = d.ctime = this.#now();
    this.#iput(dir, d);
  }

  // ---- Operations for `lguest disk` ----

  /**
   * mkdir -p of an absolute path; returns the directory's inode. Each
   * folder it makes is added to `made` (its path), so a caller can undo.
   * It makes none deeper than `maxDepth` from the top ({@link MAX_DEPTH};
   * tests make a guest's deeper trees with more).
   */
  mkdirs(path: string, made?: string[], maxDepth = MAX_DEPTH, putTemp = false): number {
    let cur = ROOT_INO;
    let at = "";
    let depth = 0;
    for (const part of path.split("/")) {
      if (part === "" || part === ".") continue;
      if (part === "..") throw new FsError("EINVAL", `${shownName(path)}: '..' not allowed here`);
      if (!validName(part)) {
        throw new FsError("EINVAL", `${shownName(path)}: bad name ${shownName(part)}`);
      }
      at += `/${part}`;
      depth++;
      const e = this.lookupIn(cur, part);
      if (e) {
        if (!isDir(this.inode(e.ino))) {
          throw new FsError("ENOTDIR", `${shownName(path)}: not a directory`);
        }
        cur = e.ino;
        continue;
      }
      if (depth > maxDepth) throw new FsError("ELOOP", tooDeep(path));
      // put's own (putTemp): a folder named by putTempName gets its mark (isPutLeftover) as it is made.
      const mark = putTemp && isPutTemp(part) ? part.slice(-16) : undefined;
      const ino = this.#ialloc(S_IFDIR | 0o755, cur, mark);
      this.#dirAdd(cur, part, ino, DT_DIR);
      made?.push(at);
      cur = ino;
      this.#step();
    }
    return cur;
  }

  /**
   * Remove what a failed operation made (`made`: paths, parents before
   * their contents), last first; each removal is its own transaction, so a
   * crash part-way leaves a smaller tree, never a corrupt one. Returns the
   * paths it could not remove.
   */
  undo(made: string[]): string[] {
    const left: string[] = [];
    for (const p of [...made].reverse()) {
      try {
        const r = this.resolve(p);
        if (r.ino === null) continue;
        if (isDir(this.inode(r.ino))) this.rmdir(p, true);
        else this.unlink(p);
      } catch (e) {
        if (!(e instanceof LgfsError)) throw e;
        left.push(p);
      }
    }
    this.commit();
    return left;
  }

  /**
   * Create or replace the file at path with the bytes `source` yields, then
   * commit. The bytes go into a new inode with no name (nlink 0: an orphan,
   * which a guest's mount frees if the writer dies first); one transaction
   * at the end gives it the name (taking it from the file it replaces, which
   * is freed after). So a crash, a full disk or a file too large leaves the
   * old file or no file, never a partial one. A replace needs room for both
   * copies until that last transaction. Holes stay holes: a number from
   * `source` is that many zero bytes, and a block of only zeros is left
   * unallocated either way. Folders made for path are removed again if
   * the write fails.
   */
  writeFile(path: string, source: Iterable<Uint8Array | number>, mtimeNs?: number): number {
    const parts = path.split("/").filter((p) => p !== "" && p !== ".");
    const name = parts.pop();
    if (!name || !validName(name)) throw new FsError("EINVAL", `${shownName(path)}: bad file name`);
    const made: string[] = [];
    let dir: number;
    try {
      dir = this.mkdirs(`/${parts.join("/")}`, made);
    } catch (e) {
      if (!(e instanceof FsError) || made.length === 0) throw e;
      this.undo(made);
      throw new FsError(
        e.code,
        `${e.message} (${
          shownName(path)
        } not written; the ${made.length} folders made for it are removed again)`,
      );
    }
    const old = this.lookupIn(dir, name);
    if (old && isDir(this.inode(old.ino))) {
      throw new FsError("EISDIR", `${shownName(path)}: is a directory`);
    }
    let ino = 0;
    let size = 0;
    const block = new Uint8Array(BS);
    const words = new Uint32Array(block.buffer);
    let fill = 0;
    const grow = (len: number) => {
      if (size + len > MAX_FILE) throw new FsError("EFBIG", `${shownName(path)}: file too large`);
    };
    /** len bytes of hole: the size grows, no block is taken. */
    const skip = (len: number) => {
      grow(len);
      size += len;
      const n = this.inode(ino);
      n.size = size;
      this.#iput(ino, n);
    };
    const flush = (len: number) => {
      if (len < BS) block.fill(0, len);
      if (zeros(words)) return skip(len);
      this.#step();
      const n = this.inode(ino);
      grow(len);
      const [pb] = this.#bmapAlloc(n, size / BS, false);
      this.#dev.write(pb, block);
      size += len;
      n.size = size;
      n.mtime = n.ctime = this.#now();
      this.#iput(ino, n);
    };
    try {
      ino = this.#ialloc(S_IFREG | 0o644, dir);
      let n0 = this.inode(ino);
      n0.nlink = 0;
      this.#iput(ino, n0);
      for (const chunk of source) {
        if (typeof chunk === "number") {
          for (let len = chunk; len > 0;) {
            if (fill === 0 && len >= BS) {
              const whole = len - len % BS;
              skip(whole);
              len -= whole;
              continue;
            }
            const take = Math.min(BS - fill, len);
            block.fill(0, fill, fill + take);
            fill += take;
            len -= take;
            if (fill === BS) {
              flush(BS);
              fill = 0;
            }
          }
          continue;
        }
        let off = 0;
        while (off < chunk.length) {
          const take = Math.min(BS - fill, chunk.length - off);
          block.set(chunk.subarray(off, off + take), fill);
          fill += take;
          off += take;
          if (fill === BS) {
            flush(BS);
            fill = 0;
          }
        }
      }
      if (fill) flush(fill);
      n0 = this.inode(ino);
      n0.nlink = 1;
      n0.mtime = mtimeNs ?? this.#now();
      this.#iput(ino, n0);
      if (old) {
        this.#dirSet(dir, old.slot, ino);
        const o = this.inode(old.ino);
        o.nlink = 0;
        this.#iput(old.ino, o);
      } else {
        this.#dirAdd(dir, name, ino, DT_REG);
      }
    } catch (e) {
      // Full disk, too large a file, a full directory: the unnamed copy is
      // freed, and the folders made for it; the old file (if any) was never
      // touched.
      if (e instanceof FsError) {
        if (ino) this.#ifree(ino);
        this.commit();
        this.undo(made);
        throw new FsError(
          e.code,
          `${e.message} (${shownName(path)} ${old ? "unchanged" : "not written"})`,
        );
      }
      throw e;
    }
    this.commit(); // the name now leads to the new contents
    if (old) {
      this.#ifree(old.ino);
      this.commit();
    }
    return size;
  }

  /**
   * The contents of file ino in order: data in pieces of up to 1 MiB, and
   * holes as their length in bytes (a number), so a caller can keep them
   * sparse. The pieces add up to the file's size.
   */
  *readFile(ino: number): Generator<Uint8Array | number> {
    const n = this.inode(ino);
    if (isDir(n)) throw new FsError("EISDIR", "is a directory");
    const nblocks = Math.ceil(n.size / BS);
    for (let b = 0; b < nblocks;) {
      const tail = (blk: number) => Math.min(BS, n.size - blk * BS);
      if (!this.bmap(n, b)) {
        const start = b;
        while (b < nblocks && !this.bmap(n, b)) b = Math.min(nblocks, this.#holeEnd(n, b));
        yield Math.min(n.size, b * BS) - start * BS;
        continue;
      }
      const parts: Uint8Array[] = [];
      let len = 0;
      while (b < nblocks && parts.length < 256) {
        const pb = this.bmap(n, b);
        if (!pb) break;
        const blk = new Uint8Array(BS);
        this.#dev.read(pb, blk);
        parts.push(blk.subarray(0, tail(b)));
        len += tail(b++);
      }
      const out = new Uint8Array(len);
      let off = 0;
      for (const p of parts) {
        out.set(p, off);
        off += p.length;
      }
      yield out;
    }
  }

  /**
   * Check the whole file system: every inode reachable once (no cycles, no
   * hard links), directories well formed (no name twice in one), every block in range and used by
   * at most one file, the bitmap equal to the blocks in use. Inodes with no
   * name and nlink 0 are orphans (the guest frees them at its next mount).
   * Throws CorruptError for the first problem.
   */
  check(): CheckReport {
    const g = this.g;
    const used = new Uint8Array(Math.ceil(g.blocks / 8));
    const mark = (b: number, what: string) => {
      if (!this.#dataOk(b)) throw new CorruptError(`${what}: block ${b} out of range`);
      if (used[b >> 3] & (1 << (b & 7))) {
        throw new CorruptError(`${what}: block ${b} is used twice`);
      }
      used[b >> 3] |= 1 << (b & 7);
    };
    for (let b = 0; b < g.dstart; b++) used[b >> 3] |= 1 << (b & 7);
    const seen = new Uint8Array(g.inodes);
    const report: CheckReport = {
      files: 0,
      dirs: 0,
      orphans: 0,
      leaked: 0,
      usedBlocks: 0,
      freeBlocks: 0,
      journalReplayed: this.journalReplayed,
      leftovers: [],
      leftoverEntries: [],
    };
    const inLeftover = new Uint8Array(g.inodes); // inside a leftover: not listed again
    const paths = new Map<number, string>([[ROOT_INO, ""]]);
    const markInode = (ino: number, n: Inode) => {
      const what = `inode ${ino}`;
      n.direct.forEach((b) => b && mark(b, what));
      if (n.ind) {
        mark(n.ind, what);
        const p = this.#meta(n.ind);
        for (let i = 0; i < PTRS; i++) if (u32(p, i * 4)) mark(u32(p, i * 4), what);
      }
      if (n.dind) {
        mark(n.dind, what);
        const p = this.#meta(n.dind).slice();
        for (let i = 0; i < PTRS; i++) {
          const mid = u32(p, i * 4);
          if (!mid) continue;
          mark(mid, what);
          const q = this.#meta(mid);
          for (let j = 0; j < PTRS; j++) if (u32(q, j * 4)) mark(u32(q, j * 4), what);
        }
      }
    };
    const stack: number[] = [ROOT_INO];
    seen[ROOT_INO] = 1;
    while (stack.length) {
      const dir = stack.pop()!;
      const d = this.inode(dir);
      report.dirs++;
      markInode(dir, d);
      const names = new Set<string>(); // a name is one entry of its directory
      for (const e of this.entries(dir)) {
        const key = String.fromCharCode(...e.raw);
        if (names.has(key)) {
          throw new CorruptError(
            `${quoted(paths.get(dir) || "/")} holds two entries named ${shownEntry(e)}`,
          );
        }
        names.add(key);
        if (seen[e.ino]) {
          throw new CorruptError(
            `inode ${e.ino} (${quoted(e.name)}) has two names or is a directory cycle`,
          );
        }
        seen[e.ino] = 1;
        const n = this.inode(e.ino);
        if (n.mode === 0) throw new CorruptError(`${quoted(e.name)} names free inode ${e.ino}`);
        if (n.nlink !== 1) {
          throw new CorruptError(`inode ${e.ino}: bad link count ${n.nlink}`);
        }
        if ((e.type === DT_DIR) !== isDir(n)) {
          throw new CorruptError(`${quoted(e.name)}: entry type does not match inode ${e.ino}`);
        }
        if (isDir(n)) {
          if (n.parent !== dir) {
            throw new CorruptError(`directory ${quoted(e.name)} (inode ${e.ino}): wrong parent`);
          }
          const at = `${paths.get(dir)}/${e.utf8 ? e.name : shownEntry(e)}`;
          if (inLeftover[dir]) {
            inLeftover[e.ino] = 1;
          } else if (e.utf8 && isPutLeftover(e.name, n)) {
            inLeftover[e.ino] = 1;
            report.leftovers.push(at);
            report.leftoverEntries.push({ dir, ino: e.ino });
          }
          paths.set(e.ino, at);
          stack.push(e.ino);
        } else {
          report.files++;
          markInode(e.ino, n);
        }
      }
    }
    for (let ino = ROOT_INO + 1; ino < g.inodes; ino++) {
      if (seen[ino]) continue;
      const n = this.inode(ino);
      if (n.mode === 0) continue;
      if (n.nlink !== 0) throw new CorruptError(`inode ${ino} is in use but has no name`);
      report.orphans++;
      markInode(ino, n);
    }
    for (let bb = 0; bb < g.bblocks; bb++) {
      const bits = this.#meta(g.bstart + bb);
      for (let i = 0; i < BS; i++) {
        const first = (bb * BS + i) * 8;
        if (first >= g.blocks) break;
        if (bits[i] === used[first >> 3] && first >= g.dstart && first + 8 <= g.blocks) {
          const ones = POPCOUNT[bits[i]];
          report.usedBlocks += ones;
          report.freeBlocks += 8 - ones;
          continue;
        }
        for (let k = 0; k < 8 && first + k < g.blocks; k++) {
          const b = first + k;
          const inUse = (used[b >> 3] & (1 << (b & 7))) !== 0;
          const marked = (bits[i] & (1 << k)) !== 0;
          if (inUse && !marked) {
            throw new CorruptError(`block ${b} is in use but free in the bitmap`);
          }
          if (!inUse && marked) report.leaked++;
          if (b >= g.dstart) inUse ? report.usedBlocks++ : report.freeBlocks++;
        }
      }
    }
    return report;
  }

  /**
   * Rename entry `from` of directory dir to `to` (which must not exist), in
   * one transaction of its own: what was built under `from` appears under
   * `to` whole, or (a crash first) not at all.
   */
  rename(dir: number, from: string, to: string): void {
    const e = this.lookupIn(dir, from);
    if (e === null) throw new FsError("ENOENT", `${shownName(from)}: no such file or directory`);
    if (!validName(to)) throw new FsError("EINVAL", `${shownName(to)}: bad name`);
    if (this.lookupIn(dir, to) !== null) throw new FsError("EEXIST", `${shownName(to)}: exists`);
    this.commit(); // what came before is its own transaction
    const d = this.inode(dir);
    const p = this.#metaW(this.bmap(d, Math.floor(e.slot / DPB)));
    const off = (e.slot % DPB) * 128;
    const nm = enc.encode(to);
    p.fill(0, off + 5, off + 128);
    p[off + 5] = nm.length;
    p.set(nm, off + 8);
    d.mtime = d.ctime = this.#now();
    this.#iput(dir, d);
    this.commit();
  }

  /** Remove a file (the host never leaves orphans: nothing holds it open). */
  unlink(path: string): void {
    const r = this.resolve(path);
    if (r.ino === null) {
      throw new FsError("ENOENT", `${shownName(path)}: no such file or directory`);
    }
    if (isDir(this.inode(r.ino))) throw new FsError("EISDIR", `${shownName(path)}: is a directory`);
    const e = this.lookupIn(r.dir, r.name)!;
    this.#dirDel(r.dir, e.slot);
    const n = this.inode(r.ino);
    n.nlink = 0;
    this.#iput(r.ino, n);
    this.#ifree(r.ino);
    this.commit();
  }

  /**
   * Free every orphan (an inode with no name and nlink 0: left by a crash
   * in the middle of a put, a replace or a remove, or by a guest that died
   * with an unlinked file open), as a guest's mount does. Only for a disk
   * no guest has (the host's exclusive lock) that check() passed, so nlink
   * 0 means no name. Returns how many were freed.
   */
  freeOrphans(): number {
    let freed = 0;
    for (let ino = ROOT_INO + 1; ino < this.g.inodes; ino++) {
      const n = this.inode(ino);
      if (n.mode === 0 || n.nlink !== 0) continue;
      this.#ifree(ino);
      this.#step();
      freed++;
    }
    this.commit();
    return freed;
  }

  /**
   * Remove a folder (not the top one): an empty one, or with `recursive`
   * everything in it first, depth first. Each name goes with its inode's
   * nlink in one transaction, so a crash part-way leaves a smaller tree
   * (and maybe an orphan the next mount frees). Run check() first on a disk
   * a guest wrote: that refuses cycles.
   */
  rmdir(path: string, recursive: boolean): void {
    const r = this.resolve(path);
    if (r.ino === null) {
      throw new FsError("ENOENT", `${shownName(path)}: no such file or directory`);
    }
    if (!isDir(this.inode(r.ino))) {
      throw new FsError("ENOTDIR", `${shownName(path)}: not a directory`);
    }
    const e = r.name === "" ? null : this.lookupIn(r.dir, r.name);
    if (r.ino === ROOT_INO || e === null || e.ino !== r.ino) {
      throw new FsError(
        "EBUSY",
        `${shownName(path)}: the top folder (or '.'/'..') cannot be removed`,
      );
    }
    if (!recursive && this.entries(r.ino).next().done !== true) {
      throw new FsError(
        "ENOTEMPTY",
        `${shownName(path)}: folder not empty (rm -r removes it and its files)`,
      );
    }
    this.#removeEntry(r.dir, e);
    this.commit();
  }

  /**
   * Remove entry e of dir and, for a folder, everything in it, depth first
   * with a stack of its own (no recursion: a tree a guest made 10 000 deep
   * goes as a flat one does). Each name is taken once; more names than
   * the disk has inodes is a cycle (check() refuses those first), so the
   * stack stays within one entry an inode.
   */
  #removeEntry(dir: number, e: DirEntry): void {
    const stack: { dir: number; e: DirEntry; open: boolean }[] = [{ dir, e, open: false }];
    let taken = 1;
    while (stack.length) {
      const top = stack[stack.length - 1];
      if (!top.open && isDir(this.inode(top.e.ino))) {
        top.open = true;
        for (const c of this.entries(top.e.ino)) {
          if (++taken > this.g.inodes) throw new CorruptError("a directory cycle");
          stack.push({ dir: top.e.ino, e: c, open: false });
        }
        continue;
      }
      stack.pop();
      this.#dirDel(top.dir, top.e.slot);
      const n = this.inode(top.e.ino);
      n.nlink = 0;
      this.#iput(top.e.ino, n);
      this.#ifree(top.e.ino);
      this.#step();
    }
  }

  /**
   * Remove the folder (and all in it) that entry `ino` of directory dir
   * names, if it is still there: what check() reported as a leftover
   * ({@link CheckReport.leftoverEntries}), found by inode, so a name that is
   * not UTF-8 on its way (shown with U+FFFD) cannot hide it. Commits.
   */
  removeLeftover(dir: number, ino: number): boolean {
    const d = this.inode(dir);
    if (d.mode === 0 || !isDir(d)) return false;
    for (const e of this.entries(dir)) {
      if (e.ino !== ino || !isDir(this.inode(ino))) continue;
      this.#removeEntry(dir, e);
      this.commit();
      return true;
    }
    return false;
  }

  /** Free inode ino, which has no name (nlink 0), and its blocks. */
  #ifree(ino: number): void {
    this.truncate(ino, 0);
    this.#iput(ino, {
      mode: 0,
      nlink: 0,
      size: 0,
      mtime: 0,
      ctime: 0,
      direct: new Array(NDIRECT).fill(0),
      ind: 0,
      dind: 0,
      parent: 0,
    });
  }
}
