/**
 * `npx tsx bench/parallel.ts`: `kasi run` of the default scenario (every mitigation set, 8 seeds)
 * with --workers 1 and --workers 2 (issue 16 "Done when": 2 workers >= 1.7x faster than 1, with
 * identical output). Each run is a fresh process, as a user's is — so both pay the JIT's warm-up,
 * the two-worker run once per worker — through bin/kasi.js (the compiled CLI when it is built).
 * Runs alternate, best of ROUNDS each. CPU time (every thread: workers, V8's compiler and GC
 * threads) comes from /usr/bin/time when the machine has it. Writes bench/parallel-results.json.
 * KASI_BENCH_SEEDS changes the seed count. The ratio needs two idle CPUs: on a shared machine it
 * measures the load too (cpus_busy well below the workers' count shows it). So each round also
 * measures what the machine gives two threads on a loop of the engine's kind (machine-parallel.ts),
 * and `of_machine` is kasi's speed-up over the median of those: 1 is all a pool can get here.
 * Each round also runs LONG_SEEDS seeds (KASI_BENCH_LONG_SEEDS, default 4 x SEEDS; 0 skips it) with
 * 1 and 2 workers: the time the extra seeds add is the pool's steady state, what is left of the
 * short run the fixed part (start-up, each isolate's JIT warm-up, the last seed's tail). So
 * `marginal_speedup_2_workers` says whether the pool splits the work, `fixed_ms_*` what it cannot split.
 */
import { writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { machineSpeedup, medianSpeedup, type MachineParallel } from './machine-parallel.ts';
import { timedNode } from './timed-child.ts';

const here = dirname(fileURLToPath(import.meta.url));
const BIN = join(here, '../bin/kasi.js');
const SEEDS = Number(process.env.KASI_BENCH_SEEDS ?? 8);
const ROUNDS = Number(process.env.KASI_BENCH_ROUNDS ?? 3);
const LONG_SEEDS = Number(process.env.KASI_BENCH_LONG_SEEDS ?? 4 * SEEDS);

interface Run { ms: number; cpuMs: number | null; out: string }

function kasiRun(workers: number, seeds = SEEDS): Run {
  const r = timedNode([BIN, 'run', '--json', '--no-store', '--seeds', String(seeds), '--workers', String(workers)], `kasi run --seeds ${seeds} --workers ${workers}`);
  return { ms: r.ms, cpuMs: r.cpuMs, out: r.stdout };
}

const best = (runs: Run[]): Run => runs.reduce((a, b) => (b.ms < a.ms ? b : a));
const ones: Run[] = [];
const twos: Run[] = [];
const machine: MachineParallel[] = [];
const longOnes: Run[] = [];
const longTwos: Run[] = [];
for (let k = 0; k < ROUNDS; k++) {
  machine.push(await machineSpeedup());
  ones.push(kasiRun(1));
  twos.push(kasiRun(2));
  if (LONG_SEEDS > SEEDS) { longOnes.push(kasiRun(1, LONG_SEEDS)); longTwos.push(kasiRun(2, LONG_SEEDS)); }
}
const one = best(ones);
const two = best(twos);
/** Per extra seed with 1 and with 2 workers (ms), and the fixed part of the short run: T(SEEDS) - SEEDS x per-seed. */
const steady = LONG_SEEDS > SEEDS ? (() => {
  const per1 = (best(longOnes).ms - one.ms) / (LONG_SEEDS - SEEDS);
  const per2 = (best(longTwos).ms - two.ms) / (LONG_SEEDS - SEEDS);
  return { per1, per2, fixed1: one.ms - SEEDS * per1, fixed2: two.ms - SEEDS * per2 };
})() : null;
const round2 = (x: number): number => Math.round(x * 100) / 100;
const busy = (r: Run): number | null => (r.cpuMs === null ? null : round2(r.cpuMs / r.ms));
const machineMedian = medianSpeedup(machine);
const results = {
  command: `kasi run --seeds ${SEEDS} --workers W (built-in default scenario)`, rounds: ROUNDS,
  workers_1_ms: Math.round(one.ms), workers_2_ms: Math.round(two.ms), speedup_2_workers: round2(one.ms / two.ms),
  workers_1_cpu_ms: one.cpuMs === null ? null : Math.round(one.cpuMs), workers_2_cpu_ms: two.cpuMs === null ? null : Math.round(two.cpuMs),
  workers_1_cpus_busy: busy(one), workers_2_cpus_busy: busy(two),
  machine_speedup_2_threads: machineMedian, of_machine: round2(one.ms / two.ms / machineMedian),
  long_seeds: steady === null ? null : LONG_SEEDS,
  ms_per_extra_seed_1: steady === null ? null : Math.round(steady.per1), ms_per_extra_seed_2: steady === null ? null : Math.round(steady.per2),
  marginal_speedup_2_workers: steady === null ? null : round2(steady.per1 / steady.per2),
  fixed_ms_1: steady === null ? null : Math.round(steady.fixed1), fixed_ms_2: steady === null ? null : Math.round(steady.fixed2),
  machine_rounds: machine,
  identical_output: [...ones, ...twos].every((r) => r.out === one.out) && [...longOnes, ...longTwos].every((r) => r.out === longOnes[0].out),
  cpus: availableParallelism(), node: process.version,
};
writeFileSync(join(here, 'parallel-results.json'), JSON.stringify(results, null, 2) + '\n');
console.log(JSON.stringify(results, null, 2));
if (!results.identical_output) process.exitCode = 1;
