/**
 * The translation lookaside buffer of one hardware thread (Intel SDM Vol. 3A 4.10.2), tagged
 * with process-context identifiers (4.10.1), with one set-associative array per page size
 * (4.10.2.3) and true LRU replacement within a set.
 *
 * Storage: every entry of every array lives in the same five typed-array columns; entry `i`
 * is row `i`. The 4 KiB array occupies rows [0, n4K), the 2 MiB array the next n2M rows and
 * the 1 GiB array the last n1G rows. Within an array, set `s` holds rows
 * base + s*ways .. base + s*ways + ways - 1. The set of a page is the low bits of its virtual
 * page number (sets are a power of two).
 *
 *   column    type          contents
 *   tagLo     Int32Array    VA bits 31:0 with the page offset cleared (the low part of the VPN,
 *                           kept in place: bits 31:12, 31:21 or 31:30 by page size)
 *   tagHi     Int32Array    VA bits 63:32 (the canonical, sign-extended upper half of the VPN)
 *   meta      Uint32Array   packed word, below
 *   frame     Float64Array  physical address of the page frame (a Number < 2^52)
 *   stamp     Float64Array  LRU clock value of the entry's last fill or hit (larger = newer);
 *                           its last cell (clockIndex) is the clock itself, so a fast-path hit
 *                           touches one array, not the array and a field of this object
 *
 * meta: the packed word of tlb-entry.ts (PCID, V, G, U, W, XD, D, PKEY).
 *
 * One extra row after the last set is never valid: the way hints (below) start out there.
 *
 * Way hints (hint4K, hint2M; Int32Array): for the low 10 (8) bits of a 4 KiB (2 MiB) page
 * number, the row that last served it. They are only a place to look first, checked like any
 * row, so they change speed, never results (see find()). Hits are not counted separately: the
 * LRU clock advances once per hit and once per fill.
 *
 * The TLB-hit fast path (fastpath.ts, `fast`) caches rows: every drop, and fill() of a valid
 * victim, empties the slots that name the row, so the fast path never outlives an entry.
 *
 * The TLB knows nothing of the paging structures: the Mmu (mmu.ts) fills it from walks and
 * calls the invalidation operations below with the SDM semantics of each instruction.
 * Lookups never allocate: lookup() fills a caller-owned TlbResult, find() returns the row.
 */
import { FastTlb } from './fastpath.ts';

import {
  SIZE_1G, SIZE_2M, SIZE_4K, SKYLAKE_L1_DTLB, TLB_G, TLB_PCID_MASK, TLB_V, TlbResult, type TlbGeometry,
} from './tlb-entry.ts';

export * from './tlb-entry.ts';

/** VA bits 31:0 that belong to the page number, per size class. */
const LO_MASKS = Int32Array.of(0xfffff000 | 0, 0xffe00000 | 0, 0xc0000000 | 0);

const VP = TLB_V | TLB_PCID_MASK;
const VG = TLB_V | TLB_G;
const LO_4K = 0xfffff000 | 0;
const LO_2M = 0xffe00000 | 0;
const LO_1G = 0xc0000000 | 0;
const HINT4_MASK = 1023;
const HINT2_MASK = 255;

export class Tlb {
  readonly geometry: Readonly<TlbGeometry>;
  /** Rows of real entries; the arrays hold one more, a never-valid row that hints start at. */
  readonly size: number;
  readonly tagLo: Int32Array;
  readonly tagHi: Int32Array;
  readonly meta: Uint32Array;
  readonly frame: Float64Array;
  readonly stamp: Float64Array;
  /** The TLB-hit fast path over these rows, and the rows' serials (fastpath.ts). */
  readonly fast: FastTlb;
  // Geometry, per size: first row, sets - 1, ways.
  private readonly b2M: number;
  private readonly b1G: number;
  private readonly m4K: number;
  private readonly m2M: number;
  private readonly m1G: number;
  private readonly w4K: number;
  private readonly w2M: number;
  private readonly w1G: number;
  /**
   * Way prediction, not part of the architecture: the row that last served a 4 KiB (2 MiB)
   * page number with these low bits. A 4 KiB hint is tried before the 4 KiB set, a 2 MiB one
   * before the 2 MiB set; as fill() keeps at most one entry of a size matching any lookup, a
   * lookup finds the entry the plain scan in size order would find.
   */
  private readonly hint4K = new Int32Array(HINT4_MASK + 1);
  private readonly hint2M = new Int32Array(HINT2_MASK + 1);
  /**
   * LRU clock: advanced by every hit and every fill (so hits need no counter of their own).
   * Public for the fast path (Mmu.translateBatch keeps it in a local between slow paths); it
   * lives in stamp[clockIndex].
   */
  get clock(): number { return this.stamp[this.clockIndex]; }
  set clock(v: number) { this.stamp[this.clockIndex] = v; }
  /** stamp[clockIndex] is the clock (one array for the hit path to touch). */
  readonly clockIndex: number;
  private clockAtReset = 0;

