/*
 * netcmd.c: the shell's network commands (docs/guest-abi.md §16.4).
 *
 *   net                      every net device: MAC, slot, address,
 *                            counters, peers; then the ARP cache and the
 *                            stack's counters
 *   net up|down NET          open / close a net device
 *   net promisc NET on|off   set / clear the promiscuous bit of our slot
 *   ping ADDR [COUNT] [SIZE] COUNT echo requests (default 4, at most 1000)
 *                            of SIZE data bytes (default 56, at most 1472),
 *                            one a second, each waiting up to 1 s
 *   udp ADDR PORT TEXT...    one UDP datagram, print the answer (1 s)
 *
 * Lives in the kit so any guest can offer the same commands; the shell
 * only lists them.
 */
#include "kit.h"

#define PING_DEFAULT_COUNT 4u
#define PING_MAX_COUNT     1000u
#define PING_DEFAULT_SIZE  56u
#define PING_INTERVAL_MS   1000u
#define PING_TIMEOUT_MS    1000u
#define UDP_TIMEOUT_MS     1000u
#define PEERS_SHOWN        16u

void netcmd_init(void)
{
	int rc;

	if (net_count() == 0)
		return;
	rc = ip_init();
	if (rc == IP_EINVAL)
		printf("net: bad ip=/gw= on the command line (use ip=A.B.C.D/N gw=A.B.C.D)\n");
	else if (rc)
		printf("net: net0: %s\n", ip_strerror(rc));
}

static bool parse_num(const char *s, u32 *out)
{
	char *end;
	unsigned long v;

	if (!isdigit(*s))
		return false;
	v = strtoul(s, &end, 10);
	if (*end || v > 0xFFFFFFFFul)
		return false;
	*out = (u32)v;
	return true;
}

/* ---- net ------------------------------------------------------------------ */

static void show_net(int n)
{
	struct lg_device *dev = net_device(n);
	u16 features = dev->desc->features;
	struct net_stats s;
	char mac[18], a[16];
	unsigned peers = 0;

	if (!net_ready(n)) {
		printf("net%d: not ready (probe failed), features 0x%04x, irq %u, device %u\n", n,
		       features, dev->irq, dev->index);
		return;
	}
	net_stats(n, &s);
	printf("net%d: MAC %s, slot %d of %u, irq %u, device %u, features 0x%04x%s, %s%s\n", n,
	       net_format_mac(mac, net_mac(n)), net_slot(n), net_slots(n), dev->irq, dev->index,
	       features, net_nocsum(n) ? " (nocsum)" : "", net_is_up(n) ? "up" : "down",
	       net_promisc(n) ? ", promisc" : "");
	if (ip_net() == n) {
		if (ip_configured()) {
			printf("  inet %s/%u", ip_format(a, ip_addr()), ip_prefix());
			if (ip_gateway())
				printf(" gw %s", ip_format(a, ip_gateway()));
			printf("\n");
		} else {
			printf("  inet none (no usable ip= on the command line)\n");
		}
	}
	printf("  rx %lu packets, %lu bytes, %lu dropped (%lu bad length), %lu irqs\n",
	       s.rx_packets, s.rx_bytes, s.rx_dropped, s.rx_length_errors, s.irqs);
	printf("  tx %lu packets, %lu bytes, %lu errors, %lu dropped\n", s.tx_packets, s.tx_bytes,
	       s.tx_errors, s.tx_dropped);
	for (unsigned i = 0; i < net_slots(n); i++) {
		u8 m[NET_ETH_ALEN];

		if ((int)i == net_slot(n) || !net_peer(n, i, m))
			continue;
		if (peers++ < PEERS_SHOWN) {
			bool promisc = m[0] & NET_PROMISC_BIT;

			m[0] &= (u8)~NET_PROMISC_BIT;
			printf("  peer slot %u: %s%s\n", i, net_format_mac(mac, m),
			       promisc ? " (promisc)" : "");
		}
	}
	if (peers > PEERS_SHOWN)
		printf("  ... %u peers in all\n", peers);
	else if (peers == 0)
		printf("  no peers\n");
}

