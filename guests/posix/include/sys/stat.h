/*
 * sys/stat.h for wasi-libc programs on lguest: wasi-libc's, plus chmod()
 * and fchmod(), which succeed without changing anything (the file system
 * keeps no permissions it would enforce; guests/posix/stubs.c).
 */
#include_next <sys/stat.h>
#ifndef LGUEST_POSIX_SYS_STAT_H
#define LGUEST_POSIX_SYS_STAT_H
int chmod(const char *path, mode_t mode);
int fchmod(int fd, mode_t mode);
#endif
