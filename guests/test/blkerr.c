/*
 * @guest: Test: block requests the device must refuse with result 2 (past the end, no reply buffer, bad type); disk=N.
 *
 * Every case prints one line `blkerr: CASE: RESULT`, RESULT being "ok" or
 * the driver's error text ("I/O error" for result 2, "no answer from the
 * device" for result 0). The guest survives all of them and powers off
 * after `blkerr: done`. With N = the disk's sector count:
 *
 *   read past end        read 1 sector at N                  expect I/O error
 *   write past end       write 1 sector at N                 expect I/O error
 *   read across end      read 2 sectors at N-1               expect I/O error
 *   write across end     write 2 sectors at N-1              expect I/O error
 *   last sector intact   sector N-1 still reads as before    "ok" or "changed"
 *   bad type 7           type 7, 1 sector at 0               expect I/O error
 *   no reply buffer      read 1 sector at 0 with the reply
 *                        buffer unbound (then rebound)       expect I/O error
 *   rewrite sector 0     write sector 0 with what it holds   ok (I/O error if read-only)
 *   read after errors    read sector 0 again                 expect ok
 */
#include "kit.h"

static u8 buf[2 * BLK_SECTOR_SIZE] __attribute__((aligned(1024)));
static u8 last[BLK_SECTOR_SIZE];

static void report(const char *what, int rc)
{
	printf("blkerr: %s: %s\n", what, blk_strerror(rc));
}

int main(void)
{
	int disk = 0, rc;
	const char *arg = strstr(lg_cmdline, "disk=");
	struct lguest_dma *reply;
	u32 n;

	if (arg)
		disk = atoi(arg + 5);
	n = blk_sectors(disk);
	if (n == 0)
		panic("blkerr: no disk %d with sectors", disk);
	printf("blkerr: disk %d, %u sectors\n", disk, n);

	if ((rc = blk_read(disk, n - 1, last, BLK_SECTOR_SIZE)))
		report("read last sector", rc);
	memset(buf, 0xEE, sizeof(buf));
	report("read past end", blk_submit(disk, 0, n, buf, BLK_SECTOR_SIZE));
	report("write past end", blk_submit(disk, 1, n, buf, BLK_SECTOR_SIZE));
	report("read across end", blk_submit(disk, 0, n - 1, buf, 2 * BLK_SECTOR_SIZE));
	memset(buf, 0xEE, sizeof(buf));
	report("write across end", blk_submit(disk, 1, n - 1, buf, 2 * BLK_SECTOR_SIZE));
	rc = blk_read(disk, n - 1, buf, BLK_SECTOR_SIZE);
	printf("blkerr: last sector intact: %s\n",
	       rc ? blk_strerror(rc) : memcmp(buf, last, BLK_SECTOR_SIZE) ? "changed" : "ok");
	report("bad type 7", blk_submit(disk, 7, 0, buf, BLK_SECTOR_SIZE));

	reply = blk_reply(disk);
	unbind_dma(blk_key(disk), reply);
	report("no reply buffer", blk_submit(disk, 0, 0, buf, BLK_SECTOR_SIZE));
	if (bind_dma(blk_key(disk), reply, 1, blk_device(disk)->irq))
		panic("blkerr: could not rebind the reply buffer");

	rc = blk_read(disk, 0, buf, BLK_SECTOR_SIZE);
	if (rc == 0)
		rc = blk_write(disk, 0, buf, BLK_SECTOR_SIZE);
	report("rewrite sector 0", rc);
	report("read after errors", blk_read(disk, 0, buf, BLK_SECTOR_SIZE));
	printf("blkerr: done\n");
	return 0;
}
