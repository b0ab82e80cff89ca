/*
 * posix/wasi.c: the WASI preview1 calls that wasi-libc makes, defined inside
 * the guest on top of the guest kit and the lguest devices, so that a
 * wasi-libc program becomes an ordinary lguest guest (imports: env.memory,
 * hcall, event, wait and, for the clock, rdtsc; export: start).
 *
 * wasi-libc calls each preview1 function through a symbol
 * __imported_wasi_snapshot_preview1_NAME; defining those here makes the
 * linker use them instead of importing. The contract (which calls exist,
 * what each maps to, what is unsupported) is docs/guest-abi.md §19.
 *
 *   fd 0          console input (console_read; 0 bytes at end of input)
 *   fd 1, 2       console output (console_write)
 *   fd 3          the preopened directory "/": the lgfs file system on the
 *                 first --block disk (kit/fs.h), mounted at the first use
 *   fd 4..        files and directories opened by path_open
 *   argv, environ from the command line (cmdline_split; leading NAME=VALUE
 *                 words are the environment, see env_split below)
 *   clocks        lg_clock_ns / lg_realtime_ns (env.rdtsc: no hypercall)
 *   random_get    the rng device (rng_read)
 *   proc_exit     fs_umount (commit), then lg_exit(status)
 *   heap          sbrk over [__heap_base, RAM size): wasi-libc's malloc
 */
#include <wasi/api.h>
#include "kit.h"
#include "fs.h"

#define WASI(name) __imported_wasi_snapshot_preview1_##name
#define MAX_FDS (FS_MAX_OPEN + 8)
#define MAX_ARGS (LG_COMMAND_LINE_SIZE / 2 + 8)  /* every word of the longest line */
#define PREOPEN_FD 3

/* wasi-libc, declared by hand (its headers and the kit's do not mix). */
void exit(int status);
noreturn void abort(void);
int __main_void(void);
void *aligned_alloc(size_t align, size_t size);

/* argv[0]: the program's name, which a build may define (a strong
 * definition beats this one; guests/posix/build.ts and `lguest cc` do). */
__attribute__((weak)) const char *lguest_argv0 = "a.out";

enum fd_kind { FD_FREE, FD_CONSOLE_IN, FD_CONSOLE_OUT, FD_PREOPEN, FD_FILE, FD_DIR };

struct wfd {
	u8 kind;
	u16 fdflags;                 /* WASI fdflags given at open */
	int fs;                      /* kit fs descriptor (FD_FILE, FD_DIR) */
	char *path;                  /* FD_DIR: its absolute path (for *at) */
};

static struct wfd fds[MAX_FDS] = {
	[0] = { FD_CONSOLE_IN, 0, -1, NULL },
	[1] = { FD_CONSOLE_OUT, __WASI_FDFLAGS_APPEND, -1, NULL },
	[2] = { FD_CONSOLE_OUT, __WASI_FDFLAGS_APPEND, -1, NULL },
	[3] = { FD_PREOPEN, 0, -1, NULL },
};

/* ---- errno ----------------------------------------------------------------- */

/* A kit (Linux) errno, negative or positive, as a WASI errno. */
static int32_t werr(long e)
{
	if (e < 0)
		e = -e;
	switch (e) {
	case 0: return __WASI_ERRNO_SUCCESS;
	case LG_EPERM: return __WASI_ERRNO_PERM;
	case LG_ENOENT: return __WASI_ERRNO_NOENT;
	case LG_EINTR: return __WASI_ERRNO_INTR;
	case LG_EIO: return __WASI_ERRNO_IO;
	case LG_ENXIO: return __WASI_ERRNO_NXIO;
	case LG_E2BIG: return __WASI_ERRNO_2BIG;
	case LG_EBADF: return __WASI_ERRNO_BADF;
	case LG_EAGAIN: return __WASI_ERRNO_AGAIN;
	case LG_ENOMEM: return __WASI_ERRNO_NOMEM;
	case LG_EACCES: return __WASI_ERRNO_ACCES;
	case LG_EFAULT: return __WASI_ERRNO_FAULT;
	case LG_EBUSY: return __WASI_ERRNO_BUSY;
	case LG_EEXIST: return __WASI_ERRNO_EXIST;
	case LG_EXDEV: return __WASI_ERRNO_XDEV;
	case LG_ENODEV: return __WASI_ERRNO_NODEV;
	case LG_ENOTDIR: return __WASI_ERRNO_NOTDIR;
	case LG_EISDIR: return __WASI_ERRNO_ISDIR;
	case LG_EINVAL: return __WASI_ERRNO_INVAL;
	case LG_ENFILE: return __WASI_ERRNO_NFILE;
	case LG_EMFILE: return __WASI_ERRNO_MFILE;
	case LG_ENOTTY: return __WASI_ERRNO_NOTTY;
	case LG_ETXTBSY: return __WASI_ERRNO_TXTBSY;
	case LG_EFBIG: return __WASI_ERRNO_FBIG;
	case LG_ENOSPC: return __WASI_ERRNO_NOSPC;
	case LG_ESPIPE: return __WASI_ERRNO_SPIPE;
	case LG_EROFS: return __WASI_ERRNO_ROFS;
	case LG_EMLINK: return __WASI_ERRNO_MLINK;
	case LG_EPIPE: return __WASI_ERRNO_PIPE;
	case LG_EDOM: return __WASI_ERRNO_DOM;
	case LG_ERANGE: return __WASI_ERRNO_RANGE;
	case LG_EDEADLK: return __WASI_ERRNO_DEADLK;
	case LG_ENAMETOOLONG: return __WASI_ERRNO_NAMETOOLONG;
	case LG_ENOLCK: return __WASI_ERRNO_NOLCK;
	case LG_ENOSYS: return __WASI_ERRNO_NOSYS;
	case LG_ENOTEMPTY: return __WASI_ERRNO_NOTEMPTY;
	case LG_ELOOP: return __WASI_ERRNO_LOOP;
	case LG_EOVERFLOW: return __WASI_ERRNO_OVERFLOW;
	case LG_EILSEQ: return __WASI_ERRNO_ILSEQ;
	case LG_ENOTSUP: return __WASI_ERRNO_NOTSUP;
	default: return __WASI_ERRNO_IO;
	}
}

