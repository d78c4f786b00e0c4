// A run's timeline (issue 13, Costs): the trace `kasi run --trace` writes (report/trace-run.ts),
// fetched from /api/runs/:id/trace — one mitigation set at a time, a row per hardware thread,
// its slices (guest / user / kernel on the full or the restricted tables / idle) and instants
// (ASI exits and entries, faults, flushes, stuns, attacks) on a canvas. Drag to zoom into a span.
import { useEffect, useRef, useState } from 'react';
import { api } from '../api.ts';

interface Ev { name: string; ph: 'X' | 'i' | 'M'; ts?: number; dur?: number; pid: number; tid?: number; args?: Record<string, unknown> }
interface Trace { traceEvents: Ev[]; otherData: { seed: number; dropped_events: Record<string, number> } }

const SLICE: Record<string, string> = { guest: '#dd6b20', user: '#38a169', 'kernel-full': '#2b6cb0', 'kernel-restricted': '#90cdf4', idle: '#e2e8f0' };
const INSTANT: Record<string, string> = {
  'asi-exit': '#c53030', 'asi-enter': '#2f855a', fault: '#6b46c1', 'l1d-flush': '#b7791f', verw: '#975a16', 'tlb-flush': '#4a5568',
  stun: '#e53e3e', attack: '#000', 'context-switch': '#718096', ipi: '#d53f8c', ibpb: '#553c9a',
};
const ROW = 26;
const LABEL = 190;

export function Timeline({ job }: { job: number | undefined }) {
  const [trace, setTrace] = useState<Trace | null>(null);
  const [err, setErr] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [pid, setPid] = useState(1);
  const [win, setWin] = useState<[number, number] | null>(null);
  const canvas = useRef<HTMLCanvasElement>(null);
  const drag = useRef<number | null>(null);
  const width = 1100;

  const sets = trace ? trace.traceEvents.filter((e) => e.ph === 'M' && e.name === 'process_name').map((e) => ({ pid: e.pid, name: String(e.args?.name) })) : [];
  const threads = trace ? trace.traceEvents.filter((e) => e.ph === 'M' && e.name === 'thread_name' && e.pid === pid).map((e) => ({ tid: e.tid!, name: String(e.args?.name) })) : [];
  const evs = trace ? trace.traceEvents.filter((e) => e.pid === pid && e.ph !== 'M') : [];
  const end = evs.reduce((m, e) => Math.max(m, (e.ts ?? 0) + (e.dur ?? 0)), 0);
  const [t0, t1] = win ?? [0, end || 1];

  useEffect(() => {
    const c = canvas.current;
    if (c === null || trace === null) return;
    const h = threads.length * ROW * 2 + 24;
    const dpr = devicePixelRatio || 1;
    c.width = width * dpr; c.height = h * dpr; c.style.width = `${width}px`; c.style.height = `${h}px`;
    const ctx = c.getContext('2d')!;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, width, h);
    const X = (t: number) => LABEL + ((t - t0) / (t1 - t0)) * (width - LABEL);
    ctx.font = '12px system-ui, sans-serif';
    ctx.textBaseline = 'middle';
    threads.forEach((th, i) => { ctx.fillStyle = '#1d2430'; ctx.fillText(th.name.slice(0, 28), 4, i * ROW * 2 + ROW); });
    for (const e of evs) {
      const row = threads.findIndex((t) => t.tid === e.tid);
      if (row < 0) continue;
      const y = row * ROW * 2;
      if (e.ph === 'X') {
        const a = e.ts!, b = a + (e.dur ?? 0);
        if (b < t0 || a > t1) continue;
        ctx.fillStyle = SLICE[e.name] ?? '#a0aec0';
        ctx.fillRect(X(Math.max(a, t0)), y + ROW * 0.6, Math.max(1, X(Math.min(b, t1)) - X(Math.max(a, t0))), ROW);
      } else if (e.ts! >= t0 && e.ts! <= t1) {
        ctx.fillStyle = INSTANT[e.name] ?? '#000';
        ctx.fillRect(Math.round(X(e.ts!)), y + 2, 2, ROW * 0.5);
      }
    }
    ctx.fillStyle = '#5a6678';
    ctx.fillText(`${t0.toFixed(1)} µs`, LABEL, h - 8);
    const right = `${t1.toFixed(1)} µs`;
    ctx.fillText(right, width - ctx.measureText(right).width - 2, h - 8);
  }, [trace, pid, win]);

  if (job === undefined) {
    return <div className="unavailable" data-testid="timeline-unavailable"><strong>Timeline:</strong> available for runs started from the Run view of this server (the store keeps reports, not traces; <code>kasi run --trace FILE</code> writes one for ui.perfetto.dev).</div>;
  }
  const load = () => { setBusy(true); setErr(null); api<Trace>(`/api/runs/${job}/trace`).then((t) => { setTrace(t); setPid(1); setWin(null); }, (e) => setErr(e.message)).finally(() => setBusy(false)); };
  const at = (x: number) => t0 + ((x - LABEL) / (width - LABEL)) * (t1 - t0);
  const counts = new Map<string, number>();
  for (const e of evs) if (e.ph === 'i') counts.set(e.name, (counts.get(e.name) ?? 0) + 1);
  return (
    <div className="panel" data-testid="timeline">
      <h3>Timeline of the first seed</h3>
      {trace === null ? (
        <div className="row"><button onClick={load} disabled={busy} data-testid="timeline-load">{busy ? 'Tracing…' : 'Trace it (reruns seed with the recorder, as kasi run --trace)'}</button>{err && <span className="error">{err}</span>}</div>
      ) : (
        <>
          <div className="row">
            <label>set <select value={pid} onChange={(e) => { setPid(Number(e.target.value)); setWin(null); }} data-testid="timeline-set">{sets.map((s) => <option key={s.pid} value={s.pid}>{s.name}</option>)}</select></label>
            <button onClick={() => setWin(null)}>Whole run</button>
            <span className="note">seed {trace.otherData.seed}; {evs.length} events{(trace.otherData.dropped_events[sets.find((s) => s.pid === pid)?.name ?? ''] ?? 0) > 0 ? `, ${trace.otherData.dropped_events[sets.find((s) => s.pid === pid)!.name]} past the limit dropped` : ''}; drag across to zoom</span>
          </div>
          <canvas ref={canvas} data-testid="timeline-canvas"
            onMouseDown={(e) => { drag.current = e.nativeEvent.offsetX; }}
            onMouseUp={(e) => { const a = drag.current; drag.current = null; if (a !== null && Math.abs(e.nativeEvent.offsetX - a) > 4) setWin([at(Math.min(a, e.nativeEvent.offsetX)), at(Math.max(a, e.nativeEvent.offsetX))]); }} />
          <div className="legend" style={{ marginTop: 6 }}>
            {Object.entries(SLICE).map(([k, c]) => <span key={k}><i style={{ background: c }} />{k}</span>)}
            {Object.entries(INSTANT).filter(([k]) => counts.has(k)).map(([k, c]) => <span key={k}><i style={{ background: c }} />{k} ({counts.get(k)})</span>)}
          </div>
        </>
      )}
    </div>
  );
}
