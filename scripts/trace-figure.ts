/**
 * `npx tsx scripts/trace-figure.ts TRACE.json SET FROM_US TO_US OUT.png`: a picture of one
 * mitigation set's tracks of a `kasi run --trace` file over a time window, drawn from the JSON with
 * Vega-Lite (the slices as bars per hardware thread, the main instants as marks above them), for
 * docs/trace.md. The file itself is for ui.perfetto.dev; this is what it shows, without a browser.
 *
 *   kasi run --duration 200us --seeds 1 --no-store --trace /tmp/t.json
 *   npx tsx scripts/trace-figure.ts /tmp/t.json asi-2025-stun 40 70 docs/trace-example.png
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { Resvg } from '@resvg/resvg-js';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { SLICE_KINDS } from '../src/report/trace.ts';

interface Ev { name: string; ph: string; pid: number; tid?: number; ts?: number; dur?: number; args?: Record<string, unknown> }

const [file, set, from, to, out] = process.argv.slice(2);
if (out === undefined) throw new Error('usage: trace-figure.ts TRACE.json SET FROM_US TO_US OUT.png');
const T0 = Number(from), T1 = Number(to);
const evs = (JSON.parse(readFileSync(file, 'utf8')) as { traceEvents: Ev[] }).traceEvents;
const pid = evs.find((e) => e.name === 'process_name' && e.args?.name === set)?.pid;
if (pid === undefined) throw new Error(`no mitigation set ${set} in ${file}`);
const names = new Map(evs.filter((e) => e.name === 'thread_name' && e.pid === pid).map((e) => [e.tid, String(e.args!.name)]));
const mine = evs.filter((e) => e.pid === pid && e.ph !== 'M');
const slices = mine.filter((e) => e.ph === 'X' && e.ts! + e.dur! > T0 && e.ts! < T1)
  .map((e) => ({ thread: names.get(e.tid), from: Math.max(T0, e.ts!), to: Math.min(T1, e.ts! + e.dur!), mode: e.name }));
const SHOWN = ['asi-exit', 'asi-enter', 'fault', 'l1d-flush', 'verw', 'stun', 'attack'];
const instants = mine.filter((e) => e.ph === 'i' && e.ts! >= T0 && e.ts! <= T1 && SHOWN.includes(e.name)).map((e) => ({ thread: names.get(e.tid), at: e.ts, event: e.name }));
const spec = {
  width: 900, height: 220, background: 'white',
  title: `kasi run --trace: set ${set}, ${T0}–${T1} µs`,
  layer: [
    {
      data: { values: slices }, mark: { type: 'bar', height: 22 },
      encoding: {
        y: { field: 'thread', type: 'nominal', title: null }, x: { field: 'from', type: 'quantitative', title: 'µs', scale: { domain: [T0, T1] } }, x2: { field: 'to' },
        color: { field: 'mode', type: 'nominal', title: 'slice', scale: { domain: [...SLICE_KINDS], range: ['#8fbc8f', '#9ecae1', '#e6550d', '#fdae6b', '#d9d9d9'] } },
      },
    },
    {
      data: { values: instants }, mark: { type: 'point', filled: true, size: 60, yOffset: -14 },
      encoding: { y: { field: 'thread', type: 'nominal' }, x: { field: 'at', type: 'quantitative' }, shape: { field: 'event', type: 'nominal', title: 'instant' }, fill: { value: 'black' } },
    },
  ],
  config: { legend: { labelLimit: 300 } },
} as TopLevelSpec;
const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
writeFileSync(out, new Resvg(await view.toSVG(), { background: 'white', fitTo: { mode: 'zoom', value: 1.5 } }).render().asPng());
view.finalize();
