/*
 * fs.c: lgfs, a small journaling file system on a kit block disk (API in
 * fs.h, format in docs/disk-format.md; the host's reader and writer of the
 * same format is launcher/lgfs.ts).
 *
 * Blocks of 4096 bytes: superblock | journal | bitmap | inode table | data.
 * Metadata (bitmap, inodes, indirect blocks, directory blocks) lives in a
 * bounded write-back cache and reaches its home only through the journal:
 * commit() writes a descriptor, the changed blocks' images and a commit
 * block with their CRC-32 to the journal (in order, up to 64 KiB a
 * request), then the images home (checkpoint). Mount replays
 * a complete transaction found in the journal (idempotent). File data is
 * written in place when fs_write returns, and always before the commit
 * that makes it reachable. A block freed in a transaction is reused only
 * after that transaction is committed, so committed files never point at
 * another file's new data.
 *
 * Namespace calls (creating fs_open, fs_mkdir, fs_unlink, fs_rmdir,
 * fs_rename) are durable when they return, as on a Linux mount with
 * dirsync: each ends with a commit (ns_commit), and since the transaction
 * holds every metadata change made so far, a file written and then
 * renamed without fsync is committed with its size and blocks (its data is
 * already in place): the new name never points at unwritten data.
 *
 * Commits happen only between steps that leave the metadata consistent:
 * at the start of each API call and between the blocks of a write or a
 * truncate, when the cache holds DIRTY_MAX changed blocks, or the freed
 * blocks reach PENDING_MAX or touch PENDING_BMS bitmap blocks. One step
 * changes at most ~10 blocks and frees at most 3, so a transaction stays
 * below ~70 blocks: far inside the journal's 128 and the cache's 128.
 *
 * Portable C (wasm32 and x86-64 guests); the format is little-endian and
 * so are both targets.
 */
#include "kit.h"
#include "fs.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "lgfs: little-endian targets only"
#endif

#define BS          4096u
#define SPB         (BS / BLK_SECTOR_SIZE)        /* sectors per block */
#define NDIRECT     12u
#define PTRS        (BS / 4u)                     /* 1024 */
#define IPB         (BS / sizeof(struct dinode))  /* 32 */
#define DPB         (BS / sizeof(struct dirent))  /* 32 */
#define CACHE_N     128
#define DIRTY_MAX   32
#define PENDING_MAX 1024       /* freed blocks waiting for the commit */
#define PENDING_BMS 16         /* ... in at most this many bitmap blocks */
#define RUN_MAX     16         /* blocks of file data per write request */
#define JSTAGE      16         /* journal blocks per write request (jbuf and those after it) */
#define JDESC_MAX   ((BS - 24) / 4)
#define ROOT_INO    1u

static const char SB_MAGIC[8] = { 'L', 'G', 'F', 'S', '1', 0, 0, 0 };
static const char JD_MAGIC[8] = { 'L', 'G', 'F', 'S', 'J', 'R', 'N', 'L' };
static const char JC_MAGIC[8] = { 'L', 'G', 'F', 'S', 'C', 'M', 'I', 'T' };

struct dsuper {
	char magic[8];
	u32 version, block_size, blocks;
	u32 jstart, jblocks, bstart, bblocks, istart, iblocks, inodes, dstart;
	u32 root;
	u64 mkfs_ns;
};

struct dinode {
	u32 mode, nlink;
	u64 size, mtime, ctime;
	u32 direct[NDIRECT];
	u32 ind, dind, parent;
	u32 spare[9];
};
_Static_assert(sizeof(struct dinode) == 128, "inode is 128 bytes");

struct dirent {
	u32 ino;
	u8 type, namelen;
	u16 zero;
	char name[FS_NAME_MAX];
	u8 pad[128 - 8 - FS_NAME_MAX];
};
_Static_assert(sizeof(struct dirent) == 128, "directory entry is 128 bytes");

struct jdesc {
	char magic[8];
	u64 seq;
	u32 count, zero;
	u32 target[JDESC_MAX];
};
_Static_assert(sizeof(struct jdesc) == BS, "descriptor is one block");

struct jcommit {
	char magic[8];
	u64 seq;
	u32 count, crc;
};

struct cblk {
	u32 blk;        /* 0 = empty slot (block 0 is never cached) */
	u32 lru;
	bool dirty;
	u8 *data;
};

struct ofile {
	bool used, wrote;
	u32 ino, flags;
	u64 pos;
};

static struct {
	bool mounted, broken;
	bool ro;		/* the disk is read-only (LGUEST_BLK_F_READONLY): no call modifies */
	int disk;
	struct dsuper sb;
	u64 seq;                   /* of the next transaction */
	struct cblk cache[CACHE_N];
	u32 tick, ndirty;
	u32 pending[PENDING_MAX + 16];
	u32 npending;
	u32 pending_bm[PENDING_BMS + 8];   /* their distinct bitmap blocks */
	u32 npending_bm;
	u32 balloc_hint, ialloc_hint;
	u64 free_blocks, free_inodes;
	u8 *dbuf;                  /* one block for partial data writes */
	u8 *jbuf;                  /* journal I/O: the descriptor, then JSTAGE-1 more blocks */
	struct ofile fds[FS_MAX_OPEN];
	struct fs_counters cnt;
	u64 commit_ns;             /* lg_clock_ns() of the last commit (or the mount) */
} fs;

/* Changes that no call committed (a file that grows by write() alone,
 * never closed or synced; an mtime) are committed once this long has
 * passed since the last commit (ext4 commits every 5 s), at the end of a
 * write, or while the program waits (fs_idle, the kit's idle hook: a
 * sleep, a poll, console input): a kill loses at most its last ~5 s, not
 * all since its open. */
#define COMMIT_NS 5000000000ull

/* A clock for the periodic commit: lg_clock_ns() where a reading is cheap
 * (a counter: tsc_khz set); else the host's time at the last interrupt
 * (every disk request and every wake-up ends with one), a memory read
 * where a fresh reading would cost a timer round trip (KVM without a TSC
 * rate). */
static u64 commit_clock(void)
{
	struct lguest_timespec t;

	if (READ_ONCE(lguest_data.tsc_khz))
		return lg_clock_ns();
	t = time_last();
	return (u64)t.tv_sec * 1000000000ull + t.tv_nsec;
}

/* ---- Disk I/O ------------------------------------------------------------ */

static int bread(u32 blk, void *buf)
{
	return blk_read(fs.disk, blk * SPB, buf, BS) ? -EIO : 0;
}

static int bwrite(u32 blk, const void *buf)
{
	int r = blk_write(fs.disk, blk * SPB, buf, BS);

	return r == BLK_EROFS ? -EROFS : r ? -EIO : 0;
}

/* n blocks from buf to blk .. blk+n-1, in order. */
static int bwrite_n(u32 blk, const void *buf, u32 n)
{
	int r = blk_write(fs.disk, blk * SPB, buf, n * BS);

	return r == BLK_EROFS ? -EROFS : r ? -EIO : 0;
}

static u64 now_ns(void)
{
	struct lguest_timespec t = time_last();

	return (u64)t.tv_sec * 1000000000ull + t.tv_nsec;
}

/* ---- The metadata cache -------------------------------------------------- */

static struct cblk *cfind(u32 blk)
{
	for (int i = 0; i < CACHE_N; i++)
		if (fs.cache[i].blk == blk)
			return &fs.cache[i];
	return NULL;
}

/* A slot for blk: its own, or the least recently used clean one. */
static struct cblk *cslot(u32 blk, bool *hit)
{
	struct cblk *c = cfind(blk), *victim = NULL;

