// Costs (issue 13): each mitigation set's median overhead with its spread over the seeds (uPlot),
// the cycles by event kind, and the ASI exits by cause — the report's own numbers; and the
// run's timeline (Timeline.tsx).
import { useEffect, useRef } from 'react';
import uPlot from 'uplot';
import { fmtNum, fmtPct, type SeedsReport } from '../api.ts';
import { Timeline } from './Timeline.tsx';
import { cutShort } from '../../../report/cut-short.ts';
import { NoReport, type OpenReport } from '../App.tsx';

export function CostsView({ open, onRun }: { open: OpenReport | null; onRun: () => void }) {
  if (open === null) return <NoReport onRun={onRun} />;
  const r = open.report;
  const kinds = [...new Set(r.mitigations.flatMap((s) => Object.keys(s.costs.by_kind)))];
  return (
    <div>
      <h2>Costs — {r.scenario}</h2>
      <div className="panel">
        <h3>Overhead against {r.baseline} (median over {r.seeds} seeds; whiskers: min–max)</h3>
        <OverheadChart r={r} />
      </div>
      <div className="panel" style={{ overflowX: 'auto' }}>
        <h3>Cycles by event kind (median per set)</h3>
        <table data-testid="costs-table">
          <thead><tr><th>set</th><th className="num">overhead</th><th className="num">cycles</th>{kinds.map((k) => <th key={k} className="num">{k}</th>)}</tr></thead>
          <tbody>{r.mitigations.map((s) => (
            <tr key={s.name}>
              <td>{s.name}</td><td className="num">{cutShort(r, s) ? <span title="a kill cut this set's workload short: its cycles are of less work than the baseline's">killed</span> : fmtPct(s.costs.overhead_pct)}</td><td className="num">{fmtNum(s.costs.cycles)}</td>
              {kinds.map((k) => {
                const c = s.costs.by_kind[k] ?? 0;
                return <td key={k} className="num" title={`${((100 * c) / s.costs.cycles).toFixed(1)}% of the set's cycles`}>{fmtNum(c)}<br /><span className="bar" style={{ width: `${Math.round((60 * c) / s.costs.cycles)}px` }} /></td>;
              })}
            </tr>
          ))}</tbody>
        </table>
      </div>
      <div className="panel">
        <h3>ASI exits by cause</h3>
        {r.mitigations.every((s) => s.asi_exit_reasons.length === 0) ? <p className="note">No set of this run made an ASI exit.</p> : r.mitigations.filter((s) => s.asi_exit_reasons.length > 0).map((s) => (
          <div key={s.name}>
            <h3>{s.name} <span className="note">(asi_exits {fmtNum(s.costs.counts.asi_exits)})</span></h3>
            <table><thead><tr><th>event</th><th>part</th><th>object</th><th className="num">exits (all seeds)</th><th className="num">seeds</th><th>first VA</th></tr></thead>
              <tbody>{s.asi_exit_reasons.slice(0, 20).map((x, i) => <tr key={i}><td>{x.event}</td><td>{x.part}</td><td>{x.object}</td><td className="num">{fmtNum(x.count)}</td><td className="num">{x.seeds}</td><td className="mono">{x.va}</td></tr>)}</tbody></table>
          </div>
        ))}
      </div>
      <Timeline job={open.job} />
    </div>
  );
}

function OverheadChart({ r }: { r: SeedsReport }) {
  const el = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (el.current === null) return;
    const names = r.mitigations.map((s) => s.name);
    const xs = names.map((_, i) => i);
    // A set a kill cut short has no overhead (report/cut-short.ts): no bar, no whisker.
    const short = r.mitigations.map((s) => cutShort(r, s));
    const med = r.mitigations.map((s, i) => (short[i] ? null : s.costs.overhead_pct));
    const lo = r.mitigations.map((s) => s.costs.spread.overhead_pct.min);
    const hi = r.mitigations.map((s) => s.costs.spread.overhead_pct.max);
    const whiskers: uPlot.Plugin = {
      hooks: {
        draw: (u) => {
          const c = u.ctx;
          c.save();
          c.strokeStyle = '#1d2430';
          c.lineWidth = 1.5 * devicePixelRatio;
          xs.forEach((x, i) => {
            if (short[i]) return;
            const px = u.valToPos(x, 'x', true);
            c.beginPath();
            c.moveTo(px, u.valToPos(lo[i], 'y', true));
            c.lineTo(px, u.valToPos(hi[i], 'y', true));
            c.stroke();
          });
          c.restore();
        },
      },
    };
    const u = new uPlot({
      width: Math.min(1100, el.current.clientWidth || 900), height: 280, plugins: [whiskers], legend: { show: false },
      scales: { x: { time: false, range: [-0.6, names.length - 0.4] }, y: { range: (_u, a, b) => [Math.min(0, a), Math.max(1, b) * 1.1] } },
      axes: [{ values: (_u, ticks) => ticks.map((t) => names[t] ?? ''), splits: () => xs, size: 40 }, { label: 'overhead %', size: 60 }],
      series: [{}, { label: 'median overhead %', fill: '#2b6cb0aa', stroke: '#2b6cb0', paths: uPlot.paths.bars!({ size: [0.6, 60] }), points: { show: false } }],
    }, [xs, med], el.current);
    return () => u.destroy();
  }, [r]);
  return <div ref={el} data-testid="overhead-chart" />;
}
