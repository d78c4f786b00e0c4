/**
 * vitest globalSetup: every `kasi run` a test starts (in a worker or as a child process) stores
 * into a database in a temporary folder ($KASI_DB, store/db.ts dbPath), never ./kasi.db in the
 * repository; the folder is removed when the tests end.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export default function setup(): () => void {
  const dir = mkdtempSync(join(tmpdir(), 'kasi-db-'));
  process.env.KASI_DB = join(dir, 'kasi.db');
  return () => rmSync(dir, { recursive: true, force: true });
}
