/**
 * The direct map, built as Linux 6.1 builds it at boot (arch/x86/mm/init.c init_mem_mapping(),
 * arch/x86/mm/init_64.c kernel_physical_mapping_init()):
 *
 *  - the ISA range [0, 1 MiB) is always mapped, with 4 KiB pages, holes included;
 *  - then [1 MiB, max_pfn) top-down in growing steps (memory_map_top_down()), each step mapping
 *    only the memblock memory inside it (init_range_memory_mapping());
 *  - each mapped range is cut by split_mem_range() into a 4 KiB head, 2 MiB, 1 GiB, 2 MiB and a
 *    4 KiB tail, and adjust_range_page_size_mask() promotes a small range to the larger size
 *    when the whole aligned block around it is memory;
 *  - phys_pud_init()/phys_pmd_init()/phys_pte_init() write the entries, reusing what an earlier
 *    step already mapped, and clearing entries of blocks with no RAM at all.
 *
 * Also the real-mode trampoline's permissions (arch/x86/realmode/init.c), the only change
 * the kernel makes to the direct map below 1 MiB.
 *
 * The bulk writing is done with Numbers straight into the table frames (a 1 TiB direct map is
 * half a million 2 MiB entries without GB pages); the choice of page sizes is BigInt set-up code.
 */
import type { PhysMemory } from '../phys/memory.ts';
import { _PAGE_GLOBAL, _PAGE_NX, type CpaEnv, type ProtMasks, setMemoryNx, setMemoryRo, setMemoryX } from './cpa.ts';
import { isRegionMemory, memblockMemory, type PhysRange } from './memblock.ts';

export { memblockMemory, isRegionMemory, type PhysRange };

export const PG_LEVEL_2M_MASK = 1 << 2; // 1 << PG_LEVEL_2M
export const PG_LEVEL_1G_MASK = 1 << 3; // 1 << PG_LEVEL_1G
const ISA_END_ADDRESS = 0x100000n; // arch/x86/include/asm/e820/types.h
const PMD = 1n << 21n;
const PUD = 1n << 30n;
const PAGE = 4096n;
const TWO32 = 4294967296;


/** A range handed to kernel_physical_mapping_init() (struct map_range). */
export interface MapRange { start: bigint; end: bigint; mask: number }

const rdown = (v: bigint, a: bigint) => (v / a) * a;
const rup = (v: bigint, a: bigint) => ((v + a - 1n) / a) * a;

/**
 * split_mem_range() (arch/x86/mm/init.c), x86-64 flavour, with adjust_range_page_size_mask()
 * and the merge of neighbours of equal size. `pageSizeMask` is the global page_size_mask.
 */
export function splitMemRange(start: bigint, end: bigint, pageSizeMask: number, memblock: PhysRange[]): MapRange[] {
  const mr: MapRange[] = [];
  const save = (s: bigint, e: bigint, mask: number) => { if (s < e) mr.push({ start: s, end: e, mask }); };
  const limit = rdown(end, PAGE);
  let pa = rdown(start, PAGE);
  // head if not big page alignment
  let e = rup(pa, PMD);
  if (e > limit) e = limit;
  if (pa < e) { save(pa, e, 0); pa = e; }
  // big page (2M) range: up to the next 1G boundary
  let s = rup(pa, PMD);
  e = rup(pa, PUD);
  if (e > rdown(limit, PMD)) e = rdown(limit, PMD);
  if (s < e) { save(s, e, pageSizeMask & PG_LEVEL_2M_MASK); pa = e; }
  // big page (1G) range
  s = rup(pa, PUD);
  e = rdown(limit, PUD);
  if (s < e) { save(s, e, pageSizeMask & (PG_LEVEL_2M_MASK | PG_LEVEL_1G_MASK)); pa = e; }
  // tail is not big page (1G) alignment
  s = rup(pa, PMD);
  e = rdown(limit, PMD);
  if (s < e) { save(s, e, pageSizeMask & PG_LEVEL_2M_MASK); pa = e; }
  // tail is not big page (2M) alignment
  save(pa, limit, 0);

  // adjust_range_page_size_mask(): "adjust the page_size_mask for small range to go with big
  // page size instead small one if nearby are ram too"
  for (const r of mr) {
    if ((pageSizeMask & PG_LEVEL_2M_MASK) && !(r.mask & PG_LEVEL_2M_MASK)) {
      if (isRegionMemory(memblock, rdown(r.start, PMD), rup(r.end, PMD))) r.mask |= PG_LEVEL_2M_MASK;
    }
    if ((pageSizeMask & PG_LEVEL_1G_MASK) && !(r.mask & PG_LEVEL_1G_MASK)) {
      if (isRegionMemory(memblock, rdown(r.start, PUD), rup(r.end, PUD))) r.mask |= PG_LEVEL_1G_MASK;
    }
  }
  // "try to merge same page size and continuous"
  for (let i = 0; mr.length > 1 && i < mr.length - 1; i++) {
    if (mr[i].end !== mr[i + 1].start || mr[i].mask !== mr[i + 1].mask) continue;
    mr[i + 1].start = mr[i].start;
    mr.splice(i, 1);
    i--;
  }
  return mr;
}