/* ---- the heap: sbrk for wasi-libc's malloc --------------------------------- */

/* RAM size: lg_mem once booted; before (wasi-libc's constructors run
 * before LGUEST_INIT) straight from the e820 entry on page 0. */
static uintptr_t ram_top(void)
{
	return lg_mem ? lg_mem : *(volatile u32 *)0x2D8;
}

void *sbrk(intptr_t increment)
{
	static uintptr_t brk;

	if (!brk)
		brk = ALIGN_UP(arch_heap_start(), (uintptr_t)16);
	if (increment < 0 || (uintptr_t)increment > ram_top() - brk)
		return (void *)-1;
	brk += (uintptr_t)increment;
	return (void *)(brk - (uintptr_t)increment);
}

/* The kit's page allocator (the fs and net drivers use it), on malloc. */
void *alloc_pages(size_t npages)
{
	void *p;

	if (npages == 0 || npages > ram_top() / LGUEST_PAGE_SIZE)
		return NULL;
	p = aligned_alloc(LGUEST_PAGE_SIZE, npages * LGUEST_PAGE_SIZE);
	if (p)
		memset(p, 0, npages * LGUEST_PAGE_SIZE);
	return p;
}

/* ---- argv and environ --------------------------------------------------------- */

static char word_buf[LG_COMMAND_LINE_SIZE];
static char *words[MAX_ARGS];
static char **args, **envs;
static int nargs, nenvs;
static bool split_done;

static bool is_assignment(const char *w)
{
	const char *p = w;

	if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || *p == '_'))
		return false;
	while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || *p == '_' ||
	       (*p >= '0' && *p <= '9'))
		p++;
	return *p == '=';
}

/* The command line's words: leading NAME=VALUE words are the environment;
 * a word "--" ends them (and is dropped); the rest are argv[1..]. argv[0]
 * is the program's name. words[0] is kept free for it. */
static void env_split(void)
{
	int n, i = 1;

	if (split_done)
		return;
	split_done = true;
	n = cmdline_split(lg_cmdline ? lg_cmdline : "", word_buf, sizeof(word_buf),
			  words + 1, MAX_ARGS - 2);
	if (n < 0)
		n = 0;
	n += 1;
	while (i < n && is_assignment(words[i]))
		i++;
	envs = words + 1;
	nenvs = i - 1;
	if (i < n && strcmp(words[i], "--") == 0)
		i++;
	/* argv[0] goes just before the first argument, where the last
	 * NAME=VALUE (or the "--") was: keep the environment apart first */
	{
		static char *env_copy[MAX_ARGS];

		memcpy(env_copy, envs, nenvs * sizeof(char *));
		envs = env_copy;
	}
	args = words + i - 1;
	args[0] = (char *)lguest_argv0;
	nargs = n - i + 1;
	/* HOME=/ unless the command line set HOME */
	for (i = 0; i < nenvs; i++)
		if (strncmp(envs[i], "HOME=", 5) == 0)
			return;
	envs[nenvs++] = (char *)"HOME=/";
}

static size_t strings_size(char **v, int n)
{
	size_t s = 0;

	for (int i = 0; i < n; i++)
		s += strlen(v[i]) + 1;
	return s;
}

static void strings_copy(char **v, int n, u32 *ptrs, char *buf)
{
	for (int i = 0; i < n; i++) {
		size_t len = strlen(v[i]) + 1;

		ptrs[i] = lg_pa(buf);
		memcpy(buf, v[i], len);
		buf += len;
	}
}

int32_t WASI(args_sizes_get)(u32 *argc, u32 *size)
{
	env_split();
	*argc = nargs;
	*size = strings_size(args, nargs);
	return 0;
}

int32_t WASI(args_get)(u32 *argv, char *buf)
{
	env_split();
	strings_copy(args, nargs, argv, buf);
	return 0;
}

int32_t WASI(environ_sizes_get)(u32 *count, u32 *size)
{
	env_split();
	*count = nenvs;
	*size = strings_size(envs, nenvs);
	return 0;
}

int32_t WASI(environ_get)(u32 *env, char *buf)
{
	env_split();
	strings_copy(envs, nenvs, env, buf);
	return 0;
}

/* ---- the file system --------------------------------------------------------- */

static int mount_err = 1;        /* 1: not tried yet; 0 mounted; < 0 why not */
static char path_buf[FS_PATH_MAX + 1];
static char path_buf2[FS_PATH_MAX + 1];

/* A hint for the user, through the launcher (CRASH + LGUEST_CRASH_HINT,
 * docs/guest-abi.md §11): a line on lguest's stderr, never in the program's
 * output; the launcher writes the text and shows arg only as data. */
static void lg_hint(u32 hint, const char *arg)
{
	static char msg[128];
	size_t n = strlen(arg);

	if (n > sizeof(msg) - 1)
		n = sizeof(msg) - 1;
	memcpy(msg, arg, n);
	msg[n] = 0;
	hcall(LHCALL_CRASH, lg_pa(msg), LGUEST_CRASH_HINT, hint);
}

static int fs_ready(void)
{
	if (mount_err == 1) {
		mount_err = fs_mount(0);
		if (mount_err == -LG_EINVAL)
			lg_hint(LG_HINT_NO_LGFS, "");
		if (mount_err == -LG_ENODEV && blk_count() > 0) {
			lg_hint(LG_HINT_EMPTY_DISK, "");
			mount_err = -LG_EINVAL;  /* a disk, not none: no "no disk" line */
		}
	}
	return mount_err;
}

/*
 * Without a disk (no --block) the user is told once what to do, in a line
 * on lguest's stderr (not the program's): at the first call that would have
 * changed a file (it cannot succeed without a disk), or when the program
 * exits with a non-zero status after a file that one of its arguments names
 * was not found (lua /script.lua, sqlite3 /data.db). Other look-ups that
 * find nothing are the program's business (sqlite3 probing /.sqliterc and
 * ":memory:"). docs/guest-abi.md §19.
 */
static char nodisk_path[96];     /* the path the line names */
static bool nodisk_told;

