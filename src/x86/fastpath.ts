/**
 * The TLB-hit fast path: two direct-mapped tables in front of the Tlb's set-associative arrays
 * (tlb.ts), in ONE typed array, so that a hit is two independent probes of that array, a
 * branch-free choice between them and one compare — no per-size chain of branches, which on a
 * mix of page sizes mispredicted on about every other access. It is a cache of the Tlb, never
 * more: every slot names the Tlb row it came from, and a hit through it is counted, and ages the
 * row's LRU stamp, exactly as Tlb.find() would. So the TLB the model reports (hits, misses,
 * evictions, what survives a flush) is the same with or without it.
 *
 * Slots (Int32Array `words`, 8 words a slot):
 *
 *   word 0   tag: VA bits 31:12 of a 4 KiB page (31:21 in the 2 MiB table), the size class of
 *            the Tlb entry in bits 9:8, and in bits 7:0 the rights already folded for the
 *            slot's mode: bit `access` set = that access kind (ACCESS_* bits) is allowed and
 *            needs no walk (ModeRights.allowed, rights.ts: checkAccess, SDM 4.6; a write
 *            through an entry whose D is not known set must walk, 4.8, so its bit is clear)
 *   word 1   VA bits 63:32
 *   word 2   ctx = PCID | mode index << 12: the PCID (SDM 4.10.1) and the mode (ModeRights.id)
 *            the slot was filled under; -1 empty. One compare checks both.
 *   word 3   the Tlb row the slot caches (its LRU stamp is aged by a hit)
 *   word 4   the page frame's physical address bits 31:0 (int32)
 *   word 5   the page frame's physical address bits 51:32
 *   word 6   the Translation.info word of a hit on this slot (walk.ts: rights, level, page shift)
 *   word 7   the offset mask of the page: 0xfff, 0x1fffff or 0x3fffffff
 *
 *   4 KiB table: slots [0, 1024), indexed by VA bits 21:12, for 4 KiB entries.
 *   2 MiB table: slots [1024, 1280), indexed by VA bits 28:21, for 2 MiB entries and for the
 *            2 MiB pieces of 1 GiB entries (tagged with the piece's VA bits 31:21, translated
 *            with the 1 GiB frame and mask): a 1 GiB page costs no third probe.
 *
 * Why a hit here is the entry Tlb.find() would return (the invariant the property tests check,
 * test/x86/fastpath.test.ts and fastpath-tlb.test.ts):
 *  - a row that is dropped, replaced or evicted empties the slots that name it (Tlb.drop, fill
 *    -> FastTlb.dropRow; flushAll -> clear), so no slot outlives its entry. A 4 KiB or 2 MiB
 *    row can only sit in the one slot its page number indexes; a 1 GiB row in any 2 MiB slot,
 *    so dropping one scans that table (256 slots; 1 GiB entries are few and change rarely).
 *    The hit path therefore checks no per-row state: before, every slot carried the row's
 *    serial and a hit compared it with the row's current one, a dependent load that cost
 *    ~14% of the batched hit rate (bench/run.ts: 140 -> 160 M/s without it);
 *  - find() prefers 4 KiB over 2 MiB over 1 GiB entries (tlb.ts), so a larger slot must not
 *    hide a smaller entry: filling a row clears the 2 MiB slot over its page (Tlb.fill ->
 *    forgetLarger), and a 2 MiB slot is only filled when no smaller valid entry overlaps the
 *    2 MiB it covers (Tlb.overlapsSmaller); a 4 KiB slot, tried first, wins over a 2 MiB one;
 *  - ctx holds the PCID, so an entry is only used under the PCID it was found for (a global one
 *    is found again, and its slot refilled, under another PCID: 4.10.2.4);
 *  - the mode id changes with anything checkAccess() reads (CpuState.modeVersion), so the folded
 *    rights are the current mode's;
 *  - mode ids start over only after ModeRights.wraps changes, which empties the tables first.
 */

