// More of SDM Vol. 3A 4.10.3-4.10.4 in the paging-structure caches (x86/pwc.ts), beyond
// test/x86/pwc.test.ts: which entries a walk makes (none at a 2 MiB leaf's level, none above the
// cached entry it started from), the PCIDE=0 and MOV-to-CR4 invalidations, the PML5E tag, and the
// walks the Mmu makes besides a plain miss (the D-bit re-walk, an STLB hit).
import { describe, expect, it } from 'vitest';
import { PhysMemory } from '../../src/phys/memory.ts';
import { CpuState } from '../../src/x86/cpu.ts';
import { Mmu } from '../../src/x86/mmu.ts';
import { PWC_GEOMETRY } from '../../src/x86/pwc.ts';
import { vaHalves } from '../../src/x86/walk.ts';
import { ACCESS_READ, ACCESS_WRITE, CR4_LA57, CR4_PAE, CR4_PCIDE, CR4_PGE, CR4_SMEP, PTE_A, PTE_P, PTE_RW, PTE_US } from '../../src/x86/bits.ts';
import { PageTables, SIZE_1G, SIZE_2M, SIZE_4K } from '../../src/x86/pgtable.ts';

const USER = 0x7f0000000000n;
const FLAGS = BigInt(PTE_P | PTE_RW | PTE_A | PTE_US); // D clear: a write re-walks

function setup(o: { levels?: 4 | 5; pcide?: boolean; stlb?: boolean; extra?: bigint[] } = {}) {
  const levels = o.levels ?? 4;
  const mem = new PhysMemory(46);
  let next = 0x100000n;
  const pt = new PageTables(mem, levels, () => { const p = next; next += 4096n; return p; });
  for (let i = 0; i < 8; i++) pt.mapPage(USER + BigInt(i) * SIZE_4K, 0x10000000n + BigInt(i) * SIZE_4K, SIZE_4K, FLAGS);
  pt.mapPage(USER + (100n << 21n), 0x14000000n, SIZE_2M, FLAGS);
  pt.mapPage(USER + (101n << 21n), 0x14200000n, SIZE_2M, FLAGS);
  for (const [i, va] of (o.extra ?? []).entries()) pt.mapPage(va, 0x18000000n + BigInt(i) * SIZE_4K, SIZE_4K, FLAGS);
  const cr4 = CR4_PAE | CR4_PGE | (o.pcide === false ? 0 : CR4_PCIDE) | (levels === 5 ? CR4_LA57 : 0);
  const cpu = new CpuState(46).load({ cr0: 0x80050033, cr4, efer: 0xd01, cr3: pt.root | (o.pcide === false ? 0n : 1n) });
  const mmu = new Mmu(cpu, mem, {}, o.stlb ? { sets4K: 128, ways4K: 12, sets2M: 128, ways2M: 12, sets1G: 4, ways1G: 4 } : null, PWC_GEOMETRY);
  return { mmu, root: Number(pt.root) };
}
function touch(m: ReturnType<typeof setup>, va: bigint, access = ACCESS_READ): [number, number] {
  const w0 = m.mmu.walks, u0 = m.mmu.upperLoads;
  const { lo, hi } = vaHalves(va);
  m.mmu.translate(lo, hi, access);
  return [m.mmu.walks - w0, m.mmu.upperLoads - u0];
}
const page = (i: number) => USER + BigInt(i) * SIZE_4K;

