/**
 * QEMU's `info tlb` listing (target/i386/monitor.c, print_pte): one line per present leaf in
 * walk order, `VA: PA FLAGS`, 16 hex digits each, with the leaf entry's own bits as flags.
 * Also the same leaves as JSON lines for `kasi mappings --json`.
 *
 * Output is built in chunks of joined lines so a 70k-leaf listing costs a few string joins,
 * not one write per line.
 */
import type { PhysMemory } from '../phys/memory.ts';
import { forEachLeaf, hex16, hexNum16 } from '../x86/leaves.ts';

const CHUNK_LINES = 8192;

/**
 * The FLAGS column (monitor.c print_pte): X = XD (bit 63), G = 8, P = PS (7), D = 6, A = 5,
 * C = PCD (4), T = PWT (3), U = 2, W = 1. In a 4 KiB PTE bit 7 is PAT, not PS: QEMU clears
 * PG_PSE_MASK before printing a PTE, so P shows only for PDPTE/PDE leaves.
 */
export function tlbFlags(lo: number, hi: number, level: number): string {
  return (hi & 0x80000000 ? 'X' : '-') + (lo & 0x100 ? 'G' : '-') + (level > 1 && lo & 0x80 ? 'P' : '-')
    + (lo & 0x40 ? 'D' : '-') + (lo & 0x20 ? 'A' : '-') + (lo & 0x10 ? 'C' : '-') + (lo & 8 ? 'T' : '-')
    + (lo & 4 ? 'U' : '-') + (lo & 2 ? 'W' : '-');
}

/** Every present leaf under `root` as QEMU `info tlb` text (LF line ends), in chunks. */
export function infoTlbChunks(mem: PhysMemory, root: number, levels: 4 | 5): string[] {
  const chunks: string[] = [];
  let lines: string[] = [];
  forEachLeaf(mem, root, levels, (vaLo, vaHi, _shift, pa, lo, hi, level) => {
    lines.push(`${hex16(vaLo, vaHi)}: ${hexNum16(pa)} ${tlbFlags(lo, hi, level)}`);
    if (lines.length === CHUNK_LINES) {
      chunks.push(lines.join('\n') + '\n');
      lines = [];
    }
  });
  if (lines.length) chunks.push(lines.join('\n') + '\n');
  return chunks;
}

/** The whole listing as one string. */
export function infoTlbText(mem: PhysMemory, root: number, levels: 4 | 5): string {
  return infoTlbChunks(mem, root, levels).join('');
}

/** The same leaves as JSON lines: {"va":"0x…","pa":"0x…","size":4096,"flags":"X---A--U-"}. */
export function mappingsJsonChunks(mem: PhysMemory, root: number, levels: 4 | 5): string[] {
  const chunks: string[] = [];
  let lines: string[] = [];
  forEachLeaf(mem, root, levels, (vaLo, vaHi, shift, pa, lo, hi, level) => {
    lines.push(`{"va":"0x${hex16(vaLo, vaHi)}","pa":"0x${hexNum16(pa)}","size":${2 ** shift},"flags":"${tlbFlags(lo, hi, level)}"}`);
    if (lines.length === CHUNK_LINES) {
      chunks.push(lines.join('\n') + '\n');
      lines = [];
    }
  });
  if (lines.length) chunks.push(lines.join('\n') + '\n');
  return chunks;
}
