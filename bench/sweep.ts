/**
 * `npx tsx bench/sweep.ts`: a sweep on 1 worker and on 2 (issue 12 "Done when": ≥ 1.8× faster on
 * 2 workers than on 1, and the same stored results). Runs examples/sweep-asi-exit-rate.yaml
 * (6 points × 5 sets, 4 seeds each) through sweep/run.ts without a store, first with one worker
 * (everything in this thread), then with a pool of two; checks that both give the same reports and
 * writes the wall times and their ratio to bench/sweep-results.json. The ratio needs two idle
 * CPUs: on a shared machine it measures the load too, so what the machine gives two threads is
 * measured before, between and after (machine-parallel.ts) and `of_machine` is the sweep's
 * speed-up over the median of those: 1 is all a pool can get here.
 */
import { writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatRunJson } from '../src/report/run-json.ts';
import { loadGrid } from '../src/sweep/grid.ts';
import { runSweep } from '../src/sweep/run.ts';
import { machineSpeedup, medianSpeedup } from './machine-parallel.ts';

const here = dirname(fileURLToPath(import.meta.url));
const grid = loadGrid(join(here, '../examples/sweep-asi-exit-rate.yaml'));
/** Seeds per point: enough work (~15 s in one thread) that the pool's start-up (each worker loads the model and boots its kernels) is small beside it. */
const SEEDS = Number(process.env.KASI_BENCH_SEEDS ?? 24);

/** Wall time, and CPU time of the whole process (every thread: the workers, V8's compiler and GC threads). */
async function timed(workers: number): Promise<{ ms: number; cpuMs: number; reports: string[] }> {
  const reports: string[] = [];
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await runSweep(grid, { workers, seeds: SEEDS, shard: null, onPoint: (p, r) => { reports[p.index] = formatRunJson(r); } });
  const c = process.cpuUsage(c0);
  return { ms: performance.now() - t0, cpuMs: (c.user + c.system) / 1000, reports };
}

const round2 = (x: number): number => Math.round(x * 100) / 100;
const machine = [await machineSpeedup()];
const one = await timed(1);
machine.push(await machineSpeedup());
const two = await timed(2);
machine.push(await machineSpeedup());
const same = one.reports.every((r, i) => r === two.reports[i]);
const machineMedian = medianSpeedup(machine);
const results = {
  sweep: 'examples/sweep-asi-exit-rate.yaml', points: grid.size, seeds: SEEDS,
  workers_1_ms: Math.round(one.ms), workers_2_ms: Math.round(two.ms), speedup_2_workers: round2(one.ms / two.ms),
  // Why the ratio is what it is: CPUs busy in each run (one worker already keeps V8's compiler and
  // GC threads busy beside it; below 1 means other load took the CPUs) and the CPU the two-worker
  // run spends beyond one (each worker warms its own JIT and boots its own kernels).
  workers_1_cpu_ms: Math.round(one.cpuMs), workers_2_cpu_ms: Math.round(two.cpuMs),
  workers_1_cpus_busy: round2(one.cpuMs / one.ms), workers_2_cpus_busy: round2(two.cpuMs / two.ms),
  cpu_2_over_1: round2(two.cpuMs / one.cpuMs),
  machine_speedup_2_threads: machineMedian, of_machine: round2(one.ms / two.ms / machineMedian),
  machine_rounds: machine,
  same_reports: same, cpus: availableParallelism(), node: process.version,
};
writeFileSync(join(here, 'sweep-results.json'), JSON.stringify(results, null, 2) + '\n');
console.log(JSON.stringify(results, null, 2));
if (!same) process.exitCode = 1;
