/*
 * @guest: lgfs file system test: api | write PATH SIZE SEED | crc PATH | ls PATH | mkdir PATH | fill PATH | bench MIB | writer SEED [OPS] | idle PATH SIZE SEED
 *
 * The kit's file system (kit/fs.h) on disk 0, which `lguest disk mkfs`
 * formatted. The first word after `--` picks the mode:
 *
 *   api                 every call of the API against expected results;
 *                       prints "fstest: FAIL ..." for a wrong one, and
 *                       "fstest: api OK (N checks)" at the end.
 *   write PATH SIZE SEED  create PATH (parents must exist) holding SIZE
 *                       bytes of gen(SEED) (below), fsync, print
 *                       "wrote PATH SIZE CRC32".
 *   crc PATH            print "crc PATH SIZE CRC32" (zlib CRC-32, hex).
 *   ls PATH             one line per entry: "NAME d|f SIZE".
 *   mkdir PATH          make a directory (and fs_sync).
 *   fill PATH           write gen(1) to PATH in 64 KiB pieces until the
 *                       disk is full; print "fill SIZE ERRNAME" (the size
 *                       reached and the error that stopped it), fsync,
 *                       and the statfs line "statfs FREE TOTAL".
 *   writer SEED [OPS]   the crash-test writer (below).
 *   idle PATH SIZE SEED  write PATH like `write` but neither fsync nor
 *                       close it, print "idle PATH SIZE CRC32", wait for
 *                       the end of console input, then print "idle
 *                       commits N" (the commits made while waiting).
 *   bench MIB           write MIB MiB to /bench in 256 KiB pieces, fsync,
 *                       read it back; print "bench write X MB/s read Y MB/s"
 *                       (guest clock) and the commits it took.
 *
 * gen(SEED): byte i is the low byte of the i-th xorshift32 output from
 * SEED (as disktest's log): x ^= x << 13; x ^= x >> 17; x ^= x << 5.
 *
 * The writer works on the 8 files /w/f0 .. /w/f7 (it makes /w). Every
 * operation prints "begin OP" before it starts and "ack OP" once it is
 * durable (after fs_fsync; a rename or unlink is durable when it returns):
 *
 *   W F OFF LEN SEED    write gen(SEED)[0..LEN) at offset OFF of /w/fF
 *                       (created if missing)
 *   T F LEN             truncate /w/fF (which exists) to LEN
 *   R F G               rename /w/fF (which exists) over /w/fG
 *   U F                 unlink /w/fF (which exists)
 *
 * One operation is in flight at a time. It runs OPS operations (default
 * unbounded) and prints "writer: done".
 */
#include "kit.h"
#include "fs.h"

static unsigned checks, fails;

static void gen_fill(u8 *p, u32 len, u32 *state)
{
	u32 x = *state;

	for (u32 i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		p[i] = (u8)x;
	}
	*state = x;
}

static u64 rng = 88172645463325252ull;

static u32 rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (u32)(rng >> 32);
}

