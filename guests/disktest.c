/*
 * @guest: Block device stress test: random reads and writes checked against a model (seed=N ops=N disk=N log=1).
 *
 * Command line (words after `--`), all optional:
 *   seed=N   PRNG seed (default 1)          ops=N   operations (default 2000)
 *   disk=N   disk number, from 0 (default 0) log=1  print an "ack" line per write
 *
 * The test region is the first min(disk size, 8 MiB) of the disk (less if
 * RAM is short). It is read once into a shadow copy in the heap, so a disk
 * with existing data is fine. Then each operation picks, from the PRNG:
 * read or write (1:1), a size of 1..256 sectors (biased to small ones;
 * above 64 KiB the driver splits it into several requests), a sector
 * offset inside the region, and where the guest buffer starts inside a
 * page (page-aligned a quarter of the time, else any byte offset). Without
 * log=1, one operation in 8 also shortens the length to a partial last
 * sector (exercising the driver's bounce/read-modify-write path). Writes
 * update the shadow; reads are compared with it, and the bytes around the
 * buffer are checked for overruns. After the last operation the whole
 * region is read back and compared once more.
 *
 * Output: `disktest: N ops OK` at the end, then power-off (exit 0). On the
 * first wrong byte: `disktest: MISMATCH at sector S offset O: expected X
 * got Y` (S the disk sector, O the byte in it, X/Y bytes as 0x%02x) and a
 * crash (exit 1). Driver errors print `disktest: ... error ...` and crash.
 *
 * log=1: each write prints two lines, one before it is issued and one
 * after it has been acknowledged (blk_write returned 0):
 *
 *     begin W SECTOR COUNT SEED32        (all three decimal)
 *     ack W SECTOR COUNT SEED32          (the same three numbers)
 *
 * and the data written is exactly COUNT * 512 bytes at byte offset
 * SECTOR * 512, byte i (i = 0 .. COUNT*512-1) being the low byte of the
 * i-th xorshift32 output seeded with SEED32 (SEED32 is never 0):
 *
 *     u32 x = SEED32;
 *     for (i = 0; i < COUNT * 512; i++) {
 *         x ^= x << 13; x ^= x >> 17; x ^= x << 5;
 *         data[i] = x & 0xFF;
 *     }
 *
 * In log mode every write is whole sectors and there is at most one write
 * in flight (a `begin` without its `ack`). So after a SIGKILL every sector
 * holds the data of the last acknowledged write covering it, else what was
 * there before; except the sectors of the write in flight, where each byte
 * may be old or new (a write is several host writes: one per section, and
 * a write above 64 KiB is several requests).
 */
#include "kit.h"

#define REGION_MAX   (8u << 20)         /* bytes tested at most */
#define OP_SECT_MAX  256u               /* 128 KiB: more than one request */
#define GUARD        64u                /* bytes checked after the buffer */
#define GUARD_BYTE   0xA5

static u32 opt_seed = 1, opt_ops = 2000, opt_disk = 0, opt_log = 0;

/* ---- Randomness ---------------------------------------------------------- */

static u64 rng_state;

static void rng_seed(u32 seed)
{
	u64 z = (u64)seed + 0x9E3779B97F4A7C15ull;   /* splitmix64, once */

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	rng_state = (z ^ (z >> 31)) | 1;          /* xorshift64: never 0 */
}

static u32 rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (u32)(rng_state >> 32);
}

static u32 rnd_below(u32 n)
{
	return n ? rnd() % n : 0;
}

/* The write data generator (see the top of this file). */
static void gen_fill(u8 *p, u32 len, u32 seed32)
{
	u32 x = seed32;

	for (u32 i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		p[i] = (u8)x;
	}
}

/* ---- Command line -------------------------------------------------------- */

