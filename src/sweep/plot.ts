/**
 * `kasi sweep … --plot out.svg|png`: the metric against the swept parameter, one line per
 * mitigation set (issue 12), drawn by a chart library: a Vega-Lite spec (vega-lite compile()) run
 * by a headless Vega View (renderer 'none', View.toSVG()), and for PNG the SVG rasterized by resvg
 * (@resvg/resvg-js, system fonts). When the grid has other axes than the x axis, each combination
 * of their values is its own line ("asi-2025 · machine.cores=8"). A numeric x axis is
 * quantitative (log scale when its values span 10× or more and are all above 0), anything else
 * ordinal in grid order.
 */
import { writeFileSync } from 'node:fs';
import { Resvg } from '@resvg/resvg-js';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { valueText } from './grid.ts';

export interface PlotRow {
  readonly params: Readonly<Record<string, unknown>>;
  readonly set: string;
  readonly value: number;
}

export interface PlotOptions {
  /** The swept path on the x axis. */
  readonly x: string;
  readonly metric: string;
  readonly title: string;
}

/** The Vega-Lite spec of `rows`. */
export function plotSpec(rows: readonly PlotRow[], o: PlotOptions): TopLevelSpec {
  const xs = rows.map((r) => r.params[o.x]);
  const numeric = xs.every((v) => typeof v === 'number');
  const nums = xs as number[];
  const log = numeric && nums.every((v) => v > 0) && Math.max(...nums) >= 10 * Math.min(...nums);
  const order = [...new Set(xs.map((v) => valueText(v)))];
  const values = rows.map((r) => {
    const others = Object.entries(r.params).filter(([k]) => k !== o.x).map(([k, v]) => `${k}=${valueText(v)}`).join(', ');
    return { x: numeric ? r.params[o.x] : valueText(r.params[o.x]), value: r.value, line: others === '' ? r.set : `${r.set} · ${others}` };
  });
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: o.title,
    width: 520,
    height: 320,
    background: 'white',
    data: { values },
    mark: { type: 'line', point: true },
    encoding: {
      x: numeric ? { field: 'x', type: 'quantitative', title: o.x, scale: log ? { type: 'log', nice: false } : { zero: false } } : { field: 'x', type: 'ordinal', title: o.x, sort: order },
      y: { field: 'value', type: 'quantitative', title: o.metric },
      color: { field: 'line', type: 'nominal', title: 'mitigation set', legend: { labelLimit: 360 } },
      tooltip: [{ field: 'line' }, { field: 'x' }, { field: 'value' }],
    },
  } as TopLevelSpec;
}

/** The chart as SVG text. */
export async function plotSvg(rows: readonly PlotRow[], o: PlotOptions): Promise<string> {
  const view = new vega.View(vega.parse(compile(plotSpec(rows, o)).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Write the chart to `file`: PNG when it ends in .png, else SVG. */
export async function writePlot(file: string, rows: readonly PlotRow[], o: PlotOptions): Promise<void> {
  const svg = await plotSvg(rows, o);
  if (/\.png$/i.test(file)) writeFileSync(file, new Resvg(svg, { background: 'white', fitTo: { mode: 'zoom', value: 2 } }).render().asPng());
  else writeFileSync(file, svg);
}
