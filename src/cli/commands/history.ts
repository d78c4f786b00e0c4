/**
 * `kasi history [--limit N] [--json] [--db PATH]`: the newest runs in the results store
 * (store/query.ts), one line each. Also the helpers the other store commands (show, diff, export)
 * share: the --db option and opening the store for reading with one-line errors.
 */
import type { Command } from 'commander';
import { UsageError } from '../usage.ts';
import { writeOutput } from './mappings.ts';
import { dbPath, openStore, StoreError, type Db } from '../../store/db.ts';
import { listRuns } from '../../store/query.ts';
import { formatHistory, historyJson } from '../../store/show.ts';

export const DB_HELP = 'the results store (default: $KASI_DB, else ./kasi.db)';

/** Open the store at `--db` (or the default), run `fn`, close it. Store errors: one line, exit 2 (1 for I/O). */
export function withStore<T>(db: string | undefined, fn: (store: Db, path: string) => T): T {
  const path = dbPath(db);
  let store: Db | undefined;
  try {
    store = openStore(path);
    return fn(store, path);
  } catch (err) {
    if (err instanceof StoreError) {
      process.stderr.write(`kasi: ${err.message}\n`);
      process.exit(err.kind === 'io' ? 1 : 2);
    }
    throw err;
  } finally {
    store?.close();
  }
}

/** A run id: a positive integer. */
export function runId(what: string, v: string): number {
  if (!/^\d{1,15}$/.test(v) || Number(v) < 1) throw new UsageError(`${what}: expected a run id (a positive integer, from kasi history), found ${JSON.stringify(v)}`);
  return Number(v);
}

export function registerHistory(program: Command): void {
  program
    .command('history')
    .description('the newest runs in the results store: id, when, scenario, seeds, leaks, largest overhead, kasi version')
    .option('--limit <n>', 'how many runs (default 20)', '20')
    .option('--json', 'a JSON array instead of text')
    .option('--db <path>', DB_HELP)
    .action((opts: { limit: string; json?: boolean; db?: string }) => {
      if (!/^\d{1,9}$/.test(opts.limit) || Number(opts.limit) < 1) throw new UsageError(`--limit: expected a positive integer, found ${JSON.stringify(opts.limit)}`);
      const text = withStore(opts.db, (store, path) => {
        const runs = listRuns(store, Number(opts.limit));
        return opts.json ? historyJson(runs) : formatHistory(runs, path);
      });
      writeOutput(text);
    });
}
