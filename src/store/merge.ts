/**
 * `kasi merge a.db b.db … --into all.db` (issue 12 "Sharding"): the runs of several results
 * stores — the shards of one sweep run on many machines, or two people's histories — copied into
 * one, idempotently: a run already in the target is not copied again, so merging twice, or merging
 * a store into one that already holds some of its runs, changes nothing more.
 *
 * A run is the same run in two stores when its stored-at time, scenario hash, seed, seed count,
 * kasi version and full JSON report are equal (ids are local to each file and are renumbered).
 * Each source is copied in one immediate transaction, so a merge killed halfway leaves every
 * source either merged or not. Sources are only read: one with an older schema is migrated in a
 * temporary copy; one that is not kasi's, or is newer than this kasi, is refused before anything is
 * written (store/db.ts checkFile). The child tables (every table with a run_id column: sets,
 * cells, counts, kind_cycles, and whatever later migrations add) are found from the schema.
 */
import { copyFileSync, existsSync, mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { BUSY_TIMEOUT_MS, checkFile, openStore, schemaVersion, StoreError, type Db } from './db.ts';
import { LATEST_VERSION } from './migrations.ts';

export interface MergeResult {
  readonly source: string;
  readonly added: number;
  readonly present: number;
}

const IDENTITY = ['created_at', 'scenario_hash', 'seed', 'seeds', 'kasi_version', 'report_json'] as const;

function columns(db: Db, schema: string, table: string): string[] {
  return (db.prepare(`SELECT name FROM pragma_table_info(?, ?)`).all(table, schema) as { name: string }[]).map((r) => r.name);
}

/** The source as a file of the current schema: itself, or a migrated temporary copy (and its cleanup). */
function readable(path: string): { file: string; done: () => void } {
  checkFile(path);
  const probe = new Database(path, { readonly: true, fileMustExist: true, timeout: BUSY_TIMEOUT_MS });
  const v = schemaVersion(probe);
  probe.close();
  if (v === LATEST_VERSION) return { file: path, done: () => {} };
  const dir = mkdtempSync(join(tmpdir(), 'kasi-merge-'));
  const copy = join(dir, 'source.db');
  copyFileSync(path, copy);
  openStore(copy).close();
  return { file: copy, done: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Merge the runs of `source` into the open store `into`. */
export function mergeOne(into: Db, intoPath: string, source: string): MergeResult {
  if (!existsSync(source)) throw new StoreError(`no kasi database at ${source}`, 'missing');
  if (existsSync(intoPath) && realpathSync(source) === realpathSync(intoPath)) throw new StoreError(`${source} is the --into store itself`, 'io');
  const src = readable(source);
  into.prepare('ATTACH DATABASE ? AS src').run(src.file);
  try {
    const runCols = columns(into, 'main', 'runs').filter((c) => c !== 'id' && columns(into, 'src', 'runs').includes(c));
    const children = (into.prepare("SELECT name FROM main.sqlite_master WHERE type = 'table'").all() as { name: string }[])
      .map((r) => r.name).filter((t) => t !== 'runs' && columns(into, 'main', t).includes('run_id') && columns(into, 'src', t).length > 0);
    const same = into.prepare(`SELECT id FROM main.runs WHERE ${IDENTITY.map((c) => `${c} IS ?`).join(' AND ')} LIMIT 1`);
    const insRun = into.prepare(`INSERT INTO main.runs (${runCols.join(', ')}) SELECT ${runCols.join(', ')} FROM src.runs WHERE id = ?`);
    const insChild = children.map((t) => {
      const cols = columns(into, 'main', t).filter((c) => columns(into, 'src', t).includes(c));
      return into.prepare(`INSERT INTO main.${t} (${cols.join(', ')}) SELECT ${cols.map((c) => (c === 'run_id' ? '?' : c)).join(', ')} FROM src.${t} WHERE run_id = ?`);
    });
    const srcIds = into.prepare('SELECT id FROM src.runs ORDER BY id').pluck();
    const srcRun = into.prepare(`SELECT id, ${IDENTITY.join(', ')} FROM src.runs WHERE id = ?`);
    const tx = into.transaction((): MergeResult => {
      let added = 0;
      let present = 0;
      for (const sid of srcIds.all() as number[]) {
        const r = srcRun.get(sid) as Record<string, unknown>;
        if (same.get(...IDENTITY.map((c) => r[c])) !== undefined) { present++; continue; }
        const id = Number(insRun.run(r.id).lastInsertRowid);
        for (const s of insChild) s.run(id, r.id);
        added++;
      }
      return { source, added, present };
    });
    return tx.immediate();
  } finally {
    into.prepare('DETACH DATABASE src').run();
    src.done();
  }
}

/** Merge every source into the store at `intoPath` (created when missing). */
export function mergeStores(intoPath: string, sources: readonly string[]): MergeResult[] {
  for (const s of sources) checkFile(s); // refuse a foreign or newer source before writing anything
  const into = openStore(intoPath, { create: true });
  try {
    return sources.map((s) => mergeOne(into, intoPath, s));
  } finally {
    into.close();
  }
}
