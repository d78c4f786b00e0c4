/**
 * Kernel page-table isolation, arch/x86/mm/pti.c (Linux 6.1): the user copy of the kernel's
 * top-level table (the second 4 KiB of the 8 KiB PGD pair) and what pti_init()/pti_finalize()
 * put in its kernel half. Also __pti_set_user_pgtbl(), the rule every user PGD write follows.
 */
import {
  _KERNPG_TABLE, _PAGE_GLOBAL, _PAGE_NX, _PAGE_PRESENT, _PAGE_PSE, _PAGE_USER, __PAGE_KERNEL, PTE_PFN_MASK,
  lookupAddress, setMemoryGlobal, setMemoryNonglobal,
} from './cpa.ts';
import { populate, setVsyscallUserBits, type VsyscallMode } from './fixed.ts';
import type { BootContext } from './kernel.ts';
import type { PageTables } from '../x86/pgtable.ts';

export type PtiMode = 'on' | 'off' | 'auto';

const PAGE = 4096n;
const PMD = 1n << 21n;
const PUD = 1n << 30n;
const idx = (va: bigint, level: number) => Number((va >> BigInt(12 + 9 * (level - 1))) & 511n);

/**
 * pti_check_boottime_disable(): pti=on forces it, pti=off / nopti / mitigations=off disable it,
 * otherwise (auto) it is on only for CPUs with X86_BUG_CPU_MELTDOWN.
 */
export function ptiEnabled(mode: PtiMode, meltdown: boolean): boolean {
  if (mode === 'off') return false;
  if (mode === 'on') return true;
  return meltdown; // autosel: if (!boot_cpu_has_bug(X86_BUG_CPU_MELTDOWN)) return;
}

/** The pti= mode a kernel command line selects (nopti and mitigations=off mean off). */
export function ptiModeFromCmdline(params: { name: string; value: string | null }[]): PtiMode {
  let mode: PtiMode = 'auto';
  const norm = (s: string) => s.replace(/-/g, '_');
  const pti = [...params].reverse().find((p) => norm(p.name) === 'pti');
  if (pti?.value === 'off') return 'off';
  if (pti?.value === 'on') return 'on';
  if (pti?.value === 'auto') return 'auto';
  if (params.some((p) => norm(p.name) === 'nopti') || params.some((p) => norm(p.name) === 'mitigations' && p.value === 'off')) mode = 'off';
  return mode;
}

/**
 * pti_kernel_image_global_ok(): whether the kernel text may stay global and be mapped into the
 * user copy. "Systems with PCIDs get little benefit from global kernel text"; "Only do global
 * kernel image for pti=auto"; K8 "may not tolerate the cleared _PAGE_RW"; RANDSTRUCT keeps the
 * layout secret.
 */
export function ptiKernelImageGlobalOk(o: { pcid: boolean; mode: PtiMode; k8: boolean; randstruct: boolean }): boolean {
  if (o.pcid) return false;
  if (o.mode !== 'auto') return false;
  if (o.k8) return false;
  if (o.randstruct) return false;
  return true;
}

/** kernel_to_user_pgdp(): the user copy is the second page of the 8 KiB PGD pair. */
export function userPgd(kernelPgd: bigint): bigint {
  return kernelPgd + PAGE;
}

/**
 * __pti_set_user_pgtbl(): a write of a user-half PGD entry goes to both copies; the kernel's copy
 * gets NX when the entry is USER|PRESENT ("so that, if we somehow screw up and return to
 * usermode with the kernel CR3 loaded, we'll get a page fault"). Kernel-half entries are
 * written to the kernel copy only. Returns the value written to the kernel copy.
 */
export function setPgdEntry(pt: PageTables, kernelPgd: bigint, index: number, value: bigint, nxSupported: boolean, pti: boolean): bigint {
  let k = value;
  const half = pt.levels === 5 ? 256 : 256;
  if (pti && index < half) {
    pt.write(userPgd(kernelPgd) + BigInt(index * 8), value);
    if ((value & (_PAGE_USER | _PAGE_PRESENT)) === (_PAGE_USER | _PAGE_PRESENT) && nxSupported) k |= _PAGE_NX;
  }
  pt.write(kernelPgd + BigInt(index * 8), k);
  return k;
}

