/**
 * The results store in process (src/store/): a run stored in one transaction and read back whole,
 * per-set rows that SQL can query without the JSON, a database made by schema 1 upgraded, files
 * that are not kasi's (or are newer) refused and left byte for byte as they were, a failed store
 * (a full database) leaving no partial run, and diff/export of stored runs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { formatRunJson } from '../../src/report/run-json.ts';
import { formatRunText } from '../../src/report/run-text.ts';
import type { Scenario } from '../../src/sim/scenario-types.ts';
import type { SeedsReport } from '../../src/sim/seeds.ts';
import { KASI_APPLICATION_ID, openStore, schemaVersion, StoreError } from '../../src/store/db.ts';
import { LATEST_VERSION } from '../../src/store/migrations.ts';
import { getRun, listRuns } from '../../src/store/query.ts';
import { runRecord } from '../../src/store/record.ts';
import { saveRun, sha256 } from '../../src/store/save.ts';
import { diffRuns, flatten, formatDiff, scenarioChanges } from '../../src/store/diff.ts';
import { exportCsv, exportMarkdown, exportRun } from '../../src/store/export.ts';
import { formatShow } from '../../src/store/show.ts';
import { tinyRun } from '../helpers/tiny-run.ts';
import { tinyScenario } from '../helpers/tiny-scenario.ts';

const TMP = mkdtempSync(join(tmpdir(), 'kasi-store-'));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));

const TINY = join(TMP, 'tiny.yaml');
// The victim's 4 KiB working set keeps its key in L1D, so the none set leaks in every seed (16/16 measured), not by the luck of one seed.
const TINY_TEXT = tinyScenario({ isolation: [['none', 'mitigations=off'], ['nosmt', 'nosmt']], victimWorkingSet: '4KiB' });
writeFileSync(TINY, TINY_TEXT);

let report: SeedsReport;
let scenario: Scenario;

beforeAll(async () => { ({ report, scenario } = await tinyRun(TINY)); }, 60_000);

const record = (rep: SeedsReport = report, duration: string | null = null) =>
  runRecord({ file: TINY, scenario, report: rep, reportJson: formatRunJson(rep), duration });

let n = 0;
const fresh = (): string => join(TMP, `s${n++}.db`);

/** The report with the nosmt set's cell leaking and its overhead changed: what a later run could give. */
function altered(): SeedsReport {
  const r = JSON.parse(formatRunJson(report)) as { mitigations: { costs: { overhead_pct: number; counts: Record<string, number> }; matrix: { seeds_leaked: number; verdict: string; bytes_median: number | null }[] }[] };
  const m = r.mitigations[1];
  m.matrix[0].seeds_leaked = 1; m.matrix[0].verdict = 'leaks'; m.matrix[0].bytes_median = 8;
  m.costs.overhead_pct += 10;
  m.costs.counts.l1d_flushes += 3;
  return r as unknown as SeedsReport;
}

