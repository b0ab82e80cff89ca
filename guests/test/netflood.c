/*
 * @guest: Test: flood a peer with COUNT frames back to back (dst=IP|MAC count=N size=S [port=P] ip=A.B.C.D/N), or be a receiver that stays full (sink from=MAC).
 *
 * Flooding (dst= on the command line):
 *   dst=A.B.C.D        the peer by address: resolved by ARP (needs ip=),
 *                      then every frame is a UDP datagram to dst:PORT
 *                      (default port 9, where nobody listens: the peer's
 *                      stack checks it whole and drops it as "no port")
 *   dst=xx:xx:..:xx    the peer by MAC (it must show up in the table within
 *                      5 s): raw frames of ethertype 0x88b5 (local use)
 *   count=N            frames to send (default 10000)
 *   size=S             bytes per frame, 14..1514 (42..1514 with dst=IP;
 *                      default 1514)
 *   port=P             the UDP destination port (dst=IP only)
 *   ip=A.B.C.D/N       our own address (dst=IP needs it)
 *
 * sends the COUNT frames back to back with net_send (no waiting, no
 * pacing): a receiver that cannot keep up has all its buffers full, and
 * the host drops what does not fit. Every frame differs (a sequence number
 * in the first 4 payload bytes, and in the IP id; checksums redone each
 * time); every other payload byte at frame offset i is (u8)i. Prints
 *
 *   netflood: COUNT frames of SIZE bytes to DST: T taken, N not taken, tx errors E
 *
 * (T + N = COUNT; E is the driver's tx_errors counter) and powers off.
 *
 * A full receiver (sink on the command line, with from=MAC): opens net 0
 * with the net IRQ masked, so its 8 receive buffers fill and stay full,
 * prints "netflood: sink on net0 (MAC M)", waits for the peer FROM to
 * publish its MAC and then to leave the table (at most 30 s), unmasks,
 * takes what the buffers hold and prints
 *
 *   netflood: sink: R frames from FROM (G intact, B corrupt), seq A..Z, O other frames
 *
 * (a frame is intact when every payload byte is as the flooder wrote it;
 * seq A..Z are the first and last sequence numbers, which must rise) and
 * powers off.
 */
#include "kit.h"

#define ETH_P_IP   0x0800
#define ETH_P_TEST 0x88b5
#define OFF_IP     14u
#define OFF_UDP    34u
#define OFF_DATA   42u
#define SRC_PORT   40000u

static u8 frame[NET_FRAME_MAX];

static void wr16(u8 *p, u32 v)
{
	p[0] = (u8)(v >> 8);
	p[1] = (u8)v;
}

static void wr32(u8 *p, u32 v)
{
	wr16(p, v >> 16);
	wr16(p + 2, v);
}

static u32 csum_add(u32 sum, const u8 *p, u32 len)
{
	for (; len > 1; p += 2, len -= 2)
		sum += (u32)p[0] << 8 | p[1];
	if (len)
		sum += (u32)p[0] << 8;
	return sum;
}

static u16 csum_fold(u32 sum)
{
	while (sum >> 16)
		sum = (sum & 0xFFFF) + (sum >> 16);
	return (u16)~sum;
}

static u32 arg_num(const char *key, u32 def)
{
	char v[16], *end;
	unsigned long n;

	if (!ip_cmdline_arg(lg_cmdline, key, v, sizeof(v)))
		return def;
	n = strtoul(v, &end, 10);
	if (*end || !isdigit(v[0]))
		panic("netflood: bad %s=%s", key, v);
	return (u32)n;
}

static bool parse_mac(const char *s, u8 mac[NET_ETH_ALEN])
{
	for (int i = 0; i < NET_ETH_ALEN; i++) {
		char *end;

		if (!isxdigit(s[0]) || !isxdigit(s[1]))
			return false;
		mac[i] = (u8)strtoul(s, &end, 16);
		if (end != s + 2 || *end != (i < NET_ETH_ALEN - 1 ? ':' : '\0'))
			return false;
		s += 3;
	}
	return true;
}

/* Is mac published in a slot of the table other than ours? */
static bool peer_present(const u8 mac[NET_ETH_ALEN])
{
	for (unsigned i = 0; i < net_slots(0); i++) {
		u8 m[NET_ETH_ALEN];

		if ((int)i != net_slot(0) && net_peer(0, i, m) &&
		    (m[0] & (u8)~NET_PROMISC_BIT) == mac[0] && memcmp(m + 1, mac + 1, 5) == 0)
			return true;
	}
	return false;
}

/* Wait up to ms for peer_present(mac) to become `want` (the table is
 * refreshed at every hypercall, the sleeps included). */
static bool wait_peer(const u8 mac[NET_ETH_ALEN], bool want, u32 ms)
{
	for (u32 t = 0; t < ms; t += 10) {
		if (peer_present(mac) == want)
			return true;
		sleep_ms(10);
	}
	return peer_present(mac) == want;
}

/* ---- sink: a receiver that stays full ------------------------------------ */

static struct {
	u8 from[NET_ETH_ALEN];
	u32 frames, intact, corrupt, other, first, last;
	bool any, order_bad;
} sink;

static void sink_rx(int net, u8 *f, u32 len, void *arg)
{
	bool ok = true;
	u32 seq;

	(void)net;
	(void)arg;
	if (len < NET_ETH_HLEN + 4 || memcmp(f + 6, sink.from, NET_ETH_ALEN) != 0 ||
	    f[12] != (ETH_P_TEST >> 8) || f[13] != (ETH_P_TEST & 0xFF)) {
		sink.other++;
		return;
	}
	sink.frames++;
	seq = (u32)f[14] << 24 | (u32)f[15] << 16 | (u32)f[16] << 8 | f[17];
	for (u32 i = NET_ETH_HLEN + 4; i < len; i++)
		ok &= f[i] == (u8)i;
	if (ok)
		sink.intact++;
	else
		sink.corrupt++;
	if (sink.any && seq <= sink.last)
		sink.order_bad = true;
	if (!sink.any)
		sink.first = seq;
	sink.last = seq;
	sink.any = true;
}