	*hit = c != NULL;
	if (!c) {
		for (int i = 0; i < CACHE_N; i++) {
			struct cblk *e = &fs.cache[i];

			if (!e->dirty && (!victim || e->lru < victim->lru || !e->blk))
				victim = e;
			if (victim && !victim->blk)
				break;
		}
		if (!victim)
			return NULL;        /* cannot happen: see DIRTY_MAX */
		c = victim;
		c->blk = 0;
	}
	c->lru = ++fs.tick;
	return c;
}

/* The cached contents of metadata block blk (valid until the next cache
 * call), or NULL on an I/O error or a block outside the metadata areas. */
static u8 *meta(u32 blk)
{
	struct cblk *c;
	bool hit;

	if (blk < fs.sb.bstart || blk >= fs.sb.blocks)
		return NULL;
	c = cslot(blk, &hit);
	if (!c)
		return NULL;
	if (!hit) {
		if (bread(blk, c->data))
			return NULL;
		c->blk = blk;
	}
	return c->data;
}

static void cmark(struct cblk *c)
{
	if (!c->dirty) {
		c->dirty = true;
		fs.ndirty++;
	}
}

/* meta(), and the block will be written by the next commit. */
static u8 *meta_w(u32 blk)
{
	u8 *p = meta(blk);

	if (p)
		cmark(cfind(blk));
	return p;
}

/* A freshly allocated metadata block: zeroed, dirty, no read. */
static u8 *meta_new(u32 blk)
{
	struct cblk *c;
	bool hit;

	c = cslot(blk, &hit);
	if (!c)
		return NULL;
	c->blk = blk;
	memset(c->data, 0, BS);
	cmark(c);
	return c->data;
}

static void cdrop(u32 blk)
{
	struct cblk *c = cfind(blk);

	if (!c)
		return;
	if (c->dirty)
		fs.ndirty--;
	c->dirty = false;
	c->blk = 0;
}

/* ---- Commit -------------------------------------------------------------- */

static int bitmap_set(u32 blk, bool used)
{
	u32 bit = blk % (BS * 8);
	u8 *p = meta_w(fs.sb.bstart + blk / (BS * 8));

	if (!p)
		return -EIO;
	if (used)
		p[bit / 8] |= (u8)(1u << (bit % 8));
	else
		p[bit / 8] &= (u8)~(1u << (bit % 8));
	return 0;
}

static int commit(void)
{
	struct jdesc *d = (struct jdesc *)fs.jbuf;
	struct jcommit c;
	u32 n = 0, crc;

	if (fs.broken)
		return -EIO;
	for (u32 i = 0; i < fs.npending; i++) {
		if (bitmap_set(fs.pending[i], false))
			goto broken;
		fs.free_blocks++;
	}
	fs.npending = 0;
	fs.npending_bm = 0;
	if (fs.ndirty == 0)
		return 0;
	if (fs.ndirty > JDESC_MAX || fs.ndirty + 2 > fs.sb.jblocks)
		goto broken;
	memset(d, 0, BS);
	memcpy(d->magic, JD_MAGIC, 8);
	d->seq = fs.seq;
	for (int i = 0; i < CACHE_N; i++)
		if (fs.cache[i].dirty)
			d->target[n++] = fs.cache[i].blk;
	d->count = n;
	crc = crc32(0, d, BS);
	for (u32 i = 0; i < n; i++)
		crc = crc32(crc, cfind(d->target[i])->data, BS);
	memset(&c, 0, sizeof(c));
	memcpy(c.magic, JC_MAGIC, 8);
	c.seq = fs.seq;
	c.count = n;
	c.crc = crc;
	/* 1-3. The descriptor, the images (in the order of the targets: the
	 * cache's), the commit block: journal blocks 0 .. n+1, in order,
	 * through jbuf and the blocks after it, JSTAGE (64 KiB) a request. A
	 * request cut short leaves a commit block that does not match (seq,
	 * count, CRC of all the others): the transaction is ignored. */
	for (u32 x = 0, ci = 0; x < n + 2;) {
		u32 m;

		for (m = 0; m < JSTAGE && x + m < n + 2; m++) {
			u32 j = x + m;
			u8 *dst = fs.jbuf + (size_t)m * BS;

			if (j == 0)
				continue;            /* the descriptor, in place */
			if (j <= n) {
				while (!fs.cache[ci].dirty)
					ci++;
				memcpy(dst, fs.cache[ci++].data, BS);
			} else {
				memset(dst, 0, BS);
				memcpy(dst, &c, sizeof(c));
			}
		}
		if (bwrite_n(fs.sb.jstart + x, fs.jbuf, m))
			goto broken;
		x += m;
	}
	/* 4. Checkpoint: the images to their homes. */
	for (int i = 0; i < CACHE_N; i++) {
		struct cblk *e = &fs.cache[i];

		if (!e->dirty)
			continue;
		if (bwrite(e->blk, e->data))
			goto broken;
		e->dirty = false;
	}
	fs.ndirty = 0;
	/* 5. The journal is clean: a descriptor with no blocks keeps the seq
	 * (so a mount replays nothing and a read-only disk mounts). */
	memset(d, 0, BS);
	memcpy(d->magic, JD_MAGIC, 8);
	d->seq = fs.seq;
	if (bwrite(fs.sb.jstart, d))
		goto broken;
	fs.seq++;
	fs.cnt.commits++;
	fs.commit_ns = commit_clock();
	fs.cnt.journal_blocks += n;
	return 0;
broken:
	/* The disk holds the last committed state (plus maybe this one, whole
	 * or not at all); memory does not match it any more. */
	fs.broken = true;
	return -EIO;
}

static bool commit_due(void)
{
	return fs.ndirty >= DIRTY_MAX || fs.npending >= PENDING_MAX - 8 ||
	       fs.npending_bm >= PENDING_BMS;
}

/* The end of a namespace call that succeeded (err 0): commit, so that the
 * change (and everything before it) survives a crash or a SIGKILL of the
 * launcher from the moment the call returns. One commit per call. */
static int ns_commit(int err)
{
	return err ? err : commit();
}

/* At a step boundary: commit if the transaction has grown big enough. */
static int step(void)
{
	if (commit_due())
		return commit();
	return fs.broken ? -EIO : 0;
}

/* Replay the journal's last transaction if it is complete. */
static int replay(void)
{
	struct jdesc *d = (struct jdesc *)fs.jbuf;
	struct jcommit c;
	u32 n, crc;
	u8 *img = fs.dbuf;

	if (bread(fs.sb.jstart, d))
		return -EIO;
	if (memcmp(d->magic, JD_MAGIC, 8) != 0) {
		fs.seq = 1;
		return 0;
	}
	fs.seq = d->seq + 1;
	n = d->count;
	if (n == 0 || n > JDESC_MAX || n + 2 > fs.sb.jblocks)
		return 0;
	for (u32 i = 0; i < n; i++)
		if (d->target[i] < fs.sb.bstart || d->target[i] >= fs.sb.blocks)
			return 0;
	crc = crc32(0, d, BS);
	for (u32 i = 0; i < n; i++) {
		if (bread(fs.sb.jstart + 1 + i, img))
			return -EIO;
		crc = crc32(crc, img, BS);
	}
	if (bread(fs.sb.jstart + 1 + n, img))
		return -EIO;
	memcpy(&c, img, sizeof(c));
	if (memcmp(c.magic, JC_MAGIC, 8) != 0 || c.seq != d->seq || c.count != n || c.crc != crc)
		return 0;
	/* The descriptor stays in jbuf, the images pass through dbuf. */
	/* On a read-only disk a journal to replay makes the mount -EROFS. */
	for (u32 i = 0; i < n; i++) {
		int err;

		if (bread(fs.sb.jstart + 1 + i, img))
			return -EIO;
		if ((err = bwrite(d->target[i], img)))
			return err;
	}
	fs.cnt.replays++;
	return 0;
}