/** What the direct-map builder needs. */
export interface DirectMapEnv {
  mem: PhysMemory;
  levels: 4 | 5;
  /** Physical address of the kernel's top-level table. */
  root: number;
  pageOffset: bigint;
  masks: ProtMasks;
  /** Zeroed frame for a paging structure (PA as a Number). */
  allocTable: () => number;
  /** e820 RAM ranges (as /proc/iomem "System RAM"): e820__mapped_any() looks here. */
  e820Ram: PhysRange[];
  /** page_size_mask from probe_page_size_mask(). */
  pageSizeMask: number;
  /** direct_pages_count[], in pages. */
  counts: { k4: number; m2: number; g1: number };
  /** pud_index(page_offset_base): the direct map starts on a PUD boundary. */
  pudIndexBase: number;
  /** pfn_mapped[]: PFN runs mapped so far. */
  pfnMapped: Array<[bigint, bigint]>;
  /** Every range handed to kernel_physical_mapping_init(), in order (the kernel's "[mem ...] page 2M" lines). */
  trace: MapRange[];
}

/** probe_page_size_mask(): 2 MiB pages with PSE (and no debug_pagealloc), 1 GiB pages with direct_gbpages and GBPAGES too. */
export function probePageSizeMask(cpu: { pse: boolean; gbpages: boolean }, directGbpages: boolean, debugPagealloc = false): number {
  let mask = 0;
  const twoM = cpu.pse && !debugPagealloc;
  if (twoM) mask |= PG_LEVEL_2M_MASK;
  if (twoM && directGbpages && cpu.gbpages) mask |= PG_LEVEL_1G_MASK; // "Enable 1 GB linear kernel mappings if available"
  return mask;
}

// -- entry access on Numbers ----------------------------------------------------------------

function words(env: DirectMapEnv, table: number): Uint32Array {
  return env.mem.frameWords(Math.floor(table / 4096));
}

function entryAddr(lo: number, hi: number): number {
  return (hi & 0x000fffff) * TWO32 + ((lo & 0xfffff000) >>> 0);
}

function writeEntry(w: Uint32Array, i: number, pa: number, lo: number, hi: number): void {
  w[i * 2] = ((pa % TWO32) | lo) >>> 0;
  w[i * 2 + 1] = (Math.floor(pa / TWO32) | hi) >>> 0;
}

function e820MappedAny(env: DirectMapEnv, start: number, end: number): boolean {
  for (const r of env.e820Ram) if (Number(r.start) < end && Number(r.end) > start) return true; // e820__mapped_any(.., E820_TYPE_RAM)
  return false;
}

/** PAGE_KERNEL for the direct map, as entry halves (pgtable_types.h, masked by __default_kernel_pte_mask). */
function kernelProt(masks: ProtMasks): { lo: number; hi: number } {
  const p = (_PAGE_NX | 0x163n) & masks.defaultKernel; // __PAGE_KERNEL = P|RW|A|D|GLOBAL|NX
  return { lo: Number(p & 0xfffn), hi: Number(p >> 32n) >>> 0 };
}
const TABLE_LO = 0x67; // _PAGE_TABLE: what p4d/pud/pmd_populate() write (pgalloc.h)
const P4K = 4096;
const P2M = 2097152;
const P1G = 1073741824;
const down = (v: number, a: number) => v - (v % a);

// Physical addresses below are Numbers (< 2^52, exact).

function phys_pte_init(env: DirectMapEnv, table: number, paddr: number, paddrEnd: number, lo: number, hi: number): number {
  const w = words(env, table);
  let last = paddrEnd;
  let pages = 0;
  let pa = paddr;
  for (let i = Math.floor(paddr / P4K) % 512; i < 512; i++, pa = down(pa, P4K) + P4K) {
    if (pa >= paddrEnd) {
      if (!e820MappedAny(env, down(pa, P4K), down(pa, P4K) + P4K)) { w[i * 2] = 0; w[i * 2 + 1] = 0; }
      continue;
    }
    if ((w[i * 2] | w[i * 2 + 1]) !== 0) { pages++; continue; } // "We will re-use the existing mapping"
    pages++;
    writeEntry(w, i, down(pa, P4K), lo, hi);
    last = down(pa, P4K) + P4K;
  }
  env.counts.k4 += pages;
  return last;
}

