/*
 * fs_crash.c: the guest kit's file system (guests/kit/fs.c) compiled for
 * the host (x86-64: the portability check for non-wasm kits), on a disk
 * in memory, crashed after every possible number of block writes.
 *
 *   fs_crash IMAGE OUTDIR SEED OPS
 *
 * IMAGE is an lgfs image (mkfs'd by the test). A fixed workload of OPS
 * operations from SEED (pwrite and truncate, each followed by fs_fsync;
 * rename over, unlink and an empty create, acknowledged when the call
 * returns, with no fsync: namespace calls are durable by themselves; and
 * write-then-rename: a new file written without fsync and renamed over
 * another while still open, acknowledged when fs_rename returns) runs
 * first to count its block writes W;
 * then for every k in 0..W it runs again from IMAGE with the disk dying at
 * write k (that write torn: a random whole-block prefix of it lands),
 * "reboots" (forgets all memory state), mounts again (journal replay,
 * orphans freed) and checks every file against the acknowledged
 * operations: equal, except the files of the operation in flight, which
 * may hold old, new or zero bytes and a size between. The image at each
 * crash point, before and after the remount, goes to OUTDIR/crash-K.img
 * and OUTDIR/mounted-K.img (every 25th k), or with OUTDIR "-" every one
 * of them to stdout, back to back, for the host's consistency check
 * (launcher/lgfs.ts check()).
 *
 * Output (stderr with "-", else stdout): "fs_crash: W writes, W+1 crash
 * points OK, N images" or "fs_crash: FAIL ..." and exit status 1.
 */
#define main kit_main        /* kit.h declares the guest's int main(void) */
#include "fs.c"
#undef main
#include "host_kit.h"
#include <stdio.h>
#include <stdlib.h>

/* ---- The rest of the kit fs.c uses (host_kit.h has the shared part) ------- */

static long writes_left = -1;     /* -1: never die */
static bool dead;
static unsigned long nwrites;

int blk_read(int d, u32 sector, void *buf, u32 bytes)
{
	if (d != 0 || dead)
		return BLK_EIO;
	if ((u64)sector * 512 + bytes > (u64)disk_sectors * 512)
		return BLK_ERANGE;
	memcpy(buf, disk + (size_t)sector * 512, bytes);
	return 0;
}

int blk_write(int d, u32 sector, const void *buf, u32 bytes)
{
	if (d != 0 || dead)
		return BLK_EIO;
	if ((u64)sector * 512 + bytes > (u64)disk_sectors * 512)
		return BLK_ERANGE;
	if (writes_left == 0) {
		/* The launcher dies inside this request: some 4 KiB pieces of
		 * it are in the file, in order, the rest not. */
		u32 pieces = (bytes + 4095) / 4096, done = rnd() % (pieces + 1);
		u32 n = done * 4096 < bytes ? done * 4096 : bytes;

		memcpy(disk + (size_t)sector * 512, buf, n);
		dead = true;
		return BLK_EIO;
	}
	if (writes_left > 0)
		writes_left--;
	memcpy(disk + (size_t)sector * 512, buf, bytes);
	nwrites++;
	return 0;
}

/* No periodic commit here (fs.c's COMMIT_NS): the clocks stand (almost) still. */
u64 lg_clock_ns(void)
{
	return 0;
}

struct lguest_timespec time_last(void)
{
	static u32 ns;
	struct lguest_timespec t = { 1700000000u, ns++ % 1000000000u };

	return t;
}

/* ---- The workload and its model -------------------------------------------- */

#define NFILES  3
#define MAXF    (80 * 1024)

struct model {
	bool exists[NFILES];
	u32 len[NFILES];
	u8 data[NFILES][MAXF];
};

static struct model acked, after;
static u8 buf[MAXF];

/* OP_TW: truncate f without fsync (fs_truncate: no descriptor, so no
 * commit at close), then OP_W on g with fsync: the blocks the truncate
 * freed must not carry g's data while f still points at them. */
/* OP_WR: write f afresh (O_TRUNC, no fsync), rename it over g while it is
 * open, close: acknowledged when fs_rename returns, g must then hold all
 * of the new bytes. OP_C: create f empty (no write, so no commit at close),
 * acknowledged when fs_close returns. */
enum { OP_W, OP_T, OP_R, OP_U, OP_TW, OP_WR, OP_C };
struct op {
	int kind;
	u32 f, g, off, len, seed, tlen;
};

static void gen(u8 *p, u32 len, u32 seed)
{
	u32 x = seed;

	for (u32 i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		p[i] = (u8)x;
	}
}

