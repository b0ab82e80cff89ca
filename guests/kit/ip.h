/*
 * ip.h: a tiny IPv4 stack over the net driver. Included by kit.h.
 *
 * One interface (a net device, net 0 unless ip_init_net() says otherwise),
 * one address. From the command line (docs/guest-abi.md §16):
 *   ip=A.B.C.D/N   the address and prefix length (/N optional: 24)
 *   gw=A.B.C.D     next hop for addresses outside the subnet (optional)
 *   promisc=1      put the interface in promiscuous mode (optional)
 *
 * What it does:
 *   ARP     answers requests for our address, learns senders (RFC 826
 *           merge), resolves with retries; a 16-entry cache (LRU).
 *   ICMP    answers echo requests (same id, sequence and payload); sends
 *           echo requests and matches the replies (ip_ping).
 *   UDP     echo service on port 7 (the same payload back to the sender);
 *           one client request at a time (ip_udp_request).
 *   IPv4    header checksum always computed and verified (NOCSUM or not),
 *           as are the ICMP and UDP checksums (UDP: when not 0). TTL 64,
 *           DF set, no options sent, fragments dropped.
 * Everything else is dropped and counted (struct ip_stats).
 *
 * Frames are handled in the net device's interrupt handler, so the stack
 * answers whatever the main code is doing, as long as it makes hypercalls
 * (waiting for console input, sleeping, printing). Replies go to the
 * Ethernet source of the request, so answering never needs ARP. A frame
 * to our own address is looped back without touching the device.
 *
 * Addresses are u32 in host order: 10.0.0.1 is 0x0A000001.
 */
#ifndef LGUEST_KIT_IP_H
#define LGUEST_KIT_IP_H

#include "lguest.h"

#define IP_ENODEV        (-1)   /* no net device (or its probe failed) */
#define IP_ENOTCONF      (-2)   /* no address configured (no ip=) */
#define IP_EINVAL        (-3)   /* bad argument / bad ip= or gw= */
#define IP_ENETUNREACH   (-4)   /* not in our subnet and no gw= */
#define IP_EHOSTUNREACH  (-5)   /* ARP got no answer */
#define IP_ETIMEDOUT     (-6)   /* no reply in time */
#define IP_EMSGSIZE      (-7)   /* payload too large for one frame */
#define IP_ENETDOWN      (-8)   /* the device refused the frame */

#define IP_ARP_CACHE     16
#define IP_ARP_TRIES     3       /* requests per resolution */
#define IP_ARP_WAIT_MS   300     /* wait after each request */
#define IP_UDP_ECHO_PORT 7
#define IP_ICMP_MAX_DATA 1472    /* 1500 - 20 (IP) - 8 (ICMP) */
#define IP_UDP_MAX_DATA  1472    /* 1500 - 20 (IP) - 8 (UDP) */

struct ip_stats {
	unsigned long rx_frames;      /* frames the driver handed to the stack */
	unsigned long rx_dropped;     /* every frame dropped, any reason below */
	unsigned long drop_other_host;/* destination MAC neither ours nor broadcast */
	unsigned long drop_ethertype; /* neither IPv4 nor ARP */
	unsigned long drop_bad;       /* malformed, bad checksum, bad length */
	unsigned long drop_not_ours;  /* IP destination is not our address */
	unsigned long drop_fragment;  /* IP fragments */
	unsigned long drop_proto;     /* IP protocol not ICMP/UDP, other ICMP types */
	unsigned long drop_no_port;   /* UDP to a port nobody listens on */
	unsigned long drop_unconfigured; /* IP or ARP while we have no address */
	unsigned long arp_rx, arp_tx;
	unsigned long arp_requests_answered;
	unsigned long ip_rx, ip_tx;   /* IPv4 packets taken (for us) / sent */
	unsigned long icmp_echo_answered;
	unsigned long icmp_echo_replies; /* replies matched to our requests */
	unsigned long udp_echo_answered;
	unsigned long udp_replies;    /* replies matched to ip_udp_request */
	unsigned long loopback;       /* packets to our own address */
	unsigned long tx_failed;      /* sends no peer took (carrier errors) */
};

