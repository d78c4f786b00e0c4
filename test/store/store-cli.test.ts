/**
 * The store's commands as a user runs them: two `kasi run` processes storing into one new
 * database at once both land (WAL); history/show/diff/export read what was stored (show prints
 * the report kasi run printed, export json its JSON byte for byte); --no-store, --db and the
 * $KASI_DB default; a --db file that is not kasi's is refused before the run (one line, exit 2,
 * file unchanged); a read-only or full database: the report printed whole, one line, exit 1.
 */
import { afterAll, describe, expect, it, vi } from 'vitest';
import { Command, CommanderError } from 'commander';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UsageError } from '../../src/cli/usage.ts';
import { registerHistory } from '../../src/cli/commands/history.ts';
import { registerShow } from '../../src/cli/commands/show.ts';
import { registerDiff } from '../../src/cli/commands/diff.ts';
import { registerExport } from '../../src/cli/commands/export.ts';
import { CLI, kasiRun, TSX, type CliOptions, type CliResult } from '../helpers/kasi-cli.ts';
import { tinyScenario } from '../helpers/tiny-scenario.ts';
import { spawn, spawnSync } from 'node:child_process';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const TMP = mkdtempSync(join(tmpdir(), 'kasi-store-cli-'));
chmodSync(TMP, 0o755);
afterAll(() => rmSync(TMP, { recursive: true, force: true }));

type Out = { status: number | null; stdout: string; stderr: string };

const kasi = (args: string[], opts: CliOptions = {}): Promise<CliResult> => kasiRun(args, opts);
const kasiAsync = (args: string[]): Promise<CliResult> => kasiRun(args);

/** The store's reading commands in this process (no child: each would load all of kasi again). */
async function cli(...args: string[]): Promise<Out> {
  const program = new Command().exitOverride().configureOutput({ writeOut: () => {}, writeErr: () => {} });
  for (const r of [registerHistory, registerShow, registerDiff, registerExport]) r(program);
  let stdout = '';
  let stderr = '';
  let status = 0;
  const listeners = process.stdout.listeners('error');
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => { stdout += String(s); return true; });
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => { stderr += String(s); return true; });
  const exit = vi.spyOn(process, 'exit').mockImplementation(((code?: number) => { throw new ExitCalled(code ?? 0); }) as typeof process.exit);
  try {
    await program.parseAsync(['node', 'kasi', ...args]);
  } catch (e) {
    if (e instanceof ExitCalled) status = e.code;
    else if (e instanceof UsageError) { status = 2; stderr += `kasi: ${e.message}\n`; }
    else if (e instanceof CommanderError) status = e.exitCode;
    else throw e;
  } finally {
    out.mockRestore(); err.mockRestore(); exit.mockRestore();
    for (const l of process.stdout.listeners('error')) if (!listeners.includes(l)) process.stdout.off('error', l as () => void);
  }
  return { status, stdout, stderr };
}

class ExitCalled extends Error {
  constructor(readonly code: number) { super(`exit ${code}`); }
}

const TINY = join(TMP, 'tiny.yaml');
// The victim's 4 KiB working set keeps its key in L1D: the none set leaks in every seed.
writeFileSync(TINY, tinyScenario({ isolation: [['none', 'mitigations=off'], ['nosmt', 'nosmt']], victimWorkingSet: '4KiB' }));
const RUN = ['run', TINY, '--seeds', '1', '--workers', '1'];

/** A private mount namespace with a small tmpfs, where root may make one (else the tests that need it skip). */
const CAN_MOUNT = process.platform === 'linux' && spawnSync('unshare', ['-m', 'sh', '-c', `mount -t tmpfs -o size=64k tmpfs ${TMP} && umount ${TMP}`]).status === 0;

