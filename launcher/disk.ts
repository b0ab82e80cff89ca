/**
 * `lguest disk`: make, list, check and copy files in and out of lgfs disk
 * images (the guest kit's file system, docs/disk-format.md).
 *
 *   lguest disk mkfs [-f] IMAGE [SIZE]         new file system (SIZE: create/resize the file)
 *   lguest disk ls IMAGE [PATH]                list a directory (or one file)
 *   lguest disk put [-rf] IMAGE HOSTPATH PATH  copy a host file (or folder) onto the disk
 *   lguest disk get [-rf] IMAGE PATH HOSTPATH  copy a file (or folder) off the disk
 *   lguest disk rm [-r] IMAGE PATH             remove a file or folder
 *   lguest disk check IMAGE                    check the file system's consistency
 *
 * Nothing is replaced without -f (an image holding data, a file on the
 * disk, a host file); HOSTPATH '-' is standard input/output.
 *
 * Images are locked like `--block` disks (sys/filelock.ts): shared for ls,
 * get and check, exclusive for mkfs, put and rm; a running guest's disk is
 * refused. Every problem — bad arguments, a corrupt or hostile image, a
 * host file that cannot be written — is one line on stderr and exit code
 * EXIT.USAGE.
 *
 * @module
 */

import { EXIT, permissionMessage } from "./exit.ts";
import { muteStderr, print, printBytes, StdoutError, warn } from "../sys/stdio.ts";
import { meant } from "./args.ts";
import {
  type BlockDev,
  BS,
  CorruptError,
  type DirEntry,
  FsError,
  isDir,
  isPutTemp,
  Lgfs,
  LgfsError,
  MAX_DEPTH,
  MAX_FILE,
  MAX_SIZE,
  MIN_SIZE,
  putTempName,
  quoted,
  shownEntry,
  shownName,
  tooDeep,
  validName,
} from "./lgfs.ts";
import {
  ERRNO,
  fdIdentity,
  libc,
  O_CREAT,
  O_RDONLY,
  O_RDWR,
  openFile,
  pread,
  pwrite,
  stdStreamIs,
  SysError,
} from "../sys/libc.ts";
import { lockFile } from "../sys/filelock.ts";
import { hasLgfsMagic } from "../abi/lgfs_magic.ts";

export { MAX_DEPTH };

const USAGE = `Usage:
  lguest disk mkfs [-f] IMAGE [SIZE]          make a file system (SIZE e.g. 64M, 1G; a plain number
                                              is MiB: create or resize IMAGE)
  lguest disk ls IMAGE [PATH]                 list a directory of the disk (default /)
  lguest disk put [-rf] IMAGE HOSTPATH PATH   copy a host file (-r: folder) to PATH on the disk
                                              (into PATH if a folder or ending in /)
  lguest disk get [-rf] IMAGE PATH HOSTPATH   copy a file (-r: folder, made new) off the disk
                                              (into HOSTPATH if a folder)
  lguest disk rm [-r] IMAGE PATH              remove a file or an empty folder from the disk
                                              (-r: a folder and everything in it)
  lguest disk check IMAGE                     check the file system

HOSTPATH '-' is standard input (put) or output (get) for one file; a HOSTPATH
that is a link is followed. Holes (and blocks of zeros) take no room on the
disk. A put that fails removes again what it made; a new folder appears whole
or not at all, even if put is killed. PATH is named from the top
(no '..', at most 4096 bytes); a file is never PATH/.
Nothing is replaced unless you say so: mkfs refuses an IMAGE that holds data,
put a file that exists on the disk, get a host file that exists; -f (--force)
replaces it. Options may come anywhere; a file named like an option is
./-name or comes after --. Problems: one line on stderr, exit code 125.`;

class DiskUsage extends Error {}

/** A put's failure whose temporary folder could not be removed again (the message says so). */
class AsideLeft extends DiskUsage {}

/** Refuse too few or too many words: "ls: too many arguments (ls needs IMAGE [PATH])". */
function arity(cmd: string, words: string[], min: number, max: number, syntax: string): void {
  if (words.length >= min && words.length <= max) return;
  const what = words.length > max ? "too many arguments" : "missing arguments";
  throw new DiskUsage(`${cmd}: ${what} (${cmd} needs ${syntax})`);
}

/**
 * The inode at disk path `path` (what ls, get and rm name): ENOENT if there
 * is none, ENOTDIR for a file named with a trailing '/' (as POSIX says).
 */
function found(fs: Lgfs, path: string): { ino: number; dir: number; name: string } {
  const r = fs.resolve(path);
  if (r.ino === null) throw new FsError("ENOENT", `${shownName(path)}: no such file or directory`);
  if (/\/\.?$/.test(path) && !isDir(fs.inode(r.ino))) {
    throw new FsError("ENOTDIR", `${shownName(path)}: not a directory`);
  }
  return { ...r, ino: r.ino };
}

/**
 * The options of one disk command (`allowed`: their letters, e.g. "rf")
 * and its other words. Options may come anywhere (`-rf`, `--force` =
 * `-f`); `--` ends them, so a file named like an option is `./-name` or
 * comes after `--`.
 */
function options(cmd: string, args: string[], allowed: string) {
  const flags = new Set<string>();
  const words: string[] = [];
  const known = [...allowed].map((c) => `-${c}`).join(", ") || "none";
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--") {
      words.push(...args.slice(i + 1));
      break;
    }
    if (a === "--force" && allowed.includes("f")) {
      flags.add("f");
    } else if (/^-[a-zA-Z]+$/.test(a)) {
      for (const c of a.slice(1)) {
        if (!allowed.includes(c)) {
          throw new DiskUsage(`${cmd}: unknown option '-${c}' (options: ${known})`);
        }
        flags.add(c);
      }
    } else if (a.startsWith("--")) {
      const hint = meant(a, [...allowed.includes("f") ? ["--force"] : [], "--help"]);
      throw new DiskUsage(
        `${cmd}: unknown option ${quoted(a)} (${hint}options: ${known})`,
      );
    } else {
      words.push(a);
    }
  }
  if (words.includes("")) {
    throw new DiskUsage(`${cmd}: an empty argument ('') where a file or path goes (/ is the top)`);
  }
  return { has: (c: string) => flags.has(c), words };
}

