/*
 * posix/stubs.c: the few functions wasi-libc declares but does not define,
 * for lguest guests: tmpfile (a file on the disk, unlinked at once, so it
 * goes away with its last close), system (no shell: -1, ENOSYS) and a
 * tmpnam-style helper for Lua's os.tmpname (lguest_tmpnam).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static unsigned name_counter;

static void temp_name(char *buf, size_t size)
{
	unsigned r = 0;

	getentropy(&r, sizeof(r));
	snprintf(buf, size, "/.tmp%04x%08x", name_counter++ & 0xffff, r);
}

#pragma clang diagnostic ignored "-Wdeprecated-declarations"

FILE *tmpfile(void)
{
	char name[32];

	for (int tries = 0; tries < 16; tries++) {
		int fd;
		FILE *f;

		temp_name(name, sizeof(name));
		fd = open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
		if (fd < 0) {
			if (errno == EEXIST)
				continue;
			return NULL;
		}
		unlink(name);
		f = fdopen(fd, "w+");
		if (!f)
			close(fd);
		return f;
	}
	return NULL;
}

/* Lua's os.tmpname: a fresh name in "/" (the file is not created). */
int lguest_tmpnam(char *buf)
{
	temp_name(buf, 32);
	return 0;
}

int system(const char *command)
{
	if (!command)
		return 0;         /* no command processor */
	errno = ENOSYS;
	return -1;
}

/* There are no users (posix/include/pwd.h). */
#include <pwd.h>

struct passwd *getpwuid(uid_t uid)
{
	(void)uid;
	return NULL;
}

struct passwd *getpwnam(const char *name)
{
	(void)name;
	return NULL;
}

uid_t getuid(void)
{
	return 0;
}

uid_t geteuid(void)
{
	return 0;
}

/* Permissions are not enforced (docs/disk-format.md): accept and ignore. */
#include <sys/stat.h>

int chmod(const char *path, mode_t mode)
{
	struct stat st;

	(void)mode;
	return stat(path, &st);
}

int fchmod(int fd, mode_t mode)
{
	struct stat st;

	(void)mode;
	return fstat(fd, &st);
}
