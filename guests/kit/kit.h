/*
 * kit.h: the lguest guest kit API. A guest includes only this header.
 *
 * Boot order (lguest.c): read boot params -> LGUEST_INIT -> timer_init ->
 * bus_scan (drivers probe) -> main(). main's return value is the guest's
 * exit status: lg_exit(main()) (0 powers off).
 *
 * Interrupts arrive only at hypercall boundaries: the arch shim runs the
 * handler you registered before the hypercall returns. Handlers run with
 * interrupts off; they must not sleep or call getchar-style blocking reads.
 */
#ifndef LGUEST_KIT_H
#define LGUEST_KIT_H

#include "lguest.h"
#include "libc.h"

/* ---- Arch seam: implemented once per architecture under arch/<arch>/ ---- */

/* Make a hypercall; returns EAX (the call number, or BIND_DMA's 1/0). Any
 * interrupts the host delivers at this boundary run before it returns. */
u32 hcall(u32 call, u32 arg1, u32 arg2, u32 arg3);
/* The time-stamp counter: ticks at lguest_data.tsc_khz kHz (wasm32: the
 * optional import env.rdtsc, nanoseconds). Use lg_clock_ns() instead. */
u64 arch_rdtsc(void);
/* First free byte after the image (data + stack). */
uintptr_t arch_heap_start(void);
/* First byte of the loaded image (the lowest address the linker used). */
uintptr_t arch_image_start(void);

/* Guest-physical <-> pointer. Guest-physical address == linear address. */
static inline u32 lg_pa(const volatile void *p) { return (u32)(uintptr_t)p; }
static inline void *lg_va(u32 pa) { return (void *)(uintptr_t)pa; }

/* Compiler barrier: the host only looks at memory during a hypercall, so
 * ordering against the compiler is all the ordering we need. */
#define barrier() __atomic_signal_fence(__ATOMIC_SEQ_CST)
#define READ_ONCE(x) (*(const volatile __typeof__(x) *)&(x))
#define WRITE_ONCE(x, v) (*(volatile __typeof__(x) *)&(x) = (v))

/* ---- lguest.c: boot, interrupts, idle, power ----------------------------- */

extern struct lguest_data lguest_data;      /* shared with the host */
extern u32 lg_mem;                          /* RAM size = e820 size */
extern const char *lg_cmdline;              /* copy of the command line */

/* cmdline.c: split a command line into the user's words, undoing the
 * Launcher's quoting (docs/guest-abi.md §3). The words are copied into
 * buf (each NUL-terminated) and argv[0..argc) points at them; argv[argc]
 * is NULL when argc < max. Returns argc, or -1 if buf or argv is too
 * small. With buf of LG_COMMAND_LINE_SIZE bytes any command line fits. */
int cmdline_split(const char *line, char *buf, size_t bufsz, char **argv, int max);

typedef void (*irq_handler_t)(unsigned irq, void *arg);

/* Install handler for IRQ irq (0..31): loads the IDT entry for vector
 * 0x20+irq and unmasks the IRQ. Returns 0, or -1 for a bad irq. */
int irq_register(unsigned irq, irq_handler_t handler, void *arg);
void irq_mask(unsigned irq);                /* sets blocked_interrupts bit */
void irq_unmask(unsigned irq);
static inline void irq_disable(void) { WRITE_ONCE(lguest_data.irq_enabled, 0); }
static inline void irq_enable(void) { WRITE_ONCE(lguest_data.irq_enabled, X86_EFLAGS_IF); }
unsigned long irq_count(unsigned irq);      /* times IRQ irq has run */

/* Called by the arch shim for every interrupt the host delivers. */
void lguest_do_irq(unsigned irq);

/* HALT until an interrupt has been delivered; interrupts are on after. */
void halt(void);
/* Sleep (HALT) until ready(arg) is true. ready() is checked with interrupts
 * off, so a wake-up between the check and the HALT cannot be lost. A wait
 * with no bound: runs the idle hook (below) before it first halts. */
