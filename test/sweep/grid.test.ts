/**
 * Sweep files (src/sweep/grid.ts) and shards (src/sweep/shard.ts): the grid is the cartesian product
 * of the swept values (first path slowest), each point's scenario holds its values where the paths
 * say (read back from the parsed Scenario, not from the grid), a point is checked exactly as a
 * scenario is (a value the loader refuses is refused, at the value's line and column in the sweep
 * block, naming the sweep path and the point), mistakes outside the sweep block keep their own line
 * numbers, and shards cover every point exactly once whatever N, from --shard or the batch
 * engines' variables.
 */
import { describe, expect, it } from 'vitest';
import { coordinates, loadGrid, parsePath, point } from '../../src/sweep/grid.ts';
import { resolveShard, shardPoints } from '../../src/sweep/shard.ts';
import { parseScenario } from '../../src/scenario/load.ts';
import { tinyScenario } from '../helpers/tiny-scenario.ts';

const BASE = tinyScenario({ name: 'tiny-sweep' });
const grid = (sweep: string, base = BASE) => loadGrid('s.yaml', `${base}sweep:\n${sweep}`);
/** Line and column (1-based) of the last occurrence of `needle` in `text`. */
function where(text: string, needle: string): string {
  const at = text.lastIndexOf(needle);
  const before = text.slice(0, at).split('\n');
  return `${before.length}:${before[before.length - 1].length + 1}`;
}

describe('sweep grid', () => {
  it('paths', () => {
    expect(parsePath('workload[0].mix[1].weight')).toEqual(['workload', 0, 'mix', 1, 'weight']);
    expect(parsePath('machine.cores')).toEqual(['machine', 'cores']);
    for (const bad of ['', '[0]', 'a..b', 'a.[0]', 'a b', 'a.0']) expect(parsePath(bad), bad).toBeNull();
  });

  it('is the cartesian product, first path slowest; each point holds its values in the parsed scenario', () => {
    const g = grid('  workload[0].mix[0].weight: [1, 4, 16]\n  machine.cores: [1, 2]\n  kernel.kaslr_seed: [9]\n');
    expect(g.size).toBe(6);
    expect(Array.from({ length: 6 }, (_, i) => coordinates(g, i))).toEqual([[0, 0, 0], [0, 1, 0], [1, 0, 0], [1, 1, 0], [2, 0, 0], [2, 1, 0]]);
    const seen = Array.from({ length: 6 }, (_, i) => {
      const p = point(g, i);
      return [p.scenario.workload[0].mix[0].weight, p.scenario.machine.cores, p.scenario.kernel.kaslrSeed];
    });
    expect(seen).toEqual([[1, 1, 9], [1, 2, 9], [4, 1, 9], [4, 2, 9], [16, 1, 9], [16, 2, 9]]);
    // Nothing else changes: the point without its new values is the base scenario.
    const p = point(g, 3);
    const { positions: _a, ...mine } = p.scenario;
    const { positions: _b, ...base } = parseScenario(BASE.replace('cores: 1', 'cores: 2').replace('weight: 1 }', 'weight: 4 }').replace('seed: 4\n', 'seed: 4\nkernel: { kaslr_seed: 9 }\n'), 's.yaml');
    expect(mine).toEqual(base);
    expect(p.params).toEqual({ 'workload[0].mix[0].weight': 4, 'machine.cores': 2, 'kernel.kaslr_seed': 9 });
    expect(p.label).toBe('workload[0].mix[0].weight=4, machine.cores=2, kernel.kaslr_seed=9');
  });

  it('an isolation axis replaces the whole list', () => {
    const g = grid('  isolation:\n    - [{ name: none, cmdline: "mitigations=off" }]\n    - [{ name: none, cmdline: "mitigations=off" }, { name: kvm, cmdline: "asi=kvm-asi-2019" }]\n');
    expect(point(g, 1).scenario.isolation.map((x) => [x.name, x.design])).toEqual([['none', 'off'], ['kvm', 'kvm-asi-2019']]);
    expect(point(g, 1).label).toBe('isolation=[none, kvm]');
  });

  it('a value the scenario loader refuses: the value\'s line and column, the sweep path and the point', () => {
    const sweep = '  machine.cores: [1, 999]\n';
    const text = `${BASE}sweep:\n${sweep}`;
    const g = grid(sweep);
    expect(() => point(g, 0)).not.toThrow();
    expect(() => point(g, 1)).toThrow(`s.yaml:${where(text, '999')}: sweep machine.cores[1] = 999 (point 2 of 2: machine.cores=999): field machine.cores: expected a number <= 256, found number 999`);
    // a value that only fails with the rest of the scenario: a thread the machine does not have
    const g2 = grid('  machine.threads_per_core: [2, 1]\n');
    expect(() => point(g2, 1)).toThrow(/^s\.yaml:16:\d+: sweep machine\.threads_per_core\[1\] = 1 .*field (workload|attackers|tenants)/);
  });

  it('mistakes in the sweep block and outside it name their own line and column', () => {
    const cases: [string, string, string, RegExp][] = [
      ['  tenants[0].name.x: [1]\n', BASE, 'tenants[0].name.x', /sweep path tenants\[0\]\.name\.x: tenants\[0\]\.name is not a mapping/],
      ['  workload[3].thread: [1]\n', BASE, 'workload[3]', /has 1 item\(s\), so no \[3\]/],
      ['  machine.cores: 4\n', BASE, '4', /expected a non-empty list of values, found one value/],
      ['  machine.cores: []\n', BASE, '[]', /expected a non-empty list of values, found an empty list/],
      ['  machine: [{}]\n  machine.cores: [1]\n', BASE, 'machine.cores', /expected paths that do not contain each other/],
      ['  machine..cores: [1]\n', BASE, 'machine..cores', /expected a scenario path/],
      ['  machine.cores: [1]\n', BASE.replace('seed: 4', 'seed: -4'), '-4', /field seed: expected a number >= 0/],
    ];
    for (const [sweep, base, at, msg] of cases) {
      const text = `${base}sweep:\n${sweep}`;
      let err: Error | undefined;
      try { loadGrid('s.yaml', text); } catch (e) { err = e as Error; }
      expect(err?.message, sweep).toMatch(msg);
      expect(err?.message.startsWith(`s.yaml:${where(text, at)}: `), `${sweep}: ${err?.message}`).toBe(true);
    }
    expect(() => loadGrid('s.yaml', BASE)).toThrow(/^s\.yaml:1:1: field sweep: expected a sweep block/);
    // a new field the loader does not know: refused at the point, at the sweep value
    const text = `${BASE}sweep:\n  machine.nope.x: [1]\n`;
    expect(() => point(loadGrid('s.yaml', text), 0)).toThrow(`s.yaml:${where(text, '[1]') .replace(/:(\d+)$/, (_, c) => `:${Number(c) + 1}`)}: sweep machine.nope.x[0] = 1 (point 1 of 1: machine.nope.x=1): field machine.nope: expected one of the fields`);
  });
});

