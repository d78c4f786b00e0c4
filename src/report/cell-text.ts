/**
 * How a leak cell's seed count is spelled in every output (text report, CSV, Markdown, diff):
 * `k/N`, with `~` in front for an `unstable` cell of a run stored before the any-seed verdict
 * (sim/seeds.ts verdictOf), so one legacy mark reads the same everywhere.
 */
export interface SeedCounted {
  readonly verdict: string;
  readonly seeds_leaked: number;
  readonly seeds: number;
}

export function seedCount(c: SeedCounted): string {
  return `${c.verdict === 'unstable' ? '~' : ''}${c.seeds_leaked}/${c.seeds}`;
}
