// Page-walk explorer (issue 13): a VA through a capture's tables under a chosen root and mode;
// each level's entry decoded bit by bit, the folded rights, and the translation or the fault —
// the JSON `kasi translate --json` prints (web/server/walk.ts).
import { useEffect, useState } from 'react';
import { api } from '../api.ts';

interface Info { roots: Record<string, string>; active: string; cr0: string; cr4: string; levels: number }
interface Field { name: string; bits: string; value: string }
interface Walk { translation: Record<string, unknown>; levels: Array<{ level: number; entry: string; addr: string; value: string; fields: Field[] }>; cr0: string; cr4: string; cpl: number }

// CR4 bits the form toggles (SDM Vol. 3A 2.5): SMEP 20, SMAP 21, PKE 22, PKS 24.
const CR4_BITS: Array<[string, number]> = [['SMEP', 20], ['SMAP', 21], ['PKE', 22], ['PKS', 24]];

export function WalkView() {
  const [captures, setCaptures] = useState<string[]>([]);
  const [capture, setCapture] = useState('');
  const [info, setInfo] = useState<Info | null>(null);
  const [va, setVa] = useState('0xffffffff81000000');
  const [root, setRoot] = useState('');
  const [access, setAccess] = useState('read');
  const [user, setUser] = useState(false);
  const [wp, setWp] = useState(true);
  const [cr4, setCr4] = useState<bigint>(0n);
  const [out, setOut] = useState<Walk | null>(null);
  const [err, setErr] = useState<string | null>(null);

  useEffect(() => { api<string[]>('/api/captures').then((c) => { setCaptures(c); setCapture(c[0] ?? ''); }, (e) => setErr(e.message)); }, []);
  useEffect(() => {
    if (!capture) return;
    api<Info>(`/api/captures/${capture}`).then((i) => { setInfo(i); setRoot(i.active); setCr4(BigInt(i.cr4)); setWp((BigInt(i.cr0) & (1n << 16n)) !== 0n); }, (e) => setErr(e.message));
  }, [capture]);

  const walk = () => {
    setErr(null);
    api<Walk>('/api/walk', { body: { capture, va, root, access, user, wp, cr4: '0x' + cr4.toString(16) } }).then(setOut, (e) => { setOut(null); setErr(e.message); });
  };
  const t = out?.translation;
  return (
    <div>
      <h2>Page walk</h2>
      <div className="panel">
        <div className="row">
          <label>capture <select value={capture} onChange={(e) => setCapture(e.target.value)} data-testid="walk-capture">{captures.map((c) => <option key={c}>{c}</option>)}</select></label>
          <label>root <select value={root} onChange={(e) => setRoot(e.target.value)} data-testid="walk-root">
            {info && Object.entries(info.roots).map(([k, r]) => <option key={k} value={k}>{k} ({r})</option>)}</select></label>
          <label>VA <input className="mono" size={20} value={va} onChange={(e) => setVa(e.target.value)} data-testid="walk-va" onKeyDown={(e) => { if (e.key === 'Enter') walk(); }} /></label>
          <label>access <select value={access} onChange={(e) => setAccess(e.target.value)} data-testid="walk-access"><option>read</option><option>write</option><option>exec</option></select></label>
          <label><input type="checkbox" checked={user} onChange={(e) => setUser(e.target.checked)} data-testid="walk-user" /> CPL 3 (user)</label>
        </div>
        <div className="row">
          <label><input type="checkbox" checked={wp} onChange={(e) => setWp(e.target.checked)} /> CR0.WP</label>
          {CR4_BITS.map(([n, b]) => (
            <label key={n}><input type="checkbox" checked={(cr4 >> BigInt(b) & 1n) === 1n} onChange={(e) => setCr4(e.target.checked ? cr4 | (1n << BigInt(b)) : cr4 & ~(1n << BigInt(b)))} /> CR4.{n}</label>
          ))}
          <span className="note mono">CR4 = 0x{cr4.toString(16)}</span>
          <button className="primary" onClick={walk} data-testid="walk-go">Walk</button>
        </div>
      </div>
      {err && <div className="error" data-testid="walk-error">{err}</div>}
      {t && (
        <div className="panel" data-testid="walk-result" data-json={JSON.stringify(t)}>
          <h3>{t.ok ? `${t.va} → ${t.pa}` : `${t.va} → ${t.vector} error ${t.error_code ?? ''}`}</h3>
          {t.ok ? (
            <p>{sizeOf(Number(t.page_size))} page, leaf {String(t.entry)} (level {String(t.level)}) = <code>{String(t.leaf)}</code>;
              folded rights: U/S={+Boolean(t.user)} R/W={+Boolean(t.writable)} XD={+Boolean(t.xd)} pkey={String(t.pkey)}</p>
          ) : (
            <p>{t.vector === '#GP' ? 'non-canonical address' : `error code bits: ${Object.entries(t.bits as Record<string, number>).map(([k, x]) => `${k}=${x}`).join(' ')}`}, at level {String(t.level)} ({String(t.entry)})</p>
          )}
          <p className="note">CPL {out!.cpl}, CR0 {out!.cr0}, CR4 {out!.cr4}; the same answer as <code>kasi translate test/fixtures/captures/{capture}/kernel.json.gz {va} --root {root}{user ? ' --user' : ''} --access {access} --json</code></p>
          {out!.levels.map((l) => (
            <div key={l.level}>
              <h3>{l.entry} (level {l.level}) at <code>{l.addr}</code> = <code>{l.value}</code></h3>
              <table className="bits"><tbody><tr>{l.fields.map((f) => <th key={f.name + f.bits}>{f.name}<div className="note">{f.bits}</div></th>)}</tr>
                <tr>{l.fields.map((f) => <td key={f.name + f.bits} className={f.value === '1' ? 'on' : ''}>{f.value}</td>)}</tr></tbody></table>
            </div>
          ))}
        </div>
      )}
    </div>
  );
}

const sizeOf = (b: number) => (b >= 1 << 30 ? `${b / (1 << 30)} GiB` : b >= 1 << 20 ? `${b / (1 << 20)} MiB` : `${b / 1024} KiB`);
