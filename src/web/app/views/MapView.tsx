// Address-space map (issue 13): lanes of leaf runs along the kernel's region table, coloured by
// owner or sensitivity class; wheel to zoom about the cursor, drag to pan, click for the leaves,
// frames, owners and why the design maps them. Zooms from 256 TiB down to one 4 KiB page.
import { useEffect, useRef, useState } from 'react';
import { api, type MapDetail, type RunWindow, type SpaceMap } from '../api.ts';
import { classColour, draw, LABEL_W, LANE_GAP, LANE_H, laneTop, ownerColour, pageVa, RULER_H, sizeText, vaPage, type View } from './map-draw.ts';

export function MapView() {
  const [m, setM] = useState<SpaceMap | null>(null);
  const [err, setErr] = useState<string | null>(null);
  const [v, setV] = useState<View>({ from: 0, to: 2 ** 36 });
  const [runs, setRuns] = useState(new Map<string, RunWindow>());
  const [colourBy, setColourBy] = useState<'owner' | 'class'>('owner');
  const [sel, setSel] = useState<{ lane: string; from: number; to: number } | null>(null);
  const [detail, setDetail] = useState<MapDetail | null>(null);
  const [goto, setGoto] = useState('0xffff888000000000');
  const [width, setWidth] = useState(1000);
  const canvas = useRef<HTMLCanvasElement>(null);
  const box = useRef<HTMLDivElement>(null);
  const drag = useRef<{ x: number; v: View; moved: boolean } | null>(null);

  useEffect(() => { api<SpaceMap>('/api/map').then((x) => { setM(x); setV({ from: 0, to: x.axisPages }); }, (e) => setErr(String(e.message))); }, []);
  useEffect(() => {
    const on = () => setWidth(Math.max(600, (box.current?.clientWidth ?? 1024) - 24)); // the panel's padding
    on();
    addEventListener('resize', on);
    return () => removeEventListener('resize', on);
  }, [m]);
  // The runs of the window, refetched (debounced) as it moves.
  useEffect(() => {
    if (m === null) return;
    const ac = new AbortController();
    const t = setTimeout(() => {
      const from = Math.floor(v.from);
      const to = Math.max(from + 1, Math.ceil(v.to));
      const max = Math.max(200, (width - LABEL_W) * 2);
      Promise.all(m.lanes.map((l) => api<RunWindow>(`/api/map/runs?lane=${l.id}&from=${from}&to=${to}&max=${max}`, { signal: ac.signal })))
        .then((ws) => setRuns(new Map(ws.map((w) => [w.lane, w]))), (e) => { if (e.name !== 'AbortError') setErr(String(e.message)); });
    }, 80);
    return () => { clearTimeout(t); ac.abort(); };
  }, [m, v, width]);
  useEffect(() => {
    const c = canvas.current;
    if (c === null || m === null) return;
    const dpr = devicePixelRatio || 1;
    const h = laneTop(m.lanes.length);
    c.width = width * dpr; c.height = h * dpr;
    c.style.width = `${width}px`; c.style.height = `${h}px`;
    const ctx = c.getContext('2d')!;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    draw(ctx, width, m, v, runs, colourBy, sel);
  }, [m, v, runs, colourBy, sel, width]);

  if (err) return <div className="error">{err}</div>;
  if (m === null) return <div className="note">Booting the model's address spaces…</div>;

  const span = v.to - v.from;
  const pageAt = (x: number) => v.from + ((x - LABEL_W) / (width - LABEL_W)) * span;
  const clamp = (from: number, to: number): View => {
    let s = Math.max(1, Math.min(m.axisPages, to - from));
    let f = Math.max(0, Math.min(m.axisPages - s, from));
    if (s < 1) s = 1;
    if (!Number.isFinite(f)) f = 0;
    return { from: f, to: f + s };
  };
  const zoom = (factor: number, at: number) => setV(clamp(at - (at - v.from) * factor, at + (v.to - at) * factor));
  const onWheel = (e: React.WheelEvent) => {
    const x = e.nativeEvent.offsetX;
    if (x < LABEL_W) return;
    zoom(e.deltaY > 0 ? 1.5 : 1 / 1.5, pageAt(x));
  };
  const onDown = (e: React.MouseEvent) => { drag.current = { x: e.nativeEvent.offsetX, v, moved: false }; };
  const onMove = (e: React.MouseEvent) => {
    const d = drag.current;
    if (d === null) return;
    const dx = e.nativeEvent.offsetX - d.x;
    if (Math.abs(dx) > 3) d.moved = true;
    if (d.moved) { const dp = (dx / (width - LABEL_W)) * (d.v.to - d.v.from); setV(clamp(d.v.from - dp, d.v.to - dp)); }
  };
  const onUp = (e: React.MouseEvent) => {
    const d = drag.current;
    drag.current = null;
    if (d === null || d.moved) return;
    const x = e.nativeEvent.offsetX;
    const y = e.nativeEvent.offsetY;
    const i = Math.floor((y - RULER_H) / (LANE_H + LANE_GAP));
    if (x < LABEL_W || i < 0 || i >= m.lanes.length || y - laneTop(i) > LANE_H) return;
    const p0 = Math.floor(pageAt(x));
    const p1 = Math.max(p0 + 1, Math.ceil(pageAt(x + 1)));
    const s = { lane: m.lanes[i].id, from: p0, to: p1 };
    setSel(s);
    api<MapDetail>(`/api/map/detail?lane=${s.lane}&from=${s.from}&to=${s.to}`).then(setDetail, (e2) => setErr(String(e2.message)));
  };
  const toPage = () => {
    const p = vaPage(goto);
    if (p === null) { setErr(`not a canonical 48-bit VA: ${goto}`); return; }
    setV({ from: p, to: p + 1 });
  };
  const owners = [...new Set(m.owners.map((_, i) => i))];
  return (
    <div>
      <h2>Address spaces</h2>
      <div className="row">
        <button onClick={() => setV({ from: 0, to: m.axisPages })}>Whole axis</button>
        <button onClick={() => zoom(1 / 4, (v.from + v.to) / 2)}>Zoom in</button>
        <button onClick={() => zoom(4, (v.from + v.to) / 2)}>Zoom out</button>
        <label>VA <input className="mono" size={20} value={goto} onChange={(e) => setGoto(e.target.value)} data-testid="map-va" /></label>
        <button onClick={toPage} data-testid="map-goto">Zoom to its 4 KiB page</button>
        <label>colour by <select value={colourBy} onChange={(e) => setColourBy(e.target.value as 'owner' | 'class')} data-testid="map-colour">
          <option value="owner">owner</option><option value="class">sensitivity class</option></select></label>
      </div>
      <div className="row note" data-testid="map-window" data-from={Math.floor(v.from)} data-span={Math.round(span)}>
        window {pageVa(v.from)} – {pageVa(v.to)} ({sizeText(span * 4096)}; {m.levels}-level paging; regions: the kernel's address_markers[]; a region button zooms to what is mapped in it)
      </div>
      <div className="row">
        {m.regions.map((r) => (
          <button key={r.name} className="note" disabled={r.mapped === null} title={r.mapped ? `the stretch any lane maps in ${r.name}` : 'nothing mapped'}
            onClick={() => r.mapped && setV(clamp(r.mapped[0] - (r.mapped[1] - r.mapped[0]) * 0.02, r.mapped[1] + (r.mapped[1] - r.mapped[0]) * 0.02))}>{r.name}</button>
        ))}
      </div>
      <div className="split">
        <div className="panel" ref={box}>
          <canvas ref={canvas} data-testid="map-canvas" onWheel={onWheel} onMouseDown={onDown} onMouseMove={onMove} onMouseUp={onUp} onMouseLeave={() => { drag.current = null; }} />
          <div className="legend" style={{ marginTop: 8 }}>
            {colourBy === 'owner'
              ? owners.map((i) => <span key={i}><i style={{ background: ownerColour(m, i) }} />{m.owners[i].name} ({m.owners[i].kind})</span>)
              : m.classes.map((c, i) => <span key={c}><i style={{ background: classColour(m, i) }} />{c === 'none' ? 'no allocation record' : c}</span>)}
            {colourBy === 'class' && <span className="note">— classes as each lane's sensitivity model assigns them: {[...new Set(m.lanes.map((l) => `${l.model}`))].map((x) => `${x} (${m.lanes.filter((l) => l.model === x).map((l) => l.id).join(', ')})`).join('; ')}</span>}
          </div>
          <p className="note">Each lane is one address space's present leaves (runs of equal size, rights, owner and class). Scroll to zoom, drag to pan, click a lane for its leaves.</p>
        </div>
        <MapDetailPanel d={detail} />
      </div>
      <div className="panel" style={{ overflowX: 'auto' }}>
        <h3>Mapped per region</h3>
        <table data-testid="map-regions"><thead><tr><th>address space</th>{m.regions.map((r) => <th key={r.name} className="num">{r.name}</th>)}</tr></thead>
          <tbody>{m.lanes.map((l) => (
            <tr key={l.id}><td title={`${l.context}; root ${l.root}; model ${l.model}; ${l.leaves} leaves`}>{l.title}</td>
              {l.regionPages.map((p, k) => {
                const full = m.lanes[0].regionPages[k];
                return <td key={k} className="num" style={{ background: p === 0 ? undefined : `rgba(43,108,176,${0.12 + 0.5 * Math.min(1, full ? p / full : 1)})` }}>{p === 0 ? '—' : sizeText(p * 4096)}</td>;
              })}</tr>
          ))}</tbody></table>
        <p className="note">Bytes each space maps in each of the kernel's regions (shade: the share of what the full kernel tables map there).</p>
      </div>
    </div>
  );
}

function MapDetailPanel({ d }: { d: MapDetail | null }) {
  if (d === null) return <div className="panel note">Click a lane to see the leaves there.</div>;
  return (
    <div className="panel" data-testid="map-detail">
      <h3>{d.lane}</h3>
      <div className="mono">{d.from} – {d.to}</div>
      {d.leaves.length === 0 && <p>Nothing mapped here.</p>}
      {d.why.length > 0 && <><h3>Why it is mapped</h3><ul>{d.why.map((w) => <li key={w}>{w}</li>)}</ul></>}
      {d.owners.length > 0 && <p>Owners: {d.owners.join(', ')}</p>}
      {d.leaves.length > 0 && <h3>Leaves{d.more > 0 ? ` (first ${d.leaves.length}, ${d.more} more)` : ''}</h3>}
      {d.leaves.slice(0, 12).map((l) => (
        <div key={l.va} style={{ marginBottom: 6 }}>
          <div className="mono">{l.va} → {l.pa} {sizeText(l.size)} {l.rights}</div>
          {l.allocations.map((a) => <div key={`${a.what}/${a.owner}/${a.kind}`} className="note">{a.count > 1 ? `${a.count} × ` : ''}{a.what} ({a.kind}) of {a.owner}, {a.class}</div>)}
        </div>
      ))}
    </div>
  );
}
