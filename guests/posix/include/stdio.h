/*
 * stdio.h for wasi-libc programs on lguest: wasi-libc's, with tmpfile()
 * declared as usable (the POSIX layer defines it: guests/posix/stubs.c).
 */
#define tmpfile __lguest_wasi_tmpfile_undefined
#include_next <stdio.h>
#undef tmpfile
#ifndef LGUEST_POSIX_STDIO_H
#define LGUEST_POSIX_STDIO_H
FILE *tmpfile(void);
#endif
