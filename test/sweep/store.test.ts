/**
 * Sweep points in the store (src/store/sweep-runs.ts, schema 3): a database made by schema 2 with
 * a kasi run in it is upgraded (the run kept, its sweep columns empty, the new indexes there); a
 * point is found again only under its whole key (scenario text, point, first seed, seeds,
 * --duration, kasi version); a point and its tags land in one transaction; the plot rows read the
 * latest run of each point.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatRunJson } from '../../src/report/run-json.ts';
import type { Scenario } from '../../src/sim/scenario-types.ts';
import type { SeedsReport } from '../../src/sim/seeds.ts';
import { openStore, schemaVersion } from '../../src/store/db.ts';
import { LATEST_VERSION } from '../../src/store/migrations.ts';
import { runRecord } from '../../src/store/record.ts';
import { saveRun } from '../../src/store/save.ts';
import { savePoint, storedPoint, sweepRows } from '../../src/store/sweep-runs.ts';
import { tinyRun } from '../helpers/tiny-run.ts';
import { tinyScenario } from '../helpers/tiny-scenario.ts';

const TMP = mkdtempSync(join(tmpdir(), 'kasi-sweep-store-'));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));
const TINY = join(TMP, 'tiny.yaml');
const TEXT = tinyScenario();
writeFileSync(TINY, TEXT);
let report: SeedsReport;
let scenario: Scenario;
beforeAll(async () => { ({ report, scenario } = await tinyRun(TINY)); }, 60_000);

describe('sweep points in the store', () => {
  it('upgrades a schema-2 database, then stores and finds points by their whole key', () => {
    const path = join(TMP, 'v2.db');
    const v2 = openStore(path, { create: true, upTo: 2 });
    expect(schemaVersion(v2)).toBe(2);
    const runId = saveRun(v2, runRecord({ file: TINY, scenario, report, reportJson: formatRunJson(report), duration: null }));
    v2.close();

    const db = openStore(path);
    expect(schemaVersion(db)).toBe(LATEST_VERSION);
    expect(LATEST_VERSION).toBe(3);
    expect(db.prepare('SELECT sweep_id, sweep_point, sweep_params, sweep_shard FROM runs WHERE id = ?').get(runId)).toEqual({ sweep_id: null, sweep_point: null, sweep_params: null, sweep_shard: null });
    const idx = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE 'runs_%' ORDER BY name").all() as { name: string }[]).map((r) => r.name);
    expect(idx).toEqual(expect.arrayContaining(['runs_identity', 'runs_point', 'runs_sweep']));

    const key = { text: TEXT, params: { 'machine.cores': 1 }, seed: 4, seeds: 1, duration: null };
    // the kasi run of the same text is not a point of a sweep
    expect(storedPoint(db, key)).toBeUndefined();
    const id = savePoint(db, key, report, { sweepId: 'abc', point: 0, shard: '0/2' });
    expect(storedPoint(db, key)).toBe(id);
    expect(storedPoint(db, { ...key, params: { 'machine.cores': 2 } })).toBeUndefined();
    expect(storedPoint(db, { ...key, seeds: 2 })).toBeUndefined();
    expect(storedPoint(db, { ...key, seed: 5 })).toBeUndefined();
    expect(storedPoint(db, { ...key, duration: '200us' })).toBeUndefined();
    expect(storedPoint(db, { ...key, text: TEXT.replace('seed: 4', 'seed: 4 ') })).toBeUndefined();
    expect(db.prepare('SELECT sweep_id, sweep_point, sweep_params, sweep_shard FROM runs WHERE id = ?').get(id)).toEqual({ sweep_id: 'abc', sweep_point: 0, sweep_params: '{"machine.cores":1}', sweep_shard: '0/2' });
    // the plot rows: one per set, the latest run of a point, values from the report
    const again = savePoint(db, key, report, { sweepId: 'abc', point: 0, shard: null });
    const rows = sweepRows(db, 'abc', 'overhead_pct');
    expect(rows.map((r) => [r.run, r.set, r.value])).toEqual(report.mitigations.map((m) => [again, m.name, m.costs.overhead_pct]));
    expect(sweepRows(db, 'abc', 'asi_exits').map((r) => r.value)).toEqual(report.mitigations.map((m) => m.costs.counts.asi_exits));
    db.close();
  });
});
