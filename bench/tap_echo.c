/*
 * The net.tap.rtt.floor responder (bench/tap.ts builds this with the host's
 * clang; it is not a guest): the least any userspace program behind a tap
 * does to answer a ping, measured next to netd in the same run.
 *
 *   tap_echo IFNAME ADDR   create tap IFNAME (as lguest's --net tap: does:
 *                          IFF_TAP | IFF_NO_PI), print "up", then answer
 *                          ARP requests and ICMP echo requests for the
 *                          IPv4 address ADDR: blocking read(2), the reply
 *                          made in place (MACs and addresses swapped, the
 *                          checksum fixed), write(2).
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static const uint8_t MAC[6] = { 0x02, 0x00, 0x00, 0x00, 0xfe, 0x01 };

int main(int argc, char **argv)
{
	struct ifreq ifr;
	uint8_t f[2048], tmp[6];
	struct in_addr me;
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);

	if (argc < 3 || fd < 0 || inet_pton(AF_INET, argv[2], &me) != 1)
		return 2;
	memset(&ifr, 0, sizeof(ifr));
	strncpy(ifr.ifr_name, argv[1], IFNAMSIZ - 1);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
	if (ioctl(fd, TUNSETIFF, &ifr) < 0)
		return 1;
	printf("up\n");
	fflush(stdout);
	for (;;) {
		ssize_t n = read(fd, f, sizeof(f));
		if (n < 14)
			continue;
		uint16_t type = (uint16_t)(f[12] << 8 | f[13]);
		if (type == 0x0806 && n >= 42 && f[21] == 1 && memcmp(f + 38, &me, 4) == 0) {
			/* ARP request for us: the reply names our MAC. */
			memcpy(f, f + 6, 6);
			memcpy(f + 6, MAC, 6);
			f[21] = 2;
			memcpy(f + 32, f + 22, 10);     /* target = the asker */
			memcpy(f + 22, MAC, 6);
			memcpy(f + 28, &me, 4);
			write(fd, f, 42);
			continue;
		}
		if (type != 0x0800 || n < 14 + 20 + 8)
			continue;
		uint8_t *ip = f + 14;
		size_t ihl = (size_t)(ip[0] & 15) * 4;
		if (ip[9] != 1 || memcmp(ip + 16, &me, 4) != 0 || n < (ssize_t)(14 + ihl + 8))
			continue;
		uint8_t *icmp = ip + ihl;
		if (icmp[0] != 8)
			continue;
		memcpy(tmp, f, 6);                      /* swap the MACs */
		memcpy(f, f + 6, 6);
		memcpy(f + 6, tmp, 6);
		memcpy(tmp, ip + 12, 4);                /* swap the addresses (the header sum holds) */
		memcpy(ip + 12, ip + 16, 4);
		memcpy(ip + 16, tmp, 4);
		icmp[0] = 0;                            /* echo reply: the sum gains 0x0800 (RFC 1624) */
		uint32_t sum = (uint32_t)(icmp[2] << 8 | icmp[3]) + 0x0800;
		sum = (sum & 0xffff) + (sum >> 16);
		icmp[2] = (uint8_t)(sum >> 8);
		icmp[3] = (uint8_t)sum;
		write(fd, f, (size_t)n);
	}
}
