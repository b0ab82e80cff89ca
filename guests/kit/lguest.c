/*
 * lguest.c: boot, interrupts, idle and power for an lguest guest.
 *
 * Guest:001 Boot. The Launcher left us the Linux boot parameters in page 0:
 * the e820 map (one entry: RAM [0, mem)) and a pointer to the command line.
 * We copy what we need, then make the first hypercall, LGUEST_INIT, which
 * tells the host where our lguest_data lives. From then on the host and we
 * share that structure: it holds the interrupt flag, the interrupt mask and
 * the wall clock.
 */
#include "kit.h"

/* The shared page (protocol §2.5). The timer (bit 0) stays blocked until
 * timer_init(); no async hypercalls are queued (all status bytes 0xFF). */
struct lguest_data lguest_data = {
	.irq_enabled = X86_EFLAGS_IF,
	.blocked_interrupts = { 1 },
	.hcall_status = { [0 ... LHCALL_RING_SIZE - 1] = 0xFF },
};

u32 lg_mem;
static char cmdline[LG_COMMAND_LINE_SIZE];
const char *lg_cmdline = cmdline;

struct irq_slot {
	irq_handler_t handler;
	void *arg;
	unsigned long count;
};
static struct irq_slot irqs[LGUEST_IRQS];

/* ---- Boot parameters ----------------------------------------------------- */

static u32 boot_u32(u32 offset)
{
	return READ_ONCE(*(u32 *)lg_va(offset));
}

/* RAM size: the first e820 entry that is RAM and starts at 0. 0 if none. */
static u32 read_mem_size(void)
{
	unsigned n = READ_ONCE(*(u8 *)lg_va(LG_BOOT_E820_NR));

	for (unsigned i = 0; i < n && i < 128; i++) {
		const struct e820_entry *e =
			lg_va(LG_BOOT_E820_MAP + i * sizeof(struct e820_entry));

		if (e->type == E820_RAM && e->addr_lo == 0 && e->addr_hi == 0)
			return e->size_hi ? 0xFFFFF000u : e->size_lo;
	}
	return 0;
}

void lg_read_cmdline(void)
{
	u32 ptr = boot_u32(LG_BOOT_CMDLINE_PTR);
	const char *src = lg_va(ptr);

	if (!ptr)
		return;
	for (unsigned i = 0; i < sizeof(cmdline) - 1 && src[i]; i++)
		cmdline[i] = src[i];
}

void lguest_boot(void)
{
	int rc;

	lg_mem = read_mem_size();
	lg_read_cmdline();
	hcall(LHCALL_LGUEST_INIT, lg_pa(&lguest_data), 0, 0);

	if (lg_mem == 0)
		panic("no RAM entry in the e820 map");
	if (arch_heap_start() > lg_mem)
		panic("image ends at 0x%lx, above RAM (0x%x)",
		      (unsigned long)arch_heap_start(), lg_mem);

	timer_init();
	bus_scan();

	rc = main();
	lg_exit(rc);
}

/* ---- Interrupts ---------------------------------------------------------- */

int irq_register(unsigned irq, irq_handler_t handler, void *arg)
{
	if (irq >= LGUEST_IRQS || !handler)
		return -1;
	irqs[irq].handler = handler;
	irqs[irq].arg = arg;
	/* An IDT entry: i386 gate layout, but the host only checks the high
	 * word (present, type 0xE); the low word carries our IRQ number. */
	hcall(LHCALL_LOAD_IDT_ENTRY, FIRST_EXTERNAL_VECTOR + irq,
	      (LG_KERNEL_CS << 16) | irq, LG_IDT_INTERRUPT_GATE);
	irq_unmask(irq);
	return 0;
}

void irq_mask(unsigned irq)
{
	if (irq < LGUEST_IRQS)
		WRITE_ONCE(lguest_data.blocked_interrupts[0],
			   lguest_data.blocked_interrupts[0] | (1u << irq));
}

/* Like 2.6.23, unmasking does not tell the host: anything pending is
 * delivered at our next hypercall. */
