/**
 * Processes and their mm: the PGD (pair), VMAs, user page tables and the pages behind them.
 *
 * Rules taken from Linux 6.1:
 *  - pgd_alloc() (arch/x86/mm/pgtable.c): the PGD is __get_free_pages(GFP_PGTABLE_USER,
 *    PGD_ALLOCATION_ORDER), order 1 under PTI ("Instead of one PGD, we acquire two PGDs. Being
 *    order-1, it is both 8k in size and 8k-aligned. That lets us just flip bit 12 in a pointer to
 *    swap between the two 4k halves."), zeroed;
 *  - pgd_ctor() -> clone_pgd_range(pgd + KERNEL_PGD_BOUNDARY, swapper_pg_dir + KERNEL_PGD_BOUNDARY,
 *    KERNEL_PGD_PTRS) with KERNEL_PGD_BOUNDARY = pgd_index(PAGE_OFFSET) (asm/pgtable.h); under PTI
 *    clone_pgd_range() also copies the same range of the user copy from swapper's user copy;
 *  - __pti_set_user_pgtbl() (arch/x86/mm/pti.c): a top-level entry of the user half is written to
 *    the user copy unchanged, and gets _PAGE_NX in the kernel copy when it is _PAGE_USER|_PAGE_PRESENT
 *    and NX is supported ("so that, if we somehow screw up and return to usermode with the kernel
 *    CR3 loaded, we'll get a page fault");
 *  - user paging-structure entries are _PAGE_TABLE = P|RW|US|A|D (asm/pgtable_types.h);
 *  - leaf protections from protection_map[] (arch/x86/mm/pgprot.c): PAGE_READONLY(_EXEC) and
 *    PAGE_COPY(_EXEC) = P|US|A (+NX when not VM_EXEC); a populated writable private page is the
 *    result of a write fault, pte_mkwrite(pte_mkdirty()) (mm/memory.c do_anonymous_page() /
 *    wp_page_copy()), so it has RW|D; a read-only file page is mapped clean (do_read_fault());
 *    PROT_NONE VMAs are left unpopulated; an anonymous 2 MiB THP is a PMD leaf with PS
 *    (do_huge_pmd_anonymous_page());
 *  - STACK_TOP = TASK_SIZE_LOW = (1 << 47) - PAGE_SIZE (asm/page_64_types.h, DEFAULT_MAP_WINDOW).
 * The la48 capture (test/fixtures) shows exactly these leaf and PML4 flags for a real process.
 *
 * Pages are populated eagerly (no demand faults). Every user page is a buddy block with the
 * owner, the sensitivity class of its kind (sensitivity.ts), USE_USER, and the VMA id as tag, so a
 * physical address leads back to its VMA and process. Not modelled: fork/COW sharing, shared
 * file pages between processes, the zero page, unmapping and exit.
 */
import { BuddyAllocator, PAGE_SIZE, USE_PAGE_TABLE, USE_USER } from './buddy.ts';
import type { Owner, Owners } from './owners.ts';
import { classify, getModel, type ModelName, type SensitivityModel } from './sensitivity.ts';
import type { SlabAllocator } from './slab.ts';
import type { AsidState, MmContext } from './asid.ts';
import type { PhysMemory } from '../phys/memory.ts';
import { PageTables, SIZE_2M, SIZE_4K, USER_TABLE } from '../x86/pgtable.ts';
import { PTE_A, PTE_D, PTE_HI_XD, PTE_P, PTE_PS, PTE_RW, PTE_US } from '../x86/bits.ts';

const NX = 1n << 63n;
/** asm/page_64_types.h: TASK_SIZE_LOW = DEFAULT_MAP_WINDOW = (1UL << 47) - PAGE_SIZE. */
export const STACK_TOP = (1n << 47n) - 4096n;

