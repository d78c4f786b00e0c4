// The single-page app: one view per hash route (#/map, #/walk, #/leaks, #/costs, #/history, #/run).
// The report the leak and cost views show is the one last opened: a finished run or a stored one.
import { useEffect, useState } from 'react';
import type { SeedsReport } from './api.ts';
import { MapView } from './views/MapView.tsx';
import { WalkView } from './views/WalkView.tsx';
import { LeaksView } from './views/LeaksView.tsx';
import { CostsView } from './views/CostsView.tsx';
import { HistoryView } from './views/HistoryView.tsx';
import { RunView } from './views/RunView.tsx';

/** `job`: the server's run id when the report comes from a run of this server (its timeline can be traced). */
export interface OpenReport { report: SeedsReport; label: string; job?: number }

const VIEWS = [
  ['map', 'Address spaces'], ['walk', 'Page walk'], ['leaks', 'Leaks'], ['costs', 'Costs'], ['history', 'History'], ['run', 'Run'],
] as const;
type View = (typeof VIEWS)[number][0];

const viewOf = (hash: string): View => {
  const v = hash.replace(/^#\/?/, '').split('?')[0];
  return (VIEWS.find(([k]) => k === v)?.[0] ?? 'map') as View;
};

export function App() {
  const [view, setView] = useState<View>(viewOf(location.hash));
  const [open, setOpen] = useState<OpenReport | null>(null);
  useEffect(() => {
    const on = () => setView(viewOf(location.hash));
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  const go = (v: View) => { location.hash = `#/${v}`; };
  const openReport = (o: OpenReport) => { setOpen(o); go('leaks'); };
  return (
    <div className="app">
      <header>
        <h1>kasi</h1>
        <nav>
          {VIEWS.map(([k, title]) => (
            <a key={k} href={`#/${k}`} className={k === view ? 'active' : ''} data-view={k}>{title}</a>
          ))}
        </nav>
        <span className="open-report">{open ? `report: ${open.label}` : 'no report open'}</span>
      </header>
      <main data-testid={`view-${view}`}>
        {view === 'map' && <MapView />}
        {view === 'walk' && <WalkView />}
        {view === 'leaks' && <LeaksView open={open} onRun={() => go('run')} />}
        {view === 'costs' && <CostsView open={open} onRun={() => go('run')} />}
        {view === 'history' && <HistoryView onOpen={openReport} />}
        {view === 'run' && <RunView onOpen={openReport} />}
      </main>
    </div>
  );
}

/** Shown by the report views when no report is open. */
export function NoReport({ onRun }: { onRun: () => void }) {
  return (
    <div className="empty">
      <p>No report open. Run a scenario (the built-in default is <code>examples/default.yaml</code>) or open one from History.</p>
      <button onClick={onRun}>Run a scenario</button>
    </div>
  );
}
