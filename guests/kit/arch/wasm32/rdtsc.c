/*
 * arch/wasm32/rdtsc.c: the guest's time-stamp counter under the wasm
 * engine: the optional import env.rdtsc() -> i64, the host's monotonic
 * clock in nanoseconds (lguest_data.tsc_khz = 1000000). A plain import:
 * no hypercall, no HALT. Only images that read the clock import it.
 */
#include "kit.h"

__attribute__((import_module("env"), import_name("rdtsc"))) u64 wasm_rdtsc(void);

u64 arch_rdtsc(void)
{
	return wasm_rdtsc();
}
