/**
 * The engine interface: what runs guest code.
 *
 * An engine owns guest code and guest RAM and nothing else. The Host sees
 * RAM as one `Uint8Array` (guest-physical address = index) and drives the
 * guest through {@link GuestCpu.run}; the engine calls back into the Host
 * through a {@link HypercallPort} at every hypercall. Host and devices never
 * know which engine runs a guest.
 *
 * @module
 */

/** `hypercall()` returns this when the guest must ask `event()` next. */
export const LG_EVENT = 0xffffffff;
/** `event()`: the guest must call the suspending `wait()` and ask again. */
export const LG_EV_WAIT = 0x100;
/** `event()`: bit 31 set means "done; EAX is in the low 31 bits". */
export const LG_EV_DONE = 0x80000000;

/** The Host side of a hypercall, as seen by an engine. */
export interface HypercallPort {
  /**
   * A trapped hypercall. Returns the new EAX if the guest may go straight
   * on, or {@link LG_EVENT} if it must run the event protocol.
   */
  hypercall(eax: number, edx: number, ebx: number, ecx: number): number;
  /**
   * The next event for the guest: an IRQ 0..31 to run now, {@link LG_EV_WAIT},
   * or `LG_EV_DONE | eax` when the hypercall is finished.
   */
  event(): number;
  /** The guest's death reason, or null while alive. */
  readonly dead: string | null;
  /** Kill the guest (a trap in guest code, a runaway guest, …). */
  kill(reason: string): void;
  /**
   * A preemption check from guest code between hypercalls (an instrumented
   * loop ran out of fuel). If the guest's time slice is used up, mark it
   * preempted and return true: the engine then stops the guest as for
   * {@link LG_EV_WAIT}, and the Host lets the event loop in before it
   * resumes it. Otherwise return false and the guest goes on.
   */
  preempt(): boolean;
}

/** One guest's virtual CPU plus RAM, as an engine provides it. */
export interface GuestCpu {
  /** Guest-physical RAM; its length bounds every pfn_limit. */
  readonly memory: Uint8Array;
  /**
   * The rate of the guest's tick counter in kHz (the wasm engine's
   * `env.rdtsc` counts nanoseconds: 1000000), written to
   * `lguest_data.tsc_khz` at LGUEST_INIT; 0 or undefined: no stable counter.
   */
  readonly tscKhz?: number;
  /** Connect the Host's hypercall port (done by LHREQ_INITIALIZE). */
  attach(port: HypercallPort): void;
  /**
   * Run (or resume) the guest until it stops at a wait point or dies. The
   * promise never rejects: faults become `port.kill()`.
   */
  run(): Promise<void>;
  /** Drop the guest for good (its fd was closed). */
  close(): void;
  /**
   * Optional: the Host may block inside {@link HypercallPort.event} while
   * the guest is halted (the halt wait in place, host/host.ts) and calls
   * this when the guest goes on after such a wait: the halted time was not
   * the guest's run time (the wasm engine's fuel refill measures that). An
   * engine without it never has event() block. `now`: the Host's clock
   * (sys/clock.ts nowMs) read just before, if it has it.
   */
  haltedInPlace?(now?: number): void;
}
