/**
 * The control state a linear-address translation depends on (SDM Vol. 3A 2.5, 4.1).
 *
 * Registers are plain Numbers: CR0, CR4, EFER, RFLAGS, PKRU and PKRS fit in 32 bits for
 * the bits modelled; CR3 is < 2^52 once the no-flush bit 63 is stripped (it only has
 * meaning on the write itself, see `Mmu.writeCr3`). Everything the walker needs that
 * depends only on the mode is derived once in `derive()` — the QEMU habit of computing
 * the reserved-bit mask per walk, not per level.
 */
import {
  CR0_PG, CR0_WP, CR3_PCID_MASK, CR4_LA57, CR4_PCIDE, CR4_PKE, CR4_PKS, CR4_SMAP, CR4_SMEP,
  CR4_PGE, EFER_LMA, EFER_NXE, PTE_HI_XD, RFLAGS_AC,
} from './bits.ts';
import { ModeRights } from './rights.ts';

export interface CpuFeatures {
  /** CPUID.80000001H:EDX[26] — 1 GiB pages; without it PS in a PDPTE is reserved (SDM 4.5). */
  pdpe1gb: boolean;
}

export class CpuState {
  cr0 = CR0_PG | CR0_WP | 0x33;
  /** CR3 without bit 63: root table address | PCID (or PWT/PCD when CR4.PCIDE=0). */
  cr3 = 0;
  cr4 = 0;
  efer = EFER_LMA | EFER_NXE;
  rflags = 0x2;
  private cpl_ = 0;
  private pkru_ = 0;
  private pkrs_ = 0;
  readonly maxPhysBits: number;
  readonly features: CpuFeatures;

  /**
   * Incremented by derive() and by every change of CPL, PKRU or IA32_PKRS: whatever a consumer
   * computed from the mode (the rights tables below, the Mmu's fast-path tags) is current while
   * this has not changed. One compare per access instead of one per register.
   */
  modeVersion = 0;
  /** The access-rights tables of this CPU's recent modes (rights.ts), resolved lazily. */
  readonly rights = new ModeRights();

  /** Current privilege level; CPL 3 makes accesses user-mode (SDM 4.6). Settable without derive(). */
  get cpl(): number { return this.cpl_; }
  set cpl(v: number) {
    if (v !== this.cpl_) { this.cpl_ = v; this.modeVersion++; }
  }

  /** PKRU (SDM 4.6.2): WRPKRU writes it without derive(). */
  get pkru(): number { return this.pkru_; }
  set pkru(v: number) {
    if (v !== this.pkru_) { this.pkru_ = v; this.modeVersion++; }
  }

  /** IA32_PKRS (SDM 4.6.2): WRMSR writes it without derive(). */
  get pkrs(): number { return this.pkrs_; }
  set pkrs(v: number) {
    if (v !== this.pkrs_) { this.pkrs_ = v; this.modeVersion++; }
  }

  // Derived by derive(): read by the walker on every translation.
  /**
   * Incremented by derive() when a derived input of the access-rights check (SDM 4.6: CR0.WP,
   * CR4.SMEP/SMAP/PKE/PKS, EFER.NXE, RFLAGS.AC) changed: lets consumers cache what they compute
   * from those alone. modeVersion (above) also covers CPL, PKRU and PKRS.
   */
  rightsVersion = 0;
  private rightsKey = -1;
  levels = 4;
  /** Canonical check: (vaHi >> canonShift) must be 0 or -1 (bit 47 or 56 sign-extended). */
  canonShift = 15;
  /** Reserved address bits 51:MAXPHYADDR in an entry's high half (SDM 4.5). */
  rsvdHi = 0;
  /** rsvdHi plus XD (bit 63) when IA32_EFER.NXE=0: the high-half reserved mask of every entry (SDM 4.5). */
  rsvdHiNx = 0;
  /**
   * Reserved low bits of an entry with PS=1, by level (SDM tables 4-14..4-19): PS itself in a
   * PML5E/PML4E, and in a PDPTE without 1 GiB pages; bits 29:13 of a 1 GiB leaf; bits 20:13 of a
   * 2 MiB leaf. Level 1 never tests it (bit 7 of a PTE is PAT).
   */
  readonly rsvdLoWithPs = new Int32Array(6);
  rootAddr = 0;
  /** rootAddr / 4096: the root table's frame number. */
  rootPfn = 0;
  pcid = 0;
  nxe = false;
  wp = false;
  smep = false;
  smap = false;
  pke = false;
  pks = false;
  ac = false;
  pge = false;
  pcide = false;

