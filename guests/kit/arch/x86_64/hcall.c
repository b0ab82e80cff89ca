/*
 * arch/x86_64/hcall.c: hypercalls and interrupt delivery for the KVM engine.
 *
 * A hypercall is `outl %eax, $0xF0` with the lguest registers: EAX = call
 * number, EDX, EBX, ECX = arguments. The host's answer comes back in EAX,
 * and it is the wasm engine's event protocol folded into one instruction:
 *
 *   bit 31 set    the hypercall is done; its EAX is the low 31 bits.
 *   0..31         run the handler of that IRQ now (the host has cleared its
 *                 pending bit and set irq_enabled = 0), set irq_enabled =
 *                 0x200 (what iret would restore), then ask for the next
 *                 event: the same `out` with EAX = LG_EVENT.
 *
 * Waiting (HALT, a DMA for the Launcher, the end of a time slice) happens
 * inside the `out`: the host simply does not resume us until it is over.
 */
#include "kit.h"

#define LG_HCALL_PORT "0xF0"

static inline u32 x86_hcall(u32 eax, u32 edx, u32 ebx, u32 ecx)
{
	__asm__ volatile("outl %%eax, $" LG_HCALL_PORT
			 : "+a"(eax)
			 : "d"(edx), "b"(ebx), "c"(ecx)
			 : "memory");
	return eax;
}

u32 hcall(u32 call, u32 arg1, u32 arg2, u32 arg3)
{
	u32 v = x86_hcall(call, arg1, arg2, arg3);

	while (!(v & LG_EV_DONE)) {
		if (v >= LGUEST_IRQS)
			panic("x86_64: unknown event 0x%x from host", v);
		lguest_do_irq(v);
		irq_enable();                    /* "iret" */
		v = x86_hcall(LG_EVENT, 0, 0, 0);
	}
	return v & ~LG_EV_DONE;
}
