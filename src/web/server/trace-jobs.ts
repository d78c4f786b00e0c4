/**
 * A finished run's timeline (issue 13 "Costs: a run's timeline"): the first seed run again with
 * the engine's trace recorder, exactly what `kasi run --trace FILE --trace-limit N` writes
 * (report/trace-run.ts), computed once per run on a worker thread so the server keeps answering,
 * and kept with the run.
 */
import { Piscina } from 'piscina';
import type { TraceRunOptions } from '../../report/trace-run.ts';
import type { Scenario } from '../../sim/scenario-types.ts';
import type { TraceTask } from './trace-worker.ts';

/** Events kept in a timeline the browser draws (the CLI's default is 200,000, for Perfetto). */
export const WEB_TRACE_LIMIT = 20_000;
/** In the compiled CLI, the folder of its bundles in the package (scripts/build.mjs defines it: dist/cli); undeclared when running from src. */
declare const KASI_COMPILED: string | undefined;
/** Compiled, trace-worker.ts's own bundle beside the CLI's; from src, a boot file that registers tsx in the thread first. */
const WORKER = typeof KASI_COMPILED !== 'undefined' ? new URL(`../../../${KASI_COMPILED}/trace-worker.js`, import.meta.url).href : new URL('./trace-worker-boot.mjs', import.meta.url).href;

export class TraceJobs {
  private pool: Piscina<TraceTask, string> | null = null;
  private readonly done = new Map<number, Promise<string>>();

  /** The trace JSON of run `id` (computed on first ask). */
  trace(id: number, scenario: Scenario, options: TraceRunOptions): Promise<string> {
    let p = this.done.get(id);
    if (p === undefined) {
      this.pool ??= new Piscina<TraceTask, string>({ filename: WORKER, name: 'runTraceTask', minThreads: 0, maxThreads: 1, idleTimeout: 5000, execArgv: [] });
      p = this.pool.run({ scenario, options });
      p.catch(() => this.done.delete(id)); // a failure is not kept: ask again to retry
      this.done.set(id, p);
    }
    return p;
  }

  async close(): Promise<void> {
    await this.pool?.destroy();
  }
}
