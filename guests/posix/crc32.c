/*
 * posix/crc32.c: the kit's crc32 (zlib's polynomial and interface), which
 * the kit's fs.c uses; the kit's libc.c, where it lives, is not linked with
 * wasi-libc. In a file of its own so that a program linking zlib (whose
 * crc32 is the same function) keeps its own.
 */
#include "kit.h"

/* The kit's crc32 (zlib's), which fs.c uses; the kit's libc.c, where it
 * lives, is not linked with wasi-libc. */
uint32_t crc32(uint32_t crc, const void *buf, size_t len)
{
	static uint32_t table[256];
	const u8 *p = buf;

	if (!table[1]) {
		for (uint32_t i = 0; i < 256; i++) {
			uint32_t c = i;

			for (int k = 0; k < 8; k++)
				c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
			table[i] = c;
		}
	}
	crc = ~crc;
	while (len--)
		crc = table[(crc ^ *p++) & 0xFF] ^ (crc >> 8);
	return ~crc;
}
