/**
 * `kasi diff A B`: two stored runs side by side — what differs in their scenarios (as run: field
 * paths, list items that have a `name` keyed by it, so inserting an isolation entry does not shift
 * every later one), the mitigation sets only one has, the leak cells gained and lost from A to B
 * (a cell leaks when any seed leaked: its verdict is 'leaks', or 'unstable' in a run stored before
 * the any-seed rule, sim/seeds.ts), the cells that leak in both at rates that differ (their 95%
 * intervals of k of N are disjoint, or the cell is rare in one only: recomputed from k and N, so a
 * legacy 'unstable' against 'leaks' at the same k is no change), and for the sets both have,
 * overhead and cycle deltas and every count that differs. Sets are matched by name, cells by
 * attack × secret.
 */
import { rareLeak, wilson95, type CellStats, type SetStats, type Verdict } from '../sim/seeds.ts';
import type { StoredRun } from './query.ts';
import { scenarioAsRun } from './record.ts';
import { num, shortCommit, signed, textTable, when } from './table.ts';
import { seedCount } from '../report/cell-text.ts';
import { cutShort } from '../report/cut-short.ts';

export interface ScenarioChange { readonly path: string; readonly a: string | null; readonly b: string | null }

export interface CellChange {
  readonly set: string;
  readonly attack: string;
  readonly secret: string;
  readonly owner: string;
  /** null: no such cell in that run. */
  readonly a: { verdict: Verdict; seeds_leaked: number; seeds: number; bytes_median: number | null } | null;
  readonly b: { verdict: Verdict; seeds_leaked: number; seeds: number; bytes_median: number | null } | null;
}

export interface CostChange {
  readonly set: string;
  readonly overhead_pct: { a: number; b: number; delta: number };
  readonly cycles: { a: number; b: number; delta: number };
  /** A kill cut the set's workload short in that run: its overhead is of less work (report/cut-short.ts). */
  readonly cut_short: { a: boolean; b: boolean };
}

export interface CountChange { readonly set: string; readonly name: string; readonly a: number; readonly b: number; readonly delta: number }

export interface RunDiff {
  readonly a: number;
  readonly b: number;
  readonly scenario: readonly ScenarioChange[];
  readonly sets_only_in_a: readonly string[];
  readonly sets_only_in_b: readonly string[];
  readonly leaks_gained: readonly CellChange[];
  readonly leaks_lost: readonly CellChange[];
  /** Cells leaking in both runs whose leak rates differ (disjoint 95% intervals, or rare in one only). */
  readonly rate_changed: readonly CellChange[];
  readonly costs: readonly CostChange[];
  readonly counts: readonly CountChange[];
}

/** Leaves of a JSON value by path; list items with unique string names are keyed `[name]`. */
export function flatten(v: unknown, path = '', out = new Map<string, string>()): Map<string, string> {
  if (Array.isArray(v)) {
    const names = v.map((x) => (x !== null && typeof x === 'object' && typeof (x as { name?: unknown }).name === 'string' ? (x as { name: string }).name : null));
    const keyed = v.length > 0 && names.every((n) => n !== null) && new Set(names).size === names.length;
    if (v.length === 0) out.set(path, '[]');
    v.forEach((x, i) => flatten(x, `${path}[${keyed ? names[i] : i}]`, out));
  } else if (v !== null && typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>);
    if (entries.length === 0) out.set(path, '{}');
    for (const [k, x] of entries) flatten(x, path === '' ? k : `${path}.${k}`, out);
  } else {
    out.set(path, typeof v === 'string' ? (v === '' ? '""' : v) : JSON.stringify(v));
  }
  return out;
}

function scenarioDoc(r: StoredRun): unknown {
  return JSON.parse(r.scenario_json ?? scenarioAsRun(r.scenario_text, r.seed, r.duration));
}

/** Every object and list inside a JSON value, by path, as compact JSON. */
function containers(v: unknown, path = '', out = new Map<string, string>()): Map<string, string> {
  if (v === null || typeof v !== 'object') return out;
  if (path !== '') out.set(path, JSON.stringify(v));
  if (Array.isArray(v)) {
    const names = v.map((x) => (x !== null && typeof x === 'object' && typeof (x as { name?: unknown }).name === 'string' ? (x as { name: string }).name : null));
    const keyed = v.length > 0 && names.every((n) => n !== null) && new Set(names).size === names.length;
    v.forEach((x, i) => containers(x, `${path}[${keyed ? names[i] : i}]`, out));
  } else {
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) containers(x, path === '' ? k : `${path}.${k}`, out);
  }
  return out;
}

