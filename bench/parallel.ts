/**
 * `npx tsx bench/parallel.ts`: the default scenario (`kasi run` without a file: every mitigation
 * set, 8 seeds) on 1 worker and on 2 (issue 16 "Done when": 2 workers >= 1.7x faster than 1,
 * with identical output). Writes bench/parallel-results.json: wall and CPU time of each run (CPU
 * of every thread of the process, V8's compiler and GC threads included) and whether the two
 * JSON reports are byte-identical. KASI_BENCH_SEEDS changes the seed count. The ratio needs two
 * idle CPUs: on a shared machine it measures the load too (cpus_busy below 1 shows it).
 */
import { writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatRunJson } from '../src/report/run-json.ts';
import { defaultScenario } from '../src/scenario/load.ts';
import { runSeeds } from '../src/sim/pool.ts';
import { DEFAULT_SEEDS, summarize } from '../src/sim/seeds.ts';

const here = dirname(fileURLToPath(import.meta.url));
const SEEDS = Number(process.env.KASI_BENCH_SEEDS ?? DEFAULT_SEEDS);
const scenario = defaultScenario();

async function timed(workers: number): Promise<{ ms: number; cpuMs: number; json: string }> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const reports = await runSeeds(scenario, { seeds: SEEDS, workers });
  const ms = performance.now() - t0;
  const c = process.cpuUsage(c0);
  return { ms, cpuMs: (c.user + c.system) / 1000, json: formatRunJson(summarize(reports)) };
}

const round2 = (x: number): number => Math.round(x * 100) / 100;
// In-thread first and last, so the JIT's warm-up is not all charged to the one-worker run.
const warm = await timed(1);
const two = await timed(2);
const one = await timed(1);
const results = {
  scenario: 'built-in default', sets: scenario.isolation.length, seeds: SEEDS,
  workers_1_ms: Math.round(one.ms), workers_2_ms: Math.round(two.ms), speedup_2_workers: round2(one.ms / two.ms),
  workers_1_cold_ms: Math.round(warm.ms),
  workers_1_cpus_busy: round2(one.cpuMs / one.ms), workers_2_cpus_busy: round2(two.cpuMs / two.ms),
  cpu_2_over_1: round2(two.cpuMs / one.cpuMs),
  identical_output: one.json === two.json && warm.json === one.json,
  cpus: availableParallelism(), node: process.version,
};
writeFileSync(join(here, 'parallel-results.json'), JSON.stringify(results, null, 2) + '\n');
console.log(JSON.stringify(results, null, 2));
if (!results.identical_output) process.exitCode = 1;
