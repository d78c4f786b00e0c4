/**
 * Which slice of a sweep this process runs (`--shard I/N`; issue 12 "Sharding"): the points whose
 * index is I modulo N (0 <= I < N), so N processes that each take one I cover the grid once, the
 * costly and cheap corners of the grid spread over all of them, and the slice depends on nothing
 * but I, N and the grid. Batch engines give I in the environment:
 *  - a Kubernetes Indexed Job sets JOB_COMPLETION_INDEX (0 … completions-1) in each pod
 *    (kubernetes.io/docs/concepts/workloads/controllers/job/#completion-mode); N is the Job's
 *    completions, given as `--shard N`;
 *  - a Slurm job array sets SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_MIN and SLURM_ARRAY_TASK_COUNT
 *    (slurm.schedmd.com/job_array.html): I = ID - MIN and N = COUNT; with `--shard N`, I = ID
 *    (array indices 0 … N-1), so one task submitted again alone (--array=ID) is still shard ID of N.
 * Without --shard, a Slurm array task shards itself; a bare JOB_COMPLETION_INDEX needs `--shard N`.
 */
export interface Shard {
  readonly index: number;
  readonly count: number;
  /** Where I (and N) came from, for the progress line. */
  readonly from: string;
}

export class ShardError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ShardError';
  }
}

const int = (s: string | undefined): number | undefined => (s !== undefined && /^\d{1,9}$/.test(s.trim()) ? Number(s.trim()) : undefined);

/** The shard of `option` (--shard: "I/N", "N" or undefined) in environment `env`; null: the whole grid. */
export function resolveShard(option: string | undefined, env: NodeJS.ProcessEnv = process.env): Shard | null {
  const k8s = env.JOB_COMPLETION_INDEX;
  const slurm = env.SLURM_ARRAY_TASK_ID;
  const check = (index: number, count: number, from: string): Shard => {
    if (count < 1) throw new ShardError(`--shard: expected N >= 1, found ${count}`);
    if (index >= count) throw new ShardError(`--shard: expected I < N (I counts from 0), found ${index}/${count}${from === '--shard' ? '' : ` (I from ${from})`}`);
    return { index, count, from };
  };
  if (option !== undefined) {
    const m = /^(\d{1,9})\/(\d{1,9})$/.exec(option.trim());
    if (m !== null) return check(Number(m[1]), Number(m[2]), '--shard');
    const n = int(option);
    if (n === undefined) throw new ShardError(`--shard: expected I/N (0 <= I < N) or N (I from JOB_COMPLETION_INDEX or SLURM_ARRAY_TASK_ID), found ${JSON.stringify(option)}`);
    if (k8s !== undefined) {
      const i = int(k8s);
      if (i === undefined) throw new ShardError(`JOB_COMPLETION_INDEX: expected an integer >= 0, found ${JSON.stringify(k8s)}`);
      return check(i, n, 'JOB_COMPLETION_INDEX');
    }
    if (slurm !== undefined) return check(slurmIndex({ SLURM_ARRAY_TASK_ID: slurm }), n, 'SLURM_ARRAY_TASK_ID');
    throw new ShardError(`--shard ${n}: which shard is this? give --shard I/${n}, or run under a Kubernetes Indexed Job (JOB_COMPLETION_INDEX) or a Slurm array (SLURM_ARRAY_TASK_ID)`);
  }
  if (slurm !== undefined && env.SLURM_ARRAY_TASK_COUNT !== undefined) {
    const n = int(env.SLURM_ARRAY_TASK_COUNT);
    if (n === undefined) throw new ShardError(`SLURM_ARRAY_TASK_COUNT: expected an integer >= 1, found ${JSON.stringify(env.SLURM_ARRAY_TASK_COUNT)}`);
    return check(slurmIndex(env), n, 'SLURM_ARRAY_TASK_ID/COUNT');
  }
  return null;
}

function slurmIndex(env: NodeJS.ProcessEnv): number {
  const id = int(env.SLURM_ARRAY_TASK_ID);
  const min = env.SLURM_ARRAY_TASK_MIN === undefined ? 0 : int(env.SLURM_ARRAY_TASK_MIN);
  if (id === undefined || min === undefined || id < min) throw new ShardError(`SLURM_ARRAY_TASK_ID: expected an integer >= SLURM_ARRAY_TASK_MIN (${env.SLURM_ARRAY_TASK_MIN ?? 0}), found ${JSON.stringify(env.SLURM_ARRAY_TASK_ID)}`);
  return id - min;
}

/** The point indices of `shard` in a grid of `size` points. */
export function shardPoints(size: number, shard: Shard | null): number[] {
  const out: number[] = [];
  const n = shard?.count ?? 1;
  for (let i = shard?.index ?? 0; i < size; i += n) out.push(i);
  return out;
}
