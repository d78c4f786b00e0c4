/**
 * Leaks and costs as statistics over seeds (docs/DESIGN.md "Answers are statistics"; issue 10 item 6).
 *
 * `kasi run --seed S --seeds N` runs the scenario for seeds S … S+N-1 (sim/pool.ts); this file
 * turns the N one-seed reports into one: per attack × secret cell, the fraction of seeds that
 * leaked, the median bytes and the median time to first leak over the seeds that leaked, and a
 * verdict; per mitigation set, the median and the spread (min, quartiles, max) of its cycles and
 * overhead. Pure and order-preserving: the same per-seed reports give the same summary.
 *
 * Verdicts: `leaks` = leaked in at least one seed, `no leak` = in none. A seed that leaked is a
 * demonstrated leak (each seed's run is deterministic: `--seed S --seeds 1` replays it), so the
 * mitigation set does not stop that attack; how often a run of this length shows it is the
 * fraction k/N, with its 95% interval (`leak_rate_ci95`, Wilson score). The boundary between the
 * two verdicts is the one that holds across seed sets: a cell that leaks with chance p per run
 * reads `no leak` in N seeds with probability (1 - p)^N (8 seeds, p = 0.7: 7e-5), where a
 * threshold at half of the seeds flipped for the default scenario's MFBDS cells (p 0.70-0.81 over
 * seeds 42..105; seeds 100..107 gave l1d-always mfbds × guest-key 3/8 where 42..49 gave 5/8).
 * A rare leak (p well below 1/N) can still read either way in two seed sets; its interval says
 * how rare. `unstable` (in some seeds, fewer than half) is the verdict of runs stored before
 * this rule; nothing computes it now.
 */
import type { MitigationResult, RunReport } from './run.ts';
import { sameAs } from './same-state.ts';

/**
 * The default N: every cell of the built-in scenario has the same verdict in disjoint seed sets;
 * rare leaks of some examples do not, and the report lists most of them (rareLeak; examples/README.md).
 */
export const DEFAULT_SEEDS = 8;

/** `unstable` only in runs stored before the any-seed rule (the store keeps them as they were). */
export type Verdict = 'leaks' | 'no leak' | 'unstable';

export interface CellStats {
  readonly attack: string;
  readonly secret: string;
  readonly owner: string;
  /** Bytes planted. */
  readonly of: number;
  readonly seeds: number;
  readonly seeds_leaked: number;
  readonly verdict: Verdict;
  /**
   * The 95% Wilson score interval of the chance that a run of this length leaks, from
   * seeds_leaked of seeds (rounded outward to 3 decimals): with none of 8, [0, 0.325]. Absent in
   * runs stored before it existed (wilson95(seeds_leaked, seeds) gives it).
   */
  readonly leak_rate_ci95?: readonly [number, number];
  /** A rare leak (rareLeak): another as many seeds could well show none. Absent in runs stored before it existed. */
  readonly rare?: boolean;
  /** Median bytes recovered over the seeds that leaked (null: none leaked). */
  readonly bytes_median: number | null;
  /** Median time of the first counted byte over the seeds that leaked, ns (null: none leaked). */
  readonly first_leak_ns_median: number | null;
  /** bytes_median, 0 when no seed leaked (the one-seed field). */
  readonly bytes: number;
  /** Median cycle of the first leak over the seeds that leaked, -1 when none (the one-seed field). */
  readonly when: number;
  /** Per seed, in seed order. */
  readonly bytes_by_seed: readonly number[];
  readonly first_leak_ns_by_seed: readonly (number | null)[];
}

export interface Spread {
  readonly min: number;
  readonly q1: number;
  readonly median: number;
  readonly q3: number;
  readonly max: number;
}

export interface ReasonStats {
  readonly event: string;
  readonly part: string;
  readonly object: string;
  /** Total over the seeds. */
  readonly count: number;
  /** Seeds in which this cause made an exit. */
  readonly seeds: number;
  /** The first faulting address, in the first seed that had this cause. */
  readonly va: string;
}

export interface SetStats {
  readonly name: string;
  readonly cmdline: string;
  readonly design: string;
  readonly stun: boolean;
  readonly state: MitigationResult['state'];
  /** The earlier entry this one resolves to the same mitigation state as (sim/same-state.ts), or null. */
  readonly same_as: string | null;
  /** Cells that leaked in at least one seed. */
  readonly leaks: readonly CellStats[];
  /** Every attack × secret cell. */
  readonly matrix: readonly CellStats[];
  readonly costs: {
    /** Medians over the seeds. */
    readonly cycles: number;
    readonly overhead_pct: number;
    readonly spread: { readonly cycles: Spread; readonly overhead_pct: Spread };
    readonly cycles_by_seed: readonly number[];
    readonly overhead_pct_by_seed: readonly number[];
    /** Medians over the seeds. */
    readonly counts: Readonly<Record<string, number>>;
    readonly by_kind: Readonly<Record<string, number>>;
  };
  readonly asi_exit_reasons: readonly ReasonStats[];
  /** Of the first seed. */
  readonly secrets: MitigationResult['secrets'];
  /** Of the first seed. */
  readonly events_per_task: readonly number[];
  /** Every seed's notes, once each, in order of first appearance. */
  readonly notes: readonly string[];
}

