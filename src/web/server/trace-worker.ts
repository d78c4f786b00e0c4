/** The timeline of a finished run, off the server's thread (trace-jobs.ts): report/trace-run.ts traceScenario. */
import { traceScenario, type TraceRunOptions } from '../../report/trace-run.ts';
import type { Scenario } from '../../sim/scenario-types.ts';

export interface TraceTask { scenario: Scenario; options: TraceRunOptions }

export function runTraceTask(t: TraceTask): string {
  return traceScenario(t.scenario, t.options).json;
}
