/**
 * Building a restricted address space from the full kernel tables, for a design and a context.
 *
 * The design says what the space holds (a RestrictedSpec: VA ranges, direct-map frames, a user
 * half); this file turns that into an allowed set of VA intervals and then walks the full
 * tables top-down, as pti_clone_pgtable() does for the KPTI user copy (arch/x86/mm/pti.c):
 *  - an entry whose whole range is allowed is copied as it is — for a non-leaf entry that
 *    shares the full table's subtree (the kernel's "clone at the PGD/P4D/PUD/PMD level", as
 *    asi_clone_range() in the 2025 RFC and kvm_copy_mapping(..., PGT_LEVEL_PMD) in Chartre's
 *    2019 RFC 19/27 do);
 *  - an entry with nothing allowed below is left empty;
 *  - otherwise a non-leaf entry gets a new table of the restricted space and the walk
 *    recurses; a large leaf is split into the next page size (keeping every attribute, PAT
 *    moved from bit 12 to bit 7 for 4 KiB PTEs as split_large_page() / pgprot_large_2_4k() do,
 *    arch/x86/mm/pat/set_memory.c) and each piece handled again.
 * Invariant (asserted by verify.ts): a restricted space never maps an address differently from
 * the full space — same frame, flags no more permissive — since every leaf it has is a leaf of
 * the full tables or a piece of one. (The 2022 RFC: "each mapping is always the same as the
 * corresponding mapping in the full kernel address space".)
 *
 * A space is a snapshot: subtrees it shares follow later changes to the full tables, copied
 * parts do not; rebuild after allocating (the kernel's asi_map()/asi_unmap() keep them in sync).
 */
import { KERNEL_OWNER } from '../linux/owners.ts';
import { classify } from '../linux/sensitivity.ts';
import { PAGE_SIZE, USE_PAGE_TABLE } from '../linux/buddy.ts';
import type { Allocation, System } from '../linux/system.ts';
import type { PhysMemory } from '../phys/memory.ts';
import type { AsiContext, AsiDesign, DirectMapSpec, MapVia, RestrictedSpace, RestrictedSpec, SpaceStats, VaRange } from './types.ts';

const ADDR_MASK = 0x000ffffffffff000n;
const PS = 0x80n;
const PAT_LARGE = 1n << 12n;
const PAT_4K = 1n << 7n;
const TABLE_FLAGS = 0x67n | (1n << 63n); // P RW US A D + XD: what a split keeps from the large leaf
const M64 = (1n << 64n) - 1n;

const NONE = 0;
const ALL = 1;
const PART = 2;

/** Sorted, merged [start, end) intervals (unsigned 64-bit BigInts), with coverage queries. */
export class AllowList {
  private readonly starts: bigint[] = [];
  private readonly ends: bigint[] = [];

  constructor(ranges: Iterable<readonly [bigint, bigint]>) {
    const s = [...ranges].map(([a, b]) => [BigInt.asUintN(64, a), b === 1n << 64n ? b : BigInt.asUintN(64, b)] as [bigint, bigint])
      .filter(([a, b]) => b > a).sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
    for (const [a, b] of s) {
      const n = this.ends.length;
      if (n > 0 && a <= this.ends[n - 1]) { if (b > this.ends[n - 1]) this.ends[n - 1] = b; } else { this.starts.push(a); this.ends.push(b); }
    }
  }

  get length(): number {
    return this.starts.length;
  }

  /** NONE, ALL or PART: how much of [a, b) is allowed. */
  cover(a: bigint, b: bigint): number {
    let lo = 0;
    let hi = this.ends.length;
    while (lo < hi) { const m = (lo + hi) >> 1; if (this.ends[m] <= a) lo = m + 1; else hi = m; }
    if (lo === this.ends.length || this.starts[lo] >= b) return NONE;
    return this.starts[lo] <= a && this.ends[lo] >= b ? ALL : PART;
  }

  intervals(): Array<[bigint, bigint]> {
    return this.starts.map((s, i) => [s, this.ends[i]]);
  }
}

/**
 * A spec's directMap that also says where allow() is constant: `runEnd(pfn)` (> pfn) is the end
 * of a run of frames from `pfn` for which allow() answers as it does for `pfn`. Lets
 * allowList() skip free / never-materialised memory instead of asking about every frame.
 * `byState`, when given, is allow() as a function of the frame's buddy class and owner alone
 * (classOfPfn, ownerOfPfn): allowList() then decides once per run of equal state, over runs
 * computed once per allocator state and shared by every context.
 */
