/**
 * The kernel's fixed-address regions, as Linux 6.1 sets them up at boot:
 *
 *  - cpu_entry_area (arch/x86/mm/cpu_entry_area.c, asm/cpu_entry_area.h): the read-only IDT
 *    page, then per CPU the GDT (RO), the entry stack, the TSS (RO), the IST exception stacks
 *    with guard pages and, with DTES64, the debug store — all aliases of per-CPU data;
 *  - ESPFIX (arch/x86/kernel/espfix_64.c): one page mapped 65,536 times under a random 4 GiB
 *    window of the ESPFIX P4D;
 *  - the fixmap (asm/fixmap.h): local APIC and IO-APICs (apic.c, io_apic.c), the vsyscall page
 *    (entry/vsyscall/vsyscall_64.c map_vsyscall());
 *  - preallocate_vmalloc_pages() (init_64.c): the vmalloc area's second-level tables.
 */
import {
  __PAGE_KERNEL, __PAGE_KERNEL_NOCACHE, __PAGE_KERNEL_RO, __PAGE_KERNEL_VVAR, _KERNPG_TABLE, _PAGE_GLOBAL, _PAGE_NX,
  _PAGE_PRESENT, _PAGE_RW, _PAGE_TABLE, _PAGE_USER, PTE_PFN_MASK,
} from './cpa.ts';
import { fixmapEnum, fixToVirt } from './layout.ts';
import type { BootContext } from './kernel.ts';
import type { PageTables } from '../x86/pgtable.ts';

const PAGE = 4096n;
const idx = (va: bigint, level: number) => Number((va >> BigInt(12 + 9 * (level - 1))) & 511n);

/**
 * The entry for `va` at `level`, allocating the missing tables above it with `tableFlags`
 * (the kernel's *_alloc()/fill_*() helpers: p4d/pud/pmd_populate() write _PAGE_TABLE, PTI's
 * walkers _KERNPG_TABLE). Existing entries are left as they are.
 */
export function populate(pt: PageTables, va: bigint, level: number, tableFlags: bigint, root = pt.root): bigint {
  let table = root;
  for (let l = pt.levels; l > level; l--) {
    const ea = table + BigInt(idx(va, l) * 8);
    let e = pt.read(ea);
    if ((e & _PAGE_PRESENT) === 0n) {
      e = pt.newTable() | tableFlags;
      pt.write(ea, e);
    } else if (l <= 3 && (e & 0x80n) !== 0n) {
      throw new RangeError(`populate: 0x${va.toString(16)} is inside a large page at level ${l}`);
    }
    table = e & PTE_PFN_MASK;
  }
  return table + BigInt(idx(va, level) * 8);
}

/** set_pte_vaddr(): install a kernel PTE, filling in P4D/PUD/PMD/PTE pages (fill_pud()/fill_pmd()/fill_pte()). */
export function setPteVaddr(ctx: BootContext, va: bigint, pte: bigint): void {
  ctx.pt.write(populate(ctx.pt, va, 1, _PAGE_TABLE), pte);
}

// -- cpu_entry_area -----------------------------------------------------------------------------

/** struct cpu_entry_area on x86-64 (asm/cpu_entry_area.h), offsets in bytes. */
export const CEA = {
  gdt: 0x0n,
  entryStack: 0x1000n, // struct entry_stack_page
  tss: 0x2000n, // struct tss_struct: x86_hw_tss + x86_io_bitmap, page aligned: 5 pages
  tssPages: 5,
  estacks: 0x7000n, // struct cea_exception_stacks: ESTACKS_MEMBERS(PAGE_SIZE, EXCEPTION_STKSZ)
  debugStore: 0x1a000n, // struct debug_store (one page)
  debugBuffers: 0x1b000n, // BTS_BUFFER_SIZE + PEBS_BUFFER_SIZE (PAGE_SIZE << 4 each)
  size: 0x3b000n, // CPU_ENTRY_AREA_SIZE
} as const;
/** EXCEPTION_STKSZ = PAGE_SIZE << EXCEPTION_STACK_ORDER (1 without KASAN), page_64_types.h. */
const EXCEPTION_STKSZ = 0x2000n;
/** ESTACKS_MEMBERS order; the CEA copy has a guard page before each stack. */
const ESTACKS = ['DF', 'NMI', 'DB', 'MCE', 'VC', 'VC2'] as const;
/** CPU_ENTRY_AREA_MAP_SIZE = P4D_SIZE; the first page is the RO IDT (pgtable_areas.h). */
export const CEA_MAX_SLOTS = Number(((1n << 39n) - PAGE) / CEA.size);

