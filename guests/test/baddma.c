/*
 * @guest: Test: SEND_DMA to the console with a section at 0xFFFFF000 (100 bytes).
 */
#include "kit.h"

int main(void)
{
	struct lguest_dma dma;

	printf("baddma: sending a bad DMA\n");
	memset(&dma, 0, sizeof(dma));
	dma.addr[0] = 0xFFFFF000u;
	dma.len[0] = 100;
	send_dma(LGUEST_CONSOLE_DMA_KEY, &dma);
	panic("baddma: the host accepted the bad DMA");
}
