// Leak heatmap (issue 13): attack × secret rows, one column per mitigation set; a cell's colour
// is its verdict and the fraction of seeds that leaked (sim/seeds.ts); clicking it opens the
// secret, the bytes recovered, when, by which mechanism and its statistics over the seeds.
import { useState } from 'react';
import { fmtNum, type CellStats, type SetStats } from '../api.ts';
import { NoReport, type OpenReport } from '../App.tsx';

const VERDICT_BG: Record<string, (f: number) => string> = {
  leaks: (f) => `hsl(0 70% ${72 - 30 * f}%)`,
  unstable: (f) => `hsl(38 90% ${78 - 20 * f}%)`,
  'no leak': () => '#e6f4ea',
};

export function LeaksView({ open, onRun }: { open: OpenReport | null; onRun: () => void }) {
  const [sel, setSel] = useState<{ set: number; row: number } | null>(null);
  if (open === null) return <NoReport onRun={onRun} />;
  const r = open.report;
  const rows = r.mitigations[0]?.matrix.map((c) => ({ attack: c.attack, secret: c.secret, owner: c.owner })) ?? [];
  const cellOf = (s: SetStats, i: number): CellStats | undefined => s.matrix.find((c) => c.attack === rows[i].attack && c.secret === rows[i].secret);
  const chosen = sel && { set: r.mitigations[sel.set], cell: cellOf(r.mitigations[sel.set], sel.row) };
  return (
    <div>
      <h2>Leaks — {r.scenario}</h2>
      <p className="note">{r.seeds} seeds from {r.seed}; CPU {r.cpu}; {r.stop}; baseline {r.baseline}. A cell: seeds that leaked / seeds; red = leaks (in at least one seed; darker, more seeds), green = no leak (amber: unstable, in runs stored before the any-seed verdict).</p>
      <div className="split">
        <div className="panel" style={{ overflowX: 'auto' }}>
          <table className="heat" data-testid="heatmap">
            <thead><tr><th>attack</th><th>secret (owner)</th>{r.mitigations.map((s) => <th key={s.name} className="set" title={s.cmdline}>{s.name}{s.same_as ? ` (= ${s.same_as})` : ''}</th>)}</tr></thead>
            <tbody>
              {rows.map((row, i) => (
                <tr key={`${row.attack}/${row.secret}`}>
                  <td>{row.attack}</td><td>{row.secret} <span className="note">({row.owner})</span></td>
                  {r.mitigations.map((s, k) => {
                    const c = cellOf(s, i);
                    if (c === undefined) return <td key={s.name} className="cell">—</td>;
                    const f = c.seeds_leaked / c.seeds;
                    return (
                      <td key={s.name} className={`cell${sel?.set === k && sel.row === i ? ' sel' : ''}`} style={{ background: VERDICT_BG[c.verdict](f), color: c.verdict === 'leaks' ? '#fff' : undefined }}
                        data-testid={`cell-${s.name}-${row.attack}-${row.secret}`} data-verdict={c.verdict} onClick={() => setSel({ set: k, row: i })}>
                        {c.seeds_leaked}/{c.seeds}
                      </td>
                    );
                  })}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
        <div className="panel" data-testid="cell-detail">
          {chosen?.cell ? <CellDetail set={chosen.set} c={chosen.cell} seed0={r.seed} /> : <p className="note">Click a cell.</p>}
        </div>
      </div>
    </div>
  );
}

function CellDetail({ set, c, seed0 }: { set: SetStats; c: CellStats; seed0: number }) {
  const secret = set.secrets.find((s) => s.name === c.secret);
  return (
    <div>
      <h3>{c.secret} under {set.name}</h3>
      <table className="kv"><tbody>
        <tr><td>verdict</td><td data-testid="detail-verdict">{c.verdict} ({c.seeds_leaked} of {c.seeds} seeds)</td></tr>
        {c.leak_rate_ci95 === undefined ? null : <tr><td>leak rate per run</td><td data-testid="detail-rate">{Math.floor(100 * c.leak_rate_ci95[0] + 1e-9)}–{Math.ceil(100 * c.leak_rate_ci95[1] - 1e-9)}% (95% interval, Wilson)</td></tr>}
        {c.rare ? <tr><td>rare</td><td data-testid="detail-rare">another {c.seeds} seeds could well show no leak: run more to decide it</td></tr> : null}
        <tr><td>mechanism</td><td>{c.attack}</td></tr>
        <tr><td>secret</td><td>{c.secret} of {c.owner}, {c.of} bytes{secret ? <span className="note mono"> at {secret.pa.join(', ')}</span> : null}</td></tr>
        <tr><td>bytes recovered</td><td>{c.bytes_median === null ? 'none' : `${fmtNum(c.bytes_median)} of ${c.of} (median over the seeds that leaked)`}</td></tr>
        <tr><td>first leak</td><td>{c.first_leak_ns_median === null ? '—' : `${fmtNum(c.first_leak_ns_median)} ns (median)`}</td></tr>
        <tr><td>mitigations</td><td className="mono">{set.cmdline || '(default command line)'}; design {set.design}{set.stun ? ', stun' : ''}</td></tr>
      </tbody></table>
      <h3>Per seed</h3>
      <table><thead><tr><th>seed</th><th className="num">bytes</th><th className="num">first leak (ns)</th></tr></thead>
        <tbody>{c.bytes_by_seed.map((b, i) => <tr key={i}><td>{seed0 + i}</td><td className="num">{b}</td><td className="num">{fmtNum(c.first_leak_ns_by_seed[i])}</td></tr>)}</tbody></table>
      {set.notes.length > 0 && <><h3>Notes of this set</h3><ul className="note">{set.notes.slice(0, 8).map((n) => <li key={n}>{n}</li>)}</ul></>}
    </div>
  );
}
