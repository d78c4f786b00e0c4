/**
 * `kasi calibrate`: the cost model against published figures (issue "Calibration").
 *
 * Each figure is a scenario with a `calibration:` block (examples/calibration/*.yaml): the
 * workload and mitigation sets of its source, and the published value. The prediction is the
 * engine's: the scenario runs (one seed, every configuration the same events) and the metric is
 * taken between the two named configurations' workload cycles — nothing is computed from the
 * prices directly.
 *
 * Fitting (`--fit`) moves only global parameters, as factors on every CPU profile's price
 * (FIT_PARAMS: the assumed prices costs.ts flags), by coordinate descent on a grid of factors,
 * minimising the sum over figures of the squared log error (0 inside a published band). Then
 * leave-one-out: for each figure, fit on the others and predict it — the error kasi makes on a
 * workload it was not tuned on.
 */
import { readFileSync } from 'node:fs';
import { getCostModel, type CostParam, type CostValue } from './costs.ts';
import { runScenario } from './run.ts';
import type { Scenario } from './scenario-types.ts';

/** The parameters --fit may move (documented assumptions in costs.ts), each by a factor in FACTORS. */
export const FIT_PARAMS: readonly CostParam[] = ['cr3WriteNoflush', 'syscallEntryExit', 'kernelCyclesPerInsn', 'l2Hit', 'l1dFlushMsr', 'ibpb'];
export const FACTORS: readonly number[] = [0.3, 0.5, 0.7, 0.85, 1, 1.2, 1.4, 2, 3];

export type Factors = Partial<Record<CostParam, number>>;

export interface CalibrationResult {
  readonly figure: string;
  readonly source: string;
  readonly file: string;
  readonly metric: string;
  readonly published: number;
  readonly band: readonly [number, number] | null;
  readonly predicted: number;
  /** (predicted - published) / |published| × 100. */
  readonly error_pct: number;
  readonly within: boolean;
  readonly tolerance_pct: number;
  /** The scenario's own account: reproduced, or missed with a note saying why. */
  readonly status: 'reproduced' | 'missed';
  readonly note: string;
}

function withFactors(s: Scenario, factors: Factors): Scenario {
  const keys = Object.keys(factors) as CostParam[];
  if (keys.length === 0) return s;
  const model = getCostModel(s.machine.cpu);
  const params: Partial<Record<CostParam, CostValue>> = { ...s.costOverrides.params };
  for (const k of keys) {
    const base = params[k]?.cycles ?? model.params[k].cycles;
    params[k] = { cycles: base * factors[k]!, source: `calibrate: ${factors[k]} × ${base}` };
  }
  return { ...s, costOverrides: { ...s.costOverrides, params } };
}

/** The engine's value of a scenario's calibration metric under `factors`. */
export function predict(s: Scenario, factors: Factors = {}): number {
  const c = s.calibration!;
  const r = runScenario(withFactors(s, factors));
  const base = r.mitigations.find((m) => m.name === c.between[0])!;
  const kase = r.mitigations.find((m) => m.name === c.between[1])!;
  switch (c.metric) {
    case 'overhead_pct': return (kase.costs.cycles / base.costs.cycles - 1) * 100;
    case 'throughput_ratio': return base.costs.cycles / kase.costs.cycles;
    default: {
      const events = kase.events_per_task.reduce((a, b) => a + b, 0);
      return kase.costs.cycles / events / getCostModel(s.machine.cpu).clock.ghz;
    }
  }
}

export function judge(s: Scenario, predicted: number): CalibrationResult {
  const c = s.calibration!;
  // A band's error is the distance to its nearest edge (0 inside), relative to that edge.
  const ref = c.band === null ? c.published : predicted < c.band[0] ? c.band[0] : predicted > c.band[1] ? c.band[1] : predicted;
  const error = ref === 0 ? (predicted === 0 ? 0 : 100) : ((predicted - ref) / Math.abs(ref)) * 100;
  const within = c.band !== null ? predicted >= c.band[0] && predicted <= c.band[1] : Math.abs(error) <= c.tolerancePct;
  return {
    figure: c.figure, source: c.source, file: s.file, metric: c.metric, published: c.published, band: c.band,
    predicted: Math.round(predicted * 1000) / 1000, error_pct: Math.round(error * 10) / 10, within, tolerance_pct: c.tolerancePct,
    status: c.status, note: c.note,
  };
}

/** One figure's contribution to the fit objective: squared log error, 0 inside a band. */
function loss(s: Scenario, predicted: number): number {
  const c = s.calibration!;
  // Overheads can be near 0 or negative: compare 1 + x/100 (the cycle ratio) on a log scale.
  const v = (x: number) => (c.metric === 'overhead_pct' ? Math.max(1e-3, 1 + x / 100) : Math.max(1e-9, x));
  if (c.band !== null) {
    if (predicted >= c.band[0] && predicted <= c.band[1]) return 0;
    const edge = predicted < c.band[0] ? c.band[0] : c.band[1];
    return Math.log(v(predicted) / v(edge)) ** 2;
  }
  return Math.log(v(predicted) / v(c.published)) ** 2;
}