export interface VmaSpec {
  /** 'text', 'data', '[heap]', '[stack]', 'mmap', … */
  name: string;
  start: bigint;
  /** Bytes; rounded up to the page size. */
  size: number;
  /** 'rwx' letters or '-' in each position, as /proc/<pid>/maps shows them. */
  prot: string;
  /** 'file' pages that are never written are page-cache pages; anything written is anonymous. */
  backing?: 'anon' | 'file';
  /** Allocation kind for the sensitivity model (default 'anon' or 'page-cache'). */
  kind?: string;
  /** Owner of the pages (default the process): guest RAM is the VM's. */
  owner?: Owner;
  /** 12 (4 KiB pages) or 21 (anonymous 2 MiB THPs). */
  pageShift?: 12 | 21;
  /** Allocate and map every page now (default true). */
  populate?: boolean;
}

export interface Vma {
  readonly id: number;
  readonly name: string;
  readonly start: bigint;
  readonly end: bigint;
  readonly prot: string;
  readonly kind: string;
  readonly owner: number;
  readonly cls: number;
  readonly pageShift: 12 | 21;
  /** First PFN of each page (0 while unpopulated). */
  readonly pfns: Float64Array;
  readonly process: Process;
}

export interface ProcessTableOptions {
  mem: PhysMemory;
  buddy: BuddyAllocator;
  owners: Owners;
  model: ModelName | SensitivityModel;
  levels: 4 | 5;
  /** X86_FEATURE_PTI: order-1 PGD pair and the user copy. */
  pti: boolean;
  /** PA of swapper_pg_dir (init_mm.pgd), whose kernel half every new PGD copies. */
  kernelPgd: number;
  /** PA of swapper_pg_dir's user copy under PTI (default kernelPgd + 4 KiB). */
  kernelUserPgd?: number;
  /** PAGE_OFFSET (page_offset_base): KERNEL_PGD_BOUNDARY = pgd_index(PAGE_OFFSET). */
  pageOffset: bigint;
  /** __supported_pte_mask has _PAGE_NX (default true). */
  nx?: boolean;
  /** Gives each mm its ctx_id (mm->context) when present. */
  asids?: AsidState;
  /** Allocates task_struct, mm_struct and vm_area_struct objects for the process when present. */
  slab?: SlabAllocator;
}

export class Process {
  readonly vmas: Vma[] = [];
  /** Slab object ids: task_struct, mm_struct, then one vm_area_struct per VMA. */
  readonly slabObjects: number[] = [];
  constructor(
    readonly table: ProcessTable,
    readonly pid: number,
    readonly comm: string,
    readonly owner: Owner,
    /** PA of the PGD (the kernel copy under PTI): mm->pgd. */
    readonly pgd: number,
    /** PA of the user copy (pgd + 4 KiB under PTI, else pgd). */
    readonly userPgd: number,
    readonly pt: PageTables,
    readonly ctx: MmContext | null,
  ) {}

  /** mmap()/brk()/execve() of a VMA, populated unless asked not to. */
  mmap(spec: VmaSpec): Vma {
    return this.table.addVma(this, spec);
  }

  /** Physical address of `va` through this process's user page tables, or -1. */
  paOf(va: bigint): number {
    const e4 = this.pt.findEntry(va, 1);
    if (e4 && (e4.value & 1n)) return Number(e4.value & 0x000ffffffffff000n) + Number(va & 0xfffn);
    const e2 = this.pt.findEntry(va, 2);
    if (e2 && (e2.value & 1n) && (e2.value & BigInt(PTE_PS))) return Number(e2.value & 0x000fffffffe00000n) + Number(va & 0x1fffffn);
    return -1;
  }

  vmaAt(va: bigint): Vma | null {
    return this.vmas.find((v) => va >= v.start && va < v.end) ?? null;
  }

  /** Write bytes at a user VA (e.g. a planted secret); every page must be mapped. */
  write(va: bigint, bytes: Uint8Array): void {
    let done = 0;
    while (done < bytes.length) {
      const pa = this.paOf(va + BigInt(done));
      if (pa < 0) throw new RangeError(`${this.comm}[${this.pid}]: 0x${(va + BigInt(done)).toString(16)} is not mapped`);
      const n = Math.min(bytes.length - done, PAGE_SIZE - (pa % PAGE_SIZE));
      this.table.mem.writeBytes(pa, bytes.subarray(done, done + n));
      done += n;
    }
  }

