/**
 * The Linux calls the KVM engine needs, through Deno FFI to libc:
 * `/dev/kvm` ioctls, anonymous mappings for guest RAM, and a per-thread
 * POSIX timer that kicks a running vCPU out of `KVM_RUN` at the end of a
 * time slice. Numbers and struct offsets are x86-64 Linux (checked against
 * the kernel headers; see `docs/design-notes.md` "KVM engine").
 *
 * @module
 */

import { ERRNO, libc } from "../sys/libc.ts";

/** ioctl numbers (x86-64). */
export const KVM = {
  GET_API_VERSION: 0xae00n,
  CREATE_VM: 0xae01n,
  CHECK_EXTENSION: 0xae03n,
  GET_VCPU_MMAP_SIZE: 0xae04n,
  CREATE_VCPU: 0xae41n,
  SET_USER_MEMORY_REGION: 0x4020ae46n,
  RUN: 0xae80n,
  GET_REGS: 0x8090ae81n,
  SET_REGS: 0x4090ae82n,
  GET_SREGS: 0x8138ae83n,
  SET_SREGS: 0x4138ae84n,
  SET_MSRS: 0x4008ae89n,
  GET_TSC_KHZ: 0xaea3n,
} as const;

/** Capabilities we check. */
export const CAP = { USER_MEMORY: 3n, SYNC_REGS: 74n, IMMEDIATE_EXIT: 136n } as const;

/** kvm_run exit reasons. */
export const EXIT_REASON: Record<number, string> = {
  0: "unknown exit",
  1: "exception exit",
  2: "I/O",
  3: "hypercall exit",
  4: "debug exit",
  5: "hlt",
  6: "MMIO (access to guest-physical memory that is not RAM)",
  7: "interrupt window",
  8: "triple fault (shutdown)",
  9: "failed VM entry",
  10: "interrupted",
  17: "KVM internal error",
};

