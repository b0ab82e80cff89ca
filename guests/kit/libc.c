/*
 * libc.c: memory/string functions and the printf engine.
 *
 * Everything is plain portable C; the only way out is console_write().
 * No 64-bit division is used (i386 would need libgcc for it): 64-bit
 * numbers are printed with a shift-and-add divide by 10.
 */
#include "libc.h"
#include "kit.h"

/* ---- Memory ------------------------------------------------------------ */

void *memcpy(void *dst, const void *src, size_t n)
{
	unsigned char *d = dst;
	const unsigned char *s = src;

	while (n--)
		*d++ = *s++;
	return dst;
}

void *memmove(void *dst, const void *src, size_t n)
{
	unsigned char *d = dst;
	const unsigned char *s = src;

	if (d == s || n == 0)
		return dst;
	if (d < s) {
		while (n--)
			*d++ = *s++;
	} else {
		d += n;
		s += n;
		while (n--)
			*--d = *--s;
	}
	return dst;
}

void *memset(void *dst, int c, size_t n)
{
	unsigned char *d = dst;

	while (n--)
		*d++ = (unsigned char)c;
	return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const unsigned char *x = a, *y = b;

	for (; n; n--, x++, y++)
		if (*x != *y)
			return *x - *y;
	return 0;
}

void *memchr(const void *s, int c, size_t n)
{
	const unsigned char *p = s;

	for (; n; n--, p++)
		if (*p == (unsigned char)c)
			return (void *)p;
	return NULL;
}

/* ---- Strings ----------------------------------------------------------- */

size_t strlen(const char *s)
{
	const char *p = s;

	while (*p)
		p++;
	return (size_t)(p - s);
}

size_t strnlen(const char *s, size_t max)
{
	size_t n = 0;

	while (n < max && s[n])
		n++;
	return n;
}

int strcmp(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return (unsigned char)*a - (unsigned char)*b;
}

int strncmp(const char *a, const char *b, size_t n)
{
	for (; n; n--, a++, b++) {
		if (*a != *b)
			return (unsigned char)*a - (unsigned char)*b;
		if (!*a)
			break;
	}
	return 0;
}

char *strchr(const char *s, int c)
{
	for (;; s++) {
		if (*s == (char)c)
			return (char *)s;
		if (!*s)
			return NULL;
	}
}

char *strrchr(const char *s, int c)
{
	const char *last = NULL;

	for (;; s++) {
		if (*s == (char)c)
			last = s;
		if (!*s)
			return (char *)last;
	}
}

char *strstr(const char *haystack, const char *needle)
{
	size_t n = strlen(needle);

	for (; *haystack; haystack++)
		if (strncmp(haystack, needle, n) == 0)
			return (char *)haystack;
	return n ? NULL : (char *)haystack;
}

char *strcpy(char *dst, const char *src)
{
	char *d = dst;

	while ((*d++ = *src++))
		;
	return dst;
}

size_t strlcpy(char *dst, const char *src, size_t size)
{
	size_t len = strlen(src);

	if (size) {
		size_t n = len < size - 1 ? len : size - 1;
		memcpy(dst, src, n);
		dst[n] = '\0';
	}
	return len;
}

char *strtok_r(char *s, const char *delim, char **save)
{
	char *tok;

	if (!s)
		s = *save;
	while (*s && strchr(delim, *s))
		s++;
	if (!*s) {
		*save = s;
		return NULL;
	}
	tok = s;
	while (*s && !strchr(delim, *s))
		s++;
	if (*s)
		*s++ = '\0';
	*save = s;
	return tok;
}

static int digit_value(int c)
{
	if (isdigit(c))
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 10;
	return 99;
}

unsigned long strtoul(const char *s, char **end, int base)
{
	unsigned long v = 0;

	while (isspace(*s))
		s++;
	if (*s == '+')
		s++;
	if ((base == 0 || base == 16) && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')
	    && isxdigit(s[2])) {
		s += 2;
		base = 16;
	} else if (base == 0) {
		base = (s[0] == '0') ? 8 : 10;
	}
	for (; digit_value(*s) < base; s++)
		v = v * (unsigned long)base + (unsigned long)digit_value(*s);
	if (end)
		*end = (char *)s;
	return v;
}

long strtol(const char *s, char **end, int base)
{
	while (isspace(*s))
		s++;
	if (*s == '-')
		return -(long)strtoul(s + 1, end, base);
	return (long)strtoul(s, end, base);
}

int atoi(const char *s)
{
	return (int)strtol(s, NULL, 10);
}

/* ---- CRC-32 (zlib) ------------------------------------------------------- */

