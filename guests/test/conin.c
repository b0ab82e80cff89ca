/*
 * @guest: Test: reads console input into its own buffer of len=N bytes (1..4096) split into secs=K sections until end of input; prints "conin: B bytes in D deliveries (largest L), fnv X"; sleep=1 then halts forever with no timer.
 *
 * The console's input contract (docs/guest-abi.md §10): input of any size
 * arrives whole and in order, in pieces no larger than the buffer,
 * whatever its size, then one delivery with used_len 0. With sleep=1 the
 * guest then sleeps with nothing left to wake it (§7): the run goes on
 * until it is ended from outside.
 */
#include "kit.h"

static u8 buf[4096] __attribute__((aligned(4096)));
static struct lguest_dma in;
static volatile int got;

static void on_irq(unsigned irq, void *arg)
{
	(void)irq;
	(void)arg;
	got = 1;
}

static bool ready(void *arg)
{
	(void)arg;
	return got;
}

int main(void)
{
	struct lg_device *con = bus_find(LGUEST_DEVICE_T_CONSOLE, 0);
	u32 len = ip_cmdline_u32(lg_cmdline, "len", 256), secs = ip_cmdline_u32(lg_cmdline, "secs", 1);
	u32 total = 0, deliveries = 0, largest = 0, hash = 2166136261u;

	if (con == NULL)
		panic("conin: no console");
	if (len < 1 || len > sizeof(buf) || secs < 1 || secs > LGUEST_MAX_DMA_SECTIONS ||
	    secs > len)
		panic("conin: len=1..4096, secs=1..%u and at most len", LGUEST_MAX_DMA_SECTIONS);
	for (u32 i = 0, at = 0; i < secs; i++) {
		u32 part = len / secs + (i < len % secs ? 1 : 0);
		in.addr[i] = lg_pa(buf + at);
		in.len[i] = (u16)part;
		at += part;
	}
	irq_register(con->irq, on_irq, 0);
	bind_dma(LGUEST_CONSOLE_DMA_KEY, &in, 1, con->irq);
	for (;;) {
		u32 n;

		got = 0;
		idle_until(ready, 0);
		n = READ_ONCE(in.used_len);
		if (n == 0)
			break; /* end of input */
		if (n > len)
			panic("conin: used_len %u > buffer %u", n, len);
		for (u32 i = 0; i < n; i++)
			hash = (hash ^ buf[i]) * 16777619u;
		total += n;
		deliveries++;
		if (n > largest)
			largest = n;
		WRITE_ONCE(in.used_len, 0);
	}
	printf("conin: %u bytes in %u deliveries (largest %u), fnv %08x\n", total, deliveries,
	       largest, hash);
	if (ip_cmdline_u32(lg_cmdline, "sleep", 0)) {
		printf("conin: sleeping\n");
		for (;;) {
			timer_set(0);
			halt();
		}
	}
	return 0;
}
