/**
 * `kasi export ID --format json|csv|md`:
 *   json  the stored report, byte for byte what `kasi run --json` printed;
 *   csv   one row per mitigation set (RFC 4180): costs, spread, leak counts, the leaking cells,
 *         then every count and every event kind's cycles as columns, for a spreadsheet;
 *   md    a Markdown post a reviewer can paste into a mailing-list message: what was run (kasi
 *         version and commit, scenario and its sha256, seeds, CPU), the leak matrix, the costs with
 *         their spread and the non-zero counts, the notes, the scenario itself and the command
 *         that reproduces the run.
 */
import { basename } from 'node:path';
import { rareLeak, type CellStats, type SeedsReport, type SetStats } from '../sim/seeds.ts';
import type { StoredRun } from './query.ts';
import { mdTable, num, shortCommit, when } from './table.ts';
import { seedCount } from '../report/cell-text.ts';
import { cutShort } from '../report/cut-short.ts';

export const EXPORT_FORMATS = ['json', 'csv', 'md'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

function csvField(v: string | number | boolean | null): string {
  const s = v === null ? '' : String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function union(ms: readonly SetStats[], pick: (m: SetStats) => Readonly<Record<string, number>>): string[] {
  const keys: string[] = [];
  for (const m of ms) for (const k of Object.keys(pick(m))) if (!keys.includes(k)) keys.push(k);
  return keys;
}

const cellShort = (c: CellStats): string => `${c.attack}×${c.secret} ${seedCount(c)}${rareLeak(c.seeds_leaked, c.seeds) ? ' rare' : ''}`;

export function exportCsv(r: StoredRun): string {
  const ms = r.report.mitigations;
  const counts = union(ms, (m) => m.costs.counts);
  const kinds = union(ms, (m) => m.costs.by_kind);
  const header = ['run', 'set', 'cmdline', 'design', 'stun', 'same_as', 'cycles', 'overhead_pct', 'overhead_pct_min', 'overhead_pct_q1', 'overhead_pct_q3', 'overhead_pct_max', 'cut_short',
    'cells_leaks', 'cells_unstable', 'cells_rare', 'leaked_cells', ...counts, ...kinds.map((k) => `cycles:${k}`)];
  const rows = ms.map((m) => {
    const o = m.costs.spread.overhead_pct;
    return [r.id, m.name, m.cmdline, m.design, m.stun, m.same_as, m.costs.cycles, m.costs.overhead_pct, o.min, o.q1, o.q3, o.max, cutShort(r.report, m),
      // cells_leaks: leaked in any seed (the verdict now; in older runs it also counts their 'unstable' cells, listed apart).
      m.matrix.filter((c) => c.seeds_leaked > 0).length, m.matrix.filter((c) => c.verdict === 'unstable').length,
      m.matrix.filter((c) => rareLeak(c.seeds_leaked, c.seeds)).length,
      m.matrix.filter((c) => c.seeds_leaked > 0).map(cellShort).join('; '),
      ...counts.map((k) => m.costs.counts[k] ?? 0), ...kinds.map((k) => m.costs.by_kind[k] ?? 0)];
  });
  return [header, ...rows].map((row) => row.map(csvField).join(',')).join('\r\n') + '\r\n';
}

function mdCell(c: CellStats | undefined, seeds: number): string {
  if (c === undefined) return '';
  if (c.seeds_leaked === 0) return '–';
  if (seeds === 1) return `${c.bytes}/${c.of}B`;
  return `${seedCount(c)} ${c.bytes_median}B${rareLeak(c.seeds_leaked, c.seeds) ? ' (rare)' : ''}`;
}

function leakTable(rep: SeedsReport): string[] {
  const ms = rep.mitigations;
  const keys: CellStats[] = [];
  for (const m of ms) for (const c of m.matrix) if (!keys.some((k) => k.attack === c.attack && k.secret === c.secret)) keys.push(c);
  return mdTable(['attack × secret (owner, bytes)', ...ms.map((m) => m.name)],
    keys.map((k) => [`${k.attack} × ${k.secret} (${k.owner}, ${k.of}B)`, ...ms.map((m) => mdCell(m.matrix.find((c) => c.attack === k.attack && c.secret === k.secret), rep.seeds))]));
}

function costTable(rep: SeedsReport): string[] {
  const ms = rep.mitigations;
  const rows: string[][] = [
    ['overhead %', ...ms.map((m) => (cutShort(rep, m) ? 'killed' : m.costs.overhead_pct.toFixed(2)))],
  ];
  if (rep.seeds > 1) rows.push(['overhead % min..max', ...ms.map((m) => (cutShort(rep, m) ? 'killed' : `${m.costs.spread.overhead_pct.min.toFixed(2)}..${m.costs.spread.overhead_pct.max.toFixed(2)}`))]);
  rows.push(['cycles', ...ms.map((m) => num(m.costs.cycles))]);
  for (const k of union(ms, (m) => m.costs.counts)) {
    if (k === 'events' || ms.every((m) => (m.costs.counts[k] ?? 0) === 0)) continue;
    rows.push([k, ...ms.map((m) => num(m.costs.counts[k] ?? 0))]);
  }
  return mdTable(['', ...ms.map((m) => m.name)], rows);
}

export function exportMarkdown(r: StoredRun): string {
  const rep = r.report;
  const n = rep.seeds;
  const seeds = n === 1 ? `seed ${rep.seed}` : `seeds ${rep.seed}..${rep.seed + n - 1} (${n})`;
  const fileName = r.file.startsWith('<') ? 'default.yaml' : basename(r.file);
  const out: string[] = [
    `## kasi: ${rep.scenario} — what leaks and what it costs`,
    '',
    `kasi ${r.kasi_version} (commit ${shortCommit(r.git_commit)}), run ${r.id} stored ${when(r.created_at)} UTC.`,
    `Scenario \`${rep.scenario}\` (\`${fileName}\`, sha256 \`${r.scenario_hash.slice(0, 16)}\`), ${seeds}, CPU model ${rep.cpu}; workload: ${rep.stop}. Overhead is against \`${rep.baseline}\`, the same workload and seed.`,
    '',
    n === 1
      ? '### Leaks (bytes of each planted secret recovered by each attack; – = none)'
      : `### Leaks (seeds that leaked / ${n}, median bytes recovered; – = in none; (rare) = so few that another ${n} seeds could well show none; ~ = unstable, the verdict of runs stored before the any-seed rule)`,
    '',
    ...leakTable(rep),
    '',
    `### Costs${n > 1 ? ` (medians over ${n} seeds)` : ''}`,
    '',
    ...costTable(rep),
    '',
    '### Mitigation sets',
    '',
    ...rep.mitigations.map((m) => `- \`${m.name}\`: ${m.cmdline === '' ? 'default command line' : `\`${m.cmdline}\``}${m.design !== 'off' ? `, ASI design ${m.design}` : ''}${m.stun ? ', sibling stun' : ''}${m.same_as !== null ? ` (same mitigation state as \`${m.same_as}\`)` : ''}`),
  ];
  const notes = rep.mitigations.flatMap((m) => m.notes.map((x) => `- \`${m.name}\`: ${x}`));
  if (notes.length > 0) out.push('', '### Notes', '', ...notes);
  out.push(
    '',
    `### Scenario (\`${fileName}\`)`,
    '',
    '```yaml',
    r.scenario_text.trimEnd(),
    '```',
    '',
    `Reproduce: \`kasi run ${r.file.startsWith('<') ? '' : `${fileName} `}--seed ${rep.seed} --seeds ${n}${r.duration !== null ? ` --duration ${r.duration}` : ''}\``,
  );
  return out.join('\n') + '\n';
}

export function exportRun(r: StoredRun, format: ExportFormat): string {
  if (format === 'json') return r.report_json;
  if (format === 'csv') return exportCsv(r);
  return exportMarkdown(r);
}