export interface DirectMapRuns extends DirectMapSpec {
  readonly runEnd: (pfn: number) => number;
}

/** The direct map's frames as maximal runs of equal buddy state (class, owner). */
interface StateRuns {
  readonly start: number[];
  readonly end: number[];
  readonly cls: number[];
  readonly owner: number[];
  /** sys.buddy.changes when computed. */
  readonly changes: number;
}

const stateRunsOf = new WeakMap<System, StateRuns>();

function stateRuns(sys: System): StateRuns {
  const have = stateRunsOf.get(sys);
  if (have && have.changes === sys.buddy.changes) return have;
  const buddy = sys.buddy;
  const r: StateRuns = { start: [], end: [], cls: [], owner: [], changes: buddy.changes };
  for (const [s, e] of sys.kernel.pfnMapped) {
    const end = Number(e);
    for (let pfn = Number(s); pfn < end;) {
      const next = Math.min(Math.max(buddy.sameStateEnd(pfn), pfn + 1), end);
      const cls = buddy.classOfPfn(pfn);
      const owner = buddy.ownerOfPfn(pfn);
      const n = r.end.length;
      if (n > 0 && r.end[n - 1] === pfn && r.cls[n - 1] === cls && r.owner[n - 1] === owner) r.end[n - 1] = next;
      else { r.start.push(pfn); r.end.push(next); r.cls.push(cls); r.owner.push(owner); }
      pfn = next;
    }
  }
  stateRunsOf.set(sys, r);
  return r;
}

/** The allowed VA intervals of a spec: its ranges plus the direct-map aliases of allowed frames. */
export function allowList(sys: System, spec: RestrictedSpec): AllowList {
  const out: Array<[bigint, bigint]> = spec.ranges.map((r) => [r.start, r.end]);
  const dm = spec.directMap;
  const base = sys.layout.addrs.page_offset_base;
  const push = (a: number, b: number) => out.push([base + BigInt(a) * 4096n, base + BigInt(b) * 4096n]);
  const byState = dm?.byState;
  if (dm && byState) {
    const r = stateRuns(sys);
    let run = -1;
    let last = -1;
    for (let i = 0; i < r.start.length; i++) {
      const ok = byState(r.cls[i], r.owner[i]);
      if (ok && run >= 0 && r.start[i] !== last) { push(run, last); run = -1; } // a gap between pfnMapped ranges
      if (ok && run < 0) run = r.start[i];
      if (!ok && run >= 0) { push(run, last); run = -1; }
      last = r.end[i];
    }
    if (run >= 0) push(run, last);
  } else if (dm) {
    const runEnd = dm.runEnd;
    for (const [s, e] of sys.kernel.pfnMapped) {
      const end = Number(e);
      let run = -1;
      let pfn = Number(s);
      while (pfn < end) {
        const ok = dm.allow(pfn);
        if (ok && run < 0) run = pfn;
        if (!ok && run >= 0) { push(run, pfn); run = -1; }
        pfn = runEnd ? Math.min(Math.max(runEnd(pfn), pfn + 1), end) : pfn + 1;
      }
      if (run >= 0) push(run, end);
    }
  }
  return new AllowList(out);
}

/**
 * Everything the space of `ctx` holds as one spec: the context's own and, for a design with a
 * global kernel half, the half's (ranges and direct map). For the readers that explain a space's
 * mappings (exposure.ts, the web map); the builder keeps the two apart.
 */
export function contextSpec(sys: System, design: AsiDesign, ctx: AsiContext): RestrictedSpec {
  const own = design.spec(sys, ctx);
  const half = design.globalSpec?.(sys);
  if (!half) return own;
  return { ...own, ranges: [...own.ranges, ...half.ranges], directMap: own.directMap ?? half.directMap };
}

/** Build the restricted space a design gives `ctx` (or return the one it already has). */
export function buildSpace(sys: System, design: AsiDesign, ctx: AsiContext): RestrictedSpace {
  if (design.build) return design.build(sys, ctx);
  const spec = design.spec(sys, ctx);
  return buildFromSpec(sys, design, ctx, spec);
}

