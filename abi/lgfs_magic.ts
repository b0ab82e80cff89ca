/**
 * The lgfs superblock's magic (docs/disk-format.md), in a module of its own:
 * the run path asks whether a disk holds lgfs (a guest's hint) without
 * loading the file system's code (launcher/lgfs.ts) at every start; in abi/ beside
 * the other formats the host and its guests share, so the engines may ask too.
 *
 * @module
 */

/** The first 8 bytes of an lgfs disk. */
export const LGFS_MAGIC: Uint8Array = new TextEncoder().encode("LGFS1\0\0\0");

/** Whether `head` (a disk's first bytes) starts with the lgfs superblock's magic. */
export function hasLgfsMagic(head: Uint8Array): boolean {
  return head.length >= LGFS_MAGIC.length && LGFS_MAGIC.every((x, i) => head[i] === x);
}
