/**
 * What `kasi run` does with the store: before the run, refuse a --db file that is not kasi's or is
 * newer than this kasi (store/db.ts checkFile: nothing run, the file untouched); after the report
 * is printed, store the run (store/save.ts) and say so in one line. A failure to store (read-only
 * file, full disk, missing folder) is that one line too, and the report already printed is whole.
 */
import { formatRunJson } from '../report/run-json.ts';
import type { Scenario } from '../sim/scenario-types.ts';
import type { SeedsReport } from '../sim/seeds.ts';
import { checkFile, openStore, StoreError, type Db } from './db.ts';
import { runRecord } from './record.ts';
import { saveRun } from './save.ts';

/** Throws a StoreError('identity') for a file kasi must not write to; other problems wait for storeRun. */
export function checkRunStore(path: string): void {
  try {
    checkFile(path);
  } catch (err) {
    if (err instanceof StoreError && err.kind === 'identity') throw err;
  }
}

export type StoreResult = { ok: true; id: number; message: string } | { ok: false; message: string };

export function storeRun(path: string, args: { file: string | undefined; scenario: Scenario; report: SeedsReport; duration: string | null; workload?: string | null }): StoreResult {
  let db: Db | undefined;
  try {
    db = openStore(path, { create: true });
    const id = saveRun(db, runRecord({ ...args, reportJson: formatRunJson(args.report) }));
    return { ok: true, id, message: `stored as run ${id} in ${path}` };
  } catch (err) {
    const msg = err instanceof StoreError ? err.message : `${path}: ${(err as Error).message.split('\n')[0]}`;
    return { ok: false, message: `not stored: ${msg}` };
  } finally {
    try { db?.close(); } catch { /* closing after a failure */ }
  }
}