static void parse_cmdline(void)
{
	static char copy[LG_COMMAND_LINE_SIZE];
	char *save, *tok;

	strlcpy(copy, lg_cmdline, sizeof(copy));
	for (tok = strtok_r(copy, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
		char *eq = strchr(tok, '='), *end;
		u32 *opt = NULL;
		unsigned long v;

		if (eq) {
			*eq = '\0';
			if (strcmp(tok, "seed") == 0)
				opt = &opt_seed;
			else if (strcmp(tok, "ops") == 0)
				opt = &opt_ops;
			else if (strcmp(tok, "disk") == 0)
				opt = &opt_disk;
			else if (strcmp(tok, "log") == 0)
				opt = &opt_log;
		}
		if (!opt)
			panic("disktest: unknown argument '%s' (seed= ops= disk= log=)", tok);
		v = strtoul(eq + 1, &end, 0);
		if (!isdigit(eq[1]) || *end || v > 0xFFFFFFFFul)
			panic("disktest: bad value for %s: '%s'", tok, eq + 1);
		*opt = (u32)v;
	}
}

/* ---- Checks -------------------------------------------------------------- */

noreturn static void fail_io(const char *what, u32 sector, u32 len, int rc)
{
	printf("disktest: %s error at sector %u, %u bytes: %s\n", what, sector, len,
	       blk_strerror(rc));
	panic("disktest: %s error: %s", what, blk_strerror(rc));
}

/* Compare len bytes read at sector with the model. */
static void check(const u8 *got, const u8 *want, u32 sector, u32 len)
{
	if (memcmp(got, want, len) == 0)
		return;
	for (u32 i = 0; i < len; i++) {
		if (got[i] != want[i]) {
			u32 s = sector + i / BLK_SECTOR_SIZE, o = i % BLK_SECTOR_SIZE;

			printf("disktest: MISMATCH at sector %u offset %u: expected 0x%02x got 0x%02x\n",
			       s, o, want[i], got[i]);
			panic("disktest: MISMATCH at sector %u offset %u", s, o);
		}
	}
}

static void check_guard(const u8 *p, u32 n, const char *where)
{
	for (u32 i = 0; i < n; i++)
		if (p[i] != GUARD_BYTE) {
			printf("disktest: OVERRUN: byte %u %s the buffer changed (0x%02x)\n", i, where,
			       p[i]);
			panic("disktest: the driver wrote outside the buffer");
		}
}

/* ---- The test ------------------------------------------------------------ */

/* Sizes: mostly small, sometimes past one request (64 KiB = 128 sectors). */
static u32 pick_count(u32 region)
{
	static const u32 max[4] = { 8, 32, 128, OP_SECT_MAX };
	u32 n = 1 + rnd_below(max[rnd() & 3]);

	return n < region ? n : region;
}

int main(void)
{
	u32 io_size = OP_SECT_MAX * BLK_SECTOR_SIZE + 2 * LGUEST_PAGE_SIZE;
	u32 sectors, region, reads = 0, writes = 0, partial = 0;
	u8 *io, *shadow;
	int disk, rc;

	parse_cmdline();
	disk = (int)opt_disk;
	if (opt_disk >= (u32)blk_count() || blk_sectors(disk) == 0) {
		printf("disktest: no usable disk %u (%d disk(s))\n", opt_disk, blk_count());
		panic("disktest: no disk %u", opt_disk);
	}
	io = alloc_pages(io_size / LGUEST_PAGE_SIZE);
	if (!io)
		panic("disktest: out of memory");
	sectors = blk_sectors(disk);
	region = sectors < REGION_MAX / BLK_SECTOR_SIZE ? sectors : REGION_MAX / BLK_SECTOR_SIZE;
	if (heap_free() < (size_t)region * BLK_SECTOR_SIZE + 65536)  /* small RAM */
		region = heap_free() > 65536 ? (u32)((heap_free() - 65536) / BLK_SECTOR_SIZE) : 0;
	if (region == 0 || !(shadow = malloc((size_t)region * BLK_SECTOR_SIZE)))
		panic("disktest: no memory for the shadow copy");

	printf("disktest: disk %d, %u sectors, testing sectors 0..%u, seed %u, ops %u%s\n", disk,
	       sectors, region - 1, opt_seed, opt_ops, opt_log ? ", log" : "");
	rc = blk_read(disk, 0, shadow, region * BLK_SECTOR_SIZE);
	if (rc)
		fail_io("initial read", 0, region * BLK_SECTOR_SIZE, rc);

	rng_seed(opt_seed);
	for (u32 op = 0; op < opt_ops; op++) {
		bool write = rnd() & 1;
		u32 count = pick_count(region);
		u32 sector = rnd_below(region - count + 1);
		u32 off = (rnd() & 3) == 0 ? 0 : rnd_below(LGUEST_PAGE_SIZE);
		u32 len = count * BLK_SECTOR_SIZE;
		u8 *buf = io + off, *model = shadow + (size_t)sector * BLK_SECTOR_SIZE;

		if (!opt_log && (rnd() & 7) == 0) {
			len -= 1 + rnd_below(BLK_SECTOR_SIZE - 1);   /* partial last sector */
			partial++;
		}
		if (write) {
			u32 seed32 = rnd();

			if (seed32 == 0)
				seed32 = 1;
			gen_fill(buf, len, seed32);
			if (opt_log)
				printf("begin W %u %u %u\n", sector, count, seed32);
			rc = blk_write(disk, sector, buf, len);
			if (rc)
				fail_io("write", sector, len, rc);
			memcpy(model, buf, len);
			writes++;
			if (opt_log)
				printf("ack W %u %u %u\n", sector, count, seed32);
		} else {
			/* Guards around the buffer; the buffer itself holds the
			 * complement of what we expect, so a transfer that does
			 * nothing cannot pass. */
			memset(io, GUARD_BYTE, off);
			for (u32 i = 0; i < len; i++)
				buf[i] = (u8)~model[i];
			memset(buf + len, GUARD_BYTE, GUARD);
			rc = blk_read(disk, sector, buf, len);
			if (rc)
				fail_io("read", sector, len, rc);
			check(buf, model, sector, len);
			check_guard(io, off, "before");
			check_guard(buf + len, GUARD, "after");
			reads++;
		}
	}

	/* Everything once more, through a page-aligned buffer. */
	for (u32 s = 0; s < region; s += OP_SECT_MAX) {
		u32 count = region - s < OP_SECT_MAX ? region - s : OP_SECT_MAX;

		rc = blk_read(disk, s, io, count * BLK_SECTOR_SIZE);
		if (rc)
			fail_io("final read", s, count * BLK_SECTOR_SIZE, rc);
		check(io, shadow + (size_t)s * BLK_SECTOR_SIZE, s, count * BLK_SECTOR_SIZE);
	}
	printf("disktest: %u reads, %u writes (%u partial-sector), region verified\n", reads,
	       writes, partial);
	printf("disktest: %u ops OK\n", opt_ops);
	return 0;
}