/* ---- Allocation ---------------------------------------------------------- */

/* A free data block, marked used; 0 if the disk is full. */
static u32 balloc(int *err)
{
	u32 total = fs.sb.blocks, per = BS * 8;
	u32 b = fs.balloc_hint;

	*err = 0;
	if (fs.free_blocks == 0)
		return 0;
	if (b < fs.sb.dstart || b >= total)
		b = fs.sb.dstart;
	for (u32 scanned = 0; scanned < total;) {
		const u8 *p = meta(fs.sb.bstart + b / per);
		u32 end = (b / per + 1) * per;

		if (!p) {
			*err = -EIO;
			return 0;
		}
		if (end > total)
			end = total;
		for (; b < end; b++, scanned++) {
			u32 bit = b % per;

			if (p[bit / 8] == 0xff && bit % 8 == 0 && b + 8 <= end) {
				b += 7;
				scanned += 7;
				continue;
			}
			if (!(p[bit / 8] & (1u << (bit % 8)))) {
				if (bitmap_set(b, true)) {
					*err = -EIO;
					return 0;
				}
				fs.free_blocks--;
				fs.balloc_hint = b + 1;
				return b;
			}
		}
		if (b >= total)
			b = fs.sb.dstart;
	}
	return 0;
}

/* Free block b once the current transaction is committed. */
static void bfree(u32 b)
{
	u32 bm = b / (BS * 8), i;

	cdrop(b);
	fs.pending[fs.npending++] = b;
	for (i = 0; i < fs.npending_bm && fs.pending_bm[i] != bm; i++)
		;
	if (i == fs.npending_bm)
		fs.pending_bm[fs.npending_bm++] = bm;
}

/* ---- Inodes -------------------------------------------------------------- */

static bool ino_ok(u32 ino)
{
	return ino >= 1 && ino < fs.sb.inodes;
}

static int iget(u32 ino, struct dinode *out)
{
	const u8 *p;

	if (!ino_ok(ino))
		return -EIO;
	p = meta(fs.sb.istart + ino / IPB);
	if (!p)
		return -EIO;
	memcpy(out, p + (ino % IPB) * sizeof(*out), sizeof(*out));
	/* A corrupt inode is an I/O error, not a loop over 2^52 blocks. */
	if (out->mode) {
		u32 t = out->mode & FS_S_IFMT;

		if ((t != FS_S_IFDIR && t != FS_S_IFREG) || out->size > FS_MAX_FILE ||
		    (t == FS_S_IFDIR && (out->size % BS || out->size > (u64)(NDIRECT + PTRS) * BS)))
			return -EIO;
	}
	return 0;
}

static int iput(u32 ino, const struct dinode *in)
{
	u8 *p;

	if (!ino_ok(ino))
		return -EIO;
	p = meta_w(fs.sb.istart + ino / IPB);
	if (!p)
		return -EIO;
	memcpy(p + (ino % IPB) * sizeof(*in), in, sizeof(*in));
	return 0;
}

static bool is_dir(const struct dinode *ip)
{
	return (ip->mode & FS_S_IFMT) == FS_S_IFDIR;
}

static int ialloc(u32 mode, u32 parent, u32 *out)
{
	u32 n = fs.sb.inodes, ino = fs.ialloc_hint;
	struct dinode in;

	if (fs.free_inodes == 0)
		return -ENOSPC;
	for (u32 i = 0; i < n; i++, ino++) {
		if (!ino_ok(ino))
			ino = ROOT_INO + 1;
		if (iget(ino, &in))
			return -EIO;
		if (in.mode == 0) {
			u64 t = now_ns();

			memset(&in, 0, sizeof(in));
			in.mode = mode;
			in.nlink = 1;
			in.mtime = in.ctime = t;
			in.parent = parent;
			if (iput(ino, &in))
				return -EIO;
			fs.free_inodes--;
			fs.ialloc_hint = ino + 1;
			*out = ino;
			return 0;
		}
	}
	return -ENOSPC;
}

/* ---- Block maps ---------------------------------------------------------- */

static bool data_ok(u32 b)
{
	return b >= fs.sb.dstart && b < fs.sb.blocks;
}

/* Entry idx of pointer block blk: read, or (alloc) fill in a new block.
 * *fresh: the block was just allocated. metanew: a new block is metadata
 * (zeroed in the cache) rather than file data. */
static int ptr_slot(u32 blk, u32 idx, bool alloc, bool metanew, u32 *out, bool *fresh)
{
	u8 *p = meta(blk);
	u32 v;
	int err;

	if (!p)
		return -EIO;
	memcpy(&v, p + idx * 4, 4);
	if (v && !data_ok(v))
		return -EIO;
	if (v || !alloc) {
		*out = v;
		return 0;
	}
	v = balloc(&err);
	if (!v)
		return err ? err : -ENOSPC;
	if (metanew && !meta_new(v))
		return -EIO;
	p = meta_w(blk);
	if (!p)
		return -EIO;
	memcpy(p + idx * 4, &v, 4);
	*out = v;
	*fresh = true;
	return 0;
}

/* The inode's indirect or double-indirect pointer block *slot: allocated
 * (zeroed, as metadata) when missing and alloc; 0 is left for a hole. */
static int ptr_root(u32 *slot, bool alloc)
{
	if (!*slot && alloc) {
		int err;
		u32 v = balloc(&err);

		if (!v)
			return err ? err : -ENOSPC;
		if (!meta_new(v))
			return -EIO;
		*slot = v;
	}
	if (*slot && !data_ok(*slot))
		return -EIO;
	return 0;
}

/* Physical block of logical block lbn of the inode (0 = hole). With alloc,
 * holes are filled (the inode is changed in *ip; the caller writes it). */
static int bmap(struct dinode *ip, u64 lbn, bool alloc, bool dirdata, u32 *out, bool *fresh)
{
	u32 ptr;
	int err;
	bool f = false;

	*fresh = false;
	if (lbn < NDIRECT) {
		u32 v = ip->direct[lbn];

		if (v && !data_ok(v))
			return -EIO;
		if (!v && alloc) {
			v = balloc(&err);
			if (!v)
				return err ? err : -ENOSPC;
			if (dirdata && !meta_new(v))
				return -EIO;
			ip->direct[lbn] = v;
			*fresh = true;
		}
		*out = v;
		return 0;
	}
	lbn -= NDIRECT;
	if (lbn < PTRS) {
		err = ptr_root(&ip->ind, alloc);
		if (err || !ip->ind) {
			*out = 0;
			return err;
		}
		return ptr_slot(ip->ind, (u32)lbn, alloc, dirdata, out, fresh);
	}
	lbn -= PTRS;
	if (lbn >= (u64)PTRS * PTRS)
		return -EFBIG;
	err = ptr_root(&ip->dind, alloc);
	if (err || !ip->dind) {
		*out = 0;
		return err;
	}
	err = ptr_slot(ip->dind, (u32)(lbn / PTRS), alloc, true, &ptr, &f);
	if (err || !ptr) {
		*out = 0;
		return err;
	}
	return ptr_slot(ptr, (u32)(lbn % PTRS), alloc, dirdata, out, fresh);
}

/* Clear entry idx of pointer block blk; free it. Returns whether the
 * pointer block is now all zeros. */
