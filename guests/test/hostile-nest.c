/*
 * @guest: Hostile: drives the engine's event protocol by hand, taking interrupts inside interrupts without ever finishing a hypercall (secs=N).
 *
 * The wasm event protocol (docs/guest-abi.md §4) says: a hypercall that
 * returns LG_EVENT is finished by calling event() until it says "done";
 * an IRQ number it returns is a handler to run, after which event() is
 * called again. This guest calls the imports itself and never finishes
 * anything: it arms the timer, HALTs (LG_EVENT), calls event() (and
 * wait()) until it is handed the timer IRQ, turns interrupts back on and
 * starts over from inside that "handler" — an interrupt nested in an
 * interrupt, over and over, without a single wasm frame of recursion.
 * Every level is state the host keeps for the guest (the EAX to restore
 * at "iret"). It prints "nest: nesting" and, if it is still alive after
 * SECS seconds (default 5), "nest: N levels and still alive" and goes on
 * forever. The host must bound this state (and kill the guest) rather
 * than grow without limit.
 */
#include "kit.h"

#ifdef __wasm__
#define WASM_IMPORT(name) __attribute__((import_module("env"), import_name(name)))

WASM_IMPORT("hcall") u32 raw_hcall(u32 eax, u32 edx, u32 ebx, u32 ecx);
WASM_IMPORT("event") u32 raw_event(void);
WASM_IMPORT("wait") void raw_wait(void);

/* HALT, then the first event that is not "wait". */
static u32 halt_event(void)
{
	u32 ev;

	if (raw_hcall(LHCALL_HALT, 0, 0, 0) != LG_EVENT)
		return LG_EV_DONE;
	while ((ev = raw_event()) == LG_EV_WAIT)
		raw_wait();
	return ev;
}
#else
/* x86-64 (KVM engine): the `out` returns the first event itself. */
static u32 raw_hcall(u32 eax, u32 edx, u32 ebx, u32 ecx)
{
	__asm__ volatile("outl %%eax, $0xF0" : "+a"(eax) : "d"(edx), "b"(ebx), "c"(ecx) : "memory");
	return eax;
}

static u32 halt_event(void)
{
	return raw_hcall(LHCALL_HALT, 0, 0, 0);
}
#endif

int main(void)
{
	u32 secs = ip_cmdline_u32(lg_cmdline, "secs", 5), levels = 0;
	struct lguest_timespec start = time_now();
	bool told = false;

	printf("nest: nesting\n");
	for (;;) {
		u32 ev;

		raw_hcall(LHCALL_SET_CLOCKEVENT, 1000, 0, 0);
		ev = halt_event();
		if (ev & LG_EV_DONE)
			continue;               /* finished after all: nothing nested */
		levels++;                       /* inside IRQ ev's "handler" now */
		WRITE_ONCE(lguest_data.irq_enabled, X86_EFLAGS_IF);
		if (!told && levels % 64 == 0 &&
		    time_diff_ns(start, time_last()) > (u64)secs * 1000000000ull) {
			told = true;
			printf("nest: %u levels and still alive\n", levels);
		}
	}
}
