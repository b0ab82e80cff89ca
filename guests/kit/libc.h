/*
 * libc.h: the guest kit's tiny freestanding C library.
 *
 * Strings and memory, a printf subset, and a bump allocator. Nothing here
 * knows about lguest or the architecture: printf() ends in console_write()
 * (console.c) and the heap range comes from the kit (alloc.c).
 *
 * printf conversions: %d %i %u %x %X %o %s %c %p %%, with the flags '-' and
 * '0', a width (number or *), a precision for %s (".N" or ".*"), and the
 * length modifiers l, ll, z (so %lu, %llx, %zu work on every target).
 */
#ifndef LGUEST_KIT_LIBC_H
#define LGUEST_KIT_LIBC_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <stdnoreturn.h>

#ifndef NULL
#define NULL ((void *)0)
#endif

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define ALIGN_UP(x, a) (((x) + ((a) - 1)) & ~((a) - 1))
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))

/* Memory and strings. */
void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
void *memchr(const void *s, int c, size_t n);
size_t strlen(const char *s);
size_t strnlen(const char *s, size_t max);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
char *strchr(const char *s, int c);
char *strrchr(const char *s, int c);
char *strstr(const char *haystack, const char *needle);
char *strcpy(char *dst, const char *src);
size_t strlcpy(char *dst, const char *src, size_t size);
char *strtok_r(char *s, const char *delim, char **save);
unsigned long strtoul(const char *s, char **end, int base);
long strtol(const char *s, char **end, int base);
int atoi(const char *s);

/* Characters. */
static inline int isdigit(int c) { return c >= '0' && c <= '9'; }
static inline int isspace(int c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
static inline int isprint(int c) { return c >= 0x20 && c < 0x7f; }
static inline int isxdigit(int c)
{
	return isdigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
static inline int tolower(int c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }

/* Formatted output. printf/puts/putchar go to the console. */
int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
int snprintf(char *buf, size_t size, const char *fmt, ...) PRINTF_LIKE(3, 4);
int vprintf(const char *fmt, va_list ap);
int printf(const char *fmt, ...) PRINTF_LIKE(1, 2);
int puts(const char *s);           /* writes s and "\n" */
int putchar(int c);

/* CRC-32 as zlib's crc32(): IEEE polynomial (reflected 0xEDB88320), init
 * and final xor ~0 handled inside. Start with crc = 0 and feed the result
 * back in: crc32(crc32(0, a, n), b, m) == crc32(0, a||b, n+m). */
uint32_t crc32(uint32_t crc, const void *buf, size_t len);

/* Heap: a bump allocator from the end of the image to the end of RAM.
 * free() does nothing. malloc returns 16-byte aligned memory or NULL. */
void *malloc(size_t n);
void *calloc(size_t n, size_t size);
void free(void *p);
void *alloc_pages(size_t npages);  /* 4096-aligned, zeroed, or NULL */
uintptr_t heap_start(void);
uintptr_t heap_end(void);
size_t heap_used(void);
size_t heap_free(void);

#endif /* LGUEST_KIT_LIBC_H */
