/*
 * net.h: the network driver, "lguestnet" (protocol §10.4). Included by kit.h.
 *
 * Net devices are the bus devices of type 2 (LGUEST_DEVICE_T_NET), numbered
 * 0, 1, ... in device-table order (net n = bus_find(T_NET, n)); one whose
 * probe failed keeps its number and every call on it fails with NET_ENODEV.
 *
 * The device page is a table of 682 six-byte MAC slots (struct lguest_net),
 * shared by every guest of the segment. Our slot is
 * me = features & (num_pages * 4096 - 1); the key of peer i is
 * page + 4 * i. Our MAC is 02:00:<guestid low>:<guestid high>:00:00.
 *
 * net_open() publishes our MAC in slot me (bit 0 of byte 0 = promiscuous),
 * and binds NET_RX_BUFS (64) receive buffers of 1514 bytes on peer_key(me) with the
 * device's IRQ (index + 1). Each buffer is described by 1 or 2 sections, so
 * that no section crosses a page. The IRQ handler scans all the buffers,
 * hands every frame of 14..1514 bytes to the receive handler (others are
 * dropped and counted) and gives the buffer back (used_len = 0).
 *
 * net_send() sends one Ethernet frame to every slot i != me whose MAC is
 * published (mac[0] != 0) and that should see it: the destination is a
 * group address (broadcast/multicast), or slot i is promiscuous, or its MAC
 * equals the destination ignoring bit 0 of byte 0. Each is one SEND_DMA to
 * peer_key(i), so a broadcast is N unicast DMAs. A send whose used_len is
 * not the frame length counts as a tx (carrier) error.
 *
 * The receive handler runs in interrupt context (interrupts off, inside
 * whatever hypercall the main code was making): it may send frames (each
 * send is a hypercall, and no interrupt nests into a handler) but must not
 * sleep. The frame is only valid until it returns.
 */
#ifndef LGUEST_KIT_NET_H
#define LGUEST_KIT_NET_H

#include "lguest.h"

struct lg_device;

#define NET_ETH_ALEN     6
#define NET_ETH_HLEN     14u                 /* dst, src, type */
#define NET_MTU          1500u
#define NET_FRAME_MAX    (NET_ETH_HLEN + NET_MTU)   /* 1514 */
#define NET_RX_BUFS      64u
#define NET_SLOT_SIZE    6u                  /* sizeof(struct lguest_net) */
#define NET_PROMISC_BIT  0x01                /* in mac[0] of a slot */

#define NET_ENODEV  (-1)    /* no such net device, or its probe failed */
#define NET_EDOWN   (-2)    /* the device is not open (net_open) */
#define NET_EINVAL  (-3)    /* bad argument (frame length outside 14..1514) */
#define NET_ENOMEM  (-4)    /* no memory for the receive buffers, or BIND_DMA refused */

/* Called for each received frame (interrupt context; see above). */
typedef void (*net_rx_handler_t)(int net, u8 *frame, u32 len, void *arg);

struct net_stats {
	unsigned long rx_packets;       /* frames taken (14..1514 bytes) */
	unsigned long rx_bytes;
	unsigned long rx_dropped;       /* bad length, or no receive handler */
	unsigned long rx_length_errors; /* of which: length outside 14..1514 */
	unsigned long tx_packets;       /* sends with used_len == frame length */
	unsigned long tx_bytes;
	unsigned long tx_errors;        /* carrier: used_len != length (no receiver, full) */
	unsigned long tx_dropped;       /* refused before sending (bad length, down) */
	unsigned long irqs;             /* receive interrupts */
};

/* Number of net devices on the bus (including any whose probe failed). */
int net_count(void);
/* The bus device behind net (NULL for a bad number). */
struct lg_device *net_device(int net);
/* Probe worked. */
bool net_ready(int net);
/* Open: publish the MAC, bind the receive buffers. Idempotent. */
int net_open(int net);
/* Close: clear our slot (the MAC disappears), unbind. Idempotent. */
int net_close(int net);
bool net_is_up(int net);

/* Our MAC (6 bytes; NULL for a bad net), slot, slot count, NOCSUM flag. */
const u8 *net_mac(int net);
int net_slot(int net);
unsigned net_slots(int net);
bool net_nocsum(int net);

/* Promiscuous mode: sets or clears bit 0 of our slot's byte 0, now if the
 * device is open, else at net_open(). Peers see it after their next
 * BIND_DMA, SEND_DMA or HALT. */
int net_set_promisc(int net, bool on);
bool net_promisc(int net);

/* The MAC published in slot i of the table, as it is now (mac[0] keeps
 * the promiscuous bit). Returns false if the slot is empty or out of range. */
bool net_peer(int net, unsigned slot, u8 mac[NET_ETH_ALEN]);

/* Where received frames go (NULL: dropped and counted). */
int net_set_rx_handler(int net, net_rx_handler_t handler, void *arg);

/*
 * Send one Ethernet frame (14..1514 bytes, any alignment, at most 16
 * page-bounded sections, so any buffer works) by the slot rules above.
 * Returns the number of peers that took the whole frame (0 if none), or a
 * negative NET_E*.
 */
int net_send(int net, const void *frame, u32 len);

/* Process received frames now (what the IRQ handler does); safe from main
 * code and handlers alike. */
void net_poll(int net);

int net_stats(int net, struct net_stats *out);
const char *net_strerror(int err);

/* "02:00:01:00:00:00" into buf (at least 18 bytes); returns buf. */
char *net_format_mac(char *buf, const u8 mac[NET_ETH_ALEN]);

#endif /* LGUEST_KIT_NET_H */