void idle_until(bool (*ready)(void *arg), void *arg);
/* The same for a wait whose caller armed the timer (IRQ 0) to end it
 * within wait_ns (its ready() also looks at the timer): the idle hook is
 * told the bound and never touches the timer. */
void idle_until_for(bool (*ready)(void *arg), void *arg, u64 wait_ns);
/* The same without the idle hook: a driver's wait in the middle of a
 * request (the block driver polling for its answer), when the caller of
 * that request may be half-way through a change. */
void idle_until_quiet(bool (*ready)(void *arg), void *arg);
#define IDLE_FOREVER (~(u64)0)
/* The idle hook (one; NULL = none): called as hook(wait_ns), with
 * interrupts on, when the guest is about to halt in idle_until (wait_ns =
 * IDLE_FOREVER) or idle_until_for (the bound), never from within itself.
 * It returns 0, or after how many ns it wants to run again if the wait
 * lasts: for a wait with no bound, idle_until arms the timer for that
 * (and cancels it when the wait ends). lgfs sets it while mounted, to
 * commit what is pending (fs.c). */
void idle_hook_set(u64 (*hook)(u64 wait_ns));

noreturn void power_off(void);              /* CRASH "Power down" */
/* End the guest with exit status status & 0xff (0 = power_off): the
 * launcher exits with it (README "Exit codes"; CRASH + LGUEST_CRASH_EXIT). */
noreturn void lg_exit(int status);
noreturn void panic(const char *fmt, ...) PRINTF_LIKE(1, 2);
noreturn void lguest_crash(const char *msg);/* CRASH with msg verbatim */

/* Copy the boot command line into lg_cmdline (idempotent). lguest_boot()
 * does it; the wasm entry does it before the constructors too, so that a
 * constructor (wasi-libc's eager environ, when a program names `environ`)
 * sees the command line. */
void lg_read_cmdline(void);
void lguest_boot(void);                     /* called by the arch entry,
                                               after the constructors */
int main(void);                             /* the guest's own code */

/* ---- dma.c: the two I/O hypercalls --------------------------------------- */

/* Describe buf[0..len) in dma, split at page boundaries (protocol §11:
 * sections <= 4096 bytes, never crossing a page). used_len = 0.
 * Returns 0, or -1 if it needs more than 16 sections. */
int dma_fill(struct lguest_dma *dma, const void *buf, size_t len);
/* SEND_DMA: sets used_len = 0 first, returns used_len afterwards. */
u32 send_dma(u32 key, struct lguest_dma *dma);
/* BIND_DMA num buffers on key with irq. Returns 0, or -1 if the host
 * refused (irq >= 32 or all 32 bindings in use). */
int bind_dma(u32 key, struct lguest_dma *dmas, unsigned num, unsigned irq);
void unbind_dma(u32 key, struct lguest_dma *dmas);

/* ---- bus.c: the lguest bus --------------------------------------------- */

struct lg_device {
	unsigned index;                          /* slot 0..15 */
	volatile struct lguest_device_desc *desc;/* in the descriptor page */
	unsigned irq;                            /* index + 1 */
	void *mem;                               /* pfn << 12, NULL if no pages */
	const struct lg_driver *driver;          /* NULL: no driver */
	void *priv;                              /* the driver's state */
};

struct lg_driver {
	const char *name;
	u16 type;                                /* LGUEST_DEVICE_T_* */
	int (*probe)(struct lg_device *dev);     /* 0 = ok */
};

/* Make a driver known to the bus. A driver's file says, at file scope,
 *   KIT_DRIVER(my_driver);
 * which registers it from a constructor; the arch entry runs constructors
 * before lguest_boot(). The kit is linked as an archive, so a driver is in
 * a guest only if the guest uses some function of the driver's file. */
