/**
 * A return-oriented chain in a system call (the example of the System Call Isolation RFC, lore
 * 1556228754-12996-1: "an attacker … could use ROP gadgets …; with SCI the access to the
 * gadget's page would fault, and the fault handler refuses a jump into the middle of a function").
 *
 * Whether the chain gets to run is decided by the caller: under SCI the first gadget's fetch
 * (an address in the middle of a function) goes to sci_verify_code_access() and is refused
 * (sim/attackers.ts); without SCI nothing checks it. A chain that runs executes architectural
 * kernel loads chosen by the attacker, at CPL 0 on the tables of the system call it hijacked:
 * this primitive performs one such load of `len` bytes at `va` and hands the bytes to the
 * attacker (a copy_to_user of its choice; the copy itself is not modelled).
 */
import { ACCESS_READ } from '../x86/bits.ts';
import { ATTACK_ROP, type AttackThread, type Samples } from './sample.ts';
import { checkPageRange, loadThrough } from './read.ts';

/** The hijacked syscall reads `len` bytes (within one page) at `va` through `victim`'s tables. Returns the bytes obtained. */
export function ropRead(victim: AttackThread, vaLo: number, vaHi: number, len: number, out: Samples, at: number, attackerId = victim.hw.id): number {
  checkPageRange('rop', vaLo, len);
  const mmu = victim.mmu;
  if (!mmu.translate(vaLo, vaHi, ACCESS_READ)) return 0;
  return loadThrough(victim.hw, mmu.out.pa, len, ATTACK_ROP, attackerId, out, at);
}
