/**
 * The package as a user gets it: `npm pack` (which runs `prepare`, scripts/build.mjs), the
 * tarball installed into a fresh folder, and the installed `kasi` run there. It fails when the
 * tarball lacks a file kasi reads at run time (`files` in package.json: dist/cli/, examples/,
 * the fixtures), when a module the compiled CLI loads is not a runtime dependency, or when the
 * compiled build (bundles, worker entries, paths to data files) behaves differently from the
 * TypeScript sources: the installed `kasi run` must print the report the sources print.
 *
 * The install is offline and from the lockfile: the fresh folder gets a package-lock.json made
 * of the repository's (its non-dev packages, at the same paths, plus the tarball), so `npm ci
 * --offline` takes every package from the npm cache `npm ci` filled, with no registry request
 * (the cache holds tarballs, not the registry's package documents a lockless install needs).
 * Install scripts are skipped: better-sqlite3 has no prebuilt binary here and node-gyp takes
 * about two minutes on two cores, so its native module is copied from the repository's own
 * build of the same version (checked below) — the one thing this test does not exercise.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { DEFAULT_SCENARIO_YAML } from '../../src/sim/default-scenario.ts';
import { kasiRun, ROOT } from '../helpers/kasi-cli.ts';

interface Sh { status: number | null; stdout: string; stderr: string }

/** Run a command to its end (awaited, never spawnSync: a long synchronous wait blocks vitest's worker). */
function sh(cmd: string, args: readonly string[], cwd: string): Promise<Sh> {
  return new Promise((done, fail) => {
    const c = spawn(cmd, args, { cwd, env: process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [], err: Buffer[] = [];
    c.stdout.on('data', (d: Buffer) => out.push(d));
    c.stderr.on('data', (d: Buffer) => err.push(d));
    c.on('error', fail);
    c.on('close', (status) => done({ status, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }));
  });
}

interface LockEntry { dev?: boolean; devOptional?: boolean; optional?: boolean; [k: string]: unknown }

/** package.json and package-lock.json of a project whose one dependency is the tarball `tgz` (in `dir`). */
function writeProject(dir: string, tgz: string): void {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string; license: string; dependencies: Record<string, string>; bin: unknown; engines: unknown };
  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> };
  const integrity = `sha512-${createHash('sha512').update(readFileSync(join(dir, tgz))).digest('base64')}`;
  const dependencies = { kasi: `file:${tgz}` };
  const packages: Record<string, unknown> = {
    '': { name: 'kasi-pack-test', dependencies },
    'node_modules/kasi': { version: pkg.version, resolved: `file:${tgz}`, integrity, license: pkg.license, dependencies: pkg.dependencies, bin: pkg.bin, engines: pkg.engines },
  };
  // kasi's dependencies hoist to the same node_modules/ paths as in the repository.
  for (const [path, e] of Object.entries(lock.packages)) {
    if (path === '' || e.dev === true) continue;
    const { devOptional, ...rest } = e;
    packages[path] = devOptional === true ? { ...rest, optional: true } : rest;
  }
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'kasi-pack-test', private: true, dependencies }, null, 2));
  writeFileSync(join(dir, 'package-lock.json'), JSON.stringify({ name: 'kasi-pack-test', lockfileVersion: 3, requires: true, packages }, null, 2));
}

const RUN = ['run', '--duration', '200us', '--seeds', '1', '--workers', '2'];

