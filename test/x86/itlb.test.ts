// A split first level (Mmu.splitFetch): fetches fill the instruction TLB, data the data TLB, and
// every invalidation on either side reaches every TLB of the thread (SDM Vol. 3A 4.10.2.3, 4.10.4.1).
// The truth is the walker: a translation that a missing invalidation left stale gives the old frame.
import { describe, expect, it } from 'vitest';
import { PhysMemory } from '../../src/phys/memory.ts';
import { CpuState } from '../../src/x86/cpu.ts';
import { Mmu } from '../../src/x86/mmu.ts';
import { Translation, translate, vaHalves } from '../../src/x86/walk.ts';
import { ACCESS_FETCH, ACCESS_READ, CR4_PAE, CR4_PCIDE, CR4_PGE, PTE_A, PTE_P, PTE_RW } from '../../src/x86/bits.ts';
import { PageTables, SIZE_4K } from '../../src/x86/pgtable.ts';
import { itlbGeometry } from '../../src/sim/thread.ts';
import { getProfile } from '../../src/uarch/profiles.ts';

const STLB = { sets4K: 128, ways4K: 12, sets2M: 128, ways2M: 12, sets1G: 4, ways1G: 4 };
const ITLB = { sets4K: 8, ways4K: 8, sets2M: 1, ways2M: 8, sets1G: 1, ways1G: 4 };
const L2I = { sets4K: 32, ways4K: 8, sets2M: 32, ways2M: 8, sets1G: 1, ways1G: 4 };
const VA = 0xffffffff81000000n;

function setup(l2: object | null) {
  const mem = new PhysMemory(46);
  let next = 0x100000n;
  const pt = new PageTables(mem, 4, () => { const p = next; next += 4096n; return p; });
  for (let i = 0; i < 32; i++) pt.mapPage(VA + BigInt(i) * SIZE_4K, 0x10000000n + BigInt(i) * SIZE_4K, SIZE_4K, BigInt(PTE_P | PTE_RW | PTE_A));
  const cpu = new CpuState(46).load({ cr0: 0x80050033, cr4: CR4_PAE | CR4_PGE | CR4_PCIDE, efer: 0xd01, cr3: pt.root | 1n });
  const mmu = new Mmu(cpu, mem, {}, STLB);
  const fetch = mmu.splitFetch(ITLB, l2 as never);
  return { mem, cpu, pt, mmu, fetch };
}

const at = (i: number) => vaHalves(VA + BigInt(i) * SIZE_4K);

function check(m: ReturnType<typeof setup>, side: Mmu, i: number, access: number): void {
  const { lo, hi } = at(i);
  const ref = new Translation();
  expect(side.translate(lo, hi, access)).toBe(true);
  expect(translate(m.mem, m.cpu, lo, hi, access, ref)).toBe(true);
  expect(side.out.pa).toBe(ref.pa);
}

describe('split instruction and data TLBs', () => {
  it('a fetch fills the ITLB, not the DTLB: a data read of the page then comes from the shared STLB (Intel) or walks (own L2 ITLB)', () => {
    const intel = setup(null);
    check(intel, intel.fetch, 0, ACCESS_FETCH);
    expect([intel.fetch.walks, intel.mmu.walks]).toEqual([1, 0]);
    check(intel, intel.mmu, 0, ACCESS_READ);
    expect([intel.mmu.walks, intel.mmu.stlbHits]).toEqual([0, 1]);
    check(intel, intel.fetch, 0, ACCESS_FETCH); // still in the ITLB
    expect(intel.fetch.walks + intel.fetch.stlbHits).toBe(1);
    const amd = setup(L2I);
    check(amd, amd.fetch, 0, ACCESS_FETCH);
    check(amd, amd.mmu, 0, ACCESS_READ);
    expect([amd.mmu.walks, amd.mmu.stlbHits]).toEqual([1, 0]);
    expect(amd.mmu.allWalks).toBe(2);
  });

  it('code does not evict data: 16 code pages stay in the ITLB while 32 data pages pass the DTLB', () => {
    const m = setup(null);
    for (let i = 0; i < 16; i++) check(m, m.fetch, i, ACCESS_FETCH);
    for (let i = 0; i < 32; i++) check(m, m.mmu, i, ACCESS_READ);
    const w = m.fetch.walks + m.fetch.stlbHits;
    for (let i = 0; i < 16; i++) check(m, m.fetch, i, ACCESS_FETCH);
    expect(m.fetch.walks + m.fetch.stlbHits).toBe(w);
  });

  for (const l2 of [null, L2I]) {
    it(`INVLPG, INVPCID and flushing CR3 writes on the data side reach the ITLB${l2 ? ' and its own second level' : ''}: a remapped page is never fetched stale`, () => {
      const m = setup(l2);
      const remap = (i: number, frame: bigint) => m.pt.mapPage(VA + BigInt(i) * SIZE_4K, frame, SIZE_4K, BigInt(PTE_P | PTE_RW | PTE_A));
      for (let i = 0; i < 4; i++) check(m, m.fetch, i, ACCESS_FETCH);
      remap(0, 0x30000000n);
      const a0 = at(0);
      expect(m.mmu.invlpg(a0.lo, a0.hi)).toBe(0);
      check(m, m.fetch, 0, ACCESS_FETCH); // the walker says the new frame
      remap(1, 0x30001000n);
      const a1 = at(1);
      expect(m.mmu.invpcid(0, 1, a1.lo, a1.hi)).toBe(0);
      check(m, m.fetch, 1, ACCESS_FETCH);
      remap(2, 0x30002000n);
      expect(m.mmu.writeCr3(Number(m.pt.root) | 1, 0)).toBe(0);
      check(m, m.fetch, 2, ACCESS_FETCH);
    });
  }

  it('the profiles split the core\'s ITLB between its threads; qemu-max has none', () => {
    for (const name of ['skylake-sp', 'sapphire-rapids', 'zen3']) {
      const p = getProfile(name);
      for (const tpc of [1, 2]) {
        const g = itlbGeometry(p, tpc)!;
        expect(g.l1.sets4K! * g.l1.ways4K! * tpc).toBe(p.itlb4KEntries);
        expect((g.l2 === null) === (p.l2ItlbEntries === 0)).toBe(true);
      }
    }
    expect(itlbGeometry(getProfile('qemu-max'), 1)).toBeNull();
  });
});
