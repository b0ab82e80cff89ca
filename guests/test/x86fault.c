/*
 * @guest: Hostile (x86-64, KVM engine): does one forbidden thing, do=hlt|cli-hlt|port|in|pt|ptread|wild|exec|cr3|wrmsr|lidt|int|int3|ud2|syscall|fakesys|swapgs|vmcall|sysretq|spin|pause-spin; under wasm it says it needs x86-64.
 *
 * Each case must kill only this guest, with one line naming the fault
 * and rip (engines/kvm.ts), while its neighbours and the launcher go on:
 *   hlt, cli-hlt   privileged instruction (hlt at CPL3; with IOPL 3 cli
 *                  would be allowed and the hlt after it fault, but PVM
 *                  faults cli and sti themselves: either is named)
 *   port, in       out/in on an I/O port that is not the hypercall port
 *   pt, ptread     write/read the host's page tables (at 4 GiB: not
 *                  mapped for the guest at all)
 *   wild           store far outside RAM (2 GiB)
 *   exec           jump to an address outside RAM
 *   cr3, wrmsr, lidt  privileged instructions
 *   int, int3      software interrupts (the IDT's gates are ring 0)
 *   ud2            invalid opcode
 *   syscall        a fault too (PVM jumps to MSR_LSTAR whatever EFER.SCE
 *                  says: the host points it at a stub that reports it)
 *   fakesys        jump to where syscall lands (the host's stub at
 *                  0x10000b108) with RCX = 0: a page fault, not a syscall
 *   swapgs, vmcall privileged, named by their full encoding (0f 01 c1/f8)
 *   sysretq        privileged, named past its REX prefix (48 0f 07)
 *   spin, pause-spin  loop forever without hypercalls (preempted; ended
 *                  by --timeout or a signal)
 */
#include "kit.h"

#ifdef __x86_64__
static void do_fault(const char *what)
{
	if (!strcmp(what, "hlt"))
		__asm__ volatile("hlt");
	else if (!strcmp(what, "cli-hlt"))
		__asm__ volatile("cli; hlt");
	else if (!strcmp(what, "port"))
		__asm__ volatile("outb %%al, $0x80" : : "a"(0));
	else if (!strcmp(what, "in")) {
		u8 v;
		__asm__ volatile("inb $0x60, %%al" : "=a"(v));
		printf("x86fault: read %u\n", v);
	} else if (!strcmp(what, "pt"))
		*(volatile u64 *)0x100000000ull = 0;
	else if (!strcmp(what, "ptread"))
		printf("x86fault: read %llx\n", (unsigned long long)*(volatile u64 *)0x100000000ull);
	else if (!strcmp(what, "wild"))
		*(volatile u32 *)0x80000000ull = 1;
	else if (!strcmp(what, "exec"))
		((void (*)(void))0x90000000ull)();
	else if (!strcmp(what, "cr3")) {
		u64 v;
		__asm__ volatile("mov %%cr3, %0" : "=r"(v));
		printf("x86fault: cr3 %llx\n", (unsigned long long)v);
	} else if (!strcmp(what, "wrmsr"))
		__asm__ volatile("wrmsr" : : "c"(0xC0000080u), "a"(0), "d"(0));
	else if (!strcmp(what, "lidt")) {
		static const u8 zero[10];
		__asm__ volatile("lidt %0" : : "m"(zero));
	} else if (!strcmp(what, "int"))
		__asm__ volatile("int $0x80");
	else if (!strcmp(what, "int3"))
		__asm__ volatile("int3");
	else if (!strcmp(what, "ud2"))
		__asm__ volatile("ud2");
	else if (!strcmp(what, "syscall"))
		__asm__ volatile("syscall" : : : "rcx", "r11", "memory");
	else if (!strcmp(what, "fakesys"))
		__asm__ volatile("jmp *%0" : : "r"(0x10000b108ull), "c"(0));
	else if (!strcmp(what, "swapgs"))
		__asm__ volatile("swapgs");
	else if (!strcmp(what, "vmcall"))
		__asm__ volatile("vmcall");
	else if (!strcmp(what, "sysretq"))
		__asm__ volatile("sysretq");
	else if (!strcmp(what, "spin"))
		for (;;)
			__asm__ volatile("" : : : "memory");
	else if (!strcmp(what, "pause-spin"))
		for (;;)
			__asm__ volatile("pause");
}
#endif

int main(void)
{
	char what[16] = "";

	ip_cmdline_arg(lg_cmdline, "do", what, sizeof(what));
	printf("x86fault: %s\n", what);
#ifdef __x86_64__
	do_fault(what);
	panic("x86fault: '%s' did nothing", what);
#else
	panic("x86fault: needs the x86-64 (KVM) engine");
#endif
}
