// The second-level TLB (Mmu's stlb): what a first-level miss costs with it, and what the
// invalidations of SDM Vol. 3A 4.10.4.1 leave in it. The truth is counted walks: a page set
// larger than the first level but inside the second is walked once, then served from the second
// level until an instruction the SDM says invalidates it; the walker (walk.ts) checks every
// translation the second level gives.
import { describe, expect, it } from 'vitest';
import { PhysMemory } from '../../src/phys/memory.ts';
import { CpuState } from '../../src/x86/cpu.ts';
import { Mmu } from '../../src/x86/mmu.ts';
import { Translation, translate, vaHalves } from '../../src/x86/walk.ts';
import { ACCESS_READ, ACCESS_WRITE, CR3_NOFLUSH_HI, CR4_PAE, CR4_PCIDE, CR4_PGE, PTE_A, PTE_G, PTE_P, PTE_RW, PTE_US } from '../../src/x86/bits.ts';
import { PageTables, SIZE_4K } from '../../src/x86/pgtable.ts';
import { meltdownTarget } from '../../src/attacks/meltdown.ts';
import type { AttackThread } from '../../src/attacks/sample.ts';

const PAGES = 256; // 4x the Skylake L1 DTLB's 64 4 KiB entries, inside a 1536-entry STLB
const STLB = { sets4K: 128, ways4K: 12, sets2M: 128, ways2M: 12, sets1G: 4, ways1G: 4 };
const BASE = 0x7f0000000000n;
const GLOBAL_BASE = 0xffffc90000000000n;

function setup(stlb: object | null) {
  const mem = new PhysMemory(46);
  let next = 0x100000n;
  const pt = new PageTables(mem, 4, () => { const p = next; next += 4096n; return p; });
  // User pages (not global), and as many kernel pages that are global.
  for (let i = 0; i < PAGES; i++) {
    pt.mapPage(BASE + BigInt(i) * SIZE_4K, 0x10000000n + BigInt(i) * SIZE_4K, SIZE_4K, BigInt(PTE_P | PTE_RW | PTE_A | PTE_US));
    pt.mapPage(GLOBAL_BASE + BigInt(i) * SIZE_4K, 0x20000000n + BigInt(i) * SIZE_4K, SIZE_4K, BigInt(PTE_P | PTE_RW | PTE_A | PTE_G));
  }
  const cpu = new CpuState(46).load({ cr0: 0x80050033, cr4: CR4_PAE | CR4_PGE | CR4_PCIDE, efer: 0xd01, cr3: pt.root | 1n });
  return { mem, cpu, pt, mmu: new Mmu(cpu, mem, {}, stlb), root: Number(pt.root) };
}

/** Read every page of `base` once; returns the walks it took. Every translation is checked against the walker. */
function sweep(m: ReturnType<typeof setup>, base: bigint, access = ACCESS_READ): number {
  const ref = new Translation();
  const w0 = m.mmu.walks;
  for (let i = 0; i < PAGES; i++) {
    const { lo, hi } = vaHalves(base + BigInt(i) * SIZE_4K + 0x40n);
    expect(m.mmu.translate(lo, hi, access)).toBe(true);
    expect(translate(m.mem, m.cpu, lo, hi, access, ref)).toBe(true);
    expect(m.mmu.out.pa).toBe(ref.pa);
  }
  return m.mmu.walks - w0;
}

describe('second-level TLB', () => {
  it('a page set 4x the first level is walked once, then served from the second level', () => {
    const m = setup(STLB);
    expect(sweep(m, BASE)).toBe(PAGES);
    const h0 = m.mmu.stlbHits;
    expect(sweep(m, BASE)).toBe(0);
    // Every first-level miss of the second pass was a second-level hit (the first level holds 64).
    expect(m.mmu.stlbHits - h0).toBeGreaterThanOrEqual(PAGES - 64);
    // Without a second level every pass walks what the first level lost.
    const bare = setup(null);
    sweep(bare, BASE);
    expect(sweep(bare, BASE)).toBeGreaterThanOrEqual(PAGES - 64);
    expect(bare.mmu.stlbHits).toBe(0);
  });

  it('a CR3 write without NOFLUSH drops the PCID\'s entries from both levels; with NOFLUSH it keeps them', () => {
    const m = setup(STLB);
    sweep(m, BASE);
    expect(m.mmu.writeCr3(m.root | 1, CR3_NOFLUSH_HI)).toBe(0);
    expect(sweep(m, BASE)).toBe(0);
    expect(m.mmu.writeCr3(m.root | 1, 0)).toBe(0); // same PCID, flushing
    expect(sweep(m, BASE)).toBe(PAGES);
  });

  it('global entries survive a flushing CR3 write in the second level too, and INVLPG drops one page from both', () => {
    const m = setup(STLB);
    sweep(m, GLOBAL_BASE);
    expect(m.mmu.writeCr3(m.root | 2, 0)).toBe(0); // another PCID, flushing: globals stay (4.10.4.1)
    expect(sweep(m, GLOBAL_BASE)).toBe(0);
    const { lo, hi } = vaHalves(GLOBAL_BASE + 5n * SIZE_4K);
    expect(m.mmu.invlpg(lo, hi)).toBe(0);
    expect(sweep(m, GLOBAL_BASE)).toBe(1);
  });

  it('a write through a second-level entry whose D is not known set walks (SDM 4.8: the walk sets D)', () => {
    const m = setup(STLB);
    sweep(m, BASE); // reads: entries without D
    sweep(m, BASE); // evict the first level's copies of the early pages; the second level keeps them
    const w = sweep(m, BASE, ACCESS_WRITE);
    expect(w).toBe(PAGES);
    expect(sweep(m, BASE, ACCESS_WRITE)).toBe(0); // D known set now, in the second level too
  });

  // Found by review: both failed before the fixes (a #PF left the second level's copy; Meltdown
  // looked in the first level only and read physical page 0).
  it('a walk that faults after a write through a D-less entry leaves no copy of the page in the second level (SDM 4.10.4.1)', () => {
    const m = setup(STLB);
    const va = BASE + 7n * SIZE_4K;
    const { lo, hi } = vaHalves(va);
    expect(m.mmu.translate(lo, hi, ACCESS_READ)).toBe(true); // both levels, D not set
    m.pt.mapPage(va, 0x10007000n, SIZE_4K, 0n); // not present, no INVLPG (the TLBs may keep it)
    expect(m.mmu.translate(lo, hi, ACCESS_WRITE)).toBe(false); // first-level hit, D unknown: walk, #PF
    const w = m.mmu.walks;
    expect(m.mmu.translate(lo, hi, ACCESS_READ)).toBe(false); // walked again: no stale copy served
    expect(m.mmu.walks - w).toBe(1);
  });

  it('Meltdown uses a supervisor translation only the second level holds', () => {
    const m = setup(STLB);
    const { lo, hi } = vaHalves(GLOBAL_BASE + 3n * SIZE_4K + 0x123n);
    expect(m.mmu.translate(lo, hi, ACCESS_READ)).toBe(true);
    sweep(m, BASE); // the first level's 64 entries go to the user pages
    expect(m.mmu.tlb.find(lo, hi, m.cpu.pcid)).toBe(-1);
    m.cpu.cpl = 3;
    expect(meltdownTarget({ mmu: m.mmu } as unknown as AttackThread, lo, hi)).toBe(0x20000000 + 3 * 4096 + 0x123);
  });
});