static int ptr_clear(u32 blk, u32 idx, bool *empty)
{
	u8 *p = meta(blk);
	u32 v;

	if (!p)
		return -EIO;
	memcpy(&v, p + idx * 4, 4);
	if (v) {
		if (!data_ok(v))
			return -EIO;
		p = meta_w(blk);
		memset(p + idx * 4, 0, 4);
		bfree(v);
	}
	*empty = true;
	for (u32 i = 0; i < PTRS; i++) {
		memcpy(&v, p + i * 4, 4);
		if (v) {
			*empty = false;
			break;
		}
	}
	return 0;
}

/* Free logical block lbn (and pointer blocks that become empty). */
static int bunmap(struct dinode *ip, u64 lbn)
{
	bool empty;
	int err;

	if (lbn < NDIRECT) {
		if (ip->direct[lbn]) {
			if (!data_ok(ip->direct[lbn]))
				return -EIO;
			bfree(ip->direct[lbn]);
			ip->direct[lbn] = 0;
		}
		return 0;
	}
	lbn -= NDIRECT;
	if (lbn < PTRS) {
		if (!ip->ind)
			return 0;
		if (!data_ok(ip->ind))
			return -EIO;
		err = ptr_clear(ip->ind, (u32)lbn, &empty);
		if (!err && empty) {
			bfree(ip->ind);
			ip->ind = 0;
		}
		return err;
	}
	lbn -= PTRS;
	if (!ip->dind || lbn >= (u64)PTRS * PTRS)
		return 0;
	{
		u32 ptr;
		bool f;

		if (!data_ok(ip->dind))
			return -EIO;
		err = ptr_slot(ip->dind, (u32)(lbn / PTRS), false, false, &ptr, &f);
		if (err || !ptr)
			return err;
		err = ptr_clear(ptr, (u32)(lbn % PTRS), &empty);
		if (err || !empty)
			return err;
		err = ptr_clear(ip->dind, (u32)(lbn / PTRS), &empty);
		if (!err && empty) {
			bfree(ip->dind);
			ip->dind = 0;
		}
		return err;
	}
}

/* Zero bytes [from, end of its block) of the file (from inside the file). */
static int zero_tail(struct dinode *ip, u64 from)
{
	u32 off = (u32)(from % BS), pb;
	bool fresh;
	int err;

	if (off == 0)
		return 0;
	err = bmap(ip, from / BS, false, false, &pb, &fresh);
	if (err || !pb)
		return err;
	if (bread(pb, fs.dbuf))
		return -EIO;
	memset(fs.dbuf + off, 0, BS - off);
	return bwrite(pb, fs.dbuf);
}

/* Set the size of inode ino to len, freeing blocks from the end, with
 * commits between blocks. A crash in between leaves a shorter file. */
static int itruncate(u32 ino, u64 len)
{
	struct dinode in;
	int err = iget(ino, &in);
	u64 keep = (len + BS - 1) / BS, last;

	if (err)
		return err;
	if (len > FS_MAX_FILE)
		return -EFBIG;
	if (len < in.size) {
		err = zero_tail(&in, len);
		if (err)
			return err;
	}
	last = (in.size + BS - 1) / BS;
	if (in.size < len) {
		in.size = len;
		in.mtime = in.ctime = now_ns();
		return iput(ino, &in);
	}
	while (last > keep) {
		last--;
		err = bunmap(&in, last);
		if (err)
			return err;
		if (in.size > last * BS)
			in.size = last * BS < len ? len : last * BS;
		in.mtime = in.ctime = now_ns();
		err = iput(ino, &in);
		if (!err)
			err = step();
		if (err || (err = iget(ino, &in)))
			return err;
	}
	in.size = len;
	in.mtime = in.ctime = now_ns();
	return iput(ino, &in);
}

static int open_count(u32 ino)
{
	int n = 0;

	for (int i = 0; i < FS_MAX_OPEN; i++)
		if (fs.fds[i].used && fs.fds[i].ino == ino)
			n++;
	return n;
}

/* Free an inode with nlink 0 and no open descriptors. */
static int irelease(u32 ino)
{
	struct dinode in;
	int err = itruncate(ino, 0);

	if (err || (err = iget(ino, &in)))
		return err;
	memset(&in, 0, sizeof(in));
	err = iput(ino, &in);
	if (!err)
		fs.free_inodes++;
	return err;
}

/* ---- Directories --------------------------------------------------------- */

/* Find name in directory dino: its inode and slot (entry index). */
static int dir_find(u32 dino, const char *name, u32 len, u32 *ino, u64 *slot)
{
	struct dinode d;
	int err = iget(dino, &d);
	u64 nblocks;

	if (err)
		return err;
	nblocks = d.size / BS;
	for (u64 b = 0; b < nblocks; b++) {
		u32 pb;
		bool f;
		const struct dirent *e;

		if ((err = bmap(&d, b, false, false, &pb, &f)))
			return err;
		if (!pb)
			continue;
		e = (const struct dirent *)meta(pb);
		if (!e)
			return -EIO;
		for (u32 i = 0; i < DPB; i++) {
			if (e[i].ino && e[i].namelen == len && memcmp(e[i].name, name, len) == 0) {
				*ino = e[i].ino;
				if (slot)
					*slot = b * DPB + i;
				return 0;
			}
		}
	}
	return -ENOENT;
}

static int dir_entry_w(struct dinode *d, u64 slot, struct dirent **out)
{
	u32 pb;
	bool f;
	int err = bmap(d, slot / DPB, false, false, &pb, &f);
	u8 *p;

	if (err)
		return err;
	if (!pb || !(p = meta_w(pb)))
		return -EIO;
	*out = (struct dirent *)p + slot % DPB;
	return 0;
}

static int dir_add(u32 dino, const char *name, u32 len, u32 ino, u8 type)
{
	struct dinode d;
	int err = iget(dino, &d);
	u64 nblocks, slot = (u64)-1;
	struct dirent *e;

	if (err)
		return err;
	nblocks = d.size / BS;
	for (u64 b = 0; b < nblocks && slot == (u64)-1; b++) {
		u32 pb;
		bool f;
		const struct dirent *es;

		if ((err = bmap(&d, b, false, false, &pb, &f)))
			return err;
		if (!pb)
			continue;
		if (!(es = (const struct dirent *)meta(pb)))
			return -EIO;
		for (u32 i = 0; i < DPB; i++)
			if (!es[i].ino) {
				slot = b * DPB + i;
				break;
			}
	}
	if (slot == (u64)-1) {
		u32 pb;
		bool f;

		if (nblocks >= NDIRECT + PTRS)
			return -ENOSPC;       /* 33152 entries per directory */
		if ((err = bmap(&d, nblocks, true, true, &pb, &f))) {
			iput(dino, &d);     /* keep what was allocated referenced */
			return err;
		}
		d.size += BS;
		slot = nblocks * DPB;
	}
	d.mtime = d.ctime = now_ns();
	if ((err = iput(dino, &d)) || (err = dir_entry_w(&d, slot, &e)))
		return err;
	memset(e, 0, sizeof(*e));
	e->ino = ino;
	e->type = type;
	e->namelen = (u8)len;
	memcpy(e->name, name, len);
	return 0;
}

static int dir_del(u32 dino, u64 slot)
{
	struct dinode d;
	struct dirent *e;
	int err = iget(dino, &d);

	if (err || (err = dir_entry_w(&d, slot, &e)))
		return err;
	memset(e, 0, sizeof(*e));
	d.mtime = d.ctime = now_ns();
	return iput(dino, &d);
}

