/**
 * Many seeds of one scenario, spread over worker threads (issue 10 item 6): `runSeeds` runs
 * seeds S … S+N-1, each seed's unmitigated baseline first (its events per task are what every
 * other entry of that seed repeats, sim/run.ts), the other entries of a seed as soon as its
 * baseline is done. The threads are a piscina pool (worker_threads), sized from
 * os.availableParallelism(); from src each worker registers tsx's loader (seed-worker-boot.mjs)
 * and loads the TypeScript sources, under `tsx` and under vitest alike; the compiled CLI
 * (scripts/build.mjs) loads seed-worker.ts's own bundle instead.
 *
 * Results are placed by (seed, entry), never by completion order, so the reports are the same
 * whatever the number of workers; with one worker everything runs in this thread.
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
  /** Worker threads (default os.availableParallelism()); 1 = run in this thread. */
  workers?: number;
  duration?: SimTime;
  /** Called as each run finishes: runs done, runs in all, "seed S entry". */
  onProgress?: (done: number, total: number, label: string) => void;
  /** Cancels the run (kasi serve): pending tasks are dropped, running ones aborted (piscina's signal); runSeeds rejects with an AbortError. */
  signal?: AbortSignal;
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

  if (workers === 1 && o.pool === undefined) {
    scenarios.forEach((s, k) => {
      o.signal?.throwIfAborted();
      const base = runBaseline(s, b);
      runs[k][b] = base;
      progress(s, b);
      for (let i = 0; i < n; i++) {
        if (i === b) continue;
        runs[k][i] = runAfterBaseline(s, i, base.targets, base.result.costs.cycles);
        progress(s, i);
      }
    });
  } else {
    const pool = o.pool ?? createSeedPool(workers);
    const run = async (t: SeedTask): Promise<EntryRun & { targets?: number[] }> => {
      const r = await pool.run(t, o.signal ? { signal: o.signal } : {});
      if (!r.ok) rethrow(r);
      return r.run;
    };
    try {
      await Promise.all(scenarios.map(async (s, k) => {
        const base = await run({ kind: 'baseline', scenario: s, index: b });
        runs[k][b] = base;
        progress(s, b);
        const targets = base.targets!;
        await Promise.all(Array.from({ length: n }, async (_, i) => {
          if (i === b) return;
          runs[k][i] = await run({ kind: 'entry', scenario: s, index: i, targets, baseCycles: base.result.costs.cycles });
          progress(s, i);
        }));
      }));
    } finally {
      if (o.pool === undefined) await pool.destroy();
    }
  }
  return scenarios.map((s, k) => assembleReport(s, runs[k]));
}
