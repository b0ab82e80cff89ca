/*
 * timer.c: the clock (IRQ 0, SET_CLOCKEVENT) and the time of day.
 *
 * SET_CLOCKEVENT arms a one-shot host timer; when it expires the host
 * raises IRQ 0. The host writes lguest_data.time at LGUEST_INIT and each
 * time it delivers an interrupt, so the freshest time is the one seen right
 * after an interrupt: time_now() arms a 1 us timer and halts until IRQ 0.
 * Other devices' interrupts are still served meanwhile.
 */
#include "kit.h"

static volatile bool timer_fired;
static struct lguest_timespec boot_time;

static void timer_irq(unsigned irq, void *arg)
{
	(void)irq;
	(void)arg;
	timer_fired = true;
}

void timer_init(void)
{
	boot_time = lguest_data.time;       /* written by LGUEST_INIT */
	irq_register(LGUEST_TIMER_IRQ, timer_irq, NULL);
}

void timer_set(u32 ns)
{
	if (ns && ns < LG_CLOCK_MIN_DELTA)
		ns = LG_CLOCK_MIN_DELTA;
	hcall(LHCALL_SET_CLOCKEVENT, ns, 0, 0);
}

static bool fired(void *arg)
{
	(void)arg;
	return timer_fired;
}

void sleep_ns(u32 ns)
{
	timer_fired = false;
	timer_set(ns ? ns : LG_CLOCK_MIN_DELTA);
	idle_until_for(fired, NULL, ns);
}

void sleep_ns_quiet(u32 ns)
{
	timer_fired = false;
	timer_set(ns ? ns : LG_CLOCK_MIN_DELTA);
	idle_until_quiet(fired, NULL);
}

void sleep_ms(u32 ms)
{
	while (ms) {
		u32 chunk = ms > 1000 ? 1000 : ms;

		sleep_ns(chunk * 1000000u);
		ms -= chunk;
	}
}

struct lguest_timespec time_last(void)
{
	struct lguest_timespec t;

	t.tv_sec = READ_ONCE(lguest_data.time.tv_sec);
	t.tv_nsec = READ_ONCE(lguest_data.time.tv_nsec);
	return t;
}

struct lguest_timespec time_now(void)
{
	sleep_ns_quiet(1000);      /* a clock reading, not an idle point */
	return time_last();
}

u64 time_diff_ns(struct lguest_timespec a, struct lguest_timespec b)
{
	u64 ta = (u64)a.tv_sec * 1000000000u + a.tv_nsec;
	u64 tb = (u64)b.tv_sec * 1000000000u + b.tv_nsec;

	return tb > ta ? tb - ta : 0;
}

void uptime(u32 *sec, u32 *nsec)
{
	struct lguest_timespec now = time_now();
	u32 s = now.tv_sec - boot_time.tv_sec;
	u32 ns = now.tv_nsec;

	if (ns < boot_time.tv_nsec) {       /* borrow a second */
		ns += 1000000000u;
		s--;
	}
	ns -= boot_time.tv_nsec;
	if ((int32_t)s < 0) {               /* host clock stepped back */
		s = 0;
		ns = 0;
	}
	*sec = s;
	*nsec = ns;
}