export const FAST_WORDS_PER_SLOT = 8;
export const FAST4_SLOTS = 1024;
export const FAST2_SLOTS = 256;
/** Word offset of the 2 MiB table. */
export const FAST2_BASE = FAST4_SLOTS * FAST_WORDS_PER_SLOT;
/** Words of both tables. */
export const FAST_WORDS = FAST2_BASE + FAST2_SLOTS * FAST_WORDS_PER_SLOT;
export const FAST_SIZE_SHIFT = 8;
export const FAST_ALLOWED_MASK = 0xff;
export const FAST_EMPTY = -1;
// Word indices within a slot.
export const FW_TAG = 0;
export const FW_HI = 1;
export const FW_CTX = 2;
export const FW_ROW = 3;
export const FW_FRAME_LO = 4;
export const FW_FRAME_HI = 5;
export const FW_INFO = 6;
export const FW_MASK = 7;

/** Word offset of the 4 KiB slot for `va`. */
export function fastSlot4(vaLo: number): number {
  return ((vaLo >>> 12) & (FAST4_SLOTS - 1)) << 3;
}
/** Word offset of the 2 MiB slot for `va` (2 MiB entries, and 2 MiB pieces of 1 GiB ones). */
export function fastSlot2(vaLo: number, vaHi: number): number {
  return FAST2_BASE + ((((vaLo >>> 21) | (vaHi << 11)) & (FAST2_SLOTS - 1)) << 3);
}

const TWO32 = 4294967296;

export class FastTlb {
  /** The two slot tables. */
  readonly words = new Int32Array(FAST_WORDS);
  /**
   * False: slots are never filled. Tests turn it off to get the plain set-associative TLB as a
   * reference (test/x86/fastpath.test.ts).
   */
  enabled = true;

  constructor() {
    this.clear();
  }

  /**
   * Row `row` of size class `k` (0 4 KiB, 1 2 MiB, 2 1 GiB) that held the page with tag
   * (tagLo, tagHi) is dropped or about to be overwritten: empty the slots that name it.
   */
  dropRow(row: number, k: number, tagLo: number, tagHi: number): void {
    const w = this.words;
    if (k === 2) {
      for (let s = FAST2_BASE; s < FAST_WORDS; s += FAST_WORDS_PER_SLOT) if (w[s + FW_ROW] === row) w[s + FW_CTX] = FAST_EMPTY;
      return;
    }
    const s = k === 0 ? fastSlot4(tagLo) : fastSlot2(tagLo, tagHi);
    if (w[s + FW_ROW] === row) w[s + FW_CTX] = FAST_EMPTY;
  }

  /**
   * Fill the slot for `va` from Tlb row state: size class `k` (0 4 KiB, 1 2 MiB, 2 1 GiB: its
   * 2 MiB piece around `va`), the page frame, the folded `allowed` mask, ctx, the row and the
   * Translation.info of a hit.
   */
  put(k: number, vaLo: number, vaHi: number, frame: number, allowed: number, ctx: number, row: number, info: number): void {
    const s = k === 0 ? fastSlot4(vaLo) : fastSlot2(vaLo, vaHi);
    const w = this.words;
    w[s + FW_TAG] = (vaLo & (k === 0 ? 0xfffff000 : 0xffe00000)) | (k << FAST_SIZE_SHIFT) | (allowed & FAST_ALLOWED_MASK);
    w[s + FW_HI] = vaHi | 0;
    w[s + FW_CTX] = ctx;
    w[s + FW_ROW] = row;
    const lo = frame >>> 0; // bits 31:0 (exact below 2^53)
    w[s + FW_FRAME_LO] = lo | 0;
    w[s + FW_FRAME_HI] = (frame - lo) / TWO32;
    w[s + FW_INFO] = info;
    w[s + FW_MASK] = k === 0 ? 0xfff : k === 1 ? 0x1fffff : 0x3fffffff;
  }

  /**
   * A new entry of size class `k` covers `va`: empty the 2 MiB slot over it when that holds a
   * larger page (a 2 MiB one over a new 4 KiB entry, a 1 GiB piece over a new 2 MiB or 4 KiB one).
   */
  forgetLarger(k: number, vaLo: number, vaHi: number): void {
    if (k === 2) return;
    const s = fastSlot2(vaLo, vaHi);
    const w = this.words;
    if (((w[s + FW_TAG] >>> FAST_SIZE_SHIFT) & 3) > k) w[s + FW_CTX] = FAST_EMPTY;
  }

  /** Empty every slot. */
  clear(): void {
    const w = this.words;
    for (let s = 0; s < FAST_WORDS; s += FAST_WORDS_PER_SLOT) w[s + FW_CTX] = FAST_EMPTY;
  }
}
