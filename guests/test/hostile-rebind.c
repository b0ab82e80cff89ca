/*
 * @guest: Hostile: BIND_DMA abuse: thousands of bind/unbind cycles, binds past the limit of 32, garbage arrays, the console key, its peers' keys on a segment (cycles=N ms=N peers=N end=garbage).
 *
 * Every phase prints one line (each BIND_DMA result is the host's EAX:
 * 1 bound or unbound, 0 refused):
 *
 *   rebind: N bind/unbind cycles: all ok           (cycles=N, default 10000)
 *   rebind: K binds, then refused                  (until the host says 0;
 *                                                   K + what the kit holds = 32)
 *   rebind: after unbinding them: K binds, then refused   (the slots came back)
 *   rebind: garbage arrays: G of 5 bound, all unbound
 *   rebind: bad irq: refused
 *   rebind: console key 0 bound to a garbage array: 1
 *   rebind: peer slot I (MAC): bind refused|BOUND   (each peer published in
 *                                                   our copy of the segment's
 *                                                   table: wait for peers=N)
 *   rebind: L cycles of 40 binds and unbinds in M ms   (ms=M, default 3000)
 *   rebind: done
 *
 * The last phase binds 40 random keys of its own memory with random
 * arrays (so 33+ binds, most refused), then unbinds them all, over and
 * over for M ms, making hypercalls all the time. Then it idles.
 *
 * With end=garbage it then publishes its MAC in its own slot with the
 * promiscuous bit (every peer sends it every frame) and binds its own
 * receive key to an array outside its memory: the first frame a peer
 * sends it kills it ("bad address in registered DMA struct"), while the
 * sender just sees the frame not taken.
 */
#include "kit.h"

#define GARBAGE 0xFFFFFF00u

static u32 rng = 12345;

static u32 rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 17;
	rng ^= rng << 5;
	return rng;
}

/* BIND_DMA as the host answers it (no wrapper checks). */
static u32 bind(u32 key, u32 dmas, u32 num, u32 irq)
{
	return hcall(LHCALL_BIND_DMA, key, dmas, (num << 8) | irq);
}

static u32 unbind(u32 key, u32 dmas)
{
	return hcall(LHCALL_BIND_DMA, key, dmas, 0);
}

static struct lguest_dma arrays[40][2];
static u32 keys[40];
static u8 rxmem[8 * NET_FRAME_MAX];
static struct lguest_dma rx[8];
/* Private keys: addresses in our own memory (a page of our own). */
static u8 keypage[LGUEST_PAGE_SIZE] __attribute__((aligned(4096)));

#define IRQ 9

/* Bind distinct private keys until the host refuses; returns how many. */
static unsigned bind_until_refused(void)
{
	unsigned k = 0;

	while (k < 40 && bind(lg_pa(keypage) + 4 * k, lg_pa(arrays[k]), 2, IRQ) == 1)
		k++;
	return k;
}

static void unbind_all(unsigned k)
{
	for (unsigned i = 0; i < k; i++)
		if (unbind(lg_pa(keypage) + 4 * i, lg_pa(arrays[i])) != 1)
			panic("rebind: unbind %u refused", i);
}

static bool peer_seen(struct lg_device *d, unsigned me, unsigned want)
{
	volatile u8 *page = d->mem;
	unsigned n = 0;

	for (unsigned i = 0; i < 682; i++)
		if (i != me && page[i * 6] != 0)
			n++;
	return n >= want;
}