  read(va: bigint, len: number): Uint8Array {
    const out = new Uint8Array(len);
    let done = 0;
    while (done < len) {
      const pa = this.paOf(va + BigInt(done));
      if (pa < 0) throw new RangeError(`${this.comm}[${this.pid}]: 0x${(va + BigInt(done)).toString(16)} is not mapped`);
      const n = Math.min(len - done, PAGE_SIZE - (pa % PAGE_SIZE));
      this.table.mem.readBytes(pa, out, done, n);
      done += n;
    }
    return out;
  }
}

/** What a physical page is, as the allocators recorded it. */
export interface PageInfo {
  pa: number;
  owner: number;
  cls: number;
  vma: Vma | null;
}

export class ProcessTable {
  readonly mem: PhysMemory;
  readonly model: SensitivityModel;
  readonly processes: Process[] = [];
  private readonly vmaById: Vma[] = [];
  private readonly boundary: number;
  private nextPid = 1000;

  constructor(readonly opts: ProcessTableOptions) {
    this.mem = opts.mem;
    this.model = getModel(opts.model);
    // KERNEL_PGD_BOUNDARY = pgd_index(PAGE_OFFSET): PGDIR_SHIFT 39 (4-level) or 48 (5-level).
    this.boundary = Number((BigInt.asUintN(64, opts.pageOffset) >> (opts.levels === 5 ? 48n : 39n)) & 511n);
  }

  /** KERNEL_PGD_BOUNDARY for this layout. */
  get kernelPgdBoundary(): number {
    return this.boundary;
  }

  /** fork()+execve() of `comm`: a new owner, PGD and mm, then the VMAs given (default: defaultLayout()). */
  create(comm: string, o: { pid?: number; vmas?: VmaSpec[] } = {}): Process {
    const { buddy, owners, pti } = this.opts;
    const pid = o.pid ?? this.nextPid++;
    const owner = owners.process(comm, pid);
    const ptCls = classify(this.model, 'page-table', owner);
    // pgd_alloc(): order 1 under PTI (PGD_ALLOCATION_ORDER), zeroed (GFP_PGTABLE_USER has __GFP_ZERO).
    const order = pti ? 1 : 0;
    const pfn = buddy.alloc(order, owner.id, ptCls, 'normal', USE_PAGE_TABLE);
    for (let i = 0; i < 1 << order; i++) this.mem.frameWords(pfn + i).fill(0);
    const pgd = pfn * PAGE_SIZE;
    const userPgd = pti ? pgd + PAGE_SIZE : pgd;
    // pgd_ctor() -> clone_pgd_range(): the kernel half, and under PTI the user copy's kernel half too.
    this.cloneRange(pgd, this.opts.kernelPgd);
    if (pti) this.cloneRange(userPgd, this.opts.kernelUserPgd ?? this.opts.kernelPgd + PAGE_SIZE);
    const alloc = () => {
      const t = buddy.alloc(0, owner.id, ptCls, 'normal', USE_PAGE_TABLE);
      if (this.mem.has(t)) this.mem.frameWords(t).fill(0);
      return BigInt(t * PAGE_SIZE);
    };
    const pt = new PageTables(this.mem, this.opts.levels, alloc, BigInt(pgd));
    const ctx = this.opts.asids ? this.opts.asids.newMm(pgd, comm) : null;
    const p = new Process(this, pid, comm, owner, pgd, userPgd, pt, ctx);
    const slab = this.opts.slab;
    if (slab) {
      p.slabObjects.push(slab.allocId('task_struct', owner.id), slab.allocId('mm_struct', owner.id));
    }
    this.processes.push(p);
    for (const spec of o.vmas ?? defaultLayout()) p.mmap(spec);
    return p;
  }

  byPid(pid: number): Process | undefined {
    return this.processes.find((p) => p.pid === pid);
  }

