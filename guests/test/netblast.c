/*
 * @guest: Bench: blast COUNT frames of SIZE bytes to segment slot PEER.
 *
 * Command line: count=N size=S peer=SLOT. Opens net 0, then sends the same
 * frame straight to peer_key(PEER) with SEND_DMA, COUNT times, without the
 * driver's per-frame scan of the 682-slot table: this measures the
 * inter-guest DMA path itself. Prints
 * "netblast: N frames of S bytes, T taken" and powers off.
 */
#include "kit.h"

static u8 frame[NET_FRAME_MAX] __attribute__((aligned(4096)));

static u32 arg(const char *name, u32 def)
{
	const char *p = strstr(lg_cmdline, name);
	return p ? (u32)strtoul(p + strlen(name), 0, 0) : def;
}

int main(void)
{
	u32 count = arg("count=", 100000), size = arg("size=", 64), peer = arg("peer=", 1);
	struct lg_device *dev = net_device(0);
	struct lguest_dma dma;
	u32 taken = 0;

	if (!dev || net_open(0) < 0)
		panic("netblast: no network device");
	if (size < NET_ETH_HLEN || size > NET_FRAME_MAX)
		panic("netblast: size must be 14..1514");
	memset(frame, 0xff, 6);                 /* broadcast: every sink takes it */
	memcpy(frame + 6, net_mac(0), 6);
	frame[12] = 0x88;                       /* local experimental ethertype */
	frame[13] = 0xb5;
	for (u32 i = 14; i < size; i++)
		frame[i] = (u8)i;
	if (dma_fill(&dma, frame, size))
		panic("netblast: frame does not fit one lguest_dma");
	u32 key = lg_pa(dev->mem) + 4 * peer;
	for (u32 n = 0; n < count; n++)
		if (send_dma(key, &dma) == size)
			taken++;
	printf("netblast: %u frames of %u bytes, %u taken\n", count, size, taken);
	return 0;
}
