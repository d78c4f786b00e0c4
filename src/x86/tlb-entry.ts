/**
 * The TLB entry format and geometry (Intel SDM Vol. 3A 4.10.1, 4.10.2): the packed meta word
 * of every row of tlb.ts, the page-size classes, and the shapes of the arrays.
 *
 * meta:
 *   31          22 21    18 17  16  15  14  13  12 11                      0
 *  +--------------+--------+---+---+---+---+---+---+-------------------------+
 *  |   reserved   |  PKEY  | D |XD | W | U | G | V |          PCID           |
 *  +--------------+--------+---+---+---+---+---+---+-------------------------+
 *   PCID  the PCID current when the entry was filled (000H when CR4.PCIDE=0) (4.10.1)
 *   V     valid
 *   G     global: the leaf had G=1 and CR4.PGE was 1 at fill time; matches any PCID (4.10.2.4)
 *   U     user-mode address: U/S=1 at every level (4.6.1)
 *   W     writable: R/W=1 at every level (4.6.1)
 *   XD    execute-disable: XD=1 at some level and IA32_EFER.NXE=1 (4.6.1)
 *   D     the leaf's dirty flag is known to be 1 in memory; a write through an entry with D=0
 *         must walk so the processor can set it (4.8)
 *   PKEY  the leaf's protection key, bits 62:59 (4.6.2)
 */

export const TLB_PCID_MASK = 0xfff;
export const TLB_PCID_SHIFT = 0;
export const TLB_V = 1 << 12;
export const TLB_G = 1 << 13;
export const TLB_U = 1 << 14;
export const TLB_W = 1 << 15;
export const TLB_XD = 1 << 16;
export const TLB_D = 1 << 17;
export const TLB_PKEY_SHIFT = 18;
export const TLB_PKEY_MASK = 0xf;

/** Page-size classes, in lookup order. */
export const SIZE_4K = 0;
export const SIZE_2M = 1;
export const SIZE_1G = 2;

export interface TlbGeometry {
  /** Sets × ways of the 4 KiB, 2 MiB and 1 GiB arrays. Sets must be a power of two. */
  sets4K: number; ways4K: number;
  sets2M: number; ways2M: number;
  sets1G: number; ways1G: number;
}

/** Skylake's L1 DTLB: 64 × 4 KiB (4-way), 32 × 2 MiB (4-way), 4 × 1 GiB (fully associative). */
export const SKYLAKE_L1_DTLB: Readonly<TlbGeometry> = {
  sets4K: 16, ways4K: 4, sets2M: 8, ways2M: 4, sets1G: 1, ways1G: 4,
};

/** What a hit returned. Caller-owned and reused. */
export class TlbResult {
  /** Row of the entry (for invalidateEntry). */
  index = -1;
  /** Page frame physical address. */
  frame = 0;
  pageShift = 12;
  /** The entry's meta word (TLB_* bits). */
  meta = 0;
}