/**
 * The spaces of several contexts of one design, every allow list taken from one allocator state
 * before any table is allocated: one space's own tables are not in another's direct map, and the
 * state-run scan (stateRuns) is done once for all of them.
 */
export function buildContextSpaces(sys: System, design: AsiDesign, ctxs: readonly AsiContext[]): RestrictedSpace[] {
  if (design.build) return ctxs.map((c) => design.build!(sys, c));
  const specs = ctxs.map((c) => design.spec(sys, c));
  const allows = design.globalSpec ? null : specs.map((s) => allowList(sys, s));
  return ctxs.map((c, i) => buildFromSpec(sys, design, c, specs[i], allows?.[i]));
}

export function buildFromSpec(sys: System, design: AsiDesign, ctx: AsiContext, spec: RestrictedSpec, allow?: AllowList): RestrictedSpace {
  const half = design.globalSpec ? globalHalf(sys, design) : null;
  if (half && spec.ranges.length + (spec.directMap ? 1 : 0) > 0) throw new Error(`${design.name}: a design with a global kernel half gives each context only its user half`);
  const b = new Builder(sys, half ? EMPTY : allow ?? allowList(sys, spec));
  // The root: an order-1 PGD pair, as pgd_alloc() and asi_init() allocate (PGD_ALLOCATION_ORDER).
  // globalHalf() has just returned a half current for the allocator; it stays current across the
  // pair: a context's own root is not in the half's direct map (as a space built alone never held
  // the root allocated after its allow list).
  const pair = b.allocPair();
  if (half) half.changes = sys.buddy.changes;
  const root = pair + (spec.rootOffset ?? 0);
  const levels = sys.levels;
  for (let i = 0; i < 512; i++) {
    if (i < 256) {
      // The user half: the context's user tables shared entry by entry (asi_clone_user_pgtbl()).
      if (spec.userPgd !== undefined) {
        const e = b.read(spec.userPgd + i * 8);
        if (e & 1n) { b.write(root + i * 8, e); b.stats.sharedSubtrees++; }
      }
      continue;
    }
    if (half) { b.write(root + i * 8, b.read(half.pgd + i * 8)); continue; } // asi_init(): set_pgd(asi->pgd + i, asi_global_nonsensitive_pgd[i])
    b.entry(ctx.fullRoot + i * 8, root + i * 8, levels, kernelPgdVa(i, levels));
  }
  const stats = b.stats;
  if (half) {
    stats.sharedSubtrees += half.stats.sharedSubtrees;
    stats.copiedLeaves += half.stats.copiedLeaves;
    stats.splits.pud += half.stats.splits.pud;
    stats.splits.pmd += half.stats.splits.pmd;
    stats.sharedTablePages = half.stats.tablePages;
  }
  return {
    id: -1, design: design.name, context: ctx, root, fullRoot: ctx.fullRoot, tableFrames: b.frames, stats,
    compareUserHalf: true, gen: 1,
  };
}

/** A design's global kernel half: the PGD page every context's root copies its kernel entries from. */
interface GlobalHalf {
  readonly pgd: number;
  readonly stats: SpaceStats;
  /** The buddy allocator's change count it is current for: a later alloc or free makes it stale. */
  changes: number;
}

const EMPTY = new AllowList([]);

/** The first address that kernel-half PGD entry `i` (256..511) maps, sign-extended. */
function kernelPgdVa(i: number, levels: number): bigint {
  return (BigInt(i) << BigInt(12 + 9 * (levels - 1))) | (levels === 5 ? 0xfe00000000000000n : 0xffff000000000000n);
}
const globalHalves = new WeakMap<System, Map<string, GlobalHalf>>();

/**
 * The global half of `design` on `sys`, built on first use and again once the allocator has
 * changed (a space is a snapshot: spaces built before keep the half they were built with). It is
 * walked from the kernel's own root (init_top_pgt): every process PGD copies its kernel half.
 * The kernel keeps asi_global_nonsensitive_pgd in .bss; here its page comes from the buddy
 * allocator like the rest of the half's tables.
 */
