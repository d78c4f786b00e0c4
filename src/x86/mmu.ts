/**
 * The memory-management unit of one hardware thread: the TLB (tlb.ts) in front of the page
 * walker (walk.ts), and the instructions that change what the TLB may hold (MOV to CR3,
 * MOV to CR4, INVLPG, INVPCID) with the invalidations of Intel SDM Vol. 3A 4.10.4.1.
 *
 * translate() is the hot path: one TLB probe, the access-rights check on the cached folded
 * rights (checkAccess, the same rules the walker applies), and on a miss a walk that fills
 * the TLB. It never allocates; results go to the reusable `out` Translation.
 *
 * On a TLB hit `out.leafLo`, `out.leafHi` are 0 and `out.entryAddr` is all -1: no paging
 * structure was read. Every other field is what the walk that filled the entry produced.
 *
 * Instructions return 0, or the vector of the exception they raise (13, #GP) when the SDM
 * (Vol. 2 instruction pages) says the operands are invalid; state is unchanged then.
 */
import type { PhysMemory } from '../phys/memory.ts';
import type { CpuState } from './cpu.ts';
import {
  ACCESS_WRITE, CR3_NOFLUSH_HI, CR3_PCID_MASK, CR4_LA57, CR4_PAE, CR4_PCIDE, CR4_PGE, CR4_SMEP,
  EFER_LMA, PTE_D, PTE_G, PTE_HI_PK_MASK, VECTOR_GP, VECTOR_PF,
} from './bits.ts';
import { Tlb, TLB_D, TLB_G, TLB_PKEY_MASK, TLB_PKEY_SHIFT, TLB_U, TLB_W, TLB_XD, type TlbGeometry } from './tlb.ts';
import { checkAccess, Translation, walkFrom } from './walk.ts';

const TWO32 = 4294967296;
/** A rights-table verdict: allowed, but the walker must run to set D (never a valid error code: PFEC < 64). */
const NEEDS_WALK = 0x80;
/** meta bits 21:14 are U, W, XD, D, PKEY (tlb.ts). */
const TLB_U_SHIFT = 14;

/** INVPCID types (SDM Vol. 2, INVPCID). */
export const INVPCID_ADDRESS = 0;
export const INVPCID_SINGLE_CONTEXT = 1;
export const INVPCID_ALL_INCL_GLOBAL = 2;
export const INVPCID_ALL_NON_GLOBAL = 3;

export class Mmu {
  readonly tlb: Tlb;
  /** The result of the last translate(); reused. */
  readonly out = new Translation();

  /** Page walks done (TLB misses, and writes through an entry whose D is not known set). */
  walks = 0;
  /** Invalidation operations performed (CR3/CR4 writes that flush, INVLPG, INVPCID, #PF). */
  flushes = 0;

  /**
   * checkAccess() answers for every (access kind, cached rights) pair under the current mode,
   * rebuilt when the mode changes: index = access (3 bits) << 8 | meta bits 21:14 (U, W, XD,
   * D, PKEY); value = 0 (allowed), a #PF error code, or NEEDS_WALK (a write through an entry
   * whose D is not known set, SDM 4.8). The mode is CpuState.rightsVersion plus the registers a
   * caller may set without derive(): CPL (user- or supervisor-mode access: U/S, and whether
   * IA32_PKRS applies, SDM 4.6.2), PKRU, PKRS. checkAccess() is the walker's own rule, so a hit and
   * a walk give the same verdict by construction (test/x86/mmu.test.ts checks it).
   */
  private readonly rights = new Uint8Array(8 * 256);
  private rightsVersion = -1;
  private rightsCpl = -1;
  private rightsPkru = -1;
  private rightsPkrs = -1;

  constructor(readonly cpu: CpuState, readonly mem: PhysMemory, geometry: Partial<TlbGeometry> = {}) {
    this.tlb = new Tlb(geometry);
  }

  /**
   * Translate `va` (u32 halves) for an access of kind `access` (ACCESS_* bits). Returns true
   * on success; the result (or the fault) is in `this.out`. Halves may be given signed or
   * unsigned; signed (Int32Array) halves stay small integers in V8, which keeps calls that are
   * not inlined from boxing them.
   */
  translate(vaLo: number, vaHi: number, access: number): boolean {
    const cpu = this.cpu;
    const top = vaHi >> cpu.canonShift;
    // A non-canonical address raises #GP(0) before paging (SDM 3.3.7.1): the walker reports it.
    if (top !== 0 && top !== -1) return walkFrom(this.mem, cpu, cpu.rootAddr, vaLo, vaHi, access, this.out);
    const tlb = this.tlb;
    const row = tlb.find(vaLo, vaHi, cpu.pcid);
    if (row < 0) return this.walkAndFill(vaLo, vaHi, access);
    const m = tlb.meta[row];
    // The rights check on the cached folded rights, as one table lookup (see rightsTable()).
    const verdict = this.rightsTable()[((access & 7) << 8) | ((m >>> TLB_U_SHIFT) & 0xff)];
    if (verdict !== 0) return this.hitSlow(vaLo, vaHi, access, row, verdict === NEEDS_WALK ? 0 : verdict);
    const user = (m & TLB_U) !== 0;
    const writable = (m & TLB_W) !== 0;
    const executeDisable = (m & TLB_XD) !== 0;
    const pkey = (m >>> TLB_PKEY_SHIFT) & TLB_PKEY_MASK;
    const out = this.out;
    const shift = tlb.pageShiftOf(row);
    const frame = tlb.frame[row];
    out.vector = 0;
    out.errorCode = 0;
    out.level = shift === 12 ? 1 : shift === 21 ? 2 : 3;
    out.pageShift = shift;
    out.frame = frame;
    // The offset is below 2^30, so the u32 of vaLo's low bits is exact.
    out.pa = frame + ((vaLo & ((1 << shift) - 1)) >>> 0);
    out.user = user;
    out.writable = writable;
    out.executeDisable = executeDisable;
    out.pkey = pkey;
    out.leafLo = out.leafHi = 0;
    const e = out.entryAddr;
    e[1] = e[2] = e[3] = e[4] = e[5] = -1;
    return true;
  }

