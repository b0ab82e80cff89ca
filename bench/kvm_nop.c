/*
 * bench/kvm_nop.c: the reference of `hypercall.nop.kvm`. The same guest
 * bytes as bench/kvm.ts (xor eax,eax; out 0xF0,eax; jmp back) in the same
 * machine state as engines/kvm.ts sets up (64-bit, CPL3, identity-mapped
 * RAM, page tables and a TSS with an all-open I/O bitmap in a memslot at
 * 4 GiB), run with the same KVM calls per hypercall: KVM_RUN, EAX from
 * the sync regs, EAX = LG_EV_DONE | 0 written back through the sync regs.
 * Built by the benchmark with the system compiler. Prints calls/s.
 *
 *   kvm_nop [CALLS]
 */
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>

#define SYS 0x100000000ull
#define SYS_SIZE 0x14000
#define RAM (2u << 20)

static void *map(size_t n)
{
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	return p;
}

static void seg(struct kvm_segment *s, uint16_t sel, uint8_t type, int l)
{
	memset(s, 0, sizeof(*s));
	s->limit = 0xffffffff;
	s->selector = sel;
	s->type = type;
	s->present = 1;
	s->dpl = 3;
	s->db = !l;
	s->s = 1;
	s->l = l;
	s->g = 1;
}

int main(int argc, char **argv)
{
	long calls = argc > 1 ? atol(argv[1]) : 200000;
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	int vm = ioctl(kvm, KVM_CREATE_VM, 0);
	uint8_t *ram = map(RAM), *sysb = map(SYS_SIZE);
	uint64_t *q = (uint64_t *)sysb;
	struct kvm_userspace_memory_region r0 = { 0, 0, 0, RAM, (uint64_t)ram };
	struct kvm_userspace_memory_region r1 = { 1, 0, SYS, SYS_SIZE, (uint64_t)sysb };
	static const uint8_t code[] = { 0x31, 0xc0, 0xe7, 0xf0, 0xeb, 0xfa };
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	struct kvm_run *run;
	struct timespec a, b;
	int vcpu;

	if (kvm < 0 || vm < 0) {
		perror("kvm");
		return 1;
	}
	ioctl(vm, KVM_SET_USER_MEMORY_REGION, &r0);
	ioctl(vm, KVM_SET_USER_MEMORY_REGION, &r1);
	memcpy(ram + 0x100000, code, sizeof(code));
	/* PML4 -> PDPT -> PD (one 2 MiB user page at 0); PDPT[4] -> PD -> PT (the system area). */
	q[0] = SYS + 0x1000 + 0x27;
	q[0x1000 / 8] = SYS + 0x2000 + 0x27;
	q[0x2000 / 8] = 0xe7;
	q[0x1000 / 8 + 4] = SYS + 0x7000 + 0x23;
	q[0x7000 / 8] = SYS + 0x8000 + 0x23;
	for (int p = 0; p < SYS_SIZE / 4096; p++)
		q[0x8000 / 8 + p] = SYS + p * 4096 + 0x63;
	/* TSS at 0xc000: I/O bitmap at 104, all ports open, 0xFF terminator. */
	*(uint16_t *)(sysb + 0xc000 + 102) = 104;
	sysb[0xc000 + 104 + 8192] = 0xff;
	vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	run = mmap(NULL, ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0), PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	ioctl(vcpu, KVM_GET_SREGS, &sregs);
	seg(&sregs.cs, 0x1b, 11, 1);
	seg(&sregs.ds, 0x23, 3, 0);
	sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
	memset(&sregs.tr, 0, sizeof(sregs.tr));
	sregs.tr.base = SYS + 0xc000;
	sregs.tr.limit = 104 + 8192;
	sregs.tr.selector = 0x28;
	sregs.tr.type = 11;
	sregs.tr.present = 1;
	sregs.cr0 = 0x80010033;
	sregs.cr3 = SYS;
	sregs.cr4 = 0x620;
	sregs.efer = 0x500;
	ioctl(vcpu, KVM_SET_SREGS, &sregs);
	memset(&regs, 0, sizeof(regs));
	regs.rip = 0x100000;
	regs.rflags = 0x3002;
	ioctl(vcpu, KVM_SET_REGS, &regs);
	run->kvm_valid_regs = KVM_SYNC_X86_REGS;
	for (int pass = 0; pass < 2; pass++) {          /* warm-up, then timed */
		long n = pass ? calls : calls / 10;

		clock_gettime(CLOCK_MONOTONIC, &a);
		for (long i = 0; i < n; i++) {
			if (ioctl(vcpu, KVM_RUN, 0) < 0 || run->exit_reason != KVM_EXIT_IO ||
			    run->io.port != 0xf0) {
				fprintf(stderr, "kvm_nop: unexpected exit %u\n", run->exit_reason);
				return 1;
			}
			if ((uint32_t)run->s.regs.regs.rax != 0) {
				fprintf(stderr, "kvm_nop: eax %llx\n", run->s.regs.regs.rax);
				return 1;
			}
			run->s.regs.regs.rax = 0x80000000u;
			run->kvm_dirty_regs = KVM_SYNC_X86_REGS;
		}
		clock_gettime(CLOCK_MONOTONIC, &b);
	}
	printf("%.0f\n", calls / ((b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9));
	return 0;
}
