/**
 * `kasi run [FILE] [--json] [--out F] [--seed S] [--seeds N] [--workers W] [--duration T]`: run a
 * scenario (default: the built-in one, sim/default-scenario.ts) under every mitigation set it
 * lists, for seeds S … S+N-1 on W worker threads (sim/pool.ts), and print what leaked and what it
 * cost as statistics over the seeds (sim/seeds.ts; report/run-text.ts, report/run-json.ts).
 * Entries that resolve to the same mitigation state are named in the report and warned about on
 * stderr (sim/same-state.ts).
 *
 * --out F writes the report to F atomically (a temporary file in F's folder, then rename; a
 * device or FIFO is written through, never replaced: cli/out-file.ts): nothing is written when
 * the run fails. A run whose predicted work is absurd is refused before it starts, with the
 * numbers, unless --force (run-guard.ts, sim/budget.ts). Progress goes to stderr, and only on a terminal. The
 * same file, seed and N give byte-identical output, whatever the number of workers.
 *
 * After the report is out, the run is stored in the results store (store/run-store.ts; --db PATH,
 * default $KASI_DB or ./kasi.db; --no-store skips it) and one stderr line gives its id, or says
 * why it was not stored (exit 1). A --db file that is not kasi's is refused before the run.
 */
import type { Command } from 'commander';
import { UsageError } from '../usage.ts';
import { writeOutput } from './mappings.ts';
import { checkRunBudget, guardRun } from './run-guard.ts';
import { writeOutFile } from '../out-file.ts';
import { defaultScenario, loadScenario, parseTime } from '../../scenario/load.ts';
import { defaultWorkers, runSeeds, type SeedsOptions } from '../../sim/pool.ts';
import { DEFAULT_SEEDS, sameStateLines, summarize } from '../../sim/seeds.ts';
import { formatRunText } from '../../report/run-text.ts';
import { formatRunJson } from '../../report/run-json.ts';
import { dbPath, StoreError } from '../../store/db.ts';
import { checkRunStore, storeRun } from '../../store/run-store.ts';
import type { Scenario } from '../../sim/scenario-types.ts';
import { withImportedWorkload } from '../../sim/workload-swap.ts';
import { WORKLOAD_FORMATS, type WorkloadFormat } from '../../formats/detect.ts';
import type { SeedsReport } from '../../sim/seeds.ts';
import { traceScenario } from '../../report/trace-run.ts';
import { DEFAULT_TRACE_LIMIT } from '../../report/trace.ts';

export interface RunCliOptions {
  json?: boolean;
  out?: string;
  seed?: string;
  seeds?: string;
  workers?: string;
  duration?: string;
  /** Progress lines to stderr (default: when stderr is a terminal). */
  progress?: boolean;
  /** The results store (default $KASI_DB, else ./kasi.db); store: false = --no-store. */
  db?: string;
  store?: boolean;
  /** A tool output whose events replace one workload entry's (sim/workload-swap.ts). */
  workload?: string;
  workloadKind?: string;
  /** Run even when the predicted work is above sim/budget.ts's limit. */
  force?: boolean;
  /** A Perfetto timeline of the first seed (report/trace-run.ts), and its bound in events. */
  trace?: string;
  traceLimit?: string;
}

function count(flag: string, v: string, max: number): number {
  if (!/^\d{1,6}$/.test(v) || Number(v) < 1 || Number(v) > max) throw new UsageError(`${flag}: expected an integer 1..${max}, found ${JSON.stringify(v)}`);
  return Number(v);
}

/** The report text for `file` (undefined: the built-in scenario) and the warnings for stderr. Exported for tests. */
export async function runReport(file: string | undefined, opts: RunCliOptions): Promise<{ text: string; warnings: string[]; report: SeedsReport; scenario: Scenario }> {
  const run: SeedsOptions = {};
  if (opts.seed !== undefined) {
    if (!/^\d{1,10}$/.test(opts.seed) || Number(opts.seed) > 0xffffffff) throw new UsageError(`--seed: expected an integer 0..4294967295, found ${JSON.stringify(opts.seed)}`);
    run.seed = Number(opts.seed);
  }
  run.seeds = opts.seeds === undefined ? DEFAULT_SEEDS : count('--seeds', opts.seeds, 100000);
  run.workers = opts.workers === undefined ? defaultWorkers() : count('--workers', opts.workers, 1024);
  if (opts.duration !== undefined) {
    const t = parseTime(opts.duration);
    if (typeof t === 'string') throw new UsageError(`--duration: expected ${t}, found ${JSON.stringify(opts.duration)}`);
    run.duration = t;
  }
  let scenario = file === undefined ? defaultScenario() : loadScenario(file);
  if (opts.workload !== undefined) {
    if (opts.workloadKind !== undefined && !(WORKLOAD_FORMATS as readonly string[]).includes(opts.workloadKind)) throw new UsageError(`--workload-kind: expected one of ${WORKLOAD_FORMATS.join(', ')}, found ${JSON.stringify(opts.workloadKind)}`);
    try {
      scenario = withImportedWorkload(scenario, opts.workload, opts.workloadKind as WorkloadFormat | undefined);
    } catch (e) {
      if (e instanceof RangeError) throw new UsageError(`--workload: ${e.message}`);
      throw e;
    }
  }
  checkRunBudget(scenario, { seeds: run.seeds, duration: run.duration, force: opts.force === true });
  const progress = opts.progress ?? process.stderr.isTTY;
  if (progress) run.onProgress = (i, n, label) => process.stderr.write(`\rkasi run: [${i}/${n}] ${label}\x1b[K`);
  const report = summarize(await guardRun(scenario, () => runSeeds(scenario, run)));
  if (progress) process.stderr.write('\r\x1b[K');
  return { text: opts.json ? formatRunJson(report) : formatRunText(report), warnings: sameStateLines(report), report, scenario };
}