/** pti_user_pagetable_walk_p4d(): the user copy's P4D entry (with 5 levels a P4D page is allocated under the user PGD entry). */
function walkP4d(ctx: BootContext, va: bigint): bigint {
  return populate(ctx.pt, va, 4, _KERNPG_TABLE, userPgd(ctx.pt.root));
}

/** pti_user_pagetable_walk_pmd() (allocating PUD and PMD pages with _KERNPG_TABLE); null at a large PUD. */
function walkPmd(ctx: BootContext, va: bigint): bigint | null {
  const p4d = walkP4d(ctx, va);
  let e = ctx.pt.read(p4d);
  if ((e & _PAGE_PRESENT) === 0n) { e = ctx.pt.newTable() | _KERNPG_TABLE; ctx.pt.write(p4d, e); }
  const pud = (e & PTE_PFN_MASK) + BigInt(idx(va, 3) * 8);
  let u = ctx.pt.read(pud);
  if ((u & _PAGE_PSE) !== 0n) return null; // "The user page tables do not use large mappings"
  if ((u & _PAGE_PRESENT) === 0n) { u = ctx.pt.newTable() | _KERNPG_TABLE; ctx.pt.write(pud, u); }
  return (u & PTE_PFN_MASK) + BigInt(idx(va, 2) * 8);
}

/** pti_user_pagetable_walk_pte(). */
function walkPte(ctx: BootContext, va: bigint): bigint | null {
  const pmd = walkPmd(ctx, va);
  if (pmd === null) return null;
  let e = ctx.pt.read(pmd);
  if ((e & _PAGE_PSE) !== 0n) return null; // "WARN_ON_ONCE(1); return NULL" for a large PMD
  if ((e & _PAGE_PRESENT) === 0n) { e = ctx.pt.newTable() | _KERNPG_TABLE; ctx.pt.write(pmd, e); }
  const pte = (e & PTE_PFN_MASK) + BigInt(idx(va, 1) * 8);
  if ((ctx.pt.read(pte) & _PAGE_USER) !== 0n) return null; // "attempt to walk to user pte"
  return pte;
}

/** pti_clone_p4d(): the user copy shares the kernel's P4D entry (so the whole subtree). */
function cloneP4d(ctx: BootContext, va: bigint): void {
  const user = walkP4d(ctx, va);
  const kernel = populate(ctx.pt, va, 4, _KERNPG_TABLE); // pgd_offset_k(), p4d_offset(): exists already
  ctx.pt.write(user, ctx.pt.read(kernel));
}

/**
 * pti_clone_pgtable(start, end, PTI_CLONE_PMD): copy every present PMD covering the range into
 * the user copy, setting _PAGE_GLOBAL on the kernel's PMD too ("It is effectively global, so set
 * it as global in both copies").
 */
function clonePmds(ctx: BootContext, start: bigint, end: bigint): void {
  for (let addr = start; addr < end;) {
    const l = lookupAddress(ctx.pt, addr);
    if (!l || l.level === 3) { addr = ((addr + PUD) / PUD) * PUD; continue; } // pud_none(): round_up(addr + 1, PUD_SIZE)
    const pmdEa = l.level === 2 ? l.ea : pmdEntryOf(ctx, addr);
    let pmd = ctx.pt.read(pmdEa);
    if ((pmd & ~0x60n) === 0n) { addr = ((addr + PMD) / PMD) * PMD; continue; } // pmd_none()
    const target = walkPmd(ctx, addr);
    if (target === null || (pmd & _PAGE_PRESENT) === 0n) return;
    if (ctx.cpu.pge) { pmd |= _PAGE_GLOBAL; ctx.pt.write(pmdEa, pmd); }
    ctx.pt.write(target, pmd);
    addr = ((addr + PMD) / PMD) * PMD;
  }
}