function globalHalf(sys: System, design: AsiDesign): GlobalHalf {
  let byDesign = globalHalves.get(sys);
  if (!byDesign) { byDesign = new Map(); globalHalves.set(sys, byDesign); }
  const have = byDesign.get(design.name);
  if (have && have.changes === sys.buddy.changes) return have;
  const b = new Builder(sys, allowList(sys, design.globalSpec!(sys)));
  const pgd = b.allocPage();
  // asi_init() copies from KERNEL_PGD_BOUNDARY = pgd_index(PAGE_OFFSET) up; below it (the guard
  // hole, the LDT remap) a process PGD has only what is its own.
  for (let i = sys.processes.kernelPgdBoundary; i < 512; i++) b.entry(sys.kernel.kernelRoot + i * 8, pgd + i * 8, sys.levels, kernelPgdVa(i, sys.levels));
  const half = { pgd, stats: b.stats, changes: sys.buddy.changes };
  byDesign.set(design.name, half);
  return half;
}

class Builder {
  readonly stats: SpaceStats = { tablePages: 0, sharedSubtrees: 0, copiedLeaves: 0, splits: { pud: 0, pmd: 0 } };
  readonly frames: number[] = [];
  private readonly mem: PhysMemory;
  private readonly cls: number;

  constructor(private readonly sys: System, private readonly allow: AllowList) {
    this.mem = sys.mem;
    this.cls = classify(sys.model, 'page-table', sys.owners.kernel);
  }

  read(pa: number): bigint {
    return this.mem.read64Big(pa);
  }

  write(pa: number, v: bigint): void {
    this.mem.write64Big(pa, v);
  }

  allocPair(): number {
    return this.alloc(1);
  }

  allocPage(): number {
    return this.alloc(0);
  }

  private alloc(order: number): number {
    const pfn = this.sys.buddy.alloc(order, KERNEL_OWNER, this.cls, 'normal', USE_PAGE_TABLE);
    for (let i = 0; i < 1 << order; i++) { this.mem.frameWords(pfn + i).fill(0); this.frames.push(pfn + i); }
    this.stats.tablePages += 1 << order;
    this.sys.recordPages(KERNEL_OWNER, pfn, order, 'page-table', 'asi page table');
    return pfn * PAGE_SIZE;
  }

  /** Handle the full entry at `src` (level `level`, mapping from `va`) into the restricted entry at `dst`. */
  entry(src: number, dst: number, level: number, va: bigint): void {
    const e = this.read(src);
    if ((e & 1n) === 0n) return;
    const size = 1n << BigInt(12 + 9 * (level - 1));
    const v = this.allow.cover(va, (va + size) & M64 || 1n << 64n);
    if (v === NONE) return;
    const leaf = level === 1 || (level <= 3 && (e & PS) !== 0n);
    if (v === ALL) {
      this.write(dst, e);
      if (leaf) this.stats.copiedLeaves++;
      else this.stats.sharedSubtrees++;
      return;
    }
    if (leaf) { this.splitLeaf(e, dst, level, va); return; }
    const table = this.alloc(0);
    this.write(dst, BigInt(table) | (e & ~ADDR_MASK));
    const child = Number(e & ADDR_MASK);
    const step = size >> 9n;
    for (let i = 0; i < 512; i++) this.entry(child + i * 8, table + i * 8, level - 1, va + BigInt(i) * step);
  }

  /** A large leaf only partly allowed: a table of the next size, as split_large_page() builds it. */
  private splitLeaf(e: bigint, dst: number, level: number, va: bigint): void {
    if (level === 3) this.stats.splits.pud++;
    else this.stats.splits.pmd++;
    const table = this.alloc(0);
    this.write(dst, BigInt(table) | (e & TABLE_FLAGS) | 0x20n);
    const size = 1n << BigInt(12 + 9 * (level - 1));
    const step = size >> 9n;
    const base = e & ADDR_MASK & ~(size - 1n);
    let attrs = e & ~ADDR_MASK & ~PAT_LARGE;
    const pat = (e & PAT_LARGE) !== 0n;
    if (level - 1 === 1) { attrs &= ~PS; if (pat) attrs |= PAT_4K; } else if (pat) attrs |= PAT_LARGE;
    for (let i = 0; i < 512; i++) {
      const sva = va + BigInt(i) * step;
      const sub = (base + BigInt(i) * step) | attrs;
      const v = this.allow.cover(sva, sva + step);
      if (v === NONE) continue;
      if (v === ALL || level - 1 === 1) { this.write(table + i * 8, sub); this.stats.copiedLeaves++; continue; }
      this.splitLeaf(sub, table + i * 8, level - 1, sva);
    }
  }
}

