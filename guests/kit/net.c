/*
 * net.c: the network driver, "lguestnet" (protocol §10.4; API in net.h).
 *
 * Guest:002 Networking. There is no network card: a net device is one page
 * holding a table of 682 MAC slots, one per guest of the segment. Each
 * guest publishes its MAC in its own slot and binds its receive buffers on
 * the key page + 4 * slot. To send to peer i we SEND_DMA to page + 4 * i.
 * On an inter-guest segment the page is the same shared object in every
 * guest, so the keys are the same in all of them and the host copies the
 * frame straight into the peer's buffer (The Futex Trick, §5.1). On a tap
 * the host sits in slot 0 with the promiscuous bit, so every frame goes to
 * it, and frames from the tap arrive in our buffers like a peer's.
 *
 * The peers' MACs are the host's to keep coherent: another guest's slot may
 * change at any hypercall, so the table is read afresh (volatile) on every
 * send.
 */
#include "kit.h"

#define RX_BYTES (NET_RX_BUFS * NET_FRAME_MAX)                   /* 96896 */
#define RX_PAGES ((RX_BYTES + LGUEST_PAGE_SIZE - 1) / LGUEST_PAGE_SIZE)

struct net_dev {
	struct lg_device *dev;
	volatile u8 *page;              /* the MAC table */
	u32 key0;                       /* = page address: peer_key(i) = key0 + 4 i */
	unsigned nslots;                /* num_pages * 4096 / 6 */
	unsigned me;                    /* our slot */
	u8 mac[NET_ETH_ALEN];
	bool ready;                     /* probe worked */
	bool up;                        /* open: MAC published, buffers bound */
	bool promisc;
	u8 *rxmem;                      /* NET_RX_BUFS x 1514 bytes, packed, page aligned */
	struct lguest_dma rx[NET_RX_BUFS];   /* the bound array */
	unsigned rx_next;               /* where the next frame most likely is */
	bool in_rx, rx_again;           /* reentrancy guard of net_poll */
	net_rx_handler_t handler;
	void *handler_arg;
	struct net_stats stats;
};

static struct net_dev nets[LGUEST_MAX_DEVICES];
static int nnets;

static struct net_dev *net_get(int net)
{
	if (net < 0 || net >= nnets)
		return NULL;
	return &nets[net];
}

static int net_index(struct net_dev *d)
{
	return (int)(d - nets);
}

/* ---- The MAC table ------------------------------------------------------- */

static volatile u8 *slot_ptr(struct net_dev *d, unsigned i)
{
	return d->page + i * NET_SLOT_SIZE;
}

/* Write our MAC into slot me, byte 0 (with the promiscuous bit) last. */
static void publish(struct net_dev *d)
{
	volatile u8 *s = slot_ptr(d, d->me);

	for (unsigned i = 1; i < NET_ETH_ALEN; i++)
		s[i] = d->mac[i];
	barrier();
	s[0] = (u8)(d->mac[0] | (d->promisc ? NET_PROMISC_BIT : 0));
}

static void unpublish(struct net_dev *d)
{
	volatile u8 *s = slot_ptr(d, d->me);

	s[0] = 0;                       /* mac[0] == 0: the slot is unused */
	barrier();
	for (unsigned i = 1; i < NET_ETH_ALEN; i++)
		s[i] = 0;
}

/* ---- Receive ------------------------------------------------------------- */

/* All NET_RX_BUFS buffers, from the one after the last frame taken: the host fills
 * them round-robin, so this keeps frames in order. */
static void rx_scan(struct net_dev *d)
{
	unsigned start = d->rx_next;

	for (unsigned k = 0; k < NET_RX_BUFS; k++) {
		unsigned i = (start + k) % NET_RX_BUFS;
		struct lguest_dma *b = &d->rx[i];
		u32 len = READ_ONCE(b->used_len);

		if (len == 0)
			continue;
		if (len < NET_ETH_HLEN || len > NET_FRAME_MAX) {
			d->stats.rx_length_errors++;
			d->stats.rx_dropped++;
		} else if (!d->handler) {
			d->stats.rx_dropped++;
		} else {
			d->stats.rx_packets++;
			d->stats.rx_bytes += len;
			d->handler(net_index(d), d->rxmem + i * NET_FRAME_MAX, len,
				   d->handler_arg);
		}
		/* Give the buffer back: the host fills only used_len == 0. */
		barrier();
		WRITE_ONCE(b->used_len, 0);
		d->rx_next = (i + 1) % NET_RX_BUFS;
	}
}