export interface FitResult {
  readonly factors: Factors;
  readonly objective: number;
  /** Per parameter moved: the figures whose loss changed most when it moved. */
  readonly movedBy: Readonly<Record<string, string[]>>;
  /** Engine runs this fit asked for (cached ones included) and the ones it really made. */
  readonly evaluations: number;
  readonly engineRuns: number;
}

/**
 * Predictions of a set of figures under factors, each engine run made once: a figure's run is
 * keyed by the factors of the parameters it depends on only (found once, by moving each
 * parameter ×2 and seeing whether the figure moves: a price whose event never happens cannot),
 * so a fit over one parameter re-runs only the figures that price reaches, and leave-one-out's
 * fits share every run.
 */
export class Predictor {
  private readonly cache = new Map<string, number>();
  private readonly sensitive: (CostParam[] | null)[];
  runs = 0;
  asked = 0;
  constructor(readonly scenarios: readonly Scenario[], readonly params: readonly CostParam[] = FIT_PARAMS) {
    this.sensitive = scenarios.map(() => null);
  }
  private run(s: Scenario, f: Factors): number { this.runs++; return predict(s, f); }
  private baseOf(i: number): number {
    let v = this.cache.get(`${i}|base`);
    if (v === undefined) { v = this.run(this.scenarios[i], {}); this.cache.set(`${i}|base`, v); }
    return v;
  }
  /** The parameters figure i depends on (found on first use). */
  dependsOn(i: number): readonly CostParam[] {
    let d = this.sensitive[i];
    if (d === null) {
      const base = this.baseOf(i);
      d = this.params.filter((p) => Math.abs(this.run(this.scenarios[i], { [p]: 2 }) - base) > 1e-9 * Math.max(1, Math.abs(base)));
      this.sensitive[i] = d;
    }
    return d;
  }
  predict(i: number, f: Factors): number {
    this.asked++;
    if (Object.values(f).every((x) => x === 1)) return this.baseOf(i);
    const dep = this.dependsOn(i);
    if (dep.every((p) => (f[p] ?? 1) === 1)) return this.baseOf(i);
    const key = `${i}|${dep.map((p) => f[p] ?? 1).join(',')}`;
    let v = this.cache.get(key);
    if (v === undefined) { v = this.run(this.scenarios[i], f); this.cache.set(key, v); }
    return v;
  }
  loss(i: number, f: Factors): number { return loss(this.scenarios[i], this.predict(i, f)); }
}

/** Coordinate descent over FIT_PARAMS × FACTORS on the figures `use` (default all) of `pr`. */
export function fit(pr: Predictor, use: readonly number[] = pr.scenarios.map((_, i) => i), rounds = 2): FitResult {
  const factors: Factors = {};
  const asked0 = pr.asked;
  const runs0 = pr.runs;
  const losses = (f: Factors): number[] => use.map((i) => pr.loss(i, f));
  const sum = (l: number[]) => l.reduce((a, b) => a + b, 0);
  let cur = losses(factors);
  const movedBy: Record<string, string[]> = {};
  for (let r = 0; r < rounds; r++) {
    let moved = false;
    for (const p of pr.params) {
      if (!use.some((i) => pr.dependsOn(i).includes(p))) continue; // no figure here prices it
      let best = { f: factors[p] ?? 1, l: cur };
      for (const x of FACTORS) {
        if (x === (factors[p] ?? 1)) continue;
        const l = losses({ ...factors, [p]: x });
        if (sum(l) < sum(best.l) - 1e-4) best = { f: x, l }; // a real improvement, not a rounding one
      }
      if (best.f !== (factors[p] ?? 1)) {
        const deltas = use.map((i, k) => ({ fig: pr.scenarios[i].calibration!.figure, d: Math.abs(best.l[k] - cur[k]) })).filter((x) => x.d > 1e-6).sort((a, b) => b.d - a.d);
        movedBy[p] = deltas.map((x) => x.fig);
        if (best.f === 1) delete factors[p]; else factors[p] = best.f;
        cur = best.l;
        moved = true;
      }
    }
    if (!moved) break;
  }
  return { factors, objective: sum(cur), movedBy, evaluations: pr.asked - asked0, engineRuns: pr.runs - runs0 };
}

/** For each figure: fit on the others, predict it. */
export function leaveOneOut(pr: Predictor, rounds = 2): { figure: string; factors: Factors; result: CalibrationResult }[] {
  return pr.scenarios.map((s, i) => {
    const f = fit(pr, pr.scenarios.map((_, j) => j).filter((j) => j !== i), rounds).factors;
    return { figure: s.calibration!.figure, factors: f, result: judge(s, pr.predict(i, f)) };
  });
}

/** The text of a scenario file, for reports that show where a figure comes from. */
export function calibrationSource(s: Scenario): string {
  return readFileSync(s.file, 'utf8');
}
