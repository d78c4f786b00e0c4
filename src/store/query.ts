/**
 * Reading the store: the newest runs with their per-set summary (kasi history), one run in full
 * (kasi show, diff, export). Summaries come from the per-set rows, not from the JSON report.
 */
import type { SeedsReport } from '../sim/seeds.ts';
import { StoreError, type Db } from './db.ts';

export interface RunSummary {
  readonly id: number;
  readonly created_at: string;
  readonly scenario: string;
  readonly file: string;
  readonly scenario_hash: string;
  readonly seed: number;
  readonly seeds: number;
  readonly cpu: string | null;
  readonly kasi_version: string;
  readonly git_commit: string | null;
  /** Mitigation sets, in the scenario's order. */
  readonly sets: readonly string[];
  /** Cells that leaked in at least one seed, over all sets (what the any-seed verdict calls leaks, in runs of either rule). */
  readonly leaks: number;
  /** Of those, the cells a run stored before the any-seed rule called 'unstable' (0 for later runs). */
  readonly unstable: number;
  /** The largest median overhead of any set, %. */
  readonly max_overhead_pct: number | null;
}

export interface StoredRun extends RunSummary {
  readonly scenario_text: string;
  /** The scenario as run (store/record.ts scenarioAsRun), or null for runs stored by schema 1. */
  readonly scenario_json: string | null;
  readonly duration: string | null;
  readonly report_json: string;
  readonly report: SeedsReport;
}

interface RunRow {
  id: number; created_at: string; scenario_name: string; scenario_file: string; scenario_hash: string; seed: number; seeds: number;
  cpu: string | null; kasi_version: string; git_commit: string | null; sets: string | null; leaks: number | null; unstable: number | null;
  max_overhead_pct: number | null;
}

const SUMMARY = `SELECT r.id, r.created_at, r.scenario_name, r.scenario_file, r.scenario_hash, r.seed, r.seeds, r.cpu, r.kasi_version, r.git_commit,
    (SELECT json_group_array(name) FROM (SELECT name FROM sets WHERE run_id = r.id ORDER BY idx)) AS sets,
    (SELECT count(*) FROM cells WHERE run_id = r.id AND seeds_leaked > 0) AS leaks,
    (SELECT count(*) FROM cells WHERE run_id = r.id AND verdict = 'unstable') AS unstable,
    (SELECT max(overhead_pct) FROM sets WHERE run_id = r.id) AS max_overhead_pct
  FROM runs AS r`;

function summary(row: RunRow): RunSummary {
  return {
    id: row.id, created_at: row.created_at, scenario: row.scenario_name, file: row.scenario_file, scenario_hash: row.scenario_hash,
    seed: row.seed, seeds: row.seeds, cpu: row.cpu, kasi_version: row.kasi_version, git_commit: row.git_commit,
    sets: row.sets === null ? [] : (JSON.parse(row.sets) as string[]), leaks: row.leaks ?? 0, unstable: row.unstable ?? 0,
    max_overhead_pct: row.max_overhead_pct,
  };
}

/** The newest `limit` runs, newest first. */
export function listRuns(db: Db, limit: number): RunSummary[] {
  return (db.prepare(`${SUMMARY} ORDER BY r.id DESC LIMIT ?`).all(limit) as RunRow[]).map(summary);
}

/** Run `id`, or a StoreError naming the ids there are. */
export function getRun(db: Db, id: number, path: string): StoredRun {
  const row = db.prepare(`${SUMMARY} WHERE r.id = ?`).get(id) as RunRow | undefined;
  if (row === undefined) {
    const r = db.prepare('SELECT min(id) AS lo, max(id) AS hi, count(*) AS n FROM runs').get() as { lo: number | null; hi: number | null; n: number };
    throw new StoreError(`no run ${id} in ${path} (${r.n === 0 ? 'it holds no runs' : `it holds runs ${r.lo}..${r.hi}`}; kasi history lists them)`, 'missing');
  }
  const more = db.prepare('SELECT scenario_text, scenario_json, duration, report_json FROM runs WHERE id = ?').get(id) as {
    scenario_text: string; scenario_json: string | null; duration: string | null; report_json: string;
  };
  return { ...summary(row), ...more, report: JSON.parse(more.report_json) as SeedsReport };
}
