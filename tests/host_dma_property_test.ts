/**
 * Property tests of the inter-guest DMA copy (protocol §5.5, §5.6) against a
 * reference model: random valid section lists on both sides (at most 16
 * sections, each at most 4096 bytes and inside one page), random memory.
 *
 * The model: the source is one byte stream (its sections in order); the
 * destination takes min(source bytes, destination room) of it, section by
 * section; everything else in both guests' memory stays as it was, except
 * the two used_len words.
 *
 * @module
 */

import assert from "node:assert/strict";
// Test-only dependency, named here and not in deno.json: an "imports" entry there would make
// every `deno run` in the checkout install it, and running a guest must need no npm (issue 11).
// deno-lint-ignore no-import-prefix
import fc from "npm:fast-check@^3.23.2";
import { ENOENT, LHCALL_SEND_DMA, LHREQ_GETDMA, PAGE_SIZE } from "../abi/constants.ts";
import { DMA_ADDR, DMA_LEN, DMA_SIZE } from "../abi/structs.ts";
import { GuestMemory } from "../host/memory.ts";
import { ARR, closeAll, makeHost, sharedKey, type TestGuest } from "./helpers/guests.ts";
import type { Section } from "./helpers/script_cpu.ts";

/** Buffers live in pages 8..47 of the 64-page test guests. */
const FIRST_PAGE = 8;
const BUF_PAGES = 40;
const RX = ARR;
const TX = ARR + 0x800;
const IRQ = 13;
const RUNS = 300;

/** One section inside a single page of the buffer area. */
const section: fc.Arbitrary<Section> = fc
  .record({
    page: fc.integer({ min: FIRST_PAGE, max: FIRST_PAGE + BUF_PAGES - 1 }),
    off: fc.integer({ min: 0, max: PAGE_SIZE - 1 }),
    len: fc.integer({ min: 1, max: PAGE_SIZE }),
  })
  .map(({ page, off, len }) => [page * PAGE_SIZE + off, Math.min(len, PAGE_SIZE - off)] as const);

/** Up to 16 sections, plus junk after the terminator that must be ignored. */
const sectionList = fc.record({
  secs: fc.array(section, { maxLength: 16 }),
  junk: fc.array(fc.tuple(fc.nat({ max: 0xffffffff }), fc.nat({ max: 0xffff })), {
    maxLength: 15,
  }),
  shortcut: fc.boolean(),
});

type SectionList = { secs: Section[]; junk: [number, number][]; shortcut: boolean };

/** Write a descriptor: sections, a zero terminator, then junk entries. */
function writeDesc(t: TestGuest, at: number, l: SectionList): void {
  t.dma(at, l.secs);
  // After the zero terminator: junk (or zeros) that must never be read.
  if (l.secs.length >= 16) return;
  for (let i = 0; i < l.junk.length && l.secs.length + 1 + i < 16; i++) {
    const k = l.secs.length + 1 + i;
    t.mem.setU32(at + DMA_ADDR + 4 * k, l.junk[i][0]);
    t.mem.setU16(at + DMA_LEN + 2 * k, l.shortcut ? 0 : l.junk[i][1]);
  }
}

