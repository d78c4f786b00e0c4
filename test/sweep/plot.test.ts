/**
 * Sweep plots (src/sweep/plot.ts): Vega renders one line per mitigation set (per set and other
 * axis' value when the grid has more axes), the x axis is the swept path (log when the values span
 * 10x), the legend names the sets, and a .png is a PNG (resvg).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { plotSpec, plotSvg, writePlot, type PlotRow } from '../../src/sweep/plot.ts';

const TMP = mkdtempSync(join(tmpdir(), 'kasi-plot-'));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));
const rows: PlotRow[] = [1, 4, 16].flatMap((w) => [
  { params: { 'workload[0].mix[0].weight': w }, set: 'none', value: 0 },
  { params: { 'workload[0].mix[0].weight': w }, set: 'asi-2025', value: 3 * w },
]);
const o = { x: 'workload[0].mix[0].weight', metric: 'overhead_pct', title: 'tiny' };
/** Vega draws each line as its own line-mark group holding one path. */
const lines = (svg: string) => (svg.match(/<g class="mark-line role-mark[^"]*"[^>]*><path /g) ?? []).length;

describe('sweep plot', () => {
  it('one line per set, the swept path on a log x axis, the sets in the legend', async () => {
    const svg = await plotSvg(rows, o);
    expect(svg.startsWith('<svg')).toBe(true);
    expect(lines(svg)).toBe(2);
    for (const s of ['none', 'asi-2025', 'workload[0].mix[0].weight', 'overhead_pct', 'mitigation set']) expect(svg).toContain(`>${s}<`);
    expect((plotSpec(rows, o) as { encoding: { x: { scale: { type?: string } } } }).encoding.x.scale.type).toBe('log');
  });

  it('another axis makes a line per set and value; non-numbers are ordinal; PNG through resvg', async () => {
    const two = rows.flatMap((r) => [1, 2].map((c) => ({ ...r, params: { ...r.params, 'machine.cores': c } })));
    expect(lines(await plotSvg(two, o))).toBe(4);
    const iso = rows.map((r) => ({ ...r, params: { isolation: [{ name: `k${r.params['workload[0].mix[0].weight']}` }] } }));
    expect((plotSpec(iso, { ...o, x: 'isolation' }) as { encoding: { x: { type: string; sort: string[] } } }).encoding.x).toMatchObject({ type: 'ordinal', sort: ['[k1]', '[k4]', '[k16]'] });
    const png = join(TMP, 'p.png');
    await writePlot(png, rows, o);
    expect(readFileSync(png).subarray(0, 8).toString('hex')).toBe('89504e470d0a1a0a');
  });
});
