/**
 * Advisory locks on open files (flock(2)), so that two lguest processes
 * cannot write one disk image at once (QEMU locks its images the same way).
 *
 * A read-write user takes an exclusive lock, a read-only user a shared
 * one; both without waiting (LOCK_NB): a lock held elsewhere is a refusal,
 * never a hang. The lock belongs to the open file description and goes
 * away with the last descriptor of it (close, or the process's death), so
 * a killed Launcher leaves no stale lock behind.
 *
 * flock(2) locks are advisory: they keep out other lguest processes (and
 * any program that locks too, e.g. `flock(1)`), not a program that does
 * not look. On NFS, Linux emulates them with byte-range locks.
 *
 * @module
 */

import { ERRNO, errnoName, libc } from "./libc.ts";

const LOCK_SH = 1, LOCK_EX = 2, LOCK_NB = 4, LOCK_UN = 8;
const EWOULDBLOCK = 11, EINTR = 4;

/**
 * Lock `fd` without waiting: exclusive (a writer) or shared (a reader).
 * Returns true when the lock is held, false when another open file holds
 * a conflicting lock; any other failure (ENOLCK, EBADF, …) throws.
 */
export function lockFile(fd: number, exclusive: boolean): boolean {
  for (;;) {
    if (libc().flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) === 0) return true;
    const e = ERRNO[0];
    if (e === EINTR) continue;
    if (e === EWOULDBLOCK) return false;
    throw new Error(`flock: ${errnoName(e)}`);
  }
}

/** Drop the lock on `fd` (closing the descriptor does it too). */
export function unlockFile(fd: number): void {
  libc().flock(fd, LOCK_UN);
}
