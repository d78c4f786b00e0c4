/**
 * `kasi run --json`: one object
 *   {"scenario", "file", "seed" (the first), "seeds" (N), "cpu", "stop", "baseline",
 *    "same_state": [{"entry", "same_as", "state"}],
 *    "mitigations": [{"name", "cmdline", "design", "stun", "state", "same_as",
 *                     "leaks": [cells with seeds_leaked > 0],
 *                     "matrix": [every attack × secret cell:
 *                        {"attack", "secret", "owner", "of", "seeds", "seeds_leaked", "verdict",
 *                         "leak_rate_ci95", "rare", "bytes_median", "first_leak_ns_median", "bytes", "when",
 *                         "bytes_by_seed", "first_leak_ns_by_seed"}],
 *                     "costs": {"cycles", "overhead_pct" (medians),
 *                               "spread": {"cycles", "overhead_pct": {"min", "q1", "median", "q3", "max"}},
 *                               "cycles_by_seed", "overhead_pct_by_seed", "counts", "by_kind" (medians),
 *                               "cut_short" (a kill cut the set's workload short: its overhead is of less work, report/cut-short.ts)},
 *                     "asi_exit_reasons": [{"event", "part", "object", "count", "seeds", "va"}],
 *                     "secrets", "events_per_task" (of the first seed), "notes"}]}
 * sim/seeds.ts defines each statistic. Keys in a fixed order; the same report gives the same bytes,
 * whatever the number of workers.
 */
import type { SeedsReport } from '../sim/seeds.ts';
import { cutShort } from './cut-short.ts';

export function formatRunJson(r: SeedsReport): string {
  return JSON.stringify({
    scenario: r.scenario,
    file: r.file,
    seed: r.seed,
    seeds: r.seeds,
    cpu: r.cpu,
    stop: r.stop,
    baseline: r.baseline,
    same_state: r.same_state,
    mitigations: r.mitigations.map((m) => ({ ...m, costs: { ...m.costs, cut_short: cutShort(r, m) } })),
  }, null, 2) + '\n';
}
