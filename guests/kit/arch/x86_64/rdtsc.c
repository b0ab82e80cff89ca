/*
 * arch/x86_64/rdtsc.c: the guest's time-stamp counter under the KVM
 * engine: the real `rdtsc` instruction (allowed at CPL3); the host writes
 * the vCPU's TSC frequency to lguest_data.tsc_khz (KVM_GET_TSC_KHZ).
 */
#include "kit.h"

u64 arch_rdtsc(void)
{
	u32 lo, hi;

	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((u64)hi << 32) | lo;
}
