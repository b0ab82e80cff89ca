/*
 * crc_common.h: the CRC-32 (zlib polynomial, table-driven) and the fill
 * pattern shared by test/crc.c (the guest) and bench/crc_native.c (the
 * same code as a host program). Plain C, no kit calls.
 */
#ifndef CRC_COMMON_H
#define CRC_COMMON_H

static unsigned int crc_table[256];

static void crc_init(void)
{
	for (unsigned int i = 0; i < 256; i++) {
		unsigned int c = i;

		for (int k = 0; k < 8; k++)
			c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
		crc_table[i] = c;
	}
}

static unsigned int crc_update(unsigned int crc, const unsigned char *p, unsigned long n)
{
	crc = ~crc;
	while (n--)
		crc = crc_table[(crc ^ *p++) & 0xFF] ^ (crc >> 8);
	return ~crc;
}

/* A fixed, non-trivial pattern: byte i = (i * 2654435761) >> 24. */
static void crc_fill(unsigned char *p, unsigned long n)
{
	for (unsigned long i = 0; i < n; i++)
		p[i] = (unsigned char)((i * 2654435761u) >> 24);
}

#endif