export function ceaBase(ctx: BootContext, slot: number): bigint {
  return ctx.layout.addrs.CPU_ENTRY_AREA_BASE + PAGE + BigInt(slot) * CEA.size; // CPU_ENTRY_AREA_PER_CPU + cea_offset(cpu) * SIZE
}

/** cea_set_pte(): every present cpu_entry_area PTE is global when the CPU has PGE ("shared between the user and kernel page tables"). */
export function ceaSetPte(ctx: BootContext, va: bigint, pa: bigint, prot: bigint): void {
  let pte = (pa & PTE_PFN_MASK) | (prot & ctx.masks.defaultKernel);
  if (ctx.cpu.pge && (prot & _PAGE_PRESENT) !== 0n) pte |= _PAGE_GLOBAL;
  setPteVaddr(ctx, va, pte);
}

/** idt_map_in_cea(): the IDT read-only at CPU_ENTRY_AREA_RO_IDT. */
export function idtMapInCea(ctx: BootContext): void {
  if (ctx.sym.idtTable === undefined) return;
  ceaSetPte(ctx, ctx.layout.addrs.CPU_ENTRY_AREA_BASE, ctx.paSymbol(ctx.sym.idtTable), __PAGE_KERNEL_RO);
}

/** setup_cpu_entry_area() for one CPU whose per-CPU area starts at physical `pcpu`. */
export function setupCpuEntryArea(ctx: BootContext, slot: number, pcpu: bigint, opts: { dtes64: boolean; sevEs: boolean }): void {
  const cea = ceaBase(ctx, slot);
  const p = ctx.sym.percpu;
  const map = (va: bigint, pa: bigint, pages: number, prot: bigint) => {
    for (let i = 0; i < pages; i++) ceaSetPte(ctx, va + BigInt(i) * PAGE, pa + BigInt(i) * PAGE, prot); // cea_map_percpu_pages()
  };
  map(cea + CEA.gdt, pcpu + p.gdtPage, 1, __PAGE_KERNEL_RO); // "On 64-bit systems, we use a read-only fixmap GDT and TSS"
  map(cea + CEA.entryStack, pcpu + p.entryStackStorage, 1, __PAGE_KERNEL);
  map(cea + CEA.tss, pcpu + p.cpuTssRw, CEA.tssPages, __PAGE_KERNEL_RO);
  // percpu_setup_exception_stacks(): DF, NMI, DB, MCE; VC and VC2 only for an SEV-ES guest.
  const vcSize = ctx.config.amdMemEncrypt ? EXCEPTION_STKSZ : 0n; // VC_EXCEPTION_STKSZ in struct exception_stacks
  let physOff = 0n;
  let ceaOff = CEA.estacks;
  for (const name of ESTACKS) {
    const size = name === 'VC' || name === 'VC2' ? vcSize : EXCEPTION_STKSZ;
    ceaOff += PAGE; // the guard page
    const mapped = name === 'VC' || name === 'VC2' ? opts.sevEs : true;
    if (mapped && size > 0n) map(cea + ceaOff, pcpu + p.exceptionStacks + physOff, Number(size / PAGE), __PAGE_KERNEL);
    ceaOff += EXCEPTION_STKSZ;
    physOff += size;
  }
  // percpu_setup_debug_store(): only with X86_FEATURE_DTES64; the buffers get PAGE_NONE (not present) PTEs.
  if (opts.dtes64 && p.cpuDebugStore !== undefined) {
    map(cea + CEA.debugStore, pcpu + p.cpuDebugStore, 1, __PAGE_KERNEL);
    for (let off = 0n; off < 0x20000n; off += PAGE) setPteVaddr(ctx, cea + CEA.debugBuffers + off, 0n);
  }
}

// -- ESPFIX -------------------------------------------------------------------------------------

