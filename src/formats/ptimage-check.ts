/**
 * What a page-table capture (x86/ptimage.ts) must satisfy before anything walks it: registers of a
 * machine in 64-bit paging mode that agree with the capture's own claims, and paging structures
 * that form tables a walk can finish.
 *
 * Registers (Intel SDM Vol. 3A):
 * - 4.1.1: paging is on with CR0.PG = 1, which needs CR0.PE = 1; 4-level and 5-level paging are
 *   the IA-32e modes: CR4.PAE = 1 and IA32_EFER.LME = 1 (and, once active, EFER.LMA = 1);
 *   CR4.LA57 = 1 selects 5-level paging, so it must agree with `paging_levels`.
 * - 4.5 Table 4-12/4-13: CR3 bits M-1:12 hold the root table's address; bits 63:M are reserved
 *   (M = MAXPHYADDR), so a CR3 with them set cannot be a value the CPU held. With CR4.PCIDE = 1,
 *   bits 11:0 are the PCID. The root named by `active_root` must be the table CR3 points to.
 * - CPL is 0..3 (SDM Vol. 3A 5.5, privilege levels).
 *
 * Tables: a paging-structure page serves one level (SDM 4.5: each entry references a table of
 * the next level down), so a page reached at two levels — entries pointing back at their own
 * page or at an ancestor — is a loop and an error naming the page. A page reached at the same
 * level from several entries is Linux's own practice (arch/x86/kernel/espfix_64.c clones one
 * PMD page into 4 PUD entries and one PTE page into 512 PMD entries: the shipped captures
 * have it), so sharing is allowed; but sharing multiplies leaves, and the leaves every root
 * reaches are counted (memoised per page, linear in the capture) against LIMITS.leavesPerRoot.
 * The recursion depth is the paging depth (at most 5), whatever the input.
 */
import type { PhysMemory } from '../phys/memory.ts';
import { InputError } from './files.ts';
import { LIMITS } from './limits.ts';

const bit = (n: number): bigint => 1n << BigInt(n);
const CR0_PE = bit(0);
const CR0_PG = bit(31);
const CR4_PAE = bit(5);
const CR4_LA57 = bit(12);
const EFER_LME = bit(8);
const EFER_LMA = bit(10);

const hex = (v: bigint | number): string => `0x${v.toString(16)}`;

export interface CaptureRegs { cr0: bigint; cr3: bigint; cr4: bigint; efer: bigint }

/** The registers' sanity (rules above). Returns CR3's root table address. */
export function checkRegs(file: string, r: CaptureRegs, levels: 4 | 5, maxPhysBits: number): number {
  const need = (ok: boolean, field: string, what: string, v: bigint): void => {
    if (!ok) throw new InputError(file, `field regs.${field}: expected ${what}, found ${hex(v)}`);
  };
  need((r.cr0 & CR0_PG) !== 0n && (r.cr0 & CR0_PE) !== 0n, 'cr0', 'PG (bit 31) and PE (bit 0) set: paging on (SDM 3A 4.1.1)', r.cr0);
  need((r.cr4 & CR4_PAE) !== 0n, 'cr4', 'PAE (bit 5) set: 4- and 5-level paging need it (SDM 3A 4.1.1)', r.cr4);
  need((r.efer & EFER_LME) !== 0n && (r.efer & EFER_LMA) !== 0n, 'efer', 'LME (bit 8) and LMA (bit 10) set: IA-32e mode, the mode of 4- and 5-level paging (SDM 3A 4.1.1)', r.efer);
  const la57 = (r.cr4 & CR4_LA57) !== 0n;
  if (la57 !== (levels === 5)) {
    throw new InputError(file, `field paging_levels: ${levels}, but CR4.LA57 (bit 12) is ${la57 ? 'set (5-level paging)' : 'clear (4-level paging)'} in regs.cr4 ${hex(r.cr4)} (SDM 3A 4.1.1)`);
  }
  const reserved = ~(bit(maxPhysBits) - 1n) & ((1n << 64n) - 1n);
  need((r.cr3 & reserved) === 0n, 'cr3', `bits 63:${maxPhysBits} clear (reserved above MAXPHYADDR ${maxPhysBits}, SDM 3A 4.5)`, r.cr3);
  return Number(r.cr3 & ~0xfffn);
}

/**
 * Walk the tables under every root (rules above): a loop is an error naming the page, and so is
 * a root whose shared tables reach more than LIMITS.leavesPerRoot leaves. Returns the level of
 * every table page reached, for the caller to compare with the capture's own page_table_levels.
 */
export function checkTables(file: string, mem: PhysMemory, roots: Record<string, number>, levels: 4 | 5): Map<number, number> {
  const levelOf = new Map<number, number>();
  const firstFrom = new Map<number, string>();
  const leaves = new Map<number, number>();
  const count = (pa: number, level: number, from: string): number => {
    const seen = levelOf.get(pa);
    if (seen !== undefined) {
      if (seen !== level) {
        throw new InputError(file, `field pages["${hex(pa)}"]: a loop in the page tables: the page is a level-${seen} table (from ${firstFrom.get(pa)}) and a level-${level} table (from ${from}); a paging-structure page serves one level`);
      }
      return leaves.get(pa) ?? 0;
    }
    levelOf.set(pa, level);
    firstFrom.set(pa, from);
    const slot = mem.slot(Math.floor(pa / 4096));
    if (slot < 0) { leaves.set(pa, 0); return 0; }
    const words = mem.wordsOfSlot(slot);
    const base = mem.wordBaseOfSlot(slot);
    let n = 0;
    for (let i = 0; i < 512; i++) {
      const lo = words[base + i * 2];
      if ((lo & 1) === 0) continue; // P (SDM 4.5)
      // PS makes a PDPTE or PDE a leaf (SDM 4.5); level 1 entries always are
      if (level === 1 || (level <= 3 && (lo & 0x80) !== 0)) { n++; continue; }
      const hi = words[base + i * 2 + 1];
      const child = (hi & 0xfffff) * 4294967296 + ((lo & 0xfffff000) >>> 0);
      n += count(child, level - 1, `${hex(pa)}[${i}]`);
    }
    leaves.set(pa, n);
    return n;
  };
  for (const [name, root] of Object.entries(roots)) {
    const n = count(root, levels, `roots.${name}`);
    if (n > LIMITS.leavesPerRoot) {
      throw new InputError(file, `field roots.${name}: its tables reach ${n} leaves through shared table pages, above the ${LIMITS.leavesPerRoot} kasi walks for one root`);
    }
  }
  return levelOf;
}
