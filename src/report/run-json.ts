/**
 * `kasi run --json`: one object
 *   {"scenario", "file", "seed", "cpu", "stop", "baseline",
 *    "mitigations": [{"name", "cmdline", "design", "stun", "state",
 *                     "leaks": [{"attack", "secret", "owner", "bytes", "of", "when"}],
 *                     "matrix": [every attack × secret cell],
 *                     "costs": {"cycles", "overhead_pct", "counts": {...}, "by_kind": {...}},
 *                     "asi_exit_reasons", "secrets", "events_per_task", "notes"}]}
 * Keys in a fixed order; the same report gives the same bytes.
 */
import type { RunReport } from '../sim/run.ts';

export function formatRunJson(r: RunReport): string {
  return JSON.stringify({
    scenario: r.scenario,
    file: r.file,
    seed: r.seed,
    cpu: r.cpu,
    stop: r.stop,
    baseline: r.baseline,
    mitigations: r.mitigations,
  }, null, 2) + '\n';
}
