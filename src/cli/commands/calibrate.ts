/**
 * `kasi calibrate [--dir DIR] [--json] [--fit | --fit-all] [--leave-one-out] [--markdown]`: every calibration scenario of
 * DIR (default examples/calibration) through the engine, predicted against published (sim/calibrate.ts).
 * --fit moves the global prices it may (FIT_PARAMS) to minimise the error of the figures it
 * reproduces (--fit-all: of every figure, the known misses too), prints the fitted factors beside
 * the old prices, which figures moved each, and each price's valley (the range over which the
 * figures fit as well, sim/calibrate.ts valley()); nothing is written. --leave-one-out
 * (implies the fit) predicts each figure from a fit on the others, and from a fit on the figures of
 * other publications only (leave-source-out). --markdown prints README.md's
 * calibration table (implies --leave-one-out).
 */
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { writeOutput } from './mappings.ts';
import { FACTORS, fit, judge, leaveOneOut, leaveSourceOut, Predictor, sourceKey, steersFit, valley, VALLEY_SLACK, type CalibrationResult, type ValleyRange } from '../../sim/calibrate.ts';
import { loadCalibrations } from '../../scenario/calibrations.ts';
import { getCostModel } from '../../sim/costs.ts';

const FACTORS_TEXT = `×${FACTORS[0]} .. ×${FACTORS[FACTORS.length - 1]}`;

const DEFAULT_DIR = fileURLToPath(new URL('../../../examples/calibration', import.meta.url));

interface Opts { dir?: string; json?: boolean; fit?: boolean; fitAll?: boolean; leaveOneOut?: boolean; markdown?: boolean }

function row(r: CalibrationResult, extra = ''): string[] {
  const pub = r.band !== null ? `${r.published} (band ${r.band[0]}..${r.band[1]})` : `${r.published} ±${r.tolerance_pct}%`;
  return [r.figure, r.metric, pub, String(r.predicted), `${r.error_pct}%`, r.within ? 'yes' : 'NO', extra];
}

function table(head: string[], rows: string[][]): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => (c ?? '').padEnd(w[i])).join('  ').trimEnd();
  return [line(head), w.map((n) => '-'.repeat(n)).join('  '), ...rows.map(line)].join('\n');
}

const num = (r: CalibrationResult, v: number) => (r.metric === 'overhead_pct' ? `${+v.toFixed(1)}%` : `${+v.toFixed(3)}${r.metric === 'throughput_ratio' ? '×' : ' ns'}`);
const cell = (r: CalibrationResult) => `${num(r, r.predicted)} (${r.error_pct > 0 ? '+' : ''}${r.error_pct}%)${r.within ? '' : ' ✗'}`;

/** The README's table: figure, published, predicted at the default prices, in-sample fit, leave-one-out, leave-source-out (errors in brackets, ✗ outside tolerance or band). */
function markdown(base: CalibrationResult[], fitted: CalibrationResult[], loo: CalibrationResult[], lso: CalibrationResult[], factors: object, ranges: readonly ValleyRange[], steeredBy: string): string {
  const out = ['| figure | published | predicted (default prices) | in-sample fit | leave-one-out | leave-source-out | status |', '|---|---|---|---|---|---|---|'];
  base.forEach((r, i) => {
    const pub = r.band !== null ? `${num(r, r.band[0])}..${num(r, r.band[1])}` : `${num(r, r.published)} ±${r.tolerance_pct}%`;
    out.push(`| ${r.figure} | ${pub} | ${cell(r)} | ${cell(fitted[i])} | ${cell(loo[i])} | ${cell(lso[i])} | ${r.status} |`);
  });
  out.push('', `In-sample fit factors (fitted on ${steeredBy}): \`${JSON.stringify(factors)}\`.`, '');
  out.push(`The valley (each price held at each factor of the grid, the others fitted again; kept while the objective stays within ${VALLEY_SLACK} of the best):`, '');
  out.push('| price | fitted | as good over | rises below | rises above |', '|---|---|---|---|---|');
  for (const v of ranges) out.push(`| ${v.param} | ×${v.fitted} | ${span(v)} | ${v.pinnedLoBy.join(', ') || '-'} | ${v.pinnedHiBy.join(', ') || '-'} |`);
  return out.join('\n') + '\n';
}

/** A valley's range: ≤ / ≥ where it runs to the grid's end (the figures do not bound it there). */
const span = (v: ValleyRange) => `${v.openLo ? '≤' : ''}×${v.lo} .. ${v.openHi ? '≥' : ''}×${v.hi}${v.betterAt !== null ? ` (a better fit at ×${v.betterAt}: the search stopped short)` : ''}`;

