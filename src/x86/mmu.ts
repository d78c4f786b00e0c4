/**
 * The memory-management unit of one hardware thread: the TLB (tlb.ts) in front of the page
 * walker (walk.ts), and the instructions that change what the TLB may hold (MOV to CR3,
 * MOV to CR4, INVLPG, INVPCID) with the invalidations of Intel SDM Vol. 3A 4.10.4.1.
 *
 * translate() is the hot path. A hit is one probe of the TLB's fast path (fastpath.ts): its 4 KiB
 * and 2 MiB slots of one Int32Array side by side, tag = page, PCID and mode, rights already folded
 * for the mode (a slot lives only as long as its row's entry); it ages the row and counts the hit exactly as
 * Tlb.find() does, and stores two words of `out` (info and pa). Anything else takes the slow
 * path: the set-associative lookup (Tlb.find), the rights check as one load from the mode's
 * table (rights.ts: checkAccess, the walker's own rules), and on a miss a walk that fills the
 * TLB; a translation that succeeds there gets a fast-path slot. Nothing here allocates; results
 * go to the reusable `out` Translation. translateBatch() translates many touches of one event
 * into a Float64Array of physical addresses.
 *
 * A second-level TLB (`stlb`, optional: the STLB of Intel cores, the L2 DTLB of AMD ones) sits
 * between the first level and the walker: a first-level miss looks there before walking, a hit
 * there fills the first level from it (`stlbHits`, no walk), and a walk fills both. Every
 * invalidation clears both (tlb-control.ts). It is what a flushing CR3 write costs beyond the
 * first level's 64 entries: the working set the STLB held must be walked again.
 *
 * On a TLB hit `out.leafLo`, `out.leafHi` are 0 and `out.entryAddr` is all -1: no paging
 * structure was read. Every other field is what the walk that filled the entry produced.
 *
 * The instructions (MOV to CR3 / CR4, INVLPG, INVPCID) are in tlb-control.ts, the base class.
 */
import type { PhysMemory } from '../phys/memory.ts';
import type { CpuState } from './cpu.ts';
import { ACCESS_WRITE, PTE_D, PTE_G, VECTOR_PF } from './bits.ts';
import { NEEDS_WALK, RIGHTS_D } from './rights.ts';
import { Tlb, TLB_D, TLB_G, type TlbGeometry } from './tlb.ts';
import { PagingStructureCache, type PwcGeometry } from './pwc.ts';
import { TlbControl } from './tlb-control.ts';
import { INFO_ERROR_SHIFT, INFO_LEVEL_SHIFT, INFO_PAGE_SHIFT_SHIFT, INFO_VECTOR_SHIFT, infoOk, Translation, walkPfn } from './walk.ts';

/** meta bits 21:14 are U, W, XD, D, PKEY (tlb-entry.ts): the rights key of rights.ts. */
const TLB_U_SHIFT = 14;

export { INVPCID_ADDRESS, INVPCID_ALL_INCL_GLOBAL, INVPCID_ALL_NON_GLOBAL, INVPCID_SINGLE_CONTEXT } from './tlb-control.ts';

export class Mmu extends TlbControl {
  /** The result of the last translate(); reused. */
  readonly out = new Translation();

  /** Page walks done (TLB misses, and writes through an entry whose D is not known set). */
  walks = 0;
  /** First-level misses served by the second-level TLB (no walk). */
  stlbHits = 0;
  /**
   * Paging-structure entries walks loaded above their last level because no paging-structure
   * cache (pwc.ts) held them: 0 for a walk that found the entry above its leaf cached, up to
   * levels - 1 after a flush (with no `pwc`, every walk loads every level).
   */
  upperLoads = 0;

