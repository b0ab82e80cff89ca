/**
 * The KVM engine: a guest is x86-64 machine code run by `/dev/kvm`.
 *
 * Guest RAM is one anonymous mapping registered as memslot 0 at
 * guest-physical 0, and the Host sees that mapping, zero-copy, as the
 * `Uint8Array` it uses for every guest (same layout as the wasm engine,
 * protocol §9.2). The guest runs in 64-bit long mode at CPL3 with IOPL 3,
 * identity-mapped by page tables the host builds in a second memslot at
 * 4 GiB. Those page tables, the GDT, IDT, TSS and the fault stubs are
 * mapped supervisor-only: guest code cannot read or write them.
 *
 * Hypercalls are `outl %eax, $0xF0` with the lguest registers (EAX number,
 * EDX, EBX, ECX); the result is in EAX. The event protocol is the wasm
 * engine's, folded into the same instruction: a hypercall returns
 * `LG_EV_DONE | eax` when finished, or an IRQ 0..31 whose handler the
 * guest runs before asking for the next event with EAX = `LG_EVENT`. The
 * engine handles `LG_EV_WAIT` itself: it stops the guest and asks again
 * when the Host resumes it. See docs/guest-abi.md "x86-64 images".
 *
 * Every exception in guest code goes through the IDT to a ring-0 stub
 * that reports its vector on port 0xF1; the guest is then killed with one
 * line naming the fault and `rip`. So are `in`/`out` on any other port,
 * MMIO (guest-physical addresses outside RAM), triple faults and KVM
 * internal errors. There is no in-kernel irqchip or PIT.
 *
 * `KVM_RUN` is a synchronous FFI call on the main thread (so a hypercall
 * costs what it costs in C); a POSIX timer signals this thread every time
 * slice while the guest runs, so a guest spinning without hypercalls
 * returns to the Host, which lets the event loop in (timers, input,
 * `--timeout`, other guests).
 *
 * @module
 */

import type { GuestCpu, HypercallPort } from "./engine.ts";
import { LG_EV_DONE, LG_EV_WAIT, LG_EVENT } from "./engine.ts";
import {
  armKick,
  CAP,
  cstr,
  EACCES,
  EINTR,
  ENOENT,
  ERRNO,
  EXIT_REASON,
  KVM,
  mapAnon,
  releaseRegion,
  sys,
  viewRegion,
} from "./kvm_sys.ts";
import { ImageError } from "./wasm.ts";
import { hostStackLine, isStackOverflow } from "../sys/text.ts";
import { otherKind } from "./image_kind.ts";

/** The hypercall port. */
export const HCALL_PORT = 0xf0;
/** The port the ring-0 fault stubs report a vector on (not for guests). */
const FAULT_PORT = 0xf1;
/** Guest-physical (= virtual) base of the host's system area. */
export const SYS_BASE = 0x1_0000_0000;
const SYS_PAGES = 20;
const SYS_SIZE = SYS_PAGES * 4096;
/** Offsets inside the system area. */
const PML4 = 0x0000, PDPT = 0x1000, PD0 = 0x2000, PT_TAIL = 0x6000, PD_SYS = 0x7000;
const PT_SYS = 0x8000, GDT = 0x9000, IDT = 0xa000, STUBS = 0xb000, TSS = 0xc000;
/** The TSS's I/O permission bitmap: all zeros (every port traps to us), then 0xFF. */
const IOMAP = 104, TSS_LIMIT = IOMAP + 8192;
const STACK_TOP = 0x11000;
/** Writable pages of the system area: the stub stack, where the CPU pushes fault frames. */
const SYS_WRITABLE = new Set([0xf, 0x10]);
/** The image's lowest address (1 MiB, as the wasm images' data). */
export const IMAGE_BASE = 0x100000;
/** Largest guest-physical space (RAM + device pages) the page tables cover. */
const MAX_TOP = 4 * 1024 * 1024 * 1024 - SYS_SIZE;
/** How long the guest runs before the kick (the Host's time slice is 4 ms). */
const KICK_MS = 5;

/** Segment selectors. */
const SEL_KCODE = 0x08, SEL_UCODE = 0x1b, SEL_UDATA = 0x23, SEL_TSS = 0x28;
/**
 * `syscall` is a fault like any other: EFER.SCE is clear, but PVM handles
 * `syscall` itself and jumps to MSR_LSTAR (0 by default: guest RAM, the
 * guest would carry on at address 0). LSTAR points at a stub that reports
 * this pseudo-vector instead (after the 33 exception stubs).
 */
const SYSCALL_VECTOR = 0xfe;
const SYSCALL_STUB = STUBS + 8 * 33;
/** MSRs: STAR (kernel CS for syscall), LSTAR, SFMASK (clears TF, IF, DF, AC). */
const MSR_STAR = 0xc0000081, MSR_LSTAR = 0xc0000082, MSR_SFMASK = 0xc0000084;
/** Initial RFLAGS: IOPL 3 (so `out` is legal at CPL3), IF 0, bit 1. */
const RFLAGS = 0x3002;