static void nodisk_hint(void)
{
	nodisk_told = true;
	lg_hint(LG_HINT_NO_DISK, nodisk_path);
}

/* p without leading "/" and "./" (the working directory is "/"). */
static const char *path_tail(const char *p)
{
	for (;;) {
		if (p[0] == '/')
			p++;
		else if (p[0] == '.' && p[1] == '/')
			p += 2;
		else
			return p;
	}
}

/* Whether an argument names the file at path ("/a.db", "a.db", "./a.db"). */
static bool named_by_argv(const char *path)
{
	const char *t = path_tail(path);

	env_split();
	for (int i = 1; i < nargs; i++)
		if (*t && strcmp(path_tail(args[i]), t) == 0)
			return true;
	return false;
}

/* Without a file system "/" is an empty, read-only directory: ENOENT for
 * what is looked up, EROFS for what would be made or changed. */
static int32_t no_fs(bool modify)
{
	if (mount_err == -LG_ENODEV && !nodisk_told && (modify || !nodisk_path[0]) &&
	    (modify || named_by_argv(path_buf))) {
		const char *t = path_tail(path_buf);
		size_t n = strlen(t), max = sizeof(nodisk_path) - 2;

		nodisk_path[0] = '/';
		if (n > max) {
			memcpy(nodisk_path + 1, t, max - 3);
			memcpy(nodisk_path + 1 + max - 3, "...", 4);
		} else {
			memcpy(nodisk_path + 1, t, n + 1);
		}
		if (modify)
			nodisk_hint();
	}
	return modify ? __WASI_ERRNO_ROFS : __WASI_ERRNO_NOENT;
}

static struct wfd *get_fd(u32 fd)
{
	if (fd >= MAX_FDS || fds[fd].kind == FD_FREE)
		return NULL;
	return &fds[fd];
}

static int new_fd(void)
{
	for (int i = PREOPEN_FD + 1; i < MAX_FDS; i++)
		if (fds[i].kind == FD_FREE)
			return i;
	return -1;
}


/* dirfd + relative path -> absolute path in out (NUL-terminated). */
static int32_t resolve(u32 dirfd, const char *path, u32 len, char *out)
{
	struct wfd *d = get_fd(dirfd);
	const char *base;
	size_t bl;

	if (!d)
		return __WASI_ERRNO_BADF;
	if (d->kind == FD_PREOPEN)
		base = "";
	else if (d->kind == FD_DIR)
		base = d->path;
	else
		return __WASI_ERRNO_NOTDIR;
	if (memchr(path, 0, len))
		return __WASI_ERRNO_INVAL;
	bl = strlen(base);
	if (bl + 1 + len > FS_PATH_MAX)
		return __WASI_ERRNO_NAMETOOLONG;
	memcpy(out, base, bl);
	out[bl] = '/';
	memcpy(out + bl + 1, path, len);
	out[bl + 1 + len] = 0;
	return 0;
}

static u8 filetype_of(u32 mode)
{
	switch (mode & FS_S_IFMT) {
	case FS_S_IFDIR: return __WASI_FILETYPE_DIRECTORY;
	case FS_S_IFREG: return __WASI_FILETYPE_REGULAR_FILE;
	default: return __WASI_FILETYPE_UNKNOWN;
	}
}

static void to_filestat(const struct fs_stat *st, __wasi_filestat_t *out)
{
	memset(out, 0, sizeof(*out));
	out->dev = 1;
	out->ino = st->ino;
	out->filetype = filetype_of(st->mode);
	out->nlink = st->nlink;
	out->size = st->size;
	out->atim = st->mtime_ns;
	out->mtim = st->mtime_ns;
	out->ctim = st->ctime_ns;
}

static void root_filestat(__wasi_filestat_t *out)
{
	struct fs_stat st;

	if (fs_ready() == 0 && fs_stat("/", &st) == 0) {
		to_filestat(&st, out);
		return;
	}
	memset(out, 0, sizeof(*out));
	out->dev = 1;
	out->ino = 1;
	out->filetype = __WASI_FILETYPE_DIRECTORY;
	out->nlink = 2;
}

int32_t WASI(fd_prestat_get)(u32 fd, __wasi_prestat_t *out)
{
	if (fd != PREOPEN_FD || fds[fd].kind != FD_PREOPEN)
		return __WASI_ERRNO_BADF;
	out->tag = __WASI_PREOPENTYPE_DIR;
	out->u.dir.pr_name_len = 1;
	return 0;
}

int32_t WASI(fd_prestat_dir_name)(u32 fd, char *buf, u32 len)
{
	if (fd != PREOPEN_FD || fds[fd].kind != FD_PREOPEN)
		return __WASI_ERRNO_BADF;
	if (len < 1)
		return __WASI_ERRNO_NAMETOOLONG;
	buf[0] = '/';
	return 0;
}

