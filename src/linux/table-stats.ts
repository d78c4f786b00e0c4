/**
 * Paging-structure pages of a booted kernel model, counted per root and attributed to the
 * layout region of the first address each one maps (as `kasi kernel` reports them).
 */
import { PTE_PFN_MASK } from './cpa.ts';
import type { KernelModel } from './kernel.ts';

/** Count the paging-structure pages under each root, attributed to the region of the first address each maps. */
export function tableStats(model: KernelModel): void {
  const seen = new Set<number>();
  const walk = (root: number, out: Record<string, number>) => {
    const mine = new Set<number>();
    const visit = (table: number, level: number, base: bigint) => {
      if (mine.has(table)) return; // shared below several entries (ESPFIX clones)
      mine.add(table);
      const region = level === model.levels ? 'root' : model.layout.regionOf(base).id;
      out[region] = (out[region] ?? 0) + 1;
      seen.add(table);
      if (level === 1) return;
      const w = model.mem.frameWords(Math.floor(table / 4096));
      const shift = BigInt(12 + 9 * (level - 1));
      for (let i = 0; i < 512; i++) {
        const lo = w[i * 2];
        if ((lo & 1) === 0 || (level <= 3 && (lo & 0x80) !== 0)) continue;
        let va = base + (BigInt(i) << shift);
        if (level === model.levels && i >= 256) va |= model.levels === 5 ? 0xfe00000000000000n : 0xffff000000000000n;
        const next = Number(((BigInt(w[i * 2 + 1]) << 32n) | BigInt(lo)) & PTE_PFN_MASK);
        visit(next, level - 1, va);
      }
    };
    visit(root, model.levels, 0n);
  };
  walk(model.kernelRoot, model.stats.tables.kernel);
  if (model.userRoot !== null) walk(model.userRoot, model.stats.tables.user);
  model.stats.tablePages = seen.size;
  model.stats.tableBytes = seen.size * 4096;
}
