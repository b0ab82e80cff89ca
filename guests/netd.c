/*
 * @guest: Network daemon: answers ARP, ping and UDP echo (port 7) on net0; ip=A.B.C.D/N [gw=A.B.C.D].
 *
 * Brings up the tiny IPv4 stack (kit/ip.c) on the first net device with the
 * address from its command line, prints one line
 *
 *   netd: 10.0.0.1/24 on net0 (MAC 02:00:00:00:00:00)
 *
 * and then only sleeps (HALT): every frame is answered by the net device's
 * interrupt handler. It never powers off by itself. Without a net device,
 * or without a usable ip=, it says why and crashes (exit status 1).
 */
#include "kit.h"

int main(void)
{
	char a[16], mac[18];
	int rc = ip_init();

	if (rc == IP_ENODEV)
		panic("netd: no network device (add --net)");
	if (rc == IP_EINVAL)
		panic("netd: bad ip=/gw= '%s' (use ip=A.B.C.D/N gw=A.B.C.D)", lg_cmdline);
	if (rc)
		panic("netd: net0: %s", ip_strerror(rc));
	if (!ip_configured())
		panic("netd: no address (use ip=A.B.C.D/N)");
	printf("netd: %s/%u on net%d (MAC %s)\n", ip_format(a, ip_addr()), ip_prefix(), ip_net(),
	       net_format_mac(mac, net_mac(ip_net())));
	for (;;)
		halt();
}
