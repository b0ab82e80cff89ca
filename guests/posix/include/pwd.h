/*
 * pwd.h for wasi-libc programs on lguest (wasi-libc has none): there are
 * no users; getpwuid() and getpwnam() find nobody, getuid() is 0
 * (guests/posix/stubs.c).
 */
#ifndef LGUEST_POSIX_PWD_H
#define LGUEST_POSIX_PWD_H

#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

struct passwd {
	char *pw_name;
	char *pw_passwd;
	uid_t pw_uid;
	gid_t pw_gid;
	char *pw_gecos;
	char *pw_dir;
	char *pw_shell;
};

struct passwd *getpwuid(uid_t uid);
struct passwd *getpwnam(const char *name);
uid_t getuid(void);
uid_t geteuid(void);

#ifdef __cplusplus
}
#endif
#endif
