/*
 * @guest: Bench: take every frame on net 0 and count it; never answers.
 *
 * Opens net 0 (the driver's 8 receive buffers, handed back as soon as each
 * frame is counted) and idles. Prints "netsink: up" once ready.
 */
#include "kit.h"

static unsigned long frames, bytes;

static void rx(int net, u8 *f, u32 len, void *arg)
{
	(void)net;
	(void)f;
	(void)arg;
	frames++;
	bytes += len;
}

int main(void)
{
	if (net_open(0) < 0)
		panic("netsink: no network device");
	net_set_rx_handler(0, rx, 0);
	printf("netsink: up\n");
	for (;;)
		halt();
}