int32_t WASI(path_open)(u32 dirfd, u32 dirflags, const char *path, u32 len, u32 oflags,
			 u64 rights, u64 rights_inh, u32 fdflags, u32 *out)
{
	int32_t e = resolve(dirfd, path, len, path_buf);
	int flags = 0, fd, r;
	bool rd = rights & (__WASI_RIGHTS_FD_READ | __WASI_RIGHTS_FD_READDIR);
	bool wr = rights & (__WASI_RIGHTS_FD_WRITE | __WASI_RIGHTS_FD_ALLOCATE |
			    __WASI_RIGHTS_FD_FILESTAT_SET_SIZE);
	struct fs_stat st;

	(void)dirflags;
	(void)rights_inh;
	if (e)
		return e;
	if (fs_ready() != 0) {
		/* no file system: "/" itself can still be opened as a directory */
		if (strcmp(path_buf, "/") && strcmp(path_buf, "/.") && strcmp(path_buf, "//"))
			return no_fs(oflags & __WASI_OFLAGS_CREAT);
		if (wr || (oflags & (__WASI_OFLAGS_CREAT | __WASI_OFLAGS_TRUNC)))
			return __WASI_ERRNO_ISDIR;
		fd = new_fd();
		if (fd < 0)
			return __WASI_ERRNO_MFILE;
		fds[fd] = (struct wfd){ FD_DIR, 0, -1, NULL };
		*out = fd;
		return 0;
	}
	flags = wr ? (rd ? FS_O_RDWR : FS_O_WRONLY) : FS_O_RDONLY;
	if (oflags & __WASI_OFLAGS_CREAT)
		flags |= FS_O_CREAT;
	if (oflags & __WASI_OFLAGS_EXCL)
		flags |= FS_O_EXCL;
	if (oflags & __WASI_OFLAGS_TRUNC)
		flags |= FS_O_TRUNC;
	if (oflags & __WASI_OFLAGS_DIRECTORY)
		flags |= FS_O_DIRECTORY;
	if (fdflags & __WASI_FDFLAGS_APPEND)
		flags |= FS_O_APPEND;
	if (fdflags & (__WASI_FDFLAGS_SYNC | __WASI_FDFLAGS_DSYNC | __WASI_FDFLAGS_RSYNC))
		flags |= FS_O_SYNC;
	fd = new_fd();
	if (fd < 0)
		return __WASI_ERRNO_MFILE;
	r = fs_open(path_buf, flags, 0666);
	if (r < 0)
		return werr(r);
	if (fs_fstat(r, &st) == 0 && (st.mode & FS_S_IFMT) == FS_S_IFDIR) {
		size_t n = strlen(path_buf) + 1;
		char *copy = malloc(n);

		if (!copy) {
			fs_close(r);
			return __WASI_ERRNO_NOMEM;
		}
		memcpy(copy, path_buf, n);
		fds[fd] = (struct wfd){ FD_DIR, (u16)fdflags, r, copy };
	} else {
		fds[fd] = (struct wfd){ FD_FILE, (u16)fdflags, r, NULL };
	}
	*out = fd;
	return 0;
}

int32_t WASI(fd_close)(u32 fd)
{
	struct wfd *f = get_fd(fd);
	int r = 0;

	if (!f)
		return __WASI_ERRNO_BADF;
	if (f->fs >= 0)
		r = fs_close(f->fs);
	free(f->path);
	*f = (struct wfd){ FD_FREE, 0, -1, NULL };
	return werr(r);
}

int32_t WASI(fd_renumber)(u32 from, u32 to)
{
	struct wfd *f = get_fd(from);

	if (!f || to >= MAX_FDS || fds[to].kind == FD_FREE)
		return __WASI_ERRNO_BADF;
	if (from == to)
		return 0;
	WASI(fd_close)(to);
	fds[to] = *f;
	*f = (struct wfd){ FD_FREE, 0, -1, NULL };
	return 0;
}

/*
 * At a terminal (console features IN_TTY and OUT_TTY) the launcher's
 * terminal is in cbreak mode and echoes nothing, so standard input gets a
 * small line discipline here, as a tty's canonical mode would give (not
 * with IN_LINE: the terminal stayed in line mode, echoes and edits lines
 * itself, and its lines are read as they come): typed
 * characters are echoed, backspace (0x7F, 0x08) erases, Enter (CR or LF)
 * ends the line as "\n", Ctrl-D on an empty line is end of input, Ctrl-C
 * drops the line ("^C", then an empty line: the program prompts again;
 * three within a second still end the run from the host side).
 */
static char tty_line[1024];
static u32 tty_len, tty_pos;

static long tty_read(char *buf, size_t n)
{
	long got;

	if (tty_pos == tty_len) {
		tty_pos = tty_len = 0;
		for (;;) {
			int c = console_getc();

			if (c < 0 || (c == 0x04 && tty_len == 0))
				return 0;                       /* end of input */
			if (c == 0x04)
				break;                          /* hand over what there is */
			if (c == '\r' || c == '\n') {
				console_write("\n", 1);
				tty_line[tty_len++] = '\n';
				break;
			}
			if (c == 0x7F || c == 0x08) {
				if (tty_len) {
					tty_len--;
					console_write("\b \b", 3);
				}
				continue;
			}
			if (c == 0x03) {
				console_write("^C\n", 3);
				tty_len = 0;
				tty_line[tty_len++] = '\n';
				break;
			}
			if (tty_len < sizeof(tty_line) - 1) {
				char ch = (char)c;

				tty_line[tty_len++] = ch;
				console_write(&ch, 1);
			}
		}
	}
	got = tty_len - tty_pos < n ? tty_len - tty_pos : (long)n;
	memcpy(buf, tty_line + tty_pos, got);
	tty_pos += got;
	return got;
}

static bool console_is_tty(void)
{
	u16 both = LGUEST_CONSOLE_F_IN_TTY | LGUEST_CONSOLE_F_OUT_TTY;
	u16 f = console_features();

	return (f & both) == both && !(f & LGUEST_CONSOLE_F_IN_LINE);
}

int32_t WASI(fd_read)(u32 fd, const __wasi_iovec_t *iov, u32 n, u32 *nread)
{
	struct wfd *f = get_fd(fd);
	size_t total = 0;

	if (!f)
		return __WASI_ERRNO_BADF;
	if (f->kind == FD_CONSOLE_IN && console_is_tty()) {
		for (u32 i = 0; i < n && total == 0; i++)
			if (iov[i].buf_len)
				total = tty_read((char *)iov[i].buf, iov[i].buf_len);
		*nread = total;
		return 0;
	}
	if (f->kind == FD_CONSOLE_IN) {
		/* block for the first byte, then take only what is there */
		for (u32 i = 0; i < n; i++) {
			long got;

			if (iov[i].buf_len == 0)
				continue;
			if (total && !console_has_input())
				break;
			got = console_read((char *)iov[i].buf, iov[i].buf_len);
			if (got <= 0)
				break;
			total += got;
			if ((size_t)got < iov[i].buf_len)
				break;
		}
		*nread = total;
		return 0;
	}
	if (f->kind == FD_DIR || f->kind == FD_PREOPEN)
		return __WASI_ERRNO_ISDIR;
	if (f->kind != FD_FILE)
		return __WASI_ERRNO_BADF;
	for (u32 i = 0; i < n; i++) {
		long got = fs_read(f->fs, iov[i].buf, iov[i].buf_len);

		if (got < 0) {
			if (total)
				break;
			return werr(got);
		}
		total += got;
		if ((size_t)got < iov[i].buf_len)
			break;
	}
	*nread = total;
	return 0;
}

