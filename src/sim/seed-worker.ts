/**
 * The worker of sim/pool.ts (a piscina worker thread, TypeScript loaded through tsx): runs one
 * isolation entry of one seed. Errors come back as values, so the main thread rethrows them with
 * their class (a RangeError is a scenario error: exit 2, one line).
 */
import { runAfterBaseline, runBaseline, type EntryRun } from './run.ts';
import type { Scenario } from './scenario-types.ts';

export type SeedTask =
  | { readonly kind: 'baseline'; readonly scenario: Scenario; readonly index: number }
  | { readonly kind: 'entry'; readonly scenario: Scenario; readonly index: number; readonly targets: readonly number[]; readonly baseCycles: number };

export type SeedTaskResult =
  | { readonly ok: true; readonly run: EntryRun & { readonly targets?: number[] } }
  | { readonly ok: false; readonly name: string; readonly message: string; readonly stack: string };

export function runSeedTask(t: SeedTask): SeedTaskResult {
  try {
    const run = t.kind === 'baseline' ? runBaseline(t.scenario, t.index) : runAfterBaseline(t.scenario, t.index, t.targets, t.baseCycles);
    return { ok: true, run };
  } catch (err) {
    const e = err instanceof Error ? err : new Error(String(err));
    return { ok: false, name: e instanceof RangeError ? 'RangeError' : e.name, message: e.message, stack: e.stack ?? '' };
  }
}

export default runSeedTask;
