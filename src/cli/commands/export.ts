/**
 * `kasi export ID --format json|csv|md [--out F] [--db PATH]`: one stored run as its JSON report
 * (what kasi run --json printed), a CSV row per mitigation set, or a Markdown post for a mailing
 * list (store/export.ts).
 */
import type { Command } from 'commander';
import { UsageError } from '../usage.ts';
import { writeOutput } from './mappings.ts';
import { writeAtomic } from './run.ts';
import { DB_HELP, runId, withStore } from './history.ts';
import { getRun } from '../../store/query.ts';
import { EXPORT_FORMATS, exportRun, type ExportFormat } from '../../store/export.ts';

export function registerExport(program: Command): void {
  program
    .command('export')
    .description('one stored run as JSON (the report), CSV (a row per mitigation set) or Markdown (a post for a mailing list)')
    .argument('<id>', 'a run id (kasi history lists them)')
    .requiredOption('--format <format>', `one of ${EXPORT_FORMATS.join(', ')}`)
    .option('--out <file>', 'write to this file (atomically) instead of stdout')
    .option('--db <path>', DB_HELP)
    .action((id: string, opts: { format: string; out?: string; db?: string }) => {
      if (!(EXPORT_FORMATS as readonly string[]).includes(opts.format)) throw new UsageError(`--format: expected one of ${EXPORT_FORMATS.join(', ')}, found ${JSON.stringify(opts.format)}`);
      const n = runId('export', id);
      const text = withStore(opts.db, (store, path) => exportRun(getRun(store, n, path), opts.format as ExportFormat));
      if (opts.out !== undefined) writeAtomic(opts.out, text);
      else writeOutput(text);
    });
}
