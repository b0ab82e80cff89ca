/*
 * @guest: Test: a wasi-libc program on the POSIX layer: argv, environ, stdio, malloc, setjmp, clocks, random, files, directories, exit status.
 *
 * The command line's words are the test's arguments: "exit N" ends with
 * status N after the rest; "files" exercises the file system (needs an
 * lgfs disk); "stdin" echoes standard input line by line until EOF;
 * "abort" writes /aborted.txt without closing it and calls abort(); "grow"
 * appends a line to /grow.txt every 100 ms, never closing it, until killed;
 * "idle" writes and flushes 100 lines to /idle.txt, never closing it, says
 * "idle" and sleeps until killed; "poll" polls stdin for 1 s and prints
 * what poll() returned; "pollspin" polls stdin with timeout 0 in a loop
 * (never waiting) until input is there, then prints the line it reads.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static jmp_buf jb;

static void jump(int v)
{
	longjmp(jb, v);
}

static int check(const char *what, int ok)
{
	printf("%s: %s\n", what, ok ? "ok" : strerror(errno));
	return ok;
}

static void files(void)
{
	FILE *f;
	char buf[64];
	struct stat st;
	DIR *d;
	struct dirent *e;
	int fd;

	check("mkdir /dir", mkdir("/dir", 0755) == 0 || errno == EEXIST);
	f = fopen("/dir/a.txt", "w");
	if (!check("fopen w", f != NULL))
		return;
	fprintf(f, "hello from a file\n");
	check("fclose", fclose(f) == 0);
	f = fopen("/dir/a.txt", "a+");
	fputs("second line\n", f);
	fseek(f, 0, SEEK_SET);
	check("fgets", fgets(buf, sizeof(buf), f) != NULL);
	printf("line 1: %s", buf);
	fclose(f);
	check("stat", stat("/dir/a.txt", &st) == 0);
	printf("size %lld regular %d\n", (long long)st.st_size, S_ISREG(st.st_mode));
	check("rename", rename("/dir/a.txt", "/dir/b.txt") == 0);
	printf("old name gone: %d\n", access("/dir/a.txt", F_OK) != 0 && errno == ENOENT);
	fd = open("/dir/b.txt", O_RDWR);
	check("ftruncate", ftruncate(fd, 5) == 0);
	lseek(fd, 0, SEEK_SET);
	memset(buf, 0, sizeof(buf));
	printf("after truncate: '%.*s' (%zd)\n", 5, buf, read(fd, buf, sizeof(buf)));
	check("fsync", fsync(fd) == 0);
	close(fd);
	d = opendir("/dir");
	if (check("opendir", d != NULL)) {
		while ((e = readdir(d)))
			printf("entry %s\n", e->d_name);
		closedir(d);
	}
	printf("rmdir non-empty: %s\n", rmdir("/dir") == 0 ? "removed?!" : strerror(errno));
	check("unlink", unlink("/dir/b.txt") == 0);
	check("rmdir", rmdir("/dir") == 0);
	printf("link: %s\n", link("/x", "/y") == 0 ? "linked?!" : strerror(errno));
	f = tmpfile();
	check("tmpfile", f != NULL);
	if (f) {
		fputs("tmp", f);
		rewind(f);
		printf("tmpfile reads '%s'\n", fgets(buf, sizeof(buf), f));
		fclose(f);
	}
}

/* memcpy, memmove (overlapping both ways), memset and memcmp against byte loops;
 * the pointers go through volatile so that clang calls the library's. */
static void mem(void)
{
	static unsigned char a[300], want[300];
	void *(*volatile cp)(void *, const void *, size_t) = memcpy;
	void *(*volatile mv)(void *, const void *, size_t) = memmove;
	void *(*volatile st)(void *, int, size_t) = memset;
	int (*volatile cmp)(const void *, const void *, size_t) = memcmp;
	int ok = 1;

	for (int i = 0; i < 300; i++)
		a[i] = want[i] = (unsigned char)(i * 7);
	ok &= cp(a + 200, a, 100) == a + 200;
	for (int i = 0; i < 100; i++)
		want[200 + i] = want[i];
	ok &= mv(a + 10, a, 150) == a + 10; /* forward overlap: copies as if through a buffer */
	for (int i = 149; i >= 0; i--)
		want[10 + i] = want[i];
	ok &= mv(a, a + 5, 150) == a; /* backward overlap */
	for (int i = 0; i < 150; i++)
		want[i] = want[5 + i];
	ok &= st(a + 290, 0x1ab, 10) == a + 290 && cp(a, a, 0) == a && st(a, 0, 0) == a;
	for (int i = 290; i < 300; i++)
		want[i] = 0xab;
	for (int i = 0; i < 300; i++)
		ok &= a[i] == want[i];
	printf("memcpy memmove memset: %s\n", ok ? "ok" : "WRONG");
	/* memcmp: every length to 40, a difference at every place, both ways, bytes unsigned */
	ok = 1;
	for (int n = 0; n <= 40; n++)
		for (int d = 0; d <= n; d++) {
			unsigned char x[48], y[48];

			for (int i = 0; i < 48; i++)
				x[i] = y[i] = (unsigned char)(i * 29 + 100);
			if (d < n)
				y[1 + d] = (unsigned char)(x[1 + d] ^ 0x80);
			int r1 = cmp(x + 1, y + 1, (size_t)n), r2 = cmp(y + 1, x + 1, (size_t)n);
			int want = d == n ? 0 : x[1 + d] < y[1 + d] ? -1 : 1;

			ok &= (r1 > 0) - (r1 < 0) == want && (r2 > 0) - (r2 < 0) == -want;
		}
	printf("memcmp: %s\n", ok ? "ok" : "WRONG");
}