describe('kasi run → store → history, show, diff, export', () => {
  const DB = join(TMP, 'runs.db');
  let textOut = '';
  let jsonOut = '';

  it('two kasi run processes storing into one new database at once both land', async () => {
    const [a, b] = await Promise.all([kasiAsync([...RUN, '--db', DB]), kasiAsync([...RUN, '--json', '--duration', '200us', '--db', DB])]);
    expect(a.status, a.stderr).toBe(0);
    expect(b.status, b.stderr).toBe(0);
    for (const r of [a, b]) expect(r.stderr).toMatch(/^kasi run: stored as run [12] in .*runs\.db$/m);
    textOut = a.stdout;
    jsonOut = b.stdout;
    const h = (await cli('history', '--json', '--db', DB));
    expect(h.status, h.stderr).toBe(0);
    const runs = JSON.parse(h.stdout) as { id: number; seeds: number; sets: string[]; leaks: number }[];
    expect(runs.map((r) => r.id).sort()).toEqual([1, 2]);
    for (const r of runs) expect(r).toMatchObject({ seeds: 1, sets: ['none', 'nosmt'], leaks: 1 });
    const text = (await cli('history', '--db', DB, '--limit', '1')).stdout.split('\n');
    expect(text[0]).toMatch(/^id\s+stored \(UTC\)\s+scenario\s+seeds\s+sets\s+leaks\s+max overhead\s+kasi$/);
    expect(text[2]).toMatch(/^ 2\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+tiny\s+4\s+2\s+1\s+\d+\.\d\d%\s+0\.1\.0 /);
    expect(text[3]).toBe('');
  }, 60_000);

  it('two processes each storing 40 runs into one database at the same time: all 80 land, each whole', async () => {
    const writer = join(TMP, 'writer.ts');
    writeFileSync(writer, `import { readFileSync } from 'node:fs';
import { openStore } from ${JSON.stringify(join(ROOT, 'src/store/db.ts'))};
import { saveRun } from ${JSON.stringify(join(ROOT, 'src/store/save.ts'))};
const [db, reportFile, count] = process.argv.slice(2);
const reportJson = readFileSync(reportFile, 'utf8');
const store = openStore(db, { create: true });
for (let i = 0; i < Number(count); i++) {
  saveRun(store, { reportJson, report: JSON.parse(reportJson), scenarioText: 'name: w', scenarioJson: '{}', duration: null, kasiVersion: 'test', gitCommit: String(process.pid), createdAt: new Date().toISOString() });
}
store.close();
`);
    const reportFile = join(TMP, 'report.json');
    writeFileSync(reportFile, jsonOut);
    const db = join(TMP, 'stress.db');
    const go = (): Promise<number | null> => new Promise((done) => spawn(TSX, [writer, db, reportFile, '40'], { stdio: 'inherit' }).on('close', done));
    expect(await Promise.all([go(), go()])).toEqual([0, 0]);
    const h = await cli('history', '--json', '--limit', '1000', '--db', db);
    const runs = JSON.parse(h.stdout) as { git_commit: string; sets: string[] }[];
    expect(runs).toHaveLength(80);
    expect(new Set(runs.map((r) => r.git_commit)).size).toBe(2);
    for (const r of runs) expect(r.sets).toEqual(['none', 'nosmt']);
  }, 60_000);

  it('show prints the report kasi run printed; export json is its --json output byte for byte', async () => {
    const ids = (JSON.parse((await cli('history', '--json', '--db', DB)).stdout) as { id: number; file: string }[]);
    const byJson = (JSON.parse((await cli('show', '2', '--json', '--db', DB)).stdout) as { report: { stop: string } }).report.stop.startsWith('200000ns') ? 2 : 1;
    const textId = 3 - byJson;
    expect(ids).toHaveLength(2);
    const show = (await cli('show', String(textId), '--db', DB));
    expect(show.status, show.stderr).toBe(0);
    expect(show.stdout).toMatch(new RegExp(`^run ${textId}: stored \\S+ \\S+ UTC by kasi 0\\.1\\.0 \\(`));
    expect(show.stdout.endsWith(textOut)).toBe(true);
    const exp = (await cli('export', String(byJson), '--format', 'json', '--db', DB));
    expect(exp.status, exp.stderr).toBe(0);
    expect(exp.stdout === jsonOut).toBe(true);
    const md = (await cli('export', String(byJson), '--format', 'md', '--db', DB)).stdout;
    expect(md).toMatch(/^## kasi: tiny — what leaks and what it costs$/m);
    expect(md).toContain('--duration 200us');
    const csv = (await cli('export', String(byJson), '--format', 'csv', '--db', DB)).stdout;
    expect(csv.split('\r\n')[0]).toMatch(/^run,set,cmdline,/);
    const diff = (await cli('diff', String(textId), String(byJson), '--db', DB));
    expect(diff.status, diff.stderr).toBe(0);
    expect(diff.stdout).toMatch(/Scenario: what differs\n\s+field\s+\d\s+\d\n\s+-+.*\n\s+duration\s+100us\s+200us\n/);
    expect(diff.stdout).toMatch(/Costs of the sets in both/);
    const bad = (await cli('show', '7', '--db', DB));
    expect(bad.status).toBe(2);
    expect(bad.stderr.trimEnd()).toMatch(/^kasi: no run 7 in .*runs\.db \(it holds runs 1\.\.2; kasi history lists them\)$/);
    const fmt = (await cli('export', '1', '--format', 'pdf', '--db', DB));
    expect(fmt.status).toBe(2);
    expect(fmt.stderr).toMatch(/--format: expected one of json, csv, md/);
  }, 60_000);

  it('--no-store writes no database; without --db the store is $KASI_DB, else ./kasi.db', async () => {
    const dir = join(TMP, 'cwd');
    mkdirSync(dir);
    const env = { ...process.env };
    delete env.KASI_DB;
    const none = await kasi([...RUN, '--no-store'], { cwd: dir, env });
    expect(none.status, none.stderr).toBe(0);
    expect(none.stderr).toBe('');
    expect(existsSync(join(dir, 'kasi.db'))).toBe(false);
    expect(none.stdout).toBe(textOut);
    const env2 = { ...env, KASI_DB: join(dir, 'env.db') };
    const saved = process.env.KASI_DB;
    process.env.KASI_DB = env2.KASI_DB;
    const viaEnv = await cli('history');
    process.env.KASI_DB = saved;
    expect(viaEnv.status).toBe(2);
    expect(viaEnv.stderr).toMatch(/^kasi: no kasi database at .*env\.db/);
  }, 60_000);

  it('a --db file that is not kasi\'s: one line, exit 2, nothing run, the file unchanged', async () => {
    const f = join(TMP, 'notes.db');
    writeFileSync(f, 'my notes, not a database\n'.repeat(50));
    const before = readFileSync(f);
    const r = await kasi([...RUN, '--db', f]);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.trimEnd().split('\n')).toEqual([`kasi: ${f} is not a kasi database: not an SQLite file; left unchanged (choose another file with --db)`]);
    expect(readFileSync(f).equals(before)).toBe(true);
  }, 60_000);

  /** Run kasi in a private mount namespace on a small tmpfs holding a copy of DB: `prep` fills or freezes it first. */
  function onSmallDisk(prep: string): Out {
    const mnt = join(TMP, 'mnt');
    mkdirSync(mnt, { recursive: true });
    const script = [
      `mount -t tmpfs -o size=256k tmpfs ${mnt}`,
      `cp ${DB} ${mnt}/kasi.db`,
      prep,
      `exec ${process.execPath} ${CLI} ${RUN.join(' ')} --db ${mnt}/kasi.db`,
    ].join(' && ');
    const r = spawnSync('unshare', ['-m', 'sh', '-c', script], { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 << 20 });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  it.skipIf(!CAN_MOUNT)('a full disk: the report printed whole, one line saying it was not stored, exit 1', () => {
    const r = onSmallDisk(`(dd if=/dev/zero of=${join(TMP, 'mnt')}/fill bs=4k 2>/dev/null || true)`);
    expect(r.stdout).toBe(textOut);
    expect(r.stderr.trimEnd().split('\n')).toEqual([expect.stringMatching(/^kasi run: not stored: .*kasi\.db: .*(SQLITE_FULL|SQLITE_IOERR)/)]);
    expect(r.status).toBe(1);
  }, 60_000);

  it.skipIf(!CAN_MOUNT)('a read-only database: the report printed whole, one line saying it was not stored, exit 1', () => {
    const r = onSmallDisk(`mount -o remount,ro ${join(TMP, 'mnt')}`);
    expect(r.stdout).toBe(textOut);
    expect(r.stderr.trimEnd().split('\n')).toEqual([expect.stringMatching(/^kasi run: not stored: .*kasi\.db: .*(readonly|read-only|unable to open)/)]);
    expect(r.status).toBe(1);
  }, 60_000);
});
