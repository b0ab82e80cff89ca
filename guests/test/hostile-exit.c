/*
 * @guest: Hostile: dies in the middle of I/O (mode=blk|ring|trap|net|ping; sector=N after=K ip=A.B.C.D/N).
 *
 *   mode=blk   unbinds disk 0's reply buffer, sends a write of sector N
 *              (default 3; the Launcher must refuse it: no reply buffer)
 *              and crashes right after the SEND_DMA:
 *              CRASH "exit: right after a write with no reply buffer"
 *   mode=ring  puts a write of sector N and then a CRASH into the async
 *              hypercall ring and flushes it: the Launcher serves the
 *              write (result 1, acknowledged), and the guest dies at the
 *              next ring entry: CRASH "exit: with a write in the async ring"
 *   mode=trap  puts a write of sector N into the async ring and traps
 *              (wasm `unreachable`) before any hypercall runs it: the
 *              write must never happen
 *   mode=net   publishes its MAC in its segment slot with the promiscuous
 *              bit (every peer sends it every frame), binds 8 receive
 *              buffers of its own with the net IRQ masked, waits (at most
 *              10 s) until all 8 hold a frame, prints
 *              "exit: 8 frames pending" and crashes:
 *              CRASH "exit: with 8 frames pending"
 *   mode=ping  brings up the IPv4 stack (ip=), answers pings, and after
 *              answering K echo requests (after=K, default 2) crashes:
 *              CRASH "exit: mid-ping after K echo replies"
 *
 * The data of the write is 512 bytes, byte i = (i * 7 + N) & 0xFF; the
 * guest prints "exit: writing sector N" before it.
 */
#include "kit.h"

static u8 data[512] __attribute__((aligned(512)));
static struct lguest_dma dma;
static u8 rxmem[8 * NET_FRAME_MAX];
static struct lguest_dma rx[8];

/* Fill the block page for a write of `sector` and describe the data. */
static u32 prepare_write(u32 sector)
{
	struct lg_device *dev;
	volatile struct lguest_block_page *p;

	if (blk_count() < 1 || !(dev = blk_device(0)) || !dev->mem)
		panic("exit: no disk (add --block)");
	for (u32 i = 0; i < sizeof(data); i++)
		data[i] = (u8)(i * 7 + sector);
	dma_fill(&dma, data, sizeof(data));
	p = dev->mem;
	p->type = 1;
	p->sector = sector;
	p->bytes = sizeof(data);
	p->result = 0;
	printf("exit: writing sector %u\n", sector);
	return blk_key(0);
}

static void ring_queue(unsigned i, u32 eax, u32 edx, u32 ebx)
{
	lguest_data.hcalls[i].eax = eax;
	lguest_data.hcalls[i].edx = edx;
	lguest_data.hcalls[i].ebx = ebx;
	lguest_data.hcalls[i].ecx = 0;
	barrier();
	WRITE_ONCE(lguest_data.hcall_status[i], 0);
}

static const char ring_msg[] = "exit: with a write in the async ring";

static unsigned full_buffers(void)
{
	unsigned n = 0;

	for (unsigned i = 0; i < 8; i++)
		if (READ_ONCE(rx[i].used_len) != 0)
			n++;
	return n;
}

int main(void)
{
	char mode[16];
	u32 sector = ip_cmdline_u32(lg_cmdline, "sector", 3);

	if (!ip_cmdline_arg(lg_cmdline, "mode", mode, sizeof(mode)))
		panic("exit: no mode= (blk, ring, trap, net, ping)");

	if (strcmp(mode, "blk") == 0) {
		u32 key = prepare_write(sector);

		unbind_dma(key, blk_reply(0));
		hcall(LHCALL_SEND_DMA, key, lg_pa(&dma), 0);
		lguest_crash("exit: right after a write with no reply buffer");
	}
	if (strcmp(mode, "ring") == 0) {
		u32 key = prepare_write(sector);

		ring_queue(0, LHCALL_SEND_DMA, key, lg_pa(&dma));
		ring_queue(1, LHCALL_CRASH, lg_pa(ring_msg), 0);
		hcall(LHCALL_FLUSH_ASYNC, 0, 0, 0);
		panic("exit: STILL ALIVE after the ring");
	}
	if (strcmp(mode, "trap") == 0) {
		u32 key = prepare_write(sector);

		ring_queue(0, LHCALL_SEND_DMA, key, lg_pa(&dma));
		__builtin_trap();
	}
	if (strcmp(mode, "net") == 0) {
		struct lg_device *dev = net_count() > 0 ? net_device(0) : NULL;
		volatile u8 *s;
		unsigned me;
		struct lguest_timespec start;

		if (!dev || !dev->mem)
			panic("exit: no network device (add --net)");
		me = dev->desc->features & (dev->desc->num_pages * LGUEST_PAGE_SIZE - 1);
		irq_mask(dev->irq);
		for (unsigned i = 0; i < 8; i++)
			dma_fill(&rx[i], rxmem + i * NET_FRAME_MAX, NET_FRAME_MAX);
		if (bind_dma(lg_pa(dev->mem) + 4 * me, rx, 8, dev->irq))
			panic("exit: bind refused");
		s = (volatile u8 *)dev->mem + me * 6;
		s[1] = 0;
		s[2] = (u8)lguest_data.guestid;
		s[3] = 0;
		s[4] = 0xE0;
		s[5] = 0x17;
		s[0] = 0x02 | NET_PROMISC_BIT;
		printf("exit: promiscuous in slot %u, net IRQ masked\n", me);
		start = time_now();
		while (full_buffers() < 8 && time_diff_ns(start, time_now()) < 10000000000ull)
			sleep_ms(5);
		printf("exit: %u frames pending\n", full_buffers());
		lguest_crash(full_buffers() == 8 ? "exit: with 8 frames pending"
						 : "exit: buffers did not fill");
	}
	if (strcmp(mode, "ping") == 0) {
		u32 after = ip_cmdline_u32(lg_cmdline, "after", 2);
		struct ip_stats st;
		char msg[64];

		if (ip_init() || !ip_configured())
			panic("exit: mode=ping needs ip=A.B.C.D/N");
		printf("exit: answering pings\n");
		do {
			sleep_ms(5);
			ip_stats(&st);
		} while (st.icmp_echo_answered < after);
		snprintf(msg, sizeof(msg), "exit: mid-ping after %lu echo replies",
			 st.icmp_echo_answered);
		lguest_crash(msg);
	}
	panic("exit: unknown mode=%s", mode);
}
