/**
 * Meltdown (rogue data cache load, CVE-2017-5754): a user-mode load of a supervisor address that
 * the attacker's CURRENT page tables map returns the data speculatively before the permission
 * fault is delivered.
 *
 * The mechanism, as the primitive applies it: translate `va` with the attacker's MMU at CPL 3
 * (TLB first, then the walk of its current CR3). Only a present, supervisor-only mapping that
 * faults for the U/S reason alone is exploitable; its physical address is loaded through the
 * attacker's core. Lipp et al., "Meltdown" (USENIX Security 2018), report that the attack also
 * reads data that is not in the L1D, at a lower rate (the load that misses is served from
 * memory); so here the load fills the line from memory, as any load does. An address the current
 * tables do not map (not present at some level) faults before any physical address exists:
 * nothing leaks. That is what KPTI changes — Documentation/arch/x86/pti.rst: "The userspace page
 * tables contain only a minimal amount of kernel data: only what is needed to enter/exit the
 * kernel" — so with the user CR3 loaded the walk to kernel data ends on a not-present entry.
 *
 * Needs X86_BUG_CPU_MELTDOWN (CPUs with RDCL_NO, and AMD, do not forward the data). A mapping the
 * attacker may read anyway (U/S=1) is an ordinary load, not a leak.
 */
import { ACCESS_READ, PDE_2M_ADDR_LO_MASK, PDPTE_1G_ADDR_LO_MASK, PFEC_P, PFEC_U, PTE_ADDR_LO_MASK, PTE_HI_ADDR_MASK, VECTOR_PF } from '../x86/bits.ts';
import { TLB_U } from '../x86/tlb.ts';
import { ATTACK_MELTDOWN, type AttackThread, type Samples } from './sample.ts';
import { checkPageRange, loadThrough } from './read.ts';

const TWO32 = 4294967296;

/**
 * Physical address of the supervisor data at `va` as the attacker's MMU would use it, or -1 when
 * the access is not a Meltdown case (mapped for the user, not mapped, or another fault).
 */
export function meltdownTarget(t: AttackThread, vaLo: number, vaHi: number): number {
  const mmu = t.mmu;
  const cpu = mmu.cpu;
  // A TLB entry is what the load uses when there is one (it may be stale against memory), in
  // the first level or else the second (Mmu.stlb).
  let tlb = mmu.tlb;
  let row = tlb.find(vaLo, vaHi, cpu.pcid);
  if (row < 0 && mmu.stlb !== null) {
    tlb = mmu.stlb;
    row = tlb.find(vaLo, vaHi, cpu.pcid);
  }
  if (row >= 0) {
    if ((tlb.meta[row] & TLB_U) !== 0) return -1;
    const size = 2 ** tlb.pageShiftOf(row);
    const pa = tlb.frame[row] + ((vaLo >>> 0) % size);
    // The #PF is still raised, and drops the entry (SDM 4.10.4.1); the data was forwarded first.
    mmu.translate(vaLo, vaHi, ACCESS_READ);
    return pa;
  }
  if (mmu.translate(vaLo, vaHi, ACCESS_READ)) return -1;
  const tr = mmu.out;
  // A read from user mode denied only because the page is a supervisor page: #PF with P=1, U=1.
  if (tr.vector !== VECTOR_PF || tr.errorCode !== (PFEC_P | PFEC_U) || tr.user) return -1;
  const hiBits = (tr.leafHi & PTE_HI_ADDR_MASK) * TWO32;
  if (tr.level === 1) return hiBits + ((tr.leafLo & PTE_ADDR_LO_MASK) >>> 0) + (vaLo & 0xfff);
  if (tr.level === 2) return hiBits + ((tr.leafLo & PDE_2M_ADDR_LO_MASK) >>> 0) + (vaLo & 0x1fffff);
  return hiBits + ((tr.leafLo & PDPTE_1G_ADDR_LO_MASK) >>> 0) + (vaLo & 0x3fffffff);
}

/** Meltdown: read `len` bytes (within one page) at supervisor address `va` from user mode. */
export function meltdown(t: AttackThread, vaLo: number, vaHi: number, len: number, out: Samples, at: number): number {
  checkPageRange('meltdown', vaLo, len);
  if (!t.cpu.bugs.has('cpu_meltdown') || t.mmu.cpu.cpl !== 3) return 0;
  const pa = meltdownTarget(t, vaLo, vaHi);
  if (pa < 0) return 0;
  return loadThrough(t.hw, pa, len, ATTACK_MELTDOWN, t.hw.id, out, at);
}
