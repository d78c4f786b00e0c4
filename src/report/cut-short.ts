import type { SeedsReport, SetStats } from '../sim/seeds.ts';

/**
 * A set whose workload a kill cut short (SCI refusing a fetch: sim/sci-run.ts) ran fewer events
 * than the baseline: its cycles are of less work, so an overhead against the baseline would be a
 * number about nothing. Read from the counts, so runs stored before this rule are judged too.
 */
export function cutShort(r: SeedsReport, m: SetStats): boolean {
  const base = r.mitigations.find((x) => x.name === r.baseline);
  return base !== undefined && (m.costs.counts.kills ?? 0) > 0 && (m.costs.counts.events ?? 0) < (base.costs.counts.events ?? 0);
}
