/**
 * The vmalloc area allocator (mm/vmalloc.c, Linux 6.1), backed by buddy pages and mapped with
 * 4 KiB PTEs into a PageTables instance.
 *
 * Rules taken from the kernel:
 *  - every area gets one unmapped guard page after it: __get_vm_area_node() adds PAGE_SIZE to
 *    the size unless VM_NO_GUARD;
 *  - the virtual range is the lowest free block of [VMALLOC_START, VMALLOC_END) that fits the
 *    size at the requested alignment (alloc_vmap_area() -> find_vmap_lowest_match());
 *  - vmalloc() aligns to a page; task stacks are THREAD_SIZE = 16 KiB, THREAD_ALIGN-aligned
 *    (kernel/fork.c alloc_thread_stack_node(); arch/x86/include/asm/page_64_types.h
 *    THREAD_SIZE_ORDER 2 with KASAN off, as in the capture's config);
 *  - backing pages are order-0 buddy pages (vm_area_alloc_pages()), mapped with PAGE_KERNEL:
 *    __PAGE_KERNEL = P | RW | A | D | NX | G (arch/x86/include/asm/pgtable_types.h), but
 *    PAGE_KERNEL is masked by __default_kernel_pte_mask, from which probe_page_size_mask()
 *    (arch/x86/mm/init.c) removes _PAGE_GLOBAL when PTI is on ("the kernel is mostly
 *    non-Global"); the capture (pti=on) indeed shows vmalloc PTEs without G;
 *  - vfree() clears the PTEs and frees the pages; page-table pages of the vmalloc range are
 *    never freed. The kernel defers reuse of the virtual range until a lazy purge (and the TLB
 *    flush) — here the range is free again at once (a simplification).
 *
 * Sensitivity: the frames get the model's class for the kind (their direct-map alias) and the
 * area records the class of the vmalloc mapping, which both ASI RFCs set apart for stacks.
 * The free-range search is a linear scan of the sorted areas: fine for thousands of areas.
 */
import { BuddyAllocator, PAGE_SIZE, USE_VMALLOC } from './buddy.ts';
import { KERNEL_OWNER, type Owners } from './owners.ts';
import { classify, classifyMapping, getModel, type ModelName, type SensitivityModel } from './sensitivity.ts';
import { SIZE_4K, type PageTables } from '../x86/pgtable.ts';
import { PTE_A, PTE_D, PTE_G, PTE_P, PTE_RW } from '../x86/bits.ts';

export const THREAD_SIZE = 16384;
export const THREAD_ALIGN = THREAD_SIZE;
const XD = 1n << 63n;

export interface VmArea {
  id: number;
  /** First mapped address. */
  va: bigint;
  /** Mapped bytes (the guard page after them is not counted). */
  size: number;
  /** Backing frames, one per page, in address order. */
  pfns: readonly number[];
  owner: number;
  kind: string;
  /** Class of the vmalloc mapping. */
  cls: number;
  /** Class of the frames (their direct-map alias). */
  frameCls: number;
}

export interface VmallocOptions {
  buddy: BuddyAllocator;
  owners: Owners;
  model: ModelName | SensitivityModel;
  /** Tables the areas are mapped into (the kernel's; the vmalloc range is shared by all mms). */
  pt: PageTables;
  /** VMALLOC_START and VMALLOC_END (inclusive end, as the kernel defines it, or exclusive: both accepted). */
  start: bigint;
  end: bigint;
  /** PTI on: PAGE_KERNEL loses _PAGE_GLOBAL. Default true (the capture's pti=on). */
  pti?: boolean;
}

interface Busy {
  /** Page offsets from VMALLOC_START: [first, last) including the guard page. */
  first: number;
  last: number;
  area: VmArea;
}

export class VmallocAllocator {
  readonly model: SensitivityModel;
  /** PTE flags of every vmalloc leaf (PAGE_KERNEL after the PTI mask). */
  readonly pteFlags: bigint;
  private readonly buddy: BuddyAllocator;
  private readonly owners: Owners;
  private readonly pt: PageTables;
  private readonly start: bigint;
  private readonly pages: number;
  private readonly busy: Busy[] = [];
  private nextId = 0;

  constructor(opts: VmallocOptions) {
    this.buddy = opts.buddy;
    this.owners = opts.owners;
    this.model = getModel(opts.model);
    this.pt = opts.pt;
    if (opts.start % BigInt(PAGE_SIZE) !== 0n) throw new RangeError(`VMALLOC_START 0x${opts.start.toString(16)} is not page-aligned`);
    this.start = opts.start;
    // VMALLOC_END is inclusive in the kernel (…ffff); accept either form.
    const endEx = (opts.end + 1n) % BigInt(PAGE_SIZE) === 0n ? opts.end + 1n : opts.end;
    this.pages = Number((endEx - opts.start) / BigInt(PAGE_SIZE));
    if (!(this.pages > 0)) throw new RangeError('empty vmalloc range');
    this.pteFlags = BigInt(PTE_P | PTE_RW | PTE_A | PTE_D) | XD | ((opts.pti ?? true) ? 0n : BigInt(PTE_G));
  }