describe('store', () => {
  it('stores a run in one transaction and reads it back: the same JSON report, text and per-set rows', () => {
    const path = fresh();
    const db = openStore(path, { create: true });
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(schemaVersion(db)).toBe(LATEST_VERSION);
    expect(db.pragma('application_id', { simple: true })).toBe(KASI_APPLICATION_ID);
    const id = saveRun(db, record());
    const run = getRun(db, id, path);
    expect(run.report_json).toBe(formatRunJson(report));
    expect(formatRunText(run.report)).toBe(formatRunText(report));
    expect(run.scenario_text).toBe(TINY_TEXT);
    expect(run.scenario_hash).toBe(sha256(TINY_TEXT));
    expect(run).toMatchObject({ scenario: 'tiny', seed: 4, seeds: 1, cpu: 'skylake-sp', sets: ['none', 'nosmt'], leaks: 1 });
    expect(run.kasi_version).toBe(JSON.parse(readFileSync('package.json', 'utf8')).version);
    expect(formatShow(run)).toContain(formatRunText(report));
    // Queryable without the JSON: the leak, its verdict and seeds, the overhead, a count.
    expect(db.prepare('SELECT s.name, l.attack, l.secret, l.seeds_leaked, l.verdict FROM leaks l JOIN sets s ON s.run_id = l.run_id AND s.idx = l.set_idx WHERE l.run_id = ?').all(id))
      .toEqual([{ name: 'none', attack: 'l1tf-guest', secret: 'key', seeds_leaked: 1, verdict: 'leaks' }]);
    const sets = db.prepare('SELECT name, overhead_pct, cycles FROM sets WHERE run_id = ? ORDER BY idx').all(id) as { name: string; overhead_pct: number; cycles: number }[];
    expect(sets.map((s) => [s.name, s.overhead_pct, s.cycles])).toEqual(report.mitigations.map((m) => [m.name, m.costs.overhead_pct, m.costs.cycles]));
    expect((db.prepare("SELECT value FROM counts WHERE run_id = ? AND set_idx = 1 AND name = 'l1d_flushes'").get(id) as { value: number }).value).toBe(report.mitigations[1].costs.counts.l1d_flushes);
    expect((db.prepare('SELECT count(*) AS n FROM kind_cycles WHERE run_id = ?').get(id) as { n: number }).n).toBeGreaterThan(0);
    db.close();
  });

  it('lists runs newest first, limited', () => {
    const path = fresh();
    const db = openStore(path, { create: true });
    const ids = [saveRun(db, record()), saveRun(db, record()), saveRun(db, record())];
    expect(listRuns(db, 2).map((r) => r.id)).toEqual([ids[2], ids[1]]);
    expect(() => getRun(db, 99, path)).toThrow(/no run 99 .*runs 1\.\.3/);
    db.close();
  });

  it('upgrades a database made by the first schema: rows filled in from the stored JSON, then used like new ones', () => {
    const path = fresh();
    const v1 = openStore(path, { create: true, upTo: 1 });
    expect(schemaVersion(v1)).toBe(1);
    // A run as schema 1 stored it (its columns only).
    const rec = record();
    const id = Number(v1.prepare(`INSERT INTO runs (created_at, scenario_name, scenario_file, scenario_text, scenario_hash, seed, seeds, kasi_version, git_commit, report_json)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`).run(rec.createdAt, 'tiny', TINY, rec.scenarioText, sha256(rec.scenarioText), 4, 1, '0.0.9', null, rec.reportJson).lastInsertRowid);
    report.mitigations.forEach((m, i) => {
      v1.prepare('INSERT INTO sets (run_id, idx, name, cmdline, design, stun, same_as, cycles, overhead_pct) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)')
        .run(id, i, m.name, m.cmdline, m.design, m.stun ? 1 : 0, m.same_as, m.costs.cycles, m.costs.overhead_pct);
      for (const c of m.matrix) v1.prepare('INSERT INTO cells VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)').run(id, i, c.attack, c.secret, c.owner, c.of, c.seeds, c.seeds_leaked, c.verdict, c.bytes_median, c.first_leak_ns_median);
    });
    expect(() => v1.prepare('SELECT * FROM leaks').all()).toThrow(/no such table/);
    v1.close();

    const db = openStore(path);
    expect(schemaVersion(db)).toBe(LATEST_VERSION);
    expect(db.prepare('SELECT cpu FROM runs WHERE id = ?').get(id)).toEqual({ cpu: 'skylake-sp' });
    const o = report.mitigations[1].costs.spread.overhead_pct;
    expect(db.prepare('SELECT overhead_min, overhead_max FROM sets WHERE run_id = ? AND idx = 1').get(id)).toEqual({ overhead_min: o.min, overhead_max: o.max });
    const kinds = db.prepare('SELECT kind, cycles FROM kind_cycles WHERE run_id = ? AND set_idx = 0 ORDER BY rowid').all(id) as { kind: string; cycles: number }[];
    expect(Object.fromEntries(kinds.map((k) => [k.kind, k.cycles]))).toEqual(report.mitigations[0].costs.by_kind);
    expect(db.prepare('SELECT attack FROM leaks WHERE run_id = ?').all(id)).toEqual([{ attack: 'l1tf-guest' }]);
    // The old run diffs against a new one (its scenario as run is rebuilt from the text).
    const id2 = saveRun(db, record(report, '200us'));
    const d = diffRuns(getRun(db, id, path), getRun(db, id2, path));
    expect(d.scenario).toEqual([{ path: 'duration', a: '100us', b: '200us' }]);
    // A run whose workload came from --workload FILE: the file and its hash are part of the scenario as run.
    const wl = join(TMP, 'strace.txt');
    writeFileSync(wl, 'a tool output\n');
    const id3 = saveRun(db, runRecord({ file: TINY, scenario, report, reportJson: formatRunJson(report), duration: null, workload: wl }));
    expect(diffRuns(getRun(db, id, path), getRun(db, id3, path)).scenario).toEqual([{ path: '(--workload)', a: null, b: JSON.stringify({ file: wl, sha256: sha256('a tool output\n') }) }]);
    db.close();
  });

  it('refuses a file that is not SQLite, another program\'s database and a newer kasi\'s, and leaves each unchanged', () => {
    const text = join(TMP, 'notes.txt');
    writeFileSync(text, 'not a database\n'.repeat(100));
    const other = join(TMP, 'other.db');
    const o = new Database(other);
    o.exec('CREATE TABLE t (x); INSERT INTO t VALUES (1)');
    o.close();
    const newer = join(TMP, 'newer.db');
    const z = new Database(newer);
    z.exec('CREATE TABLE runs (id INTEGER PRIMARY KEY)');
    z.pragma(`application_id = ${KASI_APPLICATION_ID}`);
    z.pragma(`user_version = ${LATEST_VERSION + 1}`);
    z.close();
    const cases: [string, RegExp][] = [[text, /not a kasi database: not an SQLite file/], [other, /not a kasi database: an SQLite database with tables kasi did not make/], [newer, /made by a newer kasi \(schema version \d+; this kasi knows up to \d+\)/]];
    for (const [f, msg] of cases) {
      const before = readFileSync(f);
      let err: unknown;
      try { openStore(f, { create: true }).close(); } catch (e) { err = e; }
      expect(err).toBeInstanceOf(StoreError);
      expect((err as StoreError).kind).toBe('identity');
      expect((err as Error).message).toMatch(msg);
      expect((err as Error).message).not.toContain('\n');
      expect(readFileSync(f).equals(before)).toBe(true);
      expect(existsSync(`${f}-wal`) || existsSync(`${f}-journal`)).toBe(false);
    }
    expect(() => openStore(join(TMP, 'absent.db'))).toThrow(/no kasi database at/);
  });

  it('a store that fails part-way (a full database, an error after the first rows) leaves no partial run', () => {
    const path = fresh();
    const db = openStore(path, { create: true });
    saveRun(db, record());
    const pages = db.pragma('page_count', { simple: true }) as number;
    db.pragma(`max_page_count = ${pages + 1}`); // room for a page or so, not for a whole run
    const big = JSON.parse(formatRunJson(report)) as SeedsReport & { mitigations: { notes: string[] }[] };
    big.mitigations[0].notes.push('x'.repeat(64 << 10));
    expect(() => saveRun(db, record(big))).toThrow(/full/);
    db.pragma('max_page_count = 1000000');
    // A failure after the run's row and its sets and cells are in: none of them stays.
    db.exec("CREATE TEMP TRIGGER fail AFTER INSERT ON counts BEGIN SELECT RAISE(ABORT, 'injected'); END");
    expect(() => saveRun(db, record())).toThrow(/injected/);
    for (const [t, rows] of [['runs', 1], ['sets', 2], ['cells', 2], ['counts', Object.keys(report.mitigations[0].costs.counts).length * 2]] as const) {
      expect((db.prepare(`SELECT count(*) AS n FROM ${t}`).get() as { n: number }).n, t).toBe(rows);
    }
    db.close();
  });

  it('diff: leaks gained and lost, overhead and count deltas, sets only in one, scenario fields keyed by name', () => {
    const path = fresh();
    const db = openStore(path, { create: true });
    const a = getRun(db, saveRun(db, record()), path);
    const b = getRun(db, saveRun(db, record(altered())), path);
    const d = diffRuns(a, b);
    expect(d.leaks_gained.map((c) => [c.set, c.attack, c.secret, c.a?.verdict, c.b?.verdict])).toEqual([['nosmt', 'l1tf-guest', 'key', 'no leak', 'leaks']]);
    expect(d.leaks_lost).toEqual([]);
    expect(diffRuns(b, a).leaks_lost.map((c) => c.set)).toEqual(['nosmt']);
    expect(d.costs.find((c) => c.set === 'nosmt')?.overhead_pct.delta).toBe(10);
    expect(d.counts).toEqual([{ set: 'nosmt', name: 'l1d_flushes', a: report.mitigations[1].costs.counts.l1d_flushes, b: report.mitigations[1].costs.counts.l1d_flushes + 3, delta: 3 }]);
    expect(d.scenario).toEqual([]);
    const text = formatDiff(d, a, b);
    expect(text).toMatch(/Leaks gained in \d+[^\n]*\n[^\n]*\n[^\n]*\n\s+nosmt\s+l1tf-guest × key \(victim\)\s+no leak\s+1\/1 8B/);
    // Named list items keep their names as keys: inserting an entry shows as that entry, not as a shift.
    const fa = flatten({ isolation: [{ name: 'none', cmdline: 'x' }, { name: 'kpti', cmdline: 'pti=on' }] });
    const fb = flatten({ isolation: [{ name: 'none', cmdline: 'x' }, { name: 'l1d', cmdline: 'l1d' }, { name: 'kpti', cmdline: 'pti=on' }] });
    expect([...fb.keys()].filter((k) => fa.get(k) !== fb.get(k))).toEqual(['isolation[l1d].name', 'isolation[l1d].cmdline']);
    // An entry only one run has is one row with its JSON, not a row per field.
    const as = (doc: unknown) => ({ ...a, scenario_json: JSON.stringify(doc) });
    expect(scenarioChanges(as({ isolation: [{ name: 'none', cmdline: 'x' }, { name: 'kpti', cmdline: 'pti=on' }], machine: { cores: 1 } }),
      as({ isolation: [{ name: 'none', cmdline: 'x' }, { name: 'l1d', cmdline: 'l1d' }, { name: 'kpti', cmdline: 'pti=on' }], machine: { cores: 2 } })))
      .toEqual([{ path: 'machine.cores', a: '1', b: '2' }, { path: 'isolation[l1d]', a: null, b: '{"name":"l1d","cmdline":"l1d"}' }]);
    db.close();
  });

  it('diff: a leak whose rate moved (8/8 -> 1/8) is a rate change; overlapping rates and a stored unstable 3/8 against leaks 3/8 are not', () => {
    const withCell = (k: number, verdict: string): SeedsReport => {
      const r = JSON.parse(formatRunJson(report)) as { mitigations: { matrix: Record<string, unknown>[] }[] };
      Object.assign(r.mitigations[1].matrix[0], { seeds: 8, seeds_leaked: k, verdict, bytes_median: 8 });
      return r as unknown as SeedsReport;
    };
    const path = fresh();
    const db = openStore(path, { create: true });
    const [all, one, legacy3, new3] = ([[8, 'leaks'], [1, 'leaks'], [3, 'unstable'], [3, 'leaks']] as const).map(([k, v]) => getRun(db, saveRun(db, record(withCell(k, v))), path));
    // 8 of 8 is [0.676, 1], 1 of 8 [0.022, 0.471]: apart, and 1 of 8 is rare.
    expect(diffRuns(all, one).rate_changed.map((c) => [c.set, c.a?.seeds_leaked, c.b?.seeds_leaked])).toEqual([['nosmt', 8, 1]]);
    expect(formatDiff(diffRuns(all, one), all, one)).toMatch(/Leak rates changed \(leaking in both; 95% intervals apart, or rare in one only\)\n[^\n]*\n[^\n]*\n\s+nosmt\s+l1tf-guest × key \(victim\)\s+8\/8 8B\s+1\/8 8B/);
    // 3 of 8 is [0.137, 0.694]: it meets 8 of 8's interval, and neither is rare.
    expect(diffRuns(all, new3).rate_changed).toEqual([]);
    // The rule changed, not the run: the same k is no change.
    expect(diffRuns(legacy3, new3).rate_changed).toEqual([]);
    expect(diffRuns(legacy3, new3).leaks_gained).toEqual([]);
    db.close();
  });

  it('export: the JSON report byte for byte, a CSV row per set, Markdown tables of leaks and costs', () => {
    const path = fresh();
    const db = openStore(path, { create: true });
    const run = getRun(db, saveRun(db, record()), path);
    expect(exportRun(run, 'json')).toBe(formatRunJson(report));
    const csv = exportCsv(run).trimEnd().split('\r\n');
    expect(csv).toHaveLength(1 + report.mitigations.length);
    const header = csv[0].split(',');
    expect(csv.slice(1).map((l) => l.split(',').length)).toEqual(report.mitigations.map(() => header.length));
    const row = Object.fromEntries(header.map((h, i) => [h, csv[1].split(',')[i]]));
    expect(row).toMatchObject({ set: 'none', cmdline: 'mitigations=off', cells_leaks: '1', leaked_cells: 'l1tf-guest×key 1/1' });
    expect(Number(row.l1d_flushes)).toBe(report.mitigations[0].costs.counts.l1d_flushes);
    const md = exportMarkdown(run);
    expect(md).toContain('| attack × secret (owner, bytes) | none | nosmt |');
    expect(md).toContain('| l1tf-guest × key (victim, 32B) | 32/32B | – |');
    // nosmt may cost less than none here: the run is shorter than a scheduling quantum, so the moved victim runs alone, where none shares its core (sim/smt.ts).
    expect(md).toMatch(/\| overhead % \| 0\.00 \| -?\d+\.\d\d \|/);
    expect(md).toContain(`sha256 \`${run.scenario_hash.slice(0, 16)}\``);
    expect(md).toContain('```yaml\nname: tiny\n');
    expect(md).toContain('Reproduce: `kasi run tiny.yaml --seed 4 --seeds 1`');
    db.close();
  });
});