/** kvm_run offsets. */
const RUN_IMMEDIATE_EXIT = 1, RUN_EXIT_REASON = 8;
const IO_DIRECTION = 32, IO_SIZE = 33, IO_PORT = 34, IO_COUNT = 36, IO_DATA_OFFSET = 40;
const MMIO_ADDR = 32, MMIO_IS_WRITE = 52;
const INTERNAL_SUBERROR = 32;
const VALID_REGS = 288, DIRTY_REGS = 296, REGS = 304;
/** Offsets inside struct kvm_regs. */
const R = { rax: 0, rbx: 8, rcx: 16, rdx: 24, rsp: 48, rip: 128, rflags: 136 } as const;
const KVM_EXIT_IO = 2, KVM_EXIT_MMIO = 6, KVM_EXIT_SHUTDOWN = 8, KVM_EXIT_INTR = 10;
const KVM_EXIT_INTERNAL_ERROR = 17;

/** Exception names by vector. */
const VECTORS: Record<number, string> = {
  0: "divide error",
  1: "debug trap",
  2: "NMI",
  3: "breakpoint (int3)",
  4: "overflow (into)",
  5: "bound range exceeded",
  6: "invalid opcode",
  7: "FPU/SSE instruction (device not available)",
  8: "double fault",
  10: "invalid TSS",
  11: "segment not present",
  12: "stack-segment fault",
  13: "general protection fault",
  14: "page fault",
  16: "x87 floating-point error",
  17: "alignment check",
  18: "machine check",
  19: "SIMD floating-point error",
  21: "control protection fault",
};
/** Instruction prefixes: operand/address size, segments, lock, rep, REX. */
const PREFIXES = new Set([
  0x66,
  0x67,
  0x26,
  0x2e,
  0x36,
  0x3e,
  0x64,
  0x65,
  0xf0,
  0xf2,
  0xf3,
  ...Array.from({ length: 16 }, (_, i) => 0x40 + i),
]);
const HAS_ERROR_CODE = new Set([8, 10, 11, 12, 13, 14, 17, 21, 29, 30]);

function hex(v: number | bigint): string {
  return "0x" + v.toString(16);
}

// ---- Availability ------------------------------------------------------------

let kvmFd = -1;
let availability: string | null | undefined;

/**
 * Why the KVM engine cannot run here, or null if it can: x86-64 Linux,
 * `/dev/kvm` present and openable, API 12, and the capabilities we use.
 * Needs --allow-ffi (the CLI has it).
 */
export function kvmUnavailable(): string | null {
  if (availability !== undefined) return availability;
  availability = probe();
  return availability;
}

/**
 * The KVM device: `/dev/kvm`, or `LGUEST_KVM_DEVICE` where the process may
 * read it (the tests of its absence grant that; asked without a prompt).
 */
function kvmDevice(): string {
  const variable = "LGUEST_KVM_DEVICE";
  try {
    if (Deno.permissions.querySync({ name: "env", variable }).state !== "granted") {
      return "/dev/kvm";
    }
    return Deno.env.get(variable) || "/dev/kvm";
  } catch {
    return "/dev/kvm";
  }
}

function probe(): string | null {
  if (Deno.build.os !== "linux" || Deno.build.arch !== "x86_64") {
    return `KVM needs x86-64 Linux (this is ${Deno.build.arch} ${Deno.build.os})`;
  }
  // Asked first: at a terminal an FFI call without the permission would prompt.
  try {
    if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") {
      return "the KVM engine needs --allow-ffi (libc calls for /dev/kvm)";
    }
  } catch { /* no permissions API: let dlopen say it */ }
  let s;
  try {
    s = sys();
  } catch (e) {
    return `cannot load libc for KVM: ${(e as Error).message}`;
  }
  const fd = s.open(cstr(kvmDevice()), 2 | 0x80000, 0);
  if (fd < 0) {
    const e = ERRNO[0];
    if (e === ENOENT && kvmDevice() !== "/dev/kvm") return `no ${kvmDevice()}`;
    if (e === ENOENT) {
      // Through libc: Deno wants more than --allow-read for /proc.
      let misc = "";
      const mfd = s.open(cstr("/proc/misc"), 0x80000, 0);
      if (mfd >= 0) {
        const buf = new Uint8Array(8192);
        const n = Number(s.read(mfd, buf, BigInt(buf.length)));
        s.close(mfd);
        if (n > 0) misc = new TextDecoder().decode(buf.subarray(0, n));
      }
      return /^\s*232 kvm$/m.test(misc)
        ? "/dev/kvm is missing although the kernel has KVM (create it: mknod /dev/kvm c 10 232)"
        : "this machine has no KVM (no /dev/kvm; the kernel lists no kvm device in /proc/misc)";
    }
    if (e === EACCES) return `no permission to open ${kvmDevice()} (add yourself to the kvm group)`;
    return `cannot open ${kvmDevice()}: errno ${e}`;
  }
  const api = s.ioctl(fd, KVM.GET_API_VERSION, 0n);
  if (api !== 12) {
    s.close(fd);
    return `${kvmDevice()} speaks KVM API ${api}, not 12`;
  }
  for (const [name, cap] of [["SYNC_REGS", CAP.SYNC_REGS], ["USER_MEMORY", CAP.USER_MEMORY]]) {
    if (s.ioctl(fd, KVM.CHECK_EXTENSION, cap as bigint) <= 0) {
      s.close(fd);
      return `${kvmDevice()} lacks KVM_CAP_${name}`;
    }
  }
  kvmFd = fd;
  return null;
}

