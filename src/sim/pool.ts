/**
 * Many seeds of one scenario, spread over worker threads (issue 10 item 6): `runSeeds` runs
 * seeds S … S+N-1, each seed's unmitigated baseline first (its events per task are what every
 * other entry of that seed repeats, sim/run.ts), the other entries of a seed as soon as its
 * baseline is done. `workers` threads run them: this one, and workers - 1 helpers of a piscina
 * pool (worker_threads; runHere), the count from os.availableParallelism() by default; kasi
 * sweep's shared pool, or kasi serve's (`here: false`, so its thread stays free for HTTP), runs
 * all of them (runOnPool). From src each worker registers tsx's loader (seed-worker-boot.mjs)
 * and loads the TypeScript sources, under `tsx` and under vitest alike; the compiled CLI
 * (scripts/build.mjs) loads seed-worker.ts's own bundle instead.
 *
 * Results are placed by (seed, entry), never by completion order, so the reports are the same
 * whatever the number of workers and whichever thread ran each.
 */
import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import { assembleReport, baselineIndex, runAfterBaseline, runBaseline, withRunOptions, type EntryRun, type RunReport } from './run.ts';
import type { Scenario, SimTime } from './scenario-types.ts';
import { DEFAULT_SEEDS } from './seeds.ts';
import type { SeedTask, SeedTaskResult } from './seed-worker.ts';

export interface SeedsOptions {
  /** The first seed (default: the scenario's). */
  seed?: number;
  /** How many seeds (default DEFAULT_SEEDS). */
  seeds?: number;
  /** Threads that run tasks, this one among them (default os.availableParallelism()); 1 = this thread alone. */
  workers?: number;
  duration?: SimTime;
  /** Called as each run finishes: runs done, runs in all, "seed S entry". */
  onProgress?: (done: number, total: number, label: string) => void;
  /** Cancels the run (kasi serve): pending tasks are dropped, running ones aborted (piscina's signal); runSeeds rejects with an AbortError. */
  signal?: AbortSignal;
  /**
   * false: every task on worker threads, none in this one (kasi serve: its thread answers HTTP
   * while a run goes on); default true: this thread runs tasks beside workers - 1 helpers.
   */
  here?: boolean;
  /** Filled with how many tasks this thread and the helpers ran (tests, benchmarks). */
  ran?: { here: number; helpers: number };
  /** A pool shared by many runSeeds calls (createSeedPool; kasi sweep runs its points on one): used instead of a pool of its own, and left open. */
  pool?: SeedPool;
}

export type SeedPool = Piscina<SeedTask, SeedTaskResult>;

/** The default worker count: one per CPU the process may use. */
export function defaultWorkers(): number {
  return Math.max(1, availableParallelism());
}

/** The scenario of each seed: only `seed` changes (the KASLR seed stays as the scenario resolved it). */
export function seedScenarios(input: Scenario, o: SeedsOptions): Scenario[] {
  const base = withRunOptions(input, { duration: o.duration });
  const first = o.seed ?? base.seed;
  const n = o.seeds ?? DEFAULT_SEEDS;
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`seeds: expected an integer >= 1, found ${n}`);
  if (first + n - 1 > 0xffffffff) throw new RangeError(`seeds ${first} … ${first + n - 1}: the last seed is above 4294967295`);
  return Array.from({ length: n }, (_, k) => ({ ...base, seed: first + k }));
}

/** In the compiled CLI, the folder of its bundles in the package (scripts/build.mjs defines it: dist/cli); undeclared when running from src. */
declare const KASI_COMPILED: string | undefined;
/** The worker's entry: compiled, seed-worker.ts's own bundle beside the CLI's; from src, a JavaScript entry that registers tsx in the worker, then imports seed-worker.ts. */
const WORKER_FILE = typeof KASI_COMPILED !== 'undefined' ? new URL(`../../${KASI_COMPILED}/seed-worker.js`, import.meta.url).href : new URL('./seed-worker-boot.mjs', import.meta.url).href;

function rethrow(r: Extract<SeedTaskResult, { ok: false }>): never {
  const e = r.name === 'RangeError' ? new RangeError(r.message) : r.name === 'TypeError' ? new TypeError(r.message) : new Error(r.message);
  if (r.name !== 'RangeError' && r.name !== 'TypeError') e.name = r.name;
  e.stack = r.stack;
  throw e;
}

/** A pool of `workers` threads that run seed tasks; destroy() it when done. */
export function createSeedPool(workers: number): SeedPool {
  return new Piscina<SeedTask, SeedTaskResult>({
    filename: WORKER_FILE, name: 'runSeedTask', minThreads: workers, maxThreads: workers, idleTimeout: 1000,
    // Not the parent's flags (vitest's or tsx's): the entry registers tsx itself.
    execArgv: [],
  });
}

