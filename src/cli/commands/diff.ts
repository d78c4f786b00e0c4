/**
 * `kasi diff A B [--json] [--db PATH]`: two stored runs side by side (store/diff.ts): what differs
 * in their scenarios, leak cells gained and lost from A to B, overhead, cycle and count deltas.
 */
import type { Command } from 'commander';
import { writeOutput } from './mappings.ts';
import { DB_HELP, runId, withStore } from './history.ts';
import { getRun } from '../../store/query.ts';
import { diffRuns, formatDiff } from '../../store/diff.ts';

export function registerDiff(program: Command): void {
  program
    .command('diff')
    .description('two stored runs side by side: scenario differences, leaks gained and lost, overhead and count deltas')
    .argument('<a>', 'the earlier run id')
    .argument('<b>', 'the later run id')
    .option('--json', 'one JSON object instead of text')
    .option('--db <path>', DB_HELP)
    .action((a: string, b: string, opts: { json?: boolean; db?: string }) => {
      const ia = runId('diff', a);
      const ib = runId('diff', b);
      writeOutput(withStore(opts.db, (store, path) => {
        const ra = getRun(store, ia, path);
        const rb = getRun(store, ib, path);
        const d = diffRuns(ra, rb);
        return opts.json ? JSON.stringify(d, null, 2) + '\n' : formatDiff(d, ra, rb);
      }));
    });
}
