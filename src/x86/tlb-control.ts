/**
 * The instructions that change what a TLB may hold, with the invalidations of Intel SDM Vol. 3A
 * 4.10.4.1: MOV to CR3, MOV to CR4, INVLPG, INVPCID. The base of the Mmu (mmu.ts), which adds
 * translation; these need only the CPU's registers and the TLBs. Every invalidation applies to
 * the first-level TLB and to the second-level one (STLB) when there is one: the SDM's rules are
 * for "the TLBs", whatever level holds an entry. The paging-structure caches (pwc.ts) lose what
 * 4.10.4.1 says each instruction invalidates in them, which is not always the TLB's scope:
 * INVLPG drops every entry of the current PCID, and none of their entries is global.
 * A thread with split first-level TLBs (an instruction TLB beside the data TLB, Mmu.fetchSide)
 * links each side's TLBs into the other's `linked`: an instruction executed on either side, and a
 * #PF on either, invalidates the entries of every TLB of the thread (the SDM's "TLBs" are all of
 * them, instruction and data, 4.10.4.1).
 *
 * Instructions return 0, or the vector of the exception they raise (13, #GP) when the SDM
 * (Vol. 2 instruction pages) says the operands are invalid; state is unchanged then.
 */
import type { CpuState } from './cpu.ts';
import { CR3_NOFLUSH_HI, CR3_PCID_MASK, CR4_LA57, CR4_PAE, CR4_PCIDE, CR4_PGE, CR4_SMEP, EFER_LMA, VECTOR_GP } from './bits.ts';
import type { PagingStructureCache } from './pwc.ts';
import type { Tlb } from './tlb.ts';

const TWO32 = 4294967296;

/** INVPCID types (SDM Vol. 2, INVPCID). */
export const INVPCID_ADDRESS = 0;
export const INVPCID_SINGLE_CONTEXT = 1;
export const INVPCID_ALL_INCL_GLOBAL = 2;
export const INVPCID_ALL_NON_GLOBAL = 3;

export class TlbControl {
  /** Invalidation operations performed (CR3/CR4 writes that flush, INVLPG, INVPCID, #PF). */
  flushes = 0;

  /** The thread's other TLBs (the other side's first level, and its second level when that is its own): every invalidation reaches them too. */
  protected readonly linked: Tlb[] = [];

  constructor(readonly cpu: CpuState, readonly tlb: Tlb, readonly stlb: Tlb | null = null, readonly pwc: PagingStructureCache | null = null) {}

  // The invalidations, on both TLB levels, the linked TLBs and the paging-structure caches (which hold no global entries).
  protected flushPcid(pcid: number, includeGlobal: boolean): void {
    this.tlb.flushPcid(pcid, includeGlobal);
    this.stlb?.flushPcid(pcid, includeGlobal);
    for (const l of this.linked) l.flushPcid(pcid, includeGlobal);
    this.pwc?.flushPcid(pcid);
  }

  protected flushAll(): void {
    this.tlb.flushAll();
    this.stlb?.flushAll();
    for (const l of this.linked) l.flushAll();
    this.pwc?.flushAll();
  }

  /** INVPCID type 3: every PCID's non-global TLB entries, and all paging-structure-cache entries. */
  protected flushNonGlobal(): void {
    this.tlb.flushNonGlobal();
    this.stlb?.flushNonGlobal();
    for (const l of this.linked) l.flushNonGlobal();
    this.pwc?.flushAll();
  }

  /**
   * The entries of one page for `pcid` (globals too if `globals`), and the paging-structure-cache
   * entries of `pcid` a walk of it would use: INVPCID type 0's "mappings ... that would be used to
   * translate the linear address" and a #PF's (SDM 4.10.4.1). INVLPG drops more (invlpg()).
   */
  protected flushAddress(vaLo: number, vaHi: number, pcid: number, globals: boolean): void {
    this.tlb.flushAddress(vaLo, vaHi, pcid, globals);
    this.stlb?.flushAddress(vaLo, vaHi, pcid, globals);
    for (const l of this.linked) l.flushAddress(vaLo, vaHi, pcid, globals);
    this.pwc?.flushAddress(vaLo, vaHi, pcid);
  }

