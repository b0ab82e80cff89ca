/*
 * bus.c: the lguest bus (protocol §10.1).
 *
 * The Launcher puts 16 device descriptors in the page just above RAM (at
 * guest-physical address `mem`). Every slot with type != 0 is a device; its
 * IRQ is index + 1. The status handshake is all ours: ACKNOWLEDGE when we
 * see it, DRIVER when a driver claims it, DRIVER_OK when the probe works.
 *
 * To add a driver: define a `const struct lg_driver` in its own file and
 * list it in drivers[] below.
 */
#include "kit.h"

extern const struct lg_driver console_driver;
extern const struct lg_driver blk_driver;
extern const struct lg_driver net_driver;

static const struct lg_driver *const drivers[] = {
	&console_driver,
	&blk_driver,
	&net_driver,
};

static struct lg_device devices[LGUEST_MAX_DEVICES];

u32 bus_desc_addr(void)
{
	return lg_mem;
}

static const struct lg_driver *driver_for(u16 type)
{
	for (unsigned i = 0; i < ARRAY_SIZE(drivers); i++)
		if (drivers[i]->type == type)
			return drivers[i];
	return NULL;
}

void bus_scan(void)
{
	volatile struct lguest_device_desc *descs = lg_va(bus_desc_addr());

	for (unsigned i = 0; i < LGUEST_MAX_DEVICES; i++) {
		volatile struct lguest_device_desc *d = &descs[i];
		struct lg_device *dev = &devices[i];
		const struct lg_driver *drv;

		if (d->type == 0)
			continue;
		dev->index = i;
		dev->desc = d;
		dev->irq = i + 1;
		dev->mem = d->num_pages ? lg_va(d->pfn << 12) : NULL;
		d->status |= LGUEST_DEVICE_S_ACKNOWLEDGE;

		drv = driver_for(d->type);
		if (!drv)
			continue;
		dev->driver = drv;
		d->status |= LGUEST_DEVICE_S_DRIVER;
		if (drv->probe(dev) == 0)
			d->status |= LGUEST_DEVICE_S_DRIVER_OK;
	}
}

struct lg_device *bus_device(unsigned index)
{
	if (index >= LGUEST_MAX_DEVICES || !devices[index].desc)
		return NULL;
	return &devices[index];
}

struct lg_device *bus_find(u16 type, unsigned nth)
{
	for (unsigned i = 0; i < LGUEST_MAX_DEVICES; i++)
		if (devices[i].desc && devices[i].desc->type == type && nth-- == 0)
			return &devices[i];
	return NULL;
}

const char *bus_type_name(u16 type)
{
	switch (type) {
	case LGUEST_DEVICE_T_CONSOLE:
		return "console";
	case LGUEST_DEVICE_T_NET:
		return "net";
	case LGUEST_DEVICE_T_BLOCK:
		return "block";
	default:
		return "unknown";
	}
}
