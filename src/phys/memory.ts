/**
 * Simulated physical memory: sparse 4 KiB frames held in typed arrays.
 *
 * Frames live in chunks of FRAMES_PER_CHUNK frames (one Uint32Array each, with a
 * Uint8Array view over the same buffer). A frame number (PFN, up to 2^40 for
 * MAXPHYADDR 52) maps to a *slot* through a Map; a small direct-mapped cache in
 * front of the Map keeps page walks off the hash path. Memory that was never
 * written reads as zero, as an unbacked frame does in the models built on this.
 *
 * Hot-path rules: no BigInt, no allocation per access. A 64-bit entry is read as
 * two u32 halves (`read32(pa)` for bits 31:0, `read32(pa + 4)` for bits 63:32).
 */

export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 4096;
const WORDS_PER_FRAME = PAGE_SIZE >>> 2;
const CHUNK_SHIFT = 8;
const FRAMES_PER_CHUNK = 1 << CHUNK_SHIFT; // 1 MiB of frames per chunk
const CHUNK_MASK = FRAMES_PER_CHUNK - 1;
const CACHE_SIZE = 1024; // direct-mapped PFN -> slot cache, power of two
const CACHE_MASK = CACHE_SIZE - 1;
const TWO32 = 4294967296;
const EMPTY_WORDS = new Uint32Array(0);

export class PhysMemory {
  private readonly words: Uint32Array[] = [];
  private readonly bytes: Uint8Array[] = [];
  private readonly slotOf = new Map<number, number>();
  /** Backed frames per 2 MiB region (PFN >> 9): zeroFrames() skips regions with none. */
  private readonly regionFrames = new Map<number, number>();
  private readonly pfnOfSlot: number[] = [];
  private readonly cachePfn = new Float64Array(CACHE_SIZE).fill(-1);
  private readonly cacheSlot = new Int32Array(CACHE_SIZE);
  /**
   * The same cache keyed by the halves of a paging-structure entry, for walkers (slotOfEntry):
   * words 4c, 4c+1, 4c+2 are PFN bits 27:0, PFN bits 39:28 and the slot. Int32 compares only,
   * so a walk never turns a frame number into a double on its way from one level to the next.
   */
  private readonly entryCache = new Int32Array(CACHE_SIZE * 4).fill(-1);
  /**
   * For page walkers: the table each paging level read last, words 4L..4L+2 for level L (1..5):
   * its address bits 31:12 in place and 51:32, and the word base of its frame in walkWords[L].
   * A walk that meets the same table again reads it from here, at an address that does not
   * depend on the entry above (walk.ts); walkTable() fills it. Slots never move, so it only
   * ever goes stale by naming another table, which the compare catches.
   */
  readonly walkMemo = new Int32Array(24).fill(-1);
  readonly walkWords: Uint32Array[] = Array.from({ length: 6 }, () => EMPTY_WORDS);
  /** Physical address width in bits (CPUID.80000008H:EAX[7:0]); addresses at or above 2^maxPhysBits do not exist. */
  readonly maxPhysBits: number;

  constructor(maxPhysBits = 46) {
    if (!Number.isInteger(maxPhysBits) || maxPhysBits < 32 || maxPhysBits > 52) {
      throw new RangeError(`MAXPHYADDR must be an integer in 32..52, got ${maxPhysBits}`);
    }
    this.maxPhysBits = maxPhysBits;
  }

  /** Number of frames that hold data. */
  get frameCount(): number {
    return this.pfnOfSlot.length;
  }

  // The lookups below are on the page walk's path: literals, not the module constants (each use of
  // one is a context load and check in V8). 1023 = CACHE_MASK, 8 = CHUNK_SHIFT, 255 = CHUNK_MASK,
  // 1024 = WORDS_PER_FRAME.

  /** Slot of a backed frame, or -1. */
  slot(pfn: number): number {
    const c = pfn & 1023;
    if (this.cachePfn[c] === pfn) return this.cacheSlot[c];
    const s = this.slotOf.get(pfn);
    if (s === undefined) return -1;
    this.cachePfn[c] = pfn;
    this.cacheSlot[c] = s;
    return s;
  }

