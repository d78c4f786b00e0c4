/**
 * ASID/PCID assignment (src/linux/asid.ts) against the kernel's own statements and the SDM.
 * Truth used:
 *  - hand-derived sequences from the rules quoted out of arch/x86/mm/tlb.c (6.1): choose_new_asid()
 *    ("We don't currently own an ASID slot on this CPU. Allocate a slot." / next_asid wraps at
 *    TLB_NR_DYN_ASIDS to 0 and restarts at 1), kern_pcid = ASID+1, uPCID = kPCID + 2048, and
 *    SWITCH_TO_USER_CR3 in arch/x86/entry/calling.h; the expected CR3 values are literals;
 *  - CR3 pairs seen on real machines: the la48 capture's registers (PTI, no PCID: kernel root
 *    0x61c8000, user CR3 0x61c9000) and a KVM-read pair published in a KPTI write-up
 *    ("kernel cr3 = 0x273abe003 / user cr3 = 0x273abf803");
 *  - the SDM CR3 format (4.10.4.1, tables 4-12/4-13) as decoded by the Mmu (src/x86/mmu.ts):
 *    NOFLUSH keeps the PCID's TLB entries, a flushing write drops them;
 *  - a property checked against an oracle written differently: the kernel's slot array replaced
 *    by counting allocations (an mm keeps its slot until 6 more allocations have been made).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  AsidState, MmContext, SWITCH_REASONS, SwitchResult, TLB_NR_DYN_ASIDS, cr3ToBigInt,
} from '../../src/linux/asid.ts';
import { PhysMemory } from '../../src/phys/memory.ts';
import { CpuState } from '../../src/x86/cpu.ts';
import { Mmu } from '../../src/x86/mmu.ts';
import { PageTables, SIZE_4K, USER_TABLE } from '../../src/x86/pgtable.ts';
import { ACCESS_READ, CR4_PAE, CR4_PCIDE, PTE_P, PTE_RW, PTE_US } from '../../src/x86/bits.ts';

const FIX = join(import.meta.dirname, '..', 'fixtures', 'captures', 'la48-pti-nokaslr');

const kcr3 = (r: SwitchResult) => cr3ToBigInt(r.cr3Lo, r.cr3Hi);
const ucr3 = (r: SwitchResult) => cr3ToBigInt(r.userCr3Lo, r.userCr3Hi);
const reason = (r: SwitchResult) => SWITCH_REASONS[r.reason];

function pcidPti(cpus = 1) {
  const s = new AsidState({ cpus, pcid: true, pti: true, initPgd: 0x2000000 });
  const mm = (i: number) => s.newMm(0x1000000 + i * 0x2000, `mm${i}`);
  return { s, mm };
}

describe('switch_mm_irqs_off sequences, hand-derived from tlb.c', () => {
  it('new slots, NOFLUSH on return, flush after a tlb_gen bump (PCID + PTI)', () => {
    const { s, mm } = pcidPti();
    const A = mm(0); // pgd 0x1000000
    const B = mm(1); // pgd 0x1002000
    expect([s.initMm.ctxId, A.ctxId, B.ctxId]).toEqual([1, 2, 3]); // INIT_MM_CONTEXT .ctx_id = 1; last_mm_ctx_id starts at 1

    let r = s.switchMm(0, A); // no slot: next_asid 1 -> ASID 1, kPCID 2, flush
    expect([reason(r), r.asid, r.noflush, kcr3(r)]).toEqual(['new-slot', 1, false, 0x1000002n]);
    // load_new_mm_cr3(need_flush) -> invalidate_user_asid(): the first return to user flushes uPCID 0x802.
    expect(ucr3(r)).toBe(0x1001802n);
    expect(s.returnToUser(0, r)).toBe(true);
    expect([ucr3(r), r.noflush]).toEqual([0x1001802n, false]);
    s.returnToUser(0, r); // the bit was cleared (btr): now NOFLUSH
    expect([ucr3(r), r.noflush]).toEqual([0x8000000001001802n, true]);
    s.enterKernel(0, r); // ADJUST_KERNEL_CR3: always NOFLUSH with PCID
    expect(kcr3(r)).toBe(0x8000000001000002n);

    r = s.switchMm(0, B); // ASID 2, kPCID 3
    expect([reason(r), r.asid, kcr3(r)]).toEqual(['new-slot', 2, 0x1002003n]);
    r = s.switchMm(0, A); // "The new ASID is already up to date." -> build_cr3_noflush
    expect([reason(r), r.asid, r.noflush, kcr3(r)]).toEqual(['slot-hit', 1, true, 0x8000000001000002n]);
    s.returnToUser(0, r); // no pending user flush for kPCID 2
    expect(ucr3(r)).toBe(0x8000000001001802n);

    r = s.switchMm(0, B);
    expect(s.flushTlbMm(A)).toEqual([]); // A is loaded nowhere: nothing now
    expect(A.tlbGen).toBe(1);
    r = s.switchMm(0, A); // ctxs[1].tlb_gen 0 < 1: need_flush
    expect([reason(r), r.asid, r.noflush, kcr3(r)]).toEqual(['slot-stale', 1, false, 0x1000002n]);
    expect(ucr3(r)).toBe(0x1001802n); // the user half is flushed too
  });

  it('round robin: ASIDs 1..5, then 0 (evicting init_mm), then 1 again', () => {
    const { s, mm } = pcidPti();
    const m = [0, 1, 2, 3, 4, 5, 6].map(mm); // ctx_ids 2..8
    const got = m.map((x) => {
      const r = s.switchMm(0, x);
      return [r.asid, r.evictedCtxId, reason(r)];
    });
    // next_asid: 1,2,3,4,5; then 6 >= TLB_NR_DYN_ASIDS -> ASID 0, next_asid = 1; then 1.
    expect(got).toEqual([
      [1, 0, 'new-slot'], [2, 0, 'new-slot'], [3, 0, 'new-slot'], [4, 0, 'new-slot'], [5, 0, 'new-slot'],
      [0, 1, 'new-slot'], // init_mm (ctx_id 1) loses slot 0
      [1, 2, 'new-slot'], // m[0] (ctx_id 2) loses slot 1
    ]);
    // m[0] comes back: no slot any more -> ASID 2 (evicts m[1]), flush.
    const r = s.switchMm(0, m[0]);
    expect([r.asid, r.evictedCtxId, r.noflush, kcr3(r)]).toEqual([2, 3, false, 0x1000003n]);
    // m[2] still holds ASID 3 and was not flushed since: NOFLUSH.
    expect(s.switchMm(0, m[2]).noflush).toBe(true);
  });

  it('lazy TLB: back to the same mm uses it if tlb_gen did not move, else flushes the same ASID', () => {
    const { s, mm } = pcidPti(2);
    const A = mm(0);
    s.switchMm(0, A);
    s.switchMm(1, A);
    expect(s.switchMm(0, A).reason).toBe(SWITCH_REASONS.indexOf('same-mm')); // thread switch: no CR3 write
    expect(s.result.cr3Written).toBe(false);
    s.enterLazyTlb(0); // a kernel thread runs on CPU 0, A stays loaded
    let r = s.switchMm(0, A);
    expect([reason(r), r.cr3Written]).toEqual(['lazy-uptodate', false]);
    s.enterLazyTlb(0);
    // No page tables freed: the lazy CPU is skipped, CPU 1 flushes now.
    expect(s.flushTlbMm(A)).toEqual([{ cpu: 0, action: 'skipped-lazy' }, { cpu: 1, action: 'flushed' }]);
    r = s.switchMm(0, A);
    expect([reason(r), r.asid, r.noflush, kcr3(r)]).toEqual(['lazy-stale', 1, false, 0x1000002n]);
    s.enterLazyTlb(1);
    // Page tables freed: the lazy CPU gets the IPI and switches to init_mm.
    expect(s.flushTlbMm(A, true)).toEqual([{ cpu: 0, action: 'flushed' }, { cpu: 1, action: 'to-init-mm' }]);
    expect(s.loaded[1]).toBe(s.initMm);
    expect(s.loadedAsid[1]).toBe(0); // init_mm still owns slot 0 on CPU 1
  });

  it('without PCID every switch is ASID 0 and flushes; the user CR3 is the PGD + 4 KiB', () => {
    // The la48 capture ran a PTI kernel on a CPU without PCID: kernel root and user CR3 as recorded.
    const cap = JSON.parse(gunzipSync(readFileSync(join(FIX, 'user.json.gz'))).toString('utf8'));
    const regs = readFileSync(join(FIX, 'user.registers.txt'), 'utf8');
    const userCr3 = BigInt('0x' + /CR3=([0-9a-f]+)/.exec(regs)![1]);
    const kernelRoot = Number(cap.roots.kernel);
    const s = new AsidState({ cpus: 1, pcid: false, pti: true, initPgd: 0x2000000 });
    const A = s.newMm(kernelRoot);
    const B = s.newMm(0x3000000);
    for (const x of [A, B, A, A]) {
      const r = s.switchMm(0, x);
      if (!r.cr3Written) continue;
      expect([reason(r), r.asid, r.noflush]).toEqual(['no-pcid', 0, false]);
    }
    const r = s.switchMm(0, B) && s.switchMm(0, A);
    expect(kcr3(r)).toBe(BigInt(kernelRoot));
    s.returnToUser(0, r);
    expect(ucr3(r)).toBe(userCr3); // 0x61c9000
    expect(userCr3).toBe(0x61c9000n);
  });
});

describe('CR3 values decode per the SDM', () => {
  it('reproduce a CR3 pair read on real KPTI+PCID hardware (ASID 2)', () => {
    const s = new AsidState({ cpus: 1, pcid: true, pti: true, initPgd: 0 });
    const r = new SwitchResult();
    s.buildCr3(0x273abe000, 2, false, r);
    expect(kcr3(r)).toBe(0x273abe003n);
    expect(AsidState.userPcid(2)).toBe(0x803);
    s.switchMm(0, s.newMm(0x273abe000)); // ASID 1
    s.switchMm(0, s.newMm(0x273abe000)); // a second mm on the same PGD: ASID 2
    s.returnToUser(0, r);
    expect(ucr3(r) & ~(1n << 63n)).toBe(0x273abf803n);
  });

  it('through the Mmu: PCID = ASID + 1, user PCID | 0x800, NOFLUSH keeps entries, a flush drops them', () => {
    const mem = new PhysMemory(46);
    let next = 0x100000;
    const alloc = () => BigInt((next += 0x1000) - 0x1000);
    // Two mms, each an 8 KiB PGD pair with VA 0x400000 mapped to its own frame.
    const mkMm = (frame: bigint) => {
      next = (next + 0x1fff) & ~0x1fff;
      const pgd = alloc();
      alloc(); // the user copy
      const pt = new PageTables(mem, 4, alloc, pgd);
      pt.mapPage(0x400000n, frame, SIZE_4K, BigInt(PTE_P | PTE_RW | PTE_US), USER_TABLE);
      return { pgd, pt };
    };
    const a = mkMm(0x7000000n);
    const b = mkMm(0x8000000n);
    const cpu = new CpuState(46);
    cpu.load({ cr4: CR4_PAE, cpl: 0 });
    const mmu = new Mmu(cpu, mem);
    expect(mmu.writeCr4(CR4_PAE | CR4_PCIDE)).toBe(0);
    const s = new AsidState({ cpus: 1, pcid: true, pti: true, initPgd: 0x90000 });
    const A = s.newMm(Number(a.pgd));
    const B = s.newMm(Number(b.pgd));
    const load = (x: MmContext) => {
      const r = s.switchMm(0, x);
      expect(mmu.writeCr3(r.cr3Lo, r.cr3Hi)).toBe(0);
      return r;
    };
    const hitsAfterRead = () => {
      const h = mmu.tlb.hits;
      expect(mmu.translate(0x400000, 0, ACCESS_READ)).toBe(true);
      return { hit: mmu.tlb.hits > h, pa: mmu.out.pa };
    };
    let r = load(A);
    expect([cpu.pcid, cpu.rootAddr]).toEqual([r.asid + 1, Number(a.pgd)]);
    expect(hitsAfterRead()).toEqual({ hit: false, pa: 0x7000000 });
    load(B);
    expect(hitsAfterRead()).toEqual({ hit: false, pa: 0x8000000 });
    r = load(A); // NOFLUSH: A's entry under PCID 2 survived B's run under PCID 3
    expect(r.noflush).toBe(true);
    expect(hitsAfterRead()).toEqual({ hit: true, pa: 0x7000000 });
    // A's mapping changes while B runs; flush_tlb_mm_range() only bumps tlb_gen.
    load(B);
    a.pt.mapPage(0x400000n, 0x7100000n, SIZE_4K, BigInt(PTE_P | PTE_RW | PTE_US), USER_TABLE);
    s.flushTlbMm(A);
    r = load(A); // the switch must flush, or the stale 0x7000000 would be used
    expect(r.noflush).toBe(false);
    expect(hitsAfterRead()).toEqual({ hit: false, pa: 0x7100000 });
    // The user CR3 under the Mmu: PCID | 0x800, root = PGD + 4 KiB.
    s.returnToUser(0, r);
    expect(mmu.writeCr3(r.userCr3Lo, r.userCr3Hi)).toBe(0);
    expect([cpu.pcid, cpu.rootAddr]).toEqual([(r.asid + 1) | 0x800, Number(a.pgd) + 0x1000]);
  });
});

describe('property: NOFLUSH exactly when the mm kept its slot and its tlb_gen did not move', () => {
  // Oracle: allocation k (0, 1, 2, …) takes slot (k + 1) % 6, so the mm allocated at k keeps its
  // slot until allocation k + 6 happens. init_mm counts as allocated at k = -1 (slot 0).
  type Op = { kind: 'switch' | 'flush'; mm: number };
  const op = fc.record({ kind: fc.constantFrom<'switch' | 'flush'>('switch', 'switch', 'flush'), mm: fc.integer({ min: 0, max: 9 }) });

  it('holds for random switch/flush sequences over 1..10 mms', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 10 }), fc.array(op, { maxLength: 120 }), (n, ops: Op[]) => {
      const s = new AsidState({ cpus: 1, pcid: true, pti: true, initPgd: 0x10000 });
      const mms = Array.from({ length: n }, (_, i) => s.newMm(0x100000 + i * 0x2000));
      const all = [s.initMm, ...mms];
      const allocAt = new Map<MmContext, number>([[s.initMm, -1]]);
      const synced = new Map<MmContext, number>([[s.initMm, 0]]);
      let allocs = 0;
      let loaded = s.initMm;
      for (const o of ops) {
        const x = all[o.mm % all.length];
        if (o.kind === 'flush') {
          s.flushTlbMm(x);
          if (x === loaded && x !== s.initMm) synced.set(x, x.tlbGen); // flushed in place
          continue;
        }
        const r = s.switchMm(0, x);
        if (x === loaded) {
          expect(r.cr3Written).toBe(false);
          continue;
        }
        const k = allocAt.get(x);
        const keeps = k !== undefined && allocs - k <= TLB_NR_DYN_ASIDS;
        if (keeps) {
          expect(r.asid).toBe((k + 1) % TLB_NR_DYN_ASIDS);
          expect(r.noflush).toBe(synced.get(x) === x.tlbGen);
        } else {
          expect(r.asid).toBe((allocs + 1) % TLB_NR_DYN_ASIDS);
          expect(r.noflush).toBe(false);
          allocAt.set(x, allocs++);
        }
        synced.set(x, x.tlbGen);
        loaded = x;
        // The CR3 always decodes to this slot: PCID = ASID + 1, bit 63 iff NOFLUSH.
        expect(r.cr3Lo & 0xfff).toBe(r.asid + 1);
        expect((r.cr3Hi >>> 31) === 1).toBe(r.noflush);
      }
    }), { numRuns: 300 });
  });

  it('more than 6 mms on one CPU forces a flush when the first comes back', () => {
    const { s, mm } = pcidPti();
    const m = Array.from({ length: 7 }, (_, i) => mm(i));
    for (const x of m) s.switchMm(0, x);
    expect(s.slotOf(0, m[0])).toBe(-1);
    expect(s.switchMm(0, m[0]).noflush).toBe(false);
  });
});
