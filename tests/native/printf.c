/*
 * printf.c: the guest kit's printf engine (guests/kit/libc.c), built for
 * the host with its names prefixed kit_, against a table of conversions:
 * each case is checked against its expected text and, where the kit
 * follows C (all but the marked KIT-only cases), against the host C
 * library's vsnprintf too. Also snprintf's truncation and the console
 * sink of printf (flushed every 256 bytes). Prints each mismatch, then
 * "printf: N cases, M failed"; exit status 1 if any failed.
 */
#define memcpy kit_memcpy
#define memmove kit_memmove
#define memset kit_memset
#define memcmp kit_memcmp
#define memchr kit_memchr
#define strlen kit_strlen
#define strnlen kit_strnlen
#define strcmp kit_strcmp
#define strncmp kit_strncmp
#define strchr kit_strchr
#define strrchr kit_strrchr
#define strstr kit_strstr
#define strcpy kit_strcpy
#define strlcpy kit_strlcpy
#define strtok_r kit_strtok_r
#define strtoul kit_strtoul
#define strtol kit_strtol
#define atoi kit_atoi
#define crc32 kit_crc32
#define vsnprintf kit_vsnprintf
#define snprintf kit_snprintf
#define vprintf kit_vprintf
#define printf kit_printf
#define puts kit_puts
#define putchar kit_putchar
#define isdigit kit_isdigit
#define isspace kit_isspace
#define isprint kit_isprint
#define isxdigit kit_isxdigit
#define tolower kit_tolower

#include "libc.c"

#undef memcpy
#undef memmove
#undef memset
#undef memcmp
#undef memchr
#undef strlen
#undef strnlen
#undef strcmp
#undef strncmp
#undef strchr
#undef strrchr
#undef strstr
#undef strcpy
#undef strlcpy
#undef strtok_r
#undef strtoul
#undef strtol
#undef atoi
#undef crc32
#undef vsnprintf
#undef snprintf
#undef vprintf
#undef printf
#undef puts
#undef putchar
#undef isdigit
#undef isspace
#undef isprint
#undef isxdigit
#undef tolower

#include <limits.h>
#include <stdio.h>
#include <string.h>

/* What the kit's console sink wrote, and in how many writes. */
static char console[4096];
static size_t console_len;
static int console_writes;

void console_write(const char *s, size_t n)
{
	if (console_len + n <= sizeof(console))
		memcpy(console + console_len, s, n);
	console_len += n;
	console_writes++;
}

static int cases, failed;

/* The kit's vsnprintf against expect (and against the host's when std). */
static void vcheck(int line, int std, const char *expect, const char *fmt, va_list ap)
{
	char kit[512], host[512];
	va_list again;
	int n, m;

	va_copy(again, ap);
	cases++;
	n = kit_vsnprintf(kit, sizeof(kit), fmt, ap);
	if (strcmp(kit, expect) != 0 || n != (int)strlen(expect)) {
		failed++;
		printf("line %d: \"%s\": kit gave \"%s\" (%d), expected \"%s\"\n", line, fmt, kit,
		       n, expect);
	}
	if (std) {
		m = vsnprintf(host, sizeof(host), fmt, again);
		if (strcmp(host, expect) != 0 || m != (int)strlen(expect)) {
			failed++;
			printf("line %d: \"%s\": host C gave \"%s\" (%d), expected \"%s\"\n", line,
			       fmt, host, m, expect);
		}
	}
	va_end(again);
}

static void check(int line, int std, const char *expect, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vcheck(line, std, expect, fmt, ap);
	va_end(ap);
}

#define STD(expect, ...) check(__LINE__, 1, expect, __VA_ARGS__)
#define KIT(expect, ...) check(__LINE__, 0, expect, __VA_ARGS__)

/* kit_printf's return and what reached the console, against the host's text. */
static void console_check(int line, const char *fmt, ...)
{
	char host[4096];
	va_list ap, again;
	int n, m;

	va_start(ap, fmt);
	va_copy(again, ap);
	console_len = 0;
	console_writes = 0;
	cases++;
	n = kit_vprintf(fmt, ap);
	m = vsnprintf(host, sizeof(host), fmt, again);
	if (n != m || console_len != (size_t)m || memcmp(console, host, (size_t)m) != 0 ||
	    console_writes != (m + 255) / 256) {
		failed++;
		printf("line %d: printf \"%s\": %d bytes in %d writes, the host %d\n", line, fmt, n,
		       console_writes, m);
	}
	va_end(again);
	va_end(ap);
}