/** Write `text` to `file` atomically, or through it when it is a device or FIFO (cli/out-file.ts). */
export function writeAtomic(file: string, text: string): void {
  writeOutFile(file, text);
}

export function registerRun(program: Command): void {
  program
    .command('run')
    .description('run a scenario under each of its mitigation sets: what leaks, and what it costs, by mechanism')
    .argument('[file]', 'a scenario .yaml (default: the built-in scenario, examples/default.yaml)')
    .option('--json', 'one JSON object instead of text')
    .option('--out <file>', 'write the report to this file (atomically) instead of stdout')
    .option('--seed <n>', 'the first seed (default: the scenario seed)')
    .option('--seeds <n>', `run seeds S … S+N-1; each leak cell and cost is a statistic over them (default ${DEFAULT_SEEDS})`)
    .option('--workers <n>', 'worker threads (default: os.availableParallelism(); 1 = no threads)')
    .option('--duration <time>', 'override the scenario duration (e.g. 500us, 2ms, 1000000cycles)')
    .option('--force', 'run even when the predicted work (events × touches, attack samples) is above the limit')
    .option('--db <path>', 'store the run in this results store (default: $KASI_DB, else ./kasi.db)')
    .option('--no-store', 'do not store the run')
    .option('--workload <file>', 'replace one workload entry\'s kernel events by a tool output (strace -c, perf trace -s, perf kvm stat, kvm_exit trace, bcc kvmexit)')
    .option('--trace <file>', 'write a Perfetto / chrome://tracing timeline (trace-event JSON) of the first seed, every mitigation set')
    .option('--trace-limit <n>', `events kept in the --trace file (default ${DEFAULT_TRACE_LIMIT}); the rest are counted in otherData.dropped_events`)
    .option('--workload-kind <kind>', `the --workload file's format (default: detected): ${WORKLOAD_FORMATS.join(', ')}`)
    .action(async (file: string | undefined, opts: RunCliOptions) => {
      const db = opts.store === false ? undefined : dbPath(opts.db);
      if (db !== undefined) {
        try { checkRunStore(db); } catch (err) { throw err instanceof StoreError ? new UsageError(err.message) : err; }
      }
      const traceLimit = opts.traceLimit === undefined ? DEFAULT_TRACE_LIMIT : count('--trace-limit', opts.traceLimit, 100_000_000);
      if (opts.traceLimit !== undefined && opts.trace === undefined) throw new UsageError('--trace-limit: only with --trace FILE');
      const { text, warnings, report, scenario } = await runReport(file, opts);
      for (const w of warnings) process.stderr.write(`kasi run: warning: ${w}\n`);
      if (opts.out !== undefined) writeAtomic(opts.out, text);
      else writeOutput(text);
      if (opts.trace !== undefined) {
        const duration = opts.duration === undefined ? undefined : parseTime(opts.duration);
        const t = traceScenario(scenario, { seed: report.seed, limit: traceLimit, duration: typeof duration === 'string' ? undefined : duration });
        writeOutFile(opts.trace, t.json);
        const dropped = t.sets.reduce((a, x) => a + x.dropped, 0);
        process.stderr.write(`kasi run: trace of seed ${t.seed} (${t.sets.length} mitigation sets, ${t.sets.reduce((a, x) => a + x.kept, 0)} events${dropped > 0 ? `, ${dropped} past --trace-limit dropped` : ''}) written to ${opts.trace}; open it in ui.perfetto.dev\n`);
      }
      if (db !== undefined) {
        const r = storeRun(db, { file, scenario, report, duration: opts.duration ?? null, workload: opts.workload ?? null });
        process.stderr.write(`kasi run: ${r.message}\n`);
        if (!r.ok) process.exitCode = 1;
      }
    });
}