static int dir_empty(u32 dino)
{
	struct dinode d;
	int err = iget(dino, &d);

	if (err)
		return err;
	for (u64 b = 0; b < d.size / BS; b++) {
		u32 pb;
		bool f;
		const struct dirent *e;

		if ((err = bmap(&d, b, false, false, &pb, &f)))
			return err;
		if (!pb)
			continue;
		if (!(e = (const struct dirent *)meta(pb)))
			return -EIO;
		for (u32 i = 0; i < DPB; i++)
			if (e[i].ino)
				return -ENOTEMPTY;
	}
	return 0;
}

/* ---- Paths --------------------------------------------------------------- */

struct lookup {
	u32 dir;                     /* directory holding the last name */
	u32 ino;                     /* the inode named (0: does not exist) */
	u32 len;                     /* length of the last name; 0 for "/", ".", ".." */
	char name[FS_NAME_MAX + 1];
};

static int parent_of(u32 ino, u32 *out)
{
	struct dinode d;
	int err = iget(ino, &d);

	if (err)
		return err;
	*out = ino == ROOT_INO ? ROOT_INO : d.parent;
	return ino_ok(*out) ? 0 : -EIO;
}

static int resolve(const char *path, struct lookup *lk)
{
	const char *p = path;
	u32 cur = ROOT_INO;
	size_t plen;
	int err;

	if (!path)
		return -EFAULT;
	plen = strnlen(path, FS_PATH_MAX + 1);
	if (plen == 0)
		return -ENOENT;
	if (plen > FS_PATH_MAX)
		return -ENAMETOOLONG;
	lk->dir = ROOT_INO;
	lk->ino = ROOT_INO;
	lk->len = 0;
	lk->name[0] = '\0';
	while (*p) {
		const char *s;
		u32 len;
		struct dinode d;

		while (*p == '/')
			p++;
		if (!*p)
			break;
		s = p;
		while (*p && *p != '/')
			p++;
		len = (u32)(p - s);
		if (len > FS_NAME_MAX)
			return -ENAMETOOLONG;
		/* cur must be an existing directory to look inside. */
		if (!lk->ino)
			return -ENOENT;
		cur = lk->ino;
		if ((err = iget(cur, &d)))
			return err;
		if (!is_dir(&d))
			return -ENOTDIR;
		if (len == 1 && s[0] == '.') {
			lk->dir = cur;
			lk->len = 0;
			continue;
		}
		if (len == 2 && s[0] == '.' && s[1] == '.') {
			if ((err = parent_of(cur, &lk->ino)))
				return err;
			lk->dir = lk->ino;
			lk->len = 0;
			continue;
		}
		lk->dir = cur;
		lk->len = len;
		memcpy(lk->name, s, len);
		lk->name[len] = '\0';
		err = dir_find(cur, s, len, &lk->ino, NULL);
		if (err == -ENOENT)
			lk->ino = 0;
		else if (err)
			return err;
	}
	if (plen && path[plen - 1] == '/' && lk->ino) {
		struct dinode d;

		if ((err = iget(lk->ino, &d)))
			return err;
		if (!is_dir(&d))
			return -ENOTDIR;
	}
	return 0;
}

/* ---- File descriptors ---------------------------------------------------- */

static int check(void)
{
	if (!fs.mounted)
		return -ENODEV;
	return step();
}

/* check() for a call that modifies the file system: a read-only disk
 * answers -EROFS (as Linux on a read-only mount), never an I/O error. */
static int check_w(void)
{
	int err = check();

	return err ? err : fs.ro ? -EROFS : 0;
}

static struct ofile *fd_get(int fd)
{
	if (fd < 0 || fd >= FS_MAX_OPEN || !fs.fds[fd].used)
		return NULL;
	return &fs.fds[fd];
}

int fs_open(const char *path, int flags, int mode)
{
	struct lookup lk;
	struct dinode in;
	int err = check(), acc = flags & FS_O_ACCMODE, fd;

	if (err)
		return err;
	if (acc == 3)
		return -EINVAL;
	for (fd = 0; fd < FS_MAX_OPEN && fs.fds[fd].used; fd++)
		;
	if (fd == FS_MAX_OPEN)
		return -EMFILE;
	if ((err = resolve(path, &lk)))
		return err;
	if (fs.ro && lk.ino && (acc != FS_O_RDONLY || (flags & FS_O_TRUNC))) {
		struct dinode d;

		/* Linux: a directory opened for writing is EISDIR first. */
		if ((err = iget(lk.ino, &d)))
			return err;
		return is_dir(&d) ? -EISDIR : -EROFS;
	}
	if (!lk.ino) {
		if (!(flags & FS_O_CREAT))
			return -ENOENT;
		if (fs.ro)
			return -EROFS;
		if (flags & FS_O_DIRECTORY)
			return -EINVAL;
		if (path[strlen(path) - 1] == '/')
			return -EISDIR;
		if ((err = ialloc(FS_S_IFREG | ((u32)mode & 07777), lk.dir, &lk.ino)))
			return err;
		if ((err = dir_add(lk.dir, lk.name, lk.len, lk.ino, FS_DT_REG))) {
			irelease(lk.ino);
			return err;
		}
		/* The new name is durable before the descriptor exists. */
		if ((err = ns_commit(0)))
			return err;
	} else if ((flags & FS_O_CREAT) && (flags & FS_O_EXCL)) {
		return -EEXIST;
	}
	if ((err = iget(lk.ino, &in)))
		return err;
	if (is_dir(&in)) {
		if (acc != FS_O_RDONLY || (flags & (FS_O_TRUNC | FS_O_CREAT)))
			return -EISDIR;
	} else if (flags & FS_O_DIRECTORY) {
		return -ENOTDIR;
	}
	fs.fds[fd] = (struct ofile){ .used = true, .ino = lk.ino, .flags = (u32)flags };
	if ((flags & FS_O_TRUNC) && acc != FS_O_RDONLY && in.size) {
		fs.fds[fd].wrote = true;
		if ((err = itruncate(lk.ino, 0))) {
			fs.fds[fd].used = false;
			return err;
		}
	}
	return fd;
}

static long do_read(struct ofile *f, u8 *buf, size_t n, u64 off)
{
	struct dinode in;
	int err;
	size_t done = 0;

	if ((f->flags & FS_O_ACCMODE) == FS_O_WRONLY)
		return -EBADF;
	if ((err = iget(f->ino, &in)))
		return err;
	if (is_dir(&in))
		return -EISDIR;
	if (off >= in.size)
		return 0;
	if (n > in.size - off)
		n = (size_t)(in.size - off);
	if (n > 0x7fffffff)
		n = 0x7fffffff;
	while (done < n) {
		u64 pos = off + done;
		u32 boff = (u32)(pos % BS), pb;
		size_t chunk = BS - boff;
		bool fresh;

		if (chunk > n - done)
			chunk = n - done;
		if ((err = bmap(&in, pos / BS, false, false, &pb, &fresh)))
			return done ? (long)done : err;
		if (!pb) {
			memset(buf + done, 0, chunk);
		} else if (boff == 0 && chunk == BS) {
			/* Whole blocks straight into the caller's buffer; take
			 * the physically contiguous run at once. */
			u32 run = 1;
			size_t left = (n - done) / BS;

			while (run < left && run < 64) {
				u32 nb;

				if (bmap(&in, pos / BS + run, false, false, &nb, &fresh) || nb != pb + run)
					break;
				run++;
			}
			if (blk_read(fs.disk, pb * SPB, buf + done, run * BS))
				return done ? (long)done : -EIO;
			chunk = (size_t)run * BS;
		} else {
			if (bread(pb, fs.dbuf))
				return done ? (long)done : -EIO;
			memcpy(buf + done, fs.dbuf + boff, chunk);
		}
		done += chunk;
	}
	return (long)done;
}