describe('paging-structure caches: more of the SDM', () => {
  it('a 2 MiB leaf makes no PDE-cache entry (occupancy)', () => {
    const m = setup();
    touch(m, USER + (100n << 21n));
    touch(m, USER + (101n << 21n));
    expect(m.mmu.pwc!.occupancy()).toEqual([0, 1, 1, 0]);
  });

  it('a cold faulting walk pays the upper levels it loaded', () => {
    const m = setup();
    expect(touch(m, page(9))).toEqual([1, 3]); // not present at the PTE, nothing cached
  });

  it('PCIDE=0: every MOV to CR3 empties PCID 0\'s caches', () => {
    const m = setup({ pcide: false });
    touch(m, page(0));
    expect(m.mmu.writeCr3(m.root, 0)).toBe(0);
    expect(touch(m, page(1))).toEqual([1, 3]);
  });

  it('MOV to CR4: PGE change empties every PCID\'s, SMEP 0->1 the current PCID\'s', () => {
    const m = setup();
    touch(m, page(0));
    const cr4 = m.mmu.cpu.cr4 >>> 0;
    expect(m.mmu.writeCr4(cr4 & ~CR4_PGE)).toBe(0);
    expect(touch(m, page(1))).toEqual([1, 3]);
    expect(m.mmu.writeCr4(cr4 & ~CR4_PGE | CR4_SMEP)).toBe(0);
    expect(touch(m, page(2))).toEqual([1, 3]);
  });

  it('5-level: one PML5E-cache entry covers 256 TiB (bit 47 is below its tag)', () => {
    const far = USER + (1n << 47n);
    const m = setup({ levels: 5, extra: [far] });
    touch(m, page(0));
    expect(touch(m, far)).toEqual([1, 3]);
  });

  it('the D-bit re-walk is one walk, priced by the caches like any other', () => {
    const m = setup();
    expect(touch(m, page(0))).toEqual([1, 3]);
    expect(touch(m, page(0), ACCESS_WRITE)).toEqual([1, 0]);
    touch(m, page(1));
    const { lo, hi } = vaHalves(page(5));
    m.mmu.invlpg(lo, hi); // empties the caches, keeps page(1)'s TLB entry
    expect(touch(m, page(1), ACCESS_WRITE)).toEqual([1, 3]);
  });

  it('an STLB hit loads nothing; a walk after the STLB misses is counted once', () => {
    const m = setup({ stlb: true });
    expect(touch(m, page(0))).toEqual([1, 3]);
    m.mmu.tlb.flushAll(); // the first level only
    expect(touch(m, page(0))).toEqual([0, 0]); // STLB hit
  });

  // A walk that starts from a PDE-cache entry reads no PDPTE or PML4E: it makes no entry there.
  it('a PDE-cache hit does not re-create an evicted PDPTE-cache entry', () => {
    const mem = new PhysMemory(46);
    let next = 0x100000n;
    const pt = new PageTables(mem, 4, () => { const p = next; next += 4096n; return p; });
    // G0 = USER's 1 GiB: two pages in 2 MiB region 0, one in region 1; four other 1 GiB regions
    // Gi, each touched in 2 MiB region i + 1 (another PDE-cache set than region 0's).
    const g = (i: number, r: number, p = 0) => USER + BigInt(i) * SIZE_1G + BigInt(r) * SIZE_2M + BigInt(p) * SIZE_4K;
    const vas = [g(0, 0, 0), g(0, 0, 1), g(0, 1), ...[1, 2, 3, 4].map((i) => g(i, i + 1))];
    vas.forEach((va, n) => pt.mapPage(va, 0x10000000n + BigInt(n) * SIZE_4K, SIZE_4K, FLAGS));
    const cpu = new CpuState(46).load({ cr0: 0x80050033, cr4: CR4_PAE | CR4_PGE | CR4_PCIDE, efer: 0xd01, cr3: pt.root | 1n });
    const mmu = new Mmu(cpu, mem, {}, null, PWC_GEOMETRY);
    const touch = (va: bigint) => { const u0 = mmu.upperLoads; const { lo, hi } = vaHalves(va); expect(mmu.translate(lo, hi, ACCESS_READ)).toBe(true); return mmu.upperLoads - u0; };
    expect(touch(g(0, 0, 0))).toBe(3);
    for (const i of [1, 2, 3, 4]) expect(touch(g(i, i + 1))).toBe(2); // PML4E hit; 4 PDPTE entries: G0's is evicted
    expect(touch(g(0, 0, 1))).toBe(0); // PDE-cache hit: no PDPTE read
    // G0's PDPTE was never read again: the walk of region 1 starts from the PML4E cache (2 loads).
    expect(touch(g(0, 1))).toBe(2);
  });
});