/**
 * What kind of KVM this is: PVM (software nested virtualisation; see
 * docs/performance.md), VT-x or SVM, from the loaded module. Through libc
 * `access(2)`, since Deno wants more than --allow-read for /sys.
 */
export function kvmFlavour(): string {
  const has = (m: string) => sys().access(cstr(`/sys/module/${m}`), 0) === 0;
  return has("kvm_pvm") ? "PVM" : has("kvm_intel") ? "VT-x" : has("kvm_amd") ? "SVM" : "unknown";
}

// ---- Event-loop turns -------------------------------------------------------------

/** When the event loop last had a turn (timers, I/O) between two runs of a guest. */
let lastTurn = 0;
const turnWaiters: (() => void)[] = [];
let turnChannel: MessageChannel | null = null;

/** KVM guests not yet released: the channel lives (and keeps the process up) while any does. */
let liveGuests = 0;

function closeTurnChannel(): void {
  turnChannel?.port1.close();
  turnChannel?.port2.close();
  turnChannel = null;
}

/**
 * A real event-loop turn (a MessageChannel message: a macrotask without
 * timer clamping). The channel is ref'd, so a pending turn keeps the
 * process alive; it is closed when the last KVM guest is released.
 */
function eventLoopTurn(): Promise<void> {
  if (turnChannel === null) {
    turnChannel = new MessageChannel();
    turnChannel.port1.onmessage = () => {
      lastTurn = performance.now();
      for (const w of turnWaiters.splice(0)) w();
      if (liveGuests === 0) closeTurnChannel();
    };
  }
  return new Promise((resolve) => {
    turnWaiters.push(resolve);
    if (turnWaiters.length === 1) turnChannel!.port2.postMessage(0);
  });
}

// ---- The image -----------------------------------------------------------------

/** A checked x86-64 guest image: what to copy where, and the entry point. */
export interface X86Image {
  name: string;
  entry: number;
  segments: { addr: number; data: Uint8Array; memsz: number }[];
  /** One past the highest byte the image occupies. */
  end: number;
}

const PT_LOAD = 1, PF_X = 1;

/**
 * Parse and check an x86-64 guest image (ELF64, little-endian, EXEC,
 * EM_X86_64): every PT_LOAD lies in the file, at or above 1 MiB, below
 * 4 GiB, with p_vaddr = p_paddr, filesz <= memsz and no two overlapping;
 * the entry point is in an executable segment. Whether it fits the RAM
 * is checked when a guest of a given size is made. Hostile input: every
 * problem is an {@link ImageError} naming it.
 */
export function parseX86Image(bytes: Uint8Array, name: string): X86Image {
  const bad = (why: string) => new ImageError(`${name}: bad x86-64 image: ${why}`);
  if (
    bytes.length < 64 || bytes[0] !== 0x7f || bytes[1] !== 0x45 || bytes[2] !== 0x4c ||
    bytes[3] !== 0x46
  ) {
    // What it is instead (WebAssembly, a disk image, a C source), else just "not ELF".
    const why = otherKind(bytes, name, "kvm") ?? "not ELF";
    throw new ImageError(`${name}: not an x86-64 guest image (${why})`);
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes[4] !== 2 || bytes[5] !== 1) throw bad("not 64-bit little-endian ELF");
  if (dv.getUint16(18, true) !== 62) throw bad("not x86-64 code (e_machine)");
  if (dv.getUint16(16, true) !== 2) throw bad("not a static executable (e_type)");
  const u64 = (off: number, what: string): number => {
    const v = dv.getBigUint64(off, true);
    if (v >= 2n ** 32n) throw bad(`${what} ${hex(v)} is beyond 4 GiB`);
    return Number(v);
  };
  const entry = u64(24, "entry point");
  const phoff = u64(32, "program header offset");
  const phentsize = dv.getUint16(54, true);
  const phnum = dv.getUint16(56, true);
  if (phentsize !== 56) throw bad(`program header size ${phentsize}, not 56`);
  if (phnum === 0 || phnum > 64) throw bad(`${phnum} program headers`);
  if (phoff + phnum * 56 > bytes.length) throw bad("program headers beyond the file");
  const segments: X86Image["segments"] = [];
  let entryOk = false;
  let end = 0;
  for (let i = 0; i < phnum; i++) {
    const ph = phoff + i * 56;
    if (dv.getUint32(ph, true) !== PT_LOAD) continue;
    const flags = dv.getUint32(ph + 4, true);
    const offset = u64(ph + 8, "segment offset");
    const vaddr = u64(ph + 16, "segment address");
    const paddr = u64(ph + 24, "segment physical address");
    const filesz = u64(ph + 32, "segment file size");
    const memsz = u64(ph + 40, "segment size");
    if (memsz === 0) continue;
    if (vaddr !== paddr) throw bad(`segment ${i}: virtual ${hex(vaddr)} != physical ${hex(paddr)}`);
    if (filesz > memsz) throw bad(`segment ${i}: file size larger than its memory size`);
    if (offset + filesz > bytes.length) throw bad(`segment ${i}: data beyond the end of the file`);
    if (vaddr < IMAGE_BASE) throw bad(`segment ${i} at ${hex(vaddr)}, below 1 MiB`);
    if (vaddr + memsz > MAX_TOP) throw bad(`segment ${i} ends beyond 4 GiB`);
    for (const s of segments) {
      if (vaddr < s.addr + s.memsz && s.addr < vaddr + memsz) {
        throw bad(`segment ${i} at ${hex(vaddr)} overlaps another`);
      }
    }
    segments.push({ addr: vaddr, data: bytes.subarray(offset, offset + filesz), memsz });
    if ((flags & PF_X) && entry >= vaddr && entry < vaddr + memsz) entryOk = true;
    end = Math.max(end, vaddr + memsz);
  }
  if (segments.length === 0) throw bad("no loadable segment");
  if (!entryOk) throw bad(`entry point ${hex(entry)} is not in an executable segment`);
  return { name, entry, segments, end };
}