  /** CpuState.modeVersion that `ctx` was computed for. */
  private modeVersion = -1;
  /** The fast-path tag of the current PCID and mode: PCID | ModeRights.id << 12 (fastpath.ts). */
  private ctx = 0;
  private rightsWraps = 0;
  /** Whether `out` holds a walk's leafLo, leafHi and entryAddr (a hit must clear them). */
  private outWalked = 1;
  // The arrays the hit path reads, one load each from here (fastpath.ts, tlb.ts).
  private readonly fw: Int32Array;
  private readonly tstamp: Float64Array;
  private readonly clk: number;

  /**
   * `geometry`: the first-level TLB's (default: the Skylake L1 DTLB); `stlb`: a second level's,
   * or null for none (every first-level miss walks); `pwc`: the paging-structure caches' sizes,
   * or null for none (QEMU's walker: every walk loads every level).
   */
  constructor(cpu: CpuState, readonly mem: PhysMemory, geometry: Partial<TlbGeometry> = {}, stlb: Partial<TlbGeometry> | Tlb | null = null, pwc: PwcGeometry | PagingStructureCache | null = null) {
    // The second level is reached only from the slow path: it keeps no fast-path slots.
    super(cpu, new Tlb(geometry), stlb === null ? null : stlb instanceof Tlb ? stlb : new Tlb(stlb, false),
      pwc === null ? null : pwc instanceof PagingStructureCache ? pwc : new PagingStructureCache(pwc));
    this.fw = this.tlb.fast.words;
    this.tstamp = this.tlb.stamp;
    this.clk = this.tlb.clockIndex;
  }

  /**
   * The instruction side of a thread whose first level is split (SDM 4.10.2.3: a processor may
   * keep separate TLBs for instruction fetches and data): null while fetches share this Mmu's
   * TLB. Callers translate fetches through `fetchSide ?? this`; its counters (walks, stlbHits,
   * upperLoads, flushes) are its own, so a caller that prices walks adds both sides'.
   */
  fetchSide: Mmu | null = null;

  // The counters of both sides (this Mmu's alone while the first level is not split).
  get allWalks(): number { return this.walks + (this.fetchSide?.walks ?? 0); }
  get allUpperLoads(): number { return this.upperLoads + (this.fetchSide?.upperLoads ?? 0); }
  get allStlbHits(): number { return this.stlbHits + (this.fetchSide?.stlbHits ?? 0); }
  get allFlushes(): number { return this.flushes + (this.fetchSide?.flushes ?? 0); }

  /**
   * Split the first level: fetches get an instruction TLB of geometry `itlb` and, below it, the
   * second level `l2` (a second-level ITLB of its own, AMD's L2 ITLB) or, with `l2` null, this
   * side's STLB (Intel's STLB serves both). The paging-structure caches are shared. Every
   * invalidation on either side reaches every TLB of the thread (tlb-control.ts `linked`).
   */
  splitFetch(itlb: Partial<TlbGeometry>, l2: Partial<TlbGeometry> | null): Mmu {
    if (this.fetchSide !== null) throw new Error('Mmu.splitFetch: the first level is split already');
    const f = new Mmu(this.cpu, this.mem, itlb, l2 === null ? this.stlb : new Tlb(l2, false), this.pwc);
    this.linked.push(f.tlb);
    f.linked.push(this.tlb);
    if (f.stlb !== null && f.stlb !== this.stlb) {
      this.linked.push(f.stlb);
      if (this.stlb !== null) f.linked.push(this.stlb);
    }
    this.fetchSide = f;
    return f;
  }

