/**
 * PCIDs of restricted address spaces, and when a CR3 write into one may set NOFLUSH (bit 63,
 * SDM 4.10.4.1: "no invalidation is required").
 *
 * The kernel's own PCIDs (arch/x86/mm/tlb.c, linux/asid.ts): kPCID = ASID + 1 (1..6), the KPTI
 * user PCID = kPCID | 1 << 11. The designs add bits above the kernel PCID:
 *  - Chartre v4 (rppt/linux arch/x86/include/asm/asi.h): "ASI PCID = (ASI Type PCID Prefix << 4)
 *    | Kernel PCID", prefix 1..255 per ASI type (user 0x80, test 0xff);
 *  - Google 2022 (patch "mm: asi: Use separate PCIDs for restricted address spaces", tlb.c):
 *    asi_pcid() = kern_pcid(asid) | (asi->pcid_index << ASI_PCID_BITS_SHIFT) with
 *    ASI_PCID_BITS_SHIFT = CR3_AVAIL_PCID_BITS = X86_CR3_PCID_BITS (12) - PTI_CONSUMED_PCID_BITS
 *    (1 with PTI) - ASI_CONSUMED_PCID_BITS (ASI_MAX_NUM_ORDER = 2); class index 0 is reserved
 *    ("Index 0 is reserved for special purposes"), so the first class (KVM) has index 1;
 *  - Google 2025 (RFC v2 06/29, processor-flags.h): X86_CR3_ASI_PCID_BITS 2 ending at
 *    X86_CR3_PTI_PCID_USER_BIT - 1 (bit 10) with PTI, else bit 11; asi_pcid() = kern_pcid(asid) |
 *    ((class_id + 1) << X86_CR3_ASI_PCID_BITS_SHIFT). ASI_CLASS_KVM is 0.
 *
 * NOFLUSH: Chartre's asi_update_flush() keeps, per CPU and ASI type, one record per kernel PCID
 * {pgtable_id, pgtable_gen}; a switch whose record matches sets X86_CR3_PCID_NOFLUSH, else the
 * record is updated and the write flushes. `NoflushTracker` is that table (the 2022 RFC's
 * tlb_gen tracking is modelled the same way — an assumption). RFC v2 (2025) "does not actually
 * use the NOFLUSH bit" (06/29) and removed "all of the TLB-flushing smarts" (cover letter).
 */
import { CR3_NOFLUSH_HI } from '../x86/bits.ts';

/** arch/x86/include/asm/processor-flags.h */
export const X86_CR3_PCID_BITS = 12;
export const X86_CR3_PTI_PCID_USER_BIT = 11;
/** Chartre v4: ASI_PCID_PREFIX_SHIFT, ASI_KERNEL_PCID_MASK, ASI_PGTABLE_BIT (PAGE_SHIFT). */
export const ASI_PCID_PREFIX_SHIFT = 4;
export const ASI_KERNEL_PCID_MASK = 0xf;
export const ASI_PGTABLE_MASK = 1 << 12;
/** Chartre v4 prefixes (ASI_PCID_PREFIX_USER, _TEST). */
export const ASI_PCID_PREFIX_USER = 0x80;
export const ASI_PCID_PREFIX_TEST = 0xff;

const TWO32 = 4294967296;

/** (prefix << 4) | kernel PCID. */
export function chartreAsiPcid(prefix: number, kernPcid: number): number {
  return ((prefix << ASI_PCID_PREFIX_SHIFT) | (kernPcid & ASI_KERNEL_PCID_MASK)) & 0xfff;
}

/** The 2022 RFC's ASI_PCID_BITS_SHIFT: 9 with PTI, 10 without. */
export function asiPcidShift2022(pti: boolean): number {
  return X86_CR3_PCID_BITS - (pti ? 1 : 0) - 2;
}

export function google2022AsiPcid(kernPcid: number, index: number, pti: boolean): number {
  return kernPcid | (index << asiPcidShift2022(pti));
}

/** RFC v2's X86_CR3_ASI_PCID_BITS_SHIFT: END_BIT - BITS + 1 = 9 with PTI (end bit 10), 10 without (end bit 11). */
export function asiPcidShift2025(pti: boolean): number {
  const end = pti ? X86_CR3_PTI_PCID_USER_BIT - 1 : X86_CR3_PCID_BITS - 1;
  return end - 2 + 1;
}

export function google2025AsiPcid(kernPcid: number, classId: number, pti: boolean): number {
  return kernPcid | ((classId + 1) << asiPcidShift2025(pti));
}

/** Per (CPU, kernel PCID 1..15) the space id and generation last loaded under it. */
export class NoflushTracker {
  private readonly id: Float64Array;
  private readonly gen: Float64Array;

  constructor(readonly cpus: number) {
    this.id = new Float64Array(cpus * 16).fill(-1);
    this.gen = new Float64Array(cpus * 16);
  }

  /** asi_update_flush(): true (NOFLUSH) when the record matches; otherwise record and flush. */
  check(cpu: number, kernPcid: number, id: number, gen: number): boolean {
    const i = cpu * 16 + (kernPcid & 15);
    if (this.id[i] === id && this.gen[i] === gen) return true;
    this.id[i] = id;
    this.gen[i] = gen;
    return false;
  }

  /** Forget every record of `cpu` (a full TLB flush on it). */
  reset(cpu: number): void {
    this.id.fill(-1, cpu * 16, cpu * 16 + 16);
  }
}

/** A CR3 value as halves: root | pcid, bit 63 when noflush. Written into out[0], out[1]. */
export function cr3Halves(root: number, pcid: number, noflush: boolean, out: Uint32Array): void {
  out[0] = ((root % TWO32) | pcid) >>> 0;
  out[1] = (Math.floor(root / TWO32) | (noflush ? CR3_NOFLUSH_HI : 0)) >>> 0;
}
