/**
 * The results store's database (docs/DESIGN.md "store/"; issue 12): one SQLite file, `./kasi.db`
 * by default (KASI_DB, then `--db PATH`, override it), through better-sqlite3.
 *
 * Opening checks that the file is kasi's before anything writes to it: a file that is not SQLite,
 * an SQLite database that another program made (its application_id is not kasi's, or it has
 * tables and no id), or one whose schema is newer than this kasi knows, gives a StoreError of
 * kind 'identity' and the file is left as it was (the check only reads). Then the database is put
 * in WAL mode, so that readers and one writer at a time never block each other and a second
 * `kasi run` writing at the same moment waits for the first (busy timeout) instead of failing,
 * and the numbered migrations (store/migrations.ts) bring it to the current schema, in one
 * immediate transaction that re-reads the version, so two processes opening a new file at once
 * migrate it once.
 *
 * Any other failure (a read-only file, a full disk, a folder that does not exist, the native
 * module not built) is a StoreError of kind 'io' with a one-line message.
 */
import { existsSync, statSync } from 'node:fs';
import Database from 'better-sqlite3';
import { LATEST_VERSION, MIGRATIONS, type Migration } from './migrations.ts';

export type Db = Database.Database;

/** PRAGMA application_id of a kasi database: 'kasi' in ASCII (SQLite file format, offset 68). */
export const KASI_APPLICATION_ID = 0x6b617369;

/** How long a writer waits for another process's write transaction before giving up, ms. */
export const BUSY_TIMEOUT_MS = 30_000;

export type StoreErrorKind = 'identity' | 'missing' | 'io';

export class StoreError extends Error {
  constructor(message: string, readonly kind: StoreErrorKind) {
    super(message);
    this.name = 'StoreError';
  }
}

/** The database path: `--db` if given, else $KASI_DB, else ./kasi.db. */
export function dbPath(option?: string): string {
  if (option !== undefined && option !== '') return option;
  const env = process.env.KASI_DB;
  return env !== undefined && env !== '' ? env : 'kasi.db';
}

/** One line for an error from SQLite or the native module. */
function ioMessage(path: string, err: unknown): string {
  const e = err as { message?: string; code?: string };
  const msg = (e.message ?? String(err)).split('\n')[0];
  if (/bindings file|better_sqlite3\.node|NODE_MODULE_VERSION|invalid ELF|cannot open shared object/i.test(msg)) {
    return `${path}: better-sqlite3's native module is not built or does not match this Node (${msg.slice(0, 120)}); run npm ci (package.json allowScripts lets it build)`;
  }
  return `${path}: ${msg}${e.code !== undefined && !msg.includes(e.code) ? ` (${e.code})` : ''}`;
}

interface Identity { appId: number; version: number; tables: number }

function identity(db: Db): Identity {
  return {
    appId: db.pragma('application_id', { simple: true }) as number,
    version: db.pragma('user_version', { simple: true }) as number,
    tables: (db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'").get() as { n: number }).n,
  };
}

/** Throws a StoreError('identity') unless `id` is a kasi database this kasi can read, or a new empty file. */
function checkIdentity(path: string, id: Identity, latest: number): void {
  if (id.appId === 0 && id.version === 0 && id.tables === 0) return; // new or empty: kasi will make it
  if (id.appId !== KASI_APPLICATION_ID) {
    const what = id.appId === 0 ? 'an SQLite database with tables kasi did not make' : `an SQLite database of another program (application_id 0x${(id.appId >>> 0).toString(16)})`;
    throw new StoreError(`${path} is not a kasi database: ${what}; left unchanged (choose another file with --db)`, 'identity');
  }
  if (id.version > latest) {
    throw new StoreError(`${path} was made by a newer kasi (schema version ${id.version}; this kasi knows up to ${latest}); left unchanged`, 'identity');
  }
}

export interface OpenOptions {
  /** Create the file if it does not exist (kasi run); readers need an existing store. */
  create?: boolean;
  /** Migrate only this far (tests make a database of an old schema with it). */
  upTo?: number;
}

/** Apply the migrations above the database's version, up to `upTo`, in one immediate transaction. */
export function migrate(db: Db, path: string, upTo: number = LATEST_VERSION, migrations: readonly Migration[] = MIGRATIONS): number {
  const run = db.transaction(() => {
    const id = identity(db); // again, inside the lock: another process may have migrated meanwhile
    checkIdentity(path, id, LATEST_VERSION);
    let v = id.version;
    for (const m of migrations) {
      if (m.version <= v || m.version > upTo) continue;
      if (m.version !== v + 1) throw new StoreError(`${path}: no migration from schema version ${v} to ${m.version}`, 'io');
      m.up(db);
      v = m.version;
    }
    if (v !== id.version || id.appId !== KASI_APPLICATION_ID) {
      db.pragma(`application_id = ${KASI_APPLICATION_ID}`);
      db.pragma(`user_version = ${v}`);
    }
    return v;
  });
  return run.immediate();
}

/**
 * Throw a StoreError('identity') when `path` exists and is not a kasi database this kasi can use;
 * reads only, through a read-only connection, so nothing is written to a file that is not kasi's.
 */
export function checkFile(path: string): void {
  if (!existsSync(path)) return;
  if (statSync(path).isDirectory()) throw new StoreError(`${path} is a folder, not a kasi database`, 'io');
  if (statSync(path).size === 0) return;
  let ro: Db | undefined;
  try {
    ro = new Database(path, { readonly: true, fileMustExist: true, timeout: BUSY_TIMEOUT_MS });
    checkIdentity(path, identity(ro), LATEST_VERSION);
  } catch (err) {
    if (err instanceof StoreError) throw err;
    const code = (err as { code?: string }).code;
    if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT') throw new StoreError(`${path} is not a kasi database: not an SQLite file; left unchanged (choose another file with --db)`, 'identity');
    throw new StoreError(ioMessage(path, err), 'io');
  } finally {
    ro?.close();
  }
}

/** Open (and, when needed, create and migrate) the store at `path`. */
export function openStore(path: string, opts: OpenOptions = {}): Db {
  if (!existsSync(path) && opts.create !== true) throw new StoreError(`no kasi database at ${path} (kasi run stores each run there; --db PATH names another)`, 'missing');
  checkFile(path);
  let db: Db | undefined;
  try {
    db = new Database(path, { timeout: BUSY_TIMEOUT_MS });
    // A writer and readers at once, and a writer that waits for another (docs: sqlite.org/wal.html).
    if (String(db.pragma('journal_mode', { simple: true })).toLowerCase() !== 'wal') db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    migrate(db, path, opts.upTo ?? LATEST_VERSION);
    return db;
  } catch (err) {
    db?.close();
    if (err instanceof StoreError) throw err;
    throw new StoreError(ioMessage(path, err), 'io');
  }
}

/** The schema version of an open store. */
export function schemaVersion(db: Db): number {
  return db.pragma('user_version', { simple: true }) as number;
}