function phys_pmd_init(env: DirectMapEnv, table: number, paddr: number, paddrEnd: number, mask: number, lo: number, hi: number): number {
  const w = words(env, table);
  let last = paddrEnd;
  let pages = 0;
  let pa = paddr;
  for (let i = Math.floor(paddr / P2M) % 512; i < 512; i++, pa = down(pa, P2M) + P2M) {
    const next = down(pa, P2M) + P2M;
    let nlo = lo;
    let nhi = hi;
    if (pa >= paddrEnd) {
      const elo = w[i * 2];
      if ((elo | w[i * 2 + 1]) !== 0 && !e820MappedAny(env, down(pa, P2M), next)) { w[i * 2] = 0; w[i * 2 + 1] = 0; }
      continue;
    }
    const elo = w[i * 2];
    const ehi = w[i * 2 + 1];
    if ((elo | ehi) !== 0) {
      if ((elo & 0x80) === 0) {
        last = phys_pte_init(env, entryAddr(elo, ehi), pa, paddrEnd, lo, hi);
        continue;
      }
      if (mask & PG_LEVEL_2M_MASK) { pages++; last = next; continue; } // "use the existing mapping"
      // "we will split the large page mapping but use the same existing protection bits except for large page"
      nlo = elo & 0xfff & ~0x80;
      nhi = ehi & 0xfff00000;
    }
    if (mask & PG_LEVEL_2M_MASK) {
      pages++;
      writeEntry(w, i, down(pa, P2M), lo | 0x80, hi); // prot | _PAGE_PSE
      last = next;
      continue;
    }
    const pte = env.allocTable();
    last = phys_pte_init(env, pte, pa, paddrEnd, nlo, nhi);
    writeEntry(w, i, pte, TABLE_LO, 0); // pmd_populate_kernel()
  }
  env.counts.m2 += pages;
  return last;
}

function phys_pud_init(env: DirectMapEnv, table: number, paddr: number, paddrEnd: number, mask: number, lo: number, hi: number): number {
  const w = words(env, table);
  let last = paddrEnd;
  let pages = 0;
  let pa = paddr;
  // pud_index(__va(paddr)): page_offset_base is PUD-aligned, so the index moves with paddr.
  const first = (env.pudIndexBase + Math.floor(paddr / P1G)) % 512;
  for (let i = first; i < 512; i++, pa = down(pa, P1G) + P1G) {
    const next = down(pa, P1G) + P1G;
    let nlo = lo;
    let nhi = hi;
    if (pa >= paddrEnd) {
      if ((w[i * 2] | w[i * 2 + 1]) !== 0 && !e820MappedAny(env, down(pa, P1G), next)) { w[i * 2] = 0; w[i * 2 + 1] = 0; }
      continue;
    }
    const elo = w[i * 2];
    const ehi = w[i * 2 + 1];
    if ((elo | ehi) !== 0) {
      if ((elo & 0x80) === 0) {
        last = phys_pmd_init(env, entryAddr(elo, ehi), pa, paddrEnd, mask, lo, hi);
        continue;
      }
      if (mask & PG_LEVEL_1G_MASK) { pages++; last = next; continue; }
      nlo = elo & 0xfff & ~0x80; // pte_pgprot(pte_clrhuge(*pud))
      nhi = ehi & 0xfff00000;
    }
    if (mask & PG_LEVEL_1G_MASK) {
      pages++;
      writeEntry(w, i, down(pa, P1G), lo | 0x80, hi); // PAGE_KERNEL_LARGE
      last = next;
      continue;
    }
    const pmd = env.allocTable();
    last = phys_pmd_init(env, pmd, pa, paddrEnd, mask, nlo, nhi);
    writeEntry(w, i, pmd, TABLE_LO, 0); // pud_populate()
  }
  env.counts.g1 += pages;
  return last;
}

