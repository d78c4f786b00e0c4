/**
 * `kasi show ID [--json] [--db PATH]`: one stored run — who made it (kasi version, commit), the
 * scenario (file, sha256, seeds) and its report as `kasi run` printed it (store/show.ts); --json:
 * those fields, the scenario text and the report as one object.
 */
import type { Command } from 'commander';
import { writeOutput } from './mappings.ts';
import { DB_HELP, runId, withStore } from './history.ts';
import { getRun } from '../../store/query.ts';
import { formatShow, showJson } from '../../store/show.ts';

export function registerShow(program: Command): void {
  program
    .command('show')
    .description('one stored run: its report as kasi run printed it, with the scenario and the kasi that made it')
    .argument('<id>', 'a run id (kasi history lists them)')
    .option('--json', 'one JSON object: the run, its scenario text and its report')
    .option('--db <path>', DB_HELP)
    .action((id: string, opts: { json?: boolean; db?: string }) => {
      const n = runId('show', id);
      writeOutput(withStore(opts.db, (store, path) => {
        const run = getRun(store, n, path);
        return opts.json ? showJson(run) : formatShow(run);
      }));
    });
}
