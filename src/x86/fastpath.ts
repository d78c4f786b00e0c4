/**
 * The TLB-hit fast path: a direct-mapped table in front of the Tlb's set-associative arrays
 * (tlb.ts), so that a hit is one probe of one typed array and a compare of three words (a 4 KiB
 * page; a 2 MiB page is found by the second probe, a 1 GiB page by the third). It is a cache
 * of the Tlb, never more: every slot names the Tlb row it came from, and a hit through it is
 * counted, and ages the row's LRU stamp, exactly as Tlb.find() would. So the TLB the model
 * reports (hits, misses, evictions, what survives a flush) is the same with or without it.
 *
 * Slots (Int32Array `words`, 4 words a slot; one table per page size, in one array):
 *
 *   word 0   VA bits 31:12 of the page (31:21, 31:30 for 2 MiB, 1 GiB), the size class in
 *            bits 9:8, and in bits 7:0 the rights already folded for the slot's mode:
 *            bit `access` set = that access kind (ACCESS_* bits) is allowed and needs no walk
 *            (ModeRights.allowed, rights.ts: checkAccess, SDM 4.6; a write through an entry
 *            whose D is not known set must walk, 4.8, so its bit is clear)
 *   word 1   VA bits 63:32
 *   word 2   ctx = PCID | mode id << 12: the PCID (SDM 4.10.1) and the mode (ModeRights.id)
 *            the slot was filled under; -1 empty. One compare checks both.
 *   word 3   the Tlb row's serial (FastTlb.serial): valid while the row still holds that serial
 *
 *   4 KiB slots [0, 1024) indexed by VA bits 21:12; 2 MiB slots [1024, 1280) by VA bits 28:21;
 *   1 GiB slots [1280, 1296) by VA bits 33:30.
 *
 * Why a hit here is the entry Tlb.find() would return (the invariant the property tests check,
 * test/x86/fastpath.test.ts and fastpath-tlb.test.ts):
 *  - a row that is dropped or replaced loses its serial (Tlb.drop), so no slot outlives its entry;
 *  - find() prefers 4 KiB over 2 MiB over 1 GiB entries (tlb.ts), so a larger slot must not
 *    hide a smaller entry: filling a row clears the larger slots over its page (Tlb.fill), and
 *    a larger slot is only filled when no smaller valid entry overlaps it (Tlb.overlapsSmaller);
 *  - ctx holds the PCID, so an entry is only used under the PCID it was found for (a global one
 *    is found again, and its slot refilled, under another PCID: 4.10.2.4);
 *  - the mode id changes with anything checkAccess() reads (CpuState.modeVersion), so the folded
 *    rights are the current mode's;
 *  - mode ids start over only after ModeRights.wraps changes, and serials only after
 *    FastTlb.renumber(): both empty this table first.
 */

export const FAST_WORDS_PER_SLOT = 4;
export const FAST4_SLOTS = 1024;
export const FAST2_SLOTS = 256;
export const FAST1_SLOTS = 16;
export const FAST2_BASE = FAST4_SLOTS * FAST_WORDS_PER_SLOT;
export const FAST1_BASE = FAST2_BASE + FAST2_SLOTS * FAST_WORDS_PER_SLOT;
export const FAST_WORDS = FAST1_BASE + FAST1_SLOTS * FAST_WORDS_PER_SLOT;
export const FAST_SIZE_SHIFT = 8;
export const FAST_ALLOWED_MASK = 0xff;
export const FAST_EMPTY = -1;

/** Word offset of the 4 KiB, 2 MiB, 1 GiB slot for `va`. */
export function fastSlot4(vaLo: number): number {
  return ((vaLo >>> 12) & (FAST4_SLOTS - 1)) << 2;
}
export function fastSlot2(vaLo: number, vaHi: number): number {
  return FAST2_BASE + ((((vaLo >>> 21) | (vaHi << 11)) & (FAST2_SLOTS - 1)) << 2);
}
export function fastSlot1(vaLo: number, vaHi: number): number {
  return FAST1_BASE + ((((vaLo >>> 30) | (vaHi << 2)) & (FAST1_SLOTS - 1)) << 2);
}

/** VA bits 31:0 that belong to the page number, per size class (as tlb.ts). */
const LO_MASK = [0xfffff000 | 0, 0xffe00000 | 0, 0xc0000000 | 0];
/** Serials of more rows than this would leave too few generations: no fast path then. */
const MAX_ROW_BITS = 14;

export class FastTlb {
  readonly words = new Int32Array(FAST_WORDS).fill(FAST_EMPTY);
  /**
   * Serial of each Tlb row: gen << rowBits | row, new at every fill, 0 while the row is invalid.
   * With rowBits <= 14 there are >= 2^17 generations before renumber() starts them over.
   */
  readonly serial: Int32Array;
  /** serial & rowMask is the row. */
  readonly rowMask: number;
  /**
   * False for TLBs too large for serials (> 16383 rows): slots are never filled then. Tests
   * turn it off to get the plain set-associative TLB as a reference (test/x86/fastpath.test.ts).
   */
  enabled: boolean;
  private readonly rowBits: number;
  private gen = 1;

  constructor(rows: number) {
    this.serial = new Int32Array(rows);
    this.rowBits = 32 - Math.clz32(rows - 1);
    this.rowMask = (1 << this.rowBits) - 1;
    this.enabled = this.rowBits <= MAX_ROW_BITS;
  }

  /**
   * Row `row` (size class `k`) now holds the entry for `va`: a new serial, and the larger
   * slots over the page emptied, so they cannot hide the new entry from the fast path.
   */
  filled(row: number, k: number, vaLo: number, vaHi: number, meta: Uint32Array): void {
    if (this.gen >= 1 << (31 - this.rowBits)) this.renumber(meta);
    this.serial[row] = (this.gen++ << this.rowBits) | row;
    this.forgetLarger(k, vaLo, vaHi);
  }

  /** Serials start over: every valid row gets a fresh one, and no slot keeps an old one. */
  private renumber(meta: Uint32Array): void {
    this.clear();
    this.gen = 1;
    for (let i = 0; i < meta.length; i++) this.serial[i] = meta[i] !== 0 ? (this.gen++ << this.rowBits) | i : 0;
  }

  /** Word offset of the slot of size class `k` (0 4 KiB, 1 2 MiB, 2 1 GiB) for `va`. */
  slotOf(k: number, vaLo: number, vaHi: number): number {
    return k === 0 ? fastSlot4(vaLo) : k === 1 ? fastSlot2(vaLo, vaHi) : fastSlot1(vaLo, vaHi);
  }

  /** Fill the slot of size class `k` for `va` (a translation Tlb.find() returned just now). */
  put(k: number, vaLo: number, vaHi: number, allowed: number, ctx: number, serial: number): void {
    const s = this.slotOf(k, vaLo, vaHi);
    const w = this.words;
    w[s] = (vaLo & LO_MASK[k]) | (k << FAST_SIZE_SHIFT) | (allowed & FAST_ALLOWED_MASK);
    w[s + 1] = vaHi | 0;
    w[s + 2] = ctx;
    w[s + 3] = serial;
  }

  /** A new entry of size class `k` covers `va`: empty the larger slots over it (they would hide it). */
  forgetLarger(k: number, vaLo: number, vaHi: number): void {
    const w = this.words;
    if (k === 0) w[fastSlot2(vaLo, vaHi) + 2] = FAST_EMPTY;
    if (k <= 1) w[fastSlot1(vaLo, vaHi) + 2] = FAST_EMPTY;
  }

  clear(): void {
    this.words.fill(FAST_EMPTY);
  }
}
