/**
 * A bounded cursor over WebAssembly module bytes: the primitives that both
 * passes over a guest image read with (the profile check, `wasm_profile.ts`,
 * and the fuel instrumentation, `wasm_fuel.ts`). Every read stays below
 * `end`; a read past it or a bad LEB128 throws the subclass's own error, so
 * each pass keeps its own way of reporting a malformed image.
 *
 * @module
 */

/** Reads bytes and LEB128s of `b[pos..end)`. */
export abstract class ByteReader {
  /** The module's bytes. */
  readonly b: Uint8Array;
  /** The next byte to read. */
  pos: number;
  /** The first byte this reader may not read. */
  readonly end: number;
  constructor(b: Uint8Array, pos: number, end: number) {
    this.b = b;
    this.pos = pos;
    this.end = end;
  }
  /** The pass's error for malformed bytes. */
  protected abstract malformed(message: string): Error;
  byte(): number {
    if (this.pos >= this.end) throw this.malformed(`unexpected end at byte ${this.pos}`);
    return this.b[this.pos++];
  }
  /** An unsigned LEB128 of at most 32 bits. */
  u32(): number {
    let result = 0, shift = 0;
    for (;;) {
      const x = this.byte();
      if (shift === 28 && (x & 0x70) !== 0) throw this.malformed(`bad LEB128 at byte ${this.pos}`);
      result |= (x & 0x7f) << shift;
      if ((x & 0x80) === 0) return result >>> 0;
      shift += 7;
    }
  }
  /** Skip a (signed or unsigned) LEB128 of at most `bits` bits. */
  skipLeb(bits: number): void {
    for (let i = Math.ceil(bits / 7); i > 0; i--) if ((this.byte() & 0x80) === 0) return;
    throw this.malformed(`bad LEB128 at byte ${this.pos}`);
  }
  skip(n: number): void {
    if (n > this.end - this.pos) throw this.malformed(`unexpected end at byte ${this.pos}`);
    this.pos += n;
  }
}
