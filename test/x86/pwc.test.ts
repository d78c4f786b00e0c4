// The paging-structure caches (x86/pwc.ts) as the Mmu uses them: how many upper-level entries a
// walk loads (Mmu.upperLoads), and what each instruction of SDM Vol. 3A 4.10.4.1 leaves in them.
// The truth is the SDM's structure: a walk loads levels - leaf entries above its leaf with nothing
// cached (3 for a 4 KiB page under 4-level paging, 4 under 5-level), none when the entry above its
// leaf is cached; the scopes are 4.10.4.1's, which differ from the TLB's (INVLPG empties the
// PCID's caches, globals do not exist there). The walker still checks every translation.
import { describe, expect, it } from 'vitest';
import { PhysMemory } from '../../src/phys/memory.ts';
import { CpuState } from '../../src/x86/cpu.ts';
import { Mmu } from '../../src/x86/mmu.ts';
import { PagingStructureCache, PWC_GEOMETRY } from '../../src/x86/pwc.ts';
import { Translation, translate, vaHalves } from '../../src/x86/walk.ts';
import { ACCESS_READ, CR3_NOFLUSH_HI, CR4_LA57, CR4_PAE, CR4_PCIDE, CR4_PGE, PTE_A, PTE_G, PTE_P, PTE_RW, PTE_US } from '../../src/x86/bits.ts';
import { PageTables, SIZE_2M, SIZE_4K } from '../../src/x86/pgtable.ts';

const USER = 0x7f0000000000n;
const KERNEL = 0xffffc90000000000n;
const FLAGS = BigInt(PTE_P | PTE_RW | PTE_A | PTE_US);

function setup(levels: 4 | 5 = 4, pwc = true) {
  const mem = new PhysMemory(46);
  let next = 0x100000n;
  const pt = new PageTables(mem, levels, () => { const p = next; next += 4096n; return p; });
  // 8 pages in one page table, one page in each of 40 other 2 MiB regions of the same 1 GiB,
  // a page in another 1 GiB and in another 512 GiB, a 2 MiB page, and global kernel pages.
  for (let i = 0; i < 8; i++) pt.mapPage(USER + BigInt(i) * SIZE_4K, 0x10000000n + BigInt(i) * SIZE_4K, SIZE_4K, FLAGS);
  for (let r = 1; r <= 40; r++) pt.mapPage(USER + BigInt(r) * SIZE_2M, 0x11000000n + BigInt(r) * SIZE_4K, SIZE_4K, FLAGS);
  pt.mapPage(USER + (1n << 30n), 0x12000000n, SIZE_4K, FLAGS);
  pt.mapPage(USER + (1n << 39n), 0x12001000n, SIZE_4K, FLAGS);
  pt.mapPage(USER + (100n << 21n), 0x14000000n, SIZE_2M, FLAGS);
  pt.mapPage(USER + (101n << 21n), 0x14200000n, SIZE_2M, FLAGS);
  for (let i = 0; i < 4; i++) pt.mapPage(KERNEL + BigInt(i) * SIZE_4K, 0x20000000n + BigInt(i) * SIZE_4K, SIZE_4K, BigInt(PTE_P | PTE_RW | PTE_A | PTE_G));
  const cr4 = CR4_PAE | CR4_PGE | CR4_PCIDE | (levels === 5 ? CR4_LA57 : 0);
  const cpu = new CpuState(46).load({ cr0: 0x80050033, cr4, efer: 0xd01, cr3: pt.root | 1n });
  return { mem, cpu, mmu: new Mmu(cpu, mem, {}, null, pwc ? PWC_GEOMETRY : null), root: Number(pt.root) };
}

/** Translate `va` (checked against the walker); returns [walks, upper-level loads] it took. */
function touch(m: ReturnType<typeof setup>, va: bigint): [number, number] {
  const w0 = m.mmu.walks;
  const u0 = m.mmu.upperLoads;
  const { lo, hi } = vaHalves(va + 0x40n);
  expect(m.mmu.translate(lo, hi, ACCESS_READ)).toBe(true);
  const ref = new Translation();
  expect(translate(m.mem, m.cpu, lo, hi, ACCESS_READ, ref)).toBe(true);
  expect(m.mmu.out.pa).toBe(ref.pa);
  return [m.mmu.walks - w0, m.mmu.upperLoads - u0];
}
const page = (i: number) => USER + BigInt(i) * SIZE_4K;