describe('npm pack, installed into a fresh folder', () => {
  let dir = '';
  let app = '';
  let kasiBin = '';
  const seconds: Record<string, number> = {};
  const timed = async <T>(what: string, f: () => Promise<T>): Promise<T> => {
    const t = performance.now();
    try { return await f(); } finally { seconds[what] = Math.round(performance.now() - t) / 1000; }
  };

  beforeAll(async () => {
    dir = realpathSync(mkdtempSync(join(tmpdir(), 'kasi-pack-')));
    const pack = await timed('npm pack', () => sh('npm', ['pack', '--pack-destination', dir, '--json', '--no-audit', '--no-fund'], ROOT));
    expect(pack.status, pack.stderr).toBe(0);
    const [{ filename }] = JSON.parse(pack.stdout) as { filename: string }[];
    app = join(dir, 'app');
    mkdirSync(app);
    copyFileSync(join(dir, filename), join(app, filename));
    writeProject(app, filename);
    const ci = await timed('npm ci', () => sh('npm', ['ci', '--offline', '--ignore-scripts', '--no-audit', '--no-fund'], app));
    expect(ci.status, ci.stderr).toBe(0);
    // better-sqlite3's native module, built by the repository's npm ci from the same version.
    const native = 'node_modules/better-sqlite3';
    const version = (p: string): string => (JSON.parse(readFileSync(join(p, 'package.json'), 'utf8')) as { version: string }).version;
    expect(version(join(app, native))).toBe(version(join(ROOT, native)));
    mkdirSync(join(app, native, 'build/Release'), { recursive: true });
    copyFileSync(join(ROOT, native, 'build/Release/better_sqlite3.node'), join(app, native, 'build/Release/better_sqlite3.node'));
    kasiBin = join(app, 'node_modules/.bin/kasi');
  }, 180_000);

  afterAll(() => {
    console.log(`pack test: ${Object.entries(seconds).map(([k, s]) => `${k} ${s} s`).join(', ')}`);
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
  });

  it('ships the compiled CLI and not the CLI sources, so the installed kasi runs dist/', () => {
    const pkg = join(app, 'node_modules/kasi');
    expect(existsSync(join(pkg, 'dist/cli/kasi.js'))).toBe(true);
    expect(existsSync(join(pkg, 'src/cli/main.ts'))).toBe(false);
    expect(existsSync(join(app, 'node_modules/.bin/kasi'))).toBe(true);
  });

  it('kasi run prints the default scenario\'s leak matrix and cost table, as the sources do', async () => {
    const installed = await timed('kasi run (installed)', () => sh(kasiBin, [...RUN, '--db', join(dir, 'installed.db')], app));
    expect(installed.status, installed.stderr).toBe(0);
    expect(installed.stderr).not.toMatch(/tsx/); // bin/kasi.js fell back to the sources
    const sources = await kasiRun([...RUN, '--no-store']);
    expect(sources.status, sources.stderr).toBe(0);
    expect(installed.stdout).toBe(sources.stdout);

    // Not an empty or truncated report: the sets and secrets of the built-in scenario's text.
    const sc = parseYaml(DEFAULT_SCENARIO_YAML) as { isolation: { name: string }[]; secrets: { name: string; in: string }[] };
    const sets = sc.isolation.map((s) => s.name);
    expect(sets.length).toBeGreaterThan(1);
    const lines = installed.stdout.split('\n');
    const leaks = lines.findIndex((l) => l.startsWith('Leaks'));
    const costs = lines.findIndex((l) => l.startsWith('Costs'));
    expect(leaks).toBeGreaterThan(0);
    expect(costs).toBeGreaterThan(leaks);
    expect(lines[leaks + 1].trim().split(/\s+/)).toEqual(sets);
    for (const s of sc.secrets) {
      const tenant = s.in.split('/')[0];
      expect(lines.slice(leaks + 3, costs).some((l) => l.includes(`× ${s.name} (${tenant})`)), `${s.name} row`).toBe(true);
    }
    expect(lines[costs + 1].trim().split(/\s+/)).toEqual(sets);
    const cycles = lines.slice(costs + 3).find((l) => l.startsWith('cycles '))!;
    const values = cycles.trim().split(/\s+/).slice(1).map((v) => Number(v.replaceAll(',', '')));
    expect(values).toHaveLength(sets.length);
    for (const v of values) expect(v).toBeGreaterThan(0);
  });

  it('the stored run names the package\'s version and the scenario text of its examples/default.yaml', async () => {
    const r = await sh(kasiBin, ['show', '1', '--json', '--db', join(dir, 'installed.db')], app);
    expect(r.status, r.stderr).toBe(0);
    const run = JSON.parse(r.stdout) as { kasi_version: string; git_commit: string | null; scenario: { text: string } };
    expect(run.kasi_version).toBe((JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version);
    expect(run.git_commit).toBeNull(); // an installed package is not kasi's checkout
    // store/record.ts stores examples/default.yaml's text for the built-in scenario, else a JSON dump.
    expect(run.scenario.text.split('\n')[0]).toBe(readFileSync(join(ROOT, 'examples/default.yaml'), 'utf8').split('\n')[0]);
  });

  it('kasi summary finds the built-in capture inside the installed package', async () => {
    const r = await sh(kasiBin, ['summary'], app);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.split('\n')[0]).toBe(`capture: ${join(app, 'node_modules/kasi/test/fixtures/captures/la48-pti-nokaslr/kernel.json.gz')}`);
  });
});
