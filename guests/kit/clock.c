/*
 * clock.c: cheap clocks from the guest's time-stamp counter (as 2.6.23's
 * guest read the TSC with lguest_data.tsc_khz): no hypercall per reading.
 *
 * lg_clock_ns() is monotonic nanoseconds (arch_rdtsc() ticks scaled by
 * tsc_khz); lg_realtime_ns() is the host's wall clock, taken once (one
 * timer round trip, at the first call) and advanced by lg_clock_ns().
 * A host that offers no counter (tsc_khz = 0) falls back to time_now(),
 * which costs a timer round trip per reading.
 */
#include "kit.h"

#define NSEC_PER_SEC 1000000000ull

static u64 ts_ns(struct lguest_timespec t)
{
	return (u64)t.tv_sec * NSEC_PER_SEC + t.tv_nsec;
}

u64 lg_clock_ns(void)
{
	static u64 last;
	u32 khz = READ_ONCE(lguest_data.tsc_khz);
	u64 ns;

	if (khz == 1000000u) {
		ns = arch_rdtsc();
	} else if (khz != 0) {
		u64 t = arch_rdtsc();

		/* t * 1e6 / khz without overflowing for centuries of ticks */
		ns = t / khz * 1000000ull + t % khz * 1000000ull / khz;
	} else {
		ns = ts_ns(time_now());
	}
	if (ns < last)                  /* a counter must never step back */
		ns = last;
	last = ns;
	return ns;
}

u64 lg_realtime_ns(void)
{
	static bool based;
	static u64 wall0, clock0;

	if (!based) {
		wall0 = ts_ns(time_now());
		clock0 = lg_clock_ns();
		based = true;
	}
	return wall0 + (lg_clock_ns() - clock0);
}
