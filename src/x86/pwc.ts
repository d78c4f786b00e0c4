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
 * a handful for the upper levels); a cache of more than WAYS entries is WAYS-way set associative
 * (sets by the tag's low bits), a smaller one fully associative, LRU within a set (also an
 * assumption; it keeps a walk's lookup to a few compares). Lookups and fills happen once per
 * walk, never on a TLB hit, and do not allocate.
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

/**
 * The tag of `va` (u32 halves, hi signed) for the cache of level index `k` (0 = PDE cache): the
 * VA's bits from 21, 30, 39 or 48 up, exact in a double (below 2^43 in magnitude).
 */
function tagOf(vaLo: number, vaHi: number, k: number): number {
  const hi = vaHi | 0;
  return k === 0 ? hi * 2048 + (vaLo >>> 21) : k === 1 ? hi * 4 + (vaLo >>> 30) : k === 2 ? hi >> 7 : hi >> 16;
}

/** Ways of a set in a cache larger than this; smaller caches are one fully associative set. */
const WAYS = 4;

export class PagingStructureCache {
  // Every cache's entries in one set of columns: level index k owns rows [first[k], first[k+1]),
  // sets of ways[k] rows, the set of a tag its low bits & setMask[k].
  private readonly first: Int32Array;
  private readonly ways: Int32Array;
  private readonly setMask: Int32Array;
  private readonly tag: Float64Array;
  /** The entry's PCID, -1 when invalid. */
  private readonly pcid: Int32Array;
  private readonly stamp: Float64Array;
  private clock = 0;

  constructor(readonly geometry: PwcGeometry = PWC_GEOMETRY) {
    const sizes = [geometry.pde, geometry.pdpte, geometry.pml4e, geometry.pml5e];
    for (const n of sizes) {
      if (!Number.isInteger(n) || n < 0 || n > 4096) throw new RangeError(`paging-structure cache: ${n} entries is not a count (0..4096)`);
      const sets = n / WAYS;
      if (n > WAYS && (!Number.isInteger(sets) || (sets & (sets - 1)) !== 0)) throw new RangeError(`paging-structure cache: ${n} entries is not a power-of-two number of ${WAYS}-way sets`);
    }
    this.ways = Int32Array.from(sizes, (n) => (n > WAYS ? WAYS : n));
    this.setMask = Int32Array.from(sizes, (n) => (n > WAYS ? n / WAYS - 1 : 0));
    this.first = Int32Array.of(0, sizes[0], sizes[0] + sizes[1], sizes[0] + sizes[1] + sizes[2], sizes[0] + sizes[1] + sizes[2] + sizes[3]);
    const n = this.first[4];
    this.tag = new Float64Array(n);
    this.pcid = new Int32Array(n).fill(-1);
    this.stamp = new Float64Array(n);
  }

  /** The first row of the set of tag t in level index k. */
  private setOf(k: number, t: number): number {
    return this.first[k] + (t & this.setMask[k]) * this.ways[k];
  }

  /** The row of level index k holding tag t for pcid, or -1. */
  private find(k: number, t: number, pcid: number): number {
    const tags = this.tag;
    const ids = this.pcid;
    const b = this.setOf(k, t);
    const end = b + this.ways[k];
    for (let i = b; i < end; i++) if (ids[i] === pcid && tags[i] === t) return i;
    return -1;
  }

  /**
   * A walk of `va` for `pcid` that ended at level `last` (the leaf's, 1 = PTE, or the level whose
   * entry ended a faulting walk), with `levels` paging levels: returns the paging-structure
   * entries it loaded above `last` — levels - last when no cache holds a level above it,
   * j - last - 1 when the lowest level with an entry is j (the walk starts in the table that
   * entry references) — and ages the entry it used. With `fill` (a walk that reached its leaf)
   * every level it read above the leaf gets an entry (4.10.3.1: made only for entries with P=1).
   */
  walked(vaLo: number, vaHi: number, pcid: number, last: number, levels: number, fill: boolean): number {
    // Upward from the level above `last`: the first level with an entry is where the walk started;
    // the levels below it were read, so a filling walk caches them. It read nothing above the
    // entry it used, so it makes (or ages) nothing there (4.10.3.1: entries come from the
    // paging-structure entries a translation uses).
    for (let j = last + 1; j <= levels; j++) {
      const k = j - 2;
      const t = tagOf(vaLo, vaHi, k);
      let i = this.find(k, t, pcid);
      if (i >= 0) {
        this.stamp[i] = ++this.clock;
        return j - last - 1;
      }
      if (!fill) continue;
      i = this.victim(k, t);
      if (i < 0) continue; // a cache of no entries
      this.tag[i] = t;
      this.pcid[i] = pcid;
      this.stamp[i] = ++this.clock;
    }
    return levels - last;
  }

  /** An invalid row of tag t's set in level index k, else its least recently used; -1 if the cache has none. */
  private victim(k: number, t: number): number {
    const ids = this.pcid;
    const st = this.stamp;
    const b = this.setOf(k, t);
    const end = b + this.ways[k];
    let v = b < end ? b : -1;
    for (let r = b; r < end; r++) {
      if (ids[r] < 0) return r;
      if (st[r] < st[v]) v = r;
    }
    return v;
  }

  /** Every entry of `pcid`. */
  flushPcid(pcid: number): void {
    const ids = this.pcid;
    for (let i = 0; i < ids.length; i++) if (ids[i] === pcid) ids[i] = -1;
  }

  flushAll(): void {
    this.pcid.fill(-1);
  }

  /** The entries of `pcid` that a walk of `va` would use (a #PF on `va`, INVPCID type 0). */
  flushAddress(vaLo: number, vaHi: number, pcid: number): void {
    for (let k = 0; k < 4; k++) {
      const i = this.find(k, tagOf(vaLo, vaHi, k), pcid);
      if (i >= 0) this.pcid[i] = -1;
    }
  }

  /** Valid entries per cache, from the PDE cache up (tests, reports). */
  occupancy(): number[] {
    const out = [0, 0, 0, 0];
    for (let k = 0; k < 4; k++) for (let i = this.first[k]; i < this.first[k + 1]; i++) if (this.pcid[i] >= 0) out[k]++;
    return out;
  }
}