export interface SameState {
  /** The later entry. */
  readonly entry: string;
  readonly same_as: string;
  /** The shared state, as each set's `state` prints it. */
  readonly state: MitigationResult['state'];
}

export interface SeedsReport {
  readonly scenario: string;
  readonly file: string;
  /** The first seed. */
  readonly seed: number;
  readonly seeds: number;
  readonly cpu: string;
  readonly stop: string;
  readonly baseline: string;
  readonly same_state: readonly SameState[];
  readonly mitigations: readonly SetStats[];
}

/** The median of `xs` (the mean of the two middle values for an even count); NaN when empty. */
export function median(xs: readonly number[]): number {
  return quantile(xs, 0.5);
}

/** Quantile `q` of `xs` by linear interpolation between order statistics (R type 7). */
export function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const h = (s.length - 1) * q;
  const lo = Math.floor(h);
  const hi = Math.ceil(h);
  return s[lo] + (h - lo) * (s[hi] - s[lo]);
}

const round2 = (x: number): number => Math.round(x * 100) / 100;

export function spread(xs: readonly number[]): Spread {
  return { min: Math.min(...xs), q1: round2(quantile(xs, 0.25)), median: round2(median(xs)), q3: round2(quantile(xs, 0.75)), max: Math.max(...xs) };
}

export function verdictOf(leaked: number): Verdict {
  return leaked === 0 ? 'no leak' : 'leaks';
}

/**
 * Leaked in k of n seeds, so rarely that n fresh seeds would show no leak with a chance above 5%
 * at the rate seen, (1 - k/n)^n > 0.05: at 8 seeds, 1 or 2 of them. Such a cell's verdict can
 * read `no leak` in another seed set (examples/README.md, "Seeds"); more seeds decide it.
 */
export function rareLeak(k: number, n: number): boolean {
  return k > 0 && (1 - k / n) ** n > 0.05;
}

/** z of a two-sided 95% interval (the normal quantile 0.975). */
const Z95 = 1.959963984540054;

/**
 * The Wilson score interval (Wilson 1927) of a binomial proportion, k successes of n trials, at
 * 95%: (k + z²/2 ± z √(k(n-k)/n + z²/4)) / (n + z²). Unlike k/n ± the normal approximation it
 * stays inside [0, 1] and is not empty at k = 0 or k = n.
 */
export function wilson95(k: number, n: number): [number, number] {
  if (!Number.isInteger(n) || n < 1 || !Number.isInteger(k) || k < 0 || k > n) throw new RangeError(`wilson95: ${k} of ${n}`);
  const z2 = Z95 * Z95;
  const mid = k + z2 / 2;
  const half = Z95 * Math.sqrt((k * (n - k)) / n + z2 / 4);
  // Rounded outward, so the interval printed still holds the exact one.
  return [Math.max(0, Math.floor(((mid - half) / (n + z2)) * 1000) / 1000), Math.min(1, Math.ceil(((mid + half) / (n + z2)) * 1000) / 1000)];
}

/** One cell over the seeds; `cells[k]` is seed k's cell (undefined: that seed had no such cell), `ghz[k]` its clock. */
export function cellStats(cells: readonly ({ attack: string; secret: string; owner: string; bytes: number; of: number; when: number } | undefined)[], ghz: readonly number[]): CellStats {
  const any = cells.find((c) => c !== undefined);
  if (any === undefined) throw new RangeError('cellStats: no seed has this cell');
  const bytes = cells.map((c) => c?.bytes ?? 0);
  const whenNs = cells.map((c, k) => (c !== undefined && c.bytes > 0 && c.when >= 0 ? Math.round(c.when / ghz[k]) : null));
  const leakedAt = bytes.flatMap((b, k) => (b > 0 ? [k] : []));
  const n = leakedAt.length;
  const bMed = n === 0 ? null : median(leakedAt.map((k) => bytes[k]));
  const times = leakedAt.flatMap((k) => (whenNs[k] === null ? [] : [whenNs[k] as number]));
  const cyc = leakedAt.flatMap((k) => (cells[k] !== undefined && cells[k]!.when >= 0 ? [cells[k]!.when] : []));
  const tMed = times.length === 0 ? null : Math.round(median(times));
  return {
    attack: any.attack, secret: any.secret, owner: any.owner, of: any.of,
    seeds: cells.length, seeds_leaked: n, verdict: verdictOf(n), leak_rate_ci95: wilson95(n, cells.length), rare: rareLeak(n, cells.length),
    bytes_median: bMed, first_leak_ns_median: tMed,
    bytes: bMed ?? 0, when: cyc.length === 0 ? -1 : Math.round(median(cyc)),
    bytes_by_seed: bytes, first_leak_ns_by_seed: whenNs,
  };
}