int main(void)
{
	const char *null = NULL;
	char small[8];
	char big[700];
	int n;

	/* Plain text and %%. */
	STD("", "");
	STD("plain text", "plain text");
	STD("100%", "100%%");
	STD("a%b", "a%%%c", 'b');

	/* Integers: every length, both signs, the extremes. */
	STD("0 7 -7", "%d %i %d", 0, 7, -7);
	STD("2147483647 -2147483648", "%d %d", INT_MAX, INT_MIN);
	STD("4294967295", "%u", UINT_MAX);
	STD("9223372036854775807 -9223372036854775808", "%lld %lld", LLONG_MAX, LLONG_MIN);
	STD("18446744073709551615", "%llu", ULLONG_MAX);
	STD("-123456789012", "%ld", -123456789012L);
	STD("123456789012", "%lu", 123456789012UL);
	STD("4096 12", "%zu %zu", (size_t)4096, sizeof(char[12]));
	STD("Hello, 32 MiB", "Hello, %u MiB", 32u);
	STD("1000000 999999 10 9", "%u %u %u %u", 1000000u, 999999u, 10u, 9u);

	/* Other bases. */
	STD("ff FF 377 0", "%x %X %o %x", 255, 255, 255, 0);
	STD("deadbeef", "%x", 0xdeadbeefu);
	STD("ffffffff", "%x", -1);
	STD("fedcba9876543210", "%llx", 0xfedcba9876543210ULL);
	STD("1777777777777777777777", "%llo", ULLONG_MAX);
	STD("7ffffffffff", "%lx", 0x7ffffffffffUL);

	/* Widths, '-' and '0'. */
	STD("[   42]", "[%5d]", 42);
	STD("[42   ]", "[%-5d]", 42);
	STD("[00042]", "[%05d]", 42);
	STD("[-0042]", "[%05d]", -42);
	STD("[  -42]", "[%5d]", -42);
	STD("[-42  ]", "[%-5d]", -42);
	STD("[42   ]", "[%-05d]", 42);
	STD("[123456]", "[%3d]", 123456);
	STD("[0000ff]", "[%06x]", 255);
	STD("[    FF]", "[%6X]", 255);
	STD("[000000000000000000000000000000000001]", "[%036u]", 1u);
	STD("[   7]", "[%*d]", 4, 7);
	STD("[7   ]", "[%*d]", -4, 7);
	STD("[0007]", "[%0*d]", 4, 7);
	STD("[7]", "[%*d]", 0, 7);

	/* %s: precision, width, NULL. */
	STD("hi there", "%s %s", "hi", "there");
	STD("[  abc]", "[%5s]", "abc");
	STD("[abc  ]", "[%-5s]", "abc");
	STD("[ab]", "[%.2s]", "abc");
	STD("[abc]", "[%.9s]", "abc");
	STD("[]", "[%.0s]", "abc");
	STD("[   ab]", "[%5.2s]", "abc");
	STD("[ab   ]", "[%-5.2s]", "abc");
	STD("[abc]", "[%.*s]", 3, "abcdef");
	STD("[abcdef]", "[%.*s]", -1, "abcdef");
	STD("[  abcd]", "[%*.*s]", 6, 4, "abcdefgh");
	STD("[abcd  ]", "[%-*.*s]", 6, 4, "abcdefgh");
	STD("[abc]", "[%2s]", "abc");
	STD("(null)", "%s", null);
	STD("", "%s", "");

	/* %c. */
	STD("x", "%c", 'x');
	STD("[   x]", "[%4c]", 'x');
	STD("[x   ]", "[%-4c]", 'x');
	STD("[x]", "[%0c]", 'x');

	/* Mixed. */
	STD("eth0: 10.0.2.15/24 up 1500", "%s: %u.%u.%u.%u/%d %s %d", "eth0", 10u, 0u, 2u, 15u,
	    24, "up", 1500);
	STD("[  12|-3   |0x|    |00ff]", "[%4d|%-5d|%s|%4s|%04x]", 12, -3, "0x", "", 255);

	/* The kit's own choices where C differs or says nothing (libc.h). */
	if (sizeof(void *) == 8) {
		KIT("0x00000000deadbeef", "%p", (void *)0xdeadbeefUL);
		KIT("[0x00000000000000ab]", "[%p]", (void *)0xab);
	} else {
		KIT("0x0000abcd", "%p", (void *)0xabcd);
	}
	KIT("[0xab]", "[%4p]", (void *)0xab);
	KIT("[0x00ab]", "[%6p]", (void *)0xab);
	KIT("[0xab  ]", "[%-6p]", (void *)0xab);
	KIT("[   abc]", "[%06s]", "abc");            /* '0' pads %s with spaces */
	KIT("[    x]", "[%05c]", 'x');             /* and %c */
	KIT("[42]", "[%.5d]", 42);                 /* precision only for %s */
	KIT("%q%w", "%q%w");                       /* unknown conversions as is */
	KIT("%q", "%-5q");                         /* flags and width dropped */
	KIT("end", "end%");                        /* a lone '%' ends the text */
	KIT("%", "%5%");
	KIT("%", "%l%");
	KIT("[%5d]", "[%l5d]", 42);                /* a width after 'l' is no width */
	KIT("a\xff" "b", "a%cb", 0xff);

	/* snprintf: truncation keeps the count of what would have been written. */
	cases++;
	n = kit_snprintf(small, sizeof(small), "%s-%d", "abcdef", 12345);
	if (n != 12 || strcmp(small, "abcdef-")) {
		failed++;
		printf("snprintf into 8 bytes: %d \"%s\"\n", n, small);
	}
	cases++;
	small[0] = 'z';
	n = kit_snprintf(small, 0, "%d", 12345);
	if (n != 5 || small[0] != 'z') {
		failed++;
		printf("snprintf into 0 bytes: %d, wrote '%c'\n", n, small[0]);
	}
	cases++;
	n = kit_snprintf(small, 1, "%d", 12345);
	if (n != 5 || small[0] != '\0') {
		failed++;
		printf("snprintf into 1 byte: %d\n", n);
	}

	/* printf: the console sink flushes every 256 bytes, in order. */
	memset(big, 'b', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	console_check(__LINE__, "short %d\n", 1);
	console_check(__LINE__, "%s", "");
	console_check(__LINE__, "%255s|", "x");
	console_check(__LINE__, "%256s|", "x");
	console_check(__LINE__, "[%s] %600d %-*s|", big, -5, 300, "left");
	console_check(__LINE__, "%llu %llx %c%c %5.3s %-4d%%", ULLONG_MAX, 0x123ULL, 'o', 'k',
		      "abcdef", 7);

	printf("printf: %d cases, %d failed\n", cases, failed);
	return failed ? 1 : 0;
}
