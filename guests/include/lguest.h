/*
 * lguest.h: the guest <-> host ABI of "lguest for Deno".
 *
 * Everything here mirrors Linux 2.6.23 (include/asm-i386/lguest_user.h and
 * include/linux/lguest.h), see docs/guest-abi.md and the protocol spec.
 * Rules for this file:
 *   - ABI structs use fixed-width types only (no long, no pointers), so a
 *     later x86-64 guest shares the exact i386 layouts.
 *   - every size and offset is checked with _Static_assert.
 *   - no code, no arch specifics: constants and layouts only.
 */
#ifndef LGUEST_ABI_H
#define LGUEST_ABI_H

#include <stdint.h>
#include <stddef.h>

typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef uint64_t u64;

/* ---- Limits (protocol §1) ---------------------------------------------- */
#define LGUEST_MAX_DMA          32   /* bindings per guest */
#define LGUEST_MAX_DMA_SECTIONS 16   /* addr/len pairs in one lguest_dma */
#define LGUEST_MAX_DEVICES      (LGUEST_MAX_DMA / 2)  /* 16 descriptors */
#define LGUEST_IRQS             32
#define LGUEST_PAGE_SIZE        4096u
#define LG_CLOCK_MIN_DELTA      100u /* ns */

/* ---- Hypercalls (protocol §3.2): EAX = number, EDX/EBX/ECX = args ------ */
#define LHCALL_FLUSH_ASYNC    0
#define LHCALL_LGUEST_INIT    1   /* edx = &lguest_data */
#define LHCALL_CRASH          2   /* edx = &message (host reads 128 bytes) */
/* Extension: CRASH with ebx = LGUEST_CRASH_EXIT ("EXIT") and ecx = status
 * is an exit with that status (low 8 bits); see docs/guest-abi.md §11. */
#define LGUEST_CRASH_EXIT     0x45584954u
/* Extension: CRASH with ebx = LGUEST_CRASH_HINT ("HINT") and ecx = a hint
 * number is no death: the launcher prints that hint's line on its stderr
 * (once per run; the message, a path, escaped and cut), and the guest goes
 * on; see docs/guest-abi.md §11. */
#define LGUEST_CRASH_HINT     0x48494E54u
#define LG_HINT_NO_DISK       1   /* message: the path that needed a disk */
#define LG_HINT_NO_LGFS       2   /* disk 0 holds no lgfs */
#define LG_HINT_EMPTY_DISK    3   /* disk 0 has 0 bytes */
#define LHCALL_LOAD_GDT       3
#define LHCALL_NEW_PGTABLE    4
#define LHCALL_FLUSH_TLB      5
#define LHCALL_LOAD_IDT_ENTRY 6   /* edx = vector, ebx = low, ecx = high */
#define LHCALL_SET_STACK      7
#define LHCALL_TS             8
#define LHCALL_SET_CLOCKEVENT 9   /* edx = delta ns, 0 = cancel */
#define LHCALL_HALT           10
/* 11 is unassigned: calling it kills the guest ("Bad hypercall 11"). */
#define LHCALL_BIND_DMA       12  /* edx key, ebx &dma[0], ecx (num<<8)|irq */
#define LHCALL_SEND_DMA       13  /* edx key, ebx &dma */
#define LHCALL_SET_PTE        14
#define LHCALL_SET_PMD        15
#define LHCALL_LOAD_TLS       16

/* ---- Interrupts (protocol §4) ------------------------------------------ */
#define X86_EFLAGS_IF         0x200u  /* lguest_data.irq_enabled "on" */
#define FIRST_EXTERNAL_VECTOR 0x20    /* vector of guest IRQ n = 0x20 + n */
#define LGUEST_TIMER_IRQ      0
/* IDT high word for a present, DPL0, 32-bit interrupt gate. */
#define LG_IDT_INTERRUPT_GATE 0x8E00u
#define LG_IDT_PRESENT        0x8000u
#define LG_KERNEL_CS          0x60u   /* i386 __KERNEL_CS */

