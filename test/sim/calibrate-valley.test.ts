/**
 * The fit's search on a loss whose shape is known (sim/calibrate.ts fit(), valley(), the pull of
 * the documented prices, which figures steer): a Predictor whose figures' losses are written as
 * functions of the factors, so the right answer is worked out here from the function, not taken
 * from a run. The real figures go through the same code in test/sim/calibrate*.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { FACTORS, fit, leaveOneOut, Predictor, steersFit, valley, VALLEY_SLACK, type Factors } from '../../src/sim/calibrate.ts';
import type { CostParam } from '../../src/sim/costs.ts';
import type { Scenario } from '../../src/sim/scenario-types.ts';

type Loss = (f: Factors) => number;

/** Figures whose loss is given; each depends on the prices listed. */
class Shaped extends Predictor {
  constructor(private readonly figs: readonly { name: string; deps: readonly CostParam[]; loss: Loss; status?: 'reproduced' | 'missed' }[], params: readonly CostParam[]) {
    super(figs.map((g) => ({
      file: `${g.name}.yaml`,
      calibration: { figure: g.name, source: 'test', published: 1, metric: 'overhead_pct', band: null, tolerancePct: 25, status: g.status ?? 'reproduced', note: '', between: ['a', 'b'], seeds: 1 },
    }) as unknown as Scenario), params);
  }
  override dependsOn(i: number): readonly CostParam[] { return this.figs[i].deps; }
  override loss(i: number, f: Factors): number { return this.figs[i].loss(f); }
  override predict(i: number, f: Factors): number { return 1 + this.figs[i].loss(f); }
}

const ln = (f: Factors, p: CostParam) => Math.log(f[p] ?? 1);
const W = Math.log(1.5);

describe('the fit on a loss of known shape', () => {
  it('a price no figure determines stays at its documented value; one a figure wants moved moves', () => {
    // l2Hit: a gain of 0.001 at x0.3, below the pull towards x1; ibpb: the figure wants x2 (its minimum).
    const pr = new Shaped([
      { name: 'flat', deps: ['l2Hit'], loss: (f) => ((f.l2Hit ?? 1) === 0.3 ? 0 : 0.001) },
      { name: 'wants-2', deps: ['ibpb'], loss: (f) => ((ln(f, 'ibpb') - Math.log(2)) / W) ** 2 },
    ], ['l2Hit', 'ibpb']);
    const r = fit(pr);
    expect(r.factors.l2Hit).toBeUndefined();
    expect(r.factors.ibpb).toBe(2);
  });

  it("a price's valley is the grid factors where the loss is within the slack of the best", () => {
    // loss = (ln f / W)²: within VALLEY_SLACK = 1 of its minimum (0 at x1) exactly where |ln f| <= W.
    const pr = new Shaped([{ name: 'bowl', deps: ['ibpb'], loss: (f) => (ln(f, 'ibpb') / W) ** 2 }], ['ibpb']);
    const [v] = valley(pr, fit(pr));
    const inside = FACTORS.filter((x) => (Math.log(x) / W) ** 2 <= VALLEY_SLACK);
    expect([v.lo, v.hi]).toEqual([inside[0], inside[inside.length - 1]]);
    expect([v.openLo, v.openHi]).toEqual([false, false]);
    expect(v.pinnedLoBy).toEqual(['bowl']);
    expect(v.pinnedHiBy).toEqual(['bowl']);
    expect(v.profile.find((q) => q.factor === 3)!.objective).toBeCloseTo((Math.log(3) / W) ** 2, 2);
  });

  it('keeps the run of good factors around the fit, not a second bowl beyond a ridge', () => {
    // a bowl at x1 (0 at its bottom) and one at x3 lifted by 0.5: x3 and x2.5 are within the
    // slack too, but x1.7 and x2 between them are not, so the valley stops at x1.4
    const pr = new Shaped([{ name: 'two-bowls', deps: ['ibpb'], loss: (f) => Math.min((ln(f, 'ibpb') / W) ** 2, ((ln(f, 'ibpb') - Math.log(3)) / W) ** 2 + 0.5) }], ['ibpb']);
    const [v] = valley(pr, fit(pr));
    expect(v.profile.filter((q) => q.objective <= VALLEY_SLACK).map((q) => q.factor)).toContain(3);
    expect([v.lo, v.hi, v.openHi, v.betterAt]).toEqual([0.7, 1.4, false, null]);
  });

  it('says so when the search stopped in a local minimum, and centres the valley on the better point', () => {
    // diag keeps a and b equal, far wants their product at 9: from x1 no single price can move
    // (each step alone raises diag more than it lowers far), but holding a at x3 lets b follow
    const pr = new Shaped([
      { name: 'diag', deps: ['ibpb', 'l2Hit'], loss: (f) => Math.min(4, 4 * ((ln(f, 'ibpb') - ln(f, 'l2Hit')) / W) ** 2) },
      { name: 'far', deps: ['ibpb', 'l2Hit'], loss: (f) => 2 * ((ln(f, 'ibpb') + ln(f, 'l2Hit')) / (2 * Math.log(3)) - 1) ** 2 },
    ], ['ibpb', 'l2Hit']);
    const best = fit(pr);
    expect(best.factors).toEqual({});
    expect(best.objective).toBeCloseTo(2, 5);
    for (const v of valley(pr, best)) {
      expect([v.param, v.betterAt]).toEqual([v.param, 3]);
      expect(v.hi).toBe(3);
      expect(v.lo).toBeGreaterThan(1);
    }
  });

  it('profiles the others: two prices that only their product pins each range over the grid, not a slice', () => {
    // loss = (ln a + ln b)² / W²: holding a at x, b = 1/x fits as well (within the grid), so each
    // price alone is free; a slice through the best fit (b held at 1) would give a bowl as above.
    const pr = new Shaped([{ name: 'product', deps: ['ibpb', 'l2Hit'], loss: (f) => ((ln(f, 'ibpb') + ln(f, 'l2Hit')) / W) ** 2 }], ['ibpb', 'l2Hit']);
    const best = fit(pr);
    expect(best.factors).toEqual({});
    for (const v of valley(pr, best)) {
      expect([v.param, v.openLo, v.openHi]).toEqual([v.param, true, true]);
      expect([v.lo, v.hi]).toEqual([FACTORS[0], FACTORS[FACTORS.length - 1]]);
    }
  });

  it('a known miss is predicted but steers nothing; leave-one-out fits on the reproduced figures only', () => {
    const figs = [
      { name: 'a', deps: ['ibpb'] as CostParam[], loss: (f: Factors) => (ln(f, 'ibpb') / W) ** 2 },
      { name: 'b', deps: ['ibpb'] as CostParam[], loss: (f: Factors) => ((ln(f, 'ibpb') - Math.log(1.2)) / W) ** 2 },
      { name: 'miss', deps: ['ibpb'] as CostParam[], loss: (f: Factors) => Math.min(4, ((ln(f, 'ibpb') - Math.log(1.7)) / W) ** 2), status: 'missed' as const },
    ];
    const pr = new Shaped(figs, ['ibpb']);
    const steer = pr.scenarios.map(steersFit);
    expect(steer).toEqual([true, true, false]);
    const loo = leaveOneOut(pr, 4, steer);
    expect(loo[0].factors).toEqual(fit(pr, [1]).factors);
    expect(loo[2].factors).toEqual(fit(pr, [0, 1]).factors); // the miss is predicted from the two others
    expect(fit(pr, [0, 1]).factors.ibpb ?? 1).toBeLessThan(fit(pr, [0, 1, 2]).factors.ibpb ?? 1); // it would have pulled
  });
});