  /** Lookups that found an entry (since construction or resetCounters()). */
  get hits(): number {
    return this.clock - this.clockAtReset - this.fills;
  }

  misses = 0;
  fills = 0;
  /** Valid entries dropped by invalidations (not by replacement). */
  invalidated = 0;
  /** Valid entries dropped to make room (capacity / conflict evictions). */
  evictions = 0;

  /**
   * `fastPath` false: a TLB no hit path probes (Mmu's second level): its FastTlb is never filled,
   * so drops and fills skip keeping it.
   */
  constructor(geometry: Partial<TlbGeometry> = {}, private readonly fastPath = true) {
    const g = { ...SKYLAKE_L1_DTLB, ...geometry };
    for (const [sets, ways] of [[g.sets4K, g.ways4K], [g.sets2M, g.ways2M], [g.sets1G, g.ways1G]]) {
      if (!Number.isInteger(sets) || sets < 1 || (sets & (sets - 1)) !== 0 || sets > 1 << 20) {
        throw new RangeError(`TLB sets must be a power of two in 1..2^20, got ${sets}`);
      }
      if (!Number.isInteger(ways) || ways < 0 || ways > 64) throw new RangeError(`TLB ways must be an integer in 0..64, got ${ways}`);
    }
    this.geometry = Object.freeze(g);
    this.m4K = g.sets4K - 1;
    this.m2M = g.sets2M - 1;
    this.m1G = g.sets1G - 1;
    this.w4K = g.ways4K;
    this.w2M = g.ways2M;
    this.w1G = g.ways1G;
    this.b2M = g.sets4K * g.ways4K;
    this.b1G = this.b2M + g.sets2M * g.ways2M;
    const rows = this.b1G + g.sets1G * g.ways1G;
    this.size = rows;
    this.tagLo = new Int32Array(rows + 1);
    this.tagHi = new Int32Array(rows + 1);
    this.meta = new Uint32Array(rows + 1);
    this.frame = new Float64Array(rows + 1);
    this.stamp = new Float64Array(rows + 2);
    this.clockIndex = rows + 1;
    this.fast = new FastTlb();
    this.fast.enabled = fastPath;
    this.hint4K.fill(rows);
    this.hint2M.fill(rows);
  }

  /** First row of the set that would hold the page of `va` in size class `k`. */
  private setBase(k: number, vaLo: number, vaHi: number): number {
    // VPN bits above the offset; (32 - shift) < 32 so the shift of vaHi is exact.
    if (k === SIZE_4K) return (((vaLo >>> 12) | (vaHi << 20)) & this.m4K) * this.w4K;
    if (k === SIZE_2M) return this.b2M + (((vaLo >>> 21) | (vaHi << 11)) & this.m2M) * this.w2M;
    return this.b1G + (((vaLo >>> 30) | (vaHi << 2)) & this.m1G) * this.w1G;
  }

  /**
   * Find a valid entry for `va` usable under `pcid`: same page number, and either the same
   * PCID or global (4.10.2.4). Sizes are probed 4 KiB, 2 MiB, 1 GiB; the first match wins (with
   * several, the SDM leaves the choice to the implementation, 4.10.2.3). Counts a hit or miss.
   */
  lookup(vaLo: number, vaHi: number, pcid: number, out: TlbResult): boolean {
    const i = this.find(vaLo, vaHi, pcid);
    if (i < 0) return false;
    out.index = i;
    out.frame = this.frame[i];
    out.pageShift = i < this.b2M ? 12 : i < this.b1G ? 21 : 30;
    out.meta = this.meta[i];
    return true;
  }

  /**
   * lookup() without the result object: the row of the matching entry, or -1. Its columns
   * (meta, frame) and pageShiftOf(row) describe it. Counts a hit or miss and updates LRU.
   */
  find(vaLo: number, vaHi: number, pcid: number): number {
    // The hinted 4 KiB row only: small enough for V8 to inline into callers.
    const i = this.hint4K[(vaLo >>> 12) & HINT4_MASK];
    const m = this.meta[i];
    if (this.tagLo[i] === (vaLo & LO_4K) && this.tagHi[i] === (vaHi | 0) && ((m & VP) === (TLB_V | pcid) || (m & VG) === VG)) {
      this.stamp[i] = this.tick();
      return i;
    }
    return this.findInSets(vaLo, vaHi, pcid);
  }