/* A handler may send, and a send is a hypercall at which our own IRQ may
 * be delivered (if net_poll runs from main code): never scan twice at
 * once, rescan instead. */
static void rx_process(struct net_dev *d)
{
	if (!d->up)
		return;
	if (d->in_rx) {
		d->rx_again = true;
		return;
	}
	d->in_rx = true;
	do {
		d->rx_again = false;
		rx_scan(d);
	} while (d->rx_again);
	d->in_rx = false;
}

static void net_irq(unsigned irq, void *arg)
{
	struct net_dev *d = arg;

	(void)irq;
	d->stats.irqs++;
	rx_process(d);
}

void net_poll(int net)
{
	struct net_dev *d = net_get(net);

	if (d && d->ready)
		rx_process(d);
}

/* ---- Probe, open, close ---------------------------------------------------- */

static int net_probe(struct lg_device *dev)
{
	struct net_dev *d;
	u16 features = dev->desc->features;
	u16 pages = dev->desc->num_pages;
	u16 id = READ_ONCE(lguest_data.guestid);

	if (nnets >= LGUEST_MAX_DEVICES)
		return -1;
	d = &nets[nnets++];             /* numbered even if the probe fails */
	d->dev = dev;
	dev->priv = d;
	if (!dev->mem || pages == 0)
		return -1;
	d->page = dev->mem;
	d->key0 = lg_pa(dev->mem);
	d->nslots = pages * LGUEST_PAGE_SIZE / NET_SLOT_SIZE;
	d->me = features & (pages * LGUEST_PAGE_SIZE - 1);
	if (d->me >= d->nslots)         /* its slot or key would be off the page */
		return -1;
	d->mac[0] = 0x02;               /* locally administered, never 0 */
	d->mac[1] = 0x00;
	d->mac[2] = (u8)(id & 0xFF);
	d->mac[3] = (u8)(id >> 8);
	d->mac[4] = 0x00;
	d->mac[5] = 0x00;
	if (irq_register(dev->irq, net_irq, d))
		return -1;
	d->ready = true;
	return 0;
}

static const struct lg_driver net_driver = {
	.name = "lguestnet",
	.type = LGUEST_DEVICE_T_NET,
	.probe = net_probe,
};
KIT_DRIVER(net_driver);

int net_open(int net)
{
	struct net_dev *d = net_get(net);

	if (!d || !d->ready)
		return NET_ENODEV;
	if (d->up)
		return 0;
	if (!d->rxmem && !(d->rxmem = alloc_pages(RX_PAGES)))
		return NET_ENOMEM;
	publish(d);
	/* Each 1514-byte buffer: 1 section, or 2 where it crosses a page. */
	for (unsigned i = 0; i < NET_RX_BUFS; i++)
		dma_fill(&d->rx[i], d->rxmem + i * NET_FRAME_MAX, NET_FRAME_MAX);
	d->rx_next = 0;
	barrier();
	for (unsigned i = 0; i < NET_RX_BUFS; i++)
		WRITE_ONCE(d->rx[i].used_len, 0);   /* free: set last */
	if (bind_dma(d->key0 + 4 * d->me, d->rx, NET_RX_BUFS, d->dev->irq)) {
		unpublish(d);
		return NET_ENOMEM;
	}
	d->up = true;
	return 0;
}

int net_close(int net)
{
	struct net_dev *d = net_get(net);

	if (!d || !d->ready)
		return NET_ENODEV;
	if (!d->up)
		return 0;
	unpublish(d);
	unbind_dma(d->key0 + 4 * d->me, d->rx);
	d->up = false;
	return 0;
}

/* ---- Transmit -------------------------------------------------------------- */

