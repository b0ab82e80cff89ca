/*
 * @guest: Hostile: malformed block requests (past the end, bytes not matching the sections, bad types, zero sections, sections crossing pages, DMA into the device page); end=outside|reply dies on a DMA outside memory.
 *
 * Disk 0 is the target. First it computes the CRC-32 of the whole disk,
 * then sends raw requests (the page filled by hand, the SEND_DMA made
 * directly), one line each:
 *
 *   blkbad: CASE: ok | error | no answer     (result 1, 2, 0)
 *
 * Every write either is refused (result 2) or writes back exactly what
 * the disk already holds, so the file must be unchanged afterwards:
 *
 *   write at sector N (one past the end)          error
 *   write at sector 0xFFFFFFFF                    error
 *   read at sector 0x800000 (4 GiB)               error
 *   write, bytes 512 but 1024 in the sections     error
 *   write, bytes 1024 but 512 in the sections     error
 *   write, 16 sections of 65535 bytes, bytes 512  error
 *   type 7 / type -1 / type 0x80000000            error
 *   write, zero sections, bytes 512               error
 *   write, zero sections, bytes 0                 ok (writes nothing)
 *   read, bytes 512 but 1024 in the reply         error
 *   read, zero sections in the reply, bytes 512   error
 *   read, reply buffer busy (used_len != 0)       error
 *   read into a section crossing a page           ok
 *   write it back from there                      ok (same bytes)
 *   read, one 8192-byte section (> a page)        ok
 *   write it back from there                      ok (same bytes)
 *   read into the device page itself              ok
 *   write from the device page, past the end      error
 *   descriptor inside the device page, past end   error
 *   read after all that                           ok
 *
 * then "blkbad: crc32 BEFORE -> AFTER" (the whole disk, read back) and
 * "blkbad: done", and powers off. With end=outside it last sends a write
 * whose 16 sections of 65535 bytes lie at 0xFFFF0000 (outside memory);
 * with end=reply a read whose reply section does: the Launcher kills the
 * guest for either, naming the DMA.
 */
#include "kit.h"

static u8 buf[4 * LGUEST_PAGE_SIZE] __attribute__((aligned(4096)));
static u8 disk_copy[LGUEST_PAGE_SIZE];
static volatile struct lguest_block_page *page;
static struct lguest_dma *reply;
static u32 key, nsect;

static const char *answer(int32_t r)
{
	return r == 1 ? "ok" : r == 2 ? "error" : r == 0 ? "no answer" : "BAD RESULT";
}

/* A write: `dma` as given; a read: the reply buffer gets rdma's sections. */
static int32_t request(int32_t type, u32 sector, u32 bytes, struct lguest_dma *dma)
{
	static struct lguest_dma ping;

	page->type = type;
	page->sector = sector;
	page->bytes = bytes;
	page->result = 0;
	if (type == 0) {
		memcpy(reply->addr, dma->addr, sizeof(dma->addr));
		memcpy(reply->len, dma->len, sizeof(dma->len));
		barrier();
		WRITE_ONCE(reply->used_len, 0);
		memset(&ping, 0, sizeof(ping));
		hcall(LHCALL_SEND_DMA, key, lg_pa(&ping), 0);
		memset(reply->len, 0, sizeof(reply->len));
		memset(reply->addr, 0, sizeof(reply->addr));
		barrier();
		WRITE_ONCE(reply->used_len, 0);
	} else {
		dma->used_len = 0;
		hcall(LHCALL_SEND_DMA, key, lg_pa(dma), 0);
	}
	return page->result;
}

static void sections(struct lguest_dma *d, u32 addr, u32 len, unsigned n)
{
	memset(d, 0, sizeof(*d));
	for (unsigned i = 0; i < n; i++) {
		d->addr[i] = addr;
		d->len[i] = (u16)len;
	}
}

static void report(const char *what, int32_t r)
{
	printf("blkbad: %s: %s\n", what, answer(r));
}

static u32 disk_crc(void)
{
	u32 crc = 0;

	for (u32 s = 0; s < nsect; s += 8) {
		u32 n = nsect - s < 8 ? nsect - s : 8;

		if (blk_read(0, s, disk_copy, n * 512))
			panic("blkbad: cannot read sector %u", s);
		crc = crc32(crc, disk_copy, n * 512);
	}
	return crc;
}