/**
 * Refuse an image that is the command's own standard output or error
 * (`lguest disk get d.img /f - 1<>d.img`, `ls`, `check`, `mkfs -f`): what it
 * prints would land on the disk's block 0. Stderr that is the image gets no
 * line either (the exit code, 125, says it).
 */
function refuseStdStream(path: string, identity: string | null, close: () => void): void {
  const which = stdStreamIs(identity);
  if (which === null) return;
  close();
  if (which === "stderr") muteStderr();
  throw new DiskUsage(
    `${shownName(path)}: standard ${
      which === "stdout" ? "output" : "error"
    } is the disk image itself (what the command prints would be written over it)`,
  );
}

/** A locked image file as a block device (whole blocks, pread/pwrite). */
class FileDev implements BlockDev {
  constructor(readonly fd: number, readonly size: number) {}
  read(blk: number, buf: Uint8Array): void {
    const off = blk * BS;
    if (off + buf.length > this.size) throw new CorruptError(`block ${blk} is past the disk's end`);
    let done = 0;
    while (done < buf.length) {
      const n = pread(this.fd, buf.subarray(done), off + done);
      if (n === 0) {
        buf.fill(0, done);
        return;
      }
      done += n;
    }
  }
  write(blk: number, buf: Uint8Array): void {
    const off = blk * BS;
    if (off + buf.length > this.size) throw new LgfsError(`block ${blk} is past the disk's end`);
    let done = 0;
    while (done < buf.length) done += pwrite(this.fd, buf.subarray(done), off + done);
  }
  sync(): void {
    // EINVAL: a file that cannot be synced (a special file); its writes are in order anyway.
    if (libc().fdatasync(this.fd) !== 0 && ERRNO[0] !== 22) {
      throw new SysError("fdatasync", ERRNO[0]);
    }
  }
  close(): void {
    libc().close(this.fd);
  }
}

/**
 * Parse SIZE: K/M/G/T suffixes, a plain number is MiB (one of 2^20 or more,
 * likely meant as bytes, is refused: give a unit).
 */
export function parseDiskSize(text: string): number {
  const m = /^(\d+)([kmgt]?)(i?b)?$/i.exec(text.trim());
  if (!m) throw new DiskUsage(`invalid size '${text}' (use e.g. 64M, 1G)`);
  if (!m[2] && !m[3] && Number(m[1]) >= 2 ** 20) {
    // 1048576 was likely meant as bytes; as MiB it is a 1 TiB disk.
    throw new DiskUsage(
      `size '${text}': a plain number is MiB (${text} MiB is over 1 TiB): ` +
        `give a unit (${text}M if you mean it, or e.g. 1M, 64M, 1G)`,
    );
  }
  const unit = (m[2] || "m").toLowerCase() as "k" | "m" | "g" | "t";
  const bytes = Number(m[1]) * { k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 }[unit];
  if (bytes % BS !== 0) throw new DiskUsage(`size '${text}' is not a multiple of 4K`);
  if (bytes < MIN_SIZE || bytes > MAX_SIZE) {
    // The protocol's disk size is a count of 512-byte sectors below 2^32.
    throw new DiskUsage(`size '${text}' out of range (1M to 2T less 4K: under 2^32 sectors)`);
  }
  return bytes;
}

function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotCapable) throw e;
    return !(e instanceof Deno.errors.NotFound);
  }
}

/** A libc error (SysError) as words: "permission denied", not EACCES. */
function sysText(e: unknown): string {
  const code = (e as SysError).code;
  const text: Record<string, string> = {
    EACCES: "permission denied",
    EPERM: "operation not permitted",
    EROFS: "read-only file system",
    ENOENT: "no such file or directory",
    EISDIR: "is a directory",
    ENOTDIR: "not a directory",
    ELOOP: "too many levels of symbolic links",
    EIO: "I/O error",
    ENOSPC: "no space left on the host's disk",
    ETXTBSY: "text file busy",
  };
  return code ? (text[code] ?? code) : String(e);
}

function openImage(path: string, exclusive: boolean, create = false): FileDev {
  let st: Deno.FileInfo | null = null;
  try {
    st = Deno.statSync(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound) || !create) {
      if (e instanceof Deno.errors.NotCapable) throw e;
      throw new DiskUsage(
        `${shownName(path)}: ${e instanceof Deno.errors.NotFound ? "no such file" : hostError(e)}`,
      );
    }
  }
  if (st?.isDirectory) throw new DiskUsage(`${shownName(path)}: is a directory`);
  if (st && !st.isFile) throw new DiskUsage(`${shownName(path)}: not a regular file`);
  let fd: number;
  try {
    fd = openFile(path, exclusive ? O_RDWR | (create ? O_CREAT : 0) : O_RDONLY);
  } catch (e) {
    if (e instanceof Deno.errors.NotCapable) throw e;
    const code = (e as SysError).code;
    const why = exclusive && (code === "EACCES" || code === "EROFS" || code === "EPERM")
      ? " (mkfs, put and rm write to the image)"
      : "";
    throw new DiskUsage(`${shownName(path)}: ${sysText(e)}${why}`);
  }
  refuseStdStream(path, fdIdentity(fd), () => libc().close(fd));
  let ok: boolean;
  try {
    ok = lockFile(fd, exclusive);
  } catch (e) {
    libc().close(fd);
    throw new DiskUsage(`${shownName(path)}: cannot lock: ${(e as Error).message}`);
  }
  if (!ok) {
    libc().close(fd);
    throw new DiskUsage(
      `${shownName(path)}: in use by another lguest (locked; try again when that run has ended)`,
    );
  }
  const size = Number(libc().lseek(fd, 0n, 2));
  return new FileDev(fd, size);
}

