/**
 * The tap backend (`--net tap:IFNAME[,ip=ADDR/PREFIX][,bridge=BR]`), as
 * lguest's `--tunnet` (protocol §10.4a).
 *
 * The host sits in slot 0 of the device page with the promiscuous bit in
 * its MAC, so the guest (slot 1, no NOCSUM: these frames can reach a real
 * network) sends every frame to key page+0, a private key that routes to
 * the Launcher, which writes it to the tap. Frames from the tap go in by
 * GETDMA on page+4, copy, used_len, IRQ; when the guest has no free buffer
 * the frame is dropped and counted, never written over unread data.
 *
 * `/dev/net/tun` is driven through libc by FFI (open, ioctl TUNSETIFF,
 * non-blocking read/write, poll on a worker thread of Deno's FFI).
 *
 * @module
 */

import {
  LGUEST_DEVICE_F_RANDOMNESS,
  LGUEST_DEVICE_T_NET,
  LGUEST_NET_PROMISC,
} from "../../abi/constants.ts";
import type { DmaRanges } from "../../host/memory.ts";
import type { Device, DeviceContext, FrameSink, InputBuffer } from "../registry.ts";
import { fillBuffer, UsageError } from "../registry.ts";
import {
  cstr,
  ERRNO,
  type Libc,
  libc,
  O_CLOEXEC,
  O_NONBLOCK,
  O_RDWR,
  pollFd,
  POLLIN,
} from "../../sys/libc.ts";
import { permissionMessage } from "../../launcher/exit.ts";
import { nowMs, poolOps } from "../../sys/clock.ts";
import { warn } from "../../sys/stdio.ts";

const TUNSETIFF = 0x400454ca;
const IFF_TAP = 0x0002;
const IFF_NO_PI = 0x1000;
const F_SETFL = 4;
const EAGAIN = 11;
const EBADFD = 77;
/** ETH_HLEN and ETH_HLEN + 1500: frames outside are malformed here. */
export const MIN_FRAME = 14;
export const MAX_FRAME = 1514;
/** Frames held for the guest between two input() calls. */
const QUEUE = 64;
/**
 * Reads of the tap one look (#drain) makes at most, frames dropped (queue
 * full, malformed) included: under a host-side flood the tap never runs
 * empty, and a look without a bound ran 49-175 ms (3 000 reads), holding
 * the event loop from the run's other guests, their input and the signals.
 * 64 reads are ~1 ms; the rest waits in the tap for the next look (the
 * poll thread's next poll finds it at once, the run loop's look comes
 * after the guest's turn), and no more is lost than a full queue drops
 * anyway: the queue holds 64, the kernel's tap queue 1000 (qlen).
 */
export const READS_PER_LOOK = 64;
/**
 * While frames come from the tap less than this apart (the last two, and
 * the last one this recently), the run loop may block on the tap's fd while
 * every guest sleeps (waitFds); otherwise an idle guest sleeps in the
 * event loop and the poll thread watches the tap. (Two frames: the
 * kernel's lone IPv6 multicast every few seconds does not count.)
 */
const HOT_MS = 250;

async function ip(args: string[]): Promise<void> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command("ip", { args, stdout: "null", stderr: "piped" }).output();
  } catch (e) {
    // ip= and bridge= run `ip`: without Deno's permission that is the flag to name, not iproute2.
    if (e instanceof Deno.errors.NotCapable) {
      throw new UsageError(
        `cannot run 'ip ${args.join(" ")}': ip= and bridge= need Deno's --allow-run=ip ` +
          `permission: run with 'deno run --allow-run=ip ...' (the installed lguest and ` +
          `'deno task lguest' have it)`,
      );
    }
    if (e instanceof Deno.errors.NotFound) {
      throw new UsageError(`cannot run 'ip ${args.join(" ")}' (is iproute2 installed?)`);
    }
    throw new UsageError(
      `cannot run 'ip ${args.join(" ")}': ${(e as Error).message.split("\n")[0]}`,
    );
  }
  if (!out.success) {
    const why = new TextDecoder().decode(out.stderr).trim().split("\n")[0];
    throw new UsageError(`ip ${args.join(" ")}: ${why}`);
  }
}

/** Counters of one tap device. */
export interface TapStats {
  /** Frames copied into a guest's receive buffer. */
  rxFrames: number;
  txFrames: number;
  /**
   * Frames that found no free receive buffer, or one with no room at all
   * (no sections: it is used up, used_len 0 and its interrupt, as before,
   * but nothing of the frame reached the guest).
   */
  rxDroppedNoBuffer: number;
  rxDroppedMalformed: number;
  rxDroppedQueue: number;
  txErrors: number;
  /** The most reads one look of the tap made (at most READS_PER_LOOK). */
  rxMostReadsPerLook: number;
}