// ---- The system area -----------------------------------------------------------

/** Build page tables, GDT, IDT, TSS and fault stubs for RAM [0, top). */
function buildSystemArea(sysMem: Uint8Array, top: number): void {
  const dv = new DataView(sysMem.buffer, sysMem.byteOffset, sysMem.byteLength);
  const q = (off: number, v: number | bigint) =>
    dv.setBigUint64(off, typeof v === "bigint" ? v : BigInt(v), true);
  // Entry bits: P 1, RW 2, US 4, A 0x20, D 0x40, PS 0x80. A and D are preset
  // so the CPU never writes to these tables.
  const TABLE_USER = 0x27, TABLE_SUPER = 0x23, PAGE_USER = 0x67, BIG_USER = 0xe7;
  q(PML4, SYS_BASE + PDPT + TABLE_USER);
  const GiB = 1 << 30, MiB2 = 2 << 20;
  const chunks = Math.ceil(top / MiB2);
  for (let c = 0; c < chunks; c++) {
    const pd = PD0 + Math.floor(c / 512) * 4096;
    if (c % 512 === 0) q(PDPT + 8 * (c / 512), SYS_BASE + pd + TABLE_USER);
    const base = c * MiB2;
    if (base + MiB2 <= top) {
      q(pd + 8 * (c % 512), base + BIG_USER);
    } else {
      // The last, partial 2 MiB: 4 KiB pages up to top exactly.
      q(pd + 8 * (c % 512), SYS_BASE + PT_TAIL + TABLE_USER);
      for (let a = base; a < top; a += 4096) q(PT_TAIL + 8 * ((a - base) >> 12), a + PAGE_USER);
    }
  }
  // The system area itself, supervisor only; read-only except stack and TSS.
  q(PDPT + 8 * (SYS_BASE / GiB), SYS_BASE + PD_SYS + TABLE_SUPER);
  q(PD_SYS, SYS_BASE + PT_SYS + TABLE_SUPER);
  for (let p = 0; p < SYS_PAGES; p++) {
    q(PT_SYS + 8 * p, SYS_BASE + p * 4096 + (SYS_WRITABLE.has(p) ? 0x63 : 0x61));
  }
  // GDT: null, kernel code, kernel data, user code, user data, TSS (16 bytes).
  // Accessed bits preset (no descriptor writes by the CPU).
  q(GDT + 0x08, 0x00209b0000000000n);
  q(GDT + 0x10, 0x00cf93000000ffffn);
  q(GDT + 0x18, 0x0020fb0000000000n);
  q(GDT + 0x20, 0x00cff3000000ffffn);
  const tss = BigInt(SYS_BASE + TSS);
  q(
    GDT + 0x28,
    BigInt(TSS_LIMIT & 0xffff) | ((tss & 0xffffffn) << 16n) | (0x8bn << 40n) |
      (BigInt(TSS_LIMIT >> 16) << 48n) | (((tss >> 24n) & 0xffn) << 56n),
  );
  q(GDT + 0x30, tss >> 32n);
  // TSS: RSP0 = the stub stack. The I/O bitmap allows every port, so each
  // `in`/`out` exits to us to be judged (PVM checks the bitmap, not IOPL).
  q(TSS + 4, SYS_BASE + STACK_TOP);
  dv.setUint16(TSS + 102, IOMAP, true);
  sysMem[TSS + TSS_LIMIT] = 0xff;
  // Where `syscall` lands (MSR_LSTAR): the same report, vector SYSCALL_VECTOR.
  sysMem.set([0xb0, SYSCALL_VECTOR, 0xe6, FAULT_PORT, 0xf4, 0xeb, 0xfd, 0x90], SYSCALL_STUB);
  // Stubs: vector v at STUBS + 8v: mov al, v; out 0xF1, al; hlt; jmp .-1
  for (let v = 0; v < 256; v++) {
    const at = STUBS + 8 * Math.min(v, 32);
    if (v <= 32) {
      sysMem.set([0xb0, v < 32 ? v : 0xff, 0xe6, FAULT_PORT, 0xf4, 0xeb, 0xfd, 0x90], at);
    }
    const off = BigInt(SYS_BASE + at);
    // 64-bit interrupt gate, DPL 0, present.
    q(
      IDT + 16 * v,
      (off & 0xffffn) | (BigInt(SEL_KCODE) << 16n) | (0x8en << 40n) |
        (((off >> 16n) & 0xffffn) << 48n),
    );
    q(IDT + 16 * v + 8, off >> 32n);
  }
}

// ---- The vCPU ------------------------------------------------------------------