/**
 * Read-only walk: does `root` map the canonical address hi:lo? Fills `out` with the frame and
 * the rights folded over all levels (SDM 4.6.1) and returns true; sets no A/D bits.
 */
export class Probe {
  frame = 0;
  pageShift = 12;
  writable = false;
  user = false;
  /** XD folded (as written, before IA32_EFER.NXE). */
  xd = false;
}

export function probe(mem: PhysMemory, root: number, levels: 4 | 5, lo: number, hi: number, out: Probe): boolean {
  let table = root;
  let fold = 6; // US | RW
  let xd = 0;
  for (let level: number = levels; level >= 1; level--) {
    const idx = level <= 3 ? ((lo >>> 12) | ((hi & 0xff) << 20)) >>> (9 * level - 9) & 511 : (hi >>> (9 * level - 29)) & 511;
    const elo = mem.read32(table + idx * 8);
    const ehi = mem.read32(table + idx * 8 + 4);
    if ((elo & 1) === 0) return false;
    fold &= elo;
    xd |= ehi;
    const addr = (ehi & 0xfffff) * 4294967296 + ((elo & 0xfffff000) >>> 0);
    if (level === 1 || (level <= 3 && (elo & 0x80) !== 0)) {
      const shift = 12 + 9 * (level - 1);
      out.pageShift = shift;
      out.frame = addr - (addr % 2 ** shift);
      out.writable = (fold & 2) !== 0;
      out.user = (fold & 4) !== 0;
      out.xd = (xd & 0x80000000) !== 0;
      return true;
    }
    table = addr;
  }
  return false;
}

// -- helpers the designs share -------------------------------------------------------------

/** A layout region (linux/layout.ts ids: 'cpu_entry_area', 'espfix', 'ldt_remap', …) as a VaRange. */
export function regionRange(sys: System, id: string, why: string): VaRange {
  const r = sys.layout.byId(id);
  if (!r) throw new RangeError(`layout has no region '${id}'`);
  return { start: r.start, end: r.end, why };
}

/** [start, end) rounded out to pages. */
export function pageRange(start: bigint, end: bigint, why: string): VaRange {
  return { start: start & ~0xfffn, end: (end + 0xfffn) & ~0xfffn, why };
}

/** The per-CPU first chunk's units through the direct map (the embedded chunk: pcpu_embed_first_chunk()). */
export function perCpuRanges(sys: System, firstPageOnly: boolean, why: string): VaRange[] {
  return sys.bootAllocations().filter((a) => a.kind === 'percpu').map((a) => {
    const start = sys.directMapVa(a.ranges[0].pa);
    return { start, end: start + BigInt(firstPageOnly ? PAGE_SIZE : a.ranges[0].bytes), why };
  });
}

/** The VA ranges (page-rounded) through which a set of allocations is used (marked perAllocation). */
export function allocationRanges(sys: System, allocs: Iterable<Allocation>, why: string): VaRange[] {
  const out: VaRange[] = [];
  for (const a of allocs) {
    if (a.via === 'vmalloc') {
      const bytes = a.ranges.reduce((n, r) => n + r.bytes, 0);
      out.push({ ...pageRange(a.va, a.va + BigInt(bytes), why), perAllocation: true });
    } else {
      for (const r of a.ranges) { const s = sys.directMapVa(r.pa); out.push({ ...pageRange(s, s + BigInt(r.bytes), why), perAllocation: true }); }
    }
  }
  return out;
}

/** Where a kernel VA belongs, as verify.ts and the designs' permits() see it. */
export function viaOf(sys: System, va: bigint, levels: 4 | 5): MapVia {
  const v = BigInt.asUintN(64, va);
  const a = sys.layout.addrs;
  if (v < (levels === 5 ? 1n << 56n : 1n << 47n)) return 'user';
  if (v >= a.page_offset_base && v < a.page_offset_base + (BigInt(sys.kernel.pfnMapped.at(-1)?.[1] ?? 0n) << 12n)) return 'direct';
  if (v >= a.vmalloc_base && v <= a.VMALLOC_END) return 'vmalloc';
  if (v >= a.__START_KERNEL_map && v < a.__START_KERNEL_map + a.KERNEL_IMAGE_SIZE) return 'image';
  return 'other';
}
