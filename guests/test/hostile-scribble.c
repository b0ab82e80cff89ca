/*
 * @guest: Hostile: scribbles random bytes over its device pages, descriptor table and lguest_data while doing I/O, then checks its disk and network still work (seed=N rounds=N ring=1 ip=A.B.C.D/N peer=A.B.C.D).
 *
 * For ROUNDS rounds (default 20000) it writes random bytes (xorshift32
 * seeded with SEED, default 1) over a random stretch of one of
 *
 *   - the device descriptor page (types, features, status words, pfns),
 *   - every device's pages: the net segment's MAC table (our copy of it),
 *     the block device's request page,
 *   - its own lguest_data, except the async hypercall ring: irq_enabled,
 *     blocked_interrupts, cr2, the time, reserve_mem, guestid, tsc_khz and
 *     the noirq range,
 *
 * and then makes one hypercall that reads or acts on what it scribbled: a
 * NOP; a block request put in the async ring *before* the page was
 * scribbled and run by the NOP after it (the request page changes while
 * the request is in flight); a frame sent to the peers our scribbled copy
 * of the MAC table names; a raw SEND_DMA to a random key of the device
 * pages. It never sleeps while scribbling (a random blocked_interrupts may
 * mask the timer). Prints
 *
 *   scribble: R rounds (seed S): B block requests, F frames, D sends
 *
 * then restores what the kit needs (irq_enabled, blocked_interrupts, its
 * MAC slot) and checks that I/O still works:
 *
 *   scribble: blk ok          (disk 0: a write, read back and compared)
 *   scribble: ping PEER ok    (with peer=: 3 pings, at least one answered)
 *   scribble: done
 *
 * and then answers ARP, ping and UDP echo (netd-style) until it is stopped.
 * With ring=1 it last scribbles the async hypercall ring itself and
 * flushes it: the host runs whatever that holds, which normally kills the
 * guest with the reason of the first bad call; if it lives it prints
 * "scribble: ring survived" and goes on as above.
 */
#include "kit.h"

static u32 rng;

static u32 rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 17;
	rng ^= rng << 5;
	return rng;
}

static void fill(volatile u8 *p, u32 n)
{
	for (u32 i = 0; i < n; i++)
		p[i] = (u8)rnd();
}

/* Where we scribble: start and length of each region. */
struct region {
	volatile u8 *p;
	u32 len;
};

static struct region regions[2 + LGUEST_MAX_DEVICES];
static unsigned nregions;

/* The async hypercall ring: our cursor follows the host's (both start at 0). */
static unsigned ring_next;

static void ring_queue(u32 eax, u32 edx, u32 ebx, u32 ecx)
{
	unsigned i = ring_next;

	lguest_data.hcalls[i].eax = eax;
	lguest_data.hcalls[i].edx = edx;
	lguest_data.hcalls[i].ebx = ebx;
	lguest_data.hcalls[i].ecx = ecx;
	barrier();
	WRITE_ONCE(lguest_data.hcall_status[i], 0);
	ring_next = (i + 1) % LHCALL_RING_SIZE;
}

static u8 scratch[2 * LGUEST_PAGE_SIZE] __attribute__((aligned(4096)));
static u8 frame[NET_FRAME_MAX];
static u8 check[LGUEST_PAGE_SIZE], back[LGUEST_PAGE_SIZE];

