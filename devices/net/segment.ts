/**
 * The inter-guest segment backend (`--net segment:NAME`), as lguest's
 * `--sharenet` (protocol §10.4b).
 *
 * Every member guest maps the segment's one page: the table of 682
 * `lguest_net` slots where guests publish their MACs. Keys in the page
 * canonicalise to the segment (the Futex Trick), so a send to
 * `peer_key(i) = page + 4i` lands straight in the buffers the guest in
 * slot i bound there, with its IRQ; the Launcher is never involved.
 *
 * Each wasm guest has its own copy of the page. The segment keeps the
 * canonical table: a guest's own slot is published, and peers' slots are
 * refreshed into its copy, at its BIND_DMA, SEND_DMA and HALT and when it
 * resumes (a version number makes the common case a 6-byte compare).
 *
 * @module
 */

import { LGUEST_DEVICE_T_NET, LGUEST_NET_F_NOCSUM, LGUEST_NET_SLOTS } from "../../abi/constants.ts";
import type { Guest } from "../../host/guest.ts";
import type { Host } from "../../host/host.ts";
import type { Device, DeviceContext, FrameSink } from "../registry.ts";
import { UsageError } from "../registry.ts";

const SLOT = 6;

interface Member {
  slot: number;
  pageAddr: number;
  seen: number;
}

/** One named segment in one host. */
export class Segment {
  readonly host: Host;
  readonly name: string;
  readonly objectId: number;
  /** The canonical MAC table. */
  readonly page = new Uint8Array(4096);
  readonly members = new Map<Guest, Member>();
  readonly #slots = new Set<number>();
  readonly sinks = new Set<FrameSink>();
  #version = 1;
  /**
   * Last frame recorded per sender and the peers it reached, so a
   * broadcast (N unicast DMAs of one buffer) is captured once, while the
   * same frame sent again (an ARP retry) reaches a peer it already reached
   * and is captured again.
   */
  readonly #last = new Map<Guest, { udma: number; frame: Uint8Array; to: Set<Guest> }>();
  /** Frames captured. */
  captured = 0;

  private constructor(host: Host, name: string) {
    this.host = host;
    this.name = name;
    this.objectId = host.allocObjectId();
  }

  static #all = new WeakMap<Host, Map<string, Segment>>();

  /** The segment NAME of `host`, created on first use. */
  static get(host: Host, name: string): Segment {
    let byName = Segment.#all.get(host);
    if (!byName) Segment.#all.set(host, byName = new Map());
    let s = byName.get(name);
    if (!s) byName.set(name, s = new Segment(host, name));
    return s;
  }

  /** Reserve the lowest free slot (find_slot). */
  takeSlot(): number {
    for (let i = 0; i < LGUEST_NET_SLOTS; i++) {
      if (!this.#slots.has(i)) {
        this.#slots.add(i);
        return i;
      }
    }
    throw new UsageError(`segment ${this.name}: no free slots`);
  }

  join(g: Guest, slot: number, pageAddr: number): void {
    this.members.set(g, { slot, pageAddr, seen: 0 });
    this.sync(g);
  }

  /** Publish g's own slot and refresh its view of the others. */
  sync(g: Guest): void {
    const m = this.members.get(g);
    if (!m) return;
    const view = g.mem.bytes.subarray(m.pageAddr, m.pageAddr + 4096);
    const off = m.slot * SLOT;
    for (let i = 0; i < SLOT; i++) {
      if (view[off + i] !== this.page[off + i]) {
        this.page.set(view.subarray(off, off + SLOT), off);
        this.#version++;
        break;
      }
    }
    if (m.seen === this.#version) return;
    m.seen = this.#version;
    view.set(this.page.subarray(0, off));
    view.set(this.page.subarray(off + SLOT), off + SLOT);
  }

  /** A member leaves: its slot is cleared, so peers stop sending to it. */
  leave(g: Guest | undefined, slot: number): void {
    if (g) this.members.delete(g);
    this.#slots.delete(slot);
    this.page.fill(0, slot * SLOT, slot * SLOT + SLOT);
    this.#version++;
    if (g) this.#last.delete(g);
    if (this.members.size === 0) this.#stopCapture();
  }

  /** Record segment traffic into `sink` (pcap). */
  capture(sink: FrameSink): void {
    this.sinks.add(sink);
    this.host.dma.observe(this.objectId, (src, udma, dst, el, count) => {
      const sections = dst.mem.sections(el);
      if (typeof sections === "string") return;
      const frame = new Uint8Array(count);
      let n = 0;
      for (const s of sections) {
        if (n >= count) break;
        const part = s.subarray(0, count - n);
        frame.set(part, n);
        n += part.length;
      }
      const last = this.#last.get(src);
      if (last && last.udma === udma && !last.to.has(dst) && equal(last.frame, frame)) {
        last.to.add(dst); // another copy of a broadcast
        return;
      }
      this.#last.set(src, { udma, frame, to: new Set([dst]) });
      this.captured++;
      for (const s of this.sinks) s.frame(frame);
    });
  }

  #stopCapture(): void {
    this.host.dma.observe(this.objectId, null);
    this.sinks.clear();
  }
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** A guest's net device on a segment. */
export class SegmentNetDevice implements Device {
  readonly type = LGUEST_DEVICE_T_NET;
  readonly numPages = 1;
  readonly name: string;
  readonly #sinks: FrameSink[];
  #segment: Segment | null = null;
  #slot = -1;
  #guest: Guest | undefined;

  constructor(name: string, sinks: FrameSink[]) {
    this.name = name;
    this.#sinks = sinks;
  }

  get label(): string {
    return `net: segment ${this.name}${this.#slot >= 0 ? `, slot ${this.#slot}` : ""}`;
  }

  /** Slot | NOCSUM (no RANDOMNESS), as --sharenet. */
  get features(): number {
    return (this.#slot < 0 ? 0 : this.#slot) | LGUEST_NET_F_NOCSUM;
  }

  /** The segment, once joined. */
  get segment(): Segment | null {
    return this.#segment;
  }

  init(ctx: DeviceContext): void {
    const seg = Segment.get(ctx.host, this.name);
    this.#segment = seg;
    this.#slot = seg.takeSlot();
    this.#guest = ctx.guest;
    for (const s of this.#sinks) seg.capture(s);
    // The guest may bind only its own receive key, peer_key(slot) = page + 4 * slot:
    // binding another slot's key would take that guest's frames (the original
    // allowed it; see docs/deviations.md).
    const slot = this.#slot;
    ctx.mapShared(seg.objectId, (g) => seg.sync(g), (_g, offset) => offset === 4 * slot);
    seg.join(ctx.guest, this.#slot, ctx.pageAddr);
  }

  close(): void {
    if (this.#segment && this.#slot >= 0) this.#segment.leave(this.#guest, this.#slot);
    this.#slot = -1;
  }
}
