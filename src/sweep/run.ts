/**
 * Running a sweep's points (issue 12 "Sweeps"): every point of this process's shard is made and
 * checked first (sweep/grid.ts: a bad value late in the grid fails before anything runs), the
 * points the caller already has (`isDone`: the store's resume check) are skipped, and the rest run
 * on one piscina pool of `workers` threads shared by all points (sim/pool.ts createSeedPool; with
 * one worker, in this thread), as many points at once as there are workers so the pool stays busy.
 * Each point is `kasi run` of its scenario: seeds S … S+N-1, summarized (sim/seeds.ts); its
 * report does not depend on the number of workers or on which points ran beside it. `onPoint` is
 * called as each point finishes (the caller stores it then, so a killed sweep keeps every finished
 * point), in completion order.
 */
import { createSeedPool, runSeeds, type SeedPool } from '../sim/pool.ts';
import type { SimTime } from '../sim/scenario-types.ts';
import { summarize, type SeedsReport } from '../sim/seeds.ts';
import { point, type Grid, type Point } from './grid.ts';
import { shardPoints, type Shard } from './shard.ts';

export interface SweepOptions {
  readonly workers: number;
  readonly seeds: number;
  /** The first seed (default: each point's scenario seed). */
  readonly seed?: number;
  readonly duration?: SimTime;
  readonly shard: Shard | null;
  /** Whether a point is already done (resume); never called with --force. */
  readonly isDone?: (p: Point) => boolean;
  /** Checks a point before anything runs (the budget guard); throws to refuse. */
  readonly check?: (p: Point) => void;
  readonly onStart?: (todo: readonly Point[], skipped: readonly Point[]) => void;
  readonly onPoint?: (p: Point, report: SeedsReport, ms: number) => void;
}

export interface SweepResult {
  /** Points of this shard, skipped as done, run now. */
  readonly shardPoints: number;
  readonly skipped: number;
  readonly ran: number;
}

/** The points of this shard, made and checked. */
export function sweepPoints(g: Grid, shard: Shard | null): Point[] {
  return shardPoints(g.size, shard).map((i) => point(g, i));
}

export async function runSweep(g: Grid, o: SweepOptions): Promise<SweepResult> {
  const points = sweepPoints(g, o.shard);
  for (const p of points) o.check?.(p);
  const skipped = o.isDone ? points.filter((p) => o.isDone!(p)) : [];
  const todo = points.filter((p) => !skipped.includes(p));
  o.onStart?.(todo, skipped);
  const one = async (p: Point, pool: SeedPool | undefined): Promise<void> => {
    const t0 = performance.now();
    const reports = await runSeeds(p.scenario, { seed: o.seed, seeds: o.seeds, duration: o.duration, workers: pool ? o.workers : 1, pool });
    o.onPoint?.(p, summarize(reports), performance.now() - t0);
  };
  if (o.workers <= 1 || todo.length === 0) {
    for (const p of todo) await one(p, undefined);
  } else {
    const pool = createSeedPool(o.workers);
    let next = 0;
    try {
      // `workers` points in flight; each queues its seeds' runs on the shared pool.
      const lanes = Array.from({ length: Math.min(o.workers, todo.length) }, async () => {
        while (next < todo.length) await one(todo[next++], pool);
      });
      await Promise.all(lanes);
    } finally {
      await pool.destroy();
    }
  }
  return { shardPoints: points.length, skipped: skipped.length, ran: todo.length };
}