#define CHECK(cond) do { checks++; if (!(cond)) { fails++; \
	printf("fstest: FAIL line %d: %s\n", __LINE__, #cond); } } while (0)
#define EQ(a, b) do { long long a_ = (long long)(a), b_ = (long long)(b); checks++; \
	if (a_ != b_) { fails++; printf("fstest: FAIL line %d: %s = %lld, want %lld\n", \
	__LINE__, #a, a_, b_); } } while (0)

static u8 buf[256 * 1024], buf2[256 * 1024];

static int write_all(int fd, const u8 *p, u64 n)
{
	while (n) {
		long r = fs_write(fd, p, n > 65536 ? 65536 : (size_t)n);

		if (r <= 0)
			return r ? (int)r : -EIO;
		p += r;
		n -= (u64)r;
	}
	return 0;
}

/* Write size bytes of gen(seed) to path; returns the CRC or a -errno. */
static long long write_gen(const char *path, u64 size, u32 seed)
{
	u32 state = seed, crc = 0;
	int fd = fs_open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644), err;

	if (fd < 0)
		return fd;
	while (size) {
		u32 n = size > sizeof(buf) ? sizeof(buf) : (u32)size;

		gen_fill(buf, n, &state);
		crc = crc32(crc, buf, n);
		if ((err = write_all(fd, buf, n))) {
			fs_close(fd);
			return err;
		}
		size -= n;
	}
	if ((err = fs_fsync(fd)) || (err = fs_close(fd)))
		return err;
	return crc;
}

static int crc_file(const char *path, u64 *size, u32 *crc)
{
	int fd = fs_open(path, O_RDONLY, 0);
	long r;

	if (fd < 0)
		return fd;
	*size = 0;
	*crc = 0;
	while ((r = fs_read(fd, buf, sizeof(buf))) > 0) {
		*crc = crc32(*crc, buf, (size_t)r);
		*size += (u64)r;
	}
	fs_close(fd);
	return r < 0 ? (int)r : 0;
}

/* ---- api ------------------------------------------------------------------ */

static void api(void)
{
	struct fs_stat st;
	char name[FS_NAME_MAX + 1];
	u64 cookie, ino;
	u32 type, state;
	int fd, fd2, n;
	char longname[FS_NAME_MAX + 2];

	/* Create, write, read back, seek. */
	fd = fs_open("/hello.txt", O_RDWR | O_CREAT | O_EXCL, 0644);
	CHECK(fd >= 0);
	EQ(fs_write(fd, "hello, world\n", 13), 13);
	EQ(fs_seek(fd, 0, FS_SEEK_CUR), 13);
	EQ(fs_seek(fd, 7, FS_SEEK_SET), 7);
	EQ(fs_read(fd, buf, 100), 6);
	CHECK(memcmp(buf, "world\n", 6) == 0);
	EQ(fs_read(fd, buf, 100), 0);
	EQ(fs_seek(fd, -6, FS_SEEK_END), 7);
	EQ(fs_write(fd, "there", 5), 5);
	EQ(fs_pread(fd, buf, 13, 0), 13);
	CHECK(memcmp(buf, "hello, there\n", 13) == 0);
	EQ(fs_seek(fd, -100, FS_SEEK_SET), -EINVAL);
	EQ(fs_seek(fd, 0, 7), -EINVAL);
	EQ(fs_fstat(fd, &st), 0);
	EQ(st.size, 13);
	EQ(st.mode, FS_S_IFREG | 0644);
	EQ(st.nlink, 1);
	CHECK(st.mtime_ns > 1600000000ull * 1000000000ull);
	EQ(fs_fsync(fd), 0);
	EQ(fs_close(fd), 0);
	EQ(fs_close(fd), -EBADF);
	EQ(fs_open("/hello.txt", O_RDWR | O_CREAT | O_EXCL, 0644), -EEXIST);

	/* Sparse files, pwrite past the end, truncate up and down. */
	fd = fs_open("sparse", O_RDWR | O_CREAT, 0600);
	CHECK(fd >= 0);
	EQ(fs_pwrite(fd, "end", 3, 5000000), 3);
	EQ(fs_fstat(fd, &st), 0);
	EQ(st.size, 5000003);
	memset(buf, 0xAA, 8192);
	EQ(fs_pread(fd, buf, 8192, 4999000), 1003);
	n = 0;
	for (int i = 0; i < 1000; i++)
		n |= buf[i];
	EQ(n, 0);
	CHECK(memcmp(buf + 1000, "end", 3) == 0);
	EQ(fs_ftruncate(fd, 4999001), 0);
	EQ(fs_pread(fd, buf, 10, 4999000), 1);
	EQ(fs_ftruncate(fd, 5000003), 0);
	EQ(fs_pread(fd, buf, 10, 4999999), 4);
	EQ(buf[0] | buf[1] | buf[2] | buf[3], 0);          /* zeros, not "end" */
	EQ(fs_ftruncate(fd, 0), 0);
	EQ(fs_read(fd, buf, 10), 0);
	EQ(fs_close(fd), 0);

	/* A bigger file through the double-indirect range, read back. */
	state = 42;
	fd = fs_open("/big", O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0);
	for (int i = 0; i < 24; i++) {          /* 6 MiB */
		gen_fill(buf, sizeof(buf), &state);
		EQ(fs_write(fd, buf, sizeof(buf)), sizeof(buf));
	}
	EQ(fs_seek(fd, 0, FS_SEEK_SET), 0);
	state = 42;
	n = 0;
	for (int i = 0; i < 24; i++) {
		gen_fill(buf, sizeof(buf), &state);
		EQ(fs_read(fd, buf2, sizeof(buf2)), sizeof(buf2));
		n += memcmp(buf, buf2, sizeof(buf)) != 0;
	}
	EQ(n, 0);
	/* An unaligned read across block boundaries. */
	EQ(fs_pread(fd, buf2, 10000, 4096 * 1036 - 5000), 10000);
	EQ(fs_close(fd), 0);

	/* O_APPEND. */
	fd = fs_open("/log", O_WRONLY | O_CREAT | O_APPEND, 0644);
	fd2 = fs_open("/log", O_WRONLY | O_APPEND, 0);
	CHECK(fd >= 0 && fd2 >= 0);
	EQ(fs_write(fd, "a", 1), 1);
	EQ(fs_write(fd2, "b", 1), 1);
	EQ(fs_write(fd, "c", 1), 1);
	EQ(fs_close(fd2), 0);
	EQ(fs_close(fd), 0);
	fd = fs_open("/log", O_RDONLY, 0);
	EQ(fs_read(fd, buf, 10), 3);
	CHECK(memcmp(buf, "abc", 3) == 0);
	EQ(fs_write(fd, "x", 1), -EBADF);
	EQ(fs_ftruncate(fd, 0), -EINVAL);
	EQ(fs_close(fd), 0);

	/* Directories. */
	EQ(fs_mkdir("/d", 0755), 0);
	EQ(fs_mkdir("/d", 0755), -EEXIST);
	EQ(fs_mkdir("/d/e/", 0755), 0);
	EQ(fs_mkdir("/nope/e", 0755), -ENOENT);
	EQ(fs_mkdir("/hello.txt/e", 0755), -ENOTDIR);
	EQ(fs_stat("/d/e", &st), 0);
	EQ(st.mode, FS_S_IFDIR | 0755);
	EQ(st.nlink, 2);
	EQ(fs_stat("d/./e/../e/..", &st), 0);
	EQ(st.mode & FS_S_IFMT, FS_S_IFDIR);
	EQ(fs_stat("/hello.txt/", &st), -ENOTDIR);
	EQ(fs_open("/d", O_WRONLY, 0), -EISDIR);
	EQ(fs_open("/hello.txt", O_RDONLY | O_DIRECTORY, 0), -ENOTDIR);
	EQ(fs_open("/missing", O_RDONLY, 0), -ENOENT);
	EQ(fs_open("", O_RDONLY, 0), -ENOENT);
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	EQ(fs_open(longname, O_RDWR | O_CREAT, 0644), -ENAMETOOLONG);
	longname[FS_NAME_MAX] = '\0';
	fd = fs_open(longname, O_RDWR | O_CREAT, 0644);
	CHECK(fd >= 0);
	EQ(fs_close(fd), 0);
	EQ(fs_unlink(longname), 0);
	for (int i = 0; i < 40; i++) {          /* two directory blocks */
		char p[32];

		snprintf(p, sizeof(p), "/d/file%d", i);
		fd = fs_open(p, O_WRONLY | O_CREAT, 0644);
		CHECK(fd >= 0);
		EQ(fs_write(fd, p, strlen(p)), strlen(p));
		EQ(fs_close(fd), 0);
	}
	fd = fs_open("/d", O_RDONLY | O_DIRECTORY, 0);
	CHECK(fd >= 0);
	cookie = 0;
	n = 0;
	{
		int dots = 0, files = 0, dirs = 0;

		while ((n = fs_readdir(fd, &cookie, name, sizeof(name), &ino, &type)) == 1) {
			if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
				dots++;
			else if (type == FS_DT_DIR && strcmp(name, "e") == 0)
				dirs++;
			else if (type == FS_DT_REG && strncmp(name, "file", 4) == 0)
				files++;
			else
				printf("fstest: FAIL unexpected entry '%s'\n", name), fails++;
		}
		EQ(n, 0);
		EQ(dots, 2);
		EQ(dirs, 1);
		EQ(files, 40);
		cookie = 2;
		EQ(fs_readdir(fd, &cookie, name, 1, &ino, &type), -ERANGE);
	}
	EQ(fs_rmdir("/d"), -ENOTEMPTY);
	EQ(fs_unlink("/d"), -EISDIR);
	EQ(fs_rmdir("/hello.txt"), -ENOTDIR);
	EQ(fs_rmdir("/"), -EBUSY);
	EQ(fs_close(fd), 0);

	/* Rename: plain, over a file, across directories, dir into itself. */
	EQ(fs_rename("/d/file0", "/d/renamed"), 0);
	EQ(fs_stat("/d/file0", &st), -ENOENT);
	EQ(crc_file("/d/renamed", &ino, &type), 0);
	EQ(ino, 8);
	EQ(fs_rename("/d/file1", "/d/file2"), 0);
	fd = fs_open("/d/file2", O_RDONLY, 0);
	EQ(fs_read(fd, buf, 100), 8);
	CHECK(memcmp(buf, "/d/file1", 8) == 0);
	EQ(fs_close(fd), 0);
	EQ(fs_rename("/d/e", "/e2"), 0);
	EQ(fs_stat("/e2", &st), 0);
	EQ(fs_stat("/e2/..", &st), 0);
	EQ(st.ino, 1);
	EQ(fs_rename("/d", "/d/sub"), -EINVAL);
	EQ(fs_rename("/d", "/e2"), 0);          /* over an empty directory */
	EQ(fs_stat("/d", &st), -ENOENT);
	EQ(fs_stat("/e2/file3", &st), 0);
	EQ(fs_rename("/e2", "/hello.txt"), -ENOTDIR);
	EQ(fs_rename("/hello.txt", "/e2"), -EISDIR);
	EQ(fs_rename("/missing", "/x"), -ENOENT);
	EQ(fs_rename("/hello.txt", "/hello.txt"), 0);

	/* Unlink while open: the data lives until the last close. */
	fd = fs_open("/e2/file3", O_RDONLY, 0);
	CHECK(fd >= 0);
	EQ(fs_unlink("/e2/file3"), 0);
	EQ(fs_stat("/e2/file3", &st), -ENOENT);
	EQ(fs_read(fd, buf, 100), 8);
	CHECK(memcmp(buf, "/d/file3", 8) == 0);
	EQ(fs_fstat(fd, &st), 0);
	EQ(st.nlink, 0);
	EQ(fs_close(fd), 0);

	/* Unsupported things. */
	EQ(fs_link("/hello.txt", "/hl"), -EPERM);
	EQ(fs_symlink("/hello.txt", "/sl"), -EPERM);
	EQ(fs_mknod("/sock", 0140000), -EPERM);
	EQ(fs_readlink("/hello.txt", name, sizeof(name)), -EINVAL);
	EQ(fs_read(99, buf, 1), -EBADF);
	EQ(fs_open("/hello.txt", 3, 0), -EINVAL);

	/* Too many open files. */
	{
		int fds[FS_MAX_OPEN], got = 0;

		for (int i = 0; i < FS_MAX_OPEN; i++)
			if ((fds[i] = fs_open("/hello.txt", O_RDONLY, 0)) >= 0)
				got++;
		EQ(got, FS_MAX_OPEN);
		EQ(fs_open("/hello.txt", O_RDONLY, 0), -EMFILE);
		for (int i = 0; i < FS_MAX_OPEN; i++)
			fs_close(fds[i]);
	}

	/* Remount: everything is still there. */
	EQ(fs_unlink("/big"), 0);
	EQ(fs_umount(), 0);
	EQ(fs_mount(0), 0);
	EQ(fs_stat("/big", &st), -ENOENT);
	EQ(fs_stat("/e2/renamed", &st), 0);
	EQ(st.size, 8);
	fd = fs_open("/hello.txt", O_RDONLY, 0);
	EQ(fs_read(fd, buf, 100), 13);
	CHECK(memcmp(buf, "hello, there\n", 13) == 0);
	EQ(fs_close(fd), 0);
	EQ(fs_mount(0), -EBUSY);
	EQ(fs_sync(), 0);
}

/* ---- writer ---------------------------------------------------------------- */

static void die(const char *what, long err)
{
	printf("fstest: %s: %s\n", what, lg_errname((int)err));
	panic("fstest: %s failed", what);
}

static void writer(u32 seed, u32 ops)
{
	char p[16], q[16];
	struct fs_stat st;
	int err;

	rng = ((u64)seed << 32) ^ 0x9E3779B97F4A7C15ull;
	if ((err = fs_mkdir("/w", 0755)) && err != -EEXIST)
		die("mkdir /w", err);
	if ((err = fs_sync()))
		die("sync", err);
	printf("writer: ready\n");
	for (u32 op = 0; ops == 0 || op < ops; op++) {
		u32 f = rnd() % 8, kind = rnd() % 100;
		bool exists;

		snprintf(p, sizeof(p), "/w/f%u", f);
		exists = fs_stat(p, &st) == 0;
		if (!exists || kind < 70 || st.size < 4096) {
			u64 size = exists ? st.size : 0;
			u64 off = rnd() % (size + 16384);
			u32 len = 1 + rnd() % ((rnd() & 3) == 0 ? sizeof(buf) : 16384);
			u32 s = rnd() | 1, state = s;
			int fd;
			long r;

			if (off + len > (3u << 20))
				off = rnd() % 4096;
			printf("begin W %u %llu %u %u\n", f, (unsigned long long)off, len, s);
			gen_fill(buf, len, &state);
			if ((fd = fs_open(p, O_WRONLY | O_CREAT, 0644)) < 0)
				die("open", fd);
			if ((r = fs_pwrite(fd, buf, len, off)) != (long)len)
				die("pwrite", r < 0 ? r : -EIO);
			if ((err = fs_fsync(fd)))
				die("fsync", err);
			fs_close(fd);
			printf("ack W %u %llu %u %u\n", f, (unsigned long long)off, len, s);
		} else if (kind < 85) {
			u64 len = rnd() % (st.size + 8192);
			int fd;

			printf("begin T %u %llu\n", f, (unsigned long long)len);
			if ((fd = fs_open(p, O_WRONLY, 0)) < 0)
				die("open", fd);
			if ((err = fs_ftruncate(fd, len)))
				die("truncate", err);
			if ((err = fs_fsync(fd)))
				die("fsync", err);
			fs_close(fd);
			printf("ack T %u %llu\n", f, (unsigned long long)len);
		} else if (kind < 95) {
			u32 g = rnd() % 8;

			if (g == f)
				g = (g + 1) % 8;
			snprintf(q, sizeof(q), "/w/f%u", g);
			printf("begin R %u %u\n", f, g);
			if ((err = fs_rename(p, q)))
				die("rename", err);
			printf("ack R %u %u\n", f, g);
		} else {
			printf("begin U %u\n", f);
			if ((err = fs_unlink(p)))
				die("unlink", err);
			printf("ack U %u\n", f);
		}
	}
	printf("writer: done\n");
}

/* ---- main ------------------------------------------------------------------ */

static unsigned long long num(const char *s, const char *what)
{
	char *end;
	unsigned long v;

	if (!s || !isdigit(s[0]))
		panic("fstest: %s: a number please", what);
	v = strtoul(s, &end, 0);
	if (*end)
		panic("fstest: %s: bad number '%s'", what, s);
	return v;
}

int main(void)
{
	static char copy[LG_COMMAND_LINE_SIZE];
	char *argv[8], *save, *tok;
	int argc = 0, err;

	strlcpy(copy, lg_cmdline, sizeof(copy));
	for (tok = strtok_r(copy, " \t", &save); tok && argc < 8; tok = strtok_r(NULL, " \t", &save))
		argv[argc++] = tok;
	if (argc == 0)
		panic("fstest: usage: api | write PATH SIZE SEED | crc PATH | ls PATH | fill PATH | writer SEED [OPS] | idle PATH SIZE SEED");
	if ((err = fs_mount(0))) {
		printf("fstest: mount: %s\n", lg_errname(err));
		panic("fstest: mount failed");
	}
	if (strcmp(argv[0], "api") == 0) {
		api();
		if (fails)
			panic("fstest: %u of %u checks failed", fails, checks);
		printf("fstest: api OK (%u checks)\n", checks);
	} else if (strcmp(argv[0], "write") == 0 && argc == 4) {
		long long r = write_gen(argv[1], num(argv[2], "SIZE"), (u32)num(argv[3], "SEED"));

		if (r < 0)
			die("write", (long)r);
		printf("wrote %s %s %08x\n", argv[1], argv[2], (u32)r);
	} else if (strcmp(argv[0], "crc") == 0 && argc == 2) {
		u64 size;
		u32 crc;

		if ((err = crc_file(argv[1], &size, &crc)))
			die("crc", err);
		printf("crc %s %llu %08x\n", argv[1], (unsigned long long)size, crc);
	} else if (strcmp(argv[0], "ls") == 0 && argc == 2) {
		char name[FS_NAME_MAX + 1], path[FS_PATH_MAX];
		u64 cookie = 2, ino;
		u32 type;
		struct fs_stat st;
		int fd = fs_open(argv[1], O_RDONLY | O_DIRECTORY, 0);

		if (fd < 0)
			die("ls", fd);
		while ((err = fs_readdir(fd, &cookie, name, sizeof(name), &ino, &type)) == 1) {
			snprintf(path, sizeof(path), "%s/%s", argv[1], name);
			if ((err = fs_stat(path, &st)))
				die("stat", err);
			printf("%s %c %llu\n", name, type == FS_DT_DIR ? 'd' : 'f',
			       (unsigned long long)st.size);
		}
		if (err)
			die("readdir", err);
	} else if (strcmp(argv[0], "mkdir") == 0 && argc == 2) {
		if ((err = fs_mkdir(argv[1], 0755)) || (err = fs_sync()))
			die("mkdir", err);
	} else if (strcmp(argv[0], "fill") == 0 && argc == 2) {
		u32 state = 1;
		u64 size = 0;
		long r = 0;
		struct fs_statfs sf;
		int fd = fs_open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);

		if (fd < 0)
			die("open", fd);
		for (;;) {
			gen_fill(buf, 65536, &state);
			r = fs_write(fd, buf, 65536);
			if (r > 0)
				size += (u64)r;
			if (r != 65536)
				break;
		}
		if (r >= 0) {   /* a short write: the next one says why */
			r = fs_write(fd, buf + r, 65536 - (size_t)r);
			if (r > 0)
				size += (u64)r;
		}
		printf("fill %llu %s\n", (unsigned long long)size, r < 0 ? lg_errname((int)r) : "none");
		if ((err = fs_fsync(fd)) || (err = fs_close(fd)) || (err = fs_statfs(&sf)))
			die("fsync", err);
		printf("statfs %llu %llu\n", (unsigned long long)sf.free_blocks,
		       (unsigned long long)sf.blocks);
	} else if (strcmp(argv[0], "bench") == 0 && argc == 2) {
		u32 mib = (u32)num(argv[1], "MIB"), state = 3;
		struct lguest_timespec t0, t1, t2;
		struct fs_counters c;
		int fd = fs_open("/bench", O_RDWR | O_CREAT | O_TRUNC, 0644);
		long r;

		if (fd < 0)
			die("open", fd);
		gen_fill(buf, sizeof(buf), &state);
		t0 = time_now();
		for (u32 i = 0; i < mib * 4; i++)
			if ((r = fs_write(fd, buf, sizeof(buf))) != (long)sizeof(buf))
				die("write", r < 0 ? r : -ENOSPC);
		if ((err = fs_fsync(fd)))
			die("fsync", err);
		t1 = time_now();
		fs_seek(fd, 0, FS_SEEK_SET);
		while ((r = fs_read(fd, buf2, sizeof(buf2))) > 0)
			;
		t2 = time_now();
		fs_counters(&c);
		printf("bench write %llu MB/s read %llu MB/s (%u MiB, %lu commits of %lu blocks)\n",
		       (unsigned long long)((u64)mib * 1048576 * 1000 / (time_diff_ns(t0, t1) + 1)),
		       (unsigned long long)((u64)mib * 1048576 * 1000 / (time_diff_ns(t1, t2) + 1)),
		       mib, c.commits, c.journal_blocks);
		fs_close(fd);
	} else if (strcmp(argv[0], "idle") == 0 && argc == 4) {
		u64 size = num(argv[2], "SIZE");
		u32 state = (u32)num(argv[3], "SEED"), crc = 0;
		struct fs_counters c;
		int fd = fs_open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);

		if (fd < 0)
			die("open", fd);
		while (size) {
			u32 n = size > sizeof(buf) ? sizeof(buf) : (u32)size;

			gen_fill(buf, n, &state);
			crc = crc32(crc, buf, n);
			if ((err = write_all(fd, buf, n)))
				die("write", err);
			size -= n;
		}
		printf("idle %s %s %08x\n", argv[1], argv[2], crc);
		while (console_getc() >= 0)
			;
		fs_counters(&c);
		printf("idle commits %lu\n", c.idle_commits);
	} else if (strcmp(argv[0], "writer") == 0 && (argc == 2 || argc == 3)) {
		writer((u32)num(argv[1], "SEED"), argc == 3 ? (u32)num(argv[2], "OPS") : 0);
	} else {
		panic("fstest: unknown command '%s'", argv[0]);
	}
	if ((err = fs_umount()))
		die("umount", err);
	return 0;
}