  /** Slot of the frame that the address field (bits 51:12) of the entry `hi:lo` names, or -1. */
  slotOfEntry(lo: number, hi: number): number {
    const k = (lo >>> 12) | ((hi & 0xff) << 20);
    const c = (k & 1023) << 2;
    const ec = this.entryCache;
    if (ec[c] === k && ec[c + 1] === ((hi >>> 8) & 0xfff)) return ec[c + 2];
    return this.slotOfEntryMiss(lo, hi, c);
  }

  private slotOfEntryMiss(lo: number, hi: number, c: number): number {
    const s = this.slot((hi & 0xfffff) * 1048576 + (lo >>> 12));
    if (s >= 0) {
      const ec = this.entryCache;
      ec[c] = (lo >>> 12) | ((hi & 0xff) << 20);
      ec[c + 1] = (hi >>> 8) & 0xfff;
      ec[c + 2] = s;
    }
    return s;
  }

  /**
   * A walker at `level` needs the table at `addrLo` (bits 31:12 in place) / `addrHi` (bits 51:32):
   * records it in walkMemo and walkWords[level] and returns the word base of its frame, or -1
   * when the frame is not backed (reads as zero; nothing recorded).
   */
  walkTable(level: number, addrLo: number, addrHi: number): number {
    const s = this.slotOfEntry(addrLo, addrHi);
    if (s < 0) return -1;
    const base = (s & 255) << 10;
    const m = this.walkMemo;
    m[level << 2] = addrLo & 0xfffff000;
    m[(level << 2) + 1] = addrHi & 0xfffff;
    m[(level << 2) + 2] = base;
    this.walkWords[level] = this.words[s >>> 8];
    return base;
  }

  /** Slot of the frame, backing it with zeros first if needed. */
  ensure(pfn: number): number {
    const s = this.slot(pfn);
    if (s >= 0) return s;
    if (!Number.isInteger(pfn) || pfn < 0 || pfn >= 2 ** (this.maxPhysBits - PAGE_SHIFT)) {
      throw new RangeError(`frame 0x${pfn.toString(16)} is beyond MAXPHYADDR ${this.maxPhysBits}`);
    }
    const slot = this.pfnOfSlot.length;
    if ((slot & CHUNK_MASK) === 0) {
      const buf = new ArrayBuffer(FRAMES_PER_CHUNK * PAGE_SIZE);
      this.words.push(new Uint32Array(buf));
      this.bytes.push(new Uint8Array(buf));
    }
    this.pfnOfSlot.push(pfn);
    this.slotOf.set(pfn, slot);
    const region = Math.floor(pfn / 512);
    this.regionFrames.set(region, (this.regionFrames.get(region) ?? 0) + 1);
    const c = pfn & CACHE_MASK;
    this.cachePfn[c] = pfn;
    this.cacheSlot[c] = slot;
    return slot;
  }

  has(pfn: number): boolean {
    return this.slot(pfn) >= 0;
  }

  /**
   * Zero the backed frames among the `n` from `pfn` (unbacked ones read as zero already),
   * looking only at the 2 MiB regions that have a backed frame: a 2 MiB page of fresh memory
   * costs one Map lookup, not 512.
   */
  zeroFrames(pfn: number, n: number): void {
    const end = pfn + n;
    for (let r = Math.floor(pfn / 512); r * 512 < end; r++) {
      if (!this.regionFrames.has(r)) continue;
      for (let f = Math.max(pfn, r * 512), e = Math.min(end, r * 512 + 512); f < e; f++) {
        const s = this.slot(f);
        if (s >= 0) this.words[s >>> 8].fill(0, (s & 255) << 10, ((s & 255) << 10) + 1024);
      }
    }
  }

  /** Backed frame numbers in ascending order. */
  frames(): number[] {
    return [...this.pfnOfSlot].sort((a, b) => a - b);
  }

  /** The u32 at a 4-byte-aligned physical address (a Number < 2^52). */
  read32(pa: number): number {
    const pfn = Math.floor(pa / 4096);
    const s = this.slot(pfn);
    if (s < 0) return 0;
    return this.words[s >>> 8][((s & 255) << 10) + ((pa - pfn * 4096) >>> 2)];
  }

