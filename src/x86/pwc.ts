/**
 * The paging-structure caches of one hardware thread (Intel SDM Vol. 3A 4.10.3): the PDE,
 * PDPTE, PML4E (and with 5-level paging PML5E) caches, which let a page walk start below the
 * top of the hierarchy. Here they decide how many paging-structure entries a walk loads — its
 * cost — never what it translates: the walker (walk.ts) always reads every level from memory,
 * as QEMU's does, so a PWC entry the SDM would let the processor keep after software changed the
 * tables (4.10.3.1 "may retain it unmodified") changes no translation here. That is the
 * conservative side for kasi's leak answers (no stale upper-level entry reaches an unmapped
 * page), and the cost side is what flushes change.
 *
 * Entries (4.10.3.1): a level-j cache entry is tagged by the PCID and the VA bits above the
 * region one level-j entry maps (PDE cache: bits 47:21; PDPTE: 47:30; PML4E: 47:39; PML5E:
 * 56:48), and is made only for an entry that references another paging structure (no PDE-cache
 * entry for a PDE that maps a 2 MiB page). With one, the walk loads only the levels below j.
 * Entries are never global: the SDM's global exception is for TLB entries only.
 *
 * Invalidation (4.10.4.1), done by tlb-control.ts: MOV to CR3 without NOFLUSH (or with
 * CR4.PCIDE=0) the new PCID's entries; INVLPG every entry of the current PCID, whatever the
 * address; INVPCID type 0 the PCID's entries a walk of the address would use (flushAddress), as
 * a #PF does for the faulting address; type 1 the PCID's; types 2 and 3 every entry; the CR4
 * writes that flush the TLB the same scope.
 *
 * Geometry: no Intel or AMD document gives the sizes. PWC_GEOMETRY is an assumption of the
 * order reverse-engineering work reports for recent Intel cores (a few dozen PDE-cache entries,
 * a handful for the upper levels); each cache is fully associative with LRU replacement. Lookups
 * and fills happen once per walk, never on a TLB hit, and do not allocate.
 */

/** Entries per cache, from the PDE cache up (index j - 2 for level j). */
export interface PwcGeometry {
  readonly pde: number;
  readonly pdpte: number;
  readonly pml4e: number;
  readonly pml5e: number;
}

/** assumption: no vendor publishes the sizes; a few dozen PDE-cache entries and a few above. */
export const PWC_GEOMETRY: PwcGeometry = { pde: 32, pdpte: 4, pml4e: 4, pml5e: 2 };

/** VA bit where the region one entry of level j (index j - 2) maps starts. */
const SHIFT = [21, 30, 39, 48];

/** The tag of `va` (u32 halves, hi signed) for the cache of level index `k`: the VA's bits from SHIFT[k] up, exact in a double. */
function tagOf(vaLo: number, vaHi: number, k: number): number {
  const s = SHIFT[k];
  return s < 32 ? (vaHi | 0) * 2 ** (32 - s) + ((vaLo >>> s) >>> 0) : (vaHi | 0) >> (s - 32);
}

export class PagingStructureCache {
  private readonly tag: Float64Array[];
  /** The entry's PCID, -1 when invalid. */
  private readonly pcid: Int32Array[];
  private readonly stamp: Float64Array[];
  private clock = 0;

  constructor(readonly geometry: PwcGeometry = PWC_GEOMETRY) {
    const sizes = [geometry.pde, geometry.pdpte, geometry.pml4e, geometry.pml5e];
    for (const n of sizes) if (!Number.isInteger(n) || n < 0) throw new RangeError(`paging-structure cache: ${n} entries is not a count`);
    this.tag = sizes.map((n) => new Float64Array(n));
    this.pcid = sizes.map((n) => new Int32Array(n).fill(-1));
    this.stamp = sizes.map((n) => new Float64Array(n));
  }

  private find(k: number, t: number, pcid: number): number {
    const tags = this.tag[k];
    const ids = this.pcid[k];
    for (let i = 0; i < ids.length; i++) if (ids[i] === pcid && tags[i] === t) return i;
    return -1;
  }

  /**
   * The paging-structure entries a walk of `va` for `pcid` loads above the one at `last` (the
   * leaf's level, 1 = PTE, or the level whose entry ended a faulting walk), with `levels` paging
   * levels: levels - last when no cache holds a level above it; j - last - 1 when the lowest
   * level with an entry is j (the walk starts in the table that entry references). A hit ages
   * the entry.
   */
  upperLoads(vaLo: number, vaHi: number, pcid: number, last: number, levels: number): number {
    for (let j = last + 1; j <= levels; j++) {
      const k = j - 2;
      const i = this.find(k, tagOf(vaLo, vaHi, k), pcid);
      if (i >= 0) {
        this.stamp[k][i] = ++this.clock;
        return j - last - 1;
      }
    }
    return levels - last;
  }

  /** After a walk of `va` that reached a leaf at `leaf`: cache the entries of every level above it. */
  fill(vaLo: number, vaHi: number, pcid: number, leaf: number, levels: number): void {
    for (let j = leaf + 1; j <= levels; j++) {
      const k = j - 2;
      const ids = this.pcid[k];
      if (ids.length === 0) continue;
      const t = tagOf(vaLo, vaHi, k);
      const st = this.stamp[k];
      let i = this.find(k, t, pcid);
      if (i < 0) {
        // An invalid entry, else the least recently used.
        i = 0;
        for (let r = 0; r < ids.length; r++) {
          if (ids[r] < 0) { i = r; break; }
          if (st[r] < st[i]) i = r;
        }
        this.tag[k][i] = t;
        ids[i] = pcid;
      }
      st[i] = ++this.clock;
    }
  }

  /** Every entry of `pcid`. */
  flushPcid(pcid: number): void {
    for (const ids of this.pcid) for (let i = 0; i < ids.length; i++) if (ids[i] === pcid) ids[i] = -1;
  }

  flushAll(): void {
    for (const ids of this.pcid) ids.fill(-1);
  }

  /** The entries of `pcid` that a walk of `va` would use (a #PF on `va`). */
  flushAddress(vaLo: number, vaHi: number, pcid: number): void {
    for (let k = 0; k < this.pcid.length; k++) {
      const i = this.find(k, tagOf(vaLo, vaHi, k), pcid);
      if (i >= 0) this.pcid[k][i] = -1;
    }
  }

  /** Valid entries per cache, from the PDE cache up (tests, reports). */
  occupancy(): number[] {
    return this.pcid.map((ids) => ids.reduce((n, p) => n + (p >= 0 ? 1 : 0), 0));
  }
}