/** kernel_physical_mapping_init() → __kernel_physical_mapping_init() → phys_p4d_init(). Returns paddr_last. */
export function kernelPhysicalMappingInit(env: DirectMapEnv, paddrStart: bigint, paddrEnd: bigint, mask: number): bigint {
  env.trace.push({ start: paddrStart, end: paddrEnd, mask });
  const { lo, hi } = kernelProt(env.masks);
  const pgdShift = env.levels === 5 ? 48n : 39n;
  let last = Number(paddrEnd);
  const vaEnd = env.pageOffset + paddrEnd;
  for (let va = env.pageOffset + paddrStart; va < vaEnd;) {
    const vaNext = ((va >> pgdShift) + 1n) << pgdShift;
    const top = words(env, env.root);
    const gi = Number((va >> pgdShift) & 511n);
    let sub = entryAddr(top[gi * 2], top[gi * 2 + 1]);
    const fresh = (top[gi * 2] | top[gi * 2 + 1]) === 0;
    if (fresh) sub = env.allocTable();
    const pa = Number(va - env.pageOffset);
    last = env.levels === 5
      ? phys_p4d_init(env, sub, va, Number(paddrEnd), mask, lo, hi)
      : phys_pud_init(env, sub, pa, Number(paddrEnd), mask, lo, hi);
    if (fresh) writeEntry(top, gi, sub, TABLE_LO, 0); // pgd_populate_init() / p4d_populate_init()
    va = vaNext;
  }
  return BigInt(last);
}

function phys_p4d_init(env: DirectMapEnv, table: number, vaStart: bigint, paddrEnd: number, mask: number, lo: number, hi: number): number {
  const w = words(env, table);
  let last = paddrEnd;
  const vaEnd = env.pageOffset + BigInt(paddrEnd);
  // phys_p4d_init() walks this one P4D page: it stops where the PGD entry ends.
  const pgdEnd = ((vaStart >> 48n) + 1n) << 48n;
  for (let va = vaStart; va < pgdEnd; va = ((va >> 39n) + 1n) << 39n) {
    const i = Number((va >> 39n) & 511n);
    const pa = Number(va - env.pageOffset);
    if (va >= vaEnd) {
      const p4dStart = Number(((va >> 39n) << 39n) - env.pageOffset);
      if ((w[i * 2] | w[i * 2 + 1]) !== 0 && !e820MappedAny(env, p4dStart, p4dStart + 2 ** 39)) { w[i * 2] = 0; w[i * 2 + 1] = 0; }
      continue;
    }
    if ((w[i * 2] | w[i * 2 + 1]) !== 0) {
      last = phys_pud_init(env, entryAddr(w[i * 2], w[i * 2 + 1]), pa, paddrEnd, mask, lo, hi);
      continue;
    }
    const pud = env.allocTable();
    last = phys_pud_init(env, pud, pa, paddrEnd, mask, lo, hi);
    writeEntry(w, i, pud, TABLE_LO, 0); // p4d_populate_init()
  }
  return last;
}

function addPfnRangeMapped(env: DirectMapEnv, startPfn: bigint, endPfn: bigint): void {
  if (endPfn <= startPfn) return;
  const runs = [...env.pfnMapped, [startPfn, endPfn] as [bigint, bigint]].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const out: Array<[bigint, bigint]> = [];
  for (const r of runs) {
    const l = out[out.length - 1];
    if (l && r[0] <= l[1]) { if (r[1] > l[1]) l[1] = r[1]; } else out.push([r[0], r[1]]);
  }
  env.pfnMapped.length = 0;
  for (const r of out) env.pfnMapped.push(r); // not push(...out): the run count grows with RAM
}

/** init_memory_mapping(start, end): split, map each piece, record the pfn range. */
export function initMemoryMapping(env: DirectMapEnv, start: bigint, end: bigint, memblock: PhysRange[]): void {
  let ret = 0n;
  for (const r of splitMemRange(start, end, env.pageSizeMask, memblock)) ret = kernelPhysicalMappingInit(env, r.start, r.end, r.mask);
  addPfnRangeMapped(env, start >> 12n, ret >> 12n);
}

/** init_range_memory_mapping(): the memblock memory inside [rStart, rEnd). Returns the bytes mapped. */
function initRangeMemoryMapping(env: DirectMapEnv, rStart: bigint, rEnd: bigint, memblock: PhysRange[]): bigint {
  let mapped = 0n;
  for (const r of memblock) {
    const s = r.start < rStart ? rStart : r.start > rEnd ? rEnd : r.start;
    const e = r.end < rStart ? rStart : r.end > rEnd ? rEnd : r.end;
    if (s >= e) continue;
    initMemoryMapping(env, s, e, memblock);
    mapped += e - s;
  }
  return mapped;
}

/**
 * init_mem_mapping(): the ISA range, then memory_map_top_down(ISA_END_ADDRESS, max_pfn).
 * `avoid` are memblock reservations (the kernel image, …) the first 2 MiB probe must not land on.
 */