/**
 * Open the image's file system for fn. One that will be changed
 * (`exclusive`: put, rm) is checked whole first, as get does, so a disk a
 * guest left corrupt (a block used twice, a bitmap that says free where a
 * file lives) is refused rather than made worse; and the orphans a crash
 * left are freed, as a guest's mount would.
 */
function withImage<T>(
  path: string,
  exclusive: boolean,
  fn: (fs: Lgfs, dev: FileDev) => T,
): T {
  const dev = openImage(path, exclusive);
  try {
    const fs = Lgfs.open(dev, { writable: exclusive });
    if (exclusive) tidy(fs);
    return fn(fs, dev);
  } finally {
    dev.close();
  }
}

/**
 * Before a change: check the whole file system (a disk a guest left corrupt
 * is refused, not made worse), then free what a crash or a killed put left:
 * unnamed inodes, and folders under a put's temporary name.
 */
export function tidy(fs: Lgfs): void {
  const { leftoverEntries } = fs.check();
  fs.freeOrphans();
  // Found by inode (a name on the way that is not UTF-8 hides none), removed
  // at any depth; removing takes no room, so a full disk is no obstacle.
  for (const { dir, ino } of leftoverEntries) fs.removeLeftover(dir, ino);
}

function fmtTime(ns: number): string {
  const d = new Date(Math.floor(ns / 1e6));
  return isNaN(d.getTime()) ? "?" : d.toISOString().replace("T", " ").replace(/\.\d+Z$/, "");
}

/**
 * Whether the open file fd (of size bytes) holds anything but zeros:
 * reads only its data extents (SEEK_DATA/SEEK_HOLE), so a sparse image of
 * any size is quick; stops at the first non-zero byte.
 */
function holdsData(fd: number, size: number): boolean {
  const SEEK_DATA = 3, SEEK_HOLE = 4, ENXIO = 6;
  const buf = new Uint8Array(1 << 20);
  for (let off = 0; off < size;) {
    let data = Number(libc().lseek(fd, BigInt(off), SEEK_DATA));
    if (data < 0 && ERRNO[0] === ENXIO) return false; // only a hole from off to the end
    let hole = data < 0 ? -1 : Number(libc().lseek(fd, BigInt(data), SEEK_HOLE));
    if (data < 0 || hole < 0) [data, hole] = [off, size]; // no SEEK_DATA here: read it all
    for (let at = data; at < hole;) {
      const n = pread(fd, buf.subarray(0, Math.min(buf.length, hole - at)), at);
      if (n === 0) return false;
      for (let i = 0; i < n; i++) if (buf[i] !== 0) return true;
      at += n;
    }
    off = hole;
  }
  return false;
}

function mkfs(argv: string[]): number {
  const { has, words: args } = options("mkfs", argv, "f");
  arity("mkfs", args, 1, 2, "[-f] IMAGE [SIZE]");
  const [path, sizeText] = args;
  const size = sizeText === undefined ? null : parseDiskSize(sizeText);
  if (size === null && !exists(path)) {
    throw new DiskUsage(
      `${shownName(path)}: no such file (give a SIZE to make it: mkfs ${shownName(path)} 64M)`,
    );
  }
  const dev0 = openImage(path, true, size !== null);
  try {
    let bytes = dev0.size;
    if (!has("f")) {
      // A user's data is never erased by a mistyped name: only a new, empty
      // or all-zero file is formatted without -f.
      const head = new Uint8Array(8);
      const lgfs = bytes >= 8 && pread(dev0.fd, head, 0) === 8 && hasLgfsMagic(head);
      if (lgfs) {
        throw new DiskUsage(
          `${
            shownName(path)
          }: holds an lgfs file system already (mkfs -f erases it and every file on it)`,
        );
      }
      if (holdsData(dev0.fd, bytes)) {
        throw new DiskUsage(
          `${shownName(path)}: holds data, not only zeros (mkfs -f overwrites it)`,
        );
      }
    }
    if (size !== null) {
      // On the open file: a link (even a dangling one, whose file open made) is followed.
      if (libc().ftruncate(dev0.fd, BigInt(size)) !== 0) {
        const e = ERRNO[0]; // before shownName runs (sys/libc.ts ERRNO)
        throw new DiskUsage(`${shownName(path)}: ${sysText(new SysError("ftruncate", e))}`);
      }
      bytes = size;
    } else if (bytes < MIN_SIZE) {
      throw new DiskUsage(
        `${shownName(path)}: ${bytes} bytes is too small (give a SIZE of at least 1M)`,
      );
    }
    const dev = new FileDev(dev0.fd, Math.min(bytes, MAX_SIZE));
    const fs = Lgfs.mkfs(dev);
    const g = fs.g;
    const room = (g.blocks - g.dstart) * BS;
    const human = room >= 2 ** 30
      ? `${(room / 2 ** 30).toFixed(1)} GiB`
      : `${(room / 2 ** 20).toFixed(1)} MiB`;
    print(
      `${shownName(path)}: lgfs, ${g.blocks} blocks of 4 KiB (${human} for files), ${
        g.inodes - 2
      } inodes`,
    );
  } finally {
    dev0.close();
  }
  return EXIT.OK;
}

export { shownName };