/* Should slot s (its MAC as published) get a frame for dst? */
static bool wants(const volatile u8 *s, const u8 *dst)
{
	if (dst[0] & 0x01)              /* broadcast / multicast */
		return true;
	if (s[0] & NET_PROMISC_BIT)
		return true;
	if ((s[0] & ~NET_PROMISC_BIT) != (dst[0] & ~NET_PROMISC_BIT))
		return false;
	for (unsigned k = 1; k < NET_ETH_ALEN; k++)
		if (s[k] != dst[k])
			return false;
	return true;
}

int net_send(int net, const void *frame, u32 len)
{
	struct net_dev *d = net_get(net);
	struct lguest_dma dma;          /* only needed during each SEND_DMA */
	const u8 *dst = frame;
	int taken = 0;

	if (!d || !d->ready)
		return NET_ENODEV;
	if (!d->up) {
		d->stats.tx_dropped++;
		return NET_EDOWN;
	}
	if (len < NET_ETH_HLEN || len > NET_FRAME_MAX || dma_fill(&dma, frame, len)) {
		d->stats.tx_dropped++;
		return NET_EINVAL;
	}
	for (unsigned i = 0; i < d->nslots; i++) {
		const volatile u8 *s = slot_ptr(d, i);
		u32 used;

		if (i == d->me || s[0] == 0 || !wants(s, dst))
			continue;
		used = send_dma(d->key0 + 4 * i, &dma);
		if (used != len) {
			d->stats.tx_errors++;
		} else {
			d->stats.tx_packets++;
			d->stats.tx_bytes += len;
			taken++;
		}
	}
	return taken;
}

/* ---- Queries ----------------------------------------------------------------- */

int net_count(void)
{
	return nnets;
}

struct lg_device *net_device(int net)
{
	struct net_dev *d = net_get(net);

	return d ? d->dev : NULL;
}

bool net_ready(int net)
{
	struct net_dev *d = net_get(net);

	return d && d->ready;
}

bool net_is_up(int net)
{
	struct net_dev *d = net_get(net);

	return d && d->up;
}

const u8 *net_mac(int net)
{
	struct net_dev *d = net_get(net);

	return d && d->ready ? d->mac : NULL;
}

int net_slot(int net)
{
	struct net_dev *d = net_get(net);

	return d && d->ready ? (int)d->me : NET_ENODEV;
}

unsigned net_slots(int net)
{
	struct net_dev *d = net_get(net);

	return d && d->ready ? d->nslots : 0;
}

bool net_nocsum(int net)
{
	struct net_dev *d = net_get(net);

	return d && (d->dev->desc->features & LGUEST_NET_F_NOCSUM);
}

int net_set_promisc(int net, bool on)
{
	struct net_dev *d = net_get(net);

	if (!d || !d->ready)
		return NET_ENODEV;
	d->promisc = on;
	if (d->up)
		publish(d);
	return 0;
}

bool net_promisc(int net)
{
	struct net_dev *d = net_get(net);

	return d && d->promisc;
}

bool net_peer(int net, unsigned slot, u8 mac[NET_ETH_ALEN])
{
	struct net_dev *d = net_get(net);
	const volatile u8 *s;

	if (!d || !d->ready || slot >= d->nslots)
		return false;
	s = slot_ptr(d, slot);
	for (unsigned k = 0; k < NET_ETH_ALEN; k++)
		mac[k] = s[k];
	return mac[0] != 0;
}

int net_set_rx_handler(int net, net_rx_handler_t handler, void *arg)
{
	struct net_dev *d = net_get(net);

	if (!d || !d->ready)
		return NET_ENODEV;
	d->handler = handler;
	d->handler_arg = arg;
	return 0;
}

int net_stats(int net, struct net_stats *out)
{
	struct net_dev *d = net_get(net);

	if (!d)
		return NET_ENODEV;
	*out = d->stats;
	return 0;
}

const char *net_strerror(int err)
{
	switch (err) {
	case 0:
		return "ok";
	case NET_ENODEV:
		return "no such net device";
	case NET_EDOWN:
		return "net device is down";
	case NET_EINVAL:
		return "invalid frame";
	case NET_ENOMEM:
		return "no memory or binding for the receive buffers";
	default:
		return "unknown error";
	}
}

char *net_format_mac(char *buf, const u8 mac[NET_ETH_ALEN])
{
	snprintf(buf, 18, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3],
		 mac[4], mac[5]);
	return buf;
}
