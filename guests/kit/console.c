/*
 * console.c: the console driver, "lguestcons" (protocol §10.2).
 *
 * Output: SEND_DMA to key 0, bytes exactly as given ("\n" stays "\n"; the
 * host's terminal does the newline translation). It needs no setup, so it
 * works from the first hypercall, before and without the driver.
 *
 * Input: one 256-byte buffer bound on key 0 with the console's IRQ. When
 * the IRQ fires, used_len bytes are waiting: we move them into a ring and
 * hand the buffer straight back (used_len = 0) so the host can deliver the
 * next chunk. If the ring is full we keep the rest in the buffer and hand
 * it back once readers have made room.
 *
 * End of input: the host delivers one last DMA with used_len 0 (as
 * 2.6.23's Launcher did). We take bytes from the buffer only after its IRQ
 * has run, so every IRQ that finds the buffer free is that EOF delivery;
 * then readers get the buffered bytes and after them EOF (console_read()
 * returns 0, console_getc() -1, console_eof() true).
 */
#include "kit.h"

#define CONSOLE_IN_SIZE 256
#define RING_SIZE 16384                 /* power of two */

static struct lguest_dma in_dma;
static char in_buf[CONSOLE_IN_SIZE];
static u32 in_off;                      /* bytes of in_buf already taken */
static bool in_bound;
static bool in_irq_seen;                /* the IRQ of the chunk in in_buf ran */
static bool in_eof;                     /* the host said: end of input */
static u16 features;                    /* LGUEST_CONSOLE_F_* from the descriptor */

static char ring[RING_SIZE];
static u32 ring_head, ring_tail;        /* free-running; head - tail = used */

/* ---- Output -------------------------------------------------------------- */

void console_write(const char *s, size_t n)
{
	struct lguest_dma dma;

	while (n) {
		/* A u16 length per section, 16 sections: stay well below. */
		size_t chunk = n < 32768 ? n : 32768;

		dma_fill(&dma, s, chunk);   /* <= 9 page-sized sections */
		send_dma(LGUEST_CONSOLE_DMA_KEY, &dma);
		s += chunk;
		n -= chunk;
	}
}

/* ---- Input --------------------------------------------------------------- */

/* Move bytes from the DMA buffer to the ring; give the buffer back once it
 * is empty. Called from the IRQ handler and from readers. */
static void console_pull(void)
{
	u32 used = READ_ONCE(in_dma.used_len);

	if (!in_irq_seen)                   /* its IRQ first: see the top */
		return;
	if (used > CONSOLE_IN_SIZE)         /* never trust the other side */
		used = CONSOLE_IN_SIZE;
	while (in_off < used && ring_head - ring_tail < RING_SIZE)
		ring[ring_head++ % RING_SIZE] = in_buf[in_off++];
	if (in_off >= used) {
		in_off = 0;
		in_irq_seen = false;
		barrier();
		WRITE_ONCE(in_dma.used_len, 0);  /* hand the buffer back */
	}
}

static void console_irq(unsigned irq, void *arg)
{
	(void)irq;
	(void)arg;
	if (in_irq_seen)                    /* not ours: no delivery is pending */
		return;
	if (READ_ONCE(in_dma.used_len) == 0) {
		in_eof = true;              /* the one delivery of nothing */
		return;
	}
	in_irq_seen = true;
	console_pull();
}

bool console_eof(void)
{
	return in_eof && !console_has_input();
}

bool console_has_input(void)
{
	console_pull();
	return ring_head != ring_tail;
}

int console_trygetc(void)
{
	if (!console_has_input())
		return -1;
	return (unsigned char)ring[ring_tail++ % RING_SIZE];
}

static bool input_ready(void *arg)
{
	(void)arg;
	return console_has_input() || in_eof;
}

int console_getc(void)
{
	if (!in_bound)
		return -1;
	idle_until(input_ready, NULL);
	return console_trygetc();
}

long console_read(char *buf, size_t n)
{
	size_t got = 0;

	if (!in_bound || n == 0)
		return 0;
	idle_until(input_ready, NULL);
	while (got < n && console_has_input())
		buf[got++] = (char)ring[ring_tail++ % RING_SIZE];
	return (long)got;
}

static int console_probe(struct lg_device *dev)
{
	if (in_bound)                       /* only the first console is ours */
		return -1;
	if (irq_register(dev->irq, console_irq, NULL))
		return -1;
	memset(&in_dma, 0, sizeof(in_dma));
	in_dma.addr[0] = lg_pa(in_buf);
	in_dma.len[0] = CONSOLE_IN_SIZE;
	barrier();
	in_dma.used_len = 0;                /* free: set last */
	if (bind_dma(LGUEST_CONSOLE_DMA_KEY, &in_dma, 1, dev->irq)) {
		irq_mask(dev->irq);
		return -1;
	}
	in_bound = true;
	dev->priv = &in_dma;
	features = READ_ONCE(dev->desc->features);
	return 0;
}

u16 console_features(void)
{
	return features;
}

static const struct lg_driver console_driver = {
	.name = "lguestcons",
	.type = LGUEST_DEVICE_T_CONSOLE,
	.probe = console_probe,
};
KIT_DRIVER(console_driver);