/** A guest's net device on a host tap interface. */
export class TapNetDevice implements Device {
  readonly type = LGUEST_DEVICE_T_NET;
  readonly numPages = 1;
  /** Slot 1 (the guest), RANDOMNESS, no NOCSUM (§10.4a). */
  readonly features = 1 | LGUEST_DEVICE_F_RANDOMNESS;
  readonly label: string;
  readonly ifname: string;
  readonly stats: TapStats = {
    rxFrames: 0,
    txFrames: 0,
    rxDroppedNoBuffer: 0,
    rxDroppedMalformed: 0,
    rxDroppedQueue: 0,
    txErrors: 0,
    rxMostReadsPerLook: 0,
  };
  readonly #fd: number;
  readonly #sinks: FrameSink[];
  readonly #queue: Uint8Array[] = [];
  readonly #buf = new Uint8Array(65536);
  /** Where a frame sent in several pieces is gathered (16 sections of a page at most). */
  readonly #tx = new Uint8Array(65536);
  #ctx: DeviceContext | null = null;
  #closed = false;
  #fdClosed = false;
  /** When the last frame and the one before came from the tap (nowMs). */
  #lastFrame = -Infinity;
  #prevFrame = -Infinity;
  /**
   * Looks (poll()) that took frames straight into the guest since the last
   * stamp: their time is read at the next waitFds(), after the guest's
   * answer, not between the frame and the answer (a clock call less there;
   * the guest answers in microseconds, HOT_MS is 250 ms).
   */
  #unstamped = 0;
  /**
   * Keep a poll in flight on the poll thread (the guest sleeps in the event
   * loop, or no frame came yet); off once the run loop's blocking wait takes
   * a frame, on again by watch().
   */
  #watching = true;
  /**
   * A run loop with the blocking wait asks for this tap's fd (waitFds), so
   * it calls watch() before the guest sleeps: only then may poll() stop the
   * poll thread (an API run without the wait keeps it, as before the wait).
   */
  #waited = false;
  /** The last poll() found nothing. */
  #quiet = true;
  /** The guest's buffer taken for the frame that ends a wait in place (armWait), until poll(). */
  #armed: InputBuffer | null = null;
  /** Resolves the parked poll loop (watch(), close()). */
  #unpark: (() => void) | null = null;
  /** The poll loop: close() waits for it, so the fd is not closed under a poll in flight. */
  #pumping: Promise<void> | null = null;

  private constructor(ifname: string, fd: number, sinks: FrameSink[]) {
    this.ifname = ifname;
    this.#fd = fd;
    this.#sinks = sinks;
    this.label = `net: tap ${ifname}`;
  }

  /** Open /dev/net/tun, create or attach IFNAME, configure it. */
  static async open(
    ifname: string,
    opts: { ip?: string; bridge?: string },
    sinks: FrameSink[],
  ): Promise<TapNetDevice> {
    let c: Libc;
    try {
      c = libc();
    } catch (e) {
      throw new UsageError(
        `tap ${ifname}: ${permissionMessage(e) ?? `cannot load libc: ${(e as Error).message}`}`,
      );
    }
    const fd = c.open(cstr("/dev/net/tun"), O_RDWR | O_CLOEXEC, 0);
    if (fd < 0) {
      const e = ERRNO[0];
      throw new UsageError(
        `tap ${ifname}: cannot open /dev/net/tun (${
          e === 2 ? "no tun device" : e === 13 || e === 1 ? "permission denied" : `errno ${e}`
        })`,
      );
    }
    const ifr = new Uint8Array(40);
    ifr.set(new TextEncoder().encode(ifname));
    new DataView(ifr.buffer).setUint16(16, IFF_TAP | IFF_NO_PI, true);
    if (c.ioctl(fd, BigInt(TUNSETIFF), ifr) < 0) {
      const e = ERRNO[0];
      c.close(fd);
      throw new UsageError(
        `tap ${ifname}: TUNSETIFF failed (${
          e === 1 ? "permission denied" : e === 16 ? "interface busy" : `errno ${e}`
        })`,
      );
    }
    c.fcntl(fd, F_SETFL, O_NONBLOCK | O_RDWR);
    const dev = new TapNetDevice(ifname, fd, sinks);
    try {
      if (opts.bridge) {
        await ip(["link", "set", ifname, "master", opts.bridge]);
        await ip(["link", "set", ifname, "up"]);
      } else if (opts.ip) {
        await ip(["addr", "add", opts.ip, "dev", ifname]);
        await ip(["link", "set", ifname, "up"]);
      }
    } catch (e) {
      await dev.close();
      throw e;
    }
    return dev;
  }

