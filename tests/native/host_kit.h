/*
 * host_kit.h: the part of the guest kit that fs.c uses, for the host-built
 * file system tests (fs_crash.c, fs_fuzz.c): one in-memory disk and its
 * pristine copy, a xorshift generator, the disk's geometry, crc32 and
 * alloc_pages. Each test defines blk_read, blk_write and time_last itself
 * (they differ: fs_crash dies at a chosen write).
 *
 * Include after fs.c.
 */
#ifndef TESTS_NATIVE_HOST_KIT_H
#define TESTS_NATIVE_HOST_KIT_H

#include <stdlib.h>

struct lguest_data lguest_data;   /* tsc_khz 0: fs.c's commit clock is time_last() */

/* No waits here: the idle hook fs_mount sets is never called. */
void idle_hook_set(u64 (*hook)(u64 wait_ns))
{
	(void)hook;
}

static u8 *disk, *pristine;
static u32 disk_sectors;
static u64 rng = 1;

static u32 rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (u32)(rng >> 32);
}

int blk_count(void)
{
	return 1;
}

u32 blk_sectors(int d)
{
	return d == 0 ? disk_sectors : 0;
}

bool blk_readonly(int d)
{
	(void)d;
	return false;
}

uint32_t crc32(uint32_t crc, const void *buf, size_t len)
{
	const u8 *p = buf;

	crc = ~crc;
	while (len--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = crc & 1 ? 0xEDB88320u ^ (crc >> 1) : crc >> 1;
	}
	return ~crc;
}

void *alloc_pages(size_t npages)
{
	void *p = aligned_alloc(4096, npages * 4096);

	if (p)
		memset(p, 0, npages * 4096);
	return p;
}

#endif
