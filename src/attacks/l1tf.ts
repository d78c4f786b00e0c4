/**
 * L1 Terminal Fault (Foreshadow / Foreshadow-NG), as a mechanism on the modelled state.
 *
 * Documentation/admin-guide/hw-vuln/l1tf.rst: "If an instruction accesses a virtual address for
 * which the relevant page table entry (PTE) has the Present bit cleared or other reserved bits
 * set, then speculative execution ignores the invalid PTE and loads the referenced data if it is
 * present in the Level 1 Data Cache, as if the page referenced by the address bits in the PTE
 * was still present and accessible."
 *
 * So the primitive: walk to the entry that ends the translation; if it is not present or has
 * reserved bits set (a terminal fault), take its address bits as a physical address and read
 * the attacker core's L1D there. A line the L1D holds leaks (its bytes as cached, stale or not);
 * anything else leaks nothing. The walk ending on any level is treated alike (the address bits
 * of the terminal entry, plus the page offset of the access).
 *
 * Which physical address the address bits name: the L1D is tagged with the processor's cache
 * address width, and bits above it are dropped. The kernel sizes PTE inversion by that width
 * (arch/x86/include/asm/processor.h l1tf_pfn_limit(): BIT_ULL(boot_cpu_data.x86_cache_bits - 1 -
 * PAGE_SHIFT)) and Xen states it directly ("Safe PTE addresses for L1TF mitigations are ones
 * which are within the L1D address width", XSA-273). Here the width is MAXPHYADDR (the kernel's
 * x86_cache_bits default, bugs.c override_cache_bits() only changes it on a few client parts).
 *
 * What defeats it here is only state: PTE inversion (arch/x86/include/asm/pgtable-invert.h
 * flip_protnone_guard()) leaves the inverted PFN pointing at the top half of the physical
 * address space, which the L1D holds no line of; an L1D flush empties the cache; a CPU without
 * X86_BUG_L1TF does not forward data from a terminal fault at all.
 */
import { PFEC_P, PFEC_RSVD, PTE_ADDR_LO_MASK, PTE_HI_ADDR_MASK, PTE_P, PTE_PS, ACCESS_READ, VECTOR_PF } from '../x86/bits.ts';
import type { HwThread } from '../uarch/core.ts';
import type { Vm } from '../linux/kvm.ts';
import { ATTACK_L1TF_GUEST, ATTACK_L1TF_NATIVE, type AttackThread, type CpuVulnerabilities, type Samples } from './sample.ts';
import { checkPageRange, readL1d } from './read.ts';

const TWO32 = 4294967296;

/** A vCPU thread: the hardware thread the guest runs on and the guest's paging state. */
export interface VcpuThread {
  readonly cpu: CpuVulnerabilities;
  readonly hw: HwThread;
  readonly vm: Vm;
  /** Guest CR3: GPA of the guest's top-level table. */
  readonly guestCr3: number;
  readonly guestLevels: 4 | 5;
  /**
   * EPT on (kvm-intel.ept=1). Off means shadow paging: the hardware walks KVM's shadow tables,
   * which never carry the address bits of a not-present guest PTE (see l1tfGuest).
   */
  readonly ept: boolean;
}

/**
 * The physical address a terminal-fault access to `vaLo` uses, from the terminal
 * entry's halves: address bits 51:12 (a present large leaf with reserved bits: its frame bits and
 * the offset within the large page), truncated to the L1D's address width.
 */
export function terminalAddress(lo: number, hi: number, level: number, vaLo: number, cacheBits: number): number {
  let frame = (hi & PTE_HI_ADDR_MASK) * TWO32 + ((lo & PTE_ADDR_LO_MASK) >>> 0);
  let off = vaLo & 0xfff;
  if ((lo & PTE_P) !== 0 && (lo & PTE_PS) !== 0 && (level === 2 || level === 3)) {
    const size = level === 2 ? 0x200000 : 0x40000000;
    frame -= frame % size;
    off = (vaLo >>> 0) % size;
  }
  return (frame + off) % 2 ** cacheBits;
}

/**
 * Native L1TF: a user-space attacker (its MMU: current CR3, CPL) accesses `va`; when the walk
 * through its own page tables ends on a not-present entry or one with reserved bits set, the
 * entry's address bits are looked up in the attacker core's L1D. l1tf.rst: "Operating Systems
 * store arbitrary information in the address bits of a PTE which is marked non present. This
 * allows a malicious user space application to attack the physical memory to which these PTEs
 * resolve." Needs X86_BUG_L1TF. A TLB hit or a successful walk is an ordinary access (no fault,
 * nothing leaks); so is a permission fault on a present entry (that is Meltdown's case).
 */
