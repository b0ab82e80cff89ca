/**
 * `hypercall.nop.wasm`: NOP hypercalls (LHCALL_FLUSH_ASYNC) per second from
 * wasm through the real Host port, against the same wasm loop calling a
 * bare JS import. Both loops are the same bytes (`wasm_loop.ts`).
 *
 * @module
 */

import { LHCALL_LGUEST_INIT, LHREQ_INITIALIZE } from "../abi/constants.ts";
import type { GuestCpu } from "../engines/engine.ts";
import { hcallImport } from "../engines/wasm.ts";
import { Host } from "../host/host.ts";
import { hcallLoopModule } from "./wasm_loop.ts";
import { type Metric, metric, paired } from "./lib.ts";

const N = 2_000_000;

function instantiate(mod: WebAssembly.Module, hcall: unknown): (n: number) => void {
  const inst = new WebAssembly.Instance(mod, { env: { hcall } } as WebAssembly.Imports);
  return inst.exports.loop as (n: number) => void;
}

function rate(loop: (n: number) => void): number {
  const t = performance.now();
  loop(N);
  return N / ((performance.now() - t) / 1000);
}

/** Measure the metric. */
export async function benchHypercall(): Promise<Metric> {
  const mod = await WebAssembly.compile(hcallLoopModule() as Uint8Array<ArrayBuffer>);
  const ram = new Uint8Array(1 << 20);
  const cpu: GuestCpu = { memory: ram, attach() {}, run: () => Promise.resolve(), close() {} };
  const file = new Host().open(cpu);
  file.write([LHREQ_INITIALIZE, ram.length / 4096, 0, 0, 0]);
  file.hypercall(LHCALL_LGUEST_INIT, 0x10000, 0, 0); // lguest_data at 64 KiB
  ram.fill(0xff, 0x10000 + 20, 0x10000 + 84); // hcall_status: ring empty
  const real = instantiate(mod, hcallImport({ port: file }));
  const bare = instantiate(mod, (eax: number) => eax);
  real(N / 10); // warm both up
  bare(N / 10);
  const p = await paired(() => rate(real), () => rate(bare), { min: 7, max: 41 });
  return metric("hypercall.nop.wasm", "calls/s", p, "bare wasm→JS import");
}
