/**
 * The KVM engine's own checks: the x86-64 image loader is hostile-input
 * code (every malformed image is one ImageError, never an exception of
 * another kind or a write outside the image area), and guest RAM is given
 * back when a guest ends (tests/engines_e2e_test.ts runs whole guests).
 *
 * @module
 */

import assert from "node:assert/strict";
import { IMAGE_BASE, KvmCpu, kvmUnavailable, parseX86Image } from "../engines/kvm.ts";
import { ImageError } from "../engines/wasm.ts";

interface Seg {
  type?: number;
  flags?: number;
  offset: number | bigint;
  vaddr: number | bigint;
  paddr?: number | bigint;
  filesz: number | bigint;
  memsz: number | bigint;
}

/** An ELF64 x86-64 EXEC image with these program headers (data after them). */
function elf(
  segs: Seg[],
  opts: { entry?: number | bigint; machine?: number; type?: number; size?: number } = {},
): Uint8Array {
  const size = opts.size ?? 0x2000;
  const b = new Uint8Array(Math.max(size, 64 + 56 * segs.length));
  const dv = new DataView(b.buffer);
  b.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
  dv.setUint16(16, opts.type ?? 2, true);
  dv.setUint16(18, opts.machine ?? 62, true);
  dv.setBigUint64(24, BigInt(opts.entry ?? IMAGE_BASE), true);
  dv.setBigUint64(32, 64n, true);
  dv.setUint16(54, 56, true);
  dv.setUint16(56, segs.length, true);
  segs.forEach((s, i) => {
    const p = 64 + 56 * i;
    dv.setUint32(p, s.type ?? 1, true);
    dv.setUint32(p + 4, s.flags ?? 5, true);
    dv.setBigUint64(p + 8, BigInt(s.offset), true);
    dv.setBigUint64(p + 16, BigInt(s.vaddr), true);
    dv.setBigUint64(p + 24, BigInt(s.paddr ?? s.vaddr), true);
    dv.setBigUint64(p + 32, BigInt(s.filesz), true);
    dv.setBigUint64(p + 40, BigInt(s.memsz), true);
  });
  return b.slice(0, size);
}

const GOOD: Seg = { offset: 0x1000, vaddr: IMAGE_BASE, filesz: 0x100, memsz: 0x2000 };

Deno.test("kvm image: a well-formed image parses to its segments and entry", () => {
  const img = parseX86Image(elf([GOOD, { ...GOOD, flags: 6, vaddr: IMAGE_BASE + 0x2000 }]), "t");
  assert.equal(img.entry, IMAGE_BASE);
  assert.equal(img.segments.length, 2);
  assert.equal(img.end, IMAGE_BASE + 0x4000);
  assert.equal(img.segments[0].data.length, 0x100);
});

Deno.test("kvm image: a C source given as the image says how to build a guest of it", () => {
  assert.throws(
    () => parseX86Image(new TextEncoder().encode("int main(void) { return 0; }\n"), "hi.c"),
    /^ImageError: hi\.c: not an x86-64 guest image \(a C source file\? 'lguest cc -o prog\.wasm FILE\.c' builds a guest of it, which runs with --engine wasm\)$/,
  );
});

