/*
 * arch/wasm32/hcall.c: hypercalls and interrupt delivery for the wasm engine.
 *
 * A wasm guest cannot be interrupted, so the host hands over interrupts
 * at hypercall boundaries. Every hypercall returns either its EAX, or
 * LG_EVENT ("I have events for you"); then we call event() until it says
 * the hypercall is finished:
 *
 *   0..31         run the handler of that IRQ now. The host has already
 *                 cleared its pending bit and set irq_enabled = 0 (an
 *                 interrupt gate); afterwards we set irq_enabled = 0x200,
 *                 which is what iret would restore.
 *   LG_EV_WAIT    call wait(): the host suspends our whole stack (JSPI)
 *                 until it has something for us (HALT, a DMA to the
 *                 Launcher, the end of a time slice).
 *   bit 31 set    the hypercall is done; its EAX is the low 31 bits.
 */
#include "kit.h"

#define WASM_IMPORT(name) \
	__attribute__((import_module("env"), import_name(name)))

WASM_IMPORT("hcall") u32 wasm_hcall(u32 eax, u32 edx, u32 ebx, u32 ecx);
WASM_IMPORT("event") u32 wasm_event(void);
WASM_IMPORT("wait") void wasm_wait(void);

/* The event loop, entered when a hypercall returned LG_EVENT. */
static u32 run_events(void)
{
	for (;;) {
		u32 ev = wasm_event();

		if (ev & LG_EV_DONE)
			return ev & ~LG_EV_DONE;
		if (ev < LGUEST_IRQS) {
			lguest_do_irq(ev);
			irq_enable();            /* "iret" */
		} else if (ev == LG_EV_WAIT) {
			wasm_wait();
		} else {
			panic("wasm32: unknown event 0x%x from host", ev);
		}
	}
}

u32 hcall(u32 call, u32 arg1, u32 arg2, u32 arg3)
{
	u32 eax;

	barrier();                               /* memory is the argument */
	eax = wasm_hcall(call, arg1, arg2, arg3);
	if (eax == LG_EVENT)
		eax = run_events();
	barrier();
	return eax;
}
