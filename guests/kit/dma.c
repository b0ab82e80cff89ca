/*
 * dma.c: the lguest I/O hypercalls (protocol §5, recipe §11).
 *
 * Keys are guest-physical addresses, by convention inside the device's own
 * page (the console uses 0). SEND_DMA is synchronous: when it returns, the
 * receiver (Launcher or other guest) has written used_len. Bound buffers are
 * "free" while used_len == 0; the host fills one, sets used_len and raises
 * the IRQ; the driver consumes it and writes used_len = 0 to give it back.
 */
#include "kit.h"

int dma_fill(struct lguest_dma *dma, const void *buf, size_t len)
{
	uintptr_t p = (uintptr_t)buf;
	unsigned i = 0;

	memset(dma, 0, sizeof(*dma));
	while (len) {
		size_t room = LGUEST_PAGE_SIZE - (p & (LGUEST_PAGE_SIZE - 1));
		size_t n = len < room ? len : room;

		if (i == LGUEST_MAX_DMA_SECTIONS)
			return -1;
		dma->addr[i] = (u32)p;
		dma->len[i] = (u16)n;
		i++;
		p += n;
		len -= n;
	}
	return 0;
}

u32 send_dma(u32 key, struct lguest_dma *dma)
{
	/* The host may leave used_len untouched (no receiver): zero it. */
	WRITE_ONCE(dma->used_len, 0);
	hcall(LHCALL_SEND_DMA, key, lg_pa(dma), 0);
	return READ_ONCE(dma->used_len);
}

int bind_dma(u32 key, struct lguest_dma *dmas, unsigned num, unsigned irq)
{
	if (num == 0 || num > 0xFFFF || irq == 0 || irq >= LGUEST_IRQS)
		return -1;
	return hcall(LHCALL_BIND_DMA, key, lg_pa(dmas), (num << 8) | irq) == 1 ? 0 : -1;
}

void unbind_dma(u32 key, struct lguest_dma *dmas)
{
	hcall(LHCALL_BIND_DMA, key, lg_pa(dmas), 0);
}