  /** vmalloc(): map `size` bytes (rounded up to pages) for `owner`. */
  vmalloc(size: number, owner: number = KERNEL_OWNER, opts: { kind?: string; align?: number } = {}): VmArea {
    const kind = opts.kind ?? 'vmalloc';
    const align = opts.align ?? PAGE_SIZE;
    if (!(size > 0)) throw new RangeError(`vmalloc of ${size} bytes`);
    if (align % PAGE_SIZE !== 0 || (align & (align - 1)) !== 0) throw new RangeError(`vmalloc alignment ${align} is not a power-of-two multiple of a page`);
    const n = Math.ceil(size / PAGE_SIZE);
    const first = this.findFree(n + 1, align / PAGE_SIZE); // + guard page
    if (first < 0) throw new RangeError(`vmalloc: no ${n + 1}-page hole in the vmalloc range`);
    const o = this.owners.get(owner);
    const frameCls = classify(this.model, kind, o);
    const cls = classifyMapping(this.model, kind, o);
    const id = this.nextId++;
    const va = this.start + BigInt(first) * BigInt(PAGE_SIZE);
    const pfns: number[] = [];
    try {
      for (let i = 0; i < n; i++) {
        const pfn = this.buddy.alloc(0, owner, frameCls, 'normal', USE_VMALLOC);
        pfns.push(pfn);
        this.buddy.setTag(pfn, 0, id);
        this.pt.mapPage(va + BigInt(i * PAGE_SIZE), BigInt(pfn) * BigInt(PAGE_SIZE), SIZE_4K, this.pteFlags);
      }
    } catch (e) {
      for (let i = 0; i < pfns.length; i++) {
        this.pt.clear(va + BigInt(i * PAGE_SIZE), 1);
        this.buddy.free(pfns[i], 0);
      }
      throw e;
    }
    const area: VmArea = { id, va, size: n * PAGE_SIZE, pfns, owner, kind, cls, frameCls };
    const at = this.busy.findIndex((b) => b.first > first);
    this.busy.splice(at < 0 ? this.busy.length : at, 0, { first, last: first + n + 1, area });
    return area;
  }

  /** A task stack: THREAD_SIZE bytes at THREAD_ALIGN. */
  allocStack(owner: number): VmArea {
    return this.vmalloc(THREAD_SIZE, owner, { kind: 'kernel-stack', align: THREAD_ALIGN });
  }

  /** vfree(): unmap the area and free its pages. */
  vfree(va: bigint): void {
    const i = this.indexOf(va);
    if (i < 0 || this.busy[i].area.va !== va) throw new Error(`vfree of 0x${va.toString(16)}: not the start of a vmalloc area`);
    const { area } = this.busy[i];
    for (let p = 0; p < area.pfns.length; p++) {
      this.pt.clear(area.va + BigInt(p * PAGE_SIZE), 1);
      this.buddy.free(area.pfns[p], 0);
    }
    this.busy.splice(i, 1);
  }

  /** The area whose mapped pages hold `va` (null in a guard page or a hole). */
  areaAt(va: bigint): VmArea | null {
    const i = this.indexOf(va);
    if (i < 0) return null;
    const a = this.busy[i].area;
    return va < a.va + BigInt(a.size) ? a : null;
  }

  areas(): VmArea[] {
    return this.busy.map((b) => b.area);
  }

  /** Index of the busy entry (area + guard) containing `va`, or -1. */
  private indexOf(va: bigint): number {
    if (va < this.start) return -1;
    const page = Number((va - this.start) / BigInt(PAGE_SIZE));
    let lo = 0;
    let hi = this.busy.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const b = this.busy[mid];
      if (page < b.first) hi = mid - 1;
      else if (page >= b.last) lo = mid + 1;
      else return mid;
    }
    return -1;
  }

  /** Lowest page offset where `n` pages fit at `alignPages` (absolute VA alignment). */
  private findFree(n: number, alignPages: number): number {
    const startMod = Number((this.start / BigInt(PAGE_SIZE)) % BigInt(alignPages));
    const alignUp = (p: number): number => Math.ceil((p + startMod) / alignPages) * alignPages - startMod;
    let gap = 0;
    for (let i = 0; i <= this.busy.length; i++) {
      const gapEnd = i < this.busy.length ? this.busy[i].first : this.pages;
      const cand = alignUp(gap);
      if (cand + n <= gapEnd) return cand;
      if (i < this.busy.length) gap = this.busy[i].last;
    }
    return -1;
  }
}