/* Ops depend on the model (sizes, which files exist), so the same SEED
 * gives the same sequence in every run up to the crash. */
static struct op next_op(const struct model *m)
{
	struct op o = { 0 };
	u32 k = rnd() % 100;

	o.f = rnd() % NFILES;
	o.g = (o.f + 1 + rnd() % (NFILES - 1)) % NFILES;
	/* Every op but OP_WR, OP_C and OP_W needs f to exist. */
	if (k < 60 || (!m->exists[o.f] && (k < 88 || (k >= 93 && k < 97)))) {
		u32 size = m->exists[o.f] ? m->len[o.f] : 0;

		o.kind = OP_W;
		o.len = 1 + rnd() % ((rnd() & 1) ? 20000 : 3000);
		o.off = rnd() % (size + 5000);
		if (o.off + o.len > MAXF)
			o.off = MAXF - o.len;
		o.seed = rnd() | 1;
	} else if (k < 72) {
		o.kind = OP_T;
		o.len = rnd() % (m->len[o.f] + 6000);
		if (o.len > MAXF)
			o.len = MAXF;
	} else if (k < 82) {
		u32 size = m->exists[o.g] ? m->len[o.g] : 0;

		o.kind = OP_TW;
		o.tlen = rnd() % (m->len[o.f] / 2 + 1);
		o.len = 1 + rnd() % 20000;
		o.off = rnd() % (size + 5000);
		if (o.off + o.len > MAXF)
			o.off = MAXF - o.len;
		o.seed = rnd() | 1;
	} else if (k < 88) {
		o.kind = OP_R;
	} else if (k < 93) {
		o.kind = OP_WR;
		o.len = 1 + rnd() % ((rnd() & 1) ? 20000 : 3000);
		o.seed = rnd() | 1;
	} else if (k < 97) {
		o.kind = OP_U;
	} else {
		o.kind = OP_C;
	}
	return o;
}

static void model_apply(struct model *m, const struct op *o)
{
	if (o->kind == OP_TW) {
		struct op t = { OP_T, o->f, 0, 0, o->tlen, 0, 0 };
		struct op w = { OP_W, o->g, 0, o->off, o->len, o->seed, 0 };

		model_apply(m, &t);
		model_apply(m, &w);
		return;
	}
	switch (o->kind) {
	case OP_W:
		if (!m->exists[o->f]) {
			m->exists[o->f] = true;
			m->len[o->f] = 0;
		}
		if (o->off > m->len[o->f])
			memset(m->data[o->f] + m->len[o->f], 0, o->off - m->len[o->f]);
		gen(m->data[o->f] + o->off, o->len, o->seed);
		if (o->off + o->len > m->len[o->f])
			m->len[o->f] = o->off + o->len;
		break;
	case OP_T:
		if (o->len > m->len[o->f])
			memset(m->data[o->f] + m->len[o->f], 0, o->len - m->len[o->f]);
		m->len[o->f] = o->len;
		break;
	case OP_R:
		m->exists[o->g] = true;
		m->len[o->g] = m->len[o->f];
		memcpy(m->data[o->g], m->data[o->f], m->len[o->f]);
		m->exists[o->f] = false;
		break;
	case OP_U:
		m->exists[o->f] = false;
		break;
	case OP_WR:
		m->exists[o->g] = true;
		m->len[o->g] = o->len;
		gen(m->data[o->g], o->len, o->seed);
		m->exists[o->f] = false;
		break;
	case OP_C:
		if (!m->exists[o->f]) {
			m->exists[o->f] = true;
			m->len[o->f] = 0;
		}
		break;
	}
}

static void path_of(char *p, u32 f)
{
	snprintf(p, 16, "/d/f%u", f);
}

/* Run one op on the fs; 0 once it is durable. */
static int fs_apply(const struct op *o)
{
	char p[16], q[16];
	int fd, err;
	long r;

	path_of(p, o->f);
	path_of(q, o->g);
	switch (o->kind) {
	case OP_W:
		gen(buf, o->len, o->seed);
		if ((fd = fs_open(p, O_WRONLY | O_CREAT, 0644)) < 0)
			return fd;
		r = fs_pwrite(fd, buf, o->len, o->off);
		err = r == (long)o->len ? fs_fsync(fd) : (r < 0 ? (int)r : -EIO);
		fs_close(fd);
		return err;
	case OP_T:
		if ((fd = fs_open(p, O_WRONLY, 0)) < 0)
			return fd;
		err = fs_ftruncate(fd, o->len);
		if (!err)
			err = fs_fsync(fd);
		fs_close(fd);
		return err;
	case OP_TW: {
		struct op w = { OP_W, o->g, 0, o->off, o->len, o->seed, 0 };

		if ((err = fs_truncate(p, o->tlen)))
			return err;
		return fs_apply(&w);
	}
	case OP_R:
		return fs_rename(p, q);
	case OP_WR:
		gen(buf, o->len, o->seed);
		if ((fd = fs_open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644)) < 0)
			return fd;
		r = fs_pwrite(fd, buf, o->len, 0);
		err = r == (long)o->len ? fs_rename(p, q) : (r < 0 ? (int)r : -EIO);
		/* Acknowledged already: a close cut by the crash is the next
		 * op's failure. */
		if (fs_close(fd) && !err && !dead)
			err = -EIO;
		return err;
	case OP_C:
		if ((fd = fs_open(p, O_WRONLY | O_CREAT, 0644)) < 0)
			return fd;
		return fs_close(fd);
	default:
		return fs_unlink(p);
	}
}

