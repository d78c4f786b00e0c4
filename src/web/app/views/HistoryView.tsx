// History and diff (issue 13): the stored runs (kasi history --json); open one (kasi show --json)
// into the leak and cost views, or compare two (kasi diff --json).
import { useEffect, useState } from 'react';
import { api, fmtPct, type RunDiff, type RunSummary, type SeedsReport } from '../api.ts';
import type { OpenReport } from '../App.tsx';

export function HistoryView({ onOpen }: { onOpen: (o: OpenReport) => void }) {
  const [runs, setRuns] = useState<RunSummary[] | null>(null);
  const [err, setErr] = useState<string | null>(null);
  const [pick, setPick] = useState<number[]>([]);
  const [diff, setDiff] = useState<RunDiff | null>(null);
  useEffect(() => { api<RunSummary[]>('/api/history?limit=100').then(setRuns, (e) => setErr(e.message)); }, []);
  const open = (id: number) => api<{ report: SeedsReport; scenario: { name: string } }>(`/api/history/${id}`).then((s) => onOpen({ report: s.report, label: `stored run ${id} (${s.scenario.name})` }), (e) => setErr(e.message));
  const toggle = (id: number) => setPick((p) => (p.includes(id) ? p.filter((x) => x !== id) : [...p, id].slice(-2)));
  const compare = () => api<RunDiff>(`/api/diff/${Math.min(...pick)}/${Math.max(...pick)}`).then(setDiff, (e) => setErr(e.message));
  if (err) return <div className="error">{err}</div>;
  if (runs === null) return <div className="note">Loading…</div>;
  return (
    <div>
      <h2>History</h2>
      {runs.length === 0 ? <div className="empty">The store holds no runs yet: start one from Run.</div> : (
        <div className="panel">
          <div className="row"><button disabled={pick.length !== 2} onClick={compare} data-testid="diff-go">Diff the two ticked</button><span className="note">tick two runs to compare them</span></div>
          <table data-testid="history-table">
            <thead><tr><th /><th>id</th><th>when (UTC)</th><th>scenario</th><th className="num">seeds</th><th className="num">leaking cells</th><th className="num">largest overhead</th><th>kasi</th><th /></tr></thead>
            <tbody>{runs.map((r) => (
              <tr key={r.id}>
                <td><input type="checkbox" checked={pick.includes(r.id)} onChange={() => toggle(r.id)} /></td>
                <td>{r.id}</td><td>{r.created_at.replace('T', ' ').replace(/\.\d+Z$/, '')}</td><td>{r.scenario}</td>
                <td className="num">{r.seeds}</td><td className="num">{r.leaks}{r.unstable ? ` (${r.unstable} stored as unstable)` : ''}</td>
                <td className="num">{fmtPct(r.max_overhead_pct)}</td><td className="note">{r.kasi_version} {r.git_commit?.slice(0, 12) ?? ''}</td>
                <td><button onClick={() => open(r.id)} data-testid={`open-${r.id}`}>Open</button></td>
              </tr>
            ))}</tbody>
          </table>
        </div>
      )}
      {diff && <DiffPanel d={diff} />}
    </div>
  );
}

function DiffPanel({ d }: { d: RunDiff }) {
  const cell = (c: RunDiff['leaks_gained'][number]) => `${c.set}: ${c.attack} → ${c.secret} (${c.a ? `${c.a.seeds_leaked}/${c.a.seeds}` : '—'} → ${c.b ? `${c.b.seeds_leaked}/${c.b.seeds}` : '—'})`;
  return (
    <div className="panel" data-testid="diff">
      <h3>Run {d.a} → run {d.b}</h3>
      <h3>Scenario</h3>
      {d.scenario.length === 0 ? <p className="note">Same scenario.</p> : <table><tbody>{d.scenario.slice(0, 30).map((c) => <tr key={c.path}><td className="mono">{c.path}</td><td className="mono">{c.a ?? '—'}</td><td className="mono">{c.b ?? '—'}</td></tr>)}</tbody></table>}
      <h3>Leaks gained ({d.leaks_gained.length}) and lost ({d.leaks_lost.length})</h3>
      <ul>{d.leaks_gained.map((c) => <li key={'g' + cell(c)}>+ {cell(c)}</li>)}{d.leaks_lost.map((c) => <li key={'l' + cell(c)}>− {cell(c)}</li>)}</ul>
      {d.rate_changed.length > 0 ? <>
        <h3>Leak rates changed ({d.rate_changed.length})</h3>
        <p className="note">Leaking in both runs; their 95% intervals apart, or rare in one only.</p>
        <ul data-testid="diff-rates">{d.rate_changed.map((c) => <li key={'r' + cell(c)}>{cell(c)}</li>)}</ul>
      </> : null}
      <h3>Overhead</h3>
      <table><thead><tr><th>set</th><th className="num">a</th><th className="num">b</th><th className="num">Δ</th></tr></thead>
        <tbody>{d.costs.map((c) => <tr key={c.set}><td>{c.set}</td><td className="num">{c.cut_short.a ? 'killed' : fmtPct(c.overhead_pct.a)}</td><td className="num">{c.cut_short.b ? 'killed' : fmtPct(c.overhead_pct.b)}</td><td className="num">{c.cut_short.a || c.cut_short.b ? '-' : fmtPct(c.overhead_pct.delta)}</td></tr>)}</tbody></table>
    </div>
  );
}