int main(void)
{
	u32 cycles = ip_cmdline_u32(lg_cmdline, "cycles", 10000), ms = ip_cmdline_u32(lg_cmdline, "ms", 3000);
	u32 peers = ip_cmdline_u32(lg_cmdline, "peers", 0);
	struct lg_device *netdev = net_count() > 0 ? net_device(0) : NULL;
	unsigned k, k2, me = 0;
	u32 bad = 0, g = 0;

	for (u32 i = 0; i < cycles; i++) {
		if (bind(lg_pa(keypage), lg_pa(arrays[0]), 2, IRQ) != 1 ||
		    unbind(lg_pa(keypage), lg_pa(arrays[0])) != 1)
			bad++;
	}
	if (bad)
		printf("rebind: %u bind/unbind cycles: %u FAILED\n", cycles, bad);
	else
		printf("rebind: %u bind/unbind cycles: all ok\n", cycles);

	k = bind_until_refused();
	printf("rebind: %u binds, then refused\n", k);
	unbind_all(k);
	k2 = bind_until_refused();
	printf("rebind: after unbinding them: %u binds, then refused\n", k2);
	unbind_all(k2);

	/* Garbage arrays: outside memory, at 0, over the descriptor page, a
	 * 65535-element array, one that wraps around 2^32. */
	{
		static const u32 at[5] = { GARBAGE, 0, 0, 0, 0xFFFFFFF0u };
		static const u32 num[5] = { 0xFFFF, 1000, 16, 0xFFFF, 2 };
		u32 where[5];

		where[0] = at[0];
		where[1] = at[1];
		where[2] = bus_desc_addr();
		where[3] = lg_pa(arrays);
		where[4] = at[4];
		for (unsigned i = 0; i < 5; i++)
			if (bind(lg_pa(keypage) + 64 + 4 * i, where[i], num[i], IRQ) == 1)
				g++;
		for (unsigned i = 0; i < 5; i++)
			unbind(lg_pa(keypage) + 64 + 4 * i, where[i]);
		printf("rebind: garbage arrays: %u of 5 bound, all unbound\n", g);
	}
	printf("rebind: bad irq: %s\n",
	       bind(lg_pa(keypage), lg_pa(arrays[0]), 1, 32) == 0 &&
	       bind(lg_pa(keypage), lg_pa(arrays[0]), 1, 255) == 0 ? "refused" : "BOUND");
	printf("rebind: console key 0 bound to a garbage array: %u\n", bind(0, GARBAGE, 0xFFFF, IRQ));

	if (netdev && netdev->mem) {
		volatile u8 *page = netdev->mem;
		struct lguest_timespec start = time_now();

		me = netdev->desc->features & (netdev->desc->num_pages * LGUEST_PAGE_SIZE - 1);
		while (!peer_seen(netdev, me, peers) &&
		       time_diff_ns(start, time_now()) < 5000000000ull)
			sleep_ms(10);
		for (unsigned i = 0; i < 8; i++)
			dma_fill(&rx[i], rxmem + i * NET_FRAME_MAX, NET_FRAME_MAX);
		for (unsigned i = 0; i < 682; i++) {
			char m[18];

			if (i == me || page[i * 6] == 0)
				continue;
			net_format_mac(m, (const u8 *)&page[i * 6]);
			printf("rebind: peer slot %u (%s): bind %s\n", i, m,
			       bind(lg_pa(page) + 4 * i, lg_pa(rx), 8, netdev->irq) == 1 ? "BOUND"
											: "refused");
		}
	}

	{
		struct lguest_timespec start = time_now();
		u32 loops = 0;

		do {
			for (unsigned i = 0; i < 40; i++) {
				keys[i] = (lg_pa(keypage) + (rnd() % LGUEST_PAGE_SIZE)) & ~3u;
				bind(keys[i], lg_pa(arrays[rnd() % 40]), rnd() & 0xFFFF, 1 + rnd() % 31);
			}
			for (unsigned i = 0; i < 40; i++)
				for (unsigned j = 0; j < 40; j++)
					unbind(keys[i], lg_pa(arrays[j]));
			loops++;
		} while (time_diff_ns(start, time_now()) < (u64)ms * 1000000ull);
		printf("rebind: %u cycles of 40 binds and unbinds in %u ms\n", loops, ms);
	}
	k = bind_until_refused();
	unbind_all(k);
	printf("rebind: done (%u binds free)\n", k);

	if (netdev && netdev->mem) {
		char v[16];

		if (ip_cmdline_arg(lg_cmdline, "end", v, sizeof(v)) && strcmp(v, "garbage") == 0) {
			volatile u8 *s = (volatile u8 *)netdev->mem + me * 6;

			if (bind(lg_pa(netdev->mem) + 4 * me, GARBAGE, 8, netdev->irq) != 1)
				panic("rebind: own key refused");
			s[1] = 0xBA;
			s[2] = 0xD0;
			s[0] = 0x02 | NET_PROMISC_BIT;
			printf("rebind: own receive key bound to a garbage array\n");
		}
	}
	for (;;)
		halt();
}
