/**
 * Every constant of the lguest 2.6.23 ABI: the seed header
 * (`lguest_user.h`, a.k.a. `lguest_launcher.h`), `include/linux/lguest.h`
 * and the boot-header offsets the Launcher writes (protocol §1, §3.2, §9.3).
 *
 * @module
 */

/** DMA-array bindings per guest. */
export const LGUEST_MAX_DMA = 32;
/** addr/len pairs in one `struct lguest_dma`. */
export const LGUEST_MAX_DMA_SECTIONS = 16;
/** Entries in the device descriptor page. */
export const LGUEST_MAX_DEVICES = LGUEST_MAX_DMA / 2;
/** Key for console output (and, by convention, console input). */
export const LGUEST_CONSOLE_DMA_KEY = 0;

/** Device types (`lguest_device_desc.type`); 0 is an empty slot. */
export const LGUEST_DEVICE_T_CONSOLE = 1;
export const LGUEST_DEVICE_T_NET = 2;
export const LGUEST_DEVICE_T_BLOCK = 3;

/** Device features. */
export const LGUEST_NET_F_NOCSUM = 0x4000;
export const LGUEST_DEVICE_F_RANDOMNESS = 0x8000;
/** Ours, not 2.6.23's: a block device that refuses writes (`--block FILE,ro`). */
export const LGUEST_BLK_F_READONLY = 0x0001;

/** Device status bits, set by the guest (REMOVED by the host). */
export const LGUEST_DEVICE_S_ACKNOWLEDGE = 1;
export const LGUEST_DEVICE_S_DRIVER = 2;
export const LGUEST_DEVICE_S_DRIVER_OK = 4;
export const LGUEST_DEVICE_S_REMOVED = 8;
export const LGUEST_DEVICE_S_REMOVED_ACK = 16;
export const LGUEST_DEVICE_S_FAILED = 128;

/** `/dev/lguest` write requests (`enum lguest_req`). */
export const LHREQ_INITIALIZE = 0;
export const LHREQ_GETDMA = 1;
export const LHREQ_IRQ = 2;
export const LHREQ_BREAK = 3;

/** Hypercall numbers (`include/linux/lguest.h`, 2.6.23). 11 is unassigned. */
export const LHCALL_FLUSH_ASYNC = 0;
export const LHCALL_LGUEST_INIT = 1;
export const LHCALL_CRASH = 2;
/**
 * Extension: CRASH with EBX = this magic ("EXIT") and ECX = status is a
 * deliberate exit with that status (low 8 bits, as POSIX `_exit`); the
 * launcher passes it on as its exit code (README "Exit codes").
 */
export const LGUEST_CRASH_EXIT = 0x45584954;
/**
 * Extension: CRASH with EBX = this magic ("HINT") and ECX = a hint number
 * ({@link LG_HINT}) is no death: the launcher shows that hint's line to the
 * user (stderr, once per guest and hint), the message only as its argument
 * (escaped, cut), and the guest goes on (docs/guest-abi.md §11).
 */
export const LGUEST_CRASH_HINT = 0x48494e54;
/** The hints of {@link LGUEST_CRASH_HINT}; other numbers are ignored. */
export const LG_HINT = {
  /** A file needed a disk and the run has none; the message is its path. */
  NO_DISK: 1,
  /** Disk 0 holds no lgfs file system. */
  NO_LGFS: 2,
  /** Disk 0 has 0 bytes. */
  EMPTY_DISK: 3,
} as const;
export const LHCALL_LOAD_GDT = 3;
export const LHCALL_NEW_PGTABLE = 4;
export const LHCALL_FLUSH_TLB = 5;
export const LHCALL_LOAD_IDT_ENTRY = 6;
export const LHCALL_SET_STACK = 7;
export const LHCALL_TS = 8;
export const LHCALL_SET_CLOCKEVENT = 9;
export const LHCALL_HALT = 10;
export const LHCALL_BIND_DMA = 12;
export const LHCALL_SEND_DMA = 13;
export const LHCALL_SET_PTE = 14;
export const LHCALL_SET_PMD = 15;
export const LHCALL_LOAD_TLS = 16;