const under = (leaf: string, c: string): boolean => leaf === c || leaf.startsWith(`${c}.`) || leaf.startsWith(`${c}[`);

export function scenarioChanges(a: StoredRun, b: StoredRun): ScenarioChange[] {
  const da = scenarioDoc(a);
  const db = scenarioDoc(b);
  const fa = flatten(da);
  const fb = flatten(db);
  const ca = containers(da);
  const cb = containers(db);
  // A list item or object only one side has is one row (its JSON), not a row per field.
  const top = (mine: Map<string, string>, theirs: Map<string, string>, theirLeaves: Map<string, string>): string[] => {
    const gone = [...mine.keys()].filter((c) => !theirs.has(c) && !theirLeaves.has(c));
    return gone.filter((c) => !gone.some((g) => g !== c && under(c, g)));
  };
  const onlyA = top(ca, cb, fb);
  const onlyB = top(cb, ca, fa);
  const paths = [...fa.keys()];
  for (const p of fb.keys()) if (!fa.has(p)) paths.push(p);
  const out: ScenarioChange[] = [];
  const done = new Set<string>();
  for (const p of paths) {
    const ga = onlyA.find((c) => under(p, c));
    const gb = onlyB.find((c) => under(p, c));
    const g = ga ?? gb;
    if (g !== undefined) {
      if (!done.has(g)) { done.add(g); out.push({ path: g, a: ga !== undefined ? ca.get(g)! : null, b: gb !== undefined ? cb.get(g)! : null }); }
      continue;
    }
    if (fa.get(p) !== fb.get(p)) out.push({ path: p, a: fa.get(p) ?? null, b: fb.get(p) ?? null });
  }
  if (a.seeds !== b.seeds) out.push({ path: '(--seeds)', a: String(a.seeds), b: String(b.seeds) });
  return out;
}

const leaking = (v: Verdict | undefined): boolean => v === 'leaks' || v === 'unstable';

/** Two leaking cells' rates differ: their 95% intervals do not meet, or one is rare and the other not. */
function rateChanged(a: CellStats, b: CellStats): boolean {
  const [alo, ahi] = wilson95(a.seeds_leaked, a.seeds);
  const [blo, bhi] = wilson95(b.seeds_leaked, b.seeds);
  return ahi < blo || bhi < alo || rareLeak(a.seeds_leaked, a.seeds) !== rareLeak(b.seeds_leaked, b.seeds);
}
const cellOf = (c: CellStats | undefined): CellChange['a'] => (c === undefined ? null : { verdict: c.verdict, seeds_leaked: c.seeds_leaked, seeds: c.seeds, bytes_median: c.bytes_median });

export function diffRuns(a: StoredRun, b: StoredRun): RunDiff {
  const ma = a.report.mitigations;
  const mb = b.report.mitigations;
  const byName = (ms: readonly SetStats[]): Map<string, SetStats> => new Map(ms.map((m) => [m.name, m]));
  const na = byName(ma);
  const nb = byName(mb);
  const gained: CellChange[] = [];
  const lost: CellChange[] = [];
  const changed: CellChange[] = [];
  const costs: CostChange[] = [];
  const counts: CountChange[] = [];
  for (const sb of mb) {
    const sa = na.get(sb.name);
    if (sa === undefined) continue;
    const keys: [string, string][] = [];
    for (const c of [...sa.matrix, ...sb.matrix]) if (!keys.some(([x, y]) => x === c.attack && y === c.secret)) keys.push([c.attack, c.secret]);
    for (const [attack, secret] of keys) {
      const ca = sa.matrix.find((c) => c.attack === attack && c.secret === secret);
      const cb = sb.matrix.find((c) => c.attack === attack && c.secret === secret);
      const ch: CellChange = { set: sb.name, attack, secret, owner: (cb ?? ca)!.owner, a: cellOf(ca), b: cellOf(cb) };
      if (!leaking(ca?.verdict) && leaking(cb?.verdict)) gained.push(ch);
      else if (leaking(ca?.verdict) && !leaking(cb?.verdict)) lost.push(ch);
      else if (ca !== undefined && cb !== undefined && leaking(ca.verdict) && leaking(cb.verdict) && rateChanged(ca, cb)) changed.push(ch);
    }
    costs.push({
      set: sb.name,
      overhead_pct: { a: sa.costs.overhead_pct, b: sb.costs.overhead_pct, delta: Number((sb.costs.overhead_pct - sa.costs.overhead_pct).toFixed(2)) },
      cycles: { a: sa.costs.cycles, b: sb.costs.cycles, delta: sb.costs.cycles - sa.costs.cycles },
      cut_short: { a: cutShort(a.report, sa), b: cutShort(b.report, sb) },
    });
    const names = Object.keys(sa.costs.counts);
    for (const k of Object.keys(sb.costs.counts)) if (!names.includes(k)) names.push(k);
    for (const k of names) {
      const x = sa.costs.counts[k] ?? 0;
      const y = sb.costs.counts[k] ?? 0;
      if (x !== y) counts.push({ set: sb.name, name: k, a: x, b: y, delta: Number((y - x).toFixed(2)) });
    }
  }
  return {
    a: a.id, b: b.id,
    scenario: scenarioChanges(a, b),
    sets_only_in_a: ma.filter((m) => !nb.has(m.name)).map((m) => m.name),
    sets_only_in_b: mb.filter((m) => !na.has(m.name)).map((m) => m.name),
    leaks_gained: gained, leaks_lost: lost, rate_changed: changed, costs, counts,
  };
}