  /**
   * Translate `va` (u32 halves) for an access of kind `access` (ACCESS_* bits). Returns true
   * on success; the result (or the fault) is in `this.out`. Halves may be given signed or
   * unsigned; signed (Int32Array) halves stay small integers in V8, which keeps calls that are
   * not inlined from boxing them.
   *
   * A hit (probe) ages the row and counts it exactly as Tlb.find() does (LRU clock in the stamp
   * array, tlb.ts), and stores the slot's info word and the physical address. Literals, not the
   * named constants: a module binding costs a load and a check per use in V8 (FAST2_BASE 8192,
   * 8 words a slot: FW_HI 1, FW_CTX 2, FW_ROW 3, FW_FRAME_LO 4, FW_FRAME_HI
   * 5, FW_INFO 6, FW_MASK 7; test/x86/fastpath-tlb.test.ts checks them). translate() and probe()
   * stay under V8's inlining limits (460 bytes of bytecode each, 920 together), so callers inline
   * the hit path.
   */
  translate(vaLo: number, vaHi: number, access: number): boolean {
    if (this.cpu.modeVersion !== this.modeVersion) this.syncMode();
    const s = this.probe(vaLo, vaHi, access);
    if (s < 0) return this.translateSlow(vaLo, vaHi, access);
    const f = this.fw;
    const st = this.tstamp;
    const c = st[this.clk] + 1;
    st[this.clk] = c;
    st[f[s + 3]] = c;
    const out = this.out;
    out.info = f[s + 6];
    // The frame's halves and the offset within the page (< 2^30: the u32 is exact).
    out.pa = f[s + 5] * 4294967296 + ((f[s + 4] | (vaLo & f[s + 7])) >>> 0);
    if (this.outWalked !== 0) this.clearWalk();
    return true;
  }

  /**
   * The fast path's verdict for `va`: the word offset of the slot that makes this access a hit,
   * or -1. The 4 KiB and the 2 MiB slot are loaded side by side and the 4 KiB one is taken if its
   * tag matches (find() prefers the smaller page), else the 2 MiB one, without a branch: a chain
   * of per-size branches mispredicted on a mix of page sizes. Then one test: a tag matched and the
   * folded rights allow this access kind (a slot whose row lost its entry was emptied). The mode must be synced
   * (syncMode) first.
   */
  private probe(vaLo: number, vaHi: number, access: number): number {
    const f = this.fw;
    const hi = vaHi | 0;
    const ctx = this.ctx;
    const s4 = (vaLo >>> 9) & 0x1ff8; // fastSlot4: VA bits 21:12, 8 words a slot
    const s2 = 8192 + ((((vaLo >>> 21) | (vaHi << 11)) & 255) << 3); // fastSlot2: VA bits 28:21
    const m4 = ((f[s4] ^ vaLo) & 0xfffff000) | (f[s4 + 1] ^ hi) | (f[s4 + 2] ^ ctx);
    const m2 = ((f[s2] ^ vaLo) & 0xffe00000) | (f[s2 + 1] ^ hi) | (f[s2 + 2] ^ ctx);
    // n4 = -1 when the 4 KiB slot missed (m4 != 0), else 0: then s is s2, else s4.
    const n4 = (m4 | -m4) >> 31;
    const s = s4 ^ ((s4 ^ s2) & n4);
    // Both missed | the access kind's allowed bit is 0: not a hit.
    return ((n4 & ((m2 | -m2) >> 31)) | (((f[s] >>> (access & 7)) & 1) - 1)) === 0 ? s : -1;
  }

  /**
   * Translate the touches i in [start, end): address (lo[i], hi[i]), access kind access[i];
   * the physical address of each goes to pa[i]. Returns `end`, or the index of the first touch
   * that faulted (its fault is in `out`, pa[i] is not written). The TLB sees exactly what as many
   * translate() calls would do; a fast-path hit here does not write `out`.
   */
  translateBatch(lo: Int32Array, hi: Int32Array, access: Uint8Array, start: number, end: number, pa: Float64Array): number {
    if (this.cpu.modeVersion !== this.modeVersion) this.syncMode();
    let i = start;
    for (;;) {
      i = this.hitRun(lo, hi, access, i, end, pa);
      if (i === end) return end;
      // Touch i is not a fast-path hit: the slow path (which cannot change the mode).
      if (!this.translateSlow(lo[i], hi[i], access[i])) return i;
      pa[i] = this.out.pa;
      i++;
    }
  }

