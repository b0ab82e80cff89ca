/*
 * fs.h: a small POSIX-ish file system on an lguest block device ("lgfs").
 * Format: docs/disk-format.md. Host tool: `lguest disk mkfs|ls|put|get`.
 *
 * Every call returns >= 0 on success or a negative Linux errno (kit/errno.h:
 * -ENOENT, ...). Paths are absolute ("/data.db") or relative to "/"; "."
 * and ".." work; names are at most FS_NAME_MAX bytes (no '/', no NUL),
 * paths at most FS_PATH_MAX. One file system is mounted at a time.
 *
 * Durability: file data goes to the disk when fs_write/fs_pwrite return;
 * metadata (sizes, block maps, directories, mtimes) is kept in a bounded
 * cache and committed through the journal by fs_fsync, fs_sync, fs_close
 * of a file that changed, on O_SYNC writes, whenever the cache holds
 * enough changes, and once 5 s have passed since the last commit at the
 * next write or while the guest waits (fs_mount sets the kit's idle hook:
 * sleep_ns/sleep_ms, idle_until, console input). After a crash of the guest or a SIGKILL of the launcher
 * at any moment the file system is consistent, and every byte written
 * before a successful fs_fsync/fs_sync/fs_close is there.
 *
 * Not supported: hard links (fs_link -> -EPERM), symbolic links
 * (fs_symlink -> -EPERM), device nodes, FIFOs and sockets (fs_mknod ->
 * -EPERM), permissions (modes are stored and reported, never enforced).
 * Memory: about 540 KiB of heap, taken by the first fs_mount.
 */
#ifndef LGUEST_KIT_FS_H
#define LGUEST_KIT_FS_H

#include "lguest.h"
#include "errno.h"

#define FS_NAME_MAX   120
#define FS_PATH_MAX   4096
#define FS_MAX_OPEN   64                        /* file descriptors 0..63 */
#define FS_MAX_FILE   ((u64)(12 + 1024 + 1024 * 1024) * 4096)  /* ~4 GiB */

/* fs_open flags: Linux values (FS_O_* always; O_* unless a libc's
 * <fcntl.h> came first, whose numbers may differ). */
#define FS_O_RDONLY    00
#define FS_O_WRONLY    01
#define FS_O_RDWR      02
#define FS_O_ACCMODE   03
#define FS_O_CREAT     0100
#define FS_O_EXCL      0200
#define FS_O_NOCTTY    0400
#define FS_O_TRUNC     01000
#define FS_O_APPEND    02000
#define FS_O_NONBLOCK  04000
#define FS_O_DSYNC     010000
#define FS_O_DIRECTORY 0200000
#define FS_O_NOFOLLOW  0400000
#define FS_O_CLOEXEC   02000000
#define FS_O_SYNC      04010000
#ifndef O_CREAT
#define O_RDONLY    FS_O_RDONLY
#define O_WRONLY    FS_O_WRONLY
#define O_RDWR      FS_O_RDWR
#define O_ACCMODE   FS_O_ACCMODE
#define O_CREAT     FS_O_CREAT
#define O_EXCL      FS_O_EXCL
#define O_NOCTTY    FS_O_NOCTTY
#define O_TRUNC     FS_O_TRUNC
#define O_APPEND    FS_O_APPEND
#define O_NONBLOCK  FS_O_NONBLOCK
#define O_DSYNC     FS_O_DSYNC
#define O_DIRECTORY FS_O_DIRECTORY
#define O_NOFOLLOW  FS_O_NOFOLLOW
#define O_CLOEXEC   FS_O_CLOEXEC
#define O_SYNC      FS_O_SYNC
#endif

/* fs_seek whence. */
#define FS_SEEK_SET 0
#define FS_SEEK_CUR 1
#define FS_SEEK_END 2

/* File types in fs_stat.mode (Linux S_IF* values) and from fs_readdir
 * (Linux DT_* values). */
#define FS_S_IFMT   0170000
#define FS_S_IFDIR  0040000
#define FS_S_IFREG  0100000
#define FS_DT_DIR   4
#define FS_DT_REG   8

struct fs_stat {
	u64 ino;
	u64 size;
	u32 mode;          /* FS_S_IFDIR or FS_S_IFREG | permission bits */
	u32 nlink;         /* 1 for files, 2 for directories */
	u64 mtime_ns;      /* host wall clock, ns since 1970 */
	u64 ctime_ns;
};

/* Mount the file system on kit disk blk_index (0 = the first --block).
 * Replays the journal, frees files that were unlinked while open.
 * -ENODEV no such disk, -EINVAL not an lgfs disk (bad superblock),
 * -EBUSY already mounted, -ENOMEM, -EIO. */
int fs_mount(unsigned blk_index);
/* Commit, close every descriptor and forget the file system. */
int fs_umount(void);

int fs_open(const char *path, int flags, int mode);
long fs_read(int fd, void *buf, size_t n);
long fs_write(int fd, const void *buf, size_t n);
long fs_pread(int fd, void *buf, size_t n, u64 off);
long fs_pwrite(int fd, const void *buf, size_t n, u64 off);
long long fs_seek(int fd, long long off, int whence);
int fs_fsync(int fd);
int fs_close(int fd);
int fs_ftruncate(int fd, u64 len);
int fs_truncate(const char *path, u64 len);
int fs_stat(const char *path, struct fs_stat *st);
int fs_fstat(int fd, struct fs_stat *st);
int fs_mkdir(const char *path, int mode);
int fs_rmdir(const char *path);
int fs_unlink(const char *path);
int fs_rename(const char *from, const char *to);
/* Set a file's mtime (ns since 1970); the ctime becomes "now". */
int fs_futimens(int fd, u64 mtime_ns);
/* Next entry of the directory open as dirfd at *cookie (start with 0):
 * 1 = an entry (name NUL-terminated; *cookie advanced), 0 = the end,
 * -ERANGE if name[namesz] cannot hold it. "." and ".." come first.
 * *type is FS_DT_DIR or FS_DT_REG. */
int fs_readdir(int dirfd, u64 *cookie, char *name, size_t namesz, u64 *ino, u32 *type);
int fs_sync(void);

/* Unsupported on lgfs: always -EPERM (as Linux on such file systems). */
int fs_link(const char *from, const char *to);
int fs_symlink(const char *target, const char *path);
int fs_mknod(const char *path, int mode);
/* No symbolic links: -EINVAL for an existing path, else its lookup error. */
int fs_readlink(const char *path, char *buf, size_t n);

struct fs_statfs {
	u64 block_size;    /* 4096 */
	u64 blocks;        /* data blocks in all */
	u64 free_blocks;
	u64 inodes;
	u64 free_inodes;
};
int fs_statfs(struct fs_statfs *st);

/* Counters, for tests and benchmarks. */
struct fs_counters {
	unsigned long commits;        /* journal transactions written */
	unsigned long journal_blocks; /* blocks they held */
	unsigned long replays;        /* transactions replayed at mount (0/1) */
	unsigned long orphans;        /* files freed at mount */
	unsigned long idle_commits;   /* commits made while the guest waited */
};
void fs_counters(struct fs_counters *out);

#endif /* LGUEST_KIT_FS_H */