int32_t WASI(fd_write)(u32 fd, const __wasi_ciovec_t *iov, u32 n, u32 *nwritten)
{
	struct wfd *f = get_fd(fd);
	size_t total = 0;

	if (!f)
		return __WASI_ERRNO_BADF;
	if (f->kind == FD_CONSOLE_OUT) {
		for (u32 i = 0; i < n; i++) {
			console_write((const char *)iov[i].buf, iov[i].buf_len);
			total += iov[i].buf_len;
		}
		*nwritten = total;
		return 0;
	}
	if (f->kind == FD_DIR || f->kind == FD_PREOPEN)
		return __WASI_ERRNO_ISDIR;
	if (f->kind != FD_FILE)
		return __WASI_ERRNO_BADF;
	for (u32 i = 0; i < n; i++) {
		long put = fs_write(f->fs, iov[i].buf, iov[i].buf_len);

		if (put < 0) {
			if (total)
				break;
			return werr(put);
		}
		total += put;
		if ((size_t)put < iov[i].buf_len)
			break;
	}
	*nwritten = total;
	return 0;
}

static int32_t positioned(u32 fd, const __wasi_iovec_t *iov, u32 n, u64 off, u32 *done,
			  bool write)
{
	struct wfd *f = get_fd(fd);
	size_t total = 0;

	if (!f)
		return __WASI_ERRNO_BADF;
	if (f->kind != FD_FILE)
		return f->kind == FD_DIR ? __WASI_ERRNO_ISDIR : __WASI_ERRNO_SPIPE;
	for (u32 i = 0; i < n; i++) {
		long r = write ? fs_pwrite(f->fs, iov[i].buf, iov[i].buf_len, off + total)
			       : fs_pread(f->fs, iov[i].buf, iov[i].buf_len, off + total);

		if (r < 0) {
			if (total)
				break;
			return werr(r);
		}
		total += r;
		if ((size_t)r < iov[i].buf_len)
			break;
	}
	*done = total;
	return 0;
}

int32_t WASI(fd_pread)(u32 fd, const __wasi_iovec_t *iov, u32 n, u64 off, u32 *nread)
{
	return positioned(fd, iov, n, off, nread, false);
}

int32_t WASI(fd_pwrite)(u32 fd, const __wasi_ciovec_t *iov, u32 n, u64 off, u32 *nwritten)
{
	return positioned(fd, (const __wasi_iovec_t *)iov, n, off, nwritten, true);
}

int32_t WASI(fd_seek)(u32 fd, int64_t off, u32 whence, u64 *newoff)
{
	struct wfd *f = get_fd(fd);
	long long r;

	if (!f)
		return __WASI_ERRNO_BADF;
	if (f->kind != FD_FILE)
		return f->kind == FD_DIR ? __WASI_ERRNO_ISDIR : __WASI_ERRNO_SPIPE;
	if (whence > __WASI_WHENCE_END)
		return __WASI_ERRNO_INVAL;
	/* WASI and the kit both number SET, CUR, END as 0, 1, 2 */
	r = fs_seek(f->fs, off, (int)whence);
	if (r < 0)
		return werr(r);
	*newoff = (u64)r;
	return 0;
}

int32_t WASI(fd_tell)(u32 fd, u64 *off)
{
	return WASI(fd_seek)(fd, 0, __WASI_WHENCE_CUR, off);
}

static u64 console_rights(void)
{
	/* no SEEK/TELL: with a character-device type wasi-libc's isatty()
	 * says yes (and stdout is line-buffered) */
	return __WASI_RIGHTS_FD_READ | __WASI_RIGHTS_FD_WRITE | __WASI_RIGHTS_FD_FDSTAT_SET_FLAGS |
	       __WASI_RIGHTS_FD_FILESTAT_GET | __WASI_RIGHTS_POLL_FD_READWRITE;
}

int32_t WASI(fd_fdstat_get)(u32 fd, __wasi_fdstat_t *out)
{
	struct wfd *f = get_fd(fd);

	if (!f)
		return __WASI_ERRNO_BADF;
	memset(out, 0, sizeof(*out));
	out->fs_flags = f->fdflags;
	switch (f->kind) {
	case FD_CONSOLE_IN:
	case FD_CONSOLE_OUT:
		/* a terminal only if the launcher's side is one (isatty(),
		 * prompts, line buffering); otherwise a stream of unknown type */
		out->fs_filetype = console_features() & (f->kind == FD_CONSOLE_IN
								 ? LGUEST_CONSOLE_F_IN_TTY
								 : LGUEST_CONSOLE_F_OUT_TTY)
					   ? __WASI_FILETYPE_CHARACTER_DEVICE
					   : __WASI_FILETYPE_UNKNOWN;
		out->fs_rights_base = console_rights();
		break;
	case FD_PREOPEN:
	case FD_DIR:
		out->fs_filetype = __WASI_FILETYPE_DIRECTORY;
		out->fs_rights_base = ~(u64)0;
		out->fs_rights_inheriting = ~(u64)0;
		break;
	default:
		out->fs_filetype = __WASI_FILETYPE_REGULAR_FILE;
		out->fs_rights_base = ~(u64)0;
		out->fs_rights_inheriting = ~(u64)0;
	}
	return 0;
}

int32_t WASI(fd_fdstat_set_flags)(u32 fd, u32 flags)
{
	struct wfd *f = get_fd(fd);

	if (!f)
		return __WASI_ERRNO_BADF;
	/* O_NONBLOCK on the console is accepted and ignored; nothing else changes */
	if ((flags & ~__WASI_FDFLAGS_NONBLOCK) != (f->fdflags & ~__WASI_FDFLAGS_NONBLOCK))
		return __WASI_ERRNO_NOTSUP;
	return 0;
}

int32_t WASI(fd_fdstat_set_rights)(u32 fd, u64 base, u64 inh)
{
	(void)base;
	(void)inh;
	return get_fd(fd) ? 0 : __WASI_ERRNO_BADF;
}

