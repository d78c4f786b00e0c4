/**
 * Spectre variant 1 (bounds check bypass) against a victim context, e.g. the kernel running a
 * syscall or a VM exit on behalf of the attacker.
 *
 * Documentation/admin-guide/hw-vuln/spectre.rst: "The attacker passes a parameter to the kernel
 * via a register or via a known address in memory during a syscall. Such parameter may be used
 * later by the kernel as an index to an array or to derive a pointer for a Spectre variant 1
 * attack. The index or pointer is invalid, but bound checks are bypassed in the code branch
 * taken for speculative execution. This could cause privileged memory to be accessed and
 * leaked." and "Such speculative memory accesses can leave side effects, creating side channels
 * which leak information to the attacker."
 *
 * The mechanism here: the gadget dereferences the attacker-chosen `va` in the VICTIM's context —
 * its MMU, so its current CR3 and CPL. If that translation succeeds (mapped, present, allowed to
 * the victim) the victim's core really loads the bytes (bringing the line into the L1D, through a
 * fill buffer on a miss) and the attacker recovers them through the cache side channel the
 * gadget's dependent load leaves; the covert channel itself is not modelled, it is taken to
 * work. If the translation faults (in particular, the address is not mapped in the victim's
 * current address space) the speculative load has no physical address and nothing is loaded.
 * That is the case an ASI restricted address space creates: the secret simply is not mapped
 * there, while the victim runs on the restricted tables.
 *
 * Needs X86_BUG_SPECTRE_V1 (every speculating CPU in the profiles has it). Software mitigations
 * (array_index_nospec, usercopy LFENCE) remove particular gadgets; they are not modelled here —
 * calling this primitive asserts a gadget exists.
 */
import { ACCESS_READ } from '../x86/bits.ts';
import { ATTACK_SPECTRE_V1, type AttackThread, type Samples } from './sample.ts';
import { checkPageRange, loadThrough } from './read.ts';

/**
 * The gadget in `victim`'s context reads `len` bytes (within one page) at `va`; the attacker
 * (`attackerId`, a machine-wide thread id, default the victim's own thread: a user process that
 * made the syscall) obtains them. Returns the bytes obtained.
 */
export function spectreV1(victim: AttackThread, vaLo: number, vaHi: number, len: number, out: Samples, at: number, attackerId = victim.hw.id): number {
  checkPageRange('spectre-v1', vaLo, len);
  if (!victim.cpu.bugs.has('spectre_v1')) return 0;
  const mmu = victim.mmu;
  if (!mmu.translate(vaLo, vaHi, ACCESS_READ)) return 0;
  return loadThrough(victim.hw, mmu.out.pa, len, ATTACK_SPECTRE_V1, attackerId, out, at);
}