  /**
   * The fast-path hits of translateBatch alone: translates touches from `start` on while they
   * hit the fast path, and returns the index of the first that does not (or `end`); that one
   * is left to translate() by the caller. It changes nothing but the TLB's LRU clock, as as many
   * translate() hits would, so a caller may do other work (loads) before the next translation.
   */
  translateHits(lo: Int32Array, hi: Int32Array, access: Uint8Array, start: number, end: number, pa: Float64Array): number {
    if (this.cpu.modeVersion !== this.modeVersion) this.syncMode();
    return this.hitRun(lo, hi, access, start, end, pa);
  }

  /**
   * translateBatch's inner loop: fast-path hits from `i` on, until the first touch that is not
   * one (returned) or `end`. It calls nothing, so V8 checks the arrays once, not per touch. The
   * probe of translate(), with everything in locals and the LRU clock kept in one.
   */
  private hitRun(lo: Int32Array, hi: Int32Array, access: Uint8Array, i: number, end: number, pa: Float64Array): number {
    const tlb = this.tlb;
    const f = this.fw;
    const stamp = this.tstamp;
    const ctx = this.ctx;
    let clock = tlb.clock;
    for (; i < end; i++) {
      const vaLo = lo[i];
      const vaHi = hi[i];
      const s4 = (vaLo >>> 9) & 0x1ff8;
      const s2 = 8192 + ((((vaLo >>> 21) | (vaHi << 11)) & 255) << 3);
      const m4 = ((f[s4] ^ vaLo) & 0xfffff000) | (f[s4 + 1] ^ vaHi) | (f[s4 + 2] ^ ctx);
      const m2 = ((f[s2] ^ vaLo) & 0xffe00000) | (f[s2 + 1] ^ vaHi) | (f[s2 + 2] ^ ctx);
      const n4 = (m4 | -m4) >> 31;
      const s = s4 ^ ((s4 ^ s2) & n4);
      if (((n4 & ((m2 | -m2) >> 31)) | (((f[s] >>> (access[i] & 7)) & 1) - 1)) !== 0) break;
      stamp[f[s + 3]] = ++clock;
      pa[i] = f[s + 5] * 4294967296 + ((f[s + 4] | (vaLo & f[s + 7])) >>> 0);
    }
    tlb.clock = clock;
    return i;
  }

  /** A hit after a walk: `out` read no paging structure this time. */
  private clearWalk(): void {
    const out = this.out;
    out.leafLo = out.leafHi = 0;
    const e = out.entryAddr;
    e[1] = e[2] = e[3] = e[4] = e[5] = -1;
    this.outWalked = 0;
  }

  /** The mode changed (CpuState.modeVersion): the rights table and fast-path tag of the new one. */
  private syncMode(): void {
    const cpu = this.cpu;
    const r = cpu.rights;
    if (r.version !== cpu.modeVersion) r.resolve(cpu);
    if (r.wraps !== this.rightsWraps) {
      // Mode ids start over: no slot may keep an old one (fastpath.ts).
      this.rightsWraps = r.wraps;
      this.tlb.fast.clear();
    }
    this.ctx = cpu.pcid | (r.id << 12);
    this.modeVersion = cpu.modeVersion;
  }

  /** Everything but the fast path: set-associative lookup, rights, walk and fill. */
  private translateSlow(vaLo: number, vaHi: number, access: number): boolean {
    const cpu = this.cpu;
    const top = vaHi >> cpu.canonShift;
    // A non-canonical address raises #GP(0) before paging (SDM 3.3.7.1): the walker reports it.
    if (top !== 0 && top !== -1) {
      this.outWalked = 1;
      return walkPfn(this.mem, cpu, cpu.rootPfn, vaLo, vaHi, access, this.out);
    }
    const tlb = this.tlb;
    const row = tlb.find(vaLo, vaHi, cpu.pcid);
    if (row < 0) return this.stlb === null ? this.walkAndFill(vaLo, vaHi, access) : this.fromStlb(vaLo, vaHi, access);
    const meta = tlb.meta[row];
    const verdict = this.verdict(meta, access);
    if (verdict !== 0) return this.hitSlow(vaLo, vaHi, access, row, verdict === NEEDS_WALK ? 0 : verdict);
    this.serve(row, tlb.pageShiftOf(row), meta, tlb.frame[row], vaLo, vaHi);
    return true;
  }