  /**
   * MOV to CR3 with the value `hi:lo`. With CR4.PCIDE=1, bits 11:0 are the new PCID and bit 63
   * asks the processor not to flush; bit 63 is never stored (SDM 4.10.4.1, Vol. 2 MOV CR).
   */
  writeCr3(lo: number, hi: number): number {
    const cpu = this.cpu;
    const noFlush = (hi & CR3_NOFLUSH_HI) !== 0;
    // Bit 63 is reserved with CR4.PCIDE=0 (SDM table 4-12), as is bits 62:MAXPHYADDR always
    // (tables 4-12, 4-13); a 1 there is #GP(0) — as KVM's kvm_set_cr3() checks.
    if (noFlush && !cpu.pcide) return VECTOR_GP;
    const rest = hi & ~CR3_NOFLUSH_HI;
    if ((rest & (cpu.rsvdHi | 0x7ff00000)) !== 0) return VECTOR_GP;
    cpu.cr3 = (rest >>> 0) * TWO32 + (lo >>> 0);
    cpu.derive();
    if (!cpu.pcide) {
      // PCIDE=0: invalidate all entries of PCID 000H except global ones (SDM 4.10.4.1).
      this.flushPcid(0, false);
      this.flushes++;
    } else if (!noFlush) {
      // PCIDE=1, bit 63 clear: the new PCID's non-global entries (SDM 4.10.4.1).
      this.flushPcid(cpu.pcid, false);
      this.flushes++;
    }
    // PCIDE=1, bit 63 set: no invalidation is required (SDM 4.10.4.1).
    return 0;
  }

  /** MOV to CR4 (SDM 4.10.4.1 for what it flushes; Vol. 2 MOV CR and 4.10.1 for #GP). */
  writeCr4(value: number): number {
    const cpu = this.cpu;
    const next = value >>> 0;
    const old = cpu.cr4 >>> 0;
    const changed = old ^ next;
    const longMode = (cpu.efer & EFER_LMA) !== 0;
    // IA-32e mode needs CR4.PAE, and CR4.LA57 cannot change in it (SDM Vol. 2 MOV CR, #GP).
    if (longMode && ((next & CR4_PAE) === 0 || (changed & CR4_LA57) !== 0)) return VECTOR_GP;
    // Setting PCIDE needs IA-32e mode and CR3[11:0] = 000H (SDM 4.10.1).
    if ((changed & next & CR4_PCIDE) !== 0 && (!longMode || (cpu.cr3 & CR3_PCID_MASK) !== 0)) return VECTOR_GP;
    cpu.cr4 = next;
    cpu.derive();
    if ((changed & CR4_PGE) !== 0 || (changed & old & CR4_PCIDE) !== 0) {
      // Changing PGE, or PCIDE 1 -> 0: every entry, global ones included, of all PCIDs (SDM 4.10.4.1).
      this.flushAll();
      this.flushes++;
    } else if ((changed & CR4_PAE) !== 0 || (changed & next & CR4_SMEP) !== 0) {
      // Changing PAE, or SMEP 0 -> 1: every entry of the current PCID (SDM 4.10.4.1). PSE is
      // not in the SDM's list (and paging in IA-32e mode ignores it).
      this.flushPcid(cpu.pcid, true);
      this.flushes++;
    }
    return 0;
  }

  /** INVLPG: CPL 0 only (#GP); a non-canonical address makes it a NOP (SDM Vol. 2 INVLPG). */
  invlpg(vaLo: number, vaHi: number): number {
    const cpu = this.cpu;
    if (cpu.cpl !== 0) return VECTOR_GP;
    const top = vaHi >> cpu.canonShift;
    if (top !== 0 && top !== -1) return 0;
    // The page's entries for the current PCID, and global entries for it whatever their PCID,
    // for every page size; and every paging-structure-cache entry of the current PCID, "regardless
    // of the linear addresses to which they correspond" (SDM 4.10.4.1).
    this.flushAddress(vaLo, vaHi, cpu.pcid, true);
    this.pwc?.flushPcid(cpu.pcid);
    this.flushes++;
    return 0;
  }

  /** INVPCID with the descriptor {pcid, va}. #GP(0) cases from SDM Vol. 2 INVPCID. */
  invpcid(type: number, pcid: number, vaLo: number, vaHi: number): number {
    const cpu = this.cpu;
    if (cpu.cpl !== 0) return VECTOR_GP;
    if (!Number.isInteger(type) || type < 0 || type > 3) return VECTOR_GP;
    // Descriptor bits 63:12 must be zero.
    if (!Number.isInteger(pcid) || pcid < 0 || pcid > CR3_PCID_MASK) return VECTOR_GP;
    if (type === INVPCID_ADDRESS) {
      const top = vaHi >> cpu.canonShift;
      if (top !== 0 && top !== -1) return VECTOR_GP;
    }
    // With CR4.PCIDE=0 only PCID 000H may be named by types 0 and 1.
    if (!cpu.pcide && type <= INVPCID_SINGLE_CONTEXT && pcid !== 0) return VECTOR_GP;
    switch (type) {
      case INVPCID_ADDRESS: // the address's mappings for the PCID, except global ones
        this.flushAddress(vaLo, vaHi, pcid, false);
        break;
      case INVPCID_SINGLE_CONTEXT: // all of the PCID's mappings except global ones
        this.flushPcid(pcid, false);
        break;
      case INVPCID_ALL_INCL_GLOBAL: // everything, global mappings included
        this.flushAll();
        break;
      default: // INVPCID_ALL_NON_GLOBAL: every PCID, except global mappings
        this.flushNonGlobal();
        break;
    }
    this.flushes++;
    return 0;
  }

}
