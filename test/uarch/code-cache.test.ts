/**
 * The L1I warmth model (src/uarch/code-cache.ts): least recently used regions, a core's cache
 * shared by its threads, an IBPB untraining what stays resident.
 */
import { describe, expect, it } from 'vitest';
import { CodeCache } from '../../src/uarch/code-cache.ts';
import { CodeWarmth } from '../../src/sim/code-warmth.ts';
import { getCostModel } from '../../src/sim/costs.ts';

const KIB32 = 32 * 1024; // 512 lines

describe('CodeCache', () => {
  it('a path is cold the first time and warm the next', () => {
    const c = new CodeCache(1, KIB32);
    expect(c.capacity).toBe(512);
    expect(c.run(0, 7, 30)).toBe(0);
    expect(c.run(0, 7, 30)).toBe(1);
  });

  it('code that does not fit beside it evicts the least recently used path, whole', () => {
    const c = new CodeCache(1, KIB32);
    c.run(0, 1, 300);
    c.run(0, 2, 100);
    c.run(0, 1, 300); // 1 is now the most recent: 2 goes first
    c.run(0, 3, 200); // 300 + 100 + 200 > 512: evicts 2 (the oldest), then 300 + 200 fit
    expect(c.residentLines(0, 2)).toBe(0);
    expect(c.residentLines(0, 1)).toBe(300);
    expect(c.run(0, 2, 100)).toBe(0);
  });

  it('a region larger than the cache keeps what fits, and evicts everything else', () => {
    const c = new CodeCache(1, KIB32);
    c.run(0, 1, 20);
    expect(c.run(0, 9, 1024)).toBe(0);
    expect(c.residentLines(0, 1)).toBe(0);
    expect(c.run(0, 9, 1024)).toBe(0.5);
  });

  it('an IBPB leaves the lines but untrains them: the next run is resident and untrained, the one after warm', () => {
    const c = new CodeCache(2, KIB32);
    c.run(0, 1, 30);
    c.run(1, 1, 30);
    c.flushPredictors(0);
    expect(c.residentLines(0, 1)).toBe(30);
    expect([c.run(0, 1, 30), c.untrained]).toEqual([0, 1]);
    expect([c.run(0, 1, 30), c.untrained]).toEqual([1, 0]);
    expect([c.run(1, 1, 30), c.untrained]).toEqual([1, 0]); // the other core kept its predictors
    expect([c.run(0, 2, 30), c.untrained]).toEqual([0, 0]); // never run: cold, not untrained
  });

  it('after an IBPB a region larger than the cache is untrained for what stayed and cold for the rest', () => {
    const c = new CodeCache(1, KIB32); // 512 lines
    c.run(0, 9, 1024);
    c.flushPredictors(0);
    expect([c.run(0, 9, 1024), c.untrained]).toEqual([0, 0.5]);
  });

  it('cores do not share code', () => {
    const c = new CodeCache(2, KIB32);
    c.run(0, 1, 30);
    expect(c.run(1, 1, 30)).toBe(0);
  });

  it('more regions than it remembers forgets the oldest, never a recent one', () => {
    const c = new CodeCache(1, KIB32);
    for (let r = 0; r < 40; r++) c.run(0, r, 1);
    expect(c.residentLines(0, 39)).toBe(1);
    expect(c.residentLines(0, 0)).toBe(0);
    expect(c.run(0, 39, 1)).toBe(1);
    // every one of the 16 most recent is still there; the 24 before them are gone
    for (let r = 24; r < 40; r++) expect([r, c.residentLines(0, r)]).toEqual([r, 1]);
    for (let r = 0; r < 24; r++) expect([r, c.residentLines(0, r)]).toEqual([r, 0]);
  });
});

describe('CodeWarmth', () => {
  const m = getCostModel('skylake-sp');
  const cold = m.params.kernelCyclesPerInsn.cycles, warm = m.params.kernelCyclesPerInsnWarm.cycles;
  it('prices a partly warm path in proportion, threads of one core sharing it', () => {
    const w = new CodeWarmth(4, 2, KIB32, m);
    const r = w.region('syscall:big');
    expect(w.run(0, r, 1024, 1000)).toBeCloseTo(1000 * cold, 9);
    expect(w.run(1, r, 1024, 1000)).toBeCloseTo(1000 * (cold + (warm - cold) * 0.5), 9); // thread 1: core 0's L1I, half of it fits
    expect(w.run(2, r, 1024, 1000)).toBeCloseTo(1000 * cold, 9); // core 1
  });
  it('an IBPB on one thread untrains its core: the sibling\'s next run is at the untrained price, then warm', () => {
    // A price of its own here (the default equals the warm one), so that the three cannot be confused.
    const p = { ...m.params, kernelCyclesPerInsnUntrained: { cycles: 0.6, source: 'test' } };
    const w = new CodeWarmth(2, 2, KIB32, { ...m, params: p });
    const r = w.region('syscall:getppid');
    expect(w.run(0, r, 21, 329)).toBeCloseTo(329 * cold, 9);
    w.ibpb(1);
    expect(w.run(0, r, 21, 329)).toBeCloseTo(329 * 0.6, 9);
    expect(w.run(0, r, 21, 329)).toBeCloseTo(329 * warm, 9);
  });
  it('after an IBPB a path larger than the L1I is untrained for the half that stayed and cold for the rest', () => {
    const p = { ...m.params, kernelCyclesPerInsnUntrained: { cycles: 0.6, source: 'test' } };
    const w = new CodeWarmth(2, 2, KIB32, { ...m, params: p }); // 512 lines
    const r = w.region('syscall:big');
    w.run(0, r, 1024, 1000);
    w.ibpb(0);
    expect(w.run(1, r, 1024, 1000)).toBeCloseTo(1000 * (0.5 * 0.6 + 0.5 * cold), 9);
  });
});