/* ---- wasm32 engine only: values of the hcall()/event() imports ---------- */
#define LG_EVENT       0xFFFFFFFFu /* hcall(): "run the event loop" */
#define LG_EV_WAIT     0x100u      /* event(): call wait(), then event() */
#define LG_EV_DONE     0x80000000u /* event(): bit set = done, eax in low 31 */

/* ---- Boot parameters (protocol §9.3), offsets inside guest page 0 ------- */
#define LG_BOOT_E820_NR       0x1E8  /* u8 */
#define LG_BOOT_CMDLINE_PTR   0x228  /* u32, always 0x1000 */
#define LG_BOOT_GUEST_TYPE    0x23C  /* u32 = 1 (unused by guests) */
#define LG_BOOT_E820_MAP      0x2D0  /* struct e820_entry[] */
#define LG_COMMAND_LINE_SIZE  2048
#define E820_RAM              1

struct e820_entry {           /* packed on i386: 20 bytes, 4-byte aligned */
	u32 addr_lo, addr_hi;
	u32 size_lo, size_hi;
	u32 type;
};

/* ---- DMA (protocol §2.1) ------------------------------------------------ */
#define LGUEST_CONSOLE_DMA_KEY 0

struct lguest_dma {
	/* 0 if free to be used, filled by the Host. */
	u32 used_len;
	u32 addr[LGUEST_MAX_DMA_SECTIONS];  /* guest-physical */
	u16 len[LGUEST_MAX_DMA_SECTIONS];   /* first 0 ends the list */
};

/* ---- Block device page (protocol §2.2) ---------------------------------- */
struct lguest_block_page {
	int32_t type;        /* 0 read, 1 write */
	u32 sector;          /* offset = sector * 512 */
	u32 bytes;           /* length expected */
	int32_t result;      /* 0 pending, 1 done, 2 done with error */
	u32 num_sectors;     /* disk length = num_sectors * 512 */
};

/* ---- Network peer slot (protocol §2.3) ---------------------------------- */
struct lguest_net {
	u8 mac[6];           /* mac[0] == 0: slot unused; bit 0: promiscuous */
};

/* ---- Device descriptors (protocol §2.4), 16 of them at guest addr `mem` -- */
struct lguest_device_desc {
	u16 type;
	u16 features;
	u16 status;
	u16 num_pages;
	u32 pfn;
};

#define LGUEST_DEVICE_T_CONSOLE 1
#define LGUEST_DEVICE_T_NET     2
#define LGUEST_DEVICE_T_BLOCK   3

#define LGUEST_NET_F_NOCSUM        0x4000
#define LGUEST_DEVICE_F_RANDOMNESS 0x8000
/* Console features (an extension): the launcher's stdin / stdout is a terminal;
 * IN_LINE: that terminal stays in line mode (no --allow-ffi for termios), so it
 * echoes and edits what is typed itself and hands it over a line at a time:
 * the guest must not echo (docs/guest-abi.md §10). */
#define LGUEST_CONSOLE_F_IN_TTY    0x0001
#define LGUEST_CONSOLE_F_OUT_TTY   0x0002
#define LGUEST_CONSOLE_F_IN_LINE   0x0004
/* Ours, not 2.6.23's: a block device that refuses writes (--block FILE,ro).
 * A 2.6.23 guest ignores the bit and gets result 2 for a write. */
#define LGUEST_BLK_F_READONLY      0x0001

#define LGUEST_DEVICE_S_ACKNOWLEDGE 1
#define LGUEST_DEVICE_S_DRIVER      2
#define LGUEST_DEVICE_S_DRIVER_OK   4
#define LGUEST_DEVICE_S_REMOVED     8
#define LGUEST_DEVICE_S_REMOVED_ACK 16
#define LGUEST_DEVICE_S_FAILED      128

/* ---- The shared guest/host page (protocol §2.5): 1128 bytes ------------- */
#define LHCALL_RING_SIZE 64

struct hcall_ring {
	u32 eax, edx, ebx, ecx;      /* note the order */
};