  /** Add a VMA to `p` (Process.mmap). */
  addVma(p: Process, spec: VmaSpec): Vma {
    const shift = spec.pageShift ?? 12;
    const pageSize = 2 ** shift;
    const backing = spec.backing ?? 'anon';
    if (shift === 21 && backing !== 'anon') throw new RangeError(`${spec.name}: only anonymous memory is mapped with 2 MiB pages`);
    if (!/^[r-][w-][x-]$/.test(spec.prot)) throw new RangeError(`${spec.name}: prot must look like 'rw-', got '${spec.prot}'`);
    const size = Math.ceil(spec.size / pageSize) * pageSize;
    const end = spec.start + BigInt(size);
    const taskSize = this.opts.levels === 5 ? (1n << 56n) - 4096n : (1n << 47n) - 4096n; // TASK_SIZE_MAX
    if (spec.start % BigInt(pageSize) !== 0n || size <= 0 || end > taskSize) {
      throw new RangeError(`${spec.name}: [0x${spec.start.toString(16)}, 0x${end.toString(16)}) is not an aligned user range`);
    }
    if (p.vmas.some((v) => spec.start < v.end && v.start < end)) throw new RangeError(`${spec.name}: overlaps an existing VMA of ${p.comm}`);
    const writable = spec.prot[1] === 'w';
    const kind = spec.kind ?? (backing === 'file' && !writable ? 'page-cache' : 'anon');
    const owner = spec.owner ?? p.owner;
    const cls = classify(this.model, kind, owner);
    const vma: Vma = {
      id: this.vmaById.length, name: spec.name, start: spec.start, end, prot: spec.prot, kind,
      owner: owner.id, cls, pageShift: shift, pfns: new Float64Array(size / pageSize), process: p,
    };
    this.vmaById.push(vma);
    p.vmas.push(vma);
    if (this.opts.slab) p.slabObjects.push(this.opts.slab.allocId('vm_area_struct', p.owner.id));
    if ((spec.populate ?? true) && spec.prot !== '---') this.populate(p, vma);
    return vma;
  }

  private populate(p: Process, vma: Vma): void {
    const { buddy } = this.opts;
    const order = vma.pageShift - 12;
    const flags = leafFlags(vma.prot, this.opts.nx ?? true);
    const size = vma.pageShift === 21 ? SIZE_2M : SIZE_4K;
    // 4 KiB pages: one walk (PageTables.entryAddr, which creates, splits or widens the tables on
    // the way) per page table, then the next PTEs of that table in place — the same tables,
    // allocated at the same moments, as a walk per page; the top-level entry can change only on a
    // walk, so it is synced after each. The PTE is written as u32 halves (no BigInt per page).
    const small = size === SIZE_4K;
    const flagsLo = Number(flags & 0xffffffffn);
    const flagsHi = Number(flags >> 32n);
    let ea = -1;
    for (let i = 0; i < vma.pfns.length; i++) {
      const pfn = buddy.alloc(order, vma.owner, vma.cls, 'normal', USE_USER);
      buddy.setTag(pfn, order, vma.id);
      // Anonymous and page-cache pages start zeroed (clear_page() / a read of a zero file); frames
      // never written already read as zero.
      this.mem.zeroFrames(pfn, 1 << order);
      vma.pfns[i] = pfn;
      const va = vma.start + BigInt(i) * size;
      if (!small) {
        p.pt.mapPage(va, BigInt(pfn * PAGE_SIZE), size, flags, USER_TABLE);
        this.syncTopLevel(p, va);
        continue;
      }
      if (ea < 0 || ((ea + 8) & 4095) === 0) { // the first page, or the next PTE is in another table
        ea = Number(p.pt.entryAddr(va, 1, USER_TABLE));
        this.syncTopLevel(p, va);
      } else ea += 8;
      // pfn < 2^40: bits 31:12 of the address are pfn's low 20 bits, bits 51:32 its high ones.
      this.mem.write64(ea, ((pfn % 1048576) * PAGE_SIZE | flagsLo) >>> 0, (Math.floor(pfn / 1048576) | flagsHi) >>> 0);
    }
  }