Deno.test("kvm image: every malformed image is one ImageError naming the problem", () => {
  const cases: [string, Uint8Array, RegExp][] = [
    ["empty", new Uint8Array(0), /not ELF/],
    ["wasm", new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]), /WebAssembly: run it with/],
    // What it is instead, as the wasm engine says it (before: only "not ELF").
    [
      "lgfs",
      new TextEncoder().encode("LGFS1\0" + "\0".repeat(100)),
      /an lgfs disk image: give it with --block\)$/,
    ],
    ["zeros", new Uint8Array(1 << 20), /only zeros: a new disk image\? make a file system on it/],
    // Less than the 1 MiB lgfs needs is no disk before its mkfs.
    ["few zeros", new Uint8Array(4096), /\(not ELF\)$/],
    // C by its content, not only a .c name.
    [
      "C text",
      new TextEncoder().encode("#include <stdio.h>\nint main(void) {}\n"),
      /a C source file\?/,
    ],
    [
      "32-bit",
      (() => {
        const b = elf([GOOD]);
        b[4] = 1;
        return b;
      })(),
      /64-bit little-endian/,
    ],
    ["machine", elf([GOOD], { machine: 3 }), /e_machine/],
    ["type", elf([GOOD], { type: 3 }), /e_type/],
    ["no segments", elf([]), /program headers/],
    ["only a note", elf([{ ...GOOD, type: 4 }]), /no loadable segment/],
    ["below 1 MiB", elf([{ ...GOOD, vaddr: 0x1000 }], { entry: 0x1000 }), /below 1 MiB/],
    ["paddr", elf([{ ...GOOD, paddr: IMAGE_BASE + 0x1000 }]), /!= physical/],
    ["filesz > memsz", elf([{ ...GOOD, filesz: 0x3000 }]), /file size larger/],
    ["beyond the file", elf([{ ...GOOD, offset: 0x1f00, filesz: 0x200 }]), /beyond the end/],
    ["huge offset", elf([{ ...GOOD, offset: 2n ** 63n }]), /beyond 4 GiB/],
    ["huge size", elf([{ ...GOOD, memsz: 2n ** 64n - 1n }]), /beyond 4 GiB/],
    [
      "ends past 4 GiB",
      elf([{ ...GOOD, vaddr: 0xfffff000, memsz: 0x2000 }], {
        entry: 0xfffff000,
      }),
      /beyond 4 GiB/,
    ],
    ["overlap", elf([GOOD, { ...GOOD, vaddr: IMAGE_BASE + 0x1000 }]), /overlaps/],
    ["entry outside", elf([GOOD], { entry: IMAGE_BASE + 0x8000 }), /entry point/],
    ["entry in data", elf([{ ...GOOD, flags: 6 }]), /entry point/],
    ["headers beyond the file", elf([GOOD], { size: 100 }), /program headers beyond/],
  ];
  for (const [what, bytes, re] of cases) {
    let err: unknown = null;
    try {
      parseX86Image(bytes, "bad");
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof ImageError, `${what}: ${err}`);
    assert.match(err.message, re, what);
    assert.doesNotMatch(err.message, /\n/, what);
  }
});

Deno.test("kvm image: random corruption of a real image never escapes as another error", async () => {
  const real = await Deno.readFile(new URL("../guests/images/hello.x86_64.elf", import.meta.url));
  let seed = 20261129;
  const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
  for (let i = 0; i < 3000; i++) {
    const b = real.slice(0, 64 + 56 * 6 + Math.floor(rnd() * (real.length - 400)));
    for (let k = 0, n = 1 + Math.floor(rnd() * 8); k < n; k++) {
      b[Math.floor(rnd() * Math.min(b.length, 512))] = Math.floor(rnd() * 256);
    }
    try {
      const img = parseX86Image(b, "fuzz");
      for (const s of img.segments) {
        assert.ok(s.addr >= IMAGE_BASE && s.addr + s.memsz <= 2 ** 32);
        assert.ok(s.data.length <= s.memsz);
      }
    } catch (e) {
      assert.ok(e instanceof ImageError, `case ${i}: ${e}`);
    }
  }
});

const why = kvmUnavailable();
if (why !== null) console.log(`kvm_engine: skipping the KVM cases: ${why}`);

Deno.test({
  name: "kvm: an image that ends above the guest's RAM is refused",
  ignore: why !== null,
  fn() {
    const img = parseX86Image(elf([{ ...GOOD, memsz: 4 << 20 }]), "big");
    assert.throws(() => new KvmCpu(img, 4 << 20, 2 << 20), ImageError);
  },
});

Deno.test({
  name: "kvm: guest RAM is given back when a guest is closed (RSS stays bounded)",
  ignore: why !== null,
  fn() {
    const img = parseX86Image(elf([GOOD]), "ram");
    const size = 64 << 20;
    const rss = () => Deno.memoryUsage().rss;
    const start = rss();
    for (let i = 0; i < 12; i++) {
      const cpu = new KvmCpu(img, size, size);
      cpu.memory.fill(0xa5); // touch all 64 MiB
      cpu.close();
      // The view stays valid after close (reads zeros), so no stale view can crash us.
      assert.equal(cpu.memory[size - 1], 0);
    }
    const grown = rss() - start;
    assert.ok(grown < 128 << 20, `RSS grew ${grown >> 20} MiB over 12 x 64 MiB guests`);
  },
});
