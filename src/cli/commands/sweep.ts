/**
 * `kasi sweep FILE [--workers N] [--seeds N] [--seed S] [--duration T] [--shard I/N|N] [--force]
 * [--db PATH] [--plot out.svg|png] [--metric M] [--x PATH] [--json]`: run every point of a sweep
 * file's grid (sweep/grid.ts) as `kasi run` runs a scenario, on one worker pool (sweep/run.ts),
 * storing each point as it finishes (store/sweep-runs.ts: one run row per point, tagged with the
 * sweep, the point and the shard). Points already stored are skipped (same scenario text, point,
 * seeds, --duration and kasi version), unless --force, which also runs points above the work
 * budget. `--shard` runs one slice (sweep/shard.ts; Kubernetes Indexed Jobs and Slurm arrays give
 * I in the environment). Then the metric per point and mitigation set is printed (all stored
 * points of this sweep), and drawn with --plot. Progress on stderr: a bar on a terminal, else a
 * line per point.
 */
import type { Command } from 'commander';
import { UsageError } from '../usage.ts';
import { InputError } from '../../formats/files.ts';
import { writeOutput } from './mappings.ts';
import { checkRunBudget, guardRun } from './run-guard.ts';
import { DB_HELP } from './history.ts';
import { parseTime } from '../../scenario/load.ts';
import { defaultWorkers } from '../../sim/pool.ts';
import { DEFAULT_SEEDS } from '../../sim/seeds.ts';
import type { SimTime } from '../../sim/scenario-types.ts';
import { dbPath, openStore, StoreError, type Db } from '../../store/db.ts';
import { checkRunStore } from '../../store/run-store.ts';
import { gitCommit, kasiVersion } from '../../store/record.ts';
import { otherCommits, savePoint, storedPoint, sweepCountNames, sweepId, sweepRows, SWEEP_METRICS, type SweepRow } from '../../store/sweep-runs.ts';
import { loadGrid, valueText, type Grid } from '../../sweep/grid.ts';
import { sweepProgress } from '../../sweep/progress.ts';
import { runSweep } from '../../sweep/run.ts';
import { resolveShard, ShardError } from '../../sweep/shard.ts';

interface SweepCliOptions {
  workers?: string; seeds?: string; seed?: string; duration?: string; shard?: string; force?: boolean;
  db?: string; plot?: string; metric: string; x?: string; json?: boolean; progress?: boolean;
}

function int(flag: string, v: string, min: number, max: number): number {
  if (!/^\d{1,10}$/.test(v) || Number(v) < min || Number(v) > max) throw new UsageError(`${flag}: expected an integer ${min}..${max}, found ${JSON.stringify(v)}`);
  return Number(v);
}

/** The metric per point (rows) and mitigation set (columns), as text. */
export function formatSweep(g: Grid, id: string, rows: readonly SweepRow[], metric: string, path: string): string {
  const sets = [...new Set(rows.map((r) => r.set))];
  const points = [...new Set(rows.map((r) => r.point))].sort((a, b) => a - b);
  const head = ['point', ...g.axes.map((a) => a.path), ...sets];
  const body = points.map((p) => {
    const mine = rows.filter((r) => r.point === p);
    const cell = (s: string) => { const r = mine.find((x) => x.set === s); return r === undefined ? '' : String(Math.round(r.value * 100) / 100); };
    return [String(p), ...g.axes.map((a) => valueText(mine[0].params[a.path])), ...sets.map(cell)];
  });
  const w = head.map((h, i) => Math.max(h.length, ...body.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 || i > g.axes.length ? c.padStart(w[i]) : c.padEnd(w[i]))).join('  ').trimEnd();
  return `sweep ${id} of ${g.file}: ${points.length} of ${g.size} points stored in ${path}; ${metric} per mitigation set\n${[line(head), ...body.map(line)].join('\n')}\n`;
}

