/**
 * vitest globalSetup: compile the CLI from the sources as they are now (scripts/build.mjs, ~1 s)
 * into dist/test-cli/, which the tests' `kasi` child processes run (test/helpers/kasi-cli.ts).
 * Every start through tsx transpiled the CLI again (~1 s of CPU per child, dozens of children);
 * the bundle is also what users run. A folder of its own per run (dist/test-cli/PID/, removed at
 * the end; $KASI_TEST_CLI names its kasi.js): the pack test's `npm pack` rebuilds dist/cli/, and a
 * second vitest started meanwhile builds its own, while this run's children are running.
 */
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export default function setup(): () => void {
  const out = `dist/test-cli/${process.pid}`;
  const r = spawnSync(process.execPath, [join(ROOT, 'scripts/build.mjs')], {
    cwd: ROOT, env: { ...process.env, KASI_BUILD_OUT: out }, encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`test/build-cli.ts: scripts/build.mjs failed (${r.status ?? r.signal}):\n${r.stderr}`);
  process.env.KASI_TEST_CLI = join(ROOT, out, 'kasi.js');
  return () => rmSync(join(ROOT, out), { recursive: true, force: true });
}