/** Names of the hypercalls, for kill reasons and traces. */
export const HCALL_NAMES: Readonly<Record<number, string>> = {
  0: "FLUSH_ASYNC",
  1: "LGUEST_INIT",
  2: "CRASH",
  3: "LOAD_GDT",
  4: "NEW_PGTABLE",
  5: "FLUSH_TLB",
  6: "LOAD_IDT_ENTRY",
  7: "SET_STACK",
  8: "TS",
  9: "SET_CLOCKEVENT",
  10: "HALT",
  12: "BIND_DMA",
  13: "SEND_DMA",
  14: "SET_PTE",
  15: "SET_PMD",
  16: "LOAD_TLS",
};

/** The hypercall trap vector (`int $0x1F`). */
export const LGUEST_TRAP_ENTRY = 0x1f;
/** Slots in the async hypercall ring. */
export const LHCALL_RING_SIZE = 64;
/** Guest IRQs (bits of the pending and blocked bitmaps). */
export const LGUEST_IRQS = 32;
/** Guest-side minimum clockevent delta, ns. */
export const LG_CLOCK_MIN_DELTA = 100;
/** Guests per host (guestid 0..15). */
export const MAX_LGUEST_GUESTS = 16;
/** Top 4 MiB reserved in every guest for the Switcher. */
export const SWITCHER_ADDR = 0xffc00000;
/** Written into `lguest_data.reserve_mem` at LGUEST_INIT. */
export const LGUEST_RESERVE_MEM = 4 * 1024 * 1024;
/** `FIRST_EXTERNAL_VECTOR`: guest IRQ n arrives on vector 0x20 + n. */
export const FIRST_EXTERNAL_VECTOR = 0x20;
/** The Linux system-call vector, stored separately in the guest IDT. */
export const SYSCALL_VECTOR = 0x80;
/** `X86_EFLAGS_IF`: the value of `irq_enabled` meaning "interrupts on". */
export const X86_EFLAGS_IF = 0x200;
/** i386 kernel selectors; the guest runs them with RPL 1. */
export const KERNEL_CS = 0x60;
export const KERNEL_DS = 0x68;
export const GUEST_PL = 1;
/** Entries in the guest GDT; three TLS entries start at index 6. */
export const GDT_ENTRIES = 32;
export const GDT_ENTRY_TLS_MIN = 6;
export const GDT_ENTRY_TLS_ENTRIES = 3;
/** Entries of the guest IDT the Host keeps (0..63); 0x80 is kept apart. */
export const IDT_ENTRIES = FIRST_EXTERNAL_VECTOR + LGUEST_IRQS;
/** Kernel stack pages a guest may hand SET_STACK. */
export const MAX_STACK_PAGES = 2;
/** Page size of the i386 guest. */
export const PAGE_SIZE = 4096;

/** The lguest_net promiscuous bit (Ethernet group bit of mac[0]). */
export const LGUEST_NET_PROMISC = 0x01;
/** lguest_net slots in one device page (4096 / 6). */
export const LGUEST_NET_SLOTS = 682;

/** Block request types and results (`lguest_block_page`). */
export const LGUEST_BLOCK_READ = 0;
export const LGUEST_BLOCK_WRITE = 1;
export const LGUEST_BLOCK_PENDING = 0;
export const LGUEST_BLOCK_OK = 1;
export const LGUEST_BLOCK_ERROR = 2;
export const SECTOR_SIZE = 512;

/** Boot-header offsets the Launcher writes in guest-physical page 0 (§9.3). */
export const BOOT_E820NR = 0x1e8;
export const BOOT_LOADER_TYPE = 0x210;
export const BOOT_INITRD_ADDR = 0x218;
export const BOOT_INITRD_SIZE = 0x21c;
export const BOOT_CMDLINE_PTR = 0x228;
export const BOOT_HARDWARE_SUBARCH = 0x23c;
export const BOOT_E820MAP = 0x2d0;
/** Size of one e820 entry: u64 addr, u64 size, u32 type. */
export const E820_ENTRY_SIZE = 20;
export const E820_RAM = 1;
/** Where the Launcher puts the command line, and its maximum size. */
export const BOOT_CMDLINE_ADDR = 0x1000;
export const COMMAND_LINE_SIZE = 2048;
/** Boot parameter page size (PARAM_SIZE). */
export const PARAM_SIZE = 4096;
/** `hardware_subarch` value for lguest. */
export const SUBARCH_LGUEST = 1;

/** Errno values returned (negated) by the /dev/lguest interface. */
export const EPERM = 1;
export const ENOENT = 2;
export const ENOMEM = 12;
export const EFAULT = 14;
export const EBUSY = 16;
export const EINVAL = 22;
export const ENOSPC = 28;
export const EAGAIN = 11;
export const ERESTARTSYS = 512;