export function initMemMapping(env: DirectMapEnv, avoid: PhysRange[] = []): void {
  const memblock = memblockMemory(env.e820Ram);
  const maxPfnEnd = memblock.length ? memblock[memblock.length - 1].end : 0n; // max_pfn << PAGE_SHIFT
  // "the ISA range is always mapped regardless of memory holes"
  initMemoryMapping(env, 0n, ISA_END_ADDRESS, memblock);
  if (maxPfnEnd <= ISA_END_ADDRESS) return;
  // memory_map_top_down(): start with the top-most free PMD_SIZE block aligned at PMD_SIZE
  // (memblock_phys_alloc_range(PMD_SIZE, PMD_SIZE, map_start, map_end), then freed again).
  let addr = -1n;
  for (let i = memblock.length - 1; i >= 0 && addr < 0n; i--) {
    const r = memblock[i];
    for (let a = rdown(r.end - PMD, PMD); a >= r.start && a >= ISA_END_ADDRESS; a -= PMD) {
      if (!avoid.some((v) => v.start < a + PMD && v.end > a)) { addr = a; break; }
    }
  }
  const realEnd = addr < 0n ? maxPfnEnd : addr + PMD;
  let stepSize = PMD;
  let lastStart = realEnd;
  let mappedRamSize = 0n;
  while (lastStart > ISA_END_ADDRESS) {
    let start: bigint;
    if (lastStart > stepSize) {
      start = rdown(lastStart - 1n, stepSize);
      if (start < ISA_END_ADDRESS) start = ISA_END_ADDRESS;
    } else start = ISA_END_ADDRESS;
    mappedRamSize += initRangeMemoryMapping(env, start, lastStart, memblock);
    lastStart = start;
    // get_new_step_size(): step_size << (PMD_SHIFT - PAGE_SHIFT - 1)
    if (mappedRamSize >= stepSize) stepSize <<= 8n;
  }
  if (realEnd < maxPfnEnd) initRangeMemoryMapping(env, realEnd, maxPfnEnd, memblock);
}

/** Default direct-map leaf flags as a BigInt (for tests and reports): PAGE_KERNEL under `masks`. */
export function directMapProt(masks: ProtMasks): bigint {
  return (_PAGE_NX | 0x63n | _PAGE_GLOBAL) & masks.defaultKernel;
}

// -- the real-mode trampoline (arch/x86/realmode/init.c) -----------------------------------

/** Where reserve_real_mode() puts the trampoline, and which of its pages are read-only / executable. */
export interface Trampoline {
  /** Physical base (real_mode_header). */
  base: bigint;
  /** PAGE_ALIGN(real_mode_blob_end - real_mode_blob). */
  size: bigint;
  /** PAGE_ALIGN(ro_end) - base: header, rodata and text. */
  roSize: bigint;
  /** Offset of text_start from base (the blob's realmode.lds puts .text on a page boundary). */
  textOffset: bigint;
}

/**
 * reserve_real_mode(): memblock_phys_alloc_range(size, PAGE_SIZE, 0, 1 MiB), top-down, in the
 * memblock memory below 1 MiB that is not reserved — reserve_bios_regions() has already
 * reserved from the EBDA (or 640 KiB) up to 1 MiB, and the first page is always reserved.
 */
export function placeTrampoline(e820Ram: PhysRange[], blobSize: bigint, layoutPages: { roPages: number; textOffsetPages: number }, biosStart = 0x9fc00n): Trampoline | null {
  const size = rup(blobSize, PAGE);
  const limit = biosStart < ISA_END_ADDRESS ? biosStart : ISA_END_ADDRESS;
  const mb = memblockMemory(e820Ram);
  for (let i = mb.length - 1; i >= 0; i--) {
    const r = mb[i];
    const top = r.end < limit ? r.end : limit;
    const base = rdown(top - size, PAGE);
    if (top > size && base >= r.start && base >= PAGE) {
      return { base, size, roSize: BigInt(layoutPages.roPages) * PAGE, textOffset: BigInt(layoutPages.textOffsetPages) * PAGE };
    }
  }
  return null;
}

/** set_real_mode_permissions(): the whole blob NX, header..ro_end read-only, text_start..ro_end executable. */
export function realModePermissions(cpa: CpaEnv, t: Trampoline): void {
  const va = cpa.pageOffset + t.base;
  setMemoryNx(cpa, va, va + t.size);
  setMemoryRo(cpa, va, va + t.roSize);
  setMemoryX(cpa, va + t.textOffset, va + t.roSize);
}
