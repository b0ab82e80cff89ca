/*
 * stdlib.h for wasi-libc programs on lguest: wasi-libc's, with system()
 * declared as usable (the POSIX layer defines it: -1, errno ENOSYS, as
 * there is no shell; guests/posix/stubs.c).
 */
#define system __lguest_wasi_system_undefined
#include_next <stdlib.h>
#undef system
#ifndef LGUEST_POSIX_STDLIB_H
#define LGUEST_POSIX_STDLIB_H
int system(const char *command);
#endif
