/*
 * arch/x86_64/entry.c: the entry point and the image bounds for the KVM
 * engine (docs/guest-abi.md "x86-64 images").
 *
 * The host loads the ELF image at its addresses (1 MiB up) and starts the
 * vCPU at _start in 64-bit mode, CPL3, IOPL 3, interrupts off, every
 * register but RIP and RFLAGS zero. _start loads the boot stack (in .bss),
 * runs the constructors and calls lguest_boot(). The guest ends with CRASH; the host never
 * resumes it afterwards.
 */
#include "kit.h"

#define BOOT_STACK 65536

extern char __image_start[];    /* image.ld: first byte of the image */
extern char __image_end[];      /* image.ld: end of .bss (stack included) */
/* image.ld: the constructors (the kit's drivers register there). */
typedef void (*lg_ctor_t)(void);
extern const lg_ctor_t __init_array_start[], __init_array_end[];

/* The boot stack; used by _start below. */
__attribute__((aligned(16))) char lg_boot_stack[BOOT_STACK];

uintptr_t arch_heap_start(void)
{
	return (uintptr_t)__image_end;
}

uintptr_t arch_image_start(void)
{
	return (uintptr_t)__image_start;
}

void lg_x86_start(void);

void lg_x86_start(void)
{
	for (const lg_ctor_t *c = __init_array_start; c < __init_array_end; c++)
		(*c)();
	lguest_boot();
	panic("lguest_boot returned");   /* not reached */
}

__asm__(".section .text.entry, \"ax\"\n"
	".globl _start\n"
	"_start:\n"
	"	lea lg_boot_stack+65536(%rip), %rsp\n"
	"	call lg_x86_start\n"
	"	ud2\n"
	".previous\n");