/* Forget everything in memory, as a rebooted guest. */
static void reboot(void)
{
	u8 *mem[CACHE_N], *dbuf = fs.dbuf, *jbuf = fs.jbuf;

	for (int i = 0; i < CACHE_N; i++)
		mem[i] = fs.cache[i].data;
	memset(&fs, 0, sizeof(fs));
	for (int i = 0; i < CACHE_N; i++)
		fs.cache[i].data = mem[i];
	fs.dbuf = dbuf;
	fs.jbuf = jbuf;
	dead = false;
	writes_left = -1;
}

static int fails;
static FILE *msg;                  /* where the text goes */

static void fail(long k, const char *what, u32 f)
{
	fprintf(msg, "fs_crash: FAIL at crash point %ld: /d/f%u: %s\n", k, f, what);
	fails++;
}

/* The files on the mounted fs against acked (and, for the op in flight,
 * after). */
static void verify(long k, const struct op *pending)
{
	for (u32 f = 0; f < NFILES; f++) {
		bool touched = pending && (pending->f == f ||
					   ((pending->kind == OP_R || pending->kind == OP_TW ||
					     pending->kind == OP_WR) && pending->g == f));
		char p[16];
		struct fs_stat st;
		int fd;
		long r;
		u32 lo, hi, olen = acked.exists[f] ? acked.len[f] : 0, nlen = after.exists[f] ? after.len[f] : 0;

		path_of(p, f);
		if (fs_stat(p, &st)) {
			if (acked.exists[f] && !(touched && !after.exists[f]))
				fail(k, "missing", f);
			continue;
		}
		if (!acked.exists[f] && !(touched && after.exists[f]) &&
		    !(touched && pending->kind == OP_WR && pending->f == f)) {
			fail(k, "exists", f);
			continue;
		}
		if ((fd = fs_open(p, O_RDONLY, 0)) < 0 || st.size > MAXF) {
			fail(k, "cannot read", f);
			continue;
		}
		r = fs_read(fd, buf, MAXF);
		fs_close(fd);
		if (r != (long)st.size) {
			fail(k, "short read", f);
			continue;
		}
		if (!touched) {
			if (r != (long)olen || memcmp(buf, acked.data[f], olen))
				fail(k, "differs from the acknowledged state", f);
			continue;
		}
		if (pending->kind == OP_WR && pending->f == f) {
			/* The temporary file: old, or (truncated, partly
			 * written) new bytes or zeros up to the new length. */
			static u8 neu[MAXF];
			bool old = acked.exists[f] && r == (long)olen && !memcmp(buf, acked.data[f], olen);

			gen(neu, pending->len, pending->seed);
			if (old)
				continue;
			if ((u32)r > pending->len) {
				fail(k, "temporary file longer than its new contents", f);
				continue;
			}
			for (u32 i = 0; i < (u32)r; i++) {
				if (buf[i] && buf[i] != neu[i]) {
					fail(k, "temporary file: a byte neither new nor zero", f);
					break;
				}
			}
			continue;
		}
		if (pending->kind == OP_R || pending->kind == OP_U || pending->kind == OP_WR ||
		    pending->kind == OP_C) {
			bool old = acked.exists[f] && r == (long)olen && !memcmp(buf, acked.data[f], olen);
			bool neu = after.exists[f] && r == (long)nlen && !memcmp(buf, after.data[f], nlen);

			if (!old && !neu)
				fail(k, "neither before nor after the rename/unlink", f);
			continue;
		}
		lo = olen < nlen ? olen : nlen;
		hi = olen > nlen ? olen : nlen;
		if ((u32)r < lo || (u32)r > hi) {
			fail(k, "size outside old..new", f);
			continue;
		}
		for (u32 i = 0; i < (u32)r; i++) {
			u8 b = buf[i];

			if (b && !(i < nlen && b == after.data[f][i]) &&
			    !(i < olen && b == acked.data[f][i])) {
				fail(k, "a byte neither old, new nor zero", f);
				break;
			}
		}
	}
}