static void show_stack(void)
{
	struct ip_stats st;
	struct ip_arp_entry e;
	char a[16], mac[18];
	unsigned n = 0;

	if (ip_net() < 0)
		return;
	for (unsigned i = 0; i < IP_ARP_CACHE; i++) {
		if (!ip_arp_entry(i, &e))
			continue;
		printf("arp: %s at %s\n", ip_format(a, e.addr), net_format_mac(mac, e.mac));
		n++;
	}
	if (n == 0)
		printf("arp: cache empty\n");
	ip_stats(&st);
	printf("ip: rx %lu, tx %lu, loopback %lu, tx failed %lu; arp rx %lu, tx %lu, answered %lu\n",
	       st.ip_rx, st.ip_tx, st.loopback, st.tx_failed, st.arp_rx, st.arp_tx,
	       st.arp_requests_answered);
	printf("icmp: echo answered %lu, replies %lu; udp: echo answered %lu, replies %lu\n",
	       st.icmp_echo_answered, st.icmp_echo_replies, st.udp_echo_answered, st.udp_replies);
	printf("dropped %lu of %lu frames: other MAC %lu, ethertype %lu, malformed %lu, "
	       "not ours %lu, fragment %lu, protocol %lu, no port %lu, unconfigured %lu\n",
	       st.rx_dropped, st.rx_frames, st.drop_other_host, st.drop_ethertype, st.drop_bad,
	       st.drop_not_ours, st.drop_fragment, st.drop_proto, st.drop_no_port,
	       st.drop_unconfigured);
}

/* NET argument: a net device that exists and probed, or -1 (printed). */
static int net_arg(const char *s)
{
	u32 n;

	if (!parse_num(s, &n)) {
		printf("net: bad net number '%s'\n", s);
		return -1;
	}
	if ((int)n >= net_count()) {
		printf("net: no net%u (%d net device(s); see 'net')\n", n, net_count());
		return -1;
	}
	if (!net_ready((int)n)) {
		printf("net: net%u is not ready (its probe failed)\n", n);
		return -1;
	}
	return (int)n;
}

int netcmd_net(int argc, char **argv)
{
	int n, rc;

	if (argc == 1) {
		if (net_count() == 0) {
			printf("no network devices\n");
			return 0;
		}
		for (int i = 0; i < net_count(); i++)
			show_net(i);
		show_stack();
		return 0;
	}
	if ((strcmp(argv[1], "up") == 0 || strcmp(argv[1], "down") == 0) && argc == 3) {
		if ((n = net_arg(argv[2])) < 0)
			return 1;
		rc = argv[1][0] == 'u' ? net_open(n) : net_close(n);
		if (rc) {
			printf("net: net%d: %s\n", n, net_strerror(rc));
			return 1;
		}
		printf("net%d: %s\n", n, net_is_up(n) ? "up" : "down");
		return 0;
	}
	if (strcmp(argv[1], "promisc") == 0 && argc == 4 &&
	    (strcmp(argv[3], "on") == 0 || strcmp(argv[3], "off") == 0)) {
		if ((n = net_arg(argv[2])) < 0)
			return 1;
		net_set_promisc(n, argv[3][1] == 'n');
		printf("net%d: promisc %s\n", n, net_promisc(n) ? "on" : "off");
		return 0;
	}
	printf("usage: net | net up|down NET | net promisc NET on|off\n");
	return 1;
}

/* ---- ping --------------------------------------------------------------- */

static void print_ms(u32 ns)
{
	printf("%u.%03u", ns / 1000000u, ns / 1000u % 1000u);
}

/* Sleep until ms after `since` (by the host clock). */
static void sleep_until(struct lguest_timespec since, u32 ms)
{
	u64 el = time_diff_ns(since, time_last());
	u64 want = (u64)ms * 1000000u;

	if (el < want)
		sleep_ns((u32)(want - el));
}

