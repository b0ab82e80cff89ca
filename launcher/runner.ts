/**
 * Launcher: run one or several guests in one host.
 *
 * The guest with stdio gets stdin and stdout; every other guest's console
 * output goes to stdout with a `[name] ` prefix at each line start, and it
 * gets no input. When the stdio guest ends, the others are stopped and the
 * run exits with its code; with no stdio guest the run ends when all have
 * ended (exit 0 only if all powered off).
 *
 * @module
 */

import { type ConsoleBackend, ConsoleDevice, stdioBackend } from "../devices/console.ts";
import { type Device, type DeviceEnv, deviceKinds, UsageError } from "../devices/registry.ts";
import { RngDevice } from "../devices/rng.ts";
import { acquirePcap, releasePcap } from "../devices/net/pcap.ts";
import { compileImage, describePreemption, ImageError, WasmCpu } from "../engines/wasm.ts";
import { Host } from "../host/host.ts";
import type { GuestPlan } from "./config.ts";
import { EXIT, MAX_PASSED_STATUS } from "./exit.ts";
import { loadImage } from "./images.ts";
import { GuestRun, type Outcome } from "./launcher.ts";
import { STALE_MS, Supervisor } from "./supervisor.ts";

/** Options of a whole run. */
export interface RunOptions {
  timeoutMs: number;
  verbose?: (line: string) => void;
  /** `--pcap FILE`: every frame of every net device. */
  pcap?: string;
  /** Parse a memory size (the CLI's rules). */
  parseSize(text: string): number;
  defaultMemory: number;
}

/** Console output of a guest without stdio: `[name] ` at each line start. */
export function prefixBackend(name: string, out: (b: Uint8Array) => void): ConsoleBackend {
  const prefix = new TextEncoder().encode(`[${name}] `);
  let lineStart = true;
  return {
    // No read: this console has no input (and so no end of input either).
    write(data) {
      let from = 0;
      for (let i = 0; i < data.length; i++) {
        if (lineStart) {
          out(prefix);
          lineStart = false;
        }
        if (data[i] === 0x0a) {
          out(data.subarray(from, i + 1));
          from = i + 1;
          lineStart = true;
        }
      }
      if (from < data.length) out(data.subarray(from));
    },
  };
}

interface Prepared {
  plan: GuestPlan;
  devices: Device[];
  console: ConsoleDevice;
  module: WebAssembly.Module;
  memory: number;
  name: string;
}

async function prepare(plan: GuestPlan, env: DeviceEnv, opts: RunOptions): Promise<Prepared> {
  const where = (msg: string) => (plan.stdio && plan.name === "" ? msg : `${plan.name}: ${msg}`);
  try {
    const memory = plan.memory === undefined ? opts.defaultMemory : opts.parseSize(plan.memory);
    const image = await loadImage(plan.image);
    const module = await compileImage(image.bytes, image.name);
    opts.verbose?.(`${plan.name || image.name}: ${describePreemption(module)}`);
    const devices: Device[] = [];
    for (const [option, value] of plan.devices) {
      const kind = deviceKinds().find((k) => k.option === option)!;
      devices.push(await kind.create(kind.parse(value), env));
    }
    if (devices.length >= 15) {
      throw new UsageError("too many devices: a guest has at most 14 plus the rng and the console");
    }
    devices.push(new RngDevice());
    const stdout = stdioBackend();
    const backend = plan.stdio ? stdout : prefixBackend(plan.name, (b) => stdout.write(b));
    const console_ = new ConsoleDevice(backend, plan.stdio ? "console: stdio" : "console: output");
    devices.push(console_);
    return { plan, devices, console: console_, module, memory, name: plan.name || image.name };
  } catch (e) {
    if (e instanceof UsageError) throw new UsageError(where(e.message));
    if (e instanceof ImageError) throw new ImageError(where(e.message));
    throw e;
  }
}