static void dump(const char *dir, const char *what, long k)
{
	char path[512];
	FILE *out;

	if (strcmp(dir, "-") == 0) {
		if (fwrite(disk, 512, disk_sectors, stdout) != disk_sectors)
			exit(2);
		return;
	}
	if (k % 25)
		return;

	snprintf(path, sizeof(path), "%s/%s-%ld.img", dir, what, k);
	out = fopen(path, "wb");
	if (!out || fwrite(disk, 512, disk_sectors, out) != disk_sectors) {
		fprintf(msg, "fs_crash: cannot write %s\n", path);
		exit(2);
	}
	fclose(out);
}

/* The workload from the pristine image, dying at write k (-1: never).
 * Returns the number of ops acknowledged; *pending the one in flight. */
static u32 run(long k, u32 seed, u32 ops, struct op *pending, bool *inflight)
{
	u32 done = 0;
	int err;

	memcpy(disk, pristine, (size_t)disk_sectors * 512);
	reboot();
	writes_left = k;
	rng = ((u64)seed << 32) | 0x9E3779B9u;
	memset(&acked, 0, sizeof(acked));
	*inflight = false;
	if ((err = fs_mount(0)) || ((err = fs_mkdir("/d", 0755)) && err != -EEXIST) ||
	    (err = fs_sync())) {
		if (!dead) {
			fprintf(msg, "fs_crash: setup failed: %s\n", lg_errname(err));
			exit(2);
		}
		return 0;
	}
	for (; done < ops; done++) {
		struct op o = next_op(&acked);

		after = acked;
		model_apply(&after, &o);
		/* First fit from here on: a block freed in this op is the
		 * first candidate for the next allocation. */
		fs.balloc_hint = fs.sb.dstart;
		if ((err = fs_apply(&o))) {
			if (!dead) {
				fprintf(msg, "fs_crash: op %u failed without a crash: %s\n", done, lg_errname(err));
				exit(2);
			}
			*pending = o;
			*inflight = true;
			return done;
		}
		acked = after;
	}
	return done;
}

int main(int argc, char **argv)
{
	FILE *in;
	long size, total;
	u32 seed, ops, dumped = 0;
	struct op pending;
	bool inflight;

	if (argc != 5) {
		printf("usage: fs_crash IMAGE OUTDIR SEED OPS\n");
		return 2;
	}
	msg = strcmp(argv[2], "-") == 0 ? stderr : stdout;
	seed = (u32)strtoul(argv[3], NULL, 0);
	ops = (u32)strtoul(argv[4], NULL, 0);
	in = fopen(argv[1], "rb");
	if (!in || fseek(in, 0, SEEK_END) || (size = ftell(in)) < 4096 || fseek(in, 0, SEEK_SET)) {
		fprintf(msg, "fs_crash: cannot read %s\n", argv[1]);
		return 2;
	}
	disk_sectors = (u32)(size / 512);
	disk = malloc((size_t)size);
	pristine = malloc((size_t)size);
	if (!disk || !pristine || fread(pristine, 1, (size_t)size, in) != (size_t)size) {
		fprintf(msg, "fs_crash: cannot read %s\n", argv[1]);
		return 2;
	}
	fclose(in);

	/* The whole workload once: how many writes it makes. */
	nwrites = 0;
	if (run(-1, seed, ops, &pending, &inflight) != ops) {
		fprintf(msg, "fs_crash: the workload did not finish\n");
		return 2;
	}
	total = (long)nwrites;
	for (long k = 0; k <= total; k++) {
		int err;

		run(k, seed, ops, &pending, &inflight);
		dump(argv[2], "crash", k);
		dumped++;
		reboot();
		if ((err = fs_mount(0))) {
			fprintf(msg, "fs_crash: FAIL at crash point %ld: mount: %s\n", k, lg_errname(err));
			fails++;
			continue;
		}
		verify(k, inflight ? &pending : NULL);
		if ((err = fs_umount())) {
			fprintf(msg, "fs_crash: FAIL at crash point %ld: umount: %s\n", k, lg_errname(err));
			fails++;
		}
		dump(argv[2], "mounted", k);
		dumped++;
		if (fails > 5)
			break;
	}
	if (fails)
		return 1;
	fprintf(msg, "fs_crash: %ld writes, %ld crash points OK, %u images\n", total, total + 1,
		dumped);
	return 0;
}