describe('paging-structure caches', () => {
  it('a walk loads what no cache holds above its leaf: 3 cold, 0 in a cached page table, 1 in a cached 1 GiB, 2 in a cached 512 GiB', () => {
    const m = setup();
    expect(touch(m, page(0))).toEqual([1, 3]);
    expect(touch(m, page(1))).toEqual([1, 0]); // the PDE cache names its page table
    expect(touch(m, USER + SIZE_2M)).toEqual([1, 1]); // PDPTE cache: load the PDE, then the PTE
    expect(touch(m, USER + (1n << 30n))).toEqual([1, 2]); // PML4E cache: PDPTE, PDE
    expect(touch(m, USER + (1n << 39n))).toEqual([1, 3]); // nothing cached in that 512 GiB
  });

  it('a 2 MiB leaf makes no PDE-cache entry, and uses the PDPTE cache', () => {
    const m = setup();
    expect(touch(m, USER + (100n << 21n))).toEqual([1, 2]);
    expect(touch(m, USER + (101n << 21n))).toEqual([1, 0]);
    // The PDE of the 2 MiB page is not a PDE-cache entry: a 4 KiB page elsewhere in the same
    // 1 GiB starts at the PDE (1 upper load), it does not reuse the 2 MiB region's.
    expect(touch(m, USER + 2n * SIZE_2M)).toEqual([1, 1]);
  });

  it('5-level paging loads one more level cold', () => {
    const m = setup(5);
    expect(touch(m, page(0))).toEqual([1, 4]);
    expect(touch(m, page(1))).toEqual([1, 0]);
    expect(touch(m, USER + (1n << 39n))).toEqual([1, 3]); // PML5E cache: PML4E, PDPTE, PDE
  });

  it('without paging-structure caches every walk loads every level', () => {
    const m = setup(4, false);
    expect(touch(m, page(0))).toEqual([1, 3]);
    expect(touch(m, page(1))).toEqual([1, 3]);
    expect(touch(m, USER + (101n << 21n))).toEqual([1, 2]);
  });

  it('MOV to CR3 with NOFLUSH keeps them; without, the new PCID\'s entries go, other PCIDs\' stay', () => {
    const m = setup();
    touch(m, page(0));
    expect(m.mmu.writeCr3(m.root | 1, CR3_NOFLUSH_HI)).toBe(0);
    expect(touch(m, page(1))).toEqual([1, 0]);
    expect(m.mmu.writeCr3(m.root | 2, 0)).toBe(0); // PCID 2: its own caches are empty
    expect(touch(m, page(2))).toEqual([1, 3]);
    expect(m.mmu.writeCr3(m.root | 1, CR3_NOFLUSH_HI)).toBe(0); // back to PCID 1 unflushed
    expect(touch(m, page(3))).toEqual([1, 0]);
    expect(m.mmu.writeCr3(m.root | 1, 0)).toBe(0); // PCID 1 flushed
    expect(touch(m, page(4))).toEqual([1, 3]);
  });

  it('a flushing CR3 write leaves global TLB entries but no paging-structure-cache entry', () => {
    const m = setup();
    expect(touch(m, KERNEL)).toEqual([1, 3]);
    expect(m.mmu.writeCr3(m.root | 1, 0)).toBe(0);
    expect(touch(m, KERNEL)).toEqual([0, 0]); // the global TLB entry
    expect(touch(m, KERNEL + SIZE_4K)).toEqual([1, 3]); // its page table's PDE-cache entry is gone
  });

  it('INVLPG of any address empties the current PCID\'s caches; INVPCID type 0 only what that address uses', () => {
    const m = setup();
    touch(m, page(0));
    touch(m, USER + (1n << 39n)); // another 512 GiB: its entries are not page(0)'s
    let { lo, hi } = vaHalves(USER + (1n << 39n));
    expect(m.mmu.invpcid(0, 1, lo, hi)).toBe(0);
    expect(touch(m, page(1))).toEqual([1, 0]); // page(0)'s entries survive
    expect(touch(m, USER + (1n << 39n))).toEqual([1, 3]); // its own went (and its TLB entry)
    ({ lo, hi } = vaHalves(USER + (1n << 39n)));
    expect(m.mmu.invlpg(lo, hi)).toBe(0);
    expect(touch(m, page(2))).toEqual([1, 3]); // INVLPG elsewhere emptied page(0)'s too
  });

  it('INVPCID types 1, 2 and 3 empty the caches of one PCID, and of all', () => {
    const m = setup();
    touch(m, page(0));
    expect(m.mmu.invpcid(1, 2, 0, 0)).toBe(0); // another PCID
    expect(touch(m, page(1))).toEqual([1, 0]);
    expect(m.mmu.invpcid(1, 1, 0, 0)).toBe(0);
    expect(touch(m, page(2))).toEqual([1, 3]);
    expect(m.mmu.invpcid(3, 0, 0, 0)).toBe(0);
    expect(touch(m, page(3))).toEqual([1, 3]);
    expect(m.mmu.invpcid(2, 0, 0, 0)).toBe(0);
    expect(touch(m, page(4))).toEqual([1, 3]);
  });

  it('a #PF drops the entries a walk of the faulting address would use', () => {
    const m = setup();
    touch(m, page(0));
    // page(9) is in page(0)'s page table and not present: the walk faults at the PTE.
    const { lo, hi } = vaHalves(page(9));
    const u0 = m.mmu.upperLoads;
    const f0 = m.mmu.flushes;
    expect(m.mmu.translate(lo, hi, ACCESS_READ)).toBe(false);
    expect(m.mmu.upperLoads - u0).toBe(0); // it started in the cached page table
    expect(m.mmu.flushes - f0).toBe(1); // an invalidation, as a faulting TLB hit's #PF
    expect(touch(m, page(1))).toEqual([1, 3]); // and the #PF emptied that entry and the ones above
  });

  it('the PDE cache is 4-way set associative by the tag\'s low bits, least recently used out', () => {
    const m = setup();
    const sets = PWC_GEOMETRY.pde / 4;
    const region = (r: number) => USER + BigInt(r) * SIZE_2M;
    touch(m, page(0));
    // Regions 0, sets, 2*sets, 3*sets share a set: its four ways hold them all.
    for (let r = 1; r <= 3; r++) touch(m, region(r * sets));
    expect(touch(m, page(1))).toEqual([1, 0]); // region 0 is now the most recent of its set
    for (let r = 1; r < sets; r++) touch(m, region(r)); // other sets: no effect on this one
    expect(touch(m, page(2))).toEqual([1, 0]);
    // A fifth region of the set evicts its least recently used, region `sets`, not region 0.
    touch(m, region(4 * sets));
    expect(touch(m, page(3))).toEqual([1, 0]);
    // A walk in region `sets` (of an unmapped page: it faults at the PTE) starts at the PDE again.
    const { lo, hi } = vaHalves(region(sets) + 5n * SIZE_4K);
    const u0 = m.mmu.upperLoads;
    expect(m.mmu.translate(lo, hi, ACCESS_READ)).toBe(false);
    expect(m.mmu.upperLoads - u0).toBe(1);
  });
});

describe('PagingStructureCache alone', () => {
  it('tags kernel and user halves apart and rejects a bad size', () => {
    const c = new PagingStructureCache();
    const u = vaHalves(USER);
    const k = vaHalves(KERNEL);
    expect(c.walked(u.lo, u.hi | 0, 1, 1, 4, true)).toBe(3);
    expect(c.walked(u.lo, u.hi | 0, 1, 1, 4, false)).toBe(0);
    expect(c.walked(k.lo, k.hi | 0, 1, 1, 4, false)).toBe(3);
    expect(c.walked(u.lo, u.hi | 0, 2, 1, 4, false)).toBe(3);
    expect(c.occupancy()).toEqual([1, 1, 1, 0]);
    expect(() => new PagingStructureCache({ pde: -1, pdpte: 1, pml4e: 1, pml5e: 1 })).toThrow(RangeError);
    expect(() => new PagingStructureCache({ pde: 24, pdpte: 4, pml4e: 4, pml5e: 2 })).toThrow(RangeError); // 6 sets
  });
});