int main(int argc, char **argv)
{
	volatile int jumped = 0;
	struct timespec a, b;
	unsigned char rnd[16];
	char *big;
	int status = 0;

	printf("argc %d\n", argc);
	for (int i = 0; i < argc; i++)
		printf("argv[%d] = '%s'\n", i, argv[i]);
	printf("GREETING=%s\n", getenv("GREETING") ? getenv("GREETING") : "(unset)");
	mem();
	if (setjmp(jb) == 0)
		jump(42);
	else
		jumped = 42;
	printf("longjmp came back with %d\n", jumped);
	big = malloc(8 << 20);
	printf("malloc 8 MiB: %s\n", big ? "ok" : "failed");
	if (big)
		memset(big, 1, 8 << 20);
	free(big);
	clock_gettime(CLOCK_MONOTONIC, &a);
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("monotonic ok: %d\n", b.tv_sec > a.tv_sec || (b.tv_sec == a.tv_sec && b.tv_nsec >= a.tv_nsec));
	clock_gettime(CLOCK_REALTIME, &a);
	printf("realtime %lld\n", (long long)a.tv_sec);
	printf("getentropy: %d\n", getentropy(rnd, sizeof(rnd)));
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "files") == 0)
			files();
		else if (strcmp(argv[i], "stdin") == 0) {
			char line[256];

			while (fgets(line, sizeof(line), stdin))
				printf("stdin: %s", line);
			printf("stdin: EOF\n");
		} else if (strcmp(argv[i], "grow") == 0) {
			/* a log that is never closed or synced: a line every 100 ms */
			FILE *log = fopen("/grow.txt", "w");
			struct timespec tenth = { 0, 100000000 };

			if (!log)
				perror("/grow.txt");
			for (int n = 1; log != NULL && n > 0; n++) {
				fprintf(log, "line %06d\n", n);
				fflush(log);
				printf("grow %d\n", n);
				fflush(stdout);
				nanosleep(&tenth, NULL);
			}
		} else if (strcmp(argv[i], "idle") == 0) {
			/* written and flushed, then the program only waits */
			FILE *log = fopen("/idle.txt", "w");

			if (!log)
				perror("/idle.txt");
			for (int n = 1; log != NULL && n <= 100; n++) {
				fprintf(log, "line %06d\n", n);
				fflush(log);
			}
			printf("idle\n");
			fflush(stdout);
			for (;;)
				sleep(1);
		} else if (strcmp(argv[i], "poll") == 0) {
			struct pollfd p = { 0, POLLIN, 0 };
			int r = poll(&p, 1, 1000);

			printf("poll %d\n", r);
		} else if (strcmp(argv[i], "pollspin") == 0) {
			/* a busy poll: no call in the loop ever waits or halts */
			struct pollfd p = { 0, POLLIN, 0 };
			char line[256];

			printf("pollspin\n");
			fflush(stdout);
			while (poll(&p, 1, 0) == 0)
				;
			if (!fgets(line, sizeof(line), stdin))
				strcpy(line, "EOF\n");
			printf("pollspin: %s", line);
		} else if (strcmp(argv[i], "abort") == 0) {
			/* written, not closed: abort() keeps it, as a process's abort does */
			int fd = open("/aborted.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);

			if (fd < 0 || write(fd, "kept\n", 5) != 5)
				perror("/aborted.txt");
			fflush(stdout);
			abort();
		} else if (strcmp(argv[i], "exit") == 0 && i + 1 < argc) {
			status = atoi(argv[++i]);
		}
	}
	fprintf(stderr, "to stderr\n");
	return status;
}
