/**
 * Boot-time memory, as memblock hands it out before the buddy allocator exists
 * (mm/memblock.c): the RAM ranges memblock knows, a top-down allocator over what is free, the
 * per-CPU first chunk's unit size (mm/percpu.c), and the struct page array that sparse_init()
 * maps from memblock memory (mm/sparse.c, arch/x86/mm/init_64.c vmemmap_populate()).
 */
import type { PageTables } from '../x86/pgtable.ts';
import { _PAGE_NX, type ProtMasks } from './cpa.ts';
import { BootError } from './boot-error.ts';

export interface PhysRange { start: bigint; end: bigint } // end exclusive

const PAGE = 4096n;
const MiB = 1n << 20n;
const PMD = 1n << 21n;

/** memblock's view of memory: the RAM ranges with partial pages thrown away (memblock_trim_memory(PAGE_SIZE)), merged. */
export function memblockMemory(ram: PhysRange[]): PhysRange[] {
  const t = ram
    .map((r) => ({ start: ((r.start + PAGE - 1n) / PAGE) * PAGE, end: (r.end / PAGE) * PAGE }))
    .filter((r) => r.end > r.start)
    .sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  const out: PhysRange[] = [];
  for (const r of t) {
    const last = out[out.length - 1];
    if (last && r.start <= last.end) { if (r.end > last.end) last.end = r.end; } else out.push({ ...r });
  }
  return out;
}

/** memblock_is_region_memory(): one memblock region holds all of [start, end). */
export function isRegionMemory(memblock: PhysRange[], start: bigint, end: bigint): boolean {
  for (const r of memblock) if (start >= r.start && start < r.end) return r.end >= end;
  return false;
}

/** A top-down frame allocator over free RAM, the model's stand-in for memblock. */
export class BootAllocator {
  private readonly free: PhysRange[];
  constructor(ram: PhysRange[], reserved: PhysRange[]) {
    let free = memblockMemory(ram).filter((r) => r.end > MiB).map((r) => ({ start: r.start < MiB ? MiB : r.start, end: r.end }));
    for (const v of reserved) free = subtract(free, v);
    this.free = free;
  }
  reserve(r: PhysRange): void {
    const f = subtract(this.free, r);
    this.free.length = 0;
    for (const r of f) this.free.push(r); // not push(...f): the range count grows with the input
  }
  /** `size` bytes aligned to `align`, from the top. */
  allocAligned(size: bigint, align: bigint): bigint {
    for (let i = this.free.length - 1; i >= 0; i--) {
      const r = this.free[i];
      const a = ((r.end - size) / align) * align;
      if (r.end >= size && a >= r.start) {
        this.reserve({ start: a, end: a + size });
        return a;
      }
    }
    throw new BootError('ram', `out of memory at boot: no free ${size}-byte block aligned to ${align} (RAM ${describeRam(this.free)} left)`);
  }
}

/** Free bytes of a range list as 12MiB-style text (for the out-of-memory message). */
function describeRam(free: PhysRange[]): string {
  const bytes = free.reduce((a, r) => a + (r.end - r.start), 0n);
  return bytes >= 1n << 20n ? `${bytes >> 20n}MiB` : `${bytes}B`;
}

function subtract(list: PhysRange[], v: PhysRange): PhysRange[] {
  const out: PhysRange[] = [];
  for (const r of list) {
    if (v.end <= r.start || v.start >= r.end) { out.push(r); continue; }
    if (v.start > r.start) out.push({ start: r.start, end: v.start });
    if (v.end < r.end) out.push({ start: v.end, end: r.end });
  }
  return out;
}

/**
 * pcpu_build_alloc_info() (mm/percpu.c) with one group: the unit size of the embedded first
 * chunk for `cpus` CPUs; static size + PERCPU_MODULE_RESERVE (8 KiB) + PERCPU_DYNAMIC_RESERVE
 * (28 KiB), atoms of PMD_SIZE (setup_percpu.c pcpu_embed_first_chunk(..., PMD_SIZE, ...)).
 */
export function percpuUnitSize(staticSize: bigint, cpus: number): bigint {
  const sizeSum = ((staticSize + 8192n + 28672n + PAGE - 1n) / PAGE) * PAGE;
  const minUnit = sizeSum > 32768n ? sizeSum : 32768n; // PCPU_MIN_UNIT_SIZE
  const allocSize = ((minUnit + PMD - 1n) / PMD) * PMD;
  let upa = Number(allocSize / minUnit);
  while (allocSize % BigInt(upa) !== 0n || (allocSize / BigInt(upa)) % PAGE !== 0n) upa--;
  let best = 0;
  let lastAllocs = Infinity;
  for (let u = upa; u > 0; u--) {
    if (allocSize % BigInt(u) !== 0n || (allocSize / BigInt(u)) % PAGE !== 0n) continue;
    const allocs = Math.ceil(cpus / u);
    const wasted = allocs * u - cpus;
    if (wasted > cpus / 3) continue; // "Don't accept if wastage is over 1/3"
    if (allocs > lastAllocs) break; // "and then don't consume more memory"
    lastAllocs = allocs;
    best = u;
  }
  return allocSize / BigInt(best || 1);
}

// -- the struct page array (mm/sparse.c, arch/x86/mm/init_64.c vmemmap_populate()) -----------

/** SECTION_SIZE_BITS 27 (asm/sparsemem.h): 128 MiB sections; sizeof(struct page) is 64. */
const SECTION_SHIFT = 27n;
const STRUCT_PAGE = 64n;

/**
 * sparse_init(): every present memory section (memblocks_present()) gets its memmap at
 * vmemmap_base + pfn * sizeof(struct page) — 2 MiB per section — mapped by vmemmap_populate():
 * with PSE one PAGE_KERNEL_LARGE PMD per 2 MiB (vmemmap_populate_hugepages()), else 4 KiB pages
 * (vmemmap_populate_basepages()). The backing memory comes from memblock: `alloc(size)`.
 * Returns the sections populated.
 */
export function populateVmemmap(
  env: { pt: PageTables; masks: ProtMasks; pse: boolean },
  vmemmapBase: bigint, memblock: PhysRange[], alloc: (size: bigint, align: bigint) => bigint,
  populate: (va: bigint, level: number) => bigint,
): number {
  const sections = new Set<bigint>();
  for (const r of memblock) {
    for (let s = r.start >> SECTION_SHIFT; s <= (r.end - 1n) >> SECTION_SHIFT; s++) sections.add(s);
  }
  const prot = (_PAGE_NX | 0x163n) & env.masks.defaultKernel; // PAGE_KERNEL
  const perSection = (1n << (SECTION_SHIFT - 12n)) * STRUCT_PAGE; // PAGES_PER_SECTION * sizeof(struct page)
  for (const s of [...sections].sort((a, b) => (a < b ? -1 : 1))) {
    const start = vmemmapBase + (s << (SECTION_SHIFT - 12n)) * STRUCT_PAGE;
    if (env.pse) {
      for (let va = start; va < start + perSection; va += PMD) {
        env.pt.write(populate(va, 2), alloc(PMD, PMD) | prot | 0x80n); // PAGE_KERNEL_LARGE
      }
    } else {
      for (let va = start; va < start + perSection; va += PAGE) env.pt.write(populate(va, 1), alloc(PAGE, PAGE) | prot);
    }
  }
  return sections.size;
}