/** text with every control character (C0, DEL, C1) as a \\uXXXX escape. */
export function escapeControls(text: string): string {
  return text.replace(
    // deno-lint-ignore no-control-regex
    /[\u0000-\u001f\u007f-\u009f]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

function ls(argv: string[]): number {
  const args = options("ls", argv, "").words;
  arity("ls", args, 1, 2, "IMAGE [PATH]");
  const [image, path = "/"] = args;
  diskPath("ls", path);
  return withImage(image, false, (fs) => {
    const r = found(fs, path);
    const show = (name: string, ino: number, raw?: DirEntry) => {
      const n = fs.inode(ino);
      const kind = isDir(n) ? "d" : "-";
      const perm = (n.mode & 0o777).toString(8).padStart(3, "0");
      print(
        `${kind}${perm} ${String(n.size).padStart(12)} ${fmtTime(n.mtime)} ${
          raw ? shownEntry(raw) : shownName(name)
        }${isDir(n) ? "/" : ""}`,
      );
    };
    if (!isDir(fs.inode(r.ino))) {
      show(path, r.ino);
      return EXIT.OK;
    }
    const list = [...fs.entries(r.ino)].sort((a, b) => (a.name < b.name ? -1 : 1));
    for (const e of list) show(e.name, e.ino, e);
    return EXIT.OK;
  });
}

function check(argv: string[]): number {
  const args = options("check", argv, "").words;
  arity("check", args, 1, 1, "IMAGE");
  return withImage(args[0], false, (fs) => {
    const r = fs.check();
    print(
      `${
        args[0]
      }: consistent: ${r.files} files, ${r.dirs} directories, ${r.usedBlocks} blocks used, ${r.freeBlocks} free` +
        (r.orphans ? `, ${r.orphans} unlinked files to free at the next mount` : "") +
        (r.leaked ? `, ${r.leaked} leaked blocks` : "") +
        (r.leftovers.length
          ? `, ${r.leftovers.length} folders a killed put left (the next put or rm removes them), ` +
            `e.g. ${shownName(r.leftovers[0])}`
          : ""),
    );
    return EXIT.OK;
  });
}

/**
 * A host file's contents for Lgfs.writeFile: data in pieces of up to 1 MiB
 * and holes as their length (SEEK_DATA/SEEK_HOLE, where the host's file
 * system has them; elsewhere all is data, and writeFile still leaves a
 * block of zeros unallocated), so a sparse file stays sparse.
 */
function* hostChunks(path: string): Generator<Uint8Array | number> {
  let fd: number;
  try {
    fd = openFile(path, O_RDONLY);
  } catch (e) {
    if (e instanceof Deno.errors.NotCapable) throw e;
    throw new DiskUsage(`${shownName(path)}: ${sysText(e)}`);
  }
  try {
    const SEEK_DATA = 3, SEEK_HOLE = 4, SEEK_END = 2, ENXIO = 6;
    const size = Number(libc().lseek(fd, 0n, SEEK_END));
    const buf = new Uint8Array(1 << 20);
    for (let off = 0; off < size;) {
      let data = Number(libc().lseek(fd, BigInt(off), SEEK_DATA));
      if (data < 0 && ERRNO[0] === ENXIO) {
        yield size - off; // a hole to the end
        return;
      }
      let hole = data < 0 ? -1 : Number(libc().lseek(fd, BigInt(data), SEEK_HOLE));
      if (data < 0 || hole < 0) [data, hole] = [off, size]; // no SEEK_DATA here: all data
      if (data > off) yield data - off;
      for (let at = data; at < hole;) {
        const n = pread(fd, buf.subarray(0, Math.min(buf.length, hole - at)), at);
        if (n === 0) return; // shrunk while read: what there was
        at += n;
        yield buf.subarray(0, n);
      }
      off = hole;
    }
  } finally {
    libc().close(fd);
  }
}

/** A host file's kind and size (`follow`: of what a link leads to). */
function hostStat(path: string, follow = false): Deno.FileInfo {
  try {
    return follow ? Deno.statSync(path) : Deno.lstatSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotCapable) throw e;
    throw new DiskUsage(
      `${shownName(path)}: ${e instanceof Deno.errors.NotFound ? "no such file" : hostError(e)}`,
    );
  }
}

/** Standard input in pieces of up to 1 MiB, to its end. */
function* stdinChunks(): Generator<Uint8Array> {
  const buf = new Uint8Array(1 << 20);
  for (;;) {
    const n = Deno.stdin.readSync(buf);
    if (n === null) return;
    if (n > 0) yield buf.slice(0, n);
  }
}

/** `put IMAGE - PATH`: standard input to the file PATH. */
function putStdin(image: string, path: string, force: boolean, recursive: boolean): number {
  if (recursive) throw new DiskUsage("put -r: '-' (standard input) is one file, not a folder");
  return withImage(image, true, (fs, dev) => {
    const input = fdIdentity(0);
    if (input !== null && input === fdIdentity(dev.fd)) {
      throw new DiskUsage(
        `${shownName(image)}: standard input is the disk image itself (it cannot go onto itself)`,
      );
    }
    let ino: number | null = null;
    try {
      ino = fs.resolve(path).ino;
    } catch (e) {
      if (!(e instanceof FsError)) throw e; // a missing parent is made; a file parent said below
    }
    if ((ino !== null && isDir(fs.inode(ino))) || path.endsWith("/")) {
      throw new DiskUsage(
        `${shownName(path)}: is a folder: name the file to write standard input to`,
      );
    }
    if (ino !== null && !force) {
      throw new DiskUsage(`${shownName(path)}: exists on ${shownName(image)} (put -f replaces it)`);
    }
    refuseDeep(fs, path, true);
    // Folders made for it appear with the file, as put's (a kill while reading leaves none).
    const m = firstMissing(fs, path, true);
    if (m === null) fs.writeFile(path, stdinChunks());
    else buildAside(fs, m, (q) => void fs.writeFile(q, stdinChunks()));
    return EXIT.OK;
  });
}

/** `get IMAGE PATH -`: the file to standard output (holes as zeros). */
function getStdout(fs: Lgfs, ino: number): number {
  // A closed standard output (`>&-`) is /dev/null by the time lguest runs (Deno's runtime
  // opens it there, read-write, as `1<>/dev/null` would): a sink like any other (README).
  const zeros = new Uint8Array(1 << 16);
  const out = printBytes;
  try {
    for (const piece of fs.readFile(ino)) {
      if (typeof piece !== "number") {
        out(piece);
        continue;
      }
      for (let left = piece; left > 0; left -= zeros.length) {
        out(zeros.subarray(0, Math.min(left, zeros.length)));
      }
    }
  } catch (e) {
    // `| head`: the reader is gone; end as a program killed by SIGPIPE would. Another
    // write error (a full disk) is one line and 125 (launcher/cli.ts, sys/stdio.ts).
    if (e instanceof StdoutError && e.cause instanceof Deno.errors.BrokenPipe) {
      return EXIT.SIGNAL_BASE + 13;
    }
    throw e;
  }
  return EXIT.OK;
}

/** Longest disk path put accepts (docs/disk-format.md: paths <= 4096 bytes). */
export const MAX_PATH = 4096;

/**
 * A disk PATH as the user gave it, refused when lgfs cannot hold it: more
 * than MAX_PATH bytes, or a `..` (put, rm and get name a path from the top;
 * `..` would make `/a/../b` and `/b` two spellings of one thing).
 */
function diskPath(cmd: string, path: string): string {
  if (new TextEncoder().encode(path).length > MAX_PATH) {
    throw new DiskUsage(`${cmd}: path longer than ${MAX_PATH} bytes (the lgfs limit)`);
  }
  if (path.split("/").includes("..")) {
    throw new DiskUsage(`${shownName(path)}: '..' not allowed (name the path from the top, /)`);
  }
  if (cmd === "put" && path.split("/").some(isPutTemp)) throw new DiskUsage(tempRefused(path));
  return path;
}

function put(argv: string[]): number {
  const { has, words: args } = options("put", argv, "rf");
  const recursive = has("r");
  arity("put", args, 3, 3, "[-rf] IMAGE HOSTPATH PATH");
  const [image, host, path] = args;
  diskPath("put", path);
  if (host === "-") return putStdin(image, path, has("f"), recursive);
  // The file named is followed if it is a link, as cp does; links inside a
  // folder (put -r) are not copied.
  const st = hostStat(host, true);
  if (st.isDirectory && !recursive) {
    throw new DiskUsage(`${shownName(host)}: is a directory (use put -r)`);
  }
  if (!st.isDirectory && !st.isFile) throw new DiskUsage(`${shownName(host)}: not a regular file`);
  return withImage(image, true, (fs) => {
    putOnto(fs, host, path, { force: has("f"), image, self: Deno.statSync(image) });
    return EXIT.OK;
  });
}

/**
 * Refuse (before anything is written) a put that would make a folder more
 * than MAX_DEPTH deep from the top: p itself (a folder) or the folders of
 * p's path (a file). One that exists already (a guest made it) is used.
 */
function refuseDeep(fs: Lgfs, p: string, file: boolean): void {
  const parts = p.split("/").filter((x) => x !== "" && x !== ".");
  const dirs = file ? parts.slice(0, -1) : parts;
  if (dirs.length <= MAX_DEPTH) return;
  let ino: number | null = null;
  try {
    ino = fs.resolve(`/${dirs.join("/")}`).ino;
  } catch (e) {
    if (!(e instanceof FsError)) throw e; // missing on the way: made, so too deep
  }
  if (ino !== null && isDir(fs.inode(ino))) return;
  throw new DiskUsage(tooDeep(file ? `/${dirs.join("/")}` : p));
}

/**
 * The first folder of p's path that does not exist on fs: its parent's
 * inode and path, its name, and the names after it; null when nothing is
 * missing, or only p itself and p is a file (or a file is on the way:
 * the write says so).
 */
type Missing = { dir: number; parent: string; name: string; rest: string[] };
function firstMissing(fs: Lgfs, p: string, file: boolean): Missing | null {
  const parts = p.split("/").filter((x) => x !== "" && x !== ".");
  let dir = fs.resolve("/").ino!;
  let parent = "";
  for (let i = 0; i < parts.length; i++) {
    const e = fs.lookupIn(dir, parts[i]);
    if (e === null) {
      if (file && i === parts.length - 1) return null;
      return { dir, parent, name: parts[i], rest: parts.slice(i + 1) };
    }
    if (!isDir(fs.inode(e.ino))) return null;
    dir = e.ino;
    parent += `/${parts[i]}`;
  }
  return null;
}

/**
 * Run build with the missing folder m under a temporary name beside it
 * (build gets the path it should write), then rename it into place in one
 * transaction; returns the folder's path. A failure removes the temporary
 * folder and all in it again (and names the real path in its message); a
 * kill leaves it, for the next put or rm ({@link tidy}).
 */
function buildAside(fs: Lgfs, m: Missing, build: (q: string) => void): string {
  const tmp = putTempName();
  const at = `${m.parent}/${tmp}`;
  const top = `${m.parent}/${m.name}`;
  const inner: string[] = [];
  try {
    fs.mkdirs(at, inner, undefined, true); // marked: only such a folder is a leftover if killed
    build([at, ...m.rest].join("/"));
  } catch (e) {
    if (!(e instanceof LgfsError || e instanceof DiskUsage || e instanceof SysError)) throw e;
    const left = fs.undo(inner); // the temporary folder and all in it
    e.message = e.message.replaceAll(at, top);
    if (left.length) {
      // Said here, so put never claims it removed what is still there.
      throw new AsideLeft(
        `${e.message}; could not remove its temporary folder ${shownName(at)} (check names it)`,
      );
    }
    throw e;
  }
  fs.rename(m.dir, tmp, m.name);
  return top;
}

/** What {@link putOnto} needs besides the file system and the paths. */
export interface PutOptions {
  /** Replace files that exist (`-f`). */
  force: boolean;
  /** The image's name, for messages. */
  image: string;
  /** The image's host file, which is never copied onto itself. */
  self?: { dev: number | null; ino: number | null };
}

/**
 * `put` onto an open file system: the host file or folder `host` to `path`
 * (into it when it is a folder or ends in '/', as cp). Throws DiskUsage
 * (one line) for what it refuses or could not do, after removing what it
 * made; any other exception (a crash) leaves the disk as the journal has it.
 */
export function putOnto(fs: Lgfs, host: string, path: string, o: PutOptions): void {
  const st = hostStat(host, true);
  const image = o.image;
  // Twice: first only looking (so a tree lgfs cannot hold is refused
  // before anything is written), then copying; what the copy made is
  // removed again if it fails. A new folder (and the folders made for a
  // new path) is built under a temporary name beside its place and
  // renamed into place in one transaction: a kill leaves it whole or
  // absent (and maybe the temporary folder, which the next put or rm
  // removes); a file is always whole or absent (Lgfs.writeFile).
  const made: string[] = [];
  let replaced = 0;
  let built = false; // a temporary folder was removed again after a failure (say so)
  const atomically = (m: Missing, build: (q: string) => void) => {
    try {
      made.push(buildAside(fs, m, build));
    } catch (e) {
      // Its temporary folder was removed again (unless the message says it was not, or says
      // itself what was removed): the user is told.
      built = e instanceof Error && !(e instanceof AsideLeft) &&
        !/removed again\)$/.test(e.message);
      throw e;
    }
  };
  const copy = (h: string, p: string, depth: number, dry: boolean, whole: boolean) => {
    const s = hostStat(h, depth === 0);
    if (dry && new TextEncoder().encode(p).length > MAX_PATH) {
      throw new DiskUsage(`${shownName(p)}: path longer than ${MAX_PATH} bytes (the lgfs limit)`);
    }
    if (dry && (s.isFile || s.isDirectory)) refuseDeep(fs, p, s.isFile);
    if (!dry && !whole && (s.isFile || s.isDirectory)) {
      const m = firstMissing(fs, p, s.isFile);
      if (m !== null) return atomically(m, (q) => copy(h, q, depth, false, true));
    }
    if (s.isFile) {
      if (s.size > MAX_FILE) {
        throw new DiskUsage(
          `${shownName(h)}: ${s.size} bytes, more than an lgfs file holds (${MAX_FILE})`,
        );
      }
      if (o.self && s.dev === o.self.dev && s.ino === o.self.ino) {
        // `put -r IMG . /x` in the image's folder: it would copy itself until full
        throw new DiskUsage(
          `${shownName(h)}: is the disk image itself (it cannot go onto itself)`,
        );
      }
      let ino: number | null = null;
      try {
        ino = fs.resolve(p).ino;
      } catch (e) {
        if (!(e instanceof FsError)) throw e; // a missing or file parent: said below
      }
      if (dry) {
        // Nothing on the disk is replaced unless -f says so; a folder
        // never is (checked before anything is written).
        if (ino !== null && isDir(fs.inode(ino))) {
          throw new DiskUsage(`${shownName(p)}: is a folder on ${shownName(image)}`);
        }
        if (ino !== null && !o.force) {
          throw new DiskUsage(
            `${shownName(p)}: exists on ${shownName(image)} (put -f replaces it)`,
          );
        }
        return;
      }
      const mtime = s.mtime ? s.mtime.getTime() * 1e6 : undefined;
      fs.writeFile(p, hostChunks(h), mtime);
      if (whole) return;
      if (ino === null) made.push(p);
      else replaced++;
    } else if (s.isDirectory) {
      if (dry) {
        // A folder never replaces a file (nor goes under one): said before anything is written.
        let ino: number | null = null;
        try {
          ino = fs.resolve(p).ino;
        } catch (e) {
          if (!(e instanceof FsError)) throw e;
          if (e.code === "ENOTDIR") {
            throw new DiskUsage(`${shownName(p)}: not a directory (a file on the way)`);
          }
        }
        if (ino !== null && !isDir(fs.inode(ino))) {
          throw new DiskUsage(
            `${shownName(p)}: is a file on ${shownName(image)} (a folder cannot replace it)`,
          );
        }
      }
      if (!dry) fs.mkdirs(p, whole ? undefined : made);
      const names = [...Deno.readDirSync(h)].map((e) => e.name).sort();
      for (const name of names) {
        if (!validName(name)) {
          throw new DiskUsage(
            `${shownName(`${shownName(h)}/${name}`)}: name not allowed on lgfs`,
          );
        }
        if (isPutTemp(name)) throw new DiskUsage(tempRefused(`${h}/${name}`));
        copy(`${h}/${name}`, `${p.replace(/\/+$/, "")}/${name}`, depth + 1, dry, whole);
      }
    } else {
      throw new DiskUsage(
        `${shownName(h)}: not a regular file or folder (links in a folder are not copied)`,
      );
    }
  };
  let existing: number | null = null;
  try {
    existing = fs.resolve(path).ino;
  } catch (e) {
    if (!(e instanceof FsError)) throw e; // a missing parent is made below
  }
  // Into a folder as cp does: an existing one, or one named with a
  // trailing '/' (made if missing), never a file called like the folder.
  const intoDir = !st.isDirectory &&
    ((existing !== null && isDir(fs.inode(existing))) || /.\/$/.test(path));
  const target = intoDir ? `${path.replace(/\/+$/, "")}/${host.split("/").pop()}` : path;
  if (intoDir && isPutTemp(host.split("/").pop()!)) throw new DiskUsage(tempRefused(host));
  copy(host, target, 0, true, false);
  try {
    copy(host, target, 0, false, false);
  } catch (e) {
    if (!(e instanceof LgfsError || e instanceof DiskUsage || e instanceof SysError)) throw e;
    const left = fs.undo(made);
    const what = left.length
      ? `; could not remove ${left.length} of what it made, e.g. ${shownName(left[0])}`
      : made.length || built
      ? "; what it made is removed again"
      : "";
    const kept = replaced ? ` (${replaced} files it replaced keep their new contents)` : "";
    throw new DiskUsage(`${e.message}${what}${kept}`);
  }
  fs.commit();
}