async function sweepAction(file: string, opts: SweepCliOptions): Promise<void> {
  const workers = opts.workers === undefined ? defaultWorkers() : int('--workers', opts.workers, 1, 1024);
  const seeds = opts.seeds === undefined ? DEFAULT_SEEDS : int('--seeds', opts.seeds, 1, 100000);
  const seed = opts.seed === undefined ? undefined : int('--seed', opts.seed, 0, 0xffffffff);
  let duration: SimTime | undefined;
  if (opts.duration !== undefined) {
    const t = parseTime(opts.duration);
    if (typeof t === 'string') throw new UsageError(`--duration: expected ${t}, found ${JSON.stringify(opts.duration)}`);
    duration = t;
  }
  let shard;
  try { shard = resolveShard(opts.shard); } catch (err) { throw err instanceof ShardError ? new UsageError(err.message) : err; }
  const path = dbPath(opts.db);
  try { checkRunStore(path); } catch (err) { throw err instanceof StoreError ? new UsageError(err.message) : err; }
  const g = loadGrid(file);
  if (opts.x !== undefined && !g.axes.some((a) => a.path === opts.x)) throw new UsageError(`--x: expected a swept path (${g.axes.map((a) => a.path).join(', ')}), found ${JSON.stringify(opts.x)}`);
  const id = sweepId(g.text);
  // Opened once every point is made and checked: a sweep refused before it runs writes nothing.
  let opened: Db | undefined;
  const store = (): Db => {
    if (opened === undefined) {
      try { opened = openStore(path, { create: true }); } catch (err) { throw err instanceof StoreError ? new UsageError(err.message) : err; }
    }
    return opened;
  };
  const key = (p: { text: string; params: Readonly<Record<string, unknown>>; scenario: { seed: number } }) => ({ text: p.text, params: p.params, seed: seed ?? p.scenario.seed, seeds, duration: opts.duration ?? null });
  const tty = opts.progress ?? process.stderr.isTTY === true;
  let bar: ReturnType<typeof sweepProgress> | null = null;
  const found: number[] = [];
  try {
    const r = await guardRun(g.base, () => runSweep(g, {
      workers, seeds, seed, duration, shard,
      isDone: opts.force ? undefined : (p) => {
        const at = storedPoint(store(), key(p));
        if (at !== undefined) found.push(at);
        return at !== undefined;
      },
      check: (p) => {
        try { checkRunBudget(p.scenario, { seeds, duration, force: opts.force === true }); } catch (err) {
          if (err instanceof InputError) throw new InputError(g.file, `point ${p.index + 1} of ${g.size} (${p.label}): ${err.message.replace(/^[^:]*: /, '')}`);
          throw err;
        }
      },
      onStart: (todo, skipped) => {
        store();
        const where = shard === null ? '' : ` (shard ${shard.index}/${shard.count} from ${shard.from})`;
        process.stderr.write(`kasi sweep: ${g.size} points in the grid${where}; ${todo.length} to run${skipped.length > 0 ? `, ${skipped.length} already in ${path} (--force reruns them)` : ''}; ${workers} worker(s)\n`);
        // The version decides what is stored already; a point stored by another checkout of the same version is said.
        const other = otherCommits(store(), found, gitCommit());
        if (other.length > 0) process.stderr.write(`kasi sweep: note: ${other.length} of the stored points were made by another git commit of kasi ${kasiVersion()} (${[...new Set(other)].slice(0, 2).map((c) => c.slice(0, 12)).join(', ')}); --force reruns them with this one\n`);
        bar = sweepProgress(todo.length, tty);
      },
      onPoint: (p, report) => {
        try {
          savePoint(store(), key(p), report, { sweepId: id, point: p.index, shard: shard === null ? null : `${shard.index}/${shard.count}` });
        } catch (err) { // a full disk, a read-only file: the points stored so far stay
          throw new UsageError(`not stored: ${path}: ${(err as Error).message.split('\n')[0]} (point ${p.index + 1}: ${p.label}); the points stored before it are kept, and the same command resumes`);
        }
        bar?.point(p.label);
      },
    }));
    (bar as ReturnType<typeof sweepProgress> | null)?.stop();
    process.stderr.write(`kasi sweep: ${r.ran} point(s) run and stored in ${path}, ${r.skipped} skipped as already stored\n`);
    const db = store();
    const metrics = [...SWEEP_METRICS, ...sweepCountNames(db, id)];
    if (!metrics.includes(opts.metric)) throw new UsageError(`--metric: expected one of ${metrics.join(', ')}, found ${JSON.stringify(opts.metric)}`);
    const rows = sweepRows(db, id, opts.metric);
    writeOutput(opts.json ? `${JSON.stringify({ sweep: id, file: g.file, metric: opts.metric, rows }, null, 2)}\n` : formatSweep(g, id, rows, opts.metric, path));
    if (opts.plot !== undefined) {
      const x = opts.x ?? (g.axes.find((a) => a.path !== 'isolation') ?? g.axes[0]).path;
      const { writePlot } = await import('../../sweep/plot.ts'); // vega, vega-lite and resvg load only to draw
      await writePlot(opts.plot, rows, { x, metric: opts.metric, title: `${g.base.name}: ${opts.metric} against ${x}` });
      process.stderr.write(`kasi sweep: plot of ${opts.metric} against ${x} written to ${opts.plot}\n`);
    }
  } finally {
    (bar as ReturnType<typeof sweepProgress> | null)?.stop();
    opened?.close();
  }
}

export function registerSweep(program: Command): void {
  program
    .command('sweep')
    .description('run every point of a scenario grid (a sweep: block of paths and values) on a worker pool, storing each point; resumable and shardable')
    .argument('<file>', 'a scenario .yaml with a sweep: block')
    .option('--workers <n>', 'worker threads (default: os.availableParallelism(); 1 = no threads)')
    .option('--seeds <n>', `seeds per point (default ${DEFAULT_SEEDS})`)
    .option('--seed <n>', 'the first seed (default: the scenario seed)')
    .option('--duration <time>', 'override the scenario duration of every point')
    .option('--shard <I/N>', 'run only points I, I+N, I+2N … (0 <= I < N); N alone takes I from JOB_COMPLETION_INDEX or SLURM_ARRAY_TASK_ID')
    .option('--force', 'rerun points already stored, and run points above the work budget')
    .option('--db <path>', DB_HELP)
    .option('--plot <file>', 'draw the metric against the swept parameter, one line per mitigation set (.svg or .png)')
    .option('--metric <name>', `what to print and plot: ${SWEEP_METRICS.join(', ')} or a count (asi_exits, l1d_flushes, …)`, 'overhead_pct')
    .option('--x <path>', 'the swept path on the plot\'s x axis (default: the first one that is not isolation)')
    .option('--json', 'the rows as JSON instead of a table')
    .action(sweepAction);
}
