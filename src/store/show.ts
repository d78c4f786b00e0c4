/**
 * `kasi history` and `kasi show` output: the newest runs one line each, and one run as `kasi run`
 * printed it (report/run-text.ts renders the stored JSON report again) under a header naming the
 * run, the scenario (file, sha256), the seeds and the kasi that made it.
 */
import { formatRunText } from '../report/run-text.ts';
import type { RunSummary, StoredRun } from './query.ts';
import { shortCommit, textTable, when } from './table.ts';

const seedRange = (r: { seed: number; seeds: number }): string => (r.seeds === 1 ? `${r.seed}` : `${r.seed}..${r.seed + r.seeds - 1}`);

export function formatHistory(runs: readonly RunSummary[], path: string): string {
  if (runs.length === 0) return `no runs in ${path} yet (kasi run stores each run there)\n`;
  const rows = runs.map((r) => [
    String(r.id), when(r.created_at), r.scenario, seedRange(r), String(r.sets.length),
    `${r.leaks}${r.unstable > 0 ? ` (${r.unstable}~)` : ''}`,
    r.max_overhead_pct === null ? '' : `${r.max_overhead_pct.toFixed(2)}%`,
    `${r.kasi_version} ${shortCommit(r.git_commit)}`,
  ]);
  const lines = textTable(['id', 'stored (UTC)', 'scenario', 'seeds', 'sets', 'leaks', 'max overhead', 'kasi'], rows, '', 'rlllrrrl');
  lines.push('', 'leaks: attack × secret cells that leaked in at least one seed, over all sets ((k~): of those, the cells a run stored before the any-seed verdict called unstable)');
  return lines.join('\n') + '\n';
}

export function historyJson(runs: readonly RunSummary[]): string {
  return JSON.stringify(runs, null, 2) + '\n';
}

export function showHeader(r: StoredRun): string[] {
  return [
    `run ${r.id}: stored ${when(r.created_at)} UTC by kasi ${r.kasi_version} (${shortCommit(r.git_commit)})`,
    `scenario ${r.scenario} (${r.file}), sha256 ${r.scenario_hash.slice(0, 16)}…, seeds ${seedRange(r)}${r.duration !== null ? `, --duration ${r.duration}` : ''}`,
  ];
}

export function formatShow(r: StoredRun): string {
  return [...showHeader(r), '', formatRunText(r.report)].join('\n');
}

export function showJson(r: StoredRun): string {
  return JSON.stringify({
    id: r.id, created_at: r.created_at, kasi_version: r.kasi_version, git_commit: r.git_commit,
    scenario: { name: r.scenario, file: r.file, sha256: r.scenario_hash, text: r.scenario_text },
    seed: r.seed, seeds: r.seeds, duration: r.duration,
    report: r.report,
  }, null, 2) + '\n';
}