/** Run every seed; one RunReport per seed, in seed order. */
export async function runSeeds(input: Scenario, o: SeedsOptions = {}): Promise<RunReport[]> {
  const scenarios = seedScenarios(input, o);
  const n = input.isolation.length;
  const b = baselineIndex(input);
  const total = scenarios.length * n;
  const runs: EntryRun[][] = scenarios.map(() => new Array<EntryRun>(n));
  let done = 0;
  const progress = (s: Scenario, i: number): void => o.onProgress?.(++done, total, `seed ${s.seed} ${s.isolation[i].name}`);
  const workers = Math.min(o.workers ?? defaultWorkers(), total);
  if (!Number.isInteger(workers) || workers < 1) throw new RangeError(`workers: expected an integer >= 1, found ${o.workers}`);

  const record = (k: number, i: number, r: EntryRun): void => {
    runs[k][i] = r;
    progress(scenarios[k], i);
  };
  if (o.pool !== undefined) await runOnPool(o.pool, scenarios, b, n, record, o.signal);
  else if (o.here === false) {
    const pool = createSeedPool(workers);
    try {
      await runOnPool(pool, scenarios, b, n, record, o.signal);
    } finally {
      await pool.destroy();
    }
  } else await runHere(scenarios, b, n, workers - 1, record, o.signal, o.ran);
  return scenarios.map((s, k) => assembleReport(s, runs[k]));
}

/** One seed task's result, or its error rethrown with its class. */
async function runTask(pool: SeedPool, t: SeedTask, signal: AbortSignal | undefined): Promise<EntryRun & { targets?: number[] }> {
  const r = await pool.run(t, signal ? { signal } : {});
  if (!r.ok) rethrow(r);
  return r.run;
}

/** Every task on a pool (kasi sweep's shared one, or kasi serve's): each seed's baseline, then its entries. */
async function runOnPool(pool: SeedPool, scenarios: Scenario[], b: number, n: number, record: (k: number, i: number, r: EntryRun) => void, signal: AbortSignal | undefined): Promise<void> {
  await Promise.all(scenarios.map(async (s, k) => {
    const base = await runTask(pool, { kind: 'baseline', scenario: s, index: b }, signal);
    record(k, b, base);
    const targets = base.targets!;
    await Promise.all(Array.from({ length: n }, async (_, i) => {
      if (i === b) return;
      record(k, i, await runTask(pool, { kind: 'entry', scenario: s, index: i, targets, baseCycles: base.result.costs.cycles }, signal));
    }));
  }));
}

/**
 * This thread runs tasks itself and `helpers` pool threads take the others, one task each at a
 * time: a queue of ready tasks (every seed's baseline, then a seed's entries once its baseline is
 * done), the helpers fed whenever one is free and more than one task is ready, this thread
 * taking the next one between.
 * Why this thread works too: a worker thread is a second V8 isolate that loads and JIT-compiles
 * the model again (~1 s of warm-up on these machines), and V8's compiler and GC threads already
 * keep the second CPU of a 2-CPU machine about half busy, so a pool of two idle-main workers ran
 * the default 8 seeds slower than this thread alone (bench/parallel.ts: 0.91x).
 */
async function runHere(scenarios: Scenario[], b: number, n: number, helpers: number, record: (k: number, i: number, r: EntryRun) => void, signal: AbortSignal | undefined, ran?: { here: number; helpers: number }): Promise<void> {
  type Ready = { k: number; i: number };
  const ready: Ready[] = scenarios.map((_, k) => ({ k, i: b }));
  const bases: (EntryRun & { targets?: number[] })[] = new Array(scenarios.length);
  let left = scenarios.length * n;
  const finish = (t: Ready, r: EntryRun & { targets?: number[] }): void => {
    record(t.k, t.i, r);
    left--;
    if (t.i !== b) return;
    bases[t.k] = r;
    for (let i = 0; i < n; i++) if (i !== b) ready.push({ k: t.k, i });
  };
  const runHereNow = (t: Ready): EntryRun & { targets?: number[] } => {
    const s = scenarios[t.k];
    if (t.i === b) return runBaseline(s, b);
    const base = bases[t.k];
    return runAfterBaseline(s, t.i, base.targets!, base.result.costs.cycles);
  };
  const pool = helpers > 0 ? createSeedPool(helpers) : null;
  let inflight = 0;
  let failure: unknown = null;
  let wake: (() => void) | null = null;
  const feed = (): void => {
    // One ready task is always left to this thread: with a single seed the baseline runs here,
    // already loaded, while the helpers start up.
    while (pool !== null && failure === null && inflight < helpers && ready.length > 1) {
      const t = ready.shift()!;
      const s = scenarios[t.k];
      const base = bases[t.k];
      const task: SeedTask = t.i === b ? { kind: 'baseline', scenario: s, index: b }
        : { kind: 'entry', scenario: s, index: t.i, targets: base.targets!, baseCycles: base.result.costs.cycles };
      inflight++;
      // finish() (its progress callback) may throw too: a failure like a task's, never unhandled.
      runTask(pool, task, signal).then((r) => { finish(t, r); if (ran) ran.helpers++; }).catch((e: unknown) => { failure ??= e; }).finally(() => {
        inflight--;
        wake?.();
      });
    }
  };
  try {
    while (left > 0 && failure === null) {
      signal?.throwIfAborted();
      feed();
      if (ready.length > 0) {
        const t = ready.pop()!; // the helpers take from the front
        finish(t, runHereNow(t));
        if (ran) ran.here++;
        // Let the helpers' results in (and feed them) before the next task here.
        await new Promise<void>((r) => setImmediate(r));
      } else if (inflight > 0) {
        await new Promise<void>((r) => { wake = r; });
        wake = null;
      } else break;
    }
    if (failure !== null) throw failure;
  } finally {
    if (pool !== null) {
      while (inflight > 0) await new Promise<void>((r) => { wake = r; });
      await pool.destroy();
    }
  }
}
