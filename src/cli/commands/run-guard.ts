/**
 * What `kasi run` checks around the run itself (run.ts calls both):
 * - before: the predicted work of the scenario as it will run (its duration after --duration, its
 *   seeds after --seeds; sim/budget.ts). A stop no run can reach is refused; work above the
 *   budget is refused with the numbers unless --force;
 * - during: a machine the model cannot build from a valid scenario (RAM that cannot hold the
 *   kernel's boot allocations, the tenants and their vCPUs: linux/boot-error.ts, the buddy
 *   allocator's OutOfMemoryError) is the scenario's problem, reported as one line naming it.
 *   Errors cross sim/pool.ts's worker threads by name, so they are recognised by name.
 */
import { InputError } from '../../formats/files.ts';
import { formatLimit } from '../../formats/limits.ts';
import { predictWork } from '../../sim/budget.ts';
import { withRunOptions } from '../../sim/run.ts';
import type { Scenario, SimTime } from '../../sim/scenario-types.ts';
import { UsageError } from '../usage.ts';

/** Refuse a run no engine can make, or (without `force`) one whose predicted work is absurd. */
export function checkRunBudget(s: Scenario, o: { seeds: number; duration?: SimTime; force: boolean }): void {
  const p = predictWork(o.duration === undefined ? s : withRunOptions(s, { duration: o.duration }), o.seeds);
  if (p.impossible !== null) {
    if (o.duration !== undefined) throw new UsageError(`--duration: expected ${p.impossible}`);
    throw new InputError(s.file, `expected ${p.impossible}`);
  }
  if (p.excessive !== null && !o.force) {
    throw new InputError(s.file, `${p.excessive}: shorten the duration or the events, lengthen the attackers' every, run fewer seeds, or pass --force to run it anyway`);
  }
}

const BUILD_ERRORS = new Set(['BootError', 'OutOfMemoryError']);

/** Run `f`, turning a machine the model cannot build for `s` into an InputError naming its file. */
export async function guardRun<T>(s: Scenario, f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (err) {
    if (err instanceof Error && BUILD_ERRORS.has(err.name)) {
      throw new InputError(s.file, `cannot build the machine this scenario describes (machine.ram ${formatLimit(s.machine.ramBytes)}, ${s.tenants.length} tenant(s)): ${err.message}; give it more RAM or fewer, smaller tenants`);
    }
    throw err;
  }
}
