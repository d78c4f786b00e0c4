// Run (issue 13): an example by name, or a scenario typed or uploaded (validated by the server
// with the loader's line:column errors); progress streams from the server (server-sent events),
// every open page sees the same run, a run can be cancelled, and the finished report opens.
import { useEffect, useRef, useState } from 'react';
import { api, ApiError, type JobEvent, type SeedsReport } from '../api.ts';
import type { OpenReport } from '../App.tsx';

type State = JobEvent & { source?: string; scenario?: string };

export function RunView({ onOpen }: { onOpen: (o: OpenReport) => void }) {
  const [examples, setExamples] = useState<string[]>([]);
  const [mode, setMode] = useState<'example' | 'upload'>('example');
  const [example, setExample] = useState('default');
  const [yaml, setYaml] = useState('');
  const [seeds, setSeeds] = useState(8);
  const [duration, setDuration] = useState('');
  const [err, setErr] = useState<string | null>(null);
  const [check, setCheck] = useState<string | null>(null);
  const [job, setJob] = useState<State | null>(null);
  const es = useRef<EventSource | null>(null);

  const follow = (id: number, openWhenDone: boolean) => {
    es.current?.close();
    const s = new EventSource(`/api/runs/${id}/events`);
    es.current = s;
    s.onmessage = (m) => {
      const e = JSON.parse(m.data) as State;
      setJob((j) => ({ ...j, ...e }));
      if (e.status !== 'running') {
        s.close();
        if (e.status === 'done' && openWhenDone) {
          api<{ report: SeedsReport; state: State }>(`/api/runs/${id}`).then((r) => onOpen({ report: r.report, label: `run ${id} (${r.report.scenario})`, job: id }));
        }
      }
    };
  };
  useEffect(() => {
    api<Array<{ name: string }>>('/api/examples').then((x) => setExamples(x.map((e) => e.name)), (e) => setErr(e.message));
    // A run already going (started here or from another page): show it.
    api<{ active: State | null }>('/api/runs').then((r) => { if (r.active) { setJob(r.active); follow(r.active.job, false); } });
    return () => es.current?.close();
  }, []);

  const body = () => ({ ...(mode === 'example' ? { example } : { yaml }), seeds, ...(duration.trim() ? { duration: duration.trim() } : {}) });
  const start = () => {
    setErr(null);
    api<State>('/api/runs', { body: body() }).then((s) => { setJob(s); follow(s.job, true); }, (e: ApiError) => setErr(e.message));
  };
  const validate = () => {
    setErr(null); setCheck(null);
    api<{ name: string; sets: string[] }>('/api/scenario/check', { body: { yaml } }).then((r) => setCheck(`valid: ${r.name}, ${r.sets.length} mitigation sets (${r.sets.join(', ')})`), (e: ApiError) => setErr(e.message));
  };
  const loadExample = () => api<{ text: string }>(`/api/examples/${example}`).then((e) => { setYaml(e.text); setMode('upload'); });
  const onFile = (f: File | undefined) => { if (f) f.text().then((t) => { setYaml(t); setMode('upload'); }); };
  const running = job?.status === 'running';
  return (
    <div>
      <h2>Run a scenario</h2>
      <div className="panel">
        <div className="row">
          <label><input type="radio" checked={mode === 'example'} onChange={() => setMode('example')} /> example</label>
          <select value={example} onChange={(e) => setExample(e.target.value)} data-testid="run-example">{examples.map((x) => <option key={x}>{x}</option>)}</select>
          <button onClick={loadExample}>Edit a copy</button>
          <label><input type="radio" checked={mode === 'upload'} onChange={() => setMode('upload')} data-testid="run-mode-upload" /> upload / typed</label>
          <input type="file" accept=".yaml,.yml" onChange={(e) => onFile(e.target.files?.[0])} />
        </div>
        {mode === 'upload' && (
          <div>
            <textarea className="mono" rows={14} cols={100} value={yaml} onChange={(e) => setYaml(e.target.value)} data-testid="run-yaml" spellCheck={false} />
            <div className="row"><button onClick={validate} data-testid="run-check">Check</button>{check && <span className="note" data-testid="run-check-ok">{check}</span>}</div>
          </div>
        )}
        <div className="row">
          <label>seeds <input type="number" min={1} max={64} value={seeds} onChange={(e) => setSeeds(Number(e.target.value))} data-testid="run-seeds" style={{ width: 60 }} /></label>
          <label>duration <input placeholder="the scenario's" value={duration} onChange={(e) => setDuration(e.target.value)} data-testid="run-duration" style={{ width: 110 }} /></label>
          <button className="primary" disabled={running} onClick={start} data-testid="run-go">Run</button>
        </div>
      </div>
      {err && <div className="error" data-testid="run-error">{err}</div>}
      {job && (
        <div className="panel" data-testid="run-progress" data-status={job.status}>
          <h3>Run {job.job}{job.source ? ` — ${job.source}` : ''}: {job.status}</h3>
          <div className="row">
            <div className="progress"><div style={{ width: `${job.total ? (100 * job.done) / job.total : 0}%` }} /></div>
            <span data-testid="run-count">{job.done}/{job.total}</span><span className="note">{job.label}</span>
            {running && <button onClick={() => api(`/api/runs/${job.job}`, { method: 'DELETE' })} data-testid="run-cancel">Cancel</button>}
          </div>
          {job.error && <div className="error">{job.error}</div>}
          {job.stored && <p className="note" data-testid="run-stored">{job.stored}</p>}
          {job.status === 'done' && <button onClick={() => api<{ report: SeedsReport }>(`/api/runs/${job.job}`).then((r) => onOpen({ report: r.report, label: `run ${job.job} (${r.report.scenario})`, job: job.job }))}>Open the report</button>}
        </div>
      )}
    </div>
  );
}
