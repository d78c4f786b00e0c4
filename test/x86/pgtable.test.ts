// The page-table builder checked through the walker (independent code: walk.ts reads the
// entries the builder wrote, by the SDM's rules) and through QEMU-format leaf listing.
import { describe, expect, it } from 'vitest';
import { PhysMemory } from '../../src/phys/memory.ts';
import { CpuState } from '../../src/x86/cpu.ts';
import { Translation, translate, vaHalves } from '../../src/x86/walk.ts';
import { forEachLeaf } from '../../src/x86/leaves.ts';
import { ACCESS_READ, ACCESS_WRITE, CR4_LA57, CR4_PAE, PFEC_P, PFEC_W, PTE_A, PTE_D, PTE_G, PTE_P, PTE_RW } from '../../src/x86/bits.ts';
import { PageTables, SIZE_1G, SIZE_2M, SIZE_4K } from '../../src/x86/pgtable.ts';

function setup(levels: 4 | 5) {
  const mem = new PhysMemory(46);
  let next = 0x100000n;
  const pt = new PageTables(mem, levels, () => { const p = next; next += 4096n; return p; });
  const cpu = new CpuState(46);
  cpu.load({ cr3: pt.root, cr4: CR4_PAE | (levels === 5 ? CR4_LA57 : 0) });
  return { mem, pt, cpu };
}

const KERNEL_RW_NX = BigInt(PTE_P | PTE_RW | PTE_A | PTE_D | PTE_G) | (1n << 63n);

describe('PageTables builder', () => {
  for (const levels of [4, 5] as const) {
    it(`maps a range with the largest aligned pages and the walker agrees (${levels}-level)`, () => {
      const { mem, pt, cpu } = setup(levels);
      const va = 0xffff888000000000n + 0x3ff000n; // starts 4 KiB below a 2 MiB boundary
      const pa = 0x3ff000n;
      const len = SIZE_1G * 2n + SIZE_2M * 3n + 0x5000n;
      const counts = pt.mapRange(va, pa, len, KERNEL_RW_NX);
      // 0x3ff000 -> 4K up to 0x400000 (1 page), then 2M pages up to 1G, then 1G pages...
      expect(counts.get(SIZE_4K)).toBeGreaterThan(0);
      expect(counts.get(SIZE_2M)).toBeGreaterThan(0);
      expect(counts.get(SIZE_1G)).toBe(1);
      const out = new Translation();
      for (let off = 0n; off < len; off += 0x1234567n) {
        const h = vaHalves(va + off);
        expect(translate(mem, cpu, h.lo, h.hi, ACCESS_READ, out)).toBe(true);
        expect(BigInt(out.pa)).toBe(pa + off);
        expect(out.executeDisable).toBe(true);
      }
      let covered = 0n;
      forEachLeaf(mem, Number(pt.root), levels, (_lo, _hi, shift) => { covered += 1n << BigInt(shift); });
      expect(covered).toBe(len);
    });
  }

  it('splits a 2 MiB leaf into 512 PTEs that translate the same, moving PAT from bit 12 to bit 7', () => {
    const { mem, pt, cpu } = setup(4);
    const va = 0xffff888000200000n;
    pt.mapPage(va, 0x200000n, SIZE_2M, KERNEL_RW_NX | (1n << 12n)); // PAT set on the large leaf
    pt.splitTo(va + 0x5000n, SIZE_4K);
    expect(pt.stats.splits).toBe(1);
    const e = pt.findEntry(va + 0x5000n, 1);
    expect(e).not.toBeNull();
    expect(e!.value & (1n << 7n)).toBe(1n << 7n); // PAT in a 4 KiB PTE (SDM table 4-20)
    expect(e!.value & 0x000ffffffffff000n).toBe(0x205000n);
    const out = new Translation();
    const h = vaHalves(va + 0x1fffffn);
    expect(translate(mem, cpu, h.lo, h.hi, ACCESS_READ, out)).toBe(true);
    expect(out.pageShift).toBe(12);
    expect(out.pa).toBe(0x3fffff);
  });

  it('read-only page inside a split range faults on a supervisor write with CR0.WP=1', () => {
    const { mem, pt, cpu } = setup(4);
    const va = 0xffff888000400000n;
    pt.mapPage(va, 0x400000n, SIZE_2M, KERNEL_RW_NX);
    pt.splitTo(va + 0x3000n, SIZE_4K);
    const e = pt.findEntry(va + 0x3000n, 1)!;
    pt.write(e.addr, e.value & ~BigInt(PTE_RW));
    const out = new Translation();
    const h = vaHalves(va + 0x3008n);
    expect(translate(mem, cpu, h.lo, h.hi, ACCESS_WRITE, out)).toBe(false);
    expect(out.errorCode).toBe(PFEC_P | PFEC_W);
    const h2 = vaHalves(va + 0x4008n);
    expect(translate(mem, cpu, h2.lo, h2.hi, ACCESS_WRITE, out)).toBe(true);
  });

  it('refuses unaligned large mappings', () => {
    const { pt } = setup(4);
    expect(() => pt.mapPage(0xffff888000001000n, 0x1000n, SIZE_2M, KERNEL_RW_NX)).toThrow(RangeError);
  });
});
