/*
 * ip.c: a tiny IPv4 stack: ARP, ICMP echo, UDP echo (API in ip.h).
 *
 * Frames come in through the net driver's receive handler, in interrupt
 * context, and are answered right there: every reply goes back to the
 * Ethernet source of the request, so nothing in the receive path ever waits.
 * Only the main-code calls (ip_arp_resolve, ip_ping, ip_udp_request) sleep,
 * on the timer, while the handler keeps serving frames.
 *
 * Frames to send are built on the stack (1514 bytes), not in a shared
 * buffer: a handler may run in the middle of a send from main code (at its
 * SEND_DMA hypercalls) and send frames of its own.
 */
#include "kit.h"

#define ETH_P_IP       0x0800
#define ETH_P_ARP      0x0806
#define IP_HLEN        20u
#define L4_HLEN        8u                 /* ICMP echo and UDP headers */
#define ARP_LEN        28u
#define OFF_IP         NET_ETH_HLEN       /* 14 */
#define OFF_L4         (NET_ETH_HLEN + IP_HLEN)   /* 34 */
#define PROTO_ICMP     1
#define PROTO_UDP      17
#define IP_TTL         64
#define IP_DF          0x4000
#define ICMP_ECHOREPLY 0
#define ICMP_ECHO      8
#define UDP_EPHEMERAL  49152u

static const u8 bcast_mac[NET_ETH_ALEN] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

static struct {
	int net;                        /* -1 before ip_init */
	bool have_addr;
	u32 addr, mask, gw;
	unsigned prefix;
	u8 mac[NET_ETH_ALEN];
	u16 ip_id;
	u16 ping_id;
	u16 udp_port;                   /* last ephemeral port used */
	bool looping;                   /* delivering a packet to ourselves */
	struct ip_stats st;
} ipc = { .net = -1 };

/* The one outstanding echo request of ip_ping. */
static struct {
	bool active, got, bad_data;
	u32 dst, size;
	u16 seq;
	u32 bytes;
	u8 ttl;
	struct lguest_timespec when;    /* the reply's interrupt */
} ping;

/* The one outstanding ip_udp_request. */
static struct {
	bool active, got;
	u32 dst;
	u16 rport, lport;
	u8 *buf;
	u32 size, len;
	struct lguest_timespec when;
} udpq;

struct arp_slot {
	bool used;
	u32 addr;
	u8 mac[NET_ETH_ALEN];
	u32 last;                       /* LRU stamp */
};
static struct arp_slot arp_cache[IP_ARP_CACHE];
static u32 arp_clock;

/* ---- Bytes and checksums --------------------------------------------------- */

static u16 rd16(const u8 *p)
{
	return (u16)(p[0] << 8 | p[1]);
}

static u32 rd32(const u8 *p)
{
	return (u32)p[0] << 24 | (u32)p[1] << 16 | (u32)p[2] << 8 | p[3];
}

static void wr16(u8 *p, u32 v)
{
	p[0] = (u8)(v >> 8);
	p[1] = (u8)v;
}

static void wr32(u8 *p, u32 v)
{
	p[0] = (u8)(v >> 24);
	p[1] = (u8)(v >> 16);
	p[2] = (u8)(v >> 8);
	p[3] = (u8)v;
}

static bool mac_eq(const u8 *a, const u8 *b)
{
	return memcmp(a, b, NET_ETH_ALEN) == 0;
}