/** The one line refusing a name of the form `put` builds under. */
function tempRefused(path: string): string {
  return `${shownName(path)}: names like .lguest-put-0123456789abcdef are lguest disk put's ` +
    "temporary folders (a put that is killed leaves one; the next put or rm removes it)";
}

function rm(argv: string[]): number {
  const { has, words: args } = options("rm", argv, "r");
  arity("rm", args, 2, 2, "[-r] IMAGE PATH");
  const [image, path] = args;
  diskPath("rm", path);
  const parts = path.split("/").filter((x) => x !== "");
  if (parts.at(-1) === "." && parts.some((x) => x !== ".")) { // '/.' is the top: said below
    // As rm(1): 'rm -r /a/.' removes nothing (name the folder: /a).
    throw new DiskUsage(`${shownName(path)}: '.' cannot be removed (name the folder itself)`);
  }
  return withImage(image, true, (fs) => {
    const r = found(fs, path);
    if (!isDir(fs.inode(r.ino))) {
      fs.unlink(path);
      return EXIT.OK;
    }
    fs.rmdir(path, has("r"));
    return EXIT.OK;
  });
}

/** A host error as the rest of a one-line message. */
function hostError(e: unknown): string {
  if (e instanceof Deno.errors.AlreadyExists) return "exists";
  if (e instanceof Deno.errors.NotFound) return "no such file or directory";
  if (e instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (e instanceof Deno.errors.IsADirectory) return "is a directory";
  if (e instanceof Deno.errors.NotADirectory) return "not a directory (a file on the way)";
  if (e instanceof Deno.errors.FilesystemLoop) return "too many levels of symbolic links";
  if (e instanceof Deno.errors.InvalidData) return "invalid data";
  // Errors Deno has no class for carry the errno's name in `code`.
  const code = (e as { code?: unknown })?.code;
  if (code === "ENOSPC") return "no space left on the host's disk";
  if (code === "EDQUOT") return "disk quota exceeded on the host";
  if (code === "EROFS") return "read-only file system";
  if (code === "EIO") return "I/O error";
  if (code === "ENAMETOOLONG") return "file name too long";
  // Deno's text is "Words (os error N): op 'PATH'": the words only (the caller names the file).
  const text = e instanceof Error ? e.message : String(e);
  return text.replace(/ \(os error \d+\).*$/s, "").replace(/^./, (c) => c.toLowerCase());
}

/** Whether e is a host file system error (Deno's, with an errno name), not a bug. */
function isHostError(e: unknown): boolean {
  return e instanceof Error &&
    (e.name in Deno.errors || typeof (e as { code?: unknown }).code === "string");
}

/** Write the contents of disk file ino to the open host file f (sparse where it has holes). */
function copyOut(fs: Lgfs, ino: number, f: Deno.FsFile): void {
  let size = 0;
  for (const piece of fs.readFile(ino)) {
    if (typeof piece === "number") {
      size += piece;
      f.seekSync(size, Deno.SeekMode.Start);
      continue;
    }
    let done = 0;
    while (done < piece.length) done += f.writeSync(piece.subarray(done));
    size += piece.length;
  }
  f.truncateSync(size);
  const n = fs.inode(ino);
  const t = new Date(Math.floor(n.mtime / 1e6));
  if (!isNaN(t.getTime())) f.utimeSync(t, t);
}

function openNew(host: string): Deno.FsFile {
  try {
    return Deno.openSync(host, { write: true, createNew: true });
  } catch (e) {
    if (e instanceof Deno.errors.NotCapable) throw e;
    throw new DiskUsage(`${shownName(host)}: ${hostError(e)}`);
  }
}

/**
 * A new host file at host with the contents of disk file ino; removed again
 * if that fails (a host error is one line naming `shown`, the file the user
 * named).
 */
function getNew(fs: Lgfs, ino: number, host: string, shown = host): void {
  const f = openNew(host);
  try {
    copyOut(fs, ino, f);
    f.close();
  } catch (e) {
    try {
      f.close();
    } catch { /* closed */ }
    try {
      Deno.removeSync(host); // ours: made new above
    } catch { /* already gone */ }
    if (e instanceof Deno.errors.NotCapable || !isHostError(e)) throw e;
    throw new DiskUsage(`${shownName(shown)}: ${hostError(e)}`);
  }
}

/**
 * One disk file to host file `host`. A new file, or with `force` one that
 * replaces an existing file: the copy is written beside it and renamed over
 * it at the end, so a get that fails (a full host disk) leaves the old file
 * as it was. Never the disk image itself (`image`: its device and inode),
 * whatever name or link leads to it.
 */
function getFile(fs: Lgfs, ino: number, host: string, force: boolean, image: Deno.FileInfo): void {
  let old: Deno.FileInfo | null = null;
  try {
    old = Deno.statSync(host);
  } catch (e) {
    if (e instanceof Deno.errors.NotCapable) throw e;
  }
  if (old === null) return getNew(fs, ino, host);
  if (old.dev === image.dev && old.ino === image.ino) {
    throw new DiskUsage(`${shownName(host)}: is the disk image itself (it would be overwritten)`);
  }
  if (old.isDirectory) throw new DiskUsage(`${shownName(host)}: is a directory`);
  if (!force) throw new DiskUsage(`${shownName(host)}: exists (get -f replaces it)`);
  if (!old.isFile) throw new DiskUsage(`${shownName(host)}: not a regular file`);
  const slash = host.lastIndexOf("/");
  const tmp = `${host.slice(0, slash + 1)}.${host.slice(slash + 1)}.lguest-${
    crypto.randomUUID().slice(0, 8)
  }`;
  try {
    getNew(fs, ino, tmp, host);
  } catch (e) {
    if (e instanceof DiskUsage) throw new DiskUsage(`${e.message} (the old file is kept)`);
    throw e;
  }
  try {
    if (old.mode !== null) Deno.chmodSync(tmp, old.mode & 0o7777);
    Deno.renameSync(tmp, host);
  } catch (e) {
    try {
      Deno.removeSync(tmp);
    } catch { /* gone */ }
    if (e instanceof Deno.errors.NotCapable) throw e;
    throw new DiskUsage(`${shownName(host)}: ${hostError(e)}`);
  }
}

function get(argv: string[]): number {
  const { has, words: args } = options("get", argv, "rf");
  arity("get", args, 3, 3, "[-rf] IMAGE PATH HOSTPATH");
  const [image, path, host] = args;
  diskPath("get", path);
  return withImage(image, false, (fs) => {
    // The whole disk first: cycles, shared blocks, bad sizes are refused
    // before anything is written on the host.
    fs.check();
    const r = found(fs, path);
    if (!isDir(fs.inode(r.ino)) && host === "-") return getStdout(fs, r.ino);
    if (!isDir(fs.inode(r.ino))) {
      let target = host;
      try {
        if (Deno.statSync(host).isDirectory) target = `${host.replace(/\/+$/, "")}/${r.name}`; // as cp does
      } catch { /* a new file */ }
      if (target === host && host.endsWith("/")) {
        // 'get IMG /f out/': a folder was meant; never a file called out
        throw new DiskUsage(`${shownName(host)}: no such folder`);
      }
      getFile(fs, r.ino, target, has("f"), Deno.statSync(image));
      return EXIT.OK;
    }
    if (!has("r")) throw new DiskUsage(`${shownName(path)}: is a directory (use get -r)`);
    if (host === "-") {
      throw new DiskUsage("get -r: '-' (standard output) is one file, not a folder");
    }
    // Twice: first only looking (names a host file can have, depth, no
    // cycle), then copying into a new folder; everything below it is
    // created new (O_EXCL), so nothing outside it is written, whatever
    // names the disk holds. A copy that fails is removed again: all of it
    // is ours.
    const copy = (ino: number, dir: string, where: string, depth: number, dry: boolean) => {
      if (depth > MAX_DEPTH) {
        // Only a guest makes such a tree (put and mkdir make none deeper than MAX_DEPTH
        // from the top); it is not corrupt (check passes it, rm -r removes it).
        throw new DiskUsage(
          `${shownName(where)}: folders nested more than ${MAX_DEPTH} deep below ${
            shownName(path)
          } (get -r copies at most ${MAX_DEPTH} levels; copy a deeper folder on its own)`,
        );
      }
      for (const e of fs.entries(ino)) {
        const at = `${where.replace(/\/+$/, "")}/${e.name}`;
        if (!e.utf8) {
          // Shown byte by byte, as ls shows it (never U+FFFD). Linux names are bytes, but Deno
          // makes host files of UTF-8 names only: such a name cannot be copied to the host.
          const up = where.replace(/\/+$/, "");
          throw new DiskUsage(
            `${up === "" ? "" : shownName(up)}/${shownEntry(e)}: the name is not UTF-8 ` +
              `(lguest disk makes host files of UTF-8 names only; rename it in the guest)`,
          );
        }
        if (!validName(e.name)) throw new CorruptError(`bad name ${JSON.stringify(at)}`);
        const target = `${dir}/${e.name}`;
        if (isDir(fs.inode(e.ino))) {
          if (isPutTemp(e.name) && e.utf8) continue; // what a killed put left: not copied
          if (!dry) Deno.mkdirSync(target);
          copy(e.ino, target, at, depth + 1, dry);
        } else if (!dry) {
          getNew(fs, e.ino, target);
        }
      }
    };
    copy(r.ino, host, path, 0, true); // check() already refused cycles
    try {
      Deno.mkdirSync(host);
    } catch (e) {
      if (e instanceof Deno.errors.NotCapable) throw e;
      const exists = e instanceof Deno.errors.AlreadyExists;
      throw new DiskUsage(
        `${shownName(host)}: ${exists ? "exists (get -r makes a new folder)" : hostError(e)}`,
      );
    }
    try {
      copy(r.ino, host, path, 0, false);
    } catch (e) {
      try {
        Deno.removeSync(host, { recursive: true });
      } catch { /* what is left says where it stopped */ }
      if (e instanceof DiskUsage) throw new DiskUsage(`${e.message} (${shownName(host)} removed)`);
      throw e;
    }
    return EXIT.OK;
  });
}

/** `lguest disk ARGS...`; returns the exit code. */
export function diskCommand(argv: string[]): number {
  const [sub, ...rest] = argv;
  if (sub !== undefined && rest.some((a) => a === "-h" || a === "--help")) {
    // `lguest disk mkfs --help`: help, never a file named --help (./--help is one).
    print(USAGE);
    return EXIT.OK;
  }
  try {
    switch (sub) {
      case "mkfs":
        return mkfs(rest);
      case "ls":
        return ls(rest);
      case "put":
        return put(rest);
      case "get":
        return get(rest);
      case "rm":
        return rm(rest);
      case "check":
        return check(rest);
      case undefined:
        warn(USAGE); // a usage error: on stderr, as `lguest` and `lguest cc` alone
        return EXIT.USAGE;
      case "-h":
      case "--help":
      case "help":
        print(USAGE);
        return EXIT.OK;
      default:
        throw new DiskUsage(
          `unknown disk command '${sub}' (${
            meant(sub, ["mkfs", "ls", "put", "get", "rm", "check", "help"])
          }mkfs, ls, put, get, rm, check)`,
        );
    }
  } catch (e) {
    // Every name in a message was shown as ls shows it; a control character
    // that still reaches here (in a host error's text) is escaped too.
    const say = (text: string) => warn(`lguest disk: ${escapeControls(text)}`);
    if (e instanceof CorruptError) {
      const image = rest.find((a) => !a.startsWith("-")) ?? "";
      // A file that was never an lgfs disk is not a corrupt one.
      const what = e.message.startsWith("not an lgfs disk") ? "" : "corrupt file system: ";
      say(`${shownName(image)}: ${what}${e.message}`);
    } else if (e instanceof DiskUsage || e instanceof LgfsError) {
      say(e.message);
    } else if (e instanceof Deno.errors.NotCapable) {
      say(permissionMessage(e)!);
    } else if (e instanceof SysError) {
      say(e.message);
    } else if (isHostError(e)) {
      say(hostError(e));
    } else {
      throw e;
    }
    return EXIT.USAGE;
  }
}