void bus_register(const struct lg_driver *drv);
#define KIT_DRIVER(drv)                                                 \
	__attribute__((constructor)) static void drv##_register(void)  \
	{                                                               \
		bus_register(&(drv));                                   \
	}                                                               \
	_Static_assert(1, "KIT_DRIVER needs a semicolon")

void bus_scan(void);
struct lg_device *bus_device(unsigned index);   /* NULL for empty slots */
struct lg_device *bus_find(u16 type, unsigned nth);
const char *bus_type_name(u16 type);     /* from device_types.h */
u32 bus_desc_addr(void);                        /* = lg_mem */

/* ---- console.c ---------------------------------------------------------- */

/* Write n bytes, verbatim (no "\r\n" translation). Works from the first
 * hypercall on, before and without the console driver. */
void console_write(const char *s, size_t n);
/* Next input byte, or -1 if none is buffered right now. */
int console_trygetc(void);
/* Next input byte; halts while there is none. -1 at end of input (after
 * every buffered byte) or if there is no input (no console device, or its
 * probe failed). */
int console_getc(void);
/* Read up to n bytes: halts until at least one is there, then returns what
 * is buffered (1..n); 0 at end of input (after every buffered byte) or
 * without a console. */
long console_read(char *buf, size_t n);
/* True once the host has signalled end of input and every byte before it
 * has been read (docs/guest-abi.md §10). */
bool console_eof(void);
/* The console's feature bits (an extension, docs/guest-abi.md §10):
 * LGUEST_CONSOLE_F_IN_TTY / _OUT_TTY: the launcher's stdin / stdout is a
 * terminal; _IN_LINE: that terminal is in line mode and echoes typed lines
 * itself (echo nothing). 0 before the console's probe. */
u16 console_features(void);
bool console_has_input(void);

/* ---- timer.c ------------------------------------------------------------ */

void timer_init(void);                      /* IRQ 0, called at boot */
void timer_set(u32 ns);                     /* one-shot, 0 cancels */
/* Host wall-clock time, fresh (costs one 1 us timer round trip). */
struct lguest_timespec time_now(void);
/* The time as of the last interrupt delivery (the host writes it at every
 * delivery, of any IRQ): no hypercall. Fresh right after an interrupt. */
struct lguest_timespec time_last(void);
/* b - a in nanoseconds (0 if b is before a). */
u64 time_diff_ns(struct lguest_timespec a, struct lguest_timespec b);
/* Time since LGUEST_INIT. */
void uptime(u32 *sec, u32 *nsec);
/* Sleep ns / ms: an idle point (idle_until_for: the idle hook runs). */
void sleep_ns(u32 ns);
void sleep_ms(u32 ms);
/* Sleep ns without the idle hook (idle_until_quiet): for drivers. */
void sleep_ns_quiet(u32 ns);

/* ---- clock.c: cheap clocks (no hypercall per reading) -------------------- */

/* Monotonic nanoseconds from the time-stamp counter (arch_rdtsc() scaled
 * by lguest_data.tsc_khz); never steps back. Only a host without a counter
 * (tsc_khz = 0) makes it cost a timer round trip. */
u64 lg_clock_ns(void);
/* Host wall-clock time in ns since 1970: read once (one timer round trip,
 * at the first call), then advanced by lg_clock_ns(). */
u64 lg_realtime_ns(void);

/* ---- rng.c: the host random-number device (type 4, an extension) -------- */

/* Fill buf[0..n) with random bytes from the host. Returns n, or -1 if there
 * is no rng device (or it answered short before any byte). */
long rng_read(void *buf, size_t n);
bool rng_present(void);

/* ---- blk.c: the block driver ------------------------------------------------ */

#include "blk.h"

/* ---- net.c, ip.c, netcmd.c: the network driver and a tiny IPv4 stack ------ */

#include "net.h"
#include "ip.h"

#endif /* LGUEST_KIT_H */