/* The Internet checksum (RFC 1071): add big-endian 16-bit words. */
static u32 csum_add(u32 sum, const u8 *p, u32 len)
{
	while (len > 1) {
		sum += (u32)p[0] << 8 | p[1];
		p += 2;
		len -= 2;
	}
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

/* Over the pseudo-header and the segment: 0 when a received one is good. */
static u16 l4_csum(u32 src, u32 dst, u8 proto, const u8 *p, u32 len)
{
	u32 sum = (src >> 16) + (src & 0xFFFF) + (dst >> 16) + (dst & 0xFFFF) + proto + len;

	return csum_fold(csum_add(sum, p, len));
}

static bool martian(u32 a)
{
	return a == 0 || a == 0xFFFFFFFFu || (a >> 28) >= 0xE;  /* multicast, class E */
}

static void drop(unsigned long *why)
{
	(*why)++;
	ipc.st.rx_dropped++;
}

/* ---- ARP cache ------------------------------------------------------------- */

static struct arp_slot *arp_find(u32 addr)
{
	for (unsigned i = 0; i < IP_ARP_CACHE; i++)
		if (arp_cache[i].used && arp_cache[i].addr == addr)
			return &arp_cache[i];
	return NULL;
}

/* RFC 826 merge: update an entry we have; add one only if `create`. */
static void arp_update(u32 addr, const u8 *mac, bool create)
{
	struct arp_slot *s = arp_find(addr);

	if (!s) {
		if (!create)
			return;
		s = &arp_cache[0];
		for (unsigned i = 0; i < IP_ARP_CACHE; i++) {
			if (!arp_cache[i].used) {
				s = &arp_cache[i];
				break;
			}
			if (arp_cache[i].last < s->last)
				s = &arp_cache[i];     /* least recently used */
		}
		s->used = true;
		s->addr = addr;
	}
	memcpy(s->mac, mac, NET_ETH_ALEN);
	s->last = ++arp_clock;
}

static bool arp_lookup(u32 addr, u8 *mac)
{
	struct arp_slot *s = arp_find(addr);

	if (!s)
		return false;
	memcpy(mac, s->mac, NET_ETH_ALEN);
	s->last = ++arp_clock;
	return true;
}

/* Nobody took a frame sent to mac: the peer is gone (or changed its MAC),
 * so ask again next time rather than trust the cache. */
static void arp_forget_mac(const u8 *mac)
{
	for (unsigned i = 0; i < IP_ARP_CACHE; i++)
		if (arp_cache[i].used && mac_eq(arp_cache[i].mac, mac))
			arp_cache[i].used = false;
}

bool ip_arp_entry(unsigned i, struct ip_arp_entry *out)
{
	if (i >= IP_ARP_CACHE || !arp_cache[i].used)
		return false;
	out->addr = arp_cache[i].addr;
	memcpy(out->mac, arp_cache[i].mac, NET_ETH_ALEN);
	return true;
}

/* ---- Output -------------------------------------------------------------------- */

static void eth_input(int net, u8 *f, u32 len, void *arg);

/* Returns the number of peers that took the frame, or IP_ENETDOWN. */
static int eth_output(u8 *f, u32 len)
{
	int n = net_send(ipc.net, f, len);

	if (n < 0)
		return IP_ENETDOWN;
	if (n == 0)
		ipc.st.tx_failed++;
	return n;
}

static void arp_output(u16 op, const u8 *eth_dst, const u8 *tha, u32 tpa)
{
	u8 f[NET_ETH_HLEN + ARP_LEN];
	u8 *a = f + OFF_IP;

	memcpy(f, eth_dst, NET_ETH_ALEN);
	memcpy(f + 6, ipc.mac, NET_ETH_ALEN);
	wr16(f + 12, ETH_P_ARP);
	wr16(a, 1);                     /* Ethernet */
	wr16(a + 2, ETH_P_IP);
	a[4] = NET_ETH_ALEN;
	a[5] = 4;
	wr16(a + 6, op);
	memcpy(a + 8, ipc.mac, NET_ETH_ALEN);
	wr32(a + 14, ipc.addr);
	memcpy(a + 18, tha, NET_ETH_ALEN);
	wr32(a + 24, tpa);
	ipc.st.arp_tx++;
	eth_output(f, sizeof(f));
}

/*
 * f[OFF_L4 .. OFF_L4 + len) holds the ICMP/UDP segment (checksum done):
 * add the IPv4 and Ethernet headers and send it to eth_dst, or loop it
 * back if it is for us. Returns the number of peers that took it (1 for
 * loopback), or IP_E*.
 */
static int ip_output(u8 *f, const u8 *eth_dst, u32 dst, u8 proto, u32 len)
{
	u8 *h = f + OFF_IP;
	u32 total = OFF_L4 + len;

	if (len > NET_MTU - IP_HLEN)
		return IP_EMSGSIZE;
	memcpy(f, eth_dst, NET_ETH_ALEN);
	memcpy(f + 6, ipc.mac, NET_ETH_ALEN);
	wr16(f + 12, ETH_P_IP);
	h[0] = 0x45;                    /* version 4, 5 words */
	h[1] = 0;
	wr16(h + 2, IP_HLEN + len);
	wr16(h + 4, ipc.ip_id++);
	wr16(h + 6, IP_DF);
	h[8] = IP_TTL;
	h[9] = proto;
	wr16(h + 10, 0);
	wr32(h + 12, ipc.addr);
	wr32(h + 16, dst);
	wr16(h + 10, csum_fold(csum_add(0, h, IP_HLEN)));
	ipc.st.ip_tx++;
	if (dst == ipc.addr) {
		bool was = ipc.looping;

		ipc.st.loopback++;
		memcpy(f, ipc.mac, NET_ETH_ALEN);
		ipc.looping = true;
		eth_input(ipc.net, f, total, NULL);
		ipc.looping = was;
		return 1;
	}
	return eth_output(f, total);
}

/* ---- Input ----------------------------------------------------------------------- */

static void arp_input(u8 *f, u32 len)
{
	const u8 *a = f + OFF_IP;
	const u8 *sha;
	u32 spa, tpa;
	u16 op;

	if (len < NET_ETH_HLEN + ARP_LEN || rd16(a) != 1 || rd16(a + 2) != ETH_P_IP ||
	    a[4] != NET_ETH_ALEN || a[5] != 4) {
		drop(&ipc.st.drop_bad);
		return;
	}
	ipc.st.arp_rx++;
	if (!ipc.have_addr) {
		drop(&ipc.st.drop_unconfigured);
		return;
	}
	op = rd16(a + 6);
	sha = a + 8;
	spa = rd32(a + 14);
	tpa = rd32(a + 24);
	if ((op != 1 && op != 2) || (sha[0] & 0x01)) {
		drop(&ipc.st.drop_bad);
		return;
	}
	if (spa != 0 && spa != ipc.addr && !martian(spa))
		arp_update(spa, sha, tpa == ipc.addr);
	if (tpa != ipc.addr) {
		drop(&ipc.st.drop_not_ours);     /* someone else's business */
		return;
	}
	if (op == 1) {
		u8 mac[NET_ETH_ALEN];

		memcpy(mac, sha, NET_ETH_ALEN);
		ipc.st.arp_requests_answered++;
		arp_output(2, mac, mac, spa);
	}
}

static void ping_input(u32 src, const u8 *p, u32 len, u8 ttl)
{
	u32 size = len - L4_HLEN;
	bool bad = false;

	if (!ping.active || ping.got || src != ping.dst || rd16(p + 4) != ipc.ping_id ||
	    rd16(p + 6) != ping.seq) {
		drop(&ipc.st.drop_proto);       /* late, duplicate or not ours */
		return;
	}
	if (size != ping.size)
		bad = true;
	for (u32 i = 0; i < size && !bad; i++)
		if (p[L4_HLEN + i] != (u8)i)
			bad = true;
	ping.when = time_last();            /* written at this interrupt */
	ping.bytes = len;
	ping.ttl = ttl;
	ping.bad_data = bad;
	ping.got = true;
	ipc.st.icmp_echo_replies++;
}

static void icmp_input(const u8 *f, u32 src, const u8 *p, u32 len, u8 ttl)
{
	if (len < L4_HLEN || csum_fold(csum_add(0, p, len)) != 0) {
		drop(&ipc.st.drop_bad);
		return;
	}
	if (p[0] == ICMP_ECHO && p[1] == 0) {
		u8 out[NET_FRAME_MAX];
		u8 *q = out + OFF_L4;

		memcpy(q, p, len);              /* same id, sequence and data */
		q[0] = ICMP_ECHOREPLY;
		wr16(q + 2, 0);
		wr16(q + 2, csum_fold(csum_add(0, q, len)));
		ipc.st.icmp_echo_answered++;
		ip_output(out, f + 6, src, PROTO_ICMP, len);
	} else if (p[0] == ICMP_ECHOREPLY && p[1] == 0) {
		ping_input(src, p, len, ttl);
	} else {
		drop(&ipc.st.drop_proto);
	}
}

static void udp_input(const u8 *f, u32 src, const u8 *p, u32 len)
{
	u32 ulen;
	u16 sport, dport;

	if (len < L4_HLEN || (ulen = rd16(p + 4)) < L4_HLEN || ulen > len ||
	    (rd16(p + 6) != 0 && l4_csum(src, ipc.addr, PROTO_UDP, p, ulen) != 0)) {
		drop(&ipc.st.drop_bad);
		return;
	}
	sport = rd16(p);
	dport = rd16(p + 2);
	if (dport == IP_UDP_ECHO_PORT) {
		u8 out[NET_FRAME_MAX];
		u8 *q = out + OFF_L4;
		u16 c;

		/* Never answer another echo service (or port 0): no ping-pong. */
		if (sport == IP_UDP_ECHO_PORT || sport == 0) {
			drop(&ipc.st.drop_bad);
			return;
		}
		wr16(q, IP_UDP_ECHO_PORT);
		wr16(q + 2, sport);
		wr16(q + 4, ulen);
		wr16(q + 6, 0);
		memcpy(q + L4_HLEN, p + L4_HLEN, ulen - L4_HLEN);
		c = l4_csum(ipc.addr, src, PROTO_UDP, q, ulen);
		wr16(q + 6, c ? c : 0xFFFF);
		ipc.st.udp_echo_answered++;
		ip_output(out, f + 6, src, PROTO_UDP, ulen);
	} else if (udpq.active && !udpq.got && dport == udpq.lport && sport == udpq.rport &&
		   src == udpq.dst) {
		u32 n = ulen - L4_HLEN;

		if (n > udpq.size)
			n = udpq.size;
		memcpy(udpq.buf, p + L4_HLEN, n);
		udpq.len = n;
		udpq.when = time_last();
		udpq.got = true;
		ipc.st.udp_replies++;
	} else {
		drop(&ipc.st.drop_no_port);
	}
}

static void ip_input(u8 *f, u32 len)
{
	const u8 *h = f + OFF_IP;
	u32 avail = len - NET_ETH_HLEN, hlen, total, src, dst;

	if (avail < IP_HLEN || (h[0] >> 4) != 4 || (hlen = (h[0] & 0xF) * 4u) < IP_HLEN ||
	    hlen > avail || csum_fold(csum_add(0, h, hlen)) != 0 ||
	    (total = rd16(h + 2)) < hlen || total > avail) {
		drop(&ipc.st.drop_bad);
		return;
	}
	if (!ipc.have_addr) {
		drop(&ipc.st.drop_unconfigured);
		return;
	}
	src = rd32(h + 12);
	dst = rd32(h + 16);
	if (dst != ipc.addr) {
		drop(&ipc.st.drop_not_ours);
		return;
	}
	if (martian(src) || (src == ipc.addr && !ipc.looping)) {
		drop(&ipc.st.drop_bad);
		return;
	}
	if (rd16(h + 6) & 0x3FFF) {             /* MF or an offset */
		drop(&ipc.st.drop_fragment);
		return;
	}
	ipc.st.ip_rx++;
	switch (h[9]) {
	case PROTO_ICMP:
		icmp_input(f, src, h + hlen, total - hlen, h[8]);
		break;
	case PROTO_UDP:
		udp_input(f, src, h + hlen, total - hlen);
		break;
	default:
		drop(&ipc.st.drop_proto);
	}
}

/* The net driver's receive handler (interrupt context), and loopback. */
static void eth_input(int net, u8 *f, u32 len, void *arg)
{
	(void)net;
	(void)arg;
	ipc.st.rx_frames++;
	if (!mac_eq(f, ipc.mac) && !mac_eq(f, bcast_mac)) {
		drop(&ipc.st.drop_other_host);
		return;
	}
	switch (rd16(f + 12)) {
	case ETH_P_ARP:
		arp_input(f, len);
		break;
	case ETH_P_IP:
		ip_input(f, len);
		break;
	default:
		drop(&ipc.st.drop_ethertype);
	}
}

/* ---- Waiting (main code) --------------------------------------------------------- */

struct waiter {
	bool (*done)(void);
	unsigned long irq0;
};

static bool wait_ready(void *arg)
{
	struct waiter *w = arg;

	return w->done() || irq_count(LGUEST_TIMER_IRQ) != w->irq0;
}

/* Sleep until done() or until the host clock reaches start + ms (at most
 * 4 s), serving interrupts. Every wake-up is an interrupt, at which the
 * host wrote the time, so time_last() is fresh each time round. */
static bool wait_until(bool (*done)(void), struct lguest_timespec start, u32 ms)
{
	u64 limit = (u64)(ms < 4000 ? ms : 4000) * 1000000u;

	for (;;) {
		struct waiter w = { done, irq_count(LGUEST_TIMER_IRQ) };
		u64 el;

		if (done())
			break;
		el = time_diff_ns(start, time_last());
		if (el >= limit)
			break;
		timer_set((u32)(limit - el));
		idle_until_for(wait_ready, &w, limit - el);
	}
	timer_set(0);
	return done();
}

static u32 arp_target;

static bool arp_done(void)
{
	return arp_find(arp_target) != NULL;
}

int ip_arp_resolve(u32 addr, u8 mac[NET_ETH_ALEN])
{
	struct lguest_timespec start;
	static const u8 zero_mac[NET_ETH_ALEN];

	if (ipc.net < 0)
		return IP_ENODEV;
	if (!ipc.have_addr)
		return IP_ENOTCONF;
	if (arp_lookup(addr, mac))
		return 0;
	arp_target = addr;
	start = time_now();
	for (u32 i = 1; i <= IP_ARP_TRIES; i++) {
		arp_output(1, bcast_mac, zero_mac, addr);
		if (wait_until(arp_done, start, i * IP_ARP_WAIT_MS))
			break;
	}
	return arp_lookup(addr, mac) ? 0 : IP_EHOSTUNREACH;
}

/* Next hop's MAC for dst (may ARP, so main code only). */
static int route(u32 dst, u8 *mac)
{
	u32 hop = dst;

	if (dst == ipc.addr) {
		memcpy(mac, ipc.mac, NET_ETH_ALEN);
		return 0;
	}
	if (dst == 0xFFFFFFFFu || (ipc.prefix < 31 && dst == (ipc.addr | ~ipc.mask))) {
		memcpy(mac, bcast_mac, NET_ETH_ALEN);
		return 0;
	}
	if ((dst & ipc.mask) != (ipc.addr & ipc.mask)) {
		if (!ipc.gw)
			return IP_ENETUNREACH;
		hop = ipc.gw;
	}
	return ip_arp_resolve(hop, mac);
}

int ip_route_check(u32 dst)
{
	int rc = ipc.net < 0 ? IP_ENODEV : !ipc.have_addr ? IP_ENOTCONF : 0;

	if (rc)
		return rc;
	if (!net_is_up(ipc.net))
		return IP_ENETDOWN;
	if (dst == ipc.addr || dst == 0xFFFFFFFFu || (dst & ipc.mask) == (ipc.addr & ipc.mask))
		return 0;
	return ipc.gw ? 0 : IP_ENETUNREACH;
}

static int check_ready(void)
{
	if (ipc.net < 0)
		return IP_ENODEV;
	if (!ipc.have_addr)
		return IP_ENOTCONF;
	return 0;
}

static bool ping_done(void)
{
	return ping.got;
}

int ip_ping(u32 dst, u16 seq, u32 size, u32 timeout_ms, struct ip_ping_result *r)
{
	u8 f[NET_FRAME_MAX];
	u8 *q = f + OFF_L4;
	u8 mac[NET_ETH_ALEN];
	u64 rtt;
	int rc;

	memset(r, 0, sizeof(*r));
	if ((rc = check_ready()))
		return rc;
	if (size > IP_ICMP_MAX_DATA)
		return IP_EMSGSIZE;
	r->sent = time_now();
	if ((rc = route(dst, mac)))
		return rc;
	q[0] = ICMP_ECHO;
	q[1] = 0;
	wr16(q + 2, 0);
	wr16(q + 4, ipc.ping_id);
	wr16(q + 6, seq);
	for (u32 i = 0; i < size; i++)
		q[L4_HLEN + i] = (u8)i;
	wr16(q + 2, csum_fold(csum_add(0, q, L4_HLEN + size)));

	memset(&ping, 0, sizeof(ping));
	ping.dst = dst;
	ping.seq = seq;
	ping.size = size;
	ping.active = true;
	if (!mac_eq(mac, ipc.mac))
		r->sent = time_now();       /* fresh, after any ARP */
	ping.when = r->sent;            /* a looped-back reply comes at once */
	rc = ip_output(f, mac, dst, PROTO_ICMP, L4_HLEN + size);
	if (rc == 0)
		arp_forget_mac(mac);
	if (rc >= 0)
		wait_until(ping_done, r->sent, timeout_ms);
	ping.active = false;
	if (rc < 0)
		return rc;
	if (!ping.got)
		return IP_ETIMEDOUT;
	rtt = time_diff_ns(r->sent, ping.when);
	r->rtt_ns = rtt > 0xFFFFFFFFu ? 0xFFFFFFFFu : (u32)rtt;
	r->bytes = ping.bytes;
	r->ttl = ping.ttl;
	r->bad_data = ping.bad_data;
	return 0;
}

static bool udp_done(void)
{
	return udpq.got;
}

int ip_udp_request(u32 dst, u16 port, const void *data, u32 len, void *reply,
		   u32 *reply_len, u32 timeout_ms, u32 *rtt_ns)
{
	u8 f[NET_FRAME_MAX];
	u8 *q = f + OFF_L4;
	u8 mac[NET_ETH_ALEN];
	struct lguest_timespec t0;
	u64 rtt;
	u16 c;
	int rc;

	if ((rc = check_ready()))
		return rc;
	if (len > IP_UDP_MAX_DATA)
		return IP_EMSGSIZE;
	if (port == 0)
		return IP_EINVAL;
	if ((rc = route(dst, mac)))
		return rc;
	ipc.udp_port = (u16)(UDP_EPHEMERAL + (ipc.udp_port + 1 - UDP_EPHEMERAL) % 16384u);
	wr16(q, ipc.udp_port);
	wr16(q + 2, port);
	wr16(q + 4, L4_HLEN + len);
	wr16(q + 6, 0);
	memcpy(q + L4_HLEN, data, len);
	c = l4_csum(ipc.addr, dst, PROTO_UDP, q, L4_HLEN + len);
	wr16(q + 6, c ? c : 0xFFFF);

	memset(&udpq, 0, sizeof(udpq));
	udpq.dst = dst;
	udpq.rport = port;
	udpq.lport = ipc.udp_port;
	udpq.buf = reply;
	udpq.size = *reply_len;
	udpq.active = true;
	t0 = time_now();
	udpq.when = t0;
	rc = ip_output(f, mac, dst, PROTO_UDP, L4_HLEN + len);
	if (rc == 0)
		arp_forget_mac(mac);
	if (rc >= 0)
		wait_until(udp_done, t0, timeout_ms);
	udpq.active = false;
	if (rc < 0)
		return rc;
	if (!udpq.got)
		return IP_ETIMEDOUT;
	*reply_len = udpq.len;
	rtt = time_diff_ns(t0, udpq.when);
	if (rtt_ns)
		*rtt_ns = rtt > 0xFFFFFFFFu ? 0xFFFFFFFFu : (u32)rtt;
	return 0;
}

/* ---- Configuration ------------------------------------------------------------------ */

bool ip_parse_addr(const char *s, u32 *addr)
{
	u32 a = 0;

	for (int i = 0; i < 4; i++) {
		u32 v = 0;
		int digits = 0;

		while (isdigit(*s) && digits < 4) {
			v = v * 10 + (u32)(*s++ - '0');
			digits++;
		}
		if (digits == 0 || digits > 3 || v > 255)
			return false;
		a = a << 8 | v;
		if (i < 3 && *s++ != '.')
			return false;
	}
	if (*s)
		return false;
	*addr = a;
	return true;
}

bool ip_parse_cidr(const char *s, u32 *addr, unsigned *prefix, unsigned default_prefix)
{
	char buf[20];
	const char *slash = strchr(s, '/');
	size_t n = slash ? (size_t)(slash - s) : strlen(s);
	unsigned p = default_prefix;

	if (n >= sizeof(buf))
		return false;
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (!ip_parse_addr(buf, addr))
		return false;
	if (slash) {
		const char *d = slash + 1;

		if (!isdigit(d[0]) || (d[1] && (!isdigit(d[1]) || d[2])))
			return false;
		p = (unsigned)atoi(d);
	}
	if (p > 32)
		return false;
	*prefix = p;
	return true;
}

char *ip_format(char *buf, u32 a)
{
	snprintf(buf, 16, "%u.%u.%u.%u", a >> 24, (a >> 16) & 0xFF, (a >> 8) & 0xFF, a & 0xFF);
	return buf;
}

const char *ip_cmdline_arg(const char *cmdline, const char *key, char *buf, size_t size)
{
	size_t klen = strlen(key);
	const char *p = cmdline;

	while (*p) {
		const char *tok, *end;

		while (*p == ' ' || *p == '\t')
			p++;
		tok = p;
		while (*p && *p != ' ' && *p != '\t')
			p++;
		end = p;
		if ((size_t)(end - tok) >= klen && strncmp(tok, key, klen) == 0 &&
		    (tok + klen == end || tok[klen] == '=')) {
			const char *v = tok + klen + (tok + klen == end ? 0 : 1);
			size_t n = (size_t)(end - v);

			if (size == 0)
				return NULL;
			if (n >= size)
				n = size - 1;
			memcpy(buf, v, n);
			buf[n] = '\0';
			return buf;
		}
	}
	return NULL;
}

u32 ip_cmdline_u32(const char *cmdline, const char *key, u32 dflt)
{
	char v[16];

	if (!ip_cmdline_arg(cmdline, key, v, sizeof(v)))
		return dflt;
	return (u32)strtoul(v, NULL, 0);
}

int ip_configure(u32 addr, unsigned prefix, u32 gw)
{
	if (ipc.net < 0)
		return IP_ENODEV;
	if (prefix > 32 || martian(addr) || (gw && martian(gw)))
		return IP_EINVAL;
	ipc.addr = addr;
	ipc.prefix = prefix;
	ipc.mask = prefix ? 0xFFFFFFFFu << (32 - prefix) : 0;
	ipc.gw = gw;
	ipc.have_addr = true;
	return 0;
}

int ip_init_net(int net, const char *cmdline)
{
	char v[32];
	u32 addr = 0, gw = 0;
	unsigned prefix = 24;
	bool bad = false, have = false;
	int rc;

	if (!net_ready(net))
		return IP_ENODEV;
	ipc.net = net;
	memcpy(ipc.mac, net_mac(net), NET_ETH_ALEN);
	ipc.ping_id = (u16)(0x6C67 ^ READ_ONCE(lguest_data.guestid));
	ipc.udp_port = UDP_EPHEMERAL;
	if (ip_cmdline_arg(cmdline, "ip", v, sizeof(v))) {
		have = ip_parse_cidr(v, &addr, &prefix, 24);
		bad |= !have;
	}
	if (ip_cmdline_arg(cmdline, "gw", v, sizeof(v)))
		bad |= !ip_parse_addr(v, &gw);
	if (have && ip_configure(addr, prefix, bad ? 0 : gw))
		bad = true;
	if (ip_cmdline_arg(cmdline, "promisc", v, sizeof(v)) && strcmp(v, "0") != 0)
		net_set_promisc(net, true);
	net_set_rx_handler(net, eth_input, NULL);
	if ((rc = net_open(net))) {
		ipc.net = -1;
		return rc == NET_ENOMEM ? IP_ENETDOWN : IP_ENODEV;
	}
	return bad ? IP_EINVAL : 0;
}

int ip_init(void)
{
	return ip_init_net(0, lg_cmdline);
}

bool ip_configured(void)
{
	return ipc.net >= 0 && ipc.have_addr;
}

int ip_net(void)
{
	return ipc.net;
}

u32 ip_addr(void)
{
	return ipc.have_addr ? ipc.addr : 0;
}

unsigned ip_prefix(void)
{
	return ipc.have_addr ? ipc.prefix : 0;
}

u32 ip_gateway(void)
{
	return ipc.gw;
}

int ip_stats(struct ip_stats *out)
{
	*out = ipc.st;
	return 0;
}

const char *ip_strerror(int err)
{
	switch (err) {
	case 0:
		return "ok";
	case IP_ENODEV:
		return "no network device";
	case IP_ENOTCONF:
		return "no address (start the guest with ip=A.B.C.D/N)";
	case IP_EINVAL:
		return "invalid argument";
	case IP_ENETUNREACH:
		return "network unreachable";
	case IP_EHOSTUNREACH:
		return "host unreachable";
	case IP_ETIMEDOUT:
		return "timed out";
	case IP_EMSGSIZE:
		return "message too long";
	case IP_ENETDOWN:
		return "network device down";
	default:
		return "unknown error";
	}
}