uint32_t crc32(uint32_t crc, const void *buf, size_t len)
{
	static uint32_t table[256];         /* built on first use */
	const unsigned char *p = buf;

	if (!table[1]) {
		for (uint32_t i = 0; i < 256; i++) {
			uint32_t c = i;

			for (int k = 0; k < 8; k++)
				c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
			table[i] = c;
		}
	}
	crc = ~crc;
	while (len--)
		crc = table[(crc ^ *p++) & 0xFF] ^ (crc >> 8);
	return ~crc;
}

/* ---- The printf engine --------------------------------------------------- */

/*
 * Output goes through a sink: a buffer, which snprintf returns and printf
 * flushes to the console whenever it fills up.
 *
 * The engine is cut for the guest's first printf: a wasm guest's functions
 * are compiled (V8's Liftoff) at their first call, each in full, and every
 * guest prints before anything else it does. So what a plain "%d"/"%u"/"%x"
 * needs is small and inline, and the rest (padding, signs and prefixes,
 * %s, %c) sits in functions of its own, NOINLINE, compiled only by the
 * first format that uses them. Behaviour is the same either way
 * (tests/kit_printf_test.ts).
 */
#define NOINLINE __attribute__((noinline))

struct sink {
	char *buf;
	size_t size;    /* capacity of buf */
	size_t pos;     /* bytes currently in buf */
	size_t total;   /* bytes produced so far */
	bool console;   /* flush to the console when full */
};

static void sink_flush(struct sink *s)
{
	if (s->console && s->pos) {
		console_write(s->buf, s->pos);
		s->pos = 0;
	}
}

static NOINLINE void sink_put(struct sink *s, char c)
{
	s->total++;
	if (s->pos + 1 >= s->size) {   /* keep room for the NUL */
		if (!s->console)
			return;
		sink_flush(s);
	}
	s->buf[s->pos++] = c;
}

static void sink_pad(struct sink *s, char c, int n)
{
	while (n-- > 0)
		sink_put(s, c);
}

/* Divide *n by 10 in place and return the remainder, 32-bit ops only. */
static unsigned div10_u64(uint64_t *n)
{
	uint64_t v = *n, q, r;

	q = (v >> 1) + (v >> 2);
	q += q >> 4;
	q += q >> 8;
	q += q >> 16;
	q += q >> 32;
	q >>= 3;
	r = v - q * 10;
	if (r > 9) {
		q++;
		r -= 10;
	}
	*n = q;
	return (unsigned)r;
}

/* Digits of v in base (8, 10 or 16), least significant first; returns count. */
static int format_digits(char *out, uint64_t v, unsigned base, bool upper)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	int n = 0;

	do {
		if (base == 10) {
			out[n++] = digits[div10_u64(&v)];
		} else {
			unsigned shift = (base == 16) ? 4 : 3;
			out[n++] = digits[v & (base - 1)];
			v >>= shift;
		}
	} while (v);
	return n;
}

/* The n digits (most significant last) with a sign, prefix and padding. */
static NOINLINE void format_padded(struct sink *s, const char *digits, int n, bool negative,
				   int width, bool left, bool zero, const char *prefix)
{
	int plen = (int)strlen(prefix) + (negative ? 1 : 0);
	int pad = width - n - plen;

	if (!left && !zero)
		sink_pad(s, ' ', pad);
	if (negative)
		sink_put(s, '-');
	while (*prefix)
		sink_put(s, *prefix++);
	if (!left && zero)
		sink_pad(s, '0', pad);
	while (n)
		sink_put(s, digits[--n]);
	if (left)
		sink_pad(s, ' ', pad);
}

static NOINLINE void format_number(struct sink *s, uint64_t v, bool negative, unsigned base,
			  bool upper, int width, bool left, bool zero, const char *prefix)
{
	char digits[24];
	int n = format_digits(digits, v, base, upper);

	if (negative || *prefix || width > n) {
		format_padded(s, digits, n, negative, width, left, zero, prefix);
		return;
	}
	while (n)
		sink_put(s, digits[--n]);
}

static NOINLINE void format_char(struct sink *s, char c, int width, bool left)
{
	sink_pad(s, ' ', left ? 0 : width - 1);
	sink_put(s, c);
	sink_pad(s, ' ', left ? width - 1 : 0);
}

static NOINLINE void format_string(struct sink *s, const char *str, int width, int precision,
				   bool left)
{
	int len;

	if (!str)
		str = "(null)";
	len = (int)(precision >= 0 ? strnlen(str, (size_t)precision) : strlen(str));
	if (!left)
		sink_pad(s, ' ', width - len);
	for (int k = 0; k < len; k++)
		sink_put(s, str[k]);
	if (left)
		sink_pad(s, ' ', width - len);
}

/*
 * One conversion, fmt just past its '%': flags, width, precision, length,
 * then the conversion. Returns where the conversion ends (its last
 * character, or the NUL of a lone '%' at the end).
 */
