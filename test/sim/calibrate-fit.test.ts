/**
 * The fit's rules (sim/calibrate.ts) on the real figure files: prices costs.ts defines as one move
 * together, and leave-source-out keeps every figure of a publication out of the fit that predicts
 * one of them.
 */
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { fit, leaveOneOut, leaveSourceOut, predict, Predictor, sourceKey } from '../../src/sim/calibrate.ts';
import { loadCalibrations } from '../../src/scenario/calibrations.ts';
import { calibrateReport } from '../../src/cli/commands/calibrate.ts';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const DIR = fileURLToPath(new URL('../../examples/calibration', import.meta.url));
const all = loadCalibrations(DIR);
const byFigure = (f: string) => {
  const s = all.find((x) => x.calibration!.figure === f);
  if (s === undefined) throw new Error(`no calibration figure ${f} in ${DIR}`);
  return s;
};

describe('kasi calibrate --fit', () => {
  it('a factor on the NOFLUSH CR3 price moves the flushing one too (costs.ts takes them as one price)', () => {
    // Without PCID every PTI CR3 write flushes: only cr3Write is charged. Were the fitted factor
    // applied to cr3WriteNoflush alone, this figure could not see it.
    const nopcid = byFigure('kpti-lseek-nopcid');
    expect(predict(nopcid, { cr3WriteNoflush: 2 })).toBeGreaterThan(predict(nopcid) * 1.05);
    expect(new Predictor([nopcid]).dependsOn(0)).toContain('cr3WriteNoflush');
  }, 120_000);

  it('figures of one publication share a source key; different publications do not', () => {
    const key = (f: string) => sourceKey(byFigure(f));
    expect(new Set(['kpti-dd-1B', 'kpti-dd-4KiB', 'kpti-dd-16KiB'].map(key)).size).toBe(1);
    expect(key('kpti-lseek-pcid')).toBe(key('kpti-lseek-nopcid'));
    // The RFC v2 cover (FIO) and the Aug 2025 posting (kernel build) are two publications.
    expect(key('asi-2025-fio-randread')).not.toBe(key('asi-2025-kernel-build'));
    expect(key('kpti-dd-1B')).not.toBe(key('kpti-getppid'));
  });

  it('leave-source-out fits each publication\'s figures on the other publications only', () => {
    const names = ['kpti-dd-1B', 'kpti-dd-4KiB', 'kpti-getppid', 'kpti-lseek-pcid'];
    const pr = new Predictor(names.map(byFigure));
    const lso = leaveSourceOut(pr);
    // dd-1B's fit may not see dd-4KiB: both dd figures get the fit on getppid + lseek alone.
    const others = fit(pr, [2, 3]).factors;
    expect(lso[0].factors).toEqual(others);
    expect(lso[1].factors).toEqual(others);
    // Leave-one-out keeps the sibling in: its fit for dd-1B is a fit on dd-4KiB, getppid, lseek.
    expect(leaveOneOut(pr)[0].factors).toEqual(fit(pr, [1, 2, 3]).factors);
    expect(lso[0].result.figure).toBe('kpti-dd-1B');
  }, 240_000);

  it('--fit reports, per price, a valley around the fitted factor and the figures that steered it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kasi-cal-'));
    try {
      for (const f of ['kpti-getppid', 'kpti-lseek-pcid']) copyFileSync(byFigure(f).file, join(dir, `${f}.yaml`));
      const j = JSON.parse(calibrateReport({ dir, json: true, fit: true })) as { fit: { steered_by: string[]; factors: Record<string, number>; valley: { param: string; fitted: number; lo: number; hi: number }[] } };
      expect(j.fit.steered_by.sort()).toEqual(['kpti-getppid', 'kpti-lseek-pcid']);
      expect(j.fit.valley.map((v) => v.param)).toContain('cr3WriteNoflush'); // both figures price the PTI CR3 writes
      for (const v of j.fit.valley) {
        expect(v.fitted).toBe(j.fit.factors[v.param] ?? 1);
        expect(v.lo).toBeLessThanOrEqual(v.fitted);
        expect(v.hi).toBeGreaterThanOrEqual(v.fitted);
      }
      // the two figures' CR3 deltas pin the CR3 price: not free over the whole grid
      const cr3 = j.fit.valley.find((v) => v.param === 'cr3WriteNoflush')!;
      expect(cr3.hi / cr3.lo).toBeLessThan(3);
      expect(calibrateReport({ dir, fit: true })).toMatch(/The valley: each price held/);
    } finally { rmSync(dir, { recursive: true, force: true }); }
  }, 240_000);
});