int32_t WASI(fd_filestat_get)(u32 fd, __wasi_filestat_t *out)
{
	struct wfd *f = get_fd(fd);
	struct fs_stat st;
	int r;

	if (!f)
		return __WASI_ERRNO_BADF;
	if (f->kind == FD_CONSOLE_IN || f->kind == FD_CONSOLE_OUT) {
		__wasi_fdstat_t st;

		WASI(fd_fdstat_get)(fd, &st);
		memset(out, 0, sizeof(*out));
		out->filetype = st.fs_filetype;
		out->nlink = 1;
		return 0;
	}
	if (f->fs < 0) {
		root_filestat(out);
		return 0;
	}
	r = fs_fstat(f->fs, &st);
	if (r < 0)
		return werr(r);
	to_filestat(&st, out);
	return 0;
}

int32_t WASI(fd_filestat_set_size)(u32 fd, u64 size)
{
	struct wfd *f = get_fd(fd);

	if (!f)
		return __WASI_ERRNO_BADF;
	if (f->kind != FD_FILE)
		return f->kind == FD_DIR ? __WASI_ERRNO_ISDIR : __WASI_ERRNO_INVAL;
	return werr(fs_ftruncate(f->fs, size));
}

static u64 pick_mtime(u64 mtim, u32 flags, bool *set)
{
	*set = flags & (__WASI_FSTFLAGS_MTIM | __WASI_FSTFLAGS_MTIM_NOW);
	return flags & __WASI_FSTFLAGS_MTIM_NOW ? lg_realtime_ns() : mtim;
}

int32_t WASI(fd_filestat_set_times)(u32 fd, u64 atim, u64 mtim, u32 flags)
{
	struct wfd *f = get_fd(fd);
	bool set;
	u64 t = pick_mtime(mtim, flags, &set);

	(void)atim;              /* lgfs keeps no access time */
	if (!f)
		return __WASI_ERRNO_BADF;
	if (f->fs < 0)
		return __WASI_ERRNO_BADF;
	return set ? werr(fs_futimens(f->fs, t)) : 0;
}

int32_t WASI(fd_sync)(u32 fd)
{
	struct wfd *f = get_fd(fd);

	if (!f)
		return __WASI_ERRNO_BADF;
	if (f->fs < 0)
		return f->kind == FD_CONSOLE_OUT || f->kind == FD_CONSOLE_IN ? __WASI_ERRNO_INVAL
		       : fs_ready() == 0 ? werr(fs_sync()) : 0;
	return werr(fs_fsync(f->fs));
}

int32_t WASI(fd_datasync)(u32 fd)
{
	return WASI(fd_sync)(fd);
}

int32_t WASI(fd_advise)(u32 fd, u64 off, u64 len, u32 advice)
{
	(void)off;
	(void)len;
	(void)advice;
	return get_fd(fd) ? 0 : __WASI_ERRNO_BADF;
}

int32_t WASI(fd_allocate)(u32 fd, u64 off, u64 len)
{
	struct wfd *f = get_fd(fd);
	struct fs_stat st;
	int r;

	if (!f)
		return __WASI_ERRNO_BADF;
	if (f->kind != FD_FILE)
		return __WASI_ERRNO_BADF;
	r = fs_fstat(f->fs, &st);
	if (r < 0)
		return werr(r);
	if (off + len > st.size)
		return werr(fs_ftruncate(f->fs, off + len));
	return 0;
}

int32_t WASI(fd_readdir)(u32 fd, u8 *buf, u32 buf_len, u64 cookie, u32 *used)
{
	struct wfd *f = get_fd(fd);
	u32 n = 0;
	static char name[FS_NAME_MAX + 1];

	if (!f)
		return __WASI_ERRNO_BADF;
	if (f->kind == FD_PREOPEN || (f->kind == FD_DIR && f->fs < 0)) {
		/* "/" without a handle: open one now (or list "." and ".." only) */
		if (fs_ready() == 0) {
			int r = fs_open("/", FS_O_RDONLY | FS_O_DIRECTORY, 0);

			if (r < 0)
				return werr(r);
			if (f->kind == FD_PREOPEN) {
				int32_t e;

				/* a temporary handle: the preopen stays as it is */
				f->fs = r;
				e = WASI(fd_readdir)(fd, buf, buf_len, cookie, used);
				fs_close(r);
				f->fs = -1;
				return e;
			}
			f->fs = r;
		} else {
			static const char *const dots[] = { ".", ".." };

			for (u64 c = cookie; c < 2 && n < buf_len; c++) {
				__wasi_dirent_t d = { c + 1, 1, (u32)strlen(dots[c]),
						      __WASI_FILETYPE_DIRECTORY };
				u32 room = buf_len - n;
				u32 take = room < sizeof(d) ? room : sizeof(d);

				memcpy(buf + n, &d, take);
				n += take;
				room = buf_len - n;
				take = room < d.d_namlen ? room : d.d_namlen;
				memcpy(buf + n, dots[c], take);
				n += take;
			}
			*used = n;
			return 0;
		}
	}
	if (f->kind != FD_DIR && f->kind != FD_PREOPEN)
		return __WASI_ERRNO_NOTDIR;
	while (n < buf_len) {
		u64 c = cookie, ino;
		u32 type;
		int r = fs_readdir(f->fs, &c, name, sizeof(name), &ino, &type);
		__wasi_dirent_t d;
		u32 room, take;

		if (r < 0)
			return werr(r);
		if (r == 0)
			break;
		d.d_next = c;
		d.d_ino = ino;
		d.d_namlen = strlen(name);
		d.d_type = type == FS_DT_DIR ? __WASI_FILETYPE_DIRECTORY
			   : type == FS_DT_REG ? __WASI_FILETYPE_REGULAR_FILE
					       : __WASI_FILETYPE_UNKNOWN;
		room = buf_len - n;
		take = room < sizeof(d) ? room : sizeof(d);
		memcpy(buf + n, &d, take);
		n += take;
		room = buf_len - n;
		take = room < d.d_namlen ? room : d.d_namlen;
		memcpy(buf + n, name, take);
		n += take;
		cookie = c;
	}
	*used = n;
	return 0;
}