struct ip_arp_entry {
	u32 addr;
	u8 mac[6];
};

/* Open net 0 and configure it from the command line (ip=, gw=, promisc=).
 * 0 (also when there is no ip=: see ip_configured), IP_ENODEV, IP_EINVAL. */
int ip_init(void);
int ip_init_net(int net, const char *cmdline);
/* Set the address by hand (prefix 0..32; gw 0 = none). */
int ip_configure(u32 addr, unsigned prefix, u32 gw);
bool ip_configured(void);
int ip_net(void);               /* the interface's net number, -1 before init */
u32 ip_addr(void);
unsigned ip_prefix(void);
u32 ip_gateway(void);

/* Parse "A.B.C.D" / "A.B.C.D/N" (N 0..32; default_prefix if absent).
 * Return false if malformed. */
bool ip_parse_addr(const char *s, u32 *addr);
bool ip_parse_cidr(const char *s, u32 *addr, unsigned *prefix, unsigned default_prefix);
/* "A.B.C.D" into buf (at least 16 bytes); returns buf. */
char *ip_format(char *buf, u32 addr);
/* The value of key=VALUE on a command line, copied into buf; NULL if
 * absent (a bare "key" gives ""). */
const char *ip_cmdline_arg(const char *cmdline, const char *key, char *buf, size_t size);
/* The number in key=N on a command line (decimal, 0x hex or 0 octal, as
 * strtoul); dflt if absent. */
u32 ip_cmdline_u32(const char *cmdline, const char *key, u32 dflt);

/* Could a packet to dst go out now (without asking ARP)? 0, IP_ENODEV,
 * IP_ENOTCONF, IP_ENETDOWN (device closed) or IP_ENETUNREACH. */
int ip_route_check(u32 dst);

/* ARP: the cache (entries 0..IP_ARP_CACHE-1; false if empty) and a
 * resolution (main code only: it sleeps): 0, IP_EHOSTUNREACH, ... An entry
 * whose MAC no peer took a frame for (ip_ping, ip_udp_request) is
 * forgotten, so the next attempt asks again. */
bool ip_arp_entry(unsigned i, struct ip_arp_entry *out);
int ip_arp_resolve(u32 addr, u8 mac[6]);

/* One echo request to dst with `size` data bytes (0..1472, byte i = i),
 * sequence seq, waiting up to timeout_ms for the matching reply. Main code
 * only. Returns 0 with *r filled in, or IP_E*. r->sent is the host time the
 * request left (time_now() just before the send; for a failed ARP, the
 * time the attempt started), r->rtt_ns the time from then to the reply's
 * interrupt (as the host wrote it at delivery). */
struct ip_ping_result {
	struct lguest_timespec sent;
	u32 rtt_ns;
	u32 bytes;              /* ICMP bytes in the reply (8 + data) */
	u8 ttl;
	bool bad_data;          /* the payload came back different */
};
int ip_ping(u32 dst, u16 seq, u32 size, u32 timeout_ms, struct ip_ping_result *r);

/* Send one UDP datagram from an ephemeral port to dst:port and wait up to
 * timeout_ms for one datagram back from dst:port to that port; its payload
 * goes to reply[0..*reply_len) (truncated to the size *reply_len gives).
 * Main code only. 0 or IP_E*. */
int ip_udp_request(u32 dst, u16 port, const void *data, u32 len, void *reply,
		   u32 *reply_len, u32 timeout_ms, u32 *rtt_ns);

int ip_stats(struct ip_stats *out);
const char *ip_strerror(int err);

/* ---- netcmd.c: ready-made shell commands (the shell's net, ping, udp) ---- */

/* Bring up the stack for the shell: ip_init(), complaining about a bad
 * ip= in one line. Quiet without a net device. */
void netcmd_init(void);
int netcmd_net(int argc, char **argv);      /* net [up|down|promisc ...] */
int netcmd_ping(int argc, char **argv);     /* ping ADDR [COUNT] [SIZE] */
int netcmd_udp(int argc, char **argv);      /* udp ADDR PORT TEXT... */

#endif /* LGUEST_KIT_IP_H */