/* Whole blocks of file data waiting to be written as one request: they
 * are physically and in the caller's buffer contiguous. Written before any
 * commit (the data must be on the disk before the pointers to it). */
struct run {
	u32 pb, n;
	const u8 *buf;
};

static int run_flush(struct run *r)
{
	u32 n = r->n;

	r->n = 0;
	if (n && blk_write(fs.disk, r->pb * SPB, r->buf, n * BS)) {
		fs.broken = true;      /* the cache points at unwritten data */
		return -EIO;
	}
	return 0;
}

static long do_write(struct ofile *f, const u8 *buf, size_t n, u64 off)
{
	struct dinode in;
	struct run run = { 0, 0, NULL };
	int err = 0;
	size_t done = 0;

	if ((f->flags & FS_O_ACCMODE) == FS_O_RDONLY)
		return -EBADF;
	if (n > 0x7fffffff)
		n = 0x7fffffff;
	if (off > FS_MAX_FILE || n > FS_MAX_FILE - off) {
		if (off >= FS_MAX_FILE)
			return -EFBIG;
		n = (size_t)(FS_MAX_FILE - off);
	}
	f->wrote = true;
	while (done < n) {
		u64 pos = off + done;
		u32 boff = (u32)(pos % BS), pb;
		size_t chunk = BS - boff;
		bool fresh;

		if (chunk > n - done)
			chunk = n - done;
		if (commit_due() && (err = run_flush(&run)))
			break;
		if ((err = step()) || (err = iget(f->ino, &in)))
			break;
		if ((err = bmap(&in, pos / BS, true, false, &pb, &fresh))) {
			iput(f->ino, &in);    /* keep what was allocated */
			break;
		}
		if (chunk == BS) {
			if (run.n && pb == run.pb + run.n && run.n < RUN_MAX) {
				run.n++;
			} else {
				err = run_flush(&run);
				run = (struct run){ pb, 1, buf + done };
			}
		} else {
			if (fresh)
				memset(fs.dbuf, 0, BS);
			else if (bread(pb, fs.dbuf))
				err = -EIO;
			if (!err) {
				memcpy(fs.dbuf + boff, buf + done, chunk);
				err = bwrite(pb, fs.dbuf);
			}
		}
		if (!err)
			done += chunk;
		if (off + done > in.size)
			in.size = off + done;
		in.mtime = in.ctime = now_ns();
		if (iput(f->ino, &in) && !err)
			err = -EIO;
		if (err)
			break;
	}
	if (run_flush(&run))
		return -EIO;
	if (done && ((f->flags & FS_O_DSYNC) || commit_clock() - fs.commit_ns >= COMMIT_NS) &&
	    (err = commit()))
		return err;
	return done ? (long)done : err;
}

long fs_read(int fd, void *buf, size_t n)
{
	struct ofile *f = fd_get(fd);
	long r;
	int err = check();

	if (err)
		return err;
	if (!f)
		return -EBADF;
	r = do_read(f, buf, n, f->pos);
	if (r > 0)
		f->pos += (u64)r;
	return r;
}

long fs_write(int fd, const void *buf, size_t n)
{
	struct ofile *f = fd_get(fd);
	struct dinode in;
	long r;
	int err = check();

	if (err)
		return err;
	if (!f)
		return -EBADF;
	if (f->flags & FS_O_APPEND) {
		if ((err = iget(f->ino, &in)))
			return err;
		f->pos = in.size;
	}
	r = do_write(f, buf, n, f->pos);
	if (r > 0)
		f->pos += (u64)r;
	return r;
}

long fs_pread(int fd, void *buf, size_t n, u64 off)
{
	struct ofile *f = fd_get(fd);
	int err = check();

	if (err)
		return err;
	if (!f)
		return -EBADF;
	return do_read(f, buf, n, off);
}

long fs_pwrite(int fd, const void *buf, size_t n, u64 off)
{
	struct ofile *f = fd_get(fd);
	int err = check();

	if (err)
		return err;
	if (!f)
		return -EBADF;
	return do_write(f, buf, n, off);
}

long long fs_seek(int fd, long long off, int whence)
{
	struct ofile *f = fd_get(fd);
	struct dinode in;
	long long base;
	int err = check();

	if (err)
		return err;
	if (!f)
		return -EBADF;
	switch (whence) {
	case FS_SEEK_SET:
		base = 0;
		break;
	case FS_SEEK_CUR:
		base = (long long)f->pos;
		break;
	case FS_SEEK_END:
		if ((err = iget(f->ino, &in)))
			return err;
		base = (long long)in.size;
		break;
	default:
		return -EINVAL;
	}
	if ((off > 0 && base > (long long)0x7fffffffffffffffll - off) || base + off < 0)
		return -EINVAL;
	f->pos = (u64)(base + off);
	return (long long)f->pos;
}

int fs_fsync(int fd)
{
	int err = check();

	if (err)
		return err;
	if (!fd_get(fd))
		return -EBADF;
	return commit();
}

int fs_sync(void)
{
	int err = check();

	return err ? err : commit();
}

int fs_close(int fd)
{
	struct ofile *f = fd_get(fd);
	struct dinode in;
	u32 ino;
	int err = fs.mounted ? 0 : -ENODEV;
	bool wrote;

	if (err)
		return err;
	if (!f)
		return -EBADF;
	ino = f->ino;
	wrote = f->wrote;
	f->used = false;
	if (fs.broken)
		return -EIO;
	if ((err = iget(ino, &in)))
		return err;
	if (in.nlink == 0 && open_count(ino) == 0) {
		if ((err = irelease(ino)))
			return err;
		return commit();
	}
	return wrote ? commit() : 0;
}

int fs_ftruncate(int fd, u64 len)
{
	struct ofile *f = fd_get(fd);
	struct dinode in;
	int err = check();

	if (err)
		return err;
	if (!f)
		return -EBADF;
	if ((err = iget(f->ino, &in)))
		return err;
	if (is_dir(&in))
		return -EISDIR;
	if ((f->flags & FS_O_ACCMODE) == FS_O_RDONLY)
		return -EINVAL;
	f->wrote = true;
	return itruncate(f->ino, len);
}

int fs_truncate(const char *path, u64 len)
{
	struct lookup lk;
	struct dinode in;
	int err = check_w();

	if (err || (err = resolve(path, &lk)))
		return err;
	if (!lk.ino)
		return -ENOENT;
	if ((err = iget(lk.ino, &in)))
		return err;
	if (is_dir(&in))
		return -EISDIR;
	return itruncate(lk.ino, len);
}

static void fill_stat(u32 ino, const struct dinode *in, struct fs_stat *st)
{
	st->ino = ino;
	st->size = in->size;
	st->mode = in->mode;
	st->nlink = is_dir(in) ? 2 : in->nlink;
	st->mtime_ns = in->mtime;
	st->ctime_ns = in->ctime;
}

int fs_stat(const char *path, struct fs_stat *st)
{
	struct lookup lk;
	struct dinode in;
	int err = check();

	if (err || (err = resolve(path, &lk)))
		return err;
	if (!lk.ino)
		return -ENOENT;
	if ((err = iget(lk.ino, &in)))
		return err;
	fill_stat(lk.ino, &in, st);
	return 0;
}