interface Vm {
  vmFd: number;
  vcpuFd: number;
  run: Deno.PointerObject;
  runSize: number;
  ram: Deno.PointerObject;
  sysArea: Deno.PointerObject;
}

function setSegment(
  dv: DataView,
  off: number,
  s: {
    base?: number;
    limit: number;
    sel: number;
    type: number;
    dpl: number;
    db?: number;
    s: number;
    l?: number;
    g?: number;
  },
) {
  dv.setBigUint64(off, BigInt(s.base ?? 0), true);
  dv.setUint32(off + 8, s.limit, true);
  dv.setUint16(off + 12, s.sel, true);
  const b = [s.type, 1, s.dpl, s.db ?? 0, s.s, s.l ?? 0, s.g ?? 0, 0, 0];
  b.forEach((v, i) => dv.setUint8(off + 14 + i, v));
}

/** One KVM guest: its VM, vCPU, RAM and the state of the event protocol. */
export class KvmCpu implements GuestCpu {
  readonly memory: Uint8Array;
  /** The guest's TSC frequency (for lguest_data.tsc_khz). */
  readonly tscKhz: number;
  readonly #vm: Vm;
  readonly #top: number;
  readonly #sys: Uint8Array;
  readonly #run: Uint8Array;
  readonly #run32: Uint32Array;
  readonly #runDv: DataView;
  #port: HypercallPort | null = null;
  /** The guest is inside an `out` whose EAX must come from event(). */
  #awaitingEvent = false;
  #running = false;
  #closed = false;
  #released = false;

