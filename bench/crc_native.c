/*
 * bench/crc_native.c: the CPU-bound benchmark's reference, the guest's
 * own CRC-32 code (guests/test/crc_common.h) as a host program, built by
 * the benchmark with the system compiler (-O2). Prints the same line as
 * the guest test-crc: "crc: N MiB in T ms, crc32 X".
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "../guests/test/crc_common.h"

int main(int argc, char **argv)
{
	unsigned long mb = argc > 1 ? strtoul(argv[1], NULL, 0) : 64;
	unsigned long n = mb << 20;
	unsigned char *buf = malloc(n);
	struct timespec a, b;
	unsigned int crc;
	double ms;

	if (!buf)
		return 1;
	crc_fill(buf, n);
	crc_init();
	clock_gettime(CLOCK_MONOTONIC, &a);
	crc = crc_update(0, buf, n);
	clock_gettime(CLOCK_MONOTONIC, &b);
	ms = (b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) / 1e6;
	printf("crc: %lu MiB in %.3f ms, crc32 %08x\n", mb, ms, crc);
	return 0;
}
