/**
 * A Node child process timed as a user's command would be: wall time here, CPU time of every
 * thread (workers, V8's compiler and GC threads) and peak RSS from /usr/bin/time when the machine
 * has it (null otherwise). For bench/parallel.ts and bench/scale.ts.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TimedRun { ms: number; cpuMs: number | null; peakRssMiB: number | null; stdout: string }

const TIME = existsSync('/usr/bin/time') ? '/usr/bin/time' : null;

/** Run `node ARGS`; throws with the child's stderr when it fails. */
export function timedNode(args: readonly string[], what: string): TimedRun {
  const tmp = mkdtempSync(join(tmpdir(), 'kasi-bench-time-'));
  try {
    const usage = join(tmp, 'usage');
    const t0 = performance.now();
    const r = TIME === null
      ? spawnSync(process.execPath, args, { encoding: 'utf8', maxBuffer: 1 << 28 })
      : spawnSync(TIME, ['-o', usage, '-f', '%U %S %M', process.execPath, ...args], { encoding: 'utf8', maxBuffer: 1 << 28 });
    const ms = performance.now() - t0;
    if (r.status !== 0) throw new Error(`${what}: exit ${r.status}\n${r.stderr}`);
    if (TIME === null) return { ms, cpuMs: null, peakRssMiB: null, stdout: r.stdout };
    const [user, sys, rssKiB] = readFileSync(usage, 'utf8').trim().split('\n').pop()!.split(' ').map(Number);
    return { ms, cpuMs: (user + sys) * 1000, peakRssMiB: Math.round(rssKiB / 1024), stdout: r.stdout };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
