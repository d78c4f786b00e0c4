/**
 * kasi sweep as a user runs it (child processes): every point stored once; run again, nothing runs;
 * --force reruns; the stored reports do not depend on the number of workers; shards from --shard
 * and from a Kubernetes Indexed Job's JOB_COMPLETION_INDEX, merged, give exactly the unsharded
 * sweep's reports; and a sweep killed with SIGKILL halfway leaves a consistent database holding
 * every point finished before the kill, after which the same command runs only the rest.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { CLI, kasiRun, ROOT } from '../helpers/kasi-cli.ts';
import { mergeStores } from '../../src/store/merge.ts';
import { tinyScenario } from '../helpers/tiny-scenario.ts';

const TMP = mkdtempSync(join(tmpdir(), 'kasi-sweep-cli-'));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));

const sweepFile = (name: string, weights: number[], duration: string): string => {
  const f = join(TMP, `${name}.yaml`);
  writeFileSync(f, tinyScenario({ name, duration, sweep: `  workload[0].mix[0].weight: [${weights.join(', ')}]\n  machine.cores: [1, 2]\n` }));
  return f;
};
const GRID = sweepFile('grid', [1, 2, 4], '50us');

/** point → report JSON of the points stored in `db` (each must be stored once). */
function reports(db: string): Map<number, string> {
  const d = new Database(db, { readonly: true });
  try {
    const rows = d.prepare('SELECT sweep_point AS p, report_json AS r FROM runs ORDER BY id').all() as { p: number; r: string }[];
    const out = new Map<number, string>();
    for (const x of rows) { expect(out.has(x.p), `point ${x.p} twice in ${db}`).toBe(false); out.set(x.p, x.r); }
    return out;
  } finally { d.close(); }
}

const sweep = (db: string, ...more: string[]) => kasiRun(['sweep', GRID, '--seeds', '1', '--workers', '1', '--db', db, ...more]);

describe('kasi sweep', () => {
  const one = join(TMP, 'one.db');

  it('stores every point once, skips them when run again, reruns them with --force', async () => {
    const r = await sweep(one);
    expect(r.stderr).toContain('6 points in the grid; 6 to run; 1 worker(s)');
    expect(r.status, r.stderr).toBe(0);
    expect([...reports(one).keys()].sort()).toEqual([0, 1, 2, 3, 4, 5]);
    expect(r.stdout).toMatch(/^sweep [0-9a-f]{16} of .*grid\.yaml: 6 of 6 points stored/);
    const again = await sweep(one);
    expect(again.stderr).toContain('0 to run, 6 already in');
    expect(again.stdout).toBe(r.stdout);
    const forced = await sweep(one, '--force');
    expect(forced.stderr).toContain('6 to run;');
    const d = new Database(one, { readonly: true });
    expect(d.prepare('SELECT count(*) AS n, count(DISTINCT sweep_point) AS p FROM runs').get()).toEqual({ n: 12, p: 6 });
    // the rerun stored the same reports
    const pairs = d.prepare('SELECT a.report_json = b.report_json AS same FROM runs a JOIN runs b ON a.sweep_point = b.sweep_point AND a.id < b.id').all() as { same: number }[];
    d.close();
    expect(pairs.map((x) => x.same)).toEqual([1, 1, 1, 1, 1, 1]);
  }, 120_000);

  it('the same reports on 2 workers, and from two shards merged', async () => {
    const d = new Database(one, { readonly: true });
    const first = new Map((d.prepare('SELECT sweep_point AS p, report_json AS r FROM runs WHERE id <= 6').all() as { p: number; r: string }[]).map((x) => [x.p, x.r]));
    d.close();
    const two = join(TMP, 'two.db');
    const [w2, a, b] = await Promise.all([
      kasiRun(['sweep', GRID, '--seeds', '1', '--workers', '2', '--db', two]),
      sweep(join(TMP, 'a.db'), '--shard', '0/2'),
      kasiRun(['sweep', GRID, '--seeds', '1', '--workers', '1', '--db', join(TMP, 'b.db'), '--shard', '2'], { env: { ...process.env, JOB_COMPLETION_INDEX: '1' } }),
    ]);
    for (const r of [w2, a, b]) expect(r.status, r.stderr).toBe(0);
    expect(reports(two)).toEqual(first);
    expect(b.stderr).toContain('(shard 1/2 from JOB_COMPLETION_INDEX); 3 to run');
    expect([...reports(join(TMP, 'a.db')).keys()]).toEqual([0, 2, 4]);
    expect([...reports(join(TMP, 'b.db')).keys()]).toEqual([1, 3, 5]);
    const all = join(TMP, 'all.db');
    expect(mergeStores(all, [join(TMP, 'a.db'), join(TMP, 'b.db')]).map((x) => x.added)).toEqual([3, 3]);
    expect(new Map([...reports(all)].sort(([p], [q]) => p - q))).toEqual(new Map([...first].sort(([p], [q]) => p - q)));
    expect(mergeStores(all, [join(TMP, 'a.db'), join(TMP, 'b.db')]).map((x) => x.added)).toEqual([0, 0]);
    // the merged store answers the sweep: nothing left to run
    const resumed = await sweep(all);
    expect(resumed.stderr).toContain('0 to run, 6 already in');
  }, 120_000);

  it('SIGKILL halfway: a consistent database with the finished points; running again finishes only the rest', async () => {
    const file = sweepFile('long', [1, 2, 3, 4, 5], '300us');
    const db = join(TMP, 'killed.db');
    const args = ['sweep', file, '--seeds', '1', '--workers', '1', '--db', db];
    // node itself (no wrapper whose child would outlive the kill)
    const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    const exited = new Promise<NodeJS.Signals | null>((done) => child.on('exit', (_c, s) => done(s)));
    const count = (): number => {
      try {
        const d = new Database(db, { readonly: true, fileMustExist: true });
        try { return (d.prepare('SELECT count(*) AS n FROM runs').get() as { n: number }).n; } finally { d.close(); }
      } catch { return 0; }
    };
    const t0 = Date.now();
    while (count() < 3 && Date.now() - t0 < 90_000) await new Promise((r) => setTimeout(r, 50));
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');
    const d = new Database(db, { readonly: true });
    expect(d.pragma('integrity_check', { simple: true })).toBe('ok');
    const k = (d.prepare('SELECT count(*) AS n FROM runs').get() as { n: number }).n;
    expect(k, err).toBeGreaterThanOrEqual(3);
    expect(k).toBeLessThan(10);
    // every stored point whole: tagged, with its sets, cells and counts
    const whole = d.prepare(`SELECT r.sweep_point AS p, (SELECT count(*) FROM sets s WHERE s.run_id = r.id) AS sets,
        (SELECT count(*) FROM counts c WHERE c.run_id = r.id) > 0 AS counts, (SELECT count(*) FROM cells c WHERE c.run_id = r.id) AS cells FROM runs r`).all();
    d.close();
    expect(whole).toEqual(whole.map((w) => ({ ...(w as object), sets: 2, counts: 1, cells: 2 })));
    const rest = await kasiRun(args);
    expect(rest.status, rest.stderr).toBe(0);
    expect(rest.stderr).toContain(`10 points in the grid; ${10 - k} to run, ${k} already in`);
    expect([...reports(db).keys()].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  }, 180_000);
});
