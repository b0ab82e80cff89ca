/*
 * rng.c: the host random-number device (an extension, type 4; see
 * docs/guest-abi.md §17). One page, whose address is the key: SEND_DMA an
 * lguest_dma describing the buffer and the Launcher fills it with random
 * bytes inside the hypercall (used_len = bytes filled).
 */
#include "kit.h"
#include "device_types.h"

static u32 rng_key;                     /* 0: no device (or probe failed) */

static int rng_probe(struct lg_device *dev)
{
	if (!dev->mem || rng_key)
		return -1;
	rng_key = lg_pa(dev->mem);
	return 0;
}

static const struct lg_driver rng_driver = {
	.name = "lguestrng",
	.type = LGUEST_DEVICE_T_RNG,
	.probe = rng_probe,
};
KIT_DRIVER(rng_driver);

bool rng_present(void)
{
	return rng_key != 0;
}

long rng_read(void *buf, size_t n)
{
	struct lguest_dma dma;
	u8 *p = buf;
	size_t done = 0;

	if (!rng_key)
		return -1;
	while (done < n) {
		/* 15 pages always fit in 16 page-split sections */
		size_t chunk = n - done;
		u32 got;

		if (chunk > 15 * LGUEST_PAGE_SIZE)
			chunk = 15 * LGUEST_PAGE_SIZE;
		if (dma_fill(&dma, p + done, chunk))
			return -1;
		got = send_dma(rng_key, &dma);
		if (got != chunk)
			return done ? (long)done : -1;
		done += chunk;
	}
	return (long)done;
}
