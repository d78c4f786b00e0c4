/**
 * `kasi run [FILE] [--json] [--out F] [--seed N] [--duration T]`: run a scenario (default: the
 * built-in one, sim/default-scenario.ts) under every mitigation set it lists and print what
 * leaked and what it cost (report/run-text.ts, report/run-json.ts).
 *
 * --out F writes the report to F atomically (a temporary file in F's folder, then rename):
 * nothing is written when the run fails. Progress goes to stderr, and only on a terminal. The
 * same file and seed give byte-identical output.
 */
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Command } from 'commander';
import { UsageError } from '../usage.ts';
import { writeOutput } from './mappings.ts';
import { defaultScenario, loadScenario, parseTime } from '../../io/scenario.ts';
import { runScenario, type RunOptions } from '../../sim/run.ts';
import { formatRunText } from '../../report/run-text.ts';
import { formatRunJson } from '../../report/run-json.ts';

export interface RunCliOptions {
  json?: boolean;
  out?: string;
  seed?: string;
  duration?: string;
  /** Progress lines to stderr (default: when stderr is a terminal). */
  progress?: boolean;
}

/** The report text for `file` (undefined: the built-in scenario). Exported for tests. */
export function runReport(file: string | undefined, opts: RunCliOptions): string {
  const run: RunOptions = {};
  if (opts.seed !== undefined) {
    if (!/^\d{1,10}$/.test(opts.seed) || Number(opts.seed) > 0xffffffff) throw new UsageError(`--seed: expected an integer 0..4294967295, found ${JSON.stringify(opts.seed)}`);
    run.seed = Number(opts.seed);
  }
  if (opts.duration !== undefined) {
    const t = parseTime(opts.duration);
    if (typeof t === 'string') throw new UsageError(`--duration: expected ${t}, found ${JSON.stringify(opts.duration)}`);
    run.duration = t;
  }
  const scenario = file === undefined ? defaultScenario() : loadScenario(file);
  if (opts.progress ?? process.stderr.isTTY) {
    run.onProgress = (i, n, name) => process.stderr.write(`\rkasi run: [${i + 1}/${n}] ${name}…\x1b[K${i + 1 === n ? '' : ''}`);
  }
  const report = runScenario(scenario, run);
  if (run.onProgress) process.stderr.write('\r\x1b[K');
  return opts.json ? formatRunJson(report) : formatRunText(report);
}

/** Write `text` to `file` through a temporary file in the same folder and a rename. */
export function writeAtomic(file: string, text: string): void {
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.tmp`);
  try {
    writeFileSync(tmp, text);
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw new UsageError(`--out ${file}: ${(err as Error).message}`);
  }
}

export function registerRun(program: Command): void {
  program
    .command('run')
    .description('run a scenario under each of its mitigation sets: what leaks, and what it costs, by mechanism')
    .argument('[file]', 'a scenario .yaml (default: the built-in scenario, examples/default.yaml)')
    .option('--json', 'one JSON object instead of text')
    .option('--out <file>', 'write the report to this file (atomically) instead of stdout')
    .option('--seed <n>', 'override the scenario seed')
    .option('--duration <time>', 'override the scenario duration (e.g. 500us, 2ms, 1000000cycles)')
    .action((file: string | undefined, opts: RunCliOptions) => {
      const text = runReport(file, opts);
      if (opts.out !== undefined) writeAtomic(opts.out, text);
      else writeOutput(text);
    });
}
