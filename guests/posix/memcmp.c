/*
 * posix/memcmp.c: memcmp eight bytes at a time (one i64 load from each
 * side; wasm allows unaligned loads), then byte by byte for the rest.
 * wasi-libc's is a byte loop, and every iteration of a loop also pays a
 * fuel check: SQLite's sorter and index lookups compare keys with it
 * (docs/performance.md, "Real programs"). Built with -fno-builtin, so the
 * byte loop is not turned back into a call of memcmp. In its own member of
 * libposix.a: a program that defines its own memcmp keeps it.
 */
#include <stddef.h>
#include <stdint.h>

int memcmp(const void *vl, const void *vr, size_t n)
{
	const unsigned char *l = vl, *r = vr;

	for (; n >= 8; n -= 8, l += 8, r += 8) {
		uint64_t a, b;

		__builtin_memcpy(&a, l, 8);
		__builtin_memcpy(&b, r, 8);
		if (a != b) {
			/* little-endian: the first differing byte is the lowest set one */
			unsigned k = (unsigned)__builtin_ctzll(a ^ b) >> 3;

			return l[k] - r[k];
		}
	}
	for (; n && *l == *r; n--, l++, r++)
		;
	return n ? *l - *r : 0;
}
