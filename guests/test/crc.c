/*
 * @guest: Benchmark: CRC-32 (zlib) over mb=N MiB of its own RAM (default 64), timed with lg_clock_ns(); prints "crc: N MiB in T ms, crc32 X".
 *
 * The CPU-bound case of docs/performance.md: no hypercalls while it
 * computes, so it shows what each engine costs for plain code (the KVM
 * engine runs it as native x86-64; the wasm engine through V8). The
 * buffer is filled with a fixed pattern first (outside the timing), so
 * bench/crc_native.c can check the same CRC.
 */
#include "kit.h"

#include "crc_common.h"

int main(void)
{
	char v[16];
	u32 mb = 64;
	u64 t0, t1;
	u8 *buf;
	u32 crc;
	size_t n;

	if (ip_cmdline_arg(lg_cmdline, "mb", v, sizeof(v)))
		mb = (u32)strtoul(v, NULL, 0);
	n = (size_t)mb << 20;
	buf = (u8 *)((arch_heap_start() + 4095) & ~(uintptr_t)4095);
	if ((uintptr_t)buf + n > lg_mem)
		panic("crc: %u MiB do not fit in RAM", mb);
	crc_fill(buf, n);
	crc_init();
	t0 = lg_clock_ns();
	crc = crc_update(0, buf, n);
	t1 = lg_clock_ns();
	printf("crc: %u MiB in %llu.%03llu ms, crc32 %08x\n", mb,
	       (unsigned long long)((t1 - t0) / 1000000),
	       (unsigned long long)((t1 - t0) / 1000 % 1000), crc);
	return 0;
}