  write32(pa: number, value: number): void {
    const pfn = Math.floor(pa / 4096);
    const s = this.ensure(pfn);
    this.words[s >>> 8][((s & 255) << 10) + ((pa - pfn * 4096) >>> 2)] = value >>> 0;
  }

  /** OR bits into the u32 at `pa` (A/D updates); the frame must be backed. */
  or32(pa: number, bits: number): void {
    const s = this.slot(Math.floor(pa / PAGE_SIZE));
    if (s < 0) return;
    const w = this.words[s >>> CHUNK_SHIFT];
    const i = ((s & CHUNK_MASK) * WORDS_PER_FRAME) + ((pa % PAGE_SIZE) >>> 2);
    w[i] = (w[i] | bits) >>> 0;
  }

  /** Write a 64-bit entry given as halves. */
  write64(pa: number, lo: number, hi: number): void {
    this.write32(pa, lo);
    this.write32(pa + 4, hi);
  }

  /** A 64-bit value as BigInt: for the edges (parsing, printing, tests), never per access. */
  read64Big(pa: number): bigint {
    return (BigInt(this.read32(pa + 4)) << 32n) | BigInt(this.read32(pa));
  }

  write64Big(pa: number, value: bigint): void {
    this.write64(pa, Number(value & 0xffffffffn), Number((value >> 32n) & 0xffffffffn));
  }

  readByte(pa: number): number {
    const s = this.slot(Math.floor(pa / PAGE_SIZE));
    if (s < 0) return 0;
    return this.bytes[s >>> CHUNK_SHIFT][(s & CHUNK_MASK) * PAGE_SIZE + (pa % PAGE_SIZE)];
  }

  writeByte(pa: number, value: number): void {
    const s = this.ensure(Math.floor(pa / PAGE_SIZE));
    this.bytes[s >>> CHUNK_SHIFT][(s & CHUNK_MASK) * PAGE_SIZE + (pa % PAGE_SIZE)] = value;
  }

  /** Copy `len` bytes starting at `pa` into `dst[dstOff..]` (may cross frames). */
  readBytes(pa: number, dst: Uint8Array, dstOff: number, len: number): void {
    while (len > 0) {
      const off = pa % PAGE_SIZE;
      const n = Math.min(len, PAGE_SIZE - off);
      const s = this.slot(Math.floor(pa / PAGE_SIZE));
      if (s < 0) dst.fill(0, dstOff, dstOff + n);
      else {
        const base = (s & CHUNK_MASK) * PAGE_SIZE + off;
        dst.set(this.bytes[s >>> CHUNK_SHIFT].subarray(base, base + n), dstOff);
      }
      pa += n;
      dstOff += n;
      len -= n;
    }
  }

  writeBytes(pa: number, src: Uint8Array): void {
    let done = 0;
    while (done < src.length) {
      const off = pa % PAGE_SIZE;
      const n = Math.min(src.length - done, PAGE_SIZE - off);
      const s = this.ensure(Math.floor(pa / PAGE_SIZE));
      this.bytes[s >>> CHUNK_SHIFT].set(src.subarray(done, done + n), (s & CHUNK_MASK) * PAGE_SIZE + off);
      pa += n;
      done += n;
    }
  }

  /** The whole frame's words (a view, not a copy) — for loaders and bulk builders. */
  frameWords(pfn: number): Uint32Array {
    const s = this.ensure(pfn);
    const base = (s & CHUNK_MASK) * WORDS_PER_FRAME;
    return this.words[s >>> CHUNK_SHIFT].subarray(base, base + WORDS_PER_FRAME);
  }

  /** Hot-path access for walkers: the word array of a slot and the word index of its first word. */
  wordsOfSlot(slot: number): Uint32Array {
    return this.words[slot >>> 8];
  }

  wordBaseOfSlot(slot: number): number {
    return (slot & 255) << 10;
  }
}

/** Split a Number physical address (< 2^53) into u32 halves. */
export function splitAddress(pa: number): { lo: number; hi: number } {
  return { lo: pa % TWO32 >>> 0, hi: Math.floor(pa / TWO32) >>> 0 };
}