const ESPFIX_STACK_SIZE = 64n; // 8*8UL
const ESPFIX_STACKS_PER_PAGE = 4096n / ESPFIX_STACK_SIZE; // 64
/** ESPFIX_PAGE_SPACE = 1UL << (P4D_SHIFT-PAGE_SHIFT-16): page_random is below this. */
export const ESPFIX_PAGE_SPACE = 1 << (39 - 12 - 16);
const PTE_STRIDE = 65536n / PAGE; // 16
const ESPFIX_PTE_CLONES = 512n / PTE_STRIDE; // 32
const ESPFIX_PMD_CLONES = 512n;
const ESPFIX_PUD_CLONES = 65536n / (ESPFIX_PTE_CLONES * 512n); // 4

/** espfix_base_addr(cpu) with the boot's page_random and slot_random. */
export function espfixBaseAddr(base: bigint, cpu: number, pageRandom: number, slotRandom = 0): bigint {
  const page = (BigInt(cpu) / ESPFIX_STACKS_PER_PAGE) ^ BigInt(pageRandom);
  const slot = (BigInt(cpu) + BigInt(slotRandom)) % ESPFIX_STACKS_PER_PAGE;
  let addr = (page << 12n) + slot * ESPFIX_STACK_SIZE;
  addr = (addr & 0xffffn) | ((addr & ~0xffffn) << 16n);
  return addr + base;
}

/**
 * init_espfix_bsp() and init_espfix_ap() for `cpus` CPUs: espfix_pud_page (in .bss) installed
 * in the ESPFIX P4D entry, then per stack page one PMD page cloned into 4 PUD entries, one PTE
 * page cloned into all 512 PMD entries, and the stack page in 32 PTEs 64 KiB apart.
 * `stackPa(i)` gives the physical stack page for espfix page i (an alloc_pages_node() page).
 */
export function initEspfix(ctx: BootContext, pageRandom: number, cpus: number, stackPa: (page: number) => bigint): void {
  const pudPageVa = ctx.sym.espfixPudPage;
  if (pudPageVa === undefined) return;
  const base = ctx.layout.addrs.ESPFIX_BASE_ADDR;
  const pudPage = ctx.paSymbol(pudPageVa);
  // p4d_populate(&init_mm, p4d, espfix_pud_page)
  ctx.pt.write(populate(ctx.pt, base, 4, _PAGE_TABLE), pudPage | _PAGE_TABLE);
  const ptemask = ctx.masks.supported; // "ptemask = __supported_pte_mask": GLOBAL stays, even with PTI
  const pgtableProt = ((_KERNPG_TABLE & ~_PAGE_RW) | _PAGE_NX) & ptemask; // PGTABLE_PROT
  const done = new Set<bigint>();
  for (let cpu = 0; cpu < cpus; cpu++) {
    const page = BigInt(cpu) / ESPFIX_STACKS_PER_PAGE;
    if (done.has(page)) continue; // "Did another CPU already set this up?"
    done.add(page);
    const addr = espfixBaseAddr(base, cpu, pageRandom);
    const pudP = pudPage + BigInt(idx(addr, 3) * 8);
    let pud = ctx.pt.read(pudP);
    if ((pud & _PAGE_PRESENT) === 0n) {
      pud = ctx.pt.newTable() | pgtableProt;
      for (let n = 0n; n < ESPFIX_PUD_CLONES; n++) ctx.pt.write(pudP + n * 8n, pud);
    }
    const pmdP = (pud & PTE_PFN_MASK) + BigInt(idx(addr, 2) * 8);
    let pmd = ctx.pt.read(pmdP);
    if ((pmd & _PAGE_PRESENT) === 0n) {
      pmd = ctx.pt.newTable() | pgtableProt;
      for (let n = 0n; n < ESPFIX_PMD_CLONES; n++) ctx.pt.write(pmdP + n * 8n, pmd);
    }
    const pteP = (pmd & PTE_PFN_MASK) + BigInt(idx(addr, 1) * 8);
    // "__PAGE_KERNEL_* includes _PAGE_GLOBAL, which we want since this is mapped to userspace."
    const pte = (stackPa(Number(page)) & PTE_PFN_MASK) | (__PAGE_KERNEL_RO & ptemask);
    for (let n = 0n; n < ESPFIX_PTE_CLONES; n++) ctx.pt.write(pteP + n * PTE_STRIDE * 8n, pte);
  }
}