  /** The rights check of a cached entry (meta word), as one table load (rights.ts): 0, NEEDS_WALK or a #PF error code. */
  private verdict(meta: number, access: number): number {
    const r = this.cpu.rights;
    return r.table[r.base | ((access & 7) << 8) | ((meta >>> TLB_U_SHIFT) & 0xff)];
  }

  /**
   * A cached entry (meta, page shift, frame) serves `va` without a walk: `out` gets its
   * translation, and first-level row `l1` (if >= 0) a fast-path slot.
   */
  private serve(l1: number, shift: number, meta: number, frame: number, vaLo: number, vaHi: number): void {
    const k = (shift - 12) / 9;
    const info = infoOk((meta >>> TLB_U_SHIFT) & ~RIGHTS_D & 0xff, k + 1, shift);
    const out = this.out;
    out.info = info;
    // The offset is below 2^30, so the u32 of vaLo's low bits is exact.
    out.pa = frame + ((vaLo & ((1 << shift) - 1)) >>> 0);
    if (this.outWalked !== 0) this.clearWalk();
    if (l1 >= 0) this.fastFill(l1, k, vaLo, vaHi, info);
  }

  /**
   * Give row `row` (size class `k`), just found or filled for `va`, a fast-path slot with the
   * current mode's folded rights — a 1 GiB entry its 2 MiB piece around `va` — unless a smaller
   * entry overlaps the 2 MiB the slot would cover, which find() would prefer there.
   */
  private fastFill(row: number, k: number, vaLo: number, vaHi: number, info: number): void {
    const tlb = this.tlb;
    const fast = tlb.fast;
    if (!fast.enabled) return;
    const cpu = this.cpu;
    if (k > 0 && tlb.overlapsSmaller(k, vaLo, vaHi, cpu.pcid)) return;
    const r = cpu.rights;
    const allowed = r.allowed[(r.base >>> 3) | ((tlb.meta[row] >>> TLB_U_SHIFT) & 0xff)];
    fast.put(k, vaLo, vaHi, tlb.frame[row], allowed, this.ctx, row, info);
  }

  /**
   * A hit in `tlb` (the first level, or the second) that faults, or a write through an entry
   * whose D is not known set.
   */
  private hitSlow(vaLo: number, vaHi: number, access: number, row: number, fault: number, tlb: Tlb = this.tlb): boolean {
    const cpu = this.cpu;
    const out = this.out;
    if (fault === 0) {
      // The processor walks to set D in the leaf (SDM 4.8); the entry is refilled from that walk.
      // A walk that faults invalidates the page in both levels itself (walkAndFill).
      tlb.invalidateEntry(row);
      return this.walkAndFill(vaLo, vaHi, access);
    }
    // A #PF invalidates the TLB entries for the faulting page number (SDM 4.10.4.1), so a
    // retry walks the tables in memory. The entry that faulted may be global: drop it too.
    const m = tlb.meta[row];
    const level = (tlb.pageShiftOf(row) - 12) / 9 + 1;
    this.flushAddress(vaLo, vaHi, cpu.pcid, true);
    this.flushes++;
    out.info = (VECTOR_PF << INFO_VECTOR_SHIFT) | (fault << INFO_ERROR_SHIFT) | (level << INFO_LEVEL_SHIFT) |
      (12 << INFO_PAGE_SHIFT_SHIFT) | ((m >>> TLB_U_SHIFT) & ~RIGHTS_D & 0xff);
    out.pa = 0;
    out.leafLo = out.leafHi = 0;
    const e = out.entryAddr;
    e[1] = e[2] = e[3] = e[4] = e[5] = -1;
    this.outWalked = 0;
    return false;
  }

