/**
 * The kasi command as the tests run it: a child process running the CLI compiled from the sources
 * at the start of the test run (test/build-cli.ts: dist/test-cli/PID/kasi.js), awaited, never
 * spawnSync — a synchronous wait blocks vitest's worker, and a minute of that on a loaded machine
 * times out vitest's own RPC and fails the run although every test passed.
 */
import { spawn } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const TSX = join(ROOT, 'node_modules/.bin/tsx');
/** The compiled CLI test/build-cli.ts wrote for this run: `node CLI ARGS…` is `kasi ARGS…`. */
export const CLI = process.env.KASI_TEST_CLI ?? ((): never => { throw new Error('KASI_TEST_CLI is not set: run the tests with vitest.config.ts, whose globalSetup test/build-cli.ts compiles the CLI'); })();

export interface CliResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Wall time of the run, ms. */
  ms: number;
}

export interface CliOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Written to the child's stdin, which is then closed (default: stdin closed at once). */
  input?: string;
  /** Killed with SIGKILL after this long (the result then has signal 'SIGKILL'). */
  timeoutMs?: number;
}

/** Run `kasi ARGS…`; resolves when the child has exited and its output is read. */
export function kasiRun(args: readonly string[], o: CliOptions = {}): Promise<CliResult> {
  const t = performance.now();
  return new Promise((done, fail) => {
    const c = spawn(process.execPath, [CLI, ...args], { cwd: o.cwd ?? ROOT, env: o.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    c.stdout.on('data', (d: Buffer) => out.push(d));
    c.stderr.on('data', (d: Buffer) => err.push(d));
    c.stdin.end(o.input ?? '');
    const timer = o.timeoutMs === undefined ? undefined : setTimeout(() => c.kill('SIGKILL'), o.timeoutMs);
    c.on('error', fail);
    c.on('close', (status, signal) => {
      if (timer !== undefined) clearTimeout(timer);
      done({ status, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), ms: performance.now() - t });
    });
  });
}

/** `kasi(...args)`: kasiRun with default options. */
export function kasi(...args: string[]): Promise<CliResult> {
  return kasiRun(args);
}

/**
 * The bad-input contract (src/cli/errors.ts): exit 2, one stderr line that names `file` (when
 * given) and matches `problem`, no stack trace, nothing on stdout.
 */
export function expectInputError(r: CliResult, file: string | null, problem: RegExp): void {
  expect(r.status, r.stderr).toBe(2);
  const lines = r.stderr.trimEnd().split('\n');
  expect(lines, r.stderr).toHaveLength(1);
  if (file !== null) expect(lines[0]).toContain(file);
  expect(lines[0]).toMatch(problem);
  expect(r.stderr).not.toMatch(/\n\s+at |Error:/);
  expect(r.stdout).toBe('');
}