struct lguest_timespec {
	u32 tv_sec;
	u32 tv_nsec;
};

struct lguest_data {
	u32 irq_enabled;             /* 0x200 on, 0 off (guest; host too) */
	u32 blocked_interrupts[1];   /* bit n set = IRQ n masked (guest) */
	u32 cr2;                     /* host: faulting address */
	struct lguest_timespec time; /* host: wall clock */
	u8 hcall_status[LHCALL_RING_SIZE]; /* 0xFF = done/free */
	struct hcall_ring hcalls[LHCALL_RING_SIZE];
	u32 reserve_mem;             /* host at init: 4 MiB */
	u16 guestid;                 /* host at init: 0..15 */
	u16 _pad;
	u32 tsc_khz;                 /* host at init */
	u32 noirq_start;             /* guest: no-interrupt EIP range */
	u32 noirq_end;
};

/* /dev/lguest write requests (host <-> launcher; listed for completeness). */
enum lguest_req {
	LHREQ_INITIALIZE,
	LHREQ_GETDMA,
	LHREQ_IRQ,
	LHREQ_BREAK,
};

/* ---- Layout checks: these are the i386 layouts of 2.6.23 ---------------- */
#define LG_CHECK(type, field, off) \
	_Static_assert(offsetof(struct type, field) == (off), #type "." #field)

_Static_assert(sizeof(struct e820_entry) == 20, "e820_entry size");
LG_CHECK(e820_entry, size_lo, 8);
LG_CHECK(e820_entry, type, 16);

_Static_assert(sizeof(struct lguest_dma) == 100, "lguest_dma size");
_Static_assert(_Alignof(struct lguest_dma) == 4, "lguest_dma align");
LG_CHECK(lguest_dma, used_len, 0);
LG_CHECK(lguest_dma, addr, 4);
LG_CHECK(lguest_dma, len, 68);

_Static_assert(sizeof(struct lguest_block_page) == 20, "block page size");
LG_CHECK(lguest_block_page, type, 0);
LG_CHECK(lguest_block_page, sector, 4);
LG_CHECK(lguest_block_page, bytes, 8);
LG_CHECK(lguest_block_page, result, 12);
LG_CHECK(lguest_block_page, num_sectors, 16);

_Static_assert(sizeof(struct lguest_net) == 6, "lguest_net size");
_Static_assert(_Alignof(struct lguest_net) == 1, "lguest_net align");

_Static_assert(sizeof(struct lguest_device_desc) == 12, "device_desc size");
LG_CHECK(lguest_device_desc, type, 0);
LG_CHECK(lguest_device_desc, features, 2);
LG_CHECK(lguest_device_desc, status, 4);
LG_CHECK(lguest_device_desc, num_pages, 6);
LG_CHECK(lguest_device_desc, pfn, 8);

_Static_assert(sizeof(struct hcall_ring) == 16, "hcall_ring size");
LG_CHECK(hcall_ring, eax, 0);
LG_CHECK(hcall_ring, edx, 4);
LG_CHECK(hcall_ring, ebx, 8);
LG_CHECK(hcall_ring, ecx, 12);

_Static_assert(sizeof(struct lguest_data) == 1128, "lguest_data size");
LG_CHECK(lguest_data, irq_enabled, 0);
LG_CHECK(lguest_data, blocked_interrupts, 4);
LG_CHECK(lguest_data, cr2, 8);
LG_CHECK(lguest_data, time.tv_sec, 12);
LG_CHECK(lguest_data, time.tv_nsec, 16);
LG_CHECK(lguest_data, hcall_status, 20);
LG_CHECK(lguest_data, hcalls, 84);
LG_CHECK(lguest_data, reserve_mem, 1108);
LG_CHECK(lguest_data, guestid, 1112);
LG_CHECK(lguest_data, tsc_khz, 1116);
LG_CHECK(lguest_data, noirq_start, 1120);
LG_CHECK(lguest_data, noirq_end, 1124);

#undef LG_CHECK
#endif /* LGUEST_ABI_H */
