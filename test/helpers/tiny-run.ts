/**
 * One seed of a scenario file run in this process as `kasi run --seeds 1 --workers 1` would run
 * it: the report and the scenario it came from (the store and sweep tests store this one run
 * under many keys rather than running again).
 */
import { runReport } from '../../src/cli/commands/run.ts';
import type { SeedsReport } from '../../src/sim/seeds.ts';
import type { Scenario } from '../../src/sim/scenario-types.ts';

export async function tinyRun(file: string): Promise<{ report: SeedsReport; scenario: Scenario }> {
  const r = await runReport(file, { seeds: '1', workers: '1', progress: false });
  return { report: r.report, scenario: r.scenario };
}