  /**
   * A first-level miss with a second level: its entry, if it has one and the access may use it
   * without a walk, fills the first level (as a walk would, with the entry's flags); the rights
   * check and the faults are the first level's (hitSlow), on the second level's entry.
   */
  private fromStlb(vaLo: number, vaHi: number, access: number): boolean {
    const cpu = this.cpu;
    const stlb = this.stlb!;
    const row = stlb.find(vaLo, vaHi, cpu.pcid);
    if (row < 0) return this.walkAndFill(vaLo, vaHi, access);
    const meta = stlb.meta[row];
    const verdict = this.verdict(meta, access);
    if (verdict !== 0) return this.hitSlow(vaLo, vaHi, access, row, verdict === NEEDS_WALK ? 0 : verdict, stlb);
    this.stlbHits++;
    const shift = stlb.pageShiftOf(row);
    const frame = stlb.frame[row];
    const l1 = this.tlb.fill(vaLo, vaHi, shift, cpu.pcid, meta, frame); // fill() keeps G, U, W, XD, D, PKEY
    this.serve(l1, shift, meta, frame, vaLo, vaHi);
    return true;
  }

  /** A TLB miss: walk, and cache the translation if the access did not fault. */
  private walkAndFill(vaLo: number, vaHi: number, access: number): boolean {
    const cpu = this.cpu;
    const out = this.out;
    this.walks++;
    this.outWalked = 1;
    const ok = walkPfn(this.mem, cpu, cpu.rootPfn, vaLo, vaHi, access, out);
    // The walk loaded the levels down to its leaf, or to the entry that ended it (out.level); only
    // a walk that reached its leaf caches what it read.
    const pwc = this.pwc;
    this.upperLoads += pwc === null ? cpu.levels - out.level : pwc.walked(vaLo, vaHi, cpu.pcid, out.level, cpu.levels, ok);
    if (!ok) {
      // The #PF invalidates the page's TLB entries and the paging-structure-cache entries for it (SDM 4.10.4.1).
      if ((out.info >>> INFO_VECTOR_SHIFT) === VECTOR_PF) {
        this.flushAddress(vaLo, vaHi, cpu.pcid, true);
        this.flushes++; // counted as a faulting TLB hit's #PF is (hitSlow)
      }
      return false;
    }
    // Only translations that did not fault are cached: the TLB holds only valid translations,
    // and only once A is 1 in every entry used (SDM 4.10.2.3) — the walker sets the leaf's A
    // only for an allowed access (4.8). The leaf's G counts only with CR4.PGE=1 (4.10.2.4);
    // D is known set if it was, or if this write set it (4.8).
    const lo = out.leafLo;
    // out.rights is U | W | XD | PKEY in the order of meta bits 21:14 (TLB_U .. TLB_PKEY).
    const flags =
      ((lo & PTE_G) !== 0 && cpu.pge ? TLB_G : 0) |
      (out.rights << TLB_U_SHIFT) |
      ((lo & PTE_D) !== 0 || (access & ACCESS_WRITE) !== 0 ? TLB_D : 0);
    const shift = out.pageShift;
    const row = this.tlb.fill(vaLo, vaHi, shift, cpu.pcid, flags, out.frame);
    if (row >= 0) this.fastFill(row, (shift - 12) / 9, vaLo, vaHi, out.info);
    this.stlb?.fill(vaLo, vaHi, shift, cpu.pcid, flags, out.frame);
    return true;
  }

  resetCounters(): void {
    this.walks = this.flushes = this.stlbHits = this.upperLoads = 0;
    this.tlb.resetCounters();
    this.stlb?.resetCounters();
    this.fetchSide?.resetCounters();
  }
}