  /**
   * @param image from {@link parseX86Image}
   * @param top guest-physical bytes (RAM plus device pages), whole pages
   * @param mem the RAM size: the image must end at or below it
   */
  constructor(image: X86Image, top: number, mem = top) {
    const why = kvmUnavailable();
    if (why !== null) throw new ImageError(why);
    if (top % 4096 !== 0 || top <= 0 || top > MAX_TOP) {
      throw new ImageError(`kvm: guest-physical size ${top} not supported (whole pages, < 4 GiB)`);
    }
    if (image.end > mem) {
      throw new ImageError(
        `${image.name}: image ends at ${hex(image.end)}, beyond the guest's RAM (${hex(mem)})`,
      );
    }
    const s = sys();
    // `e`: ERRNO[0] read at the call, before this arrow's entry (sys/libc.ts).
    const fail = (what: string, e: number): never => {
      this.#release(vm);
      throw new ImageError(`kvm: ${what} failed: errno ${e}`);
    };
    liveGuests++;
    const vm: Vm = {
      vmFd: -1,
      vcpuFd: -1,
      run: null as unknown as Deno.PointerObject,
      runSize: 0,
      ram: null as unknown as Deno.PointerObject,
      sysArea: null as unknown as Deno.PointerObject,
    };
    this.#vm = vm;
    this.#top = top;
    vm.vmFd = s.ioctl(kvmFd, KVM.CREATE_VM, 0n);
    if (vm.vmFd < 0) fail("KVM_CREATE_VM", ERRNO[0]);
    const ram = mapAnon(top);
    if (typeof ram === "number") fail(`mmap of ${top} bytes of guest RAM`, ram);
    vm.ram = ram as Deno.PointerObject;
    const sysArea = mapAnon(SYS_SIZE);
    if (typeof sysArea === "number") fail("mmap of the system area", sysArea);
    vm.sysArea = sysArea as Deno.PointerObject;
    this.memory = new Uint8Array(viewRegion(vm.ram, top));
    this.#sys = new Uint8Array(viewRegion(vm.sysArea, SYS_SIZE));
    const region = (slot: number, gpa: number, size: number, p: Deno.PointerObject) => {
      const r = new DataView(new ArrayBuffer(32));
      r.setUint32(0, slot, true);
      r.setBigUint64(8, BigInt(gpa), true);
      r.setBigUint64(16, BigInt(size), true);
      r.setBigUint64(24, Deno.UnsafePointer.value(p) as bigint, true);
      if (s.ioctl_buf(vm.vmFd, KVM.SET_USER_MEMORY_REGION, new Uint8Array(r.buffer)) !== 0) {
        fail(`KVM_SET_USER_MEMORY_REGION (slot ${slot})`, ERRNO[0]);
      }
    };
    region(0, 0, top, vm.ram);
    region(1, SYS_BASE, SYS_SIZE, vm.sysArea);
    vm.vcpuFd = s.ioctl(vm.vmFd, KVM.CREATE_VCPU, 0n);
    if (vm.vcpuFd < 0) fail("KVM_CREATE_VCPU", ERRNO[0]);
    vm.runSize = s.ioctl(kvmFd, KVM.GET_VCPU_MMAP_SIZE, 0n);
    if (vm.runSize < 2352) fail("KVM_GET_VCPU_MMAP_SIZE", ERRNO[0]);
    const run = s.mmap(null, BigInt(vm.runSize), 3, 1, /* MAP_SHARED */ vm.vcpuFd, 0n);
    const runErrno = ERRNO[0]; // before UnsafePointer.value, a call (sys/libc.ts ERRNO)
    if (run === null || Deno.UnsafePointer.value(run) === 0xffffffffffffffffn) {
      fail("mmap of kvm_run", runErrno);
    }
    vm.run = run!;
    const runBuf = Deno.UnsafePointerView.getArrayBuffer(vm.run, vm.runSize);
    this.#run = new Uint8Array(runBuf);
    this.#run32 = new Uint32Array(runBuf);
    this.#runDv = new DataView(runBuf);
    const khz = s.ioctl(vm.vcpuFd, KVM.GET_TSC_KHZ, 0n);
    this.tscKhz = khz > 0 ? khz : 0;

    // Image, system area, registers.
    for (const seg of image.segments) this.memory.set(seg.data, seg.addr);
    buildSystemArea(this.#sys, top);
    const sregs = new Uint8Array(312);
    if (s.ioctl_buf(vm.vcpuFd, KVM.GET_SREGS, sregs) !== 0) fail("KVM_GET_SREGS", ERRNO[0]);
    const sd = new DataView(sregs.buffer);
    const flat = { limit: 0xffffffff, g: 1, s: 1 };
    setSegment(sd, 0, { ...flat, sel: SEL_UCODE, type: 11, dpl: 3, l: 1 });
    for (const off of [24, 48, 72, 96, 120]) {
      setSegment(sd, off, { ...flat, sel: SEL_UDATA, type: 3, dpl: 3, db: 1 });
    }
    setSegment(sd, 144, {
      base: SYS_BASE + TSS,
      limit: TSS_LIMIT,
      sel: SEL_TSS,
      type: 11,
      dpl: 0,
      s: 0,
    });
    setSegment(sd, 168, { limit: 0, sel: 0, type: 2, dpl: 0, s: 0 });
    sd.setUint8(168 + 15, 0); // LDT not present
    sd.setUint8(168 + 22, 1); // unusable
    sd.setBigUint64(192, BigInt(SYS_BASE + GDT), true);
    sd.setUint16(200, 0x37, true);
    sd.setBigUint64(208, BigInt(SYS_BASE + IDT), true);
    sd.setUint16(216, 16 * 256 - 1, true);
    sd.setBigUint64(224, 0x80010033n, true); // PG WP NE ET MP PE
    sd.setBigUint64(240, BigInt(SYS_BASE + PML4), true);
    // PAE, OSFXSR, OSXMMEXCPT: SSE works as on any x86-64 (PVM allows it
    // regardless; VT-x and SVM would raise #UD without these).
    sd.setBigUint64(248, 0x620n, true);
    sd.setBigUint64(264, 0x500n, true); // LME LMA
    if (s.ioctl_buf(vm.vcpuFd, KVM.SET_SREGS, sregs) !== 0) fail("KVM_SET_SREGS", ERRNO[0]);
    const msrs = new DataView(new ArrayBuffer(8 + 16 * 3));
    msrs.setUint32(0, 3, true);
    [
      [MSR_STAR, BigInt(SEL_KCODE) << 32n],
      [MSR_LSTAR, BigInt(SYS_BASE + SYSCALL_STUB)],
      [MSR_SFMASK, 0x40700n],
    ].forEach(([msr, v], i) => {
      msrs.setUint32(8 + 16 * i, Number(msr), true);
      msrs.setBigUint64(16 + 16 * i, BigInt(v), true);
    });
    if (s.ioctl_buf(vm.vcpuFd, KVM.SET_MSRS, new Uint8Array(msrs.buffer)) !== 3) {
      fail("KVM_SET_MSRS", ERRNO[0]);
    }
    const regs = new DataView(new ArrayBuffer(144));
    regs.setBigUint64(R.rip, BigInt(image.entry), true);
    regs.setBigUint64(R.rflags, BigInt(RFLAGS), true);
    if (s.ioctl_buf(vm.vcpuFd, KVM.SET_REGS, new Uint8Array(regs.buffer)) !== 0) {
      fail("KVM_SET_REGS", ERRNO[0]);
    }
    this.#runDv.setBigUint64(VALID_REGS, 1n, true); // KVM_SYNC_X86_REGS
  }

  attach(port: HypercallPort): void {
    this.#port = port;
  }

  run(): Promise<void> {
    if (!this.#closed && this.#port !== null && this.#port.dead === null) {
      this.#running = true;
      try {
        this.#loop(this.#port);
      } catch (e) {
        // The host's own stack run out in its loop (a small V8 --stack-size, met in a hypercall's
        // host code): the host's one line and 125 (launcher.ts), as under the wasm engine.
        this.#port.kill(
          isStackOverflow(e) ? hostStackLine() : `kvm engine error: ${(e as Error).message}`,
        );
      } finally {
        this.#running = false;
        if (this.#closed) this.#release(this.#vm);
      }
    }
    // The Host resumes a stopped guest in microtasks when it can (a HALT
    // whose interrupt is already pending, a DMA served inline), and starts
    // a new time slice each time: without this, a guest that stops often
    // would keep timers and I/O out for good.
    return performance.now() - lastTurn > KICK_MS ? eventLoopTurn() : Promise.resolve();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (!this.#running) this.#release(this.#vm);
  }

  // ---- The run loop ----

  #u32(off: number): number {
    return this.#run32[off >> 2];
  }

  #setRax(v: number): void {
    this.#run32[(REGS + R.rax) >> 2] = v >>> 0;
    this.#run32[((REGS + R.rax) >> 2) + 1] = 0;
    this.#run32[DIRTY_REGS >> 2] = 1;
  }