static NOINLINE const char *format_spec(struct sink *s, const char *fmt, va_list *ap)
{
	bool left = false, zero = false;
	int width = 0, precision = -1, longs = 0;
	uint64_t u;
	int64_t i;

	for (;; fmt++) {                               /* flags */
		if (*fmt == '-')
			left = true;
		else if (*fmt == '0')
			zero = true;
		else
			break;
	}
	if (*fmt == '*') {                             /* width */
		width = va_arg(*ap, int);
		if (width < 0) {
			left = true;
			width = -width;
		}
		fmt++;
	} else {
		while (isdigit(*fmt))
			width = width * 10 + (*fmt++ - '0');
	}
	if (*fmt == '.') {                             /* precision (%s only) */
		fmt++;
		precision = 0;
		if (*fmt == '*') {
			precision = va_arg(*ap, int);
			fmt++;
		} else {
			while (isdigit(*fmt))
				precision = precision * 10 + (*fmt++ - '0');
		}
	}
	for (;; fmt++) {                               /* length */
		if (*fmt == 'l')
			longs++;
		else if (*fmt == 'z')
			longs = sizeof(size_t) > 4 ? 2 : 0;
		else
			break;
	}

	switch (*fmt) {
	case 'd':
	case 'i':
		if (longs >= 2)
			i = va_arg(*ap, long long);
		else if (longs == 1)
			i = va_arg(*ap, long);
		else
			i = va_arg(*ap, int);
		u = i < 0 ? (uint64_t)0 - (uint64_t)i : (uint64_t)i;
		format_number(s, u, i < 0, 10, false, width, left, zero, "");
		break;
	case 'u':
	case 'x':
	case 'X':
	case 'o':
		if (longs >= 2)
			u = va_arg(*ap, unsigned long long);
		else if (longs == 1)
			u = va_arg(*ap, unsigned long);
		else
			u = va_arg(*ap, unsigned int);
		format_number(s, u, false, *fmt == 'u' ? 10 : *fmt == 'o' ? 8 : 16, *fmt == 'X',
			      width, left, zero, "");
		break;
	case 'p':
		u = (uintptr_t)va_arg(*ap, void *);
		format_number(s, u, false, 16, false, width ? width : 2 + 2 * (int)sizeof(void *),
			      left, true, "0x");
		break;
	case 'c':
		format_char(s, (char)va_arg(*ap, int), width, left);
		break;
	case 's':
		format_string(s, va_arg(*ap, const char *), width, precision, left);
		break;
	case '%':
		sink_put(s, '%');
		break;
	case '\0':                                     /* lone '%' at the end */
		break;
	default:                                       /* unknown: print as is */
		sink_put(s, '%');
		sink_put(s, *fmt);
		break;
	}
	return fmt;
}

/*
 * The text, with the plainest conversions (%u, %d, %s: no flag, width,
 * precision or length) done here and every other in format_spec().
 */
static void format(struct sink *s, const char *fmt, va_list *ap)
{
	for (; *fmt; fmt++) {
		if (*fmt != '%') {
			sink_put(s, *fmt);
			continue;
		}
		fmt++;
		if (*fmt == 'u') {
			format_number(s, va_arg(*ap, unsigned int), false, 10, false, 0, false, false, "");
		} else if (*fmt == 'd') {
			int64_t i = va_arg(*ap, int);

			format_number(s, i < 0 ? (uint64_t)0 - (uint64_t)i : (uint64_t)i, i < 0, 10,
				      false, 0, false, false, "");
		} else if (*fmt == 's') {
			format_string(s, va_arg(*ap, const char *), 0, -1, false);
		} else if (!*(fmt = format_spec(s, fmt, ap))) {
			return;
		}
	}
}

int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
	char dummy;
	struct sink s = { size ? buf : &dummy, size ? size : 1, 0, 0, false };
	va_list args;

	va_copy(args, ap);
	format(&s, fmt, &args);
	va_end(args);
	s.buf[s.pos] = '\0';
	return (int)s.total;
}

int snprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}

int vprintf(const char *fmt, va_list ap)
{
	char buf[256];   /* on the stack: printf may be used by IRQ handlers */
	struct sink s = { buf, sizeof(buf) + 1, 0, 0, true };
	va_list args;

	/* size is +1 because a console sink needs no NUL terminator. */
	va_copy(args, ap);
	format(&s, fmt, &args);
	va_end(args);
	sink_flush(&s);
	return (int)s.total;
}

int printf(const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vprintf(fmt, ap);
	va_end(ap);
	return n;
}

int puts(const char *s)
{
	size_t n = strlen(s);

	console_write(s, n);
	console_write("\n", 1);
	return (int)n + 1;
}

int putchar(int c)
{
	char ch = (char)c;

	console_write(&ch, 1);
	return (unsigned char)ch;
}
