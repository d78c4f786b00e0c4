/**
 * kasi merge (src/store/merge.ts): the runs of several stores copied into one with every child row
 * (the copy reads back as the same run), idempotently — merging again, or merging a store whose
 * runs already arrived through another, changes no row of the target — sources only read (one of
 * an older schema is merged from a migrated copy and left as it was), and a source that is not
 * kasi's refused before anything is written.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { formatRunJson } from '../../src/report/run-json.ts';
import type { Scenario } from '../../src/sim/scenario-types.ts';
import type { SeedsReport } from '../../src/sim/seeds.ts';
import { openStore, schemaVersion } from '../../src/store/db.ts';
import { mergeStores } from '../../src/store/merge.ts';
import { getRun } from '../../src/store/query.ts';
import { runRecord } from '../../src/store/record.ts';
import { saveRun } from '../../src/store/save.ts';
import { tinyRun } from '../helpers/tiny-run.ts';
import { tinyScenario } from '../helpers/tiny-scenario.ts';

const TMP = mkdtempSync(join(tmpdir(), 'kasi-merge-test-'));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));
const TINY = join(TMP, 'tiny.yaml');
writeFileSync(TINY, tinyScenario());

let report: SeedsReport;
let scenario: Scenario;
beforeAll(async () => { ({ report, scenario } = await tinyRun(TINY)); }, 60_000);

let stamp = 0;
/** A run record stored at a distinct time (two runs of one scenario are two runs). */
const record = (duration: string | null = null) => ({ ...runRecord({ file: TINY, scenario, report, reportJson: formatRunJson(report), duration }), createdAt: new Date(Date.UTC(2026, 0, 1, 0, 0, stamp++)).toISOString() });

const TABLES = ['runs', 'sets', 'cells', 'counts', 'kind_cycles'];
/** Every row of every table, ids and run ids left out (they are the file's own). */
function dump(path: string): Record<string, string[]> {
  const db = new Database(path, { readonly: true });
  try {
    return Object.fromEntries(TABLES.map((t) => [t, (db.prepare(`SELECT * FROM ${t}`).all() as Record<string, unknown>[])
      .map((r) => { const { id: _i, run_id: _r, ...rest } = r; return JSON.stringify(rest); }).sort()]));
  } finally { db.close(); }
}
const rows = (path: string): Record<string, number> => Object.fromEntries(Object.entries(dump(path)).map(([t, r]) => [t, r.length]));

function store(path: string, n: number, upTo?: number): void {
  const db = openStore(path, { create: true, upTo });
  for (let i = 0; i < n; i++) saveRun(db, record(i % 2 === 0 ? null : '200us'));
  db.close();
}

describe('kasi merge', () => {
  it('copies every run with its rows; merging twice, or again through another store, changes nothing', () => {
    const a = join(TMP, 'a.db'), b = join(TMP, 'b.db'), all = join(TMP, 'all.db');
    store(a, 2);
    store(b, 1);
    const ra = rows(a), rb = rows(b);
    expect(ra.runs).toBe(2);
    expect(ra.cells).toBeGreaterThan(0);
    expect(mergeStores(all, [a, b]).map((r) => [r.added, r.present])).toEqual([[2, 0], [1, 0]]);
    const got = rows(all);
    for (const t of TABLES) expect(got[t], t).toBe(ra[t] + rb[t]);
    const once = dump(all);
    expect(once).toEqual(Object.fromEntries(TABLES.map((t) => [t, [...dump(a)[t], ...dump(b)[t]].sort()])));
    // again: nothing added, no row changed
    expect(mergeStores(all, [a, b]).map((r) => [r.added, r.present])).toEqual([[0, 2], [0, 1]]);
    expect(dump(all)).toEqual(once);
    // b's run reaches a, then a is merged: its runs are all in `all` already
    expect(mergeStores(a, [b])[0].added).toBe(1);
    expect(mergeStores(all, [a])).toEqual([{ source: a, added: 0, present: 3 }]);
    expect(dump(all)).toEqual(once);
    // a copied run reads back as the run it was
    const db = openStore(all);
    const src = openStore(a);
    try {
      for (const id of [1, 2]) expect(getRun(db, id, all)).toEqual(getRun(src, id, a));
    } finally { db.close(); src.close(); }
  });

  it('reads a store of an older schema without changing it; refuses a foreign file and itself before writing', () => {
    const old = join(TMP, 'old.db'), into = join(TMP, 'into.db'), foreign = join(TMP, 'other.db');
    store(old, 1, 2);
    const bytes = readFileSync(old);
    expect(mergeStores(into, [old])[0].added).toBe(1);
    expect(readFileSync(old).equals(bytes)).toBe(true);
    const o = new Database(old, { readonly: true });
    expect(schemaVersion(o)).toBe(2);
    o.close();
    const f = new Database(foreign);
    f.exec('CREATE TABLE t (x)');
    f.close();
    const before = dump(into);
    expect(() => mergeStores(into, [old, foreign])).toThrow(/other\.db is not a kasi database/);
    expect(dump(into)).toEqual(before);
    expect(() => mergeStores(into, [into])).toThrow(/is the --into store itself/);
  });
});