  #rip(): bigint {
    return this.#runDv.getBigUint64(REGS + R.rip, true);
  }

  /** The next event for a guest waiting in `out`; false: stop (wait or dead). */
  #event(port: HypercallPort): boolean {
    const ev = port.event();
    if (ev === LG_EV_WAIT || port.dead !== null) {
      this.#awaitingEvent = port.dead === null;
      return false;
    }
    this.#setRax(ev);
    return true;
  }

  #loop(port: HypercallPort): void {
    if (this.#awaitingEvent) {
      this.#awaitingEvent = false;
      if (!this.#event(port)) return;
    }
    const s = sys();
    const fd = this.#vm.vcpuFd;
    const run32 = this.#run32;
    const REG = REGS >> 2;
    const start = performance.now();
    armKick(KICK_MS);
    try {
      for (;;) {
        if (port.dead !== null) return;
        const rc = s.ioctl(fd, KVM.RUN, 0n);
        if (rc !== 0) {
          const e = ERRNO[0];
          this.#run[RUN_IMMEDIATE_EXIT] = 0;
          if (e === EINTR || e === 11) {
            if (port.preempt()) return;
            continue;
          }
          port.kill(`KVM_RUN failed: errno ${e}`);
          return;
        }
        const reason = run32[RUN_EXIT_REASON >> 2];
        if (reason === KVM_EXIT_IO && this.#run[IO_PORT] === HCALL_PORT && this.#isHcallIo()) {
          const eax = run32[REG + (R.rax >> 2)];
          if (eax === LG_EVENT) {
            if (!this.#event(port)) return;
            continue;
          }
          const r = port.hypercall(
            eax,
            run32[REG + (R.rdx >> 2)],
            run32[REG + (R.rbx >> 2)],
            run32[REG + (R.rcx >> 2)],
          );
          if (r !== LG_EVENT) {
            this.#setRax((LG_EV_DONE | r) >>> 0);
            // An exit costs microseconds, so the clock is cheap here; the
            // kick's signal may have landed outside KVM_RUN and been lost.
            if (performance.now() - start > KICK_MS && port.preempt()) return;
            continue;
          }
          if (port.dead !== null) return;
          if (!this.#event(port)) return;
          continue;
        }
        if (reason === KVM_EXIT_INTR) {
          if (port.preempt()) return;
          continue;
        }
        port.kill(this.#describeExit(reason));
        return;
      }
    } finally {
      armKick(0);
    }
  }

  #isHcallIo(): boolean {
    const run = this.#run;
    return run[IO_DIRECTION] === 1 && run[IO_SIZE] === 4 && run[IO_PORT + 1] === 0 &&
      this.#u32(IO_COUNT) === 1;
  }

  /** One line for a fatal exit: the fault and rip. */
  #describeExit(reason: number): string {
    const rip = this.#rip();
    const run = this.#run;
    switch (reason) {
      case KVM_EXIT_IO: {
        const port = run[IO_PORT] | (run[IO_PORT + 1] << 8);
        const out = run[IO_DIRECTION] === 1;
        if (port === FAULT_PORT && out && rip >= BigInt(SYS_BASE)) return this.#describeFault();
        const size = run[IO_SIZE];
        return `guest fault: ${out ? "out to" : "in from"} I/O port ${hex(port)} (${size} byte${
          size === 1 ? "" : "s"
        }${port === HCALL_PORT ? "; a hypercall is a 4-byte out" : ""}) at rip ${hex(rip)}`;
      }
      case KVM_EXIT_MMIO: {
        const addr = this.#runDv.getBigUint64(MMIO_ADDR, true);
        const w = run[MMIO_IS_WRITE] ? "write to" : "read from";
        return `guest fault: ${w} guest-physical ${hex(addr)}, outside RAM, at rip ${hex(rip)}`;
      }
      case KVM_EXIT_SHUTDOWN:
        return `guest fault: triple fault (shutdown) at rip ${hex(rip)}`;
      case KVM_EXIT_INTERNAL_ERROR:
        return `guest fault: KVM internal error (suberror ${this.#u32(INTERNAL_SUBERROR)}) at rip ${
          hex(rip)
        }`;
      default:
        return `guest fault: unexpected KVM exit ${reason} (${EXIT_REASON[reason] ?? "?"}) at rip ${
          hex(rip)
        }`;
    }
  }

  /** A ring-0 stub reported an exception: read its frame from the stub stack. */
  #describeFault(): string {
    const vector = this.#run[this.#u32(IO_DATA_OFFSET)];
    // syscall left the address after it in RCX (unless the guest jumped to
    // the stub itself: then RCX is anything and the address is not named).
    const syscall = () => {
      const rcx = this.#runDv.getBigUint64(REGS + R.rcx, true);
      const at = rcx >= 2n && rcx <= BigInt(this.memory.length) &&
          this.memory[Number(rcx) - 2] === 0x0f && this.memory[Number(rcx) - 1] === 0x05
        ? ` at rip ${hex(rcx - 2n)}`
        : null;
      return at === null ? null : `guest fault: invalid opcode: instruction syscall${at}`;
    };
    if (vector === SYSCALL_VECTOR) return syscall() ?? "guest fault: invalid opcode: syscall";
    const rsp = Number(this.#runDv.getBigUint64(REGS + R.rsp, true)) - SYS_BASE;
    const sysDv = new DataView(this.#sys.buffer, this.#sys.byteOffset, this.#sys.byteLength);
    const err = HAS_ERROR_CODE.has(vector);
    const frame = err ? rsp + 8 : rsp;
    if (frame < 0x1000 || frame + 40 > SYS_SIZE) {
      return `guest fault: exception ${vector} with a bad stub stack`;
    }
    const code = err ? sysDv.getBigUint64(rsp, true) : 0n;
    const rip = sysDv.getBigUint64(frame, true);
    // PVM runs the LSTAR target at CPL3: the fetch from the stub faults.
    if (vector === 14 && rip === BigInt(SYS_BASE + SYSCALL_STUB)) {
      const line = syscall();
      if (line !== null) return line;
    }
    const name = vector === 0xff
      ? "unexpected interrupt"
      : VECTORS[vector] ?? `exception ${vector}`;
    let detail = "";
    if (vector === 14) {
      const cr2 = this.#cr2();
      const c = Number(code);
      const what = c & 16 ? "instruction fetch from" : c & 2 ? "write to" : "read from";
      const where = cr2 >= BigInt(SYS_BASE) && cr2 < BigInt(SYS_BASE + SYS_SIZE)
        ? " (the host's page tables and descriptor tables)"
        : cr2 >= BigInt(this.#top)
        ? " (outside guest RAM)"
        : "";
      detail = `: ${what} ${hex(cr2)}${where}`;
    } else if (vector === 13 || vector === 6) {
      const insn = this.#instructionAt(rip);
      detail = insn
        ? `: ${vector === 13 ? "privileged " : ""}instruction ${insn}`
        : code
        ? ` (error code ${hex(code)})`
        : "";
    }
    return `guest fault: ${name}${detail} at rip ${hex(rip)}`;
  }

  #cr2(): bigint {
    const sregs = new Uint8Array(312);
    if (sys().ioctl_buf(this.#vm.vcpuFd, KVM.GET_SREGS, sregs) !== 0) return 0n;
    return new DataView(sregs.buffer).getBigUint64(232, true);
  }

  /** Name a privileged instruction at guest address `rip`, if it is one we know. */
  #instructionAt(rip: bigint): string | null {
    if (rip + 3n > BigInt(this.#top)) return null;
    const m = this.memory;
    let a = Number(rip);
    // Skip legacy and REX prefixes (at most 4: `48 0f 07` is sysretq).
    for (let n = 0; n < 4 && a + 3 < m.length && PREFIXES.has(m[a]); n++) a++;
    const b0 = m[a], b1 = m[a + 1], b2 = m[a + 2];
    if (b0 === 0xf4) return "hlt";
    if (b0 === 0xfa) return "cli";
    if (b0 === 0xfb) return "sti";
    if (b0 === 0xcf) return "iret";
    if (b0 === 0xcd) return `int ${hex(b1)}`;
    if (b0 === 0xcc) return "int3";
    if (b0 === 0x0f) {
      if (b1 === 0x20 || b1 === 0x22) return "mov to/from a control register";
      if (b1 === 0x21 || b1 === 0x23) return "mov to/from a debug register";
      if (b1 === 0x0b) return "ud2";
      if (b1 === 0x05) return "syscall";
      if (b1 === 0x07) return "sysret";
      if (b1 === 0x35) return "sysexit";
      if (b1 === 0x33) return "rdpmc";
      if (b1 === 0x34) return "sysenter";
      if (b1 === 0x30) return "wrmsr";
      if (b1 === 0x32) return "rdmsr";
      if (b1 === 0x06) return "clts";
      if (b1 === 0x09) return "wbinvd";
      if (b1 === 0x08) return "invd";
      if (b1 === 0x00) return "an LDT/TR instruction";
      if (b1 === 0x01) {
        const named: Record<number, string> = {
          0xc1: "vmcall",
          0xc2: "vmlaunch",
          0xc3: "vmresume",
          0xc4: "vmxoff",
          0xc8: "monitor",
          0xc9: "mwait",
          0xca: "clac",
          0xcb: "stac",
          0xd0: "xgetbv",
          0xd1: "xsetbv",
          0xd8: "vmrun",
          0xd9: "vmmcall",
          0xf8: "swapgs",
          0xf9: "rdtscp",
        };
        if (b2 >= 0xc0) return named[b2] ?? `0f 01 ${b2.toString(16)}`;
        const reg = (b2 >> 3) & 7;
        return ["sgdt", "sidt", "lgdt", "lidt", "smsw", "0f 01 /5", "lmsw", "invlpg"][reg];
      }
    }
    return null;
  }

  #release(vm: Vm): void {
    if (this.#released) return;
    this.#released = true;
    if (--liveGuests === 0 && turnWaiters.length === 0) closeTurnChannel();
    const s = sys();
    if (vm.run) s.munmap(vm.run, BigInt(vm.runSize));
    if (vm.vcpuFd >= 0) s.close(vm.vcpuFd);
    if (vm.vmFd >= 0) s.close(vm.vmFd);
    // Views of RAM may still be held (a device, a pending write): drop the
    // pages now and unmap the range when the last view is garbage.
    if (vm.ram) releaseRegion(vm.ram, this.#top);
    if (vm.sysArea) releaseRegion(vm.sysArea, SYS_SIZE);
  }
}