// -- fixmap -------------------------------------------------------------------------------------

/** native_set_fixmap(): "Sanitize 'prot' against any unsupported bits". */
export function setFixmap(ctx: BootContext, name: string, offset: number, pa: bigint, prot: bigint): bigint {
  const i = fixmapEnum(ctx.layoutConfig.fixmap).index.get(name);
  if (i === undefined) throw new RangeError(`fixmap slot ${name} does not exist in this configuration`);
  const va = fixToVirt(i + offset);
  setPteVaddr(ctx, va, (pa & PTE_PFN_MASK) | (prot & ctx.masks.defaultKernel));
  return va;
}

/**
 * register_lapic_address() (no x2APIC mode) and io_apic_init_mappings(): set_fixmap_nocache()
 * of FIX_APIC_BASE and FIX_IO_APIC_BASE_0 + i.
 */
export function apicFixmaps(ctx: BootContext, lapic: bigint | null, ioapics: bigint[]): void {
  if (lapic !== null && !ctx.cpu.x2apic) setFixmap(ctx, 'FIX_APIC_BASE', 0, lapic, __PAGE_KERNEL_NOCACHE);
  ioapics.forEach((pa, i) => setFixmap(ctx, 'FIX_IO_APIC_BASE_0', i, pa, __PAGE_KERNEL_NOCACHE));
}

/**
 * early_ioremap_init() (arch/x86/mm/ioremap.c): the boot-time slots' PMD points at the static
 * bm_pte page, whose entries are all cleared again once early_ioremap is done.
 */
export function earlyIoremapInit(ctx: BootContext): void {
  if (ctx.sym.bmPte === undefined) return;
  const begin = fixmapEnum(ctx.layoutConfig.fixmap).index.get('FIX_BTMAP_END');
  if (begin === undefined) return;
  const va = fixToVirt(begin + 511); // FIX_BTMAP_BEGIN = FIX_BTMAP_END + TOTAL_FIX_BTMAPS - 1
  ctx.pt.write(populate(ctx.pt, va, 2, _PAGE_TABLE), ctx.paSymbol(ctx.sym.bmPte) | _PAGE_TABLE); // pmd_populate_kernel()
}

export type VsyscallMode = 'emulate' | 'xonly' | 'none';

/** set_vsyscall_pgtable_user_bits(): USER on every upper entry above the vsyscall page. */
export function setVsyscallUserBits(ctx: BootContext, root: bigint): void {
  const va = ctx.layout.addrs.VSYSCALL_ADDR;
  let table = root;
  for (let l = ctx.levels; l > 1; l--) {
    const ea = table + BigInt(idx(va, l) * 8);
    const e = ctx.pt.read(ea);
    if ((e & _PAGE_PRESENT) === 0n) return;
    ctx.pt.write(ea, e | _PAGE_USER);
    table = e & PTE_PFN_MASK;
  }
}

/** map_vsyscall(): "For full emulation, the page needs to exist for real. In execute-only mode, there is no PTE at all". */
export function mapVsyscall(ctx: BootContext, mode: VsyscallMode): void {
  if (mode !== 'emulate' || ctx.sym.vsyscallPage === undefined) return;
  setFixmap(ctx, 'VSYSCALL_PAGE', 0, ctx.paSymbol(ctx.sym.vsyscallPage), __PAGE_KERNEL_VVAR);
  setVsyscallUserBits(ctx, ctx.pt.root);
}

/** preallocate_vmalloc_pages(): a P4D (5-level) or PUD (4-level) page under every PGD entry of VMALLOC_START..VMEMORY_END. */
export function preallocateVmallocPages(ctx: BootContext): void {
  const shift = ctx.levels === 5 ? 48n : 39n;
  const end = ctx.layout.addrs.VMALLOC_END;
  for (let a = ctx.layout.addrs.vmalloc_base; a <= end; a = ((a >> shift) + 1n) << shift) {
    populate(ctx.pt, a, ctx.levels === 5 ? 4 : 3, _PAGE_TABLE);
  }
}