  /** The rest of find(): the 4 KiB set, then the 2 MiB hint and set, then the 1 GiB set. */
  private findInSets(vaLo: number, vaHi: number, pcid: number): number {
    const hi = vaHi | 0;
    const want = TLB_V | pcid;
    const tagLo = this.tagLo;
    const tagHi = this.tagHi;
    const meta = this.meta;
    let lo = vaLo & LO_4K;
    const h4 = (vaLo >>> 12) & HINT4_MASK;
    let i = 0;
    let m = 0;
    let row = (((vaLo >>> 12) | (vaHi << 20)) & this.m4K) * this.w4K;
    for (i = row; i < row + this.w4K; i++) {
      if (tagLo[i] !== lo || tagHi[i] !== hi) continue;
      m = meta[i];
      if ((m & VP) === want || (m & VG) === VG) {
        this.hint4K[h4] = i;
        return this.hit(i);
      }
    }
    // 2 MiB.
    lo = vaLo & LO_2M;
    const h2 = (vaLo >>> 21) & HINT2_MASK;
    i = this.hint2M[h2];
    m = meta[i];
    if (tagLo[i] === lo && tagHi[i] === hi && ((m & VP) === want || (m & VG) === VG)) return this.hit(i);
    row = this.b2M + (((vaLo >>> 21) | (vaHi << 11)) & this.m2M) * this.w2M;
    for (i = row; i < row + this.w2M; i++) {
      if (tagLo[i] !== lo || tagHi[i] !== hi) continue;
      m = meta[i];
      if ((m & VP) === want || (m & VG) === VG) {
        this.hint2M[h2] = i;
        return this.hit(i);
      }
    }
    // 1 GiB.
    lo = vaLo & LO_1G;
    row = this.b1G + (((vaLo >>> 30) | (vaHi << 2)) & this.m1G) * this.w1G;
    for (i = row; i < row + this.w1G; i++) {
      if (tagLo[i] !== lo || tagHi[i] !== hi) continue;
      m = meta[i];
      if ((m & VP) === want || (m & VG) === VG) return this.hit(i);
    }
    this.misses++;
    return -1;
  }

  private tick(): number {
    const st = this.stamp;
    const c = st[this.clockIndex] + 1;
    st[this.clockIndex] = c;
    return c;
  }

  private hit(i: number): number {
    this.stamp[i] = this.tick();
    return i;
  }

  /** A hit on row `i` found without find() (the fast path): counted and aged as find() does. */
  touch(i: number): void {
    this.stamp[i] = this.tick();
  }

  /**
   * Whether a valid entry smaller than size class `k` lies in the 2 MiB around `va` and is
   * usable under `pcid` (same PCID or global): find() would prefer it there, so the fast path
   * must not give the large page a 2 MiB slot there (fastpath.ts; a 1 GiB entry's slot covers
   * only the 2 MiB piece around `va`).
   */
  overlapsSmaller(k: number, vaLo: number, vaHi: number, pcid: number): boolean {
    const lo = vaLo & LO_2M;
    const hi = vaHi | 0;
    const end = k === SIZE_2M ? this.b2M : this.b1G;
    for (let i = 0; i < end; i++) {
      const m = this.meta[i];
      if ((m & TLB_V) !== 0 && (this.tagLo[i] & LO_2M) === lo && this.tagHi[i] === hi &&
          ((m & TLB_PCID_MASK) === pcid || (m & TLB_G) !== 0)) return true;
    }
    return false;
  }

  /** Drop row `i` (not counted here), and the fast-path slots that name it. */
  private drop(i: number): void {
    this.meta[i] = 0;
    if (this.fastPath) this.fast.dropRow(i, this.sizeClassOf(i), this.tagLo[i], this.tagHi[i]);
  }

  /** Size class (SIZE_4K, SIZE_2M, SIZE_1G) of the array that holds row `i`. */
  private sizeClassOf(i: number): number {
    return i < this.b2M ? SIZE_4K : i < this.b1G ? SIZE_2M : SIZE_1G;
  }

