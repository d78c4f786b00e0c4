/**
 * Runs started from the browser (issue 13 "Run"): one at a time (the seeds already fill every CPU,
 * sim/pool.ts), on worker threads so the server keeps answering; progress goes to every client
 * that listens (server-sent events), so a second client sees the same run; a run can be
 * cancelled (piscina's AbortSignal); a run that throws fails that run only. The report is the
 * JSON `kasi run --json` prints (report/run-json.ts) and lands in the results store as
 * `kasi run` stores it (store/record.ts, store/save.ts).
 */
import { setMaxListeners } from 'node:events';
import { formatRunJson } from '../../report/run-json.ts';
import { predictWork } from '../../sim/budget.ts';
import { defaultWorkers, runSeeds } from '../../sim/pool.ts';
import { withRunOptions } from '../../sim/run.ts';
import { summarize, type SeedsReport } from '../../sim/seeds.ts';
import type { Scenario, SimTime } from '../../sim/scenario-types.ts';
import { openStore } from '../../store/db.ts';
import { runRecord, scenarioAsRun } from '../../store/record.ts';
import { saveRun } from '../../store/save.ts';
import { RequestError } from './scenario-input.ts';

/** Runs kept in memory (the newest; a run is never dropped while it runs: only one runs, the newest). */
export const KEEP_JOBS = 20;

export type JobStatus = 'running' | 'done' | 'failed' | 'cancelled';

export interface JobEvent { job: number; status: JobStatus; done: number; total: number; label: string; error?: string; stored?: string; runId?: number }

export interface RunRequest {
  scenario: Scenario;
  /** The example's file (its text is stored as the scenario), or undefined for an upload. */
  file: string | undefined;
  text: string;
  source: string;
  seed?: number;
  seeds: number;
  duration?: SimTime;
  durationText: string | null;
}

export interface Job {
  readonly id: number;
  readonly source: string;
  readonly scenario: string;
  state: JobEvent;
  /** The report JSON, once done. */
  report: string | null;
  readonly abort: AbortController;
  readonly listeners: Set<(e: JobEvent) => void>;
  /** What was run (the timeline reruns its first seed). */
  readonly request: RunRequest;
}

export class RunJobs {
  private next = 1;
  readonly jobs = new Map<number, Job>();
  private current: Job | null = null;

  constructor(private readonly db: string | null, private readonly workers = Math.max(2, defaultWorkers()),
    private readonly run: typeof runSeeds = runSeeds) {}

  get active(): Job | null { return this.current; }

  start(r: RunRequest): Job {
    if (this.current !== null) throw new RequestError(409, `run ${this.current.id} (${this.current.source}) is still running: cancel it or wait`);
    const p = predictWork(r.duration === undefined ? r.scenario : withRunOptions(r.scenario, { duration: r.duration }), r.seeds);
    if (p.impossible !== null) throw new RequestError(400, `expected ${p.impossible}`);
    if (p.excessive !== null) throw new RequestError(400, `${p.excessive}: shorten the duration or the events, or run fewer seeds (kasi run --force runs it anyway)`);
    const id = this.next++;
    const job: Job = {
      id, source: r.source, scenario: r.scenario.name, report: null, abort: new AbortController(), listeners: new Set(), request: r,
      state: { job: id, status: 'running', done: 0, total: r.seeds * r.scenario.isolation.length, label: 'starting' },
    };
    setMaxListeners(0, job.abort.signal); // one listener per task piscina queues
    this.jobs.set(id, job);
    // Keep the newest KEEP_JOBS runs (each holds its report and scenario); older ones are in the store.
    for (const old of this.jobs.keys()) { if (this.jobs.size <= KEEP_JOBS) break; this.jobs.delete(old); }
    this.current = job;
    void this.execute(job, r);
    return job;
  }

  private emit(job: Job, patch: Partial<JobEvent>): void {
    job.state = { ...job.state, ...patch };
    for (const l of job.listeners) l(job.state);
  }

  private async execute(job: Job, r: RunRequest): Promise<void> {
    try {
      const runs = await this.run(r.scenario, {
        seeds: r.seeds, workers: this.workers, signal: job.abort.signal,
        ...(r.seed !== undefined ? { seed: r.seed } : {}), ...(r.duration !== undefined ? { duration: r.duration } : {}),
        onProgress: (done, total, label) => this.emit(job, { done, total, label }),
      });
      const report = summarize(runs);
      job.report = formatRunJson(report);
      const stored = this.store(r, report, job.report);
      this.emit(job, { status: 'done', label: 'done', ...stored });
    } catch (err) {
      if (job.abort.signal.aborted) this.emit(job, { status: 'cancelled', label: 'cancelled' });
      else this.emit(job, { status: 'failed', label: 'failed', error: (err as Error).message?.split('\n')[0] ?? String(err) });
    } finally {
      if (this.current === job) this.current = null;
    }
  }

  private store(r: RunRequest, report: SeedsReport, reportJson: string): { stored: string; runId?: number } {
    if (this.db === null) return { stored: 'not stored (no store)' };
    let db;
    try {
      db = openStore(this.db, { create: true });
      const rec = runRecord({ file: r.file, scenario: r.scenario, report, reportJson, duration: r.durationText });
      // An upload has no file: store the text that was sent.
      const id = saveRun(db, r.file !== undefined ? rec : { ...rec, scenarioText: r.text, scenarioJson: scenarioAsRun(r.text, report.seed, r.durationText) });
      return { stored: `stored as run ${id} in ${this.db}`, runId: id };
    } catch (err) {
      return { stored: `not stored: ${(err as Error).message.split('\n')[0]}` };
    } finally {
      try { db?.close(); } catch { /* after a failure */ }
    }
  }

  cancel(id: number): Job | null {
    const job = this.jobs.get(id);
    if (job === undefined) return null;
    if (job.state.status === 'running') job.abort.abort();
    return job;
  }

  /** Stop whatever runs (server close). */
  async close(): Promise<void> {
    this.current?.abort.abort();
  }
}
