/**
 * Store one `kasi run` (issue 12): the run's row and, per mitigation set, its sets, cells, counts
 * and kind_cycles rows (store/migrations.ts), all in one immediate transaction, so a reader or a
 * killed process sees the whole run or none of it, and two processes storing at once take turns
 * (store/db.ts: WAL and the busy timeout).
 */
import { createHash } from 'node:crypto';
import type { SeedsReport } from '../sim/seeds.ts';
import type { Db } from './db.ts';

export interface RunRecord {
  /** The report as kasi run --json prints it, and its parsed form. */
  readonly reportJson: string;
  readonly report: SeedsReport;
  /** The scenario file's text (the built-in scenario: its JSON). */
  readonly scenarioText: string;
  /** The scenario as run (options applied), canonical JSON: what `kasi diff` compares. */
  readonly scenarioJson: string;
  /** The --duration override, or null. */
  readonly duration: string | null;
  readonly kasiVersion: string;
  readonly gitCommit: string | null;
  /** ISO 8601 UTC. */
  readonly createdAt: string;
}

export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** Insert `rec`; returns the run's id. */
export function saveRun(db: Db, rec: RunRecord): number {
  const r = rec.report;
  const insRun = db.prepare(`INSERT INTO runs (created_at, scenario_name, scenario_file, scenario_text, scenario_hash, seed, seeds,
      kasi_version, git_commit, report_json, scenario_json, cpu, duration)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
  const insSet = db.prepare(`INSERT INTO sets (run_id, idx, name, cmdline, design, stun, same_as, cycles, overhead_pct,
      overhead_min, overhead_q1, overhead_q3, overhead_max) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
  const insCell = db.prepare(`INSERT INTO cells (run_id, set_idx, attack, secret, owner, of_bytes, seeds, seeds_leaked, verdict,
      bytes_median, first_leak_ns_median) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
  const insCount = db.prepare('INSERT INTO counts (run_id, set_idx, name, value) VALUES (?, ?, ?, ?)');
  const insKind = db.prepare('INSERT INTO kind_cycles (run_id, set_idx, kind, cycles) VALUES (?, ?, ?, ?)');
  const tx = db.transaction((): number => {
    const id = Number(insRun.run(rec.createdAt, r.scenario, r.file, rec.scenarioText, sha256(rec.scenarioText), r.seed, r.seeds,
      rec.kasiVersion, rec.gitCommit, rec.reportJson, rec.scenarioJson, r.cpu, rec.duration).lastInsertRowid);
    r.mitigations.forEach((m, i) => {
      const o = m.costs.spread.overhead_pct;
      insSet.run(id, i, m.name, m.cmdline, m.design, m.stun ? 1 : 0, m.same_as, m.costs.cycles, m.costs.overhead_pct, o.min, o.q1, o.q3, o.max);
      for (const c of m.matrix) insCell.run(id, i, c.attack, c.secret, c.owner, c.of, c.seeds, c.seeds_leaked, c.verdict, c.bytes_median, c.first_leak_ns_median);
      for (const [k, v] of Object.entries(m.costs.counts)) insCount.run(id, i, k, v);
      for (const [k, v] of Object.entries(m.costs.by_kind)) insKind.run(id, i, k, v);
    });
    return id;
  });
  return tx.immediate();
}