void irq_unmask(unsigned irq)
{
	if (irq < LGUEST_IRQS)
		WRITE_ONCE(lguest_data.blocked_interrupts[0],
			   lguest_data.blocked_interrupts[0] & ~(1u << irq));
}

unsigned long irq_count(unsigned irq)
{
	return irq < LGUEST_IRQS ? irqs[irq].count : 0;
}

void lguest_do_irq(unsigned irq)
{
	struct irq_slot *s = &irqs[irq % LGUEST_IRQS];

	s->count++;
	if (s->handler)
		s->handler(irq, s->arg);
}

/* ---- Idle ---------------------------------------------------------------- */

void halt(void)
{
	hcall(LHCALL_HALT, 0, 0, 0);
	/* The host turns interrupts back on when it wakes us; make sure. */
	irq_enable();
}

static u64 (*idle_hook)(u64 wait_ns);
static bool in_idle_hook;

void idle_hook_set(u64 (*hook)(u64 wait_ns))
{
	idle_hook = hook;
}

static u64 run_idle_hook(u64 wait_ns)
{
	u64 again;

	in_idle_hook = true;
	again = idle_hook(wait_ns);
	in_idle_hook = false;
	return again;
}

/* The hook runs once, with interrupts on, before the first HALT of a wait
 * (not at all if ready() is already true). For a wait with no bound, a
 * hook that asks to run again in `again` ns gets the timer (IRQ 0) armed
 * for it, runs when it fires, and the timer is cancelled at the end; a
 * bounded wait's caller owns the timer, so its hook runs only at the
 * start. Never inside the hook itself (its own I/O waits). */
static void idle(bool (*ready)(void *arg), void *arg, u64 wait_ns, bool hook)
{
	bool armed = false;
	unsigned long ticks = 0;
	u64 again;

	hook = hook && idle_hook && !in_idle_hook;
	for (;;) {
		irq_disable();
		if (ready(arg))
			break;
		if (hook || (armed && irq_count(LGUEST_TIMER_IRQ) != ticks)) {
			irq_enable();
			hook = armed = false;
			again = run_idle_hook(wait_ns);
			if (again && wait_ns == IDLE_FOREVER) {
				ticks = irq_count(LGUEST_TIMER_IRQ);
				timer_set(again > 1000000000u ? 1000000000u : (u32)again);
				armed = true;
			}
			continue;
		}
		halt();
	}
	irq_enable();
	if (armed)
		timer_set(0);
}

void idle_until(bool (*ready)(void *arg), void *arg)
{
	idle(ready, arg, IDLE_FOREVER, true);
}

void idle_until_for(bool (*ready)(void *arg), void *arg, u64 wait_ns)
{
	idle(ready, arg, wait_ns, true);
}

void idle_until_quiet(bool (*ready)(void *arg), void *arg)
{
	idle(ready, arg, 0, false);
}

/* ---- Death --------------------------------------------------------------- */

/* The host reads 128 bytes at the message address, so the message must
 * live in a buffer at least that long: copy it into one. */
noreturn void lguest_crash(const char *msg)
{
	static char buf[128];
	static bool crashing;

	if (crashing)          /* a crash that returned, or failed: give up */
		__builtin_trap();
	crashing = true;
	strlcpy(buf, msg, sizeof(buf));
	hcall(LHCALL_CRASH, lg_pa(buf), 0, 0);
	__builtin_trap();      /* the host never returns from CRASH */
}

noreturn void power_off(void)
{
	lguest_crash("Power down");
}

/* Extension (docs/guest-abi.md §11): CRASH with ebx = LGUEST_CRASH_EXIT
 * and ecx = status. Status 0 is the ordinary power off. */
noreturn void lg_exit(int status)
{
	static char buf[128];

	if ((status & 0xff) == 0)
		power_off();
	snprintf(buf, sizeof(buf), "exit %d", status & 0xff);
	hcall(LHCALL_CRASH, lg_pa(buf), LGUEST_CRASH_EXIT, (u32)status);
	__builtin_trap();
}

noreturn void panic(const char *fmt, ...)
{
	char msg[128];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	lguest_crash(msg);
}
