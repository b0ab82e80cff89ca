/**
 * The block device (protocol §10.3) against a scripted guest: a fake
 * DeviceContext over a real GuestMemory, so every rule of the request
 * protocol and every error path is checked without a guest image.
 */

import assert from "node:assert/strict";
import { BLK_BYTES, BLK_NUM_SECTORS, BLK_RESULT, BLK_SECTOR, BLK_TYPE } from "../abi/structs.ts";
import { BlockDevice, parseBlockSpec } from "../devices/block.ts";
import type { DeviceContext, InputBuffer } from "../devices/registry.ts";
import { UsageError } from "../devices/registry.ts";
import { GuestMemory } from "../host/memory.ts";

const PAGE = 0x10000; // the device page
const REPLY = 0x20000; // reply buffer area

interface Rig {
  ctx: DeviceContext;
  mem: GuestMemory;
  irqs: number[];
  /** Whether the guest has a free reply buffer bound. */
  replyBound: boolean;
  used: number[];
}

function rig(): Rig {
  const mem = new GuestMemory(new Uint8Array(1 << 20), 256);
  const r: Rig = { mem, irqs: [], replyBound: true, used: [], ctx: undefined as never };
  r.ctx = {
    index: 0,
    pageAddr: PAGE,
    memory: mem,
    host: undefined as never,
    guest: undefined as never,
    name: "test",
    mapShared() {},
    deliver: () => -1,
    takeBuffer(): InputBuffer | null {
      if (!r.replyBound) return null;
      return {
        addr: 0,
        key: 0,
        irq: 1,
        sections: [mem.slice(REPLY, 4096), mem.slice(REPLY + 8192, 4096)],
      };
    },
    giveBack() {},
    complete(_buf, usedLen) {
      r.used.push(usedLen);
      r.irqs.push(1);
    },
    raise: (irq) => void r.irqs.push(irq),
    requestInput() {},
    log() {},
    kill() {},
    exit() {},
  };
  return r;
}

function request(r: Rig, type: number, sector: number, bytes: number): void {
  r.mem.setI32(PAGE + BLK_TYPE, type);
  r.mem.setU32(PAGE + BLK_SECTOR, sector);
  r.mem.setU32(PAGE + BLK_BYTES, bytes);
  r.mem.setI32(PAGE + BLK_RESULT, 0);
}

async function tempImage(bytes: number, fill = 0): Promise<string> {
  const path = await Deno.makeTempFile({ suffix: ".img" });
  await Deno.writeFile(path, new Uint8Array(bytes).fill(fill));
  return path;
}

function open(path: string, opts = ""): { dev: BlockDevice; r: Rig } {
  const dev = new BlockDevice(parseBlockSpec(path + opts));
  const r = rig();
  dev.init(r.ctx);
  return { dev, r };
}

Deno.test("§10.3 setup: type 3, features 0x8000, one page, num_sectors = length / 512", async () => {
  const path = await tempImage(512 * 100 + 300);
  const { dev, r } = open(path);
  assert.equal(dev.type, 3);
  assert.equal(dev.features, 0x8000);
  assert.equal(dev.numPages, 1);
  assert.equal(r.mem.u32(PAGE + BLK_NUM_SECTORS), 100);
  assert.equal(dev.watchKey(), PAGE);
  assert.match(dev.label, /last 300 bytes not addressable/);
  dev.close();
});

Deno.test("§10.3 write: data lands at sector x 512, result 1, reply used_len 0, IRQ", async () => {
  const path = await tempImage(64 * 1024);
  const { dev, r } = open(path);
  const data = new TextEncoder().encode("hello, disk".padEnd(512, "\0"));
  const sec = r.mem.slice(0x30000, 512);
  sec.set(data);
  request(r, 1, 7, 512);
  assert.equal(dev.output([sec], r.ctx), 0);
  assert.equal(r.mem.i32(PAGE + BLK_RESULT), 1);
  assert.deepEqual(r.used, [0]);
  assert.deepEqual(r.irqs, [1]);
  dev.close();
  const file = await Deno.readFile(path);
  assert.deepEqual(file.subarray(7 * 512, 8 * 512), data);
  assert.equal(file.length, 64 * 1024);
});

Deno.test("§10.3 read: reply buffer gets the bytes, used_len = count, result 1", async () => {
  const path = await tempImage(64 * 1024);
  const content = new Uint8Array(64 * 1024).map((_, i) => (i * 7) & 0xff);
  await Deno.writeFile(path, content);
  const { dev, r } = open(path);
  request(r, 0, 8, 8192);
  dev.output([], r.ctx);
  assert.equal(r.mem.i32(PAGE + BLK_RESULT), 1);
  assert.deepEqual(r.used, [8192]);
  assert.deepEqual(r.mem.slice(REPLY, 4096), content.subarray(4096, 8192));
  assert.deepEqual(r.mem.slice(REPLY + 8192, 4096), content.subarray(8192, 12288));
  dev.close();
});

