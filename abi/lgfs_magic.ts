/**
 * The lgfs superblock's magic (docs/disk-format.md), in a module of its own:
 * the run path asks whether a disk holds lgfs (a guest's hint) without
 * loading the file system's code (launcher/lgfs.ts) at every start; in abi/ beside
 * the other formats the host and its guests share, so the engines may ask too.
 *
 * @module
 */

/**
 * The first 8 bytes of an lgfs disk: "LGFS1" and three NULs (written out: a TextEncoder at load
 * cost every start ~0.05 ms, boot.first_byte in docs/performance.md).
 */
export const LGFS_MAGIC: Uint8Array = new Uint8Array([0x4c, 0x47, 0x46, 0x53, 0x31, 0, 0, 0]);

/** Whether `head` (a disk's first bytes) starts with the lgfs superblock's magic. */
export function hasLgfsMagic(head: Uint8Array): boolean {
  return head.length >= LGFS_MAGIC.length && LGFS_MAGIC.every((x, i) => head[i] === x);
}
