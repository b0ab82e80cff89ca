/*
 * @guest: Test: the cheap clock (lg_clock_ns, lg_realtime_ns) and the rng device; prints what it measured.
 *
 * Prints, one per line:
 *   tsc_khz K
 *   readings N monotonic yes|no span NS
 *   sleep 20 ms: NS
 *   realtime S           (seconds since 1970)
 *   rng HEX              (32 random bytes) or "rng none"
 *   rng big N            (bytes of a 200 KiB read that were filled; all must be)
 * and powers off.
 */
#include "kit.h"

static u8 big[200 * 1024];

int main(void)
{
	u64 first, prev, now, t0, t1;
	bool mono = true;
	u8 buf[32];
	unsigned i, n = 100000;

	printf("tsc_khz %u\n", lguest_data.tsc_khz);
	first = prev = lg_clock_ns();
	for (i = 0; i < n; i++) {
		now = lg_clock_ns();
		if (now < prev)
			mono = false;
		prev = now;
	}
	printf("readings %u monotonic %s span %llu\n", n, mono ? "yes" : "no",
	       (unsigned long long)(prev - first));
	t0 = lg_clock_ns();
	sleep_ms(20);
	t1 = lg_clock_ns();
	printf("sleep 20 ms: %llu\n", (unsigned long long)(t1 - t0));
	printf("realtime %llu\n", (unsigned long long)(lg_realtime_ns() / 1000000000ull));
	if (rng_read(buf, sizeof(buf)) != (long)sizeof(buf)) {
		printf("rng none\n");
		return 0;
	}
	printf("rng ");
	for (i = 0; i < sizeof(buf); i++)
		printf("%02x", buf[i]);
	printf("\n");
	printf("rng big %ld\n", rng_read(big + 1, sizeof(big) - 1));
	return 0;
}
