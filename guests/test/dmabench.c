/*
 * @guest: Bench: COUNT Launcher-bound SEND_DMAs of 16 x 4 KiB sections to KEY.
 *
 * Command line: count=N key=ADDR (ADDR: a key the launcher's bench device
 * watches). Prints "dmabench: N sends, M bytes acknowledged" and powers off.
 */
#include "kit.h"

static u8 buf[16 * 4096] __attribute__((aligned(4096)));

static u32 arg(const char *name, u32 def)
{
	const char *p = strstr(lg_cmdline, name);
	if (!p)
		return def;
	return (u32)strtoul(p + strlen(name), 0, 0);
}

int main(void)
{
	u32 count = arg("count=", 1000), key = arg("key=", 0);
	struct lguest_dma dma;
	u64 acked = 0;

	memset(&dma, 0, sizeof(dma));
	for (int i = 0; i < 16; i++) {
		buf[i * 4096] = (u8)i;
		dma.addr[i] = lg_pa(buf + i * 4096);
		dma.len[i] = 4096;
	}
	for (u32 n = 0; n < count; n++)
		acked += send_dma(key, &dma);
	printf("dmabench: %u sends, %llu bytes acknowledged\n", count, (unsigned long long)acked);
	return 0;
}