int32_t WASI(path_filestat_get)(u32 dirfd, u32 flags, const char *path, u32 len,
				__wasi_filestat_t *out)
{
	int32_t e = resolve(dirfd, path, len, path_buf);
	struct fs_stat st;
	int r;

	(void)flags;
	if (e)
		return e;
	if (fs_ready() != 0) {
		if (strcmp(path_buf, "/") && strcmp(path_buf, "/.") && strcmp(path_buf, "//"))
			return no_fs(false);
		root_filestat(out);
		return 0;
	}
	r = fs_stat(path_buf, &st);
	if (r < 0)
		return werr(r);
	to_filestat(&st, out);
	return 0;
}

int32_t WASI(path_filestat_set_times)(u32 dirfd, u32 flags, const char *path, u32 len,
				      u64 atim, u64 mtim, u32 fstflags)
{
	int32_t e = resolve(dirfd, path, len, path_buf);
	bool set;
	u64 t = pick_mtime(mtim, fstflags, &set);
	int fd, r;

	(void)flags;
	(void)atim;
	if (e)
		return e;
	if (fs_ready() != 0)
		return no_fs(true);
	fd = fs_open(path_buf, FS_O_RDONLY, 0);
	if (fd < 0)
		return werr(fd);
	r = set ? fs_futimens(fd, t) : 0;
	fs_close(fd);
	return werr(r);
}

int32_t WASI(path_create_directory)(u32 dirfd, const char *path, u32 len)
{
	int32_t e = resolve(dirfd, path, len, path_buf);

	if (e)
		return e;
	if (fs_ready() != 0)
		return no_fs(true);
	return werr(fs_mkdir(path_buf, 0777));
}

int32_t WASI(path_remove_directory)(u32 dirfd, const char *path, u32 len)
{
	int32_t e = resolve(dirfd, path, len, path_buf);

	if (e)
		return e;
	if (fs_ready() != 0)
		return no_fs(true);
	return werr(fs_rmdir(path_buf));
}

int32_t WASI(path_unlink_file)(u32 dirfd, const char *path, u32 len)
{
	int32_t e = resolve(dirfd, path, len, path_buf);

	if (e)
		return e;
	if (fs_ready() != 0)
		return no_fs(true);
	return werr(fs_unlink(path_buf));
}

int32_t WASI(path_rename)(u32 fd1, const char *p1, u32 l1, u32 fd2, const char *p2, u32 l2)
{
	int32_t e = resolve(fd1, p1, l1, path_buf);

	if (!e)
		e = resolve(fd2, p2, l2, path_buf2);
	if (e)
		return e;
	if (fs_ready() != 0)
		return no_fs(true);
	return werr(fs_rename(path_buf, path_buf2));
}

int32_t WASI(path_link)(u32 fd1, u32 flags, const char *p1, u32 l1, u32 fd2, const char *p2,
			u32 l2)
{
	int32_t e = resolve(fd1, p1, l1, path_buf);

	(void)flags;
	if (!e)
		e = resolve(fd2, p2, l2, path_buf2);
	if (e)
		return e;
	if (fs_ready() != 0)
		return no_fs(true);
	return werr(fs_link(path_buf, path_buf2));
}

int32_t WASI(path_symlink)(const char *target, u32 tl, u32 dirfd, const char *path, u32 len)
{
	int32_t e = resolve(dirfd, path, len, path_buf);

	(void)target;
	(void)tl;
	if (e)
		return e;
	if (fs_ready() != 0)
		return no_fs(true);
	return werr(fs_symlink("", path_buf));
}

int32_t WASI(path_readlink)(u32 dirfd, const char *path, u32 len, char *buf, u32 buf_len,
			    u32 *used)
{
	int32_t e = resolve(dirfd, path, len, path_buf);
	int r;

	if (e)
		return e;
	if (fs_ready() != 0)
		return no_fs(false);
	r = fs_readlink(path_buf, buf, buf_len);
	if (r < 0)
		return werr(r);
	*used = r;
	return 0;
}

/* ---- clocks, randomness, poll, exit -------------------------------------------- */

int32_t WASI(clock_res_get)(u32 id, u64 *res)
{
	if (id > __WASI_CLOCKID_THREAD_CPUTIME_ID)
		return __WASI_ERRNO_INVAL;
	*res = 1000;                 /* the host clock's useful resolution: ~1 us */
	return 0;
}

/* wasi-libc's constructors run before LGUEST_INIT (the arch entry runs
 * them first): then tsc_khz is still 0 and no hypercall may be made, but
 * the wasm engine's counter already counts nanoseconds. */
static bool booted(void)
{
	return READ_ONCE(lguest_data.tsc_khz) != 0;
}

int32_t WASI(clock_time_get)(u32 id, u64 precision, u64 *out)
{
	(void)precision;
	switch (id) {
	case __WASI_CLOCKID_REALTIME:
		*out = booted() ? lg_realtime_ns() : 0;
		return 0;
	case __WASI_CLOCKID_MONOTONIC:
	case __WASI_CLOCKID_PROCESS_CPUTIME_ID:   /* time since boot, not CPU time */
	case __WASI_CLOCKID_THREAD_CPUTIME_ID:
		*out = booted() ? lg_clock_ns() : arch_rdtsc();
		return 0;
	default:
		return __WASI_ERRNO_INVAL;
	}
}

int32_t WASI(random_get)(u8 *buf, u32 len)
{
	if (len == 0)
		return 0;
	return rng_read(buf, len) == (long)len ? 0 : __WASI_ERRNO_NOSYS;
}

static bool console_readable(void *arg)
{
	(void)arg;
	return console_has_input() || console_eof();
}

/*
 * console_readable() for a poll that did not wait: interrupts arrive only
 * at hypercall boundaries (docs/guest-abi.md §4), so input the host has
 * already put in the console's buffer is seen only once its IRQ has run.
 * A poll with timeout 0 (or a deadline already past) crosses no boundary
 * on its own: one NOP hypercall lets the host stop us for input that waits
 * (BREAK), deliver it and run its IRQ. Without it a program busy-polling
 * stdin never saw input, however long it spun.
 */
static bool console_readable_now(void)
{
	if (console_readable(NULL))
		return true;
	hcall(LHCALL_FLUSH_ASYNC, 0, 0, 0);
	return console_readable(NULL);
}