function medianRecord(rs: readonly Readonly<Record<string, number>>[]): Record<string, number> {
  const keys: string[] = [];
  for (const r of rs) for (const k of Object.keys(r)) if (!keys.includes(k)) keys.push(k);
  const out: Record<string, number> = {};
  for (const k of keys) out[k] = round2(median(rs.map((r) => r[k] ?? 0)));
  return out;
}

function reasonStats(ms: readonly MitigationResult[]): ReasonStats[] {
  const agg = new Map<string, { event: string; part: string; object: string; count: number; seeds: number; va: string }>();
  for (const m of ms) for (const x of m.asi_exit_reasons) {
    const k = `${x.event}\u0000${x.part}\u0000${x.object}`;
    const row = agg.get(k);
    if (row === undefined) agg.set(k, { event: x.event, part: x.part, object: x.object, count: x.count, seeds: 1, va: x.va });
    else { row.count += x.count; row.seeds++; }
  }
  return [...agg.values()];
}

/** Entry `i` over the seeds (`ms[k]` = seed k's result for it). */
function setStats(ms: readonly MitigationResult[], ghz: readonly number[], sameAsName: string | null): SetStats {
  const first = ms[0];
  const keys: string[] = [];
  const seen = new Set<string>();
  for (const m of ms) for (const c of m.matrix) {
    const k = `${c.attack}\u0000${c.secret}`;
    if (!seen.has(k)) { seen.add(k); keys.push(k); }
  }
  const matrix = keys.map((k) => cellStats(ms.map((m) => m.matrix.find((c) => `${c.attack}\u0000${c.secret}` === k)), ghz));
  const cycles = ms.map((m) => m.costs.cycles);
  const over = ms.map((m) => m.costs.overhead_pct);
  const notes: string[] = [];
  for (const m of ms) for (const n of m.notes) if (!notes.includes(n)) notes.push(n);
  return {
    name: first.name, cmdline: first.cmdline, design: first.design, stun: first.stun, state: first.state, same_as: sameAsName,
    leaks: matrix.filter((c) => c.seeds_leaked > 0),
    matrix,
    costs: {
      cycles: Math.round(median(cycles)), overhead_pct: round2(median(over)),
      spread: { cycles: spread(cycles), overhead_pct: spread(over) },
      cycles_by_seed: cycles, overhead_pct_by_seed: over,
      counts: medianRecord(ms.map((m) => m.costs.counts)), by_kind: medianRecord(ms.map((m) => m.costs.by_kind)),
    },
    asi_exit_reasons: reasonStats(ms),
    secrets: first.secrets,
    events_per_task: first.events_per_task,
    notes,
  };
}

/** The N one-seed reports (seed order, each with every entry in scenario order) as one. */
export function summarize(reports: readonly RunReport[]): SeedsReport {
  if (reports.length === 0) throw new RangeError('summarize: no seeds');
  const r0 = reports[0];
  const n = r0.mitigations.length;
  const same = sameAs(r0.stateKeys);
  const ghz = reports.map((r) => r.ghz);
  const mitigations = Array.from({ length: n }, (_, i) => setStats(reports.map((r) => r.mitigations[i]), ghz, same[i] >= 0 ? r0.mitigations[same[i]].name : null));
  const sameState: SameState[] = [];
  for (let i = 0; i < n; i++) if (same[i] >= 0) sameState.push({ entry: r0.mitigations[i].name, same_as: r0.mitigations[same[i]].name, state: r0.mitigations[i].state });
  return { scenario: r0.scenario, file: r0.file, seed: r0.seed, seeds: reports.length, cpu: r0.cpu, stop: r0.stop, baseline: r0.baseline, same_state: sameState, mitigations };
}

/** "l1d-cond and kpti resolve to the same mitigation state: …" for each pair (report note and stderr warning). */
export function sameStateLines(r: SeedsReport): string[] {
  return r.same_state.map((x) => {
    const m = r.mitigations.find((s) => s.name === x.entry)!;
    const st = Object.entries(x.state).map(([k, v]) => `${k}=${v}`).join(' ');
    return `${x.same_as} and ${x.entry} resolve to the same mitigation state: ${st}, design ${m.design}${m.stun ? ', stun' : ''} — one configuration under two names`;
  });
}
