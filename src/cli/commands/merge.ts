/**
 * `kasi merge A.db B.db … --into ALL.db`: copy the runs of results stores (a sweep's shards, or
 * other people's stores) into one (store/merge.ts); a run already there is not copied again, so
 * the merge can be repeated. One line per source: runs added and already present.
 */
import type { Command } from 'commander';
import { UsageError } from '../usage.ts';
import { StoreError } from '../../store/db.ts';
import { mergeStores } from '../../store/merge.ts';

export function registerMerge(program: Command): void {
  program
    .command('merge')
    .description('copy the runs of results stores into one (idempotent: a run already there is not copied again)')
    .argument('<stores...>', 'kasi databases to read (they are not changed)')
    .requiredOption('--into <path>', 'the store to merge into (created when missing)')
    .action((stores: string[], opts: { into: string }) => {
      let results;
      try {
        results = mergeStores(opts.into, stores);
      } catch (err) {
        if (err instanceof StoreError) throw new UsageError(err.message);
        throw err;
      }
      for (const r of results) process.stdout.write(`kasi merge: ${r.source}: ${r.added} run(s) added, ${r.present} already in ${opts.into}\n`);
    });
}