int fs_fstat(int fd, struct fs_stat *st)
{
	struct ofile *f = fd_get(fd);
	struct dinode in;
	int err = check();

	if (err)
		return err;
	if (!f)
		return -EBADF;
	if ((err = iget(f->ino, &in)))
		return err;
	fill_stat(f->ino, &in, st);
	return 0;
}

int fs_futimens(int fd, u64 mtime_ns)
{
	struct ofile *f = fd_get(fd);
	struct dinode in;
	int err = check_w();

	if (err)
		return err;
	if (!f)
		return -EBADF;
	if ((err = iget(f->ino, &in)))
		return err;
	in.mtime = mtime_ns;
	in.ctime = now_ns();
	f->wrote = true;
	return iput(f->ino, &in);
}

int fs_mkdir(const char *path, int mode)
{
	struct lookup lk;
	u32 ino;
	int err = check_w();

	if (err || (err = resolve(path, &lk)))
		return err;
	if (lk.ino)
		return -EEXIST;
	if ((err = ialloc(FS_S_IFDIR | ((u32)mode & 07777), lk.dir, &ino)))
		return err;
	if ((err = dir_add(lk.dir, lk.name, lk.len, ino, FS_DT_DIR))) {
		irelease(ino);
		return err;
	}
	return ns_commit(0);
}

/* Drop one name of inode ino; free it now if nothing holds it. */
static int unlink_ino(u32 ino)
{
	struct dinode in;
	int err = iget(ino, &in);

	if (err)
		return err;
	in.nlink = 0;
	in.ctime = now_ns();
	if ((err = iput(ino, &in)))
		return err;
	return open_count(ino) ? 0 : irelease(ino);
}

static int remove_name(const char *path, bool dir)
{
	struct lookup lk;
	struct dinode in;
	u64 slot;
	u32 ino;
	int err = check_w();

	if (err || (err = resolve(path, &lk)))
		return err;
	if (!lk.ino)
		return -ENOENT;
	if (lk.len == 0)
		return lk.ino == ROOT_INO ? -EBUSY : -EINVAL;
	if ((err = iget(lk.ino, &in)))
		return err;
	if (dir && !is_dir(&in))
		return -ENOTDIR;
	if (!dir && is_dir(&in))
		return -EISDIR;
	if (dir && (err = dir_empty(lk.ino)))
		return err;
	if ((err = dir_find(lk.dir, lk.name, lk.len, &ino, &slot)))
		return err;
	if ((err = dir_del(lk.dir, slot)))
		return err;
	return ns_commit(unlink_ino(lk.ino));
}

int fs_unlink(const char *path)
{
	return remove_name(path, false);
}

int fs_rmdir(const char *path)
{
	return remove_name(path, true);
}

int fs_rename(const char *from, const char *to)
{
	struct lookup a, b;
	struct dinode ain, bin;
	u64 aslot, bslot;
	u32 x;
	int err = check_w();

	if (err || (err = resolve(from, &a)) || (err = resolve(to, &b)))
		return err;
	if (!a.ino)
		return -ENOENT;
	if (a.len == 0 || (b.len == 0 && b.ino))
		return a.ino == ROOT_INO || b.ino == ROOT_INO ? -EBUSY : -EINVAL;
	if ((err = iget(a.ino, &ain)))
		return err;
	if (b.ino == a.ino)
		return 0;
	if (is_dir(&ain)) {
		/* Not into itself or below it. */
		u32 depth = 0;

		for (x = b.dir;; depth++) {
			if (x == a.ino || depth > fs.sb.inodes)
				return -EINVAL;
			if (x == ROOT_INO)
				break;
			if ((err = parent_of(x, &x)))
				return err;
		}
	}
	if (b.ino) {
		if ((err = iget(b.ino, &bin)))
			return err;
		if (is_dir(&ain) && !is_dir(&bin))
			return -ENOTDIR;
		if (!is_dir(&ain) && is_dir(&bin))
			return -EISDIR;
		if (is_dir(&bin) && (err = dir_empty(b.ino)))
			return err;
	} else if (to[strlen(to) - 1] == '/' && !is_dir(&ain)) {
		return -ENOTDIR;
	}
	/* One transaction (no step() inside): the new name, the old name gone. */
	if ((err = dir_find(a.dir, a.name, a.len, &x, &aslot)))
		return err;
	if (b.ino) {
		struct dirent *e;
		struct dinode d;

		if ((err = dir_find(b.dir, b.name, b.len, &x, &bslot)) || (err = iget(b.dir, &d)) ||
		    (err = dir_entry_w(&d, bslot, &e)))
			return err;
		e->ino = a.ino;
		e->type = is_dir(&ain) ? FS_DT_DIR : FS_DT_REG;
		d.mtime = d.ctime = now_ns();
		if ((err = iput(b.dir, &d)))
			return err;
	} else if ((err = dir_add(b.dir, b.name, b.len, a.ino,
				  is_dir(&ain) ? FS_DT_DIR : FS_DT_REG))) {
		return err;
	}
	if ((err = dir_del(a.dir, aslot)))
		return err;
	if ((err = iget(a.ino, &ain)))
		return err;
	ain.parent = b.dir;
	ain.ctime = now_ns();
	if ((err = iput(a.ino, &ain)))
		return err;
	/* The replaced file goes afterwards (a crash leaves an orphan that
	 * the next mount frees); then the commit that makes it durable. */
	return ns_commit(b.ino ? unlink_ino(b.ino) : 0);
}

int fs_readdir(int dirfd, u64 *cookie, char *name, size_t namesz, u64 *ino, u32 *type)
{
	struct ofile *f = fd_get(dirfd);
	struct dinode d;
	int err = check();
	u64 c;

	if (err)
		return err;
	if (!f)
		return -EBADF;
	if ((err = iget(f->ino, &d)))
		return err;
	if (!is_dir(&d))
		return -ENOTDIR;
	c = *cookie;
	if (c < 2) {
		u32 target = f->ino;

		if (c == 1 && (err = parent_of(f->ino, &target)))
			return err;
		if (namesz < c + 2)
			return -ERANGE;
		memcpy(name, "..", c + 1);
		name[c + 1] = '\0';
		*ino = target;
		*type = FS_DT_DIR;
		*cookie = c + 1;
		return 1;
	}
	for (u64 slot = c - 2; slot < d.size / BS * DPB; slot++) {
		u32 pb;
		bool fr;
		const struct dirent *e;

		if ((err = bmap(&d, slot / DPB, false, false, &pb, &fr)))
			return err;
		if (!pb) {
			slot = (slot / DPB + 1) * DPB - 1;
			continue;
		}
		if (!(e = (const struct dirent *)meta(pb)))
			return -EIO;
		e += slot % DPB;
		if (!e->ino)
			continue;
		if (e->namelen > FS_NAME_MAX)
			return -EIO;
		if (namesz < (size_t)e->namelen + 1)
			return -ERANGE;
		memcpy(name, e->name, e->namelen);
		name[e->namelen] = '\0';
		*ino = e->ino;
		*type = e->type == FS_DT_DIR ? FS_DT_DIR : FS_DT_REG;
		*cookie = slot + 3;
		return 1;
	}
	*cookie = 2 + d.size / BS * DPB;
	return 0;
}

/* ---- Unsupported --------------------------------------------------------- */

int fs_link(const char *from, const char *to)
{
	(void)from;
	(void)to;
	return fs.mounted ? -EPERM : -ENODEV;
}

int fs_symlink(const char *target, const char *path)
{
	(void)target;
	(void)path;
	return fs.mounted ? -EPERM : -ENODEV;
}

int fs_mknod(const char *path, int mode)
{
	(void)path;
	(void)mode;
	return fs.mounted ? -EPERM : -ENODEV;
}