int main(void)
{
	u32 rounds = ip_cmdline_u32(lg_cmdline, "rounds", 20000), seed = ip_cmdline_u32(lg_cmdline, "seed", 1);
	u32 saved_irq = lguest_data.irq_enabled, saved_blocked = lguest_data.blocked_interrupts[0];
	unsigned long blk_reqs = 0, frames = 0, sends = 0;
	struct lg_device *blk = blk_count() > 0 ? blk_device(0) : NULL;
	bool net = net_count() > 0 && net_ready(0);
	volatile u8 *ld = (volatile u8 *)&lguest_data;
	char peer[20];
	struct lguest_dma dma;

	rng = seed ? seed : 1;
	if (net && ip_init())
		panic("scribble: bad ip= '%s'", lg_cmdline);

	regions[nregions++] = (struct region){ lg_va(bus_desc_addr()), LGUEST_PAGE_SIZE };
	for (unsigned i = 0; i < LGUEST_MAX_DEVICES; i++) {
		struct lg_device *d = bus_device(i);

		if (d && d->mem)
			regions[nregions++] =
				(struct region){ d->mem, d->desc->num_pages * LGUEST_PAGE_SIZE };
	}
	printf("scribble: %u region(s), %u rounds, seed %u\n", nregions, rounds, seed);

	for (u32 r = 0; r < rounds; r++) {
		unsigned which = rnd() % (nregions + 1);
		u32 action = rnd() % 4;

		if (which == nregions) {
			/* lguest_data without the ring: bytes 0..19 and 1108..1127. */
			u32 off = rnd() % 20, n = 1 + rnd() % 4;

			if (off + n > 20)
				n = 20 - off;
			fill(ld + (rnd() & 1 ? 0 : 1108) + off, n);
		} else {
			struct region *g = &regions[which];
			u32 off = rnd() % g->len, n = 1 + rnd() % 64;

			if (rnd() % 16 == 0)
				off = 0, n = g->len;        /* the whole page now and then */
			if (off + n > g->len)
				n = g->len - off;
			if (action == 1 && blk) {
				/* A block request queued first, scribbled while "in flight". */
				volatile struct lguest_block_page *p = blk->mem;

				p->type = (int32_t)(rnd() & 1);
				p->sector = rnd() % 64;
				p->bytes = 512;
				p->result = 0;
				dma_fill(&dma, scratch + (rnd() % 8) * 512, 512);
				ring_queue(LHCALL_SEND_DMA, lg_pa(blk->mem), lg_pa(&dma), 0);
				fill(g->p + off, n);
				hcall(LHCALL_FLUSH_ASYNC, 0, 0, 0);
				blk_reqs++;
				continue;
			}
			fill(g->p + off, n);
		}
		if (action == 2 && net) {
			for (u32 i = 0; i < 64; i++)
				frame[i] = (u8)rnd();
			frame[0] &= 0xFE;                   /* unicast to a random MAC */
			if (rnd() & 1)
				memset(frame, 0xFF, 6);     /* or a broadcast */
			net_send(0, frame, 64);
			frames++;
		} else if (action == 3 && nregions > 1) {
			/* A raw send to a random 4-aligned key in some device page. */
			struct region *g = &regions[1 + rnd() % (nregions - 1)];

			dma_fill(&dma, scratch, 1 + rnd() % 256);
			hcall(LHCALL_SEND_DMA, lg_pa(g->p) + (rnd() % g->len & ~3u), lg_pa(&dma), 0);
			sends++;
		} else {
			hcall(LHCALL_FLUSH_ASYNC, 0, 0, 0);
		}
	}
	WRITE_ONCE(lguest_data.blocked_interrupts[0], saved_blocked);
	WRITE_ONCE(lguest_data.irq_enabled, saved_irq);
	printf("scribble: %u rounds (seed %u): %lu block requests, %lu frames, %lu sends\n",
	       rounds, seed, blk_reqs, frames, sends);

	if (ip_cmdline_u32(lg_cmdline, "ring", 0)) {
		fill(ld + 20, 1108 - 20);               /* hcall_status and hcalls */
		hcall(LHCALL_FLUSH_ASYNC, 0, 0, 0);
		memset((void *)lguest_data.hcall_status, 0xFF, LHCALL_RING_SIZE);
		ring_next = 0;
		printf("scribble: ring survived\n");
	}

	if (blk) {
		int rc;

		for (u32 i = 0; i < sizeof(check); i++)
			check[i] = (u8)rnd();
		rc = blk_write(0, 8, check, sizeof(check));
		if (rc == 0)
			rc = blk_read(0, 8, back, sizeof(back));
		if (rc)
			printf("scribble: blk FAILED: %s\n", blk_strerror(rc));
		else
			printf("scribble: blk %s\n", memcmp(check, back, sizeof(check)) ? "MISMATCH" : "ok");
	}
	if (net) {
		/* Our slot may hold anything now: publish our MAC again. */
		net_close(0);
		net_open(0);
		if (ip_cmdline_arg(lg_cmdline, "peer", peer, sizeof(peer))) {
			u32 addr;
			unsigned ok = 0;
			struct ip_ping_result res;

			if (!ip_parse_addr(peer, &addr))
				panic("scribble: bad peer=%s", peer);
			for (u16 seq = 1; seq <= 3; seq++)
				if (ip_ping(addr, seq, 56, 1000, &res) == 0)
					ok++;
			printf("scribble: ping %s %s\n", peer, ok ? "ok" : "FAILED");
		}
	}
	printf("scribble: done\n");
	for (;;)
		halt();
}