struct sleeper {
	unsigned long ticks;        /* timer interrupts before the wait */
	bool input;                 /* input ends it too */
};

static bool sleep_over(void *arg)
{
	const struct sleeper *s = arg;

	return irq_count(LGUEST_TIMER_IRQ) != s->ticks || (s->input && console_readable(NULL));
}

/* Wait until the deadline (or input, if wake_on_input): the timer, at
 * most 1 s at a time; each wait tells the idle hook (the file system's
 * commit) how long the whole sleep has left. */
static void sleep_until(u64 deadline, bool wake_on_input)
{
	for (;;) {
		u64 now = lg_clock_ns();
		struct sleeper s = { irq_count(LGUEST_TIMER_IRQ), wake_on_input };
		u64 left;

		if (now >= deadline || (wake_on_input && console_readable(NULL)))
			return;
		left = deadline - now;
		timer_set(left > 1000000000u ? 1000000000u : (u32)left);
		idle_until_for(sleep_over, &s, left);
		if (irq_count(LGUEST_TIMER_IRQ) == s.ticks)
			timer_set(0);           /* input came first */
	}
}

int32_t WASI(poll_oneoff)(const __wasi_subscription_t *in, __wasi_event_t *out, u32 nsubs,
			  u32 *nevents)
{
	u64 deadline = ~(u64)0;
	bool want_input = false;
	u32 n = 0;

	if (nsubs == 0)
		return __WASI_ERRNO_INVAL;
	for (u32 i = 0; i < nsubs; i++) {
		const __wasi_subscription_t *s = &in[i];

		if (s->u.tag == __WASI_EVENTTYPE_CLOCK) {
			u64 t = s->u.u.clock.timeout;
			u64 d = s->u.u.clock.flags & __WASI_SUBCLOCKFLAGS_SUBSCRIPTION_CLOCK_ABSTIME
					? (s->u.u.clock.id == __WASI_CLOCKID_REALTIME
						   ? lg_clock_ns() + (t > lg_realtime_ns()
									      ? t - lg_realtime_ns()
									      : 0)
						   : t)
					: lg_clock_ns() + t;

			if (d < deadline)
				deadline = d;
		} else if (s->u.tag == __WASI_EVENTTYPE_FD_READ &&
			   s->u.u.fd_read.file_descriptor == 0) {
			want_input = true;
		} else {
			deadline = 0;    /* files and output are always ready */
		}
	}
	if (deadline == ~(u64)0 && want_input)
		idle_until(console_readable, NULL);
	else if (deadline != 0)
		sleep_until(deadline, want_input);
	for (u32 i = 0; i < nsubs; i++) {
		const __wasi_subscription_t *s = &in[i];
		__wasi_event_t *e = &out[n];
		bool ready;

		if (s->u.tag == __WASI_EVENTTYPE_CLOCK)
			ready = lg_clock_ns() >= deadline;
		else if (s->u.tag == __WASI_EVENTTYPE_FD_READ &&
			 s->u.u.fd_read.file_descriptor == 0)
			ready = console_readable_now();
		else
			ready = true;
		if (!ready)
			continue;
		memset(e, 0, sizeof(*e));
		e->userdata = s->userdata;
		e->type = s->u.tag;
		if (s->u.tag != __WASI_EVENTTYPE_CLOCK) {
			u32 fd = s->u.u.fd_read.file_descriptor;

			if (!get_fd(fd))
				e->error = __WASI_ERRNO_BADF;
			else if (fd == 0 && console_eof())
				e->fd_readwrite.flags = __WASI_EVENTRWFLAGS_FD_READWRITE_HANGUP;
			e->fd_readwrite.nbytes = 1;
		}
		n++;
	}
	*nevents = n;
	return 0;
}

int32_t WASI(sched_yield)(void)
{
	hcall(LHCALL_FLUSH_ASYNC, 0, 0, 0);  /* a hypercall: the host may preempt here */
	return 0;
}

noreturn void WASI(proc_exit)(u32 status)
{
	if (mount_err == 0)
		fs_umount();                     /* commit what is still cached */
	else if ((status & 0xFF) != 0 && nodisk_path[0] && !nodisk_told)
		nodisk_hint();                   /* a file was missing: no disk */
	lg_exit((int)status);
}

/*
 * abort(): wasi-libc's is a bare trap (the run would end with "guest fault:
 * unreachable"). This one commits the file system first, as a process's
 * abort on Linux keeps what it wrote, then crashes saying why.
 */
noreturn void abort(void)
{
	static bool aborting;

	if (!aborting && mount_err == 0) {
		aborting = true;         /* an abort inside the commit: just crash */
		fs_umount();
	}
	lguest_crash("abort() called");
}

/* Sockets: there are none (no fd is a socket). */
int32_t WASI(sock_accept)(u32 fd, u32 flags, u32 *out)
{
	(void)flags;
	(void)out;
	return get_fd(fd) ? __WASI_ERRNO_NOTSOCK : __WASI_ERRNO_BADF;
}

int32_t WASI(sock_recv)(u32 fd, void *iov, u32 n, u32 flags, u32 *got, u32 *oflags)
{
	(void)iov;
	(void)n;
	(void)flags;
	(void)got;
	(void)oflags;
	return get_fd(fd) ? __WASI_ERRNO_NOTSOCK : __WASI_ERRNO_BADF;
}

int32_t WASI(sock_send)(u32 fd, const void *iov, u32 n, u32 flags, u32 *put)
{
	(void)iov;
	(void)n;
	(void)flags;
	(void)put;
	return get_fd(fd) ? __WASI_ERRNO_NOTSOCK : __WASI_ERRNO_BADF;
}

int32_t WASI(sock_shutdown)(u32 fd, u32 how)
{
	(void)how;
	return get_fd(fd) ? __WASI_ERRNO_NOTSOCK : __WASI_ERRNO_BADF;
}

/* ---- the entry: the kit's boot calls this instead of main ----------------------- */

int lguest_posix_main(void)
{
	/* __main_void: wasi-libc's (args_get, then main(argc, argv)) or the
	 * program's own main(void); exit() runs atexit handlers, flushes stdio
	 * and ends in proc_exit above. */
	exit(__main_void());
	return 0;
}
