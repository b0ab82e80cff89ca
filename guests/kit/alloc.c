/*
 * alloc.c: a bump allocator over [end of image, end of RAM).
 *
 * Guests are small and short-lived; nothing is ever freed. RAM is zeroed
 * by the Launcher, but calloc/alloc_pages clear memory anyway.
 */
#include "kit.h"

static uintptr_t heap_next;

uintptr_t heap_start(void)
{
	return ALIGN_UP(arch_heap_start(), (uintptr_t)16);
}

uintptr_t heap_end(void)
{
	return lg_mem;
}

static void *bump(size_t n, uintptr_t align)
{
	uintptr_t p;

	if (!heap_next)
		heap_next = heap_start();
	p = ALIGN_UP(heap_next, align);
	if (p < heap_next || p > heap_end() || n > heap_end() - p)
		return NULL;
	heap_next = p + n;
	return (void *)p;
}

void *malloc(size_t n)
{
	return bump(n ? n : 1, 16);
}

void *calloc(size_t n, size_t size)
{
	void *p;

	if (size && n > (size_t)-1 / size)
		return NULL;
	p = malloc(n * size);
	if (p)
		memset(p, 0, n * size);
	return p;
}

void free(void *p)
{
	(void)p;
}

void *alloc_pages(size_t npages)
{
	void *p;

	if (npages > heap_end() / LGUEST_PAGE_SIZE)
		return NULL;
	p = bump(npages * LGUEST_PAGE_SIZE, LGUEST_PAGE_SIZE);
	if (p)
		memset(p, 0, npages * LGUEST_PAGE_SIZE);
	return p;
}

size_t heap_used(void)
{
	return heap_next ? heap_next - heap_start() : 0;
}

size_t heap_free(void)
{
	uintptr_t next = heap_next ? heap_next : heap_start();

	return next < heap_end() ? heap_end() - next : 0;
}