  /** A TLB hit that faults, or a write through an entry whose D is not known set. */
  private rightsTable(): Uint8Array {
    const c = this.cpu;
    if (c.rightsVersion !== this.rightsVersion || c.cpl !== this.rightsCpl || c.pkru !== this.rightsPkru || c.pkrs !== this.rightsPkrs) {
      for (let access = 0; access < 8; access++) {
        for (let key = 0; key < 256; key++) {
          const fault = checkAccess(c, (key & 1) !== 0, (key & 2) !== 0, (key & 4) !== 0, key >>> 4, access);
          this.rights[(access << 8) | key] = fault !== 0 ? fault : (access & ACCESS_WRITE) !== 0 && (key & 8) === 0 ? NEEDS_WALK : 0;
        }
      }
      this.rightsVersion = c.rightsVersion;
      this.rightsCpl = c.cpl;
      this.rightsPkru = c.pkru;
      this.rightsPkrs = c.pkrs;
    }
    return this.rights;
  }

  private hitSlow(vaLo: number, vaHi: number, access: number, row: number, fault: number): boolean {
    const cpu = this.cpu;
    const out = this.out;
    if (fault === 0) {
      // The processor walks to set D in the leaf (SDM 4.8); the entry is refilled from that walk.
      this.tlb.invalidateEntry(row);
      return this.walkAndFill(vaLo, vaHi, access);
    }
    // A #PF invalidates the TLB entries for the faulting page number (SDM 4.10.4.1), so a
    // retry walks the tables in memory. The entry that faulted may be global: drop it too.
    const m = this.tlb.meta[row];
    const shift = this.tlb.pageShiftOf(row);
    this.tlb.flushAddress(vaLo, vaHi, cpu.pcid, true);
    this.flushes++;
    out.vector = VECTOR_PF;
    out.errorCode = fault;
    out.level = shift === 12 ? 1 : shift === 21 ? 2 : 3;
    out.pa = out.frame = 0;
    out.user = (m & TLB_U) !== 0;
    out.writable = (m & TLB_W) !== 0;
    out.executeDisable = (m & TLB_XD) !== 0;
    out.pkey = (m >>> TLB_PKEY_SHIFT) & TLB_PKEY_MASK;
    out.leafLo = out.leafHi = 0;
    const e = out.entryAddr;
    e[1] = e[2] = e[3] = e[4] = e[5] = -1;
    return false;
  }

  /** A TLB miss: walk, and cache the translation if the access did not fault. */
  private walkAndFill(vaLo: number, vaHi: number, access: number): boolean {
    const cpu = this.cpu;
    const out = this.out;
    this.walks++;
    if (!walkFrom(this.mem, cpu, cpu.rootAddr, vaLo, vaHi, access, out)) return false;
    // Only translations that did not fault are cached: the TLB holds only valid translations,
    // and only once A is 1 in every entry used (SDM 4.10.2.3) — the walker sets the leaf's A
    // only for an allowed access (4.8). The leaf's G counts only with CR4.PGE=1 (4.10.2.4);
    // D is known set if it was, or if this write set it (4.8).
    const lo = out.leafLo;
    const flags =
      ((lo & PTE_G) !== 0 && cpu.pge ? TLB_G : 0) |
      (out.user ? TLB_U : 0) |
      (out.writable ? TLB_W : 0) |
      (out.executeDisable ? TLB_XD : 0) |
      ((lo & PTE_D) !== 0 || (access & ACCESS_WRITE) !== 0 ? TLB_D : 0) |
      ((out.pkey & PTE_HI_PK_MASK) << TLB_PKEY_SHIFT);
    this.tlb.fill(vaLo, vaHi, out.pageShift, cpu.pcid, flags, out.frame);
    return true;
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
      this.tlb.flushPcid(0, false);
      this.flushes++;
    } else if (!noFlush) {
      // PCIDE=1, bit 63 clear: the new PCID's non-global entries (SDM 4.10.4.1).
      this.tlb.flushPcid(cpu.pcid, false);
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
      this.tlb.flushAll();
      this.flushes++;
    } else if ((changed & CR4_PAE) !== 0 || (changed & next & CR4_SMEP) !== 0) {
      // Changing PAE, or SMEP 0 -> 1: every entry of the current PCID (SDM 4.10.4.1). PSE is
      // not in the SDM's list (and paging in IA-32e mode ignores it).
      this.tlb.flushPcid(cpu.pcid, true);
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
    // for every page size (SDM 4.10.4.1).
    this.tlb.flushAddress(vaLo, vaHi, cpu.pcid, true);
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
        this.tlb.flushAddress(vaLo, vaHi, pcid, false);
        break;
      case INVPCID_SINGLE_CONTEXT: // all of the PCID's mappings except global ones
        this.tlb.flushPcid(pcid, false);
        break;
      case INVPCID_ALL_INCL_GLOBAL: // everything, global mappings included
        this.tlb.flushAll();
        break;
      default: // INVPCID_ALL_NON_GLOBAL: every PCID, except global mappings
        this.tlb.flushNonGlobal();
        break;
    }
    this.flushes++;
    return 0;
  }

  resetCounters(): void {
    this.walks = this.flushes = 0;
    this.tlb.resetCounters();
  }
}