export function calibrateReport(o: Opts): string {
  const scenarios = loadCalibrations(o.dir ?? DEFAULT_DIR);
  const pr = new Predictor(scenarios);
  const results = scenarios.map((s, i) => judge(s, pr.predict(i, {})));
  const steer = scenarios.map((s) => o.fitAll === true || steersFit(s));
  const use = scenarios.map((_, i) => i).filter((i) => steer[i]);
  const fitted = o.fit || o.fitAll || o.leaveOneOut || o.markdown ? fit(pr, use) : null;
  const ranges = fitted ? valley(pr, fitted, use) : null;
  const inSample = fitted ? scenarios.map((s, i) => judge(s, pr.predict(i, fitted.factors))) : null;
  const loo = o.leaveOneOut || o.markdown ? leaveOneOut(pr, 4, steer) : null;
  const lso = o.leaveOneOut || o.markdown ? leaveSourceOut(pr, 4, steer) : null;
  if (o.markdown) return markdown(results, inSample!, loo!.map((x) => x.result), lso!.map((x) => x.result), fitted!.factors, ranges!, o.fitAll === true ? `all ${use.length} figures, the known misses too` : `the ${use.length} figures marked reproduced`);
  if (o.json) {
    return JSON.stringify({
      figures: results,
      ...(fitted ? { fit: { factors: fitted.factors, objective: fitted.objective, steered_by: use.map((i) => scenarios[i].calibration!.figure), moved_by: fitted.movedBy, valley: ranges, valley_slack: VALLEY_SLACK, evaluations: fitted.evaluations, engine_runs: pr.runs, figures: inSample } } : {}),
      ...(loo ? { leave_one_out: loo.map((x) => ({ ...x.result, factors: x.factors })) } : {}),
      ...(lso ? { leave_source_out: lso.map((x, i) => ({ ...x.result, source_key: sourceKey(scenarios[i]), factors: x.factors })) } : {}),
    }, null, 2) + '\n';
  }
  const out = [`kasi calibrate: ${scenarios.length} figures (${o.dir ?? 'examples/calibration'})`, ''];
  out.push(table(['figure', 'metric', 'published', 'predicted', 'error', 'within', 'source'], results.map((r) => row(r, r.source))));
  const missed = results.filter((r) => r.status === 'missed');
  if (missed.length > 0) out.push('', 'Known misses (the figure files say why):', ...missed.map((r) => `  ${r.figure}: ${r.note}`));
  if (fitted && inSample) {
    out.push('', `Fit (global prices as factors on every CPU profile; written nowhere; searched on a linear surrogate, every figure below an engine run; ${pr.runs} engine runs in all):`);
    const sk = getCostModel('skylake-sp');
    for (const [k, f] of Object.entries(fitted.factors)) {
      const c = sk.params[k as keyof typeof sk.params].cycles;
      out.push(`  ${k}: × ${f} (skylake-sp ${c} → ${+(c * f!).toPrecision(3)} cycles), moved by ${fitted.movedBy[k]?.join(', ') || '-'}`);
    }
    if (Object.keys(fitted.factors).length === 0) out.push('  no parameter moved');
    const left = scenarios.length - use.length;
    out.push(`  fitted on ${use.length} figures${left > 0 ? ` (the ${left} known misses are predicted but steer nothing; --fit-all lets them)` : ''}`);
    out.push('', `The valley: each price held at each grid factor (${FACTORS_TEXT}), the others fitted again; the range where the objective stays within ${VALLEY_SLACK} of the best (≤/≥: to the grid's end, the figures leave it free there), and the figures that lose most just outside it:`);
    out.push(table(['price', 'fitted', 'as good over', 'rises below', 'rises above'], ranges!.map((v) => [v.param, `×${v.fitted}`, span(v), v.pinnedLoBy.join(', ') || '-', v.pinnedHiBy.join(', ') || '-'])));
    out.push('', table(['figure', 'metric', 'published', 'fitted', 'error', 'within', ''], inSample.map((r) => row(r))));
  }
  if (loo) {
    out.push('', 'Leave-one-out (each figure predicted by a fit on the others):');
    out.push(table(['figure', 'metric', 'published', 'predicted', 'error', 'within', 'factors'], loo.map((x) => row(x.result, JSON.stringify(x.factors)))));
  }
  if (lso) {
    out.push('', 'Leave-source-out (each figure predicted by a fit on the figures of other publications only):');
    out.push(table(['figure', 'metric', 'published', 'predicted', 'error', 'within', 'factors'], lso.map((x) => row(x.result, JSON.stringify(x.factors)))));
  }
  return out.join('\n') + '\n';
}

export function registerCalibrate(program: Command): void {
  program
    .command('calibrate')
    .description('the cost model against published figures: predicted vs published, optionally fitted and leave-one-out')
    .option('--dir <dir>', 'calibration scenarios (default: examples/calibration)')
    .option('--json', 'one JSON object: figures [{figure, source, published, predicted, error_pct, ...}], fit, leave_one_out')
    .option('--fit', 'fit the global prices kasi may move on the figures it reproduces, print the fitted values and the range over which each fits as well (writes nothing)')
    .option('--fit-all', 'as --fit, the known misses steering the fit too')
    .option('--leave-one-out', 'for each figure: fit on the others, and on other publications only, and predict it (implies --fit)')
    .option('--markdown', "the README's table: published, predicted, in-sample fit and leave-one-out per figure (implies --leave-one-out)")
    .action((o: Opts) => { writeOutput(calibrateReport(o)); });
}
