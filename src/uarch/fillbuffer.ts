/**
 * The line fill buffers (LFB) of one core, shared by its hardware threads.
 *
 * Documentation/arch/x86/mds.rst (MFBDS): "Fill buffers are used internally to manage L1 miss
 * situations and to hold data which is returned or sent in response to a memory or I/O
 * operation. [...] When the fill buffer is deallocated it can retain the stale data of the
 * preceding operations [...] Fill buffers are shared between Hyper-Threads so cross thread
 * leakage is possible."
 *
 * The model: every L1D miss allocates the next entry round-robin and copies the 64 bytes it
 * brought in. Timing is not modelled, so every entry is "deallocated, retaining stale data"
 * as soon as it is written; it keeps those bytes until a later fill reuses the entry or a
 * buffer clear (VERW with MD_CLEAR microcode) overwrites it.
 *
 *   column  type          contents
 *   line    Float64Array  physical address of the line the entry last held, -1 = empty/cleared
 *   owner   Int8Array     index within the core of the thread whose miss filled it, -1 = none
 *   data    Uint8Array    entries * 64 bytes
 */
import { LINE_BYTES } from './cache.ts';

export class FillBuffers {
  readonly entries: number;
  readonly line: Float64Array;
  readonly owner: Int8Array;
  readonly data: Uint8Array;
  /** The same entries as u32 words (entry e at e*16). */
  readonly data32: Uint32Array;
  private next = 0;
  allocations = 0;
  clears = 0;

  constructor(entries: number) {
    if (!Number.isInteger(entries) || entries < 1 || entries > 64) throw new RangeError(`fill buffers: entries must be 1..64, got ${entries}`);
    this.entries = entries;
    this.line = new Float64Array(entries).fill(-1);
    this.owner = new Int8Array(entries).fill(-1);
    this.data32 = new Uint32Array(entries * (LINE_BYTES >>> 2));
    this.data = new Uint8Array(this.data32.buffer);
  }

  /** A fill of line `lineAddr` by thread `owner`: copy 16 words from src32[srcWord..]. Returns the entry. */
  record(lineAddr: number, owner: number, src32: Uint32Array, srcWord: number): number {
    const e = this.next;
    this.next = e + 1 === this.entries ? 0 : e + 1;
    this.line[e] = lineAddr;
    this.owner[e] = owner;
    // 16 words = LINE_BYTES (an imported constant is a getter call per use under tsx).
    const d = this.data32;
    const o = e * 16;
    for (let i = 0; i < 16; i++) d[o + i] = src32[srcWord + i];
    this.allocations++;
    return e;
  }

  /** Overwrite every entry (what VERW does with MD_CLEAR microcode, mds.rst). */
  clear(): void {
    this.line.fill(-1);
    this.owner.fill(-1);
    this.data.fill(0);
    this.next = 0;
    this.clears++;
  }

  /** The entry holding line `lineAddr` (any byte address in it), or -1. */
  find(pa: number): number {
    const lineAddr = Math.floor(pa / LINE_BYTES) * LINE_BYTES;
    for (let e = 0; e < this.entries; e++) if (this.line[e] === lineAddr) return e;
    return -1;
  }

  /** Number of entries that hold data (were filled since the last clear). */
  occupancy(): number {
    let n = 0;
    for (let e = 0; e < this.entries; e++) if (this.line[e] >= 0) n++;
    return n;
  }

  /** Byte `i` (0..63) of entry `e`: what a sampling load may be forwarded. */
  byteAt(e: number, i: number): number {
    return this.data[e * LINE_BYTES + i];
  }

  copyEntry(e: number, dst: Uint8Array, off: number): void {
    dst.set(this.data.subarray(e * LINE_BYTES, e * LINE_BYTES + LINE_BYTES), off);
  }
}