/** Run the guests; returns the process exit code. */
export async function runGuests(plans: GuestPlan[], opts: RunOptions): Promise<number> {
  const pcap = opts.pcap ? acquirePcap(opts.pcap) : undefined;
  const env: DeviceEnv = { pcap };
  const prepared: Prepared[] = [];
  const closeAll = async () => {
    for (const p of prepared) for (const d of p.devices) await d.close?.();
    if (pcap) releasePcap(pcap);
  };
  try {
    for (const plan of plans) prepared.push(await prepare(plan, env, opts));
  } catch (e) {
    await closeAll();
    throw e;
  }
  const stdioGuest = prepared.find((p) => p.plan.stdio);
  const supervisor = new Supervisor({
    timeoutMs: opts.timeoutMs,
    terminal: stdioGuest !== undefined && Deno.stdin.isTerminal(),
  });
  const host = new Host({ yieldOnFull: true });
  const runs: GuestRun[] = [];
  try {
    for (const p of prepared) {
      runs.push(
        await GuestRun.create(host, {
          name: p.name,
          memory: p.memory,
          cmdline: p.plan.args,
          devices: p.devices,
          makeCpu: (bytes) => new WasmCpu(p.module, bytes),
          verbose: opts.verbose,
        }),
      );
    }
  } catch (e) {
    supervisor.close();
    for (const r of runs) r.stop(EXIT.GUEST_FAILED, "start-up failed");
    await closeAll();
    if (e instanceof ImageError || e instanceof UsageError) throw e;
    throw new ImageError((e as Error).message);
  }
  const stopAll = (code: number, why: string) => runs.forEach((r) => r.stop(code, why));
  supervisor.onStop(stopAll);
  let notResponding: ReturnType<typeof setTimeout> | undefined;
  if (stdioGuest) {
    const file = runs[prepared.indexOf(stdioGuest)].file;
    supervisor.onInterrupt(() => {
      stdioGuest.console.interrupt();
      // A guest spinning without hypercalls never reads its Ctrl-C; it is
      // preempted, so the Launcher hears the signal, but the guest does not.
      // As when such a guest blocked the whole process (supervisor.ts): a
      // guest that is running and has made no hypercall for STALE_MS is not
      // responding, and the Ctrl-C ends the run.
      const g = file.guest;
      const before = g?.counters.hypercalls;
      clearTimeout(notResponding);
      notResponding = setTimeout(() => {
        if (g && g.dead === null && !g.halted && g.counters.hypercalls === before) {
          stopAll(EXIT.SIGNAL_BASE + 2, "ended by SIGINT (guest not responding)");
        }
      }, STALE_MS);
    });
  }
  let outcomes: Outcome[];
  try {
    await supervisor.ready;
    const done = runs.map((r, i) =>
      r.run().then((o) => {
        // What the host still holds once this guest is gone (its slot, bindings released).
        opts.verbose?.(
          `${prepared[i].name}: gone; the host holds ${host.count} guest(s), ` +
            `${host.dma.bindingCount} DMA binding(s)`,
        );
        if (prepared[i] === stdioGuest) stopAll(o.code, `stopped: ${stdioGuest.name} ended`);
        return o;
      })
    );
    outcomes = await Promise.all(done);
  } finally {
    clearTimeout(notResponding);
    supervisor.close();
    if (pcap) releasePcap(pcap);
  }
  const several = runs.length > 1;
  outcomes.forEach((o, i) => {
    const name = prepared[i].name;
    if (opts.verbose) {
      const c = runs[i].file.guest?.counters;
      if (c) opts.verbose(`${name}: counters ${JSON.stringify(c)}`);
    }
    if (o.status === 0) opts.verbose?.(`${name}: powered off`);
    else if (o.status !== undefined && o.status === o.code) {
      opts.verbose?.(`${name}: exited with status ${o.status}`);
    } else if (o.status !== undefined) {
      console.error(
        `lguest: ${name}: exited with status ${o.status} (exit code ${o.code}: ` +
          `statuses above ${MAX_PASSED_STATUS} are reported as ${EXIT.STATUS_HIGH})`,
      );
    } else if (!(several && o.reason.startsWith("stopped: "))) {
      console.error(`lguest: ${name}: ${o.reason}`);
    }
  });
  if (stdioGuest) return outcomes[prepared.indexOf(stdioGuest)].code;
  return outcomes.find((o) => o.code !== EXIT.OK)?.code ?? EXIT.OK;
}