  /** __pti_set_user_pgtbl() for the top-level entry covering `va`. */
  private syncTopLevel(p: Process, va: bigint): void {
    const shift = this.opts.levels === 5 ? 48n : 39n;
    const off = Number((va >> shift) & 511n) * 8;
    const lo = this.mem.read32(p.pgd + off);
    const hi = (this.mem.read32(p.pgd + off + 4) & ~PTE_HI_XD) >>> 0; // the value the kernel set
    if (this.opts.pti) this.mem.write64(p.userPgd + off, lo, hi); // user copy: unchanged
    const userPresent = (lo & (PTE_US | PTE_P)) === (PTE_US | PTE_P);
    const nx = this.opts.pti && userPresent && (this.opts.nx ?? true);
    this.mem.write64(p.pgd + off, lo, nx ? (hi | PTE_HI_XD) >>> 0 : hi);
  }

  private cloneRange(dst: number, src: number): void {
    for (let i = this.boundary; i < 512; i++) {
      this.mem.write64(dst + i * 8, this.mem.read32(src + i * 8), this.mem.read32(src + i * 8 + 4));
    }
  }

  // -- queries -----------------------------------------------------------------------------

  vma(id: number): Vma | undefined {
    return this.vmaById[id];
  }

  /** Owner, class and VMA of the page holding `pa` (VMA null for page tables and non-user pages). */
  pageAt(pa: number): PageInfo {
    const { buddy } = this.opts;
    const pfn = Math.floor(pa / PAGE_SIZE);
    const vma = buddy.useOfPfn(pfn) === USE_USER ? this.vmaById[buddy.tagOfPfn(pfn)] ?? null : null;
    return { pa, owner: buddy.ownerOfPfn(pfn), cls: buddy.classOfPfn(pfn), vma };
  }

  /** As pageAt() for a user VA of `p`; null if unmapped. */
  pageAtVa(p: Process, va: bigint): PageInfo | null {
    const pa = p.paOf(va);
    return pa < 0 ? null : this.pageAt(pa);
  }
}

/** Leaf flags of a populated page of a private mapping with protections `prot` (see the header). */
export function leafFlags(prot: string, nx = true): bigint {
  let f = BigInt(PTE_P | PTE_US | PTE_A);
  if (prot[1] === 'w') f |= BigInt(PTE_RW | PTE_D);
  if (prot[2] !== 'x' && nx) f |= NX;
  return f;
}

/** The size of defaultLayout()'s text for `codeBytes` of hot code: whole pages, at least 64 KiB. */
export function textVmaBytes(codeBytes: number): number {
  return Math.max(16 * PAGE_SIZE, Math.ceil(codeBytes / PAGE_SIZE) * PAGE_SIZE);
}

/**
 * A small static non-PIE executable's address space, as the capture's /bin/oracle-user (no ASLR):
 * text and read-only data from the file, data, heap, one anonymous mmap and the stack below STACK_TOP.
 * `textBytes` (default and minimum 64 KiB) sizes the text for a program whose hot code is larger
 * (a scenario's code_bytes): rodata and data follow it, as a linker lays them out, and the heap
 * starts at 16 MiB or the next 2 MiB boundary after the data.
 */
export function defaultLayout(textBytes = 0): VmaSpec[] {
  const textSize = textVmaBytes(textBytes);
  const rodata = 0x401000n + BigInt(textSize);
  const data = rodata + BigInt(4 * PAGE_SIZE);
  const dataEnd = data + BigInt(4 * PAGE_SIZE);
  const twoMiB = 0x200000n;
  const heap = dataEnd <= 0x1000000n ? 0x1000000n : ((dataEnd + twoMiB - 1n) / twoMiB) * twoMiB;
  return [
    { name: 'text', start: 0x401000n, size: textSize, prot: 'r-x', backing: 'file' },
    { name: 'rodata', start: rodata, size: 4 * PAGE_SIZE, prot: 'r--', backing: 'file' },
    { name: 'data', start: data, size: 4 * PAGE_SIZE, prot: 'rw-', backing: 'file' },
    { name: '[heap]', start: heap, size: 8 * PAGE_SIZE, prot: 'rw-' },
    { name: 'mmap', start: 0x7ffff7f00000n, size: 16 * PAGE_SIZE, prot: 'rw-' },
    { name: '[stack]', start: STACK_TOP - 0x21000n, size: 0x21000, prot: 'rw-' },
  ];
}