describe('shards', () => {
  it('cover the grid exactly once for every N', () => {
    for (const size of [1, 7, 12]) for (let n = 1; n <= 5; n++) {
      const all = Array.from({ length: n }, (_, i) => shardPoints(size, { index: i, count: n, from: 't' })).flat().sort((a, b) => a - b);
      expect(all, `${size}/${n}`).toEqual(Array.from({ length: size }, (_, i) => i));
    }
    expect(shardPoints(7, { index: 1, count: 3, from: 't' })).toEqual([1, 4]);
  });

  it('from --shard, a Kubernetes Indexed Job, a Slurm array', () => {
    expect(resolveShard('2/5', {})).toMatchObject({ index: 2, count: 5 });
    expect(resolveShard(undefined, {})).toBeNull();
    expect(resolveShard('4', { JOB_COMPLETION_INDEX: '3' })).toMatchObject({ index: 3, count: 4, from: 'JOB_COMPLETION_INDEX' });
    expect(resolveShard(undefined, { JOB_COMPLETION_INDEX: '3' })).toBeNull(); // N is not in a pod's environment: --shard N
    expect(resolveShard(undefined, { SLURM_ARRAY_TASK_ID: '5', SLURM_ARRAY_TASK_MIN: '1', SLURM_ARRAY_TASK_COUNT: '8' })).toMatchObject({ index: 4, count: 8 });
    expect(resolveShard('3', { SLURM_ARRAY_TASK_ID: '2' })).toMatchObject({ index: 2, count: 3 });
    // one task of a 4-task array submitted again alone (--array=2): MIN = ID = 2, COUNT = 1
    const alone = { SLURM_ARRAY_TASK_ID: '2', SLURM_ARRAY_TASK_MIN: '2', SLURM_ARRAY_TASK_COUNT: '1' };
    expect(resolveShard('4', alone)).toMatchObject({ index: 2, count: 4 });
    expect(resolveShard(undefined, alone)).toMatchObject({ index: 0, count: 1 });
    expect(() => resolveShard('5/5', {})).toThrow(/I < N/);
    expect(() => resolveShard('4', {})).toThrow(/which shard is this/);
    expect(() => resolveShard('4', { JOB_COMPLETION_INDEX: '4' })).toThrow(/I < N .*JOB_COMPLETION_INDEX/);
    expect(() => resolveShard('x/2', {})).toThrow(/expected I\/N/);
  });
});