static int sink_main(void)
{
	char v[32], m[18];
	unsigned irq;
	int rc;

	if (!ip_cmdline_arg(lg_cmdline, "from", v, sizeof(v)) || !parse_mac(v, sink.from))
		panic("netflood: sink needs from=MAC");
	if (!net_ready(0))
		panic("netflood: no network device (add --net)");
	irq = net_device(0)->irq;
	irq_mask(irq);                  /* before the buffers exist: nobody empties them */
	net_set_rx_handler(0, sink_rx, NULL);
	if ((rc = net_open(0)))
		panic("netflood: net0: %s", net_strerror(rc));
	printf("netflood: sink on net0 (MAC %s)\n", net_format_mac(m, net_mac(0)));
	if (!wait_peer(sink.from, true, 10000))
		panic("netflood: sink: %s never showed up", v);
	if (!wait_peer(sink.from, false, 30000))
		panic("netflood: sink: %s did not leave", v);
	irq_unmask(irq);
	net_poll(0);
	sleep_ms(20);
	printf("netflood: sink: %u frames from %s (%u intact, %u corrupt), seq %u..%u%s, "
	       "%u other frames\n",
	       sink.frames, v, sink.intact, sink.corrupt, sink.first, sink.last,
	       sink.order_bad ? " OUT OF ORDER" : "", sink.other);
	return 0;
}

/* ---- flood ---------------------------------------------------------------- */

int main(void)
{
	char dst[32], m[18];
	u8 mac[NET_ETH_ALEN];
	u32 count = arg_num("count", 10000), size = arg_num("size", NET_FRAME_MAX);
	u32 port = arg_num("port", 9), addr = 0, taken = 0;
	struct net_stats st;
	bool by_ip;
	int rc;

	if (ip_cmdline_arg(lg_cmdline, "sink", dst, sizeof(dst)))
		return sink_main();
	if (!ip_cmdline_arg(lg_cmdline, "dst", dst, sizeof(dst)))
		panic("netflood: no dst= (use dst=A.B.C.D or dst=MAC, or sink from=MAC)");
	by_ip = ip_parse_addr(dst, &addr);
	if (!by_ip && !parse_mac(dst, mac))
		panic("netflood: bad dst=%s", dst);
	if (size < (by_ip ? OFF_DATA : NET_ETH_HLEN) || size > NET_FRAME_MAX)
		panic("netflood: size=%u out of range", size);
	if (port == 0 || port > 0xFFFF)
		panic("netflood: bad port=%u", port);
	if ((rc = ip_init()))
		panic("netflood: net0: %s", ip_strerror(rc));
	if (by_ip) {
		/* The peer may still be booting: ARP a few times. */
		for (int i = 0; i < 5 && (rc = ip_arp_resolve(addr, mac)) == IP_EHOSTUNREACH; i++)
			;
		if (rc)
			panic("netflood: %s: %s", dst, ip_strerror(rc));
	} else if (!wait_peer(mac, true, 5000)) {
		panic("netflood: no peer with MAC %s", dst);
	}

	memcpy(frame, mac, NET_ETH_ALEN);
	memcpy(frame + 6, net_mac(0), NET_ETH_ALEN);
	for (u32 i = OFF_IP; i < size; i++)
		frame[i] = (u8)i;
	if (by_ip) {
		u8 *h = frame + OFF_IP, *u = frame + OFF_UDP;

		wr16(frame + 12, ETH_P_IP);
		h[0] = 0x45;
		h[1] = 0;
		wr16(h + 2, size - OFF_IP);
		wr16(h + 6, 0x4000);            /* DF */
		h[8] = 64;
		h[9] = 17;                      /* UDP */
		wr32(h + 12, ip_addr());
		wr32(h + 16, addr);
		wr16(u, SRC_PORT);
		wr16(u + 2, port);
		wr16(u + 4, size - OFF_UDP);
	} else {
		wr16(frame + 12, ETH_P_TEST);
	}

	for (u32 seq = 0; seq < count; seq++) {
		if (by_ip) {
			u8 *h = frame + OFF_IP, *u = frame + OFF_UDP;
			u32 ulen = size - OFF_UDP, sum;
			u16 c;

			wr16(h + 4, seq);
			wr16(h + 10, 0);
			wr16(h + 10, csum_fold(csum_add(0, h, 20)));
			if (size >= OFF_DATA + 4)
				wr32(frame + OFF_DATA, seq);
			wr16(u + 6, 0);
			sum = (ip_addr() >> 16) + (ip_addr() & 0xFFFF) + (addr >> 16) +
			      (addr & 0xFFFF) + 17 + ulen;
			c = csum_fold(csum_add(sum, u, ulen));
			wr16(u + 6, c ? c : 0xFFFF);
		} else if (size >= NET_ETH_HLEN + 4) {
			wr32(frame + NET_ETH_HLEN, seq);
		}
		rc = net_send(0, frame, size);
		if (rc < 0)
			panic("netflood: send: %s", net_strerror(rc));
		if (rc > 0)
			taken++;
	}
	net_stats(0, &st);
	if (!by_ip)
		net_format_mac(m, mac);
	printf("netflood: %u frames of %u bytes to %s: %u taken, %u not taken, tx errors %lu\n",
	       count, size, by_ip ? dst : m, taken, count - taken, st.tx_errors);
	return 0;
}