export function l1tfNative(t: AttackThread, vaLo: number, vaHi: number, len: number, out: Samples, at: number): number {
  checkPageRange('l1tf-native', vaLo, len);
  if (!t.cpu.bugs.has('l1tf')) return 0;
  const mmu = t.mmu;
  if (mmu.translate(vaLo, vaHi, ACCESS_READ)) return 0;
  const tr = mmu.out;
  if (tr.vector !== VECTOR_PF) return 0;
  if ((tr.errorCode & PFEC_P) !== 0 && (tr.errorCode & PFEC_RSVD) === 0) return 0;
  const ea = tr.entryAddr[tr.level];
  if (ea < 0) return 0;
  const lo = mmu.mem.read32(ea);
  const hi = mmu.mem.read32(ea + 4);
  const pa = terminalAddress(lo, hi, tr.level, vaLo, t.cpu.maxPhysBits);
  return readL1d(t.hw, pa, len, ATTACK_L1TF_NATIVE, t.hw.id, out, at);
}

/**
 * Foreshadow-NG from a malicious guest: the guest accesses guest-virtual `gva` through its own
 * page tables (in guest RAM, their pages reached through the EPT). When the guest walk ends on a
 * not-present entry (or one with reserved address bits), the entry's address bits are used as a
 * HOST physical address, not translated by the EPT — l1tf.rst: "the speculation bypasses the
 * extended page table (EPT) protection mechanism" — and the vCPU's core L1D is read there,
 * including lines the sibling hyperthread brought in: "a malicious guest running on one
 * Hyperthread can attack the data which is brought into the L1D by the context which runs on
 * the sibling Hyperthread of the same physical core."
 *
 * With EPT off the hardware walks KVM's shadow page tables instead, and a not-present guest PTE
 * has a not-present shadow entry that KVM wrote: in 6.1 such an SPTE is 0 (non-zero
 * not-present SPTEs carry shadow_nonpresent_or_rsvd_mask, arch/x86/kvm/mmu/spte.h: "This mask
 * must be set on all non-zero Non-Present or Reserved SPTEs in order to guard against L1TF
 * attacks"), so the terminal access names physical page 0 whatever the guest wrote. l1tf.rst:
 * "Disabling EPT for virtual machines provides full mitigation for L1TF even with SMT enabled,
 * because the effective page tables for guests are managed and sanitized by the hypervisor."
 */
export function l1tfGuest(v: VcpuThread, gvaLo: number, gvaHi: number, len: number, out: Samples, at: number): number {
  checkPageRange('l1tf-guest', gvaLo, len);
  if (!v.cpu.bugs.has('l1tf')) return 0;
  const mem = v.vm.kvm.mem;
  const bits = v.cpu.maxPhysBits;
  const rsvdHi = bits >= 52 ? 0 : (PTE_HI_ADDR_MASK & ~((1 << (bits - 32)) - 1)) >>> 0;
  // VA bits 47:12 (56:12 with 5 levels) as indexes, as walk.ts does.
  const vpn = (gvaLo >>> 12) | ((gvaHi & 0xff) << 20);
  let table = v.guestCr3;
  for (let level: number = v.guestLevels; level >= 1; level--) {
    const idx = level <= 3 ? (vpn >>> (9 * level - 9)) & 511 : (gvaHi >>> (9 * level - 29)) & 511;
    const hpa = v.vm.gpaToHpa(table + idx * 8);
    if (hpa < 0) return 0; // the guest table itself is not in guest RAM: an EPT violation, no terminal fault
    const lo = mem.read32(hpa);
    const hi = mem.read32(hpa + 4);
    const notPresent = (lo & PTE_P) === 0;
    if (notPresent || (hi & rsvdHi) !== 0) {
      const pa = v.ept ? terminalAddress(lo, hi, level, gvaLo, bits) : terminalAddress(0, 0, 1, gvaLo, bits);
      return readL1d(v.hw, pa, len, ATTACK_L1TF_GUEST, v.hw.id, out, at);
    }
    if (level === 1 || ((level === 2 || level === 3) && (lo & PTE_PS) !== 0)) return 0; // a present leaf: an ordinary guest access
    table = (hi & PTE_HI_ADDR_MASK) * TWO32 + ((lo & PTE_ADDR_LO_MASK) >>> 0);
  }
  return 0;
}
