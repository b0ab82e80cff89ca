/*
 * blk.h: the block driver, "lguestblk" (protocol §10.3). Included by kit.h.
 *
 * Disks are the bus devices of type 3 (LGUEST_DEVICE_T_BLOCK), numbered
 * 0, 1, ... in device-table order (disk n = bus_find(T_BLOCK, n)); a disk
 * whose probe failed keeps its number but every request on it fails with
 * BLK_ENODEV.
 *
 * blk_read/blk_write take any buffer in guest RAM, at any alignment, and
 * any length. They split the transfer into requests of at most 16 sections
 * that never cross a page (so at most 64 KiB each) and DMA straight into or
 * out of the caller's buffer: no copy. Only a partial last sector goes
 * through a 512-byte bounce buffer (a write of one does a read-modify-write
 * of that sector). One request is in flight per disk, and the call returns
 * when the whole transfer is done: the Launcher serves a request inside the
 * SEND_DMA hypercall.
 *
 * Return values: 0 on success, a negative BLK_E* on error (nothing is
 * fatal; blk_strerror() names it).
 */
#ifndef LGUEST_KIT_BLK_H
#define LGUEST_KIT_BLK_H

#include "lguest.h"

struct lg_device;

#define BLK_SECTOR_SIZE   512u
#define BLK_MAX_REQUEST   (LGUEST_MAX_DMA_SECTIONS * LGUEST_PAGE_SIZE) /* 64 KiB */
/* How long to wait for a request the Launcher did not answer inside its
 * SEND_DMA (result still 0) before giving up with BLK_ETIMEDOUT. */
#define BLK_TIMEOUT_MS    2000u

#define BLK_EINVAL    (-1)   /* bad argument (e.g. > 16 sections for blk_submit) */
#define BLK_ENODEV    (-2)   /* no such disk, or its probe failed */
#define BLK_ERANGE    (-3)   /* the transfer goes past the end of the disk */
#define BLK_EIO       (-4)   /* the device answered result = 2 */
#define BLK_ETIMEDOUT (-5)   /* no answer (result stayed 0) */
#define BLK_EROFS     (-6)   /* a write to a read-only disk (LGUEST_BLK_F_READONLY) */

/* Number of block devices on the bus (including any whose probe failed). */
int blk_count(void);
/* Size of disk in 512-byte sectors (0 for a bad disk number). */
u32 blk_sectors(int disk);
/* The bus device behind disk (NULL for a bad disk number). */
struct lg_device *blk_device(int disk);

/* Transfer bytes at byte offset sector * 512. Any alignment, any length;
 * the whole range must lie inside the disk (else BLK_ERANGE, no I/O). */
int blk_read(int disk, u32 sector, void *buf, u32 bytes);
int blk_write(int disk, u32 sector, const void *buf, u32 bytes);
/* Does the disk refuse writes (features LGUEST_BLK_F_READONLY)? blk_write
 * then answers BLK_EROFS without asking the device. */
bool blk_readonly(int disk);

/*
 * One raw request, exactly as it goes to the device: type 0 read; any other
 * type (1 = write) sends buf as the data, like a write;
 * no range check (a request past the end is the device's to refuse), no
 * splitting: buf[0..bytes) must fit in 16 page-bounded sections (else
 * BLK_EINVAL). bytes should be whole sectors. For testing the device.
 */
int blk_submit(int disk, int type, u32 sector, void *buf, u32 bytes);

/* For tests of the device: the disk's key (= its page address) and its
 * bound one-element reply buffer (unbind/rebind it to test "no reply
 * buffer"; leave it alone otherwise). 0 / NULL for a bad disk. */
u32 blk_key(int disk);
struct lguest_dma *blk_reply(int disk);

/* Requests completed (result 1), failed (result 2 or no answer), and the
 * number of interrupts seen, on disk. */
struct blk_stats {
	unsigned long requests;
	unsigned long errors;
	unsigned long irqs;
};
int blk_stats(int disk, struct blk_stats *out);

const char *blk_strerror(int err);

#endif /* LGUEST_KIT_BLK_H */