function pmdEntryOf(ctx: BootContext, va: bigint): bigint {
  let table = ctx.pt.root;
  for (let l = ctx.levels; l > 2; l--) table = ctx.pt.read(table + BigInt(idx(va, l) * 8)) & PTE_PFN_MASK;
  return table + BigInt(idx(va, 2) * 8);
}

/** pti_clone_user_shared(): the cpu_entry_area P4D, and each possible CPU's cpu_tss_rw page (its "sp2" scratch word). */
function cloneUserShared(ctx: BootContext, cpus: number, percpuPa: (cpu: number) => bigint): void {
  cloneP4d(ctx, ctx.layout.addrs.CPU_ENTRY_AREA_BASE);
  for (let cpu = 0; cpu < cpus; cpu++) {
    const pa = percpuPa(cpu) + ctx.sym.percpu.cpuTssRw; // per_cpu_ptr_to_phys(&per_cpu(cpu_tss_rw, cpu))
    const va = ctx.layout.addrs.page_offset_base + pa; // the embedded first chunk lives in the direct map
    const pte = walkPte(ctx, va);
    if (pte === null) return;
    ctx.pt.write(pte, (pa & PTE_PFN_MASK) | (__PAGE_KERNEL & ctx.masks.defaultKernel)); // pfn_pte(pa >> PAGE_SHIFT, PAGE_KERNEL)
  }
}

/** pti_setup_vsyscall(): copy the vsyscall PTE (only present in vsyscall=emulate) and mark the user path USER. */
function setupVsyscall(ctx: BootContext, mode: VsyscallMode): void {
  if (mode !== 'emulate') return;
  const va = ctx.layout.addrs.VSYSCALL_ADDR;
  const l = lookupAddress(ctx.pt, va);
  if (!l || l.level !== 1 || l.entry === 0n) return;
  const target = walkPte(ctx, va);
  if (target === null) return;
  ctx.pt.write(target, l.entry);
  setVsyscallUserBits(ctx, userPgd(ctx.pt.root));
}

/** pti_init(), called from mm_init() after init_espfix_bsp(). */
export function ptiInit(ctx: BootContext, cpus: number, percpuPa: (cpu: number) => bigint, vsyscall: VsyscallMode): void {
  cloneUserShared(ctx, cpus, percpuPa);
  // pti_set_kernel_image_nonglobal(): "Undo all global bits from the init pagetables in head_64.S",
  // from PFN_ALIGN(_text) to ALIGN(_end, PMD_SIZE) ("The identity map is created with PMDs").
  const s = ctx.sym;
  setMemoryNonglobal(ctx.cpa, ((s.text + PAGE - 1n) / PAGE) * PAGE, ((s.end + PMD - 1n) / PMD) * PMD);
  clonePmds(ctx, s.entryTextStart, s.entryTextEnd); // pti_clone_entry_text()
  if (ctx.espfixBug) cloneP4d(ctx, ctx.layout.addrs.ESPFIX_BASE_ADDR); // pti_setup_espfix64(): X86_BUG_ESPFIX
  setupVsyscall(ctx, vsyscall);
}

/** pti_finalize(), after mark_readonly(): clone the (now read-only) entry text again, and the kernel text when allowed. */
export function ptiFinalize(ctx: BootContext, imageGlobalOk: boolean): void {
  const s = ctx.sym;
  clonePmds(ctx, s.entryTextStart, s.entryTextEnd);
  if (!imageGlobalOk) return;
  // pti_clone_kernel_text(): "do not clone the areas past rodata, they might contain secrets"
  const start = ((s.text + PAGE - 1n) / PAGE) * PAGE;
  clonePmds(ctx, start, s.endRodataAligned); // PTI_LEVEL_KERNEL_IMAGE is PTI_CLONE_PMD on 64-bit
  setMemoryGlobal(ctx.cpa, start, ((s.etext + PAGE - 1n) / PAGE) * PAGE); // "Set the global bit for normal non-__init kernel text"
}
