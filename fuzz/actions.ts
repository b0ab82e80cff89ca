/**
 * Fuzzer: the actions of a run. Every action is plain data with all of its
 * values fixed (no randomness left), so a recorded list replays exactly and
 * any sub-list is still a valid run (delta debugging removes actions freely).
 *
 * Slots 0..3 are fuzzed guests, 4 and 5 the known-good pair.
 *
 * @module
 */

import { HCALL_NAMES } from "../abi/constants.ts";

/** A hypercall [eax, edx, ebx, ecx]; several are flattened in groups of 4. */
export type Call = number[];

/** One step of a run. */
export type Action =
  /** The guest makes one hypercall; `nest[i]` is the i-th IRQ handler's hypercalls. */
  | { k: "hc"; g: number; c: Call; nest?: Call[] }
  /** The guest writes u32 values from `at` (its own memory, below top). */
  | { k: "w"; g: number; at: number; v: number[] }
  /** The guest writes one byte. */
  | { k: "b"; g: number; at: number; v: number }
  /** The guest writes a lguest_dma at `at`: `s` is [addr, len, addr, len, …]. */
  | { k: "dma"; g: number; at: number; used: number; s: number[] }
  /** The Launcher writes `w` to the guest's /dev/lguest (`foreign`: from another task). */
  | { k: "req"; g: number; w: number[]; foreign?: boolean }
  /** The guest computes for `ms` without hypercalls, then its loop's fuel check asks preempt(). */
  | { k: "spin"; g: number; ms: number }
  /** The Launcher kills the guest (a timeout, a signal, a device's fatal error). */
  | { k: "kill"; g: number }
  /** The Launcher's GETDMA on `key`, fills the buffer with up to `n` bytes, raises its IRQ. */
  | { k: "getdma"; g: number; key: number; n: number }
  /** One read() round trip (the Waker breaks it out); a returned DMA is served. */
  | { k: "read"; g: number; nest?: Call[] }
  /** close() while a read() is in flight. */
  | { k: "closeread"; g: number }
  /** Start a read(); while it is in flight (asleep, or between guest runs) do `a`; then break it out. */
  | { k: "inflight"; g: number; a: Action }
  /** close, open, LHREQ_INITIALIZE (pfn), map the shared page, LGUEST_INIT at `ld`. */
  | { k: "reopen"; g: number; pfn: number; ld: number; init: boolean; inline: number }
  /** Open an extra /dev/lguest and LHREQ_INITIALIZE it with `w`, or close the oldest. */
  | { k: "extra"; w: number[]; close: boolean }
  /** Advance the virtual clock (guest timers fire). */
  | { k: "tick"; ms: number }
  /** The known-good pair's exchange and checks (see World.knownGood). */
  | { k: "kg"; n: number; dir: number; tx: number[]; rx: number[]; fz: number };

function h(v: number): string {
  return "0x" + (v >>> 0).toString(16);
}

function call(c: Call, i = 0): string {
  const nr = c[i] >>> 0;
  const name = HCALL_NAMES[nr] ?? `hypercall ${nr}`;
  return `${name}(${h(c[i + 1] ?? 0)}, ${h(c[i + 2] ?? 0)}, ${h(c[i + 3] ?? 0)})`;
}

function calls(c: Call): string {
  const out: string[] = [];
  for (let i = 0; i < c.length; i += 4) out.push(call(c, i));
  return out.join("; ");
}

function nest(n: Call[] | undefined): string {
  if (!n || n.length === 0) return "";
  return " — IRQ handlers: " + n.map((c) => `[${calls(c)}]`).join(" ");
}

function sections(s: number[]): string {
  const out: string[] = [];
  for (let i = 0; i < s.length; i += 2) out.push(`${s[i + 1]}@${h(s[i])}`);
  return out.join(", ");
}

const REQ: Record<number, string> = { 0: "INITIALIZE", 1: "GETDMA", 2: "IRQ", 3: "BREAK" };

/** One line describing an action. */
export function formatAction(a: Action): string {
  switch (a.k) {
    case "hc":
      return `g${a.g}: hypercall ${calls(a.c)}${nest(a.nest)}`;
    case "w":
      return `g${a.g}: guest writes u32 ${a.v.map(h).join(" ")} at ${h(a.at)}`;
    case "b":
      return `g${a.g}: guest writes byte ${h(a.v)} at ${h(a.at)}`;
    case "dma":
      return `g${a.g}: guest writes lguest_dma at ${h(a.at)}: used_len ${a.used}, [${
        sections(a.s)
      }]`;
    case "req": {
      const name = a.w.length ? (REQ[a.w[0] >>> 0] ?? `request ${a.w[0] >>> 0}`) : "(empty)";
      return `g${a.g}: ${a.foreign ? "another task" : "Launcher"} writes ${name} [${
        a.w.map(h).join(", ")
      }]`;
    }
    case "getdma":
      return `g${a.g}: Launcher GETDMA key ${h(a.key)}, fill ${a.n} bytes, IRQ`;
    case "read":
      return `g${a.g}: Launcher read() round trip${nest(a.nest)}`;
    case "closeread":
      return `g${a.g}: Launcher close() during read()`;
    case "inflight":
      return `g${a.g}: Launcher read() in flight, meanwhile: ${formatAction(a.a)}`;
    case "kill":
      return `g${a.g}: Launcher kills the guest`;
    case "spin":
      return `g${a.g}: guest computes ${a.ms} ms without hypercalls (fuel check: preempt())`;
    case "reopen":
      return `g${a.g}: close; open; INITIALIZE pfn_limit ${h(a.pfn)}; ` +
        (a.init ? `LGUEST_INIT ${h(a.ld)}` : "no LGUEST_INIT") +
        (a.inline ? `; inline output handler mode ${a.inline}` : "");
    case "extra":
      return a.close
        ? "extra: close the oldest extra /dev/lguest"
        : `extra: open /dev/lguest, write [${a.w.map(h).join(", ")}]`;
    case "tick":
      return `clock +${a.ms} ms`;
    case "kg":
      return `known-good exchange #${a.n} (${a.dir ? "g4→g5" : "g5→g4"}), tx [${
        sections(a.tx)
      }], rx [${sections(a.rx)}], extra send on shared offset ${a.fz}`;
  }
}