int netcmd_ping(int argc, char **argv)
{
	u32 dst, count = PING_DEFAULT_COUNT, size = PING_DEFAULT_SIZE;
	u32 sent = 0, received = 0, min = 0xFFFFFFFFu, max = 0, sum_us = 0;
	char a[16], me[16];
	int rc;

	if (argc < 2 || argc > 4) {
		printf("usage: ping ADDR [COUNT] [SIZE]\n");
		return 1;
	}
	if (!ip_parse_addr(argv[1], &dst)) {
		printf("ping: bad address '%s'\n", argv[1]);
		return 1;
	}
	if ((argc > 2 && !parse_num(argv[2], &count)) || (argc > 3 && !parse_num(argv[3], &size))) {
		printf("ping: bad number\n");
		return 1;
	}
	if (count == 0 || count > PING_MAX_COUNT) {
		printf("ping: COUNT must be 1..%u\n", PING_MAX_COUNT);
		return 1;
	}
	if (size > IP_ICMP_MAX_DATA) {
		printf("ping: SIZE must be 0..%u\n", IP_ICMP_MAX_DATA);
		return 1;
	}
	ip_format(a, dst);
	if ((rc = ip_route_check(dst))) {
		printf("ping: %s: %s\n", a, ip_strerror(rc));
		return 1;
	}
	ip_format(me, ip_addr());
	printf("PING %s %u(%u) bytes of data.\n", a, size, size + 28);
	for (u32 seq = 1; seq <= count; seq++) {
		struct ip_ping_result r;

		rc = ip_ping(dst, (u16)seq, size, PING_TIMEOUT_MS, &r);
		if (rc == IP_ENETUNREACH || rc == IP_EMSGSIZE || rc == IP_ENETDOWN) {
			printf("ping: %s: %s\n", a, ip_strerror(rc));
			return 1;
		}
		sent++;
		if (rc == 0) {
			received++;
			if (r.rtt_ns < min)
				min = r.rtt_ns;
			if (r.rtt_ns > max)
				max = r.rtt_ns;
			sum_us += r.rtt_ns / 1000u;
			printf("%u bytes from %s: icmp_seq=%u time=", r.bytes, a, seq);
			print_ms(r.rtt_ns);
			printf(" ms%s\n", r.bad_data ? " (wrong data)" : "");
		} else if (rc == IP_EHOSTUNREACH) {
			printf("From %s icmp_seq=%u Destination Host Unreachable\n", me, seq);
		} else {
			printf("Request timeout for icmp_seq=%u\n", seq);
		}
		if (seq < count)
			sleep_until(r.sent, PING_INTERVAL_MS);
	}
	printf("\n--- %s ping statistics ---\n", a);
	printf("%u packets transmitted, %u received, %u%% packet loss\n", sent, received,
	       (sent - received) * 100u / sent);
	if (received) {
		u32 avg = sum_us / received;

		printf("rtt min/avg/max = ");
		print_ms(min);
		printf("/%u.%03u/", avg / 1000u, avg % 1000u);
		print_ms(max);
		printf(" ms\n");
	}
	return received ? 0 : 1;
}

/* ---- udp ---------------------------------------------------------------- */

int netcmd_udp(int argc, char **argv)
{
	static char msg[IP_UDP_MAX_DATA + 1], reply[IP_UDP_MAX_DATA + 1];
	u32 dst, port, len = 0, rlen = IP_UDP_MAX_DATA, rtt = 0;
	char a[16];
	int rc;

	if (argc < 4) {
		printf("usage: udp ADDR PORT TEXT...\n");
		return 1;
	}
	if (!ip_parse_addr(argv[1], &dst) || !parse_num(argv[2], &port) || port == 0 ||
	    port > 0xFFFF) {
		printf("udp: bad address or port\n");
		return 1;
	}
	for (int i = 3; i < argc && len < IP_UDP_MAX_DATA; i++)
		len += (u32)snprintf(msg + len, sizeof(msg) - len, "%s%s", i > 3 ? " " : "",
				     argv[i]);
	if (len > IP_UDP_MAX_DATA)
		len = IP_UDP_MAX_DATA;
	ip_format(a, dst);
	rc = ip_udp_request(dst, (u16)port, msg, len, reply, &rlen, UDP_TIMEOUT_MS, &rtt);
	if (rc == IP_ETIMEDOUT) {
		printf("udp: no reply from %s:%u\n", a, port);
		return 1;
	}
	if (rc) {
		printf("udp: %s:%u: %s\n", a, port, ip_strerror(rc));
		return 1;
	}
	reply[rlen] = '\0';
	printf("%u bytes from %s:%u time=", rlen, a, port);
	print_ms(rtt);
	printf(" ms: %s\n", reply);
	return 0;
}
