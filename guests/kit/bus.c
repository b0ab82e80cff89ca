/*
 * bus.c: the lguest bus (protocol §10.1).
 *
 * The Launcher puts 16 device descriptors in the page just above RAM (at
 * guest-physical address `mem`). Every slot with type != 0 is a device; its
 * IRQ is index + 1. The status handshake is all ours: ACKNOWLEDGE when we
 * see it, DRIVER when a driver claims it, DRIVER_OK when the probe works.
 *
 * Drivers register themselves (KIT_DRIVER in kit.h) from constructors the
 * arch entry runs before boot, so the bus knows no driver by name: a new
 * driver is one new file. The kit is linked as an archive, so a driver is
 * in a guest only if the guest uses its file (guests/build.ts).
 */
#include "kit.h"
#include "device_types.h"

#define MAX_DRIVERS 16

static const struct lg_driver *drivers[MAX_DRIVERS];
static unsigned num_drivers;

static struct lg_device devices[LGUEST_MAX_DEVICES];

void bus_register(const struct lg_driver *drv)
{
	if (num_drivers >= MAX_DRIVERS)
		panic("bus: more than %d drivers", MAX_DRIVERS);
	drivers[num_drivers++] = drv;
}

u32 bus_desc_addr(void)
{
	return lg_mem;
}

static const struct lg_driver *driver_for(u16 type)
{
	for (unsigned i = 0; i < num_drivers; i++)
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
#define TYPE_NAME(num, id, name) \
	if (type == (num))       \
		return name;
	LGUEST_DEVICE_TYPES(TYPE_NAME)
#undef TYPE_NAME
	return "unknown";
}