Deno.test("§14.11 deviation: read past the end answers result 2, no exit", async () => {
  const path = await tempImage(4096);
  const { dev, r } = open(path);
  request(r, 0, 8, 512);
  dev.output([], r.ctx);
  assert.equal(r.mem.i32(PAGE + BLK_RESULT), 2);
  assert.equal(dev.stats.errors, 1);
  assert.deepEqual(r.irqs, [1]);
  dev.close();
});

Deno.test("§14.11 deviation: a short read at the end is result 2 with the bytes read", async () => {
  const path = await tempImage(4096 + 512);
  const { dev, r } = open(path);
  request(r, 0, 8, 4096);
  dev.output([], r.ctx);
  assert.equal(r.mem.i32(PAGE + BLK_RESULT), 2);
  assert.deepEqual(r.used, [512]);
  dev.close();
});

Deno.test("§14.11 deviation: write past the end answers 2; the file is not grown", async () => {
  const path = await tempImage(4096, 0xaa);
  const { dev, r } = open(path);
  const sec = r.mem.slice(0x30000, 1024);
  request(r, 1, 7, 1024);
  dev.output([sec], r.ctx);
  assert.equal(r.mem.i32(PAGE + BLK_RESULT), 2);
  dev.close();
  const file = await Deno.readFile(path);
  assert.equal(file.length, 4096);
  assert.ok(file.every((b) => b === 0xaa));
});

Deno.test("§14.11 deviation: no reply buffer answers 2 and raises the device IRQ", async () => {
  const path = await tempImage(4096);
  const { dev, r } = open(path);
  r.replyBound = false;
  request(r, 0, 0, 512);
  dev.output([], r.ctx);
  assert.equal(r.mem.i32(PAGE + BLK_RESULT), 2);
  assert.deepEqual(r.irqs, [1]);
  dev.close();
});

Deno.test("block ,ro: writes answer 2 and leave the file alone; reads work", async () => {
  const path = await tempImage(4096, 0x55);
  const { dev, r } = open(path, ",ro");
  const sec = r.mem.slice(0x30000, 512);
  request(r, 1, 0, 512);
  dev.output([sec], r.ctx);
  assert.equal(r.mem.i32(PAGE + BLK_RESULT), 2);
  request(r, 0, 0, 512);
  dev.output([], r.ctx);
  assert.equal(r.mem.i32(PAGE + BLK_RESULT), 2); // 512 asked, 4096-byte sections: short
  assert.ok(r.mem.slice(REPLY, 512).every((b) => b === 0x55));
  dev.close();
  assert.ok((await Deno.readFile(path)).every((b) => b === 0x55));
});

Deno.test("block ,sync and ,direct: writes still land (O_DIRECT where the fs has it)", async () => {
  const path = await tempImage(64 * 1024);
  const { dev, r } = open(path, ",sync,direct");
  const sec = r.mem.slice(0x40000, 4096).fill(0x42);
  request(r, 1, 16, 4096);
  dev.output([sec], r.ctx);
  assert.equal(r.mem.i32(PAGE + BLK_RESULT), 1);
  dev.close();
  assert.ok((await Deno.readFile(path)).subarray(8192, 12288).every((b) => b === 0x42));
});

Deno.test("block option errors are one UsageError line", async () => {
  assert.throws(() => parseBlockSpec("x.img,fast"), UsageError);
  assert.throws(() => parseBlockSpec(""), UsageError);
  assert.throws(() => new BlockDevice(parseBlockSpec("/nonexistent/disk.img")), /no such file/);
  const dir = await Deno.makeTempDir();
  assert.throws(() => new BlockDevice(parseBlockSpec(dir)), /is a directory/);
});

Deno.test({
  name: "block ENOSPC during a write answers 2 and the launcher goes on",
  ignore: Deno.uid() !== 0,
  async fn() {
    const dir = await Deno.makeTempDir();
    const mount = await new Deno.Command("mount", {
      args: ["-t", "tmpfs", "-o", "size=64k", "tmpfs", dir],
    }).output();
    if (!mount.success) {
      console.log("skipped: cannot mount a tmpfs here");
      return;
    }
    try {
      const path = `${dir}/disk.img`;
      const f = await Deno.open(path, { create: true, write: true });
      await f.truncate(1024 * 1024); // sparse: larger than the filesystem
      f.close();
      const { dev, r } = open(path);
      let failed = 0;
      for (let s = 0; s < 2048 && failed === 0; s += 8) {
        const sec = r.mem.slice(0x40000, 4096).fill(1);
        request(r, 1, s, 4096);
        dev.output([sec], r.ctx);
        if (r.mem.i32(PAGE + BLK_RESULT) === 2) failed++;
      }
      assert.equal(failed, 1, "a write past the tmpfs size must answer result 2");
      request(r, 0, 0, 8192);
      dev.output([], r.ctx);
      assert.equal(r.mem.i32(PAGE + BLK_RESULT), 1, "reads still work after ENOSPC");
      dev.close();
      assert.equal((await Deno.stat(path)).size, 1024 * 1024);
    } finally {
      await new Deno.Command("umount", { args: [dir] }).output();
    }
  },
});