  /**
   * Insert a translation. `flags` are the TLB_G/U/W/XD/D bits and the key (TLB_PKEY_SHIFT);
   * the PCID and V are added here. Entries of the set that would match a lookup the new entry
   * matches are dropped first (so a lookup never has two candidates of one size; the SDM lets a
   * processor drop any entry at any time, 4.10.2.2); then the first invalid way is used, else the
   * least recently used one.
   */
  fill(vaLo: number, vaHi: number, pageShift: number, pcid: number, flags: number, frame: number): number {
    const k = pageShift === 12 ? SIZE_4K : pageShift === 21 ? SIZE_2M : pageShift === 30 ? SIZE_1G : -1;
    if (k < 0) throw new RangeError(`page shift must be 12, 21 or 30, got ${pageShift}`);
    const n = k === SIZE_4K ? this.w4K : k === SIZE_2M ? this.w2M : this.w1G;
    if (n === 0) return -1;
    const row = this.setBase(k, vaLo, vaHi);
    const lo = vaLo & LO_MASKS[k];
    const hi = vaHi | 0;
    const global = (flags & TLB_G) !== 0;
    for (let i = row; i < row + n; i++) {
      const m = this.meta[i];
      if ((m & TLB_V) !== 0 && this.tagLo[i] === lo && this.tagHi[i] === hi &&
          (global || (m & TLB_G) !== 0 || (m & TLB_PCID_MASK) === pcid)) {
        this.drop(i); // replaced, not invalidated: not counted
      }
    }
    let victim = -1;
    let oldest = -1;
    for (let i = row; i < row + n; i++) {
      if ((this.meta[i] & TLB_V) === 0) {
        victim = i;
        break;
      }
      if (oldest < 0 || this.stamp[i] < this.stamp[oldest]) oldest = i;
    }
    if (victim < 0) {
      victim = oldest;
      this.evictions++;
      if (this.fastPath) this.fast.dropRow(victim, k, this.tagLo[victim], this.tagHi[victim]);
    }
    this.tagLo[victim] = lo;
    this.tagHi[victim] = hi;
    this.meta[victim] = ((flags & ~(TLB_V | TLB_PCID_MASK)) | TLB_V | (pcid & TLB_PCID_MASK)) >>> 0;
    this.frame[victim] = frame;
    this.stamp[victim] = this.tick();
    if (this.fastPath) this.fast.forgetLarger(k, vaLo, vaHi);
    this.fills++;
    if (k === SIZE_4K) this.hint4K[(vaLo >>> 12) & HINT4_MASK] = victim;
    else if (k === SIZE_2M) this.hint2M[(vaLo >>> 21) & HINT2_MASK] = victim;
    return victim;
  }

  /** Drop one entry by row. */
  invalidateEntry(i: number): void {
    if (this.meta[i] & TLB_V) {
      this.drop(i);
      this.invalidated++;
    }
  }

  /** Drop every entry, global or not, of every PCID. Returns how many were valid. */
  flushAll(): number {
    let n = 0;
    for (let i = 0; i < this.size; i++) if (this.meta[i] & TLB_V) n++;
    this.meta.fill(0);
    if (this.fastPath) this.fast.clear();
    this.invalidated += n;
    return n;
  }

  /** Drop every non-global entry of every PCID. */
  flushNonGlobal(): number {
    let n = 0;
    for (let i = 0; i < this.size; i++) {
      if ((this.meta[i] & (TLB_V | TLB_G)) === TLB_V) {
        this.drop(i);
        n++;
      }
    }
    this.invalidated += n;
    return n;
  }

  /** Drop the entries filled under `pcid`: the non-global ones, and the global ones too if asked. */
  flushPcid(pcid: number, includeGlobal: boolean): number {
    let n = 0;
    for (let i = 0; i < this.size; i++) {
      const m = this.meta[i];
      if ((m & TLB_V) !== 0 && (m & TLB_PCID_MASK) === pcid && (includeGlobal || (m & TLB_G) === 0)) {
        this.drop(i);
        n++;
      }
    }
    this.invalidated += n;
    return n;
  }

  /**
   * Drop the entries, of any page size, whose page contains `va` and that are either
   * non-global and filled under `pcid`, or (when `globals`) global whatever their PCID.
   * A global entry filled under `pcid` stays unless `globals` (INVPCID type 0 keeps it).
   */
  flushAddress(vaLo: number, vaHi: number, pcid: number, globals: boolean): number {
    let n = 0;
    const hi = vaHi | 0;
    for (let k = 0; k < 3; k++) {
      const ways = k === SIZE_4K ? this.w4K : k === SIZE_2M ? this.w2M : this.w1G;
      const row = this.setBase(k, vaLo, vaHi);
      const lo = vaLo & LO_MASKS[k];
      for (let i = row; i < row + ways; i++) {
        const m = this.meta[i];
        if ((m & TLB_V) === 0 || this.tagLo[i] !== lo || this.tagHi[i] !== hi) continue;
        const g = (m & TLB_G) !== 0;
        if (g ? globals : (m & TLB_PCID_MASK) === pcid) {
          this.drop(i);
          n++;
        }
      }
    }
    this.invalidated += n;
    return n;
  }

  /** Valid entries, optionally only those matching a predicate on the meta word (tests, reports). */
  countValid(pred?: (meta: number) => boolean): number {
    let n = 0;
    for (let i = 0; i < this.size; i++) {
      const m = this.meta[i];
      if ((m & TLB_V) !== 0 && (pred === undefined || pred(m))) n++;
    }
    return n;
  }

  /** Page shift of the array that holds row `i`. */
  pageShiftOf(i: number): number {
    return i < this.b2M ? 12 : i < this.b1G ? 21 : 30;
  }

  resetCounters(): void {
    this.clockAtReset = this.clock;
    this.misses = this.fills = this.invalidated = this.evictions = 0;
  }
}
