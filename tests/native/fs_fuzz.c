/*
 * fs_fuzz.c: the guest kit's file system (guests/kit/fs.c) built for the
 * host with the address and undefined-behaviour sanitizers, on randomly
 * corrupted disks. A guest can only hurt itself with a bad disk, but fs.c
 * must still neither touch memory outside its buffers nor loop forever:
 * every call returns (an error is fine).
 *
 *   fs_fuzz IMAGE SEED ITERATIONS
 *
 * Each iteration: the image with 1..8 random changes in its metadata (the
 * bitmap, inode table, journal and the first data blocks; mostly in words
 * that are not zero), mount, walk the
 * whole tree (readdir, stat, read every file), then a few changes (create,
 * write, truncate, rename, unlink, mkdir), sync and unmount. Prints
 * "fs_fuzz: N disks, M mounted" and exits 0; a sanitizer report or the
 * alarm (a loop) ends it otherwise.
 */
#define main kit_main
#include "fs.c"
#undef main
#include "host_kit.h"
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int blk_read(int d, u32 sector, void *buf, u32 bytes)
{
	if (d != 0 || (u64)sector * 512 + bytes > (u64)disk_sectors * 512)
		return BLK_ERANGE;
	memcpy(buf, disk + (size_t)sector * 512, bytes);
	return 0;
}

int blk_write(int d, u32 sector, const void *buf, u32 bytes)
{
	if (d != 0 || (u64)sector * 512 + bytes > (u64)disk_sectors * 512)
		return BLK_ERANGE;
	memcpy(disk + (size_t)sector * 512, buf, bytes);
	return 0;
}

/* No periodic commit here (fs.c's COMMIT_NS): the clocks stand (almost) still. */
u64 lg_clock_ns(void)
{
	return 0;
}

struct lguest_timespec time_last(void)
{
	struct lguest_timespec t = { 1700000000u, 0 };

	return t;
}

static u8 buf[70000];

static void walk(const char *path, int depth)
{
	char name[FS_NAME_MAX + 1], sub[FS_PATH_MAX];
	u64 cookie = 0, ino;
	u32 type;
	int fd = fs_open(path, O_RDONLY | O_DIRECTORY, 0), n = 0;

	if (fd < 0 || depth > 8)
		return;
	while (n++ < 2000 && fs_readdir(fd, &cookie, name, sizeof(name), &ino, &type) == 1) {
		struct fs_stat st;
		int f;

		if (!strcmp(name, ".") || !strcmp(name, ".."))
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", strcmp(path, "/") ? path : "", name);
		if (fs_stat(sub, &st))
			continue;
		if ((st.mode & FS_S_IFMT) == FS_S_IFDIR) {
			walk(sub, depth + 1);
			continue;
		}
		if ((f = fs_open(sub, O_RDONLY, 0)) >= 0) {
			for (int k = 0; k < 4 && fs_read(f, buf, sizeof(buf)) > 0; k++)
				;
			fs_pread(f, buf, 5000, st.size > 3 ? st.size - 3 : 0);
			fs_close(f);
		}
	}
	fs_close(fd);
}

static void changes(void)
{
	int fd = fs_open("/fuzz-new", O_RDWR | O_CREAT, 0644);

	if (fd >= 0) {
		fs_write(fd, buf, 60000);
		fs_ftruncate(fd, 1000);
		fs_pwrite(fd, buf, 10, 100000);
		fs_close(fd);
	}
	fs_mkdir("/fuzz-dir", 0755);
	fs_rename("/fuzz-new", "/fuzz-dir/x");
	fs_rename("/fuzz-dir", "/fuzz-dir2");
	fs_unlink("/fuzz-dir2/x");
	fs_rmdir("/fuzz-dir2");
	fs_truncate("/a/f0", 10);
	fs_unlink("/a/f1");
	fs_sync();
}

int main(int argc, char **argv)
{
	FILE *in;
	long size;
	u32 iters, mounted = 0;
	u8 *mem[CACHE_N], *dbuf = NULL, *jbuf = NULL;

	if (argc != 4) {
		printf("usage: fs_fuzz IMAGE SEED ITERATIONS\n");
		return 2;
	}
	rng = ((u64)strtoul(argv[2], NULL, 0) << 32) | 0x9E3779B9u;
	iters = (u32)strtoul(argv[3], NULL, 0);
	in = fopen(argv[1], "rb");
	if (!in || fseek(in, 0, SEEK_END) || (size = ftell(in)) < 4096 || fseek(in, 0, SEEK_SET))
		return 2;
	disk_sectors = (u32)(size / 512);
	disk = malloc((size_t)size);
	pristine = malloc((size_t)size);
	if (!disk || !pristine || fread(pristine, 1, (size_t)size, in) != (size_t)size)
		return 2;
	fclose(in);
	alarm(120);                             /* a loop ends the run */
	for (u32 it = 0; it < iters; it++) {
		u32 n = 1 + rnd() % 8, hot = 1 + 128 + 1 + 8 + 40;   /* up to the first data blocks */

		memcpy(disk, pristine, (size_t)size);
		for (u32 k = 0; k < n; k++) {
			u32 blk, off, v = rnd(), w = 0;

			/* Mostly words that hold something (entries, pointers,
			 * sizes): a random word of the area is nearly always 0. */
			for (int tries = 0; tries < 64; tries++) {
				blk = rnd() % 10 == 0 ? 0 : 1 + rnd() % hot;
				off = blk * 4096 + (rnd() % 1024) * 4;
				memcpy(&w, disk + off, 4);
				if (w)
					break;
			}

			switch (rnd() % 4) {
			case 0: disk[off + rnd() % 4] ^= (u8)(1u << (rnd() % 8)); break;
			case 1: memcpy(disk + off, &v, 4); break;
			case 2: v %= size / 4096; memcpy(disk + off, &v, 4); break;
			default: v %= 512; memcpy(disk + off, &v, 4); break;
			}
		}
		/* A fresh guest each time (the cache memory is reused). */
		for (int i = 0; i < CACHE_N; i++)
			mem[i] = fs.cache[i].data;
		dbuf = fs.dbuf;
		jbuf = fs.jbuf;
		memset(&fs, 0, sizeof(fs));
		for (int i = 0; i < CACHE_N; i++)
			fs.cache[i].data = mem[i];
		fs.dbuf = dbuf;
		fs.jbuf = jbuf;
		if (fs_mount(0) == 0) {
			mounted++;
			walk("/", 0);
			changes();
			walk("/", 0);
			fs_umount();
		}
	}
	fprintf(stderr, "fs_fuzz: %u disks, %u mounted\n", iters, mounted);
	return 0;
}
