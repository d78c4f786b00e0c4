/**
 * Enumerate every present leaf reachable from a root, in walk order — the order QEMU's
 * `info tlb` prints them and the order dump_pagetables visits them.
 *
 * Present means P=1 at every level; reserved bits are not checked here (QEMU's listing
 * does not check them either), so a leaf listed here may still fault when accessed.
 * PS is honoured in PDPTEs and PDEs only: in a PML5E/PML4E it is reserved (SDM 4.5).
 *
 * A paging-structure page serves one level (SDM 4.5: an entry references a table of the next
 * level down): a page reached at two levels — an entry pointing back at its own table or at an
 * ancestor — is a loop, and the walk stops with a TableLoopError naming the page instead of
 * enumerating 512^levels leaves. The same page at the same level from several entries is
 * Linux's own sharing (arch/x86/kernel/espfix_64.c) and is walked each time. Captures are
 * checked when they are read (formats/ptimage-check.ts); here it guards every other caller. The
 * recursion depth is the paging depth.
 */
import type { PhysMemory } from '../phys/memory.ts';
import {
  PDE_2M_ADDR_LO_MASK, PDPTE_1G_ADDR_LO_MASK, PTE_ADDR_LO_MASK, PTE_HI_ADDR_MASK, PTE_HI_XD,
  PTE_P, PTE_PS, PTE_RW, PTE_US,
} from './bits.ts';

const TWO32 = 4294967296;

/**
 * Called once per leaf. `vaLo`/`vaHi` are the canonical (sign-extended) address halves;
 * `pa` is the frame address for the leaf's size; `lo`/`hi` the leaf entry's own bits;
 * `user`/`writable`/`xd` the rights folded over all levels (XD as written, before NXE).
 * `path` holds the physical addresses of the entries used, by level.
 */
export type LeafVisitor = (
  vaLo: number, vaHi: number, pageShift: number, pa: number,
  lo: number, hi: number, level: number,
  user: boolean, writable: boolean, xd: boolean,
) => void;

/** A page-table page reached at two levels of one walk. */
export class TableLoopError extends Error {
  constructor(readonly table: number, readonly levels: readonly [number, number]) {
    super(`page-table loop: the page at 0x${table.toString(16)} is reached as a level-${levels[0]} and a level-${levels[1]} table`);
    this.name = 'TableLoopError';
  }
}

export function forEachLeaf(mem: PhysMemory, root: number, levels: 4 | 5, visit: LeafVisitor): void {
  walkTable(mem, root, levels, levels, 0, 0, PTE_US | PTE_RW, 0, visit, new Map());
}

function walkTable(
  mem: PhysMemory, table: number, level: number, levels: number,
  baseLo: number, baseHi: number, fold: number, xd: number, visit: LeafVisitor, levelOf: Map<number, number>,
): void {
  const seen = levelOf.get(table);
  if (seen === undefined) levelOf.set(table, level);
  else if (seen !== level) throw new TableLoopError(table, [seen, level]);
  const slot = mem.slot(Math.floor(table / 4096));
  if (slot < 0) return;
  const words = mem.wordsOfSlot(slot);
  const base = mem.wordBaseOfSlot(slot);
  for (let i = 0; i < 512; i++) {
    const lo = words[base + i * 2];
    if ((lo & PTE_P) === 0) continue;
    const hi = words[base + i * 2 + 1];
    let vaLo = baseLo;
    let vaHi = baseHi;
    switch (level) {
      case 5: vaHi = (vaHi | (i << 16)) >>> 0; break;
      case 4: vaHi = (vaHi | (i << 7)) >>> 0; break;
      case 3: vaHi = (vaHi | (i >>> 2)) >>> 0; vaLo = (vaLo | ((i & 3) << 30)) >>> 0; break;
      case 2: vaLo = (vaLo | (i << 21)) >>> 0; break;
      default: vaLo = (vaLo | (i << 12)) >>> 0; break;
    }
    if (level === levels) {
      // Sign-extend from bit 47 (4-level) or bit 56 (5-level).
      const signBit = levels === 5 ? 0x01000000 : 0x00008000;
      if (vaHi & signBit) vaHi = (vaHi | (levels === 5 ? 0xfe000000 : 0xffff0000)) >>> 0;
    }
    const f = fold & lo;
    const x = xd | hi;
    const isLeaf = level === 1 || (level <= 3 && (lo & PTE_PS) !== 0);
    const addrHi = (hi & PTE_HI_ADDR_MASK) * TWO32;
    if (isLeaf) {
      const mask = level === 1 ? PTE_ADDR_LO_MASK : level === 2 ? PDE_2M_ADDR_LO_MASK : PDPTE_1G_ADDR_LO_MASK;
      visit(vaLo, vaHi, level === 1 ? 12 : level === 2 ? 21 : 30, addrHi + ((lo & mask) >>> 0), lo, hi, level,
        (f & PTE_US) !== 0, (f & PTE_RW) !== 0, (x & PTE_HI_XD) !== 0);
    } else {
      walkTable(mem, addrHi + ((lo & PTE_ADDR_LO_MASK) >>> 0), level - 1, levels, vaLo, vaHi, f, x, visit, levelOf);
    }
  }
}

/** A canonical VA from halves as 16 hex digits (the form QEMU and the kernel print). */
export function hex16(lo: number, hi: number): string {
  return (hi >>> 0).toString(16).padStart(8, '0') + (lo >>> 0).toString(16).padStart(8, '0');
}

/** A Number < 2^53 as 16 hex digits. */
export function hexNum16(n: number): string {
  return n.toString(16).padStart(16, '0');
}
