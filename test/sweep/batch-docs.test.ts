/**
 * The batch-engine recipes in docs/ do what they say, short of a cluster: the Kubernetes Indexed
 * Job's pod script (docs/k8s-sweep-job.yaml) run once per JOB_COMPLETION_INDEX, then the merge
 * Job's script (docs/k8s-merge-job.yaml), with the pods' /work and /results folders made local
 * folders; and the Slurm array script (docs/slurm-sweep.sh) run once per SLURM_ARRAY_TASK_ID, then
 * the merge command its header gives. Each must store every point of the grid exactly once, and
 * the Job's --shard N must be its completions. A tiny sweep replaces the example (SWEEP / the
 * script's argument), and one worker per shard keeps it quick.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { parseAllDocuments } from 'yaml';
import { ROOT } from '../helpers/kasi-cli.ts';
import { tinyScenario } from '../helpers/tiny-scenario.ts';

const TMP = mkdtempSync(join(tmpdir(), 'kasi-batch-docs-'));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));
const SWEEP = join(TMP, 'tiny.yaml');
writeFileSync(SWEEP, tinyScenario({ duration: '30us', sweep: '  workload[0].mix[0].weight: [1, 2, 3, 4, 5]\n' }));

function sh(shell: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ status: number | null; err: string }> {
  return new Promise((done) => {
    const c = spawn(shell, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    c.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    c.on('close', (status) => done({ status, err }));
  });
}

function points(db: string): number[] {
  const d = new Database(db, { readonly: true });
  try { return (d.prepare('SELECT sweep_point AS p FROM runs ORDER BY p').all() as { p: number }[]).map((r) => r.p); } finally { d.close(); }
}

interface K8sJob { kind: string; spec: { completionMode?: string; completions?: number; parallelism?: number; template: { spec: { containers: { env?: { name: string; value: string }[]; args: string[] }[] } } } }

describe('docs: batch engines', () => {
  it('the Kubernetes Indexed Job and its merge Job', async () => {
    const docs = parseAllDocuments(readFileSync(join(ROOT, 'docs/k8s-sweep-job.yaml'), 'utf8')).map((d) => d.toJS() as K8sJob);
    const job = docs.find((d) => d.kind === 'Job')!;
    expect(job.spec.completionMode).toBe('Indexed');
    const c = job.spec.template.spec.containers[0];
    const env = Object.fromEntries((c.env ?? []).map((e) => [e.name, e.value]));
    expect(Number(env.SHARDS)).toBe(job.spec.completions);
    expect(job.spec.parallelism).toBe(job.spec.completions);
    readFileSync(join(ROOT, env.SWEEP)); // the sweep the Job names exists
    const local = (script: string, work: string) => script.replaceAll('/work/', `${work}/`).replaceAll('/results/', `${TMP}/results/`).replace('--workers 2', '--workers 1');
    mkdirSync(join(TMP, 'results'));
    const pods = Array.from({ length: job.spec.completions! }, (_, i) => {
      const work = join(TMP, `pod${i}`);
      mkdirSync(work);
      return sh('/bin/sh', ['-c', local(c.args[0], work)], { JOB_COMPLETION_INDEX: String(i), SWEEP, SHARDS: env.SHARDS });
    });
    for (const r of await Promise.all(pods)) expect(r.status, r.err).toBe(0);
    const merge = (parseAllDocuments(readFileSync(join(ROOT, 'docs/k8s-merge-job.yaml'), 'utf8'))[0].toJS() as K8sJob).spec.template.spec.containers[0].args[0];
    const work = join(TMP, 'merge');
    mkdirSync(work);
    const m = await sh('/bin/sh', ['-c', local(merge, work).replace('examples/sweep-asi-exit-rate.yaml', SWEEP)], {});
    expect(m.status, m.err).toBe(0);
    expect(m.err).toContain('0 to run, 5 already in');
    expect(points(join(TMP, 'results/all.db'))).toEqual([0, 1, 2, 3, 4]);
    expect(readFileSync(join(TMP, 'results/sweep.svg'), 'utf8')).toMatch(/^<svg/);
  }, 180_000);

  it('the Slurm array script and the merge its header gives', async () => {
    const script = join(ROOT, 'docs/slurm-sweep.sh');
    const out = join(TMP, 'slurm');
    const tasks = [0, 1, 2].map((id) => sh('/bin/bash', [script, SWEEP], {
      SLURM_ARRAY_TASK_ID: String(id), SLURM_ARRAY_TASK_MIN: '0', SLURM_ARRAY_TASK_COUNT: '3', SLURM_CPUS_PER_TASK: '1', SLURM_SUBMIT_DIR: ROOT, OUT: out,
    }));
    for (const r of await Promise.all(tasks)) expect(r.status, r.err).toBe(0);
    expect(points(join(out, 'shard-1.db'))).toEqual([1, 4]);
    const wrap = /--wrap '([^']+)'/.exec(readFileSync(script, 'utf8'))![1].replaceAll('results/', `${out}/`);
    const m = await sh('/bin/sh', ['-c', wrap], {});
    expect(m.status, m.err).toBe(0);
    expect(points(join(out, 'all.db'))).toEqual([0, 1, 2, 3, 4]);
  }, 180_000);
});