const cellText = (c: CellChange['a']): string => {
  if (c === null) return '(no cell)';
  if (c.seeds_leaked === 0) return 'no leak';
  return `${seedCount(c)}${c.bytes_median !== null ? ` ${c.bytes_median}B` : ''}`;
};

/** A value cut to 60 characters for the text table (--json has it whole). */
const clip = (v: string): string => (v.length > 60 ? `${v.slice(0, 59)}…` : v);

function cellRows(cs: readonly CellChange[]): string[][] {
  return cs.map((c) => [c.set, `${c.attack} × ${c.secret} (${c.owner})`, cellText(c.a), cellText(c.b)]);
}

export function formatDiff(d: RunDiff, a: StoredRun, b: StoredRun): string {
  const runLine = (r: StoredRun): string => `  ${r.id}: ${r.scenario} (${r.file}), seeds ${r.seeds === 1 ? r.seed : `${r.seed}..${r.seed + r.seeds - 1}`}, stored ${when(r.created_at)}, kasi ${r.kasi_version} ${shortCommit(r.git_commit)}`;
  const A = String(d.a);
  const B = String(d.b);
  const out: string[] = [`kasi diff ${A} ${B}`, runLine(a), runLine(b), ''];
  if (d.scenario.length === 0) out.push(a.scenario_hash === b.scenario_hash ? 'Scenario: the same text, run the same way' : 'Scenario: the same as run (the texts differ only in form)');
  else out.push('Scenario: what differs', ...textTable(['field', A, B], d.scenario.map((c) => [c.path, clip(c.a ?? '(absent)'), clip(c.b ?? '(absent)')]), '  ', 'lll'));
  if (d.sets_only_in_a.length > 0) out.push('', `Mitigation sets only in ${A}: ${d.sets_only_in_a.join(', ')}`);
  if (d.sets_only_in_b.length > 0) out.push('', `Mitigation sets only in ${B}: ${d.sets_only_in_b.join(', ')}`);
  const cellHead = ['set', 'attack × secret (owner)', A, B];
  out.push('', `Leaks gained in ${B} (leak in ${B}, none in ${A})`, ...(d.leaks_gained.length === 0 ? ['  none'] : textTable(cellHead, cellRows(d.leaks_gained), '  ', 'llrr')));
  out.push('', `Leaks lost in ${B} (leak in ${A}, none in ${B})`, ...(d.leaks_lost.length === 0 ? ['  none'] : textTable(cellHead, cellRows(d.leaks_lost), '  ', 'llrr')));
  if (d.rate_changed.length > 0) out.push('', 'Leak rates changed (leaking in both; 95% intervals apart, or rare in one only)', ...textTable(cellHead, cellRows(d.rate_changed), '  ', 'llrr'));
  out.push('', 'Costs of the sets in both (medians)', ...textTable(
    ['set', `overhead % ${A}`, `overhead % ${B}`, 'Δ', `cycles ${A}`, `cycles ${B}`, 'Δ cycles'],
    d.costs.map((c) => [c.set, c.cut_short.a ? 'killed' : c.overhead_pct.a.toFixed(2), c.cut_short.b ? 'killed' : c.overhead_pct.b.toFixed(2), c.cut_short.a || c.cut_short.b ? '-' : signed(c.overhead_pct.delta), num(c.cycles.a), num(c.cycles.b), c.cycles.delta > 0 ? `+${num(c.cycles.delta)}` : num(c.cycles.delta)]),
    '  '));
  out.push('', 'Counts that differ (medians)', ...(d.counts.length === 0 ? ['  none'] : textTable(['set', 'count', A, B, 'Δ'], d.counts.map((c) => [c.set, c.name, num(c.a), num(c.b), c.delta > 0 ? `+${num(c.delta)}` : num(c.delta)]), '  ', 'llrrr')));
  return out.join('\n') + '\n';
}