  constructor(maxPhysBits = 46, features: Partial<CpuFeatures> = {}) {
    if (!Number.isInteger(maxPhysBits) || maxPhysBits < 32 || maxPhysBits > 52) {
      throw new RangeError(`MAXPHYADDR must be an integer in 32..52, got ${maxPhysBits}`);
    }
    this.maxPhysBits = maxPhysBits;
    this.features = { pdpe1gb: true, ...features };
    this.derive();
  }

  /** Recompute the mode-dependent values; call after changing any register field. */
  derive(): void {
    this.levels = this.cr4 & CR4_LA57 ? 5 : 4;
    this.canonShift = this.levels === 5 ? 24 : 15;
    // Bits maxPhysBits..51 are the high half's bits (maxPhysBits-32)..19.
    this.rsvdHi = (0x000fffff & ~((1 << (this.maxPhysBits - 32)) - 1)) >>> 0;
    if (this.maxPhysBits === 52) this.rsvdHi = 0;
    this.rsvdHiNx = (this.rsvdHi | ((this.efer & EFER_NXE) !== 0 ? 0 : PTE_HI_XD)) >>> 0;
    this.rsvdLoWithPs[2] = 0x001fe000;
    this.rsvdLoWithPs[3] = this.features.pdpe1gb ? 0x3fffe000 : 0x80;
    this.rsvdLoWithPs[4] = this.rsvdLoWithPs[5] = 0x80;
    this.rootAddr = Math.floor(this.cr3 / 4096) * 4096 % 2 ** this.maxPhysBits;
    this.rootPfn = this.rootAddr / 4096;
    this.pcide = (this.cr4 & CR4_PCIDE) !== 0;
    this.pcid = this.pcide ? this.cr3 & CR3_PCID_MASK : 0;
    this.nxe = (this.efer & EFER_NXE) !== 0;
    this.wp = (this.cr0 & CR0_WP) !== 0;
    this.smep = (this.cr4 & CR4_SMEP) !== 0;
    this.smap = (this.cr4 & CR4_SMAP) !== 0;
    this.pke = (this.cr4 & CR4_PKE) !== 0;
    this.pks = (this.cr4 & CR4_PKS) !== 0;
    this.ac = (this.rflags & RFLAGS_AC) !== 0;
    this.pge = (this.cr4 & CR4_PGE) !== 0;
    const key = (this.wp ? 1 : 0) | (this.smep ? 2 : 0) | (this.smap ? 4 : 0) | (this.pke ? 8 : 0) |
      (this.pks ? 16 : 0) | (this.nxe ? 32 : 0) | (this.ac ? 64 : 0);
    if (key !== this.rightsKey) {
      this.rightsKey = key;
      this.rightsVersion++;
    }
    this.modeVersion++;
  }

  /** Set several registers at once (Numbers or BigInts from a parser), then derive. */
  load(regs: Partial<Record<'cr0' | 'cr3' | 'cr4' | 'efer' | 'rflags' | 'cpl' | 'pkru' | 'pkrs', number | bigint>>): this {
    for (const [k, v] of Object.entries(regs)) {
      if (v === undefined) continue;
      let n = typeof v === 'bigint' ? v : BigInt(v);
      if (k === 'cr3') n &= (1n << 63n) - 1n; // bit 63 only means "no flush" on a write
      (this as unknown as Record<string, number>)[k] = Number(n & 0xfffffffffffffn);
    }
    this.derive();
    return this;
  }
}
