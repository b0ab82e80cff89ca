/**
 * The KVM engine's metrics (and the CPU-bound guest under both engines):
 *
 * - `hypercall.nop.kvm`: NOP hypercalls per second of a guest looping on
 *   `out` (the same 6 bytes as `kvm_nop.c`) through `engines/kvm.ts` and
 *   the real Host, against `kvm_nop.c`, a C program making the same KVM
 *   calls on the same guest in the same machine state (built here with the
 *   system compiler). Goal: ratio >= 0.9.
 * - `boot.first_byte.kvm`: `lguest run --engine kvm hello`, process start
 *   to first byte, against Deno printing one byte (as `boot.first_byte`).
 * - `block.read.seq.kvm`: `block.read.seq` with the shell under KVM.
 * - `cpu.crc32.kvm`, `cpu.crc32.wasm`: test-crc's CRC-32 over 64 MiB of
 *   its RAM (MB/s, timed by the guest's own clock) against the same C as a
 *   native host program (`crc_native.c`, gcc -O2).
 *
 * Without KVM, only `cpu.crc32.wasm` is measured and the reason is printed.
 *
 * @module
 */

import { LHCALL_LGUEST_INIT, LHREQ_BREAK, LHREQ_INITIALIZE } from "../abi/constants.ts";
import type { GuestCpu } from "../engines/engine.ts";
import { KvmCpu, kvmUnavailable, type X86Image } from "../engines/kvm.ts";
import { Host } from "../host/host.ts";
import { benchBlockRead } from "./block.ts";
import { benchBoot } from "./boot.ts";
import { LGUEST_RUN, type Metric, metric, paired } from "./lib.ts";

const HERE = decodeURIComponent(new URL(".", import.meta.url).pathname);
/** Hypercalls per sample. */
const CALLS = 20_000;

/** Build `bench/NAME.c` with the system compiler into `dir`; returns the binary. */
async function cc(name: string, dir: string): Promise<string> {
  const out = `${dir}/${name}`;
  const r = await new Deno.Command("cc", {
    args: ["-O2", "-o", out, `${HERE}${name}.c`],
    stderr: "piped",
  }).output();
  if (!r.success) throw new Error(`bench: cc ${name}.c: ${new TextDecoder().decode(r.stderr)}`);
  return out;
}

async function runTool(path: string, args: string[]): Promise<string> {
  const r = await new Deno.Command(path, { args, stderr: "piped" }).output();
  if (!r.success) throw new Error(`bench: ${path}: ${new TextDecoder().decode(r.stderr)}`);
  return new TextDecoder().decode(r.stdout);
}

/** The guest: xor eax,eax; out 0xF0,eax; jmp back (LHCALL_FLUSH_ASYNC forever). */
const NOP_LOOP: X86Image = {
  name: "nop-loop",
  entry: 0x100000,
  segments: [{
    addr: 0x100000,
    data: new Uint8Array([0x31, 0xc0, 0xe7, 0xf0, 0xeb, 0xfa]),
    memsz: 6,
  }],
  end: 0x100006,
};

/** Hypercalls/s of NOP_LOOP under the KVM engine and the Host: one sample. */
function nopSampler(): () => Promise<number> {
  const bytes = 2 << 20;
  const kvm = new KvmCpu(NOP_LOOP, bytes, bytes);
  let target = 0;
  // The engine's own run(), stopped (BREAK) once `target` calls are done.
  const cpu: GuestCpu = {
    memory: kvm.memory,
    tscKhz: kvm.tscKhz,
    attach: (p) => kvm.attach(p),
    async run() {
      await kvm.run();
      if (file.guest!.counters.hypercalls >= target) file.write([LHREQ_BREAK, 1]);
    },
    close: () => kvm.close(),
  };
  const file = new Host().open(cpu);
  file.write([LHREQ_INITIALIZE, bytes / 4096, 0, 0, 0]);
  file.hypercall(LHCALL_LGUEST_INIT, 0x10000, 0, 0); // lguest_data at 64 KiB
  kvm.memory.fill(0xff, 0x10000 + 20, 0x10000 + 84); // hcall_status: ring empty
  return async () => {
    const g = file.guest!;
    const start = g.counters.hypercalls;
    target = start + CALLS;
    const t = performance.now();
    await file.read(); // runs until the BREAK: EAGAIN
    const ms = performance.now() - t;
    file.write([LHREQ_BREAK, 0]);
    return (g.counters.hypercalls - start) / (ms / 1000);
  };
}

/** `hypercall.nop.kvm` alone (bench/run.ts runs it inside {@link benchKvm}). */
export async function benchNop(dir: string): Promise<Metric> {
  const ref = await cc("kvm_nop", dir);
  const sample = nopSampler();
  await sample(); // warm-up
  const p = await paired(
    sample,
    async () => Number(await runTool(ref, [String(CALLS)])),
    { min: 5, max: 15, tolerance: 0.15 },
  );
  return metric("hypercall.nop.kvm", "calls/s", p, "C, same KVM calls, same guest");
}

/** MB/s of one test-crc run under `engine`. */
async function crcGuest(engine: string): Promise<number> {
  const out = await runTool(Deno.execPath(), [
    ...LGUEST_RUN,
    "run",
    "--engine",
    engine,
    "-m",
    "80M",
    "test-crc",
    "--",
    "mb=64",
  ]);
  return crcRate(out);
}

function crcRate(out: string): number {
  const m = /crc: (\d+) MiB in ([\d.]+) ms, crc32 c7bc5b50/.exec(out);
  if (!m) throw new Error(`bench: unexpected crc output: ${out}`);
  return (Number(m[1]) * 1048576) / 1e6 / (Number(m[2]) / 1000);
}

async function benchCrc(engine: string, native: string): Promise<Metric> {
  const p = await paired(
    () => crcGuest(engine),
    async () => crcRate(await runTool(native, ["64"])),
    { min: 5, max: 11, tolerance: 0.15 },
  );
  return metric(`cpu.crc32.${engine}`, "MB/s", p, "the same C as a native program (gcc -O2)");
}

/** Measure the KVM metrics (and the CPU-bound guest under wasm). */
export async function benchKvm(): Promise<Metric[]> {
  const dir = await Deno.makeTempDir({ prefix: "lguest-bench-kvm-" });
  try {
    const native = await cc("crc_native", dir);
    const why = kvmUnavailable();
    const out: Metric[] = [];
    if (why !== null) {
      console.error(`bench: skipping the KVM metrics: ${why}`);
    } else {
      out.push(await benchNop(dir));
      out.push(...await benchBoot(["--engine", "kvm"], ".kvm"));
      out.push(await benchBlockRead(["--engine", "kvm"], ".kvm"));
      out.push(await benchCrc("kvm", native));
    }
    out.push(await benchCrc("wasm", native));
    return out;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