int main(void)
{
	struct lguest_dma d;
	struct lg_device *dev;
	u32 before;
	char end[16];

	if (blk_count() < 1 || !(dev = blk_device(0)) || !dev->mem)
		panic("blkbad: no disk (add --block)");
	page = dev->mem;
	key = blk_key(0);
	reply = blk_reply(0);
	nsect = blk_sectors(0);
	before = disk_crc();
	printf("blkbad: disk 0, %u sectors, crc32 %08x\n", nsect, before);

	sections(&d, lg_pa(buf), 512, 1);
	report("write at sector N (one past the end)", request(1, nsect, 512, &d));
	report("write at sector 0xFFFFFFFF", request(1, 0xFFFFFFFFu, 512, &d));
	report("read at sector 0x800000 (4 GiB)", request(0, 0x800000, 512, &d));

	sections(&d, lg_pa(buf), 512, 2);
	report("write, bytes 512 but 1024 in the sections", request(1, 0, 512, &d));
	sections(&d, lg_pa(buf), 512, 1);
	report("write, bytes 1024 but 512 in the sections", request(1, 0, 1024, &d));
	sections(&d, lg_pa(buf), 65535, 16);
	report("write, 16 sections of 65535 bytes, bytes 512", request(1, 0, 512, &d));

	sections(&d, lg_pa(buf), 512, 1);
	report("type 7", request(7, 0, 512, &d));
	report("type -1", request(-1, 0, 512, &d));
	report("type 0x80000000", request((int32_t)0x80000000u, 0, 512, &d));

	sections(&d, 0, 0, 0);
	report("write, zero sections, bytes 512", request(1, 0, 512, &d));
	report("write, zero sections, bytes 0", request(1, 0, 0, &d));

	sections(&d, lg_pa(buf), 512, 2);
	report("read, bytes 512 but 1024 in the reply", request(0, 0, 512, &d));
	sections(&d, 0, 0, 0);
	report("read, zero sections in the reply, bytes 512", request(0, 0, 512, &d));
	{
		int32_t r;

		page->type = 0;
		page->sector = 0;
		page->bytes = 512;
		page->result = 0;
		reply->addr[0] = lg_pa(buf);
		reply->len[0] = 512;
		WRITE_ONCE(reply->used_len, 1);  /* busy: GETDMA finds no free buffer */
		memset(&d, 0, sizeof(d));
		hcall(LHCALL_SEND_DMA, key, lg_pa(&d), 0);
		r = page->result;
		memset(reply->len, 0, sizeof(reply->len));
		WRITE_ONCE(reply->used_len, 0);
		report("read, reply buffer busy (used_len != 0)", r);
	}

	/* Legal but odd: sections the Launcher takes as they are. */
	sections(&d, lg_pa(buf) + LGUEST_PAGE_SIZE - 200, 512, 1);
	report("read into a section crossing a page", request(0, 1, 512, &d));
	report("write it back from there", request(1, 1, 512, &d));
	sections(&d, lg_pa(buf), 8192, 1);
	if (nsect >= 16 + 16) {
		report("read, one 8192-byte section (> a page)", request(0, 16, 8192, &d));
		report("write it back from there", request(1, 16, 8192, &d));
	}
	sections(&d, lg_pa((void *)page), 512, 1);
	report("read into the device page itself", request(0, 2, 512, &d));
	report("write from the device page, past the end", request(1, nsect, 512, &d));
	{
		/* The descriptor itself inside the device page, after the header. */
		struct lguest_dma *in = (struct lguest_dma *)((u8 *)page + 256);

		sections(in, lg_pa((void *)page), 512, 1);
		report("descriptor inside the device page, past the end", request(1, nsect, 512, in));
	}
	sections(&d, lg_pa(buf), 512, 1);
	report("read after all that", request(0, 0, 512, &d));

	printf("blkbad: crc32 %08x -> %08x\n", before, disk_crc());

	if (ip_cmdline_arg(lg_cmdline, "end", end, sizeof(end))) {
		if (strcmp(end, "outside") == 0) {
			sections(&d, 0xFFFF0000u, 65535, 16);
			printf("blkbad: a write from 16 x 65535 bytes at 0xffff0000\n");
			report("outside memory", request(1, 0, 16 * 65535u, &d));
		} else if (strcmp(end, "reply") == 0) {
			sections(&d, 0xFFFF0000u, 512, 1);
			printf("blkbad: a read into 0xffff0000\n");
			report("reply outside memory", request(0, 0, 512, &d));
		}
		printf("blkbad: STILL ALIVE\n");
	}
	printf("blkbad: done\n");
	return 0;
}