/** Fill a guest's buffer pages with bytes from a seed (xorshift). */
function fill(t: TestGuest, seed: number): void {
  let x = seed | 1;
  const b = t.mem.bytes;
  for (let i = FIRST_PAGE * PAGE_SIZE; i < (FIRST_PAGE + BUF_PAGES) * PAGE_SIZE; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
}

/** The reference model of one transfer into a free element. */
function model(src: Uint8Array, dst: Uint8Array, s: readonly Section[], d: readonly Section[]) {
  const stream: number[] = [];
  for (const [a, l] of s) stream.push(...src.subarray(a, a + l));
  const out = dst.slice();
  let at = 0;
  for (const [a, l] of d) {
    const n = Math.min(l, stream.length - at);
    if (n <= 0) break;
    out.set(stream.slice(at, at + n), a);
    at += n;
  }
  const count = at;
  const abandoned = count === 0 && s.length > 0;
  return { out, count, abandoned };
}

Deno.test("§5.5 property: the inter-guest copy matches the stream model", () => {
  fc.assert(
    fc.property(sectionList, sectionList, fc.integer(), fc.integer(), (sl, dl, s1, s2) => {
      const { guests: [a, b] } = makeHost(2, { sharedObject: 1 });
      try {
        fill(a, s1);
        fill(b, s2);
        writeDesc(b, RX, dl);
        assert.equal(b.bind(sharedKey(b), RX, 1, IRQ), 1);
        writeDesc(a, TX, sl);
        const srcBefore = a.mem.bytes.slice();
        const dstBefore = b.mem.bytes.slice();
        const m = model(srcBefore, dstBefore, sl.secs, dl.secs);

        a.call(LHCALL_SEND_DMA, sharedKey(a), TX);

        assert.equal(a.dead, null);
        assert.equal(b.dead, null);
        // Sender: only its used_len changed, to the count.
        const srcAfter = srcBefore.slice();
        new DataView(srcAfter.buffer).setUint32(TX, m.count, true);
        assert.ok(equalBytes(a.mem.bytes, srcAfter), "sender memory");
        // Receiver: the model's bytes, plus used_len unless abandoned.
        if (!m.abandoned) new DataView(m.out.buffer).setUint32(RX, m.count, true);
        assert.ok(equalBytes(b.mem.bytes, m.out), "receiver memory");
        assert.equal(b.used(RX), m.abandoned ? 0 : m.count);
        assert.equal(a.used(TX), m.count);
        const sum = (x: readonly Section[]) => x.reduce((n, [, l]) => n + l, 0);
        assert.equal(m.count, Math.min(sum(sl.secs), sum(dl.secs)), "truncation");
        assert.equal(b.guest.pending, m.abandoned ? 0 : 1 << IRQ);
        assert.equal(b.guest.bindings[0]!.nextDma, 0); // one element: (0 + 1) % 1
      } finally {
        closeAll([a, b]);
      }
    }),
    { numRuns: RUNS },
  );
});

Deno.test("§5.5 property: the circular search takes the first free element from next_dma", () => {
  fc.assert(
    fc.property(
      fc.array(fc.boolean(), { minLength: 1, maxLength: 10 }),
      fc.integer({ min: 0, max: 0xffff }),
      (full, next) => {
        const { guests: [a, b] } = makeHost(2, { sharedObject: 1 });
        try {
          const n = full.length;
          for (let i = 0; i < n; i++) {
            b.dma(RX + i * DMA_SIZE, [[(FIRST_PAGE + i) * PAGE_SIZE, 8]], full[i] ? 1000 + i : 0);
          }
          assert.equal(b.bind(sharedKey(b), RX, n, IRQ), 1);
          b.guest.bindings[0]!.nextDma = next;
          a.mem.bytes.fill(0xab, FIRST_PAGE * PAGE_SIZE, FIRST_PAGE * PAGE_SIZE + 3);
          a.dma(TX, [[FIRST_PAGE * PAGE_SIZE, 3]]);
          a.call(LHCALL_SEND_DMA, sharedKey(a), TX);

          let expect = -1;
          for (let i = 0; i < n; i++) {
            const k = (next + i) % n;
            if (!full[k]) {
              expect = k;
              break;
            }
          }
          for (let i = 0; i < n; i++) {
            const want = i === expect ? 3 : full[i] ? 1000 + i : 0;
            assert.equal(b.used(RX + i * DMA_SIZE), want, `element ${i}`);
          }
          assert.equal(b.guest.bindings[0]!.nextDma, expect < 0 ? next : (next + 1) % n);
          assert.equal(b.guest.pending, 1 << IRQ, "interrupt whether or not it was full");
          assert.equal(a.used(TX), expect < 0 ? 0 : 3);
          // GETDMA on the same array searches the same way, from the cursor
          // the send left (§5.7, our deviation: 2.6.23 scanned from index 0).
          const cursor = b.guest.bindings[0]!.nextDma;
          let first = -1;
          for (let i = 0; i < n; i++) {
            const k = (cursor + i) % n;
            if (!full[k] && k !== expect) {
              first = k;
              break;
            }
          }
          b.dma(RX + n * DMA_SIZE, []); // guard: nothing past the array is looked at
          const r = b.file.write([LHREQ_GETDMA, sharedKey(b)]);
          assert.equal(r, first < 0 ? -ENOENT : RX + first * DMA_SIZE);
          assert.equal(b.guest.bindings[0]!.nextDma, first < 0 ? cursor : (cursor + 1) % n);
        } finally {
          closeAll([a, b]);
        }
      },
    ),
    { numRuns: RUNS },
  );
});

Deno.test("§0 property: ok(addr, len) is addr + len <= top without wrapping", () => {
  fc.assert(
    fc.property(
      fc.nat({ max: 0xffffffff }),
      fc.nat({ max: 0xffffffff }),
      fc.integer({ min: 0, max: 16 }),
      (addr, len, pfn) => {
        const m = new GuestMemory(new Uint8Array(16 * PAGE_SIZE), pfn);
        const want = BigInt(addr) + BigInt(len) <= BigInt(pfn * PAGE_SIZE);
        assert.equal(m.ok(addr, len), want);
      },
    ),
    { numRuns: 2000 },
  );
  // Edge values the generator may miss.
  const m = new GuestMemory(new Uint8Array(16 * PAGE_SIZE), 16);
  for (const [addr, len] of [[0xfffff000, 0x2000], [0xffffffff, 1], [1, 0xffffffff]]) {
    assert.equal(m.ok(addr, len), false);
  }
});

function equalBytes(x: Uint8Array, y: Uint8Array): boolean {
  if (x.length !== y.length) return false;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}