int fs_readlink(const char *path, char *buf, size_t n)
{
	struct fs_stat st;
	int err = fs_stat(path, &st);

	(void)buf;
	(void)n;
	return err ? err : -EINVAL;
}

/* ---- Mount --------------------------------------------------------------- */

static int sb_check(const struct dsuper *s, u32 disk_blocks)
{
	u64 bits = (u64)s->bblocks * BS * 8;

	if (memcmp(s->magic, SB_MAGIC, 8) != 0 || s->version != 1 || s->block_size != BS)
		return -EINVAL;
	if (s->blocks > disk_blocks || s->jstart != 1 || s->jblocks < 8 ||
	    s->bstart != s->jstart + s->jblocks || s->bblocks == 0 || bits < s->blocks ||
	    s->istart != s->bstart + s->bblocks || s->iblocks == 0 ||
	    s->inodes != s->iblocks * IPB || s->dstart != s->istart + s->iblocks ||
	    s->dstart >= s->blocks || s->root != ROOT_INO)
		return -EINVAL;
	return 0;
}

/* The kit's idle hook while mounted: the guest is about to wait (for at
 * most wait_ns, or IDLE_FOREVER). Nothing pending: nothing to do. Else
 * commit if the last commit is COMMIT_NS old, or will be before a bounded
 * wait ends; else ask to run again when it will be (a wait with no bound
 * gets the timer for that). Only ever between API calls (the block
 * driver's own waits are quiet), so the metadata is consistent. A failed
 * commit marks the file system broken: the next call says -EIO. */
static u64 fs_idle(u64 wait_ns)
{
	u64 since;

	if (!fs.mounted || fs.broken || (fs.ndirty == 0 && fs.npending == 0))
		return 0;
	since = commit_clock() - fs.commit_ns;
	if (since >= COMMIT_NS || (wait_ns != IDLE_FOREVER && wait_ns >= COMMIT_NS - since)) {
		if (commit() == 0)
			fs.cnt.idle_commits++;
		return 0;
	}
	return COMMIT_NS - since;
}

int fs_mount(unsigned blk_index)
{
	struct dinode in;
	u32 sectors;
	int err;

	if (fs.mounted)
		return -EBUSY;
	if (blk_index >= (unsigned)blk_count() || !(sectors = blk_sectors((int)blk_index)))
		return -ENODEV;
	if (!fs.dbuf) {
		u8 *mem = alloc_pages(CACHE_N + 1 + JSTAGE);

		if (!mem)
			return -ENOMEM;
		for (int i = 0; i < CACHE_N; i++)
			fs.cache[i].data = mem + (size_t)i * BS;
		fs.dbuf = mem + (size_t)CACHE_N * BS;
		fs.jbuf = fs.dbuf + BS;
	}
	for (int i = 0; i < CACHE_N; i++) {
		fs.cache[i].blk = 0;
		fs.cache[i].dirty = false;
	}
	memset(fs.fds, 0, sizeof(fs.fds));
	memset(&fs.cnt, 0, sizeof(fs.cnt));
	fs.ndirty = fs.npending = 0;
	fs.broken = false;
	fs.disk = (int)blk_index;
	fs.ro = blk_readonly(fs.disk);
	if (bread(0, fs.jbuf))
		return -EIO;
	memcpy(&fs.sb, fs.jbuf, sizeof(fs.sb));
	if ((err = sb_check(&fs.sb, sectors / SPB)))
		return err;
	{
		u32 crc;

		memcpy(&crc, fs.jbuf + BS - 4, 4);
		if (crc != crc32(0, fs.jbuf, BS - 4))
			return -EINVAL;
	}
	if ((err = replay()))
		return err;
	fs.mounted = true;
	fs.commit_ns = commit_clock();
	fs.balloc_hint = fs.sb.dstart;
	fs.ialloc_hint = ROOT_INO + 1;
	/* Count the free blocks and inodes; free the orphans. */
	fs.free_blocks = 0;
	for (u32 b = 0; b < fs.sb.bblocks; b++) {
		const u8 *p = meta(fs.sb.bstart + b);
		u64 first = (u64)b * BS * 8;

		if (!p)
			goto eio;
		for (u32 i = 0; i < BS && first + (u64)i * 8 < fs.sb.blocks; i++) {
			u64 lo = first + (u64)i * 8;

			if (lo >= fs.sb.dstart && lo + 8 <= fs.sb.blocks) {
				fs.free_blocks += 8 - (u32)__builtin_popcount(p[i]);
				continue;
			}
			for (u32 k = 0; k < 8; k++)
				if (lo + k >= fs.sb.dstart && lo + k < fs.sb.blocks && !(p[i] & (1u << k)))
					fs.free_blocks++;
		}
	}
	if (iget(ROOT_INO, &in) || !is_dir(&in)) {
		fs.mounted = false;
		return -EINVAL;
	}
	fs.free_inodes = 0;
	for (u32 ino = ROOT_INO + 1; ino < fs.sb.inodes; ino++) {
		const u8 *p = meta(fs.sb.istart + ino / IPB);
		u32 mode, nlink;

		if (!p)
			goto eio;
		memcpy(&mode, p + (ino % IPB) * sizeof(in), 4);
		memcpy(&nlink, p + (ino % IPB) * sizeof(in) + 4, 4);
		if (mode == 0) {
			fs.free_inodes++;
		} else if (nlink == 0 && !fs.ro) {
			/* An orphan (unlinked while open) is freed now; on a
			 * read-only disk it stays until a writable mount. */
			if (irelease(ino))
				goto eio;
			fs.cnt.orphans++;
			if ((err = step()))
				goto fail;
		}
	}
	if ((err = commit()))
		goto fail;
	idle_hook_set(fs_idle);
	return 0;
eio:
	err = -EIO;
fail:
	fs.mounted = false;
	return err;
}

int fs_umount(void)
{
	int err;

	if (!fs.mounted)
		return -ENODEV;
	idle_hook_set(NULL);
	err = commit();
	memset(fs.fds, 0, sizeof(fs.fds));
	fs.mounted = false;
	return err;
}

int fs_statfs(struct fs_statfs *st)
{
	int err = check();

	if (err)
		return err;
	st->block_size = BS;
	st->blocks = fs.sb.blocks - fs.sb.dstart;
	st->free_blocks = fs.free_blocks;
	st->inodes = fs.sb.inodes - 1;
	st->free_inodes = fs.free_inodes;
	return 0;
}

void fs_counters(struct fs_counters *out)
{
	*out = fs.cnt;
}

const char *lg_errname(int err)
{
	static const struct { int n; const char *s; } names[] = {
		{ EPERM, "EPERM" }, { ENOENT, "ENOENT" }, { EIO, "EIO" }, { EBADF, "EBADF" },
		{ ENOMEM, "ENOMEM" }, { EBUSY, "EBUSY" }, { EEXIST, "EEXIST" },
		{ ENODEV, "ENODEV" }, { ENOTDIR, "ENOTDIR" }, { EISDIR, "EISDIR" },
		{ EINVAL, "EINVAL" }, { EMFILE, "EMFILE" }, { EFBIG, "EFBIG" },
		{ ENOSPC, "ENOSPC" }, { ERANGE, "ERANGE" }, { ENAMETOOLONG, "ENAMETOOLONG" },
		{ ENOTEMPTY, "ENOTEMPTY" }, { EFAULT, "EFAULT" }, { ENOTSUP, "ENOTSUP" },
		{ EROFS, "EROFS" },
	};

	if (err < 0)
		err = -err;
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (names[i].n == err)
			return names[i].s;
	return "E?";
}