  init(ctx: DeviceContext): void {
    this.#ctx = ctx;
    // Slot 0: the tap's own MAC with the promiscuous bit (§10.4a step 6).
    let mac = [0x02, 0, 0, 0, 0, 0xfe];
    try {
      const text = Deno.readTextFileSync(`/sys/class/net/${this.ifname}/address`).trim();
      mac = text.split(":").map((h) => parseInt(h, 16));
    } catch { /* keep the fallback MAC */ }
    mac[0] |= LGUEST_NET_PROMISC;
    ctx.memory.bytes.set(mac, ctx.pageAddr);
    this.#pumping = this.#pump();
  }

  /** Slot 0 is the host: the guest sends every frame there. */
  watchKey(): number {
    return this.#ctx!.pageAddr;
  }

  /** A frame to the tap: the sections gathered into one buffer, one write(2). */
  outputRanges(r: DmaRanges): number {
    r.merge();
    let frame: Uint8Array;
    if (r.count === 1) {
      frame = r.bytes.subarray(r.addr[0], r.addr[0] + r.len[0]);
    } else {
      frame = this.#tx.subarray(0, Math.min(r.total, this.#tx.length));
      let off = 0;
      for (let i = 0; i < r.count && off < frame.length; i++) {
        const n = Math.min(r.len[i], frame.length - off);
        frame.set(r.bytes.subarray(r.addr[i], r.addr[i] + n), off);
        off += n;
      }
    }
    const n = libc().write32(this.#fd, frame as Uint8Array<ArrayBuffer>, frame.length);
    if (n < 0) {
      this.stats.txErrors++;
      return 0;
    }
    this.stats.txFrames++;
    if (this.#sinks.length !== 0) {
      const copy = frame.slice();
      for (const s of this.#sinks) s.frame(copy);
    }
    return n;
  }

  hasPendingInput(): boolean {
    return this.#queue.length !== 0;
  }

  /** Move queued frames into the guest's buffers; drop what does not fit. */
  input(ctx: DeviceContext): void {
    while (this.#queue.length !== 0) {
      const frame = this.#queue.shift()!;
      if (ctx.deliver(ctx.pageAddr + 4, frame) <= 0) this.stats.rxDroppedNoBuffer++;
      else this.stats.rxFrames++;
    }
  }

  /**
   * The guest would sleep: take what the tap holds now (non-blocking reads).
   * After a look that found nothing, only the first frame: it goes to the
   * guest at once, and the read that finds the tap empty comes at the next
   * look, after the guest has answered (one system call less before a
   * ping's reply); a burst's other frames go in together at that look.
   */
  poll(): boolean {
    if (this.#closed) {
      this.disarmWait();
      return this.#queue.length !== 0;
    }
    const got = this.#drain(this.#quiet ? 1 : Infinity, true);
    this.disarmWait(); // taken for a frame that did not come (an empty read, a malformed frame)
    this.#quiet = !got;
    // Frames taken here, not by the poll thread: the run loop watches the tap
    // itself now (its blocking wait); the poll thread stops until watch().
    if (got && this.#waited) this.#watching = false;
    return got || this.#queue.length !== 0;
  }

  /**
   * A wait in place is about to block on the tap with the guest stopped:
   * take its next free receive buffer now (GETDMA and its ranges checked,
   * as ctx.deliver does), so that the frame that ends the wait goes
   * straight in (#drain). Not while frames wait in the queue (they go
   * first, through input()).
   */
  armWait(): void {
    const ctx = this.#ctx;
    if (ctx === null || this.#closed || this.#armed !== null || this.#queue.length !== 0) return;
    if (ctx.guest.dead !== null) return;
    this.#armed = ctx.takeBuffer(ctx.pageAddr + 4);
  }

  /** The buffer armWait() took, unfilled, is free again. */
  disarmWait(): void {
    const b = this.#armed;
    if (b === null) return;
    this.#armed = null;
    // GETDMA only wrote the IRQ number into its used_len and advanced the
    // binding's next_dma, and the guest has not run since: giveBack frees
    // it and rewinds the cursor, so the next frame lands there (in order).
    this.#ctx!.giveBack(b);
  }

  /** The guest sleeps in the event loop: the poll thread watches the tap again. */
  watch(): void {
    this.#watching = true;
    this.#unpark?.();
  }

  /** The tap's fd, while frames come less than HOT_MS apart and it works. */
  waitFds(out: number[]): void {
    this.#waited = true;
    if (this.#unstamped !== 0) {
      const now = nowMs();
      this.#prevFrame = this.#unstamped > 1 ? now : this.#lastFrame;
      this.#lastFrame = now;
      this.#unstamped = 0;
    }
    if (this.#closed || this.#lastFrame - this.#prevFrame >= HOT_MS) return;
    if (nowMs() - this.#lastFrame < HOT_MS) out.push(this.#fd);
  }

  /**
   * Read the frames the tap holds (non-blocking) into the queue, until it is
   * empty, `max` frames were taken by this call or it made READS_PER_LOOK
   * reads (dropped frames count); true if any. `direct`
   * (the guest is stopped: poll()): while the queue is empty, a frame goes
   * from the read buffer into the guest's (ctx.deliver: GETDMA, the one
   * checked path, copy, IRQ) at once, with no copy of its own, no queue.
   */
  #drain(max = Infinity, direct = false): boolean {
    let got = false;
    let reads = 0;
    for (let queued = 0; queued < max && reads < READS_PER_LOOK;) {
      const n = libc().read32(this.#fd, this.#buf, this.#buf.length);
      if (n >= 0 && ++reads > this.stats.rxMostReadsPerLook) this.stats.rxMostReadsPerLook = reads;
      if (n < 0) {
        const e = ERRNO[0];
        if (e !== EAGAIN) {
          // The interface went away (EBADFD after `ip link del`) or broke: say so
          // once, even without -v; the guest runs on and its frames are dropped.
          const name = this.#ctx ? `${this.#ctx.name}: ` : "";
          warn(
            `lguest: ${name}tap ${this.ifname}: read failed (errno ${e}${
              e === EBADFD ? ": the interface is gone" : ""
            }); the guest's frames are dropped from now on`,
          );
          this.#closed = true;
        }
        return got;
      }
      if (n < MIN_FRAME || n > MAX_FRAME) {
        this.stats.rxDroppedMalformed++;
        continue;
      }
      const ctx = this.#ctx;
      if (direct && this.#queue.length === 0 && ctx !== null && ctx.guest.dead === null) {
        if (this.#sinks.length !== 0) {
          const copy = this.#buf.slice(0, n);
          for (const s of this.#sinks) s.frame(copy);
        }
        const armed = this.#armed;
        if (armed !== null) {
          // The buffer the wait in place took (armWait): the guest is still stopped.
          this.#armed = null;
          const off = fillBuffer(armed, this.#buf, n);
          ctx.complete(armed, off);
          if (off === 0) this.stats.rxDroppedNoBuffer++; // a buffer with no room
          else this.stats.rxFrames++;
        } else if (ctx.deliver(ctx.pageAddr + 4, this.#buf.subarray(0, n)) <= 0) {
          this.stats.rxDroppedNoBuffer++;
        } else this.stats.rxFrames++;
      } else {
        const full = this.#queue.length >= QUEUE;
        if (full && this.#sinks.length === 0) {
          // Dropped without a copy: a flood would make one per frame for the
          // garbage collector (RSS grew 60-120 MiB in 4 s of a host-side flood).
          this.stats.rxDroppedQueue++;
          continue;
        }
        const frame = this.#buf.slice(0, n);
        for (const s of this.#sinks) s.frame(frame);
        if (full) {
          this.stats.rxDroppedQueue++;
          continue;
        }
        this.#queue.push(frame);
      }
      queued++;
      if (!got) {
        if (direct) this.#unstamped++;
        else {
          this.#prevFrame = this.#lastFrame;
          this.#lastFrame = nowMs();
        }
      }
      got = true;
    }
    return got;
  }

  /** Wait for the tap to be readable (on an FFI thread), then drain it. */
  async #pump(): Promise<void> {
    const pfd = pollFd(this.#fd, POLLIN);
    while (!this.#closed) {
      if (!this.#watching) {
        // Every poll in flight is a second thread woken per frame, and its end
        // (a wake-up of the event loop) would cut the run loop's blocking wait short.
        await new Promise<void>((resolve) => this.#unpark = resolve);
        this.#unpark = null;
        continue;
      }
      // Another guest's blocking idle wait would not see its end (sys/clock.ts).
      poolOps.add(this.#fd);
      const r = await libc().poll(pfd, 1n, 200);
      poolOps.delete(this.#fd);
      if (this.#closed) return;
      if (r <= 0) continue;
      const got = this.#drain();
      if (got) this.#ctx?.requestInput();
    }
  }

  /**
   * Close the tap. A poll in flight on the FFI thread (at most 200 ms) holds
   * the file, so the fd is closed once the loop has seen `closed`: when this
   * resolves, the interface is gone (a non-persistent tap dies with its fd).
   */
  async close(): Promise<void> {
    if (this.#fdClosed) return;
    this.#fdClosed = true;
    this.#closed = true;
    this.#unpark?.();
    await this.#pumping;
    libc().close(this.#fd);
    this.#ctx?.log(`tap ${this.ifname}: ${JSON.stringify(this.stats)}`);
  }
}
