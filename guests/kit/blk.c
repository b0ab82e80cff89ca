/*
 * blk.c: the block driver, "lguestblk" (protocol §10.3; API in blk.h).
 *
 * The device has one page; its first 20 bytes are struct lguest_block_page
 * and its address is the key for both directions. At probe we bind one
 * lguest_dma there, the "reply buffer", on the device's IRQ.
 *
 * A request: fill the page (type, sector, bytes, result = 0), then
 *   write: SEND_DMA an lguest_dma whose sections are the data;
 *   read:  put the destination sections into the reply buffer (used_len
 *          = 0, set last) and SEND_DMA an empty lguest_dma as a ping.
 * The Launcher serves it inside the SEND_DMA hypercall: it sets result to
 * 1 (ok) or 2 (error), for a read stores the byte count in the reply
 * buffer's used_len, and raises the IRQ. So when send_dma() returns the
 * answer is normally there already; if result is still 0 we sleep (HALT on
 * a 1 ms timer, serving interrupts, without the idle hook: the file system
 * may be half-way through a change) until it changes, for at most
 * BLK_TIMEOUT_MS. Afterwards the reply buffer loses its sections again, so
 * nothing can land in the caller's buffer once we have returned.
 *
 * Limits (§10.3): at most 16 sections per request, none crossing a page,
 * so at most 64 KiB; one request in flight per disk. Transfers are split
 * accordingly and DMA directly to/from the caller's buffer.
 */
#include "kit.h"

struct blk_disk {
	struct lg_device *dev;
	volatile struct lguest_block_page *page;
	u32 key;                        /* = the page's address */
	u32 sectors;
	bool ready;                     /* probe succeeded */
	bool readonly;                  /* LGUEST_BLK_F_READONLY, read at probe */
	struct lguest_dma reply;        /* bound on key, one element */
	struct blk_stats stats;
};

static struct blk_disk disks[LGUEST_MAX_DEVICES];
static int ndisks;
/* For a partial last sector only (one sector, inside one page). */
static u8 bounce[BLK_SECTOR_SIZE] __attribute__((aligned(BLK_SECTOR_SIZE)));

static void blk_irq(unsigned irq, void *arg)
{
	struct blk_disk *d = arg;

	(void)irq;
	d->stats.irqs++;                /* completion is seen through result */
}

static int blk_probe(struct lg_device *dev)
{
	struct blk_disk *d;

	if (ndisks >= LGUEST_MAX_DEVICES)
		return -1;
	d = &disks[ndisks++];           /* numbered even if the probe fails */
	d->dev = dev;
	dev->priv = d;
	if (!dev->mem)
		return -1;
	d->page = dev->mem;
	d->key = lg_pa(dev->mem);
	d->sectors = d->page->num_sectors;
	/* Read once, like num_sectors: the descriptor is ours to scribble on
	 * later, and a scribble should not turn the disk read-only. */
	d->readonly = dev->desc->features & LGUEST_BLK_F_READONLY;
	if (irq_register(dev->irq, blk_irq, d))
		return -1;
	memset(&d->reply, 0, sizeof(d->reply));  /* no sections until a read */
	barrier();
	WRITE_ONCE(d->reply.used_len, 0);
	if (bind_dma(d->key, &d->reply, 1, dev->irq)) {
		irq_mask(dev->irq);
		return -1;
	}
	d->ready = true;
	return 0;
}

static const struct lg_driver blk_driver = {
	.name = "lguestblk",
	.type = LGUEST_DEVICE_T_BLOCK,
	.probe = blk_probe,
};
KIT_DRIVER(blk_driver);

/* ---- Requests ------------------------------------------------------------ */

static struct blk_disk *disk_get(int disk)
{
	if (disk < 0 || disk >= ndisks)
		return NULL;
	return &disks[disk];
}

/* One request; buf[0..bytes) must fit in 16 page-bounded sections. */
static int request(struct blk_disk *d, int type, u32 sector, const void *buf, u32 bytes)
{
	volatile struct lguest_block_page *p = d->page;
	struct lguest_dma dma;          /* only needed during the SEND_DMA */
	int32_t result;
	u32 used;

	if (!d->ready)
		return BLK_ENODEV;
	if (bytes == 0 || bytes > BLK_MAX_REQUEST || dma_fill(&dma, buf, bytes))
		return BLK_EINVAL;
	p->type = type;
	p->sector = sector;
	p->bytes = bytes;
	p->result = 0;
	if (type == 0) {
		/* Read: the destination goes into the bound reply buffer. */
		memcpy(d->reply.addr, dma.addr, sizeof(dma.addr));
		memcpy(d->reply.len, dma.len, sizeof(dma.len));
		barrier();
		WRITE_ONCE(d->reply.used_len, 0);   /* free: set last */
		memset(&dma, 0, sizeof(dma));       /* the ping: len[0] = 0 */
	}
	send_dma(d->key, &dma);

	result = p->result;
	if (result == 0) {
		/* Not answered inside the SEND_DMA: poll every 1 ms, for at most
		 * BLK_TIMEOUT_MS by the host clock (each sleep refreshes it), or
		 * 4 x that many polls if the clock misbehaves. */
		struct lguest_timespec start;

		sleep_ns_quiet(1000000);
		start = time_last();
		for (u32 n = 0; (result = p->result) == 0 && n < 4 * BLK_TIMEOUT_MS; n++) {
			if (time_diff_ns(start, time_last()) >= BLK_TIMEOUT_MS * 1000000ull)
				break;
			sleep_ns_quiet(1000000);
		}
	}

	/* Take the destination back and free the reply buffer. */
	used = READ_ONCE(d->reply.used_len);
	memset(d->reply.len, 0, sizeof(d->reply.len));
	memset(d->reply.addr, 0, sizeof(d->reply.addr));
	barrier();
	WRITE_ONCE(d->reply.used_len, 0);

	if (result == 1 && (type != 0 || used == bytes)) {
		d->stats.requests++;
		return 0;
	}
	d->stats.errors++;
	return result == 0 ? BLK_ETIMEDOUT : BLK_EIO;
}

