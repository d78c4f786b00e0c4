/**
 * A sweep's points in the results store (issue 12 "Sweeps"; schema 3, store/migrations.ts): each
 * point is one run row, stored as `kasi run` stores a run (store/save.ts) and tagged with the sweep,
 * the point and the shard in the same transaction, so a process killed at any moment leaves whole
 * points only. A point counts as done when a run with the same scenario text (hash), point
 * assignment, first seed, number of seeds, --duration and kasi version is stored — from this sweep
 * file or any other that makes the same point — and a resumed sweep skips it.
 */
import type { SeedsReport } from '../sim/seeds.ts';
import type { Db } from './db.ts';
import { canonicalJson, gitCommit, kasiVersion, scenarioAsRun } from './record.ts';
import { saveRun, sha256 } from './save.ts';
import { formatRunJson } from '../report/run-json.ts';

export interface PointKey {
  /** The point's scenario text. */
  readonly text: string;
  readonly params: Readonly<Record<string, unknown>>;
  readonly seed: number;
  readonly seeds: number;
  readonly duration: string | null;
}

export interface PointTags {
  readonly sweepId: string;
  readonly point: number;
  /** "I/N", or null for an unsharded sweep. */
  readonly shard: string | null;
}

/** The id a sweep file's text gives its sweep. */
export function sweepId(text: string): string {
  return sha256(text).slice(0, 16);
}

/** The id of the stored run of this point, or undefined. */
export function storedPoint(db: Db, k: PointKey): number | undefined {
  const row = db.prepare(`SELECT id FROM runs WHERE scenario_hash = ? AND sweep_params = ? AND seed = ? AND seeds = ? AND kasi_version = ?
      AND duration IS ? ORDER BY id LIMIT 1`)
    .get(sha256(k.text), canonicalJson(k.params), k.seed, k.seeds, kasiVersion(), k.duration) as { id: number } | undefined;
  return row?.id;
}

/** Store one point's report with its tags, in one transaction; returns the run's id. */
export function savePoint(db: Db, k: PointKey, report: SeedsReport, tags: PointTags): number {
  const tag = db.prepare('UPDATE runs SET sweep_id = ?, sweep_point = ?, sweep_params = ?, sweep_shard = ? WHERE id = ?');
  const tx = db.transaction((): number => {
    const id = saveRun(db, {
      report, reportJson: formatRunJson(report), scenarioText: k.text, scenarioJson: scenarioAsRun(k.text, report.seed, k.duration),
      duration: k.duration, kasiVersion: kasiVersion(), gitCommit: gitCommit(), createdAt: new Date().toISOString(),
    });
    tag.run(tags.sweepId, tags.point, canonicalJson(k.params), tags.shard, id);
    return id;
  });
  return tx.immediate();
}

/** The git commits, other than `commit`, that stored the runs `ids` (null: not known, never counted). */
export function otherCommits(db: Db, ids: readonly number[], commit: string | null): string[] {
  if (commit === null || ids.length === 0) return [];
  const q = db.prepare('SELECT git_commit FROM runs WHERE id = ?').pluck();
  return ids.map((id) => q.get(id) as string | null).filter((c): c is string => c !== null && c !== commit);
}

export const SWEEP_METRICS = ['overhead_pct', 'cycles', 'leaks'] as const;

export interface SweepRow {
  readonly run: number;
  readonly point: number;
  readonly params: Record<string, unknown>;
  readonly set: string;
  readonly value: number;
}

/**
 * One row per (point, mitigation set) of sweep `id` — the latest run of each point — with
 * `metric`: overhead_pct or cycles (the sets' medians), leaks (cells that leaked in a seed at
 * least), or the name of a count (asi_exits, l1d_flushes, …: its median).
 */
export function sweepRows(db: Db, id: string, metric: string): SweepRow[] {
  const latest = 'SELECT max(id) AS id FROM runs WHERE sweep_id = ? GROUP BY sweep_point';
  const base = `FROM runs r JOIN sets s ON s.run_id = r.id WHERE r.id IN (${latest})`;
  const sql = metric === 'overhead_pct' || metric === 'cycles'
    ? `SELECT r.id AS run, r.sweep_point AS point, r.sweep_params AS params, s.name AS "set", s.${metric} AS value ${base}`
    : metric === 'leaks'
      ? `SELECT r.id AS run, r.sweep_point AS point, r.sweep_params AS params, s.name AS "set",
           (SELECT count(*) FROM cells c WHERE c.run_id = r.id AND c.set_idx = s.idx AND c.seeds_leaked > 0) AS value ${base}`
      : `SELECT r.id AS run, r.sweep_point AS point, r.sweep_params AS params, s.name AS "set", c.value AS value
           FROM runs r JOIN sets s ON s.run_id = r.id JOIN counts c ON c.run_id = r.id AND c.set_idx = s.idx AND c.name = ?
           WHERE r.id IN (${latest})`;
  const args = metric === 'overhead_pct' || metric === 'cycles' || metric === 'leaks' ? [id] : [metric, id];
  const rows = db.prepare(`${sql} ORDER BY point, s.idx`).all(...args) as { run: number; point: number; params: string; set: string; value: number }[];
  return rows.map((r) => ({ ...r, params: JSON.parse(r.params) as Record<string, unknown> }));
}

/** The count names stored for sweep `id` (what --metric accepts besides SWEEP_METRICS). */
export function sweepCountNames(db: Db, id: string): string[] {
  return (db.prepare('SELECT DISTINCT c.name FROM counts c JOIN runs r ON r.id = c.run_id WHERE r.sweep_id = ? ORDER BY c.name').all(id) as { name: string }[]).map((r) => r.name);
}