const SYMBOLS = {
  open: { parameters: ["buffer", "i32", "i32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  ioctl: { parameters: ["i32", "u64", "u64"], result: "i32" },
  ioctl_buf: { name: "ioctl", parameters: ["i32", "u64", "buffer"], result: "i32" },
  mmap: { parameters: ["pointer", "usize", "i32", "i32", "i32", "i64"], result: "pointer" },
  munmap: { parameters: ["pointer", "usize"], result: "i32" },
  madvise: { parameters: ["pointer", "usize", "i32"], result: "i32" },
  gettid: { parameters: [], result: "i32" },
  access: { parameters: ["buffer", "i32"], result: "i32" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  sigaction: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  timer_create: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  timer_settime: { parameters: ["u64", "i32", "buffer", "buffer"], result: "i32" },
  // Only its address is used: a C function that ignores its argument, as
  // the timer signal's handler (no JS runs on the signal).
  getpid: { type: "pointer" },
} as const;

type Lib = Deno.DynamicLibrary<typeof SYMBOLS>;
let lib: Lib | null = null;

/** libc's symbols for KVM (dlopen on first use; also makes sys/libc.ts's ERRNO view). */
export function sys(): Lib["symbols"] {
  if (lib === null) {
    libc();
    lib = Deno.dlopen("libc.so.6", SYMBOLS);
  }
  return lib.symbols;
}

/** errno, read as `ERRNO[0]` right after the failing call (see sys/libc.ts). */
export { ERRNO };

export const EINTR = 4;
export const EAGAIN = 11;
export const EACCES = 13;
export const ENOENT = 2;

const PROT_RW = 3;
const MAP_PRIVATE = 0x02;
const MAP_ANONYMOUS = 0x20;
const MAP_NORESERVE = 0x4000;
const MADV_DONTNEED = 4;
const MAP_FAILED = 0xffffffffffffffffn;

/** An anonymous private mapping (zeroed); mmap's errno if it failed. */
export function mapAnon(bytes: number): Deno.PointerObject | number {
  const p = sys().mmap(
    null,
    BigInt(bytes),
    PROT_RW,
    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
    -1,
    0n,
  );
  const e = ERRNO[0]; // before any other call (sys/libc.ts ERRNO); meaningless on success
  if (p === null || Deno.UnsafePointer.value(p) === MAP_FAILED) return e;
  return p;
}

/**
 * Where a mapping still has JS views that may be read, unmapping it would
 * make them crash the process. So a region is released in two steps:
 * {@link releaseRegion} drops its pages now (its views read zeros), and the
 * address range is unmapped once the ArrayBuffer over it is garbage.
 */
const unmapLater = new FinalizationRegistry<[bigint, number]>(([addr, bytes]) => {
  sys().munmap(Deno.UnsafePointer.create(addr), BigInt(bytes));
});

/** A live ArrayBuffer over a mapping, unmapped when the buffer is collected. */
export function viewRegion(p: Deno.PointerObject, bytes: number): ArrayBuffer {
  const buf = Deno.UnsafePointerView.getArrayBuffer(p, bytes);
  unmapLater.register(buf, [Deno.UnsafePointer.value(p) as bigint, bytes]);
  return buf;
}

/** Give a region's memory back to the kernel now (its views read zeros). */
export function releaseRegion(p: Deno.PointerObject, bytes: number): void {
  sys().madvise(p, BigInt(bytes), MADV_DONTNEED);
}

/** A NUL-terminated C string. */
export function cstr(s: string): Uint8Array<ArrayBuffer> {
  return new TextEncoder().encode(s + "\0") as Uint8Array<ArrayBuffer>;
}

// ---- The kick: a POSIX timer that signals this thread ----------------------

/** The real-time signal that kicks a vCPU out of KVM_RUN. */
export const KICK_SIGNAL = 44; // SIGRTMIN + 10 with glibc
const SA_RESTART = 0x10000000;
const CLOCK_MONOTONIC = 1;
const SIGEV_THREAD_ID = 4;

let kickTimer: bigint | null = null;
const itimer = new BigInt64Array(4) as BigInt64Array<ArrayBuffer>;

/**
 * Create (once) a timer that sends {@link KICK_SIGNAL} to the calling
 * thread, whose handler is a no-op C function installed with SA_RESTART:
 * the signal makes a running KVM_RUN return EINTR and nothing else
 * (syscalls it interrupts elsewhere are restarted).
 */
function kickTimerId(): bigint {
  if (kickTimer !== null) return kickTimer;
  const s = sys();
  const act = new Uint8Array(152);
  const dv = new DataView(act.buffer);
  dv.setBigUint64(0, Deno.UnsafePointer.value(s.getpid) as bigint, true);
  dv.setInt32(136, SA_RESTART, true);
  if (s.sigaction(KICK_SIGNAL, act, null) !== 0) {
    throw new Error(`kvm: sigaction(${KICK_SIGNAL}) failed: errno ${ERRNO[0]}`);
  }
  const sev = new Uint8Array(64);
  const sv = new DataView(sev.buffer);
  sv.setInt32(8, KICK_SIGNAL, true);
  sv.setInt32(12, SIGEV_THREAD_ID, true);
  sv.setInt32(16, s.gettid(), true);
  const id = new BigUint64Array(1);
  if (s.timer_create(CLOCK_MONOTONIC, sev, new Uint8Array(id.buffer)) !== 0) {
    throw new Error(`kvm: timer_create failed: errno ${ERRNO[0]}`);
  }
  kickTimer = id[0];
  return kickTimer;
}

/**
 * Arm the kick: a signal after `ms`, then every `ms` until disarmed (a
 * signal that lands between two KVM_RUNs is lost; the next one is not).
 * `ms` 0 disarms.
 */
export function armKick(ms: number): void {
  const id = kickTimerId();
  const ns = BigInt(Math.round(ms * 1e6));
  const sec = ns / 1000000000n, nsec = ns % 1000000000n;
  itimer[0] = sec;
  itimer[1] = nsec;
  itimer[2] = sec;
  itimer[3] = nsec;
  sys().timer_settime(id, 0, new Uint8Array(itimer.buffer), null);
}