/* The longest whole-sector prefix of left bytes at addr that needs at most
 * 16 page-bounded sections: up to the end of the 16th page touched. */
static u32 chunk_len(uintptr_t addr, u32 left)
{
	u32 room = BLK_MAX_REQUEST - (u32)(addr & (LGUEST_PAGE_SIZE - 1));

	room &= ~(BLK_SECTOR_SIZE - 1);
	return left < room ? left : room;
}

static int transfer(int disk, int type, u32 sector, u8 *buf, u32 bytes)
{
	struct blk_disk *d = disk_get(disk);
	u32 whole = bytes & ~(BLK_SECTOR_SIZE - 1);
	u32 tail = bytes & (BLK_SECTOR_SIZE - 1);
	u64 nsect = whole / BLK_SECTOR_SIZE + (tail ? 1 : 0);
	int rc;

	if (!d || !d->ready)
		return BLK_ENODEV;
	if ((uintptr_t)buf + bytes < (uintptr_t)buf)
		return BLK_EINVAL;
	if ((u64)sector + nsect > d->sectors)
		return BLK_ERANGE;
	while (whole) {
		u32 n = chunk_len((uintptr_t)buf, whole);

		rc = request(d, type, sector, buf, n);
		if (rc)
			return rc;
		buf += n;
		sector += n / BLK_SECTOR_SIZE;
		whole -= n;
	}
	if (!tail)
		return 0;
	/* A partial last sector: read it whole; a write merges and writes it
	 * back (read-modify-write). */
	rc = request(d, 0, sector, bounce, BLK_SECTOR_SIZE);
	if (rc)
		return rc;
	if (type == 0) {
		memcpy(buf, bounce, tail);
		return 0;
	}
	memcpy(bounce, buf, tail);
	return request(d, 1, sector, bounce, BLK_SECTOR_SIZE);
}

/* ---- API ----------------------------------------------------------------- */

int blk_count(void)
{
	return ndisks;
}

u32 blk_sectors(int disk)
{
	struct blk_disk *d = disk_get(disk);

	return d && d->ready ? d->sectors : 0;
}

struct lg_device *blk_device(int disk)
{
	struct blk_disk *d = disk_get(disk);

	return d ? d->dev : NULL;
}

int blk_read(int disk, u32 sector, void *buf, u32 bytes)
{
	return transfer(disk, 0, sector, buf, bytes);
}

bool blk_readonly(int disk)
{
	struct blk_disk *d = disk_get(disk);

	return d && d->readonly;
}

int blk_write(int disk, u32 sector, const void *buf, u32 bytes)
{
	if (blk_readonly(disk))
		return BLK_EROFS;
	return transfer(disk, 1, sector, (u8 *)(uintptr_t)buf, bytes);
}

int blk_submit(int disk, int type, u32 sector, void *buf, u32 bytes)
{
	struct blk_disk *d = disk_get(disk);

	if (!d)
		return BLK_ENODEV;
	return request(d, type, sector, buf, bytes);
}

u32 blk_key(int disk)
{
	struct blk_disk *d = disk_get(disk);

	return d && d->ready ? d->key : 0;
}

struct lguest_dma *blk_reply(int disk)
{
	struct blk_disk *d = disk_get(disk);

	return d && d->ready ? &d->reply : NULL;
}

int blk_stats(int disk, struct blk_stats *out)
{
	struct blk_disk *d = disk_get(disk);

	if (!d)
		return BLK_ENODEV;
	*out = d->stats;
	return 0;
}

const char *blk_strerror(int err)
{
	switch (err) {
	case 0:
		return "ok";
	case BLK_EINVAL:
		return "invalid request";
	case BLK_ENODEV:
		return "no such disk";
	case BLK_ERANGE:
		return "past the end of the disk";
	case BLK_EIO:
		return "I/O error";
	case BLK_EROFS:
		return "read-only disk";
	case BLK_ETIMEDOUT:
		return "no answer from the device";
	default:
		return "unknown error";
	}
}
