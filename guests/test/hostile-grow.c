/*
 * @guest: Hostile: memory.grow on its fixed-size memory (then console echo, or ip=A.B.C.D/N pings=K).
 * @arch: wasm32
 *
 * A guest's memory is fixed in size (maximum = its RAM); V8 detaches the
 * memory's ArrayBuffer on any grow that succeeds, memory.grow 0 too, and
 * every host view of the guest's RAM went with it (docs/security.md
 * "Guest memory never moves"). The fuel pass rewrites each memory.grow
 * into what a grow at the maximum returns. This guest grows by 0, 1,
 * 65536 and 0xFFFFFFFF pages and prints
 *
 *   grow: size S, grow(0) S, grow(1) -1, grow(65536) -1, grow(-1) -1, size S
 *
 * then proves its own DMA still works (an rng read, console output after
 * each grow) and, without ip=, echoes console input a line at a time
 * ("grow: read LINE"), growing by 0 before each read, until end of input:
 * "grow: done". With ip=, it brings up its IPv4 stack and answers pings,
 * growing by 0 every 5 ms, until it has answered K (pings=, default 3):
 * "grow: answered K pings".
 */
#include "kit.h"

static int grow(unsigned pages)
{
	return (int)__builtin_wasm_memory_grow(0, pages);
}

int main(void)
{
	static u8 rb[4096] __attribute__((aligned(4096)));
	int size = (int)__builtin_wasm_memory_size(0);
	int g0 = grow(0), g1 = grow(1), g2 = grow(65536), g3 = grow(0xFFFFFFFFu);
	char v[32];

	printf("grow: size %d, grow(0) %d, grow(1) %d, grow(65536) %d, grow(-1) %d, size %d\n",
	       size, g0, g1, g2, g3, (int)__builtin_wasm_memory_size(0));
	memset(rb, 0, sizeof(rb));
	grow(0);
	long n = rng_read(rb, sizeof(rb));
	u32 nonzero = 0;
	for (u32 i = 0; i < sizeof(rb); i++)
		nonzero += rb[i] != 0;
	printf("grow: rng %ld bytes, %s\n", n, nonzero > 3000 ? "random" : "NOT RANDOM");
	if (ip_cmdline_arg(lg_cmdline, "ip", v, sizeof(v))) {
		u32 pings = ip_cmdline_u32(lg_cmdline, "pings", 3);
		struct ip_stats st;

		if (ip_init() || !ip_configured())
			panic("grow: bad ip=");
		printf("grow: answering pings\n");
		do {
			grow(0);
			sleep_ms(5);
			ip_stats(&st);
		} while (st.icmp_echo_answered < pings);
		printf("grow: answered %lu pings\n", st.icmp_echo_answered);
		return 0;
	}
	for (;;) {
		char line[128];
		u32 len = 0;
		int c;

		grow(0);
		while ((c = console_getc()) >= 0 && c != '\n')
			if (len < sizeof(line) - 1)
				line[len++] = (char)c;
		line[len] = 0;
		if (c < 0 && len == 0)
			break;
		printf("grow: read %s\n", line);
		if (c < 0)
			break;
	}
	printf("grow: done\n");
	return 0;
}
