/**
 * Is N seeds enough? For each scenario, run two disjoint seed sets (S … S+N-1 and
 * S+N … S+2N-1) and compare the verdict of every leak cell (sim/seeds.ts: leaks in any seed /
 * no leak), and the verdicts of the rule before it (leaks in at least half of the seeds, unstable
 * in fewer) on the same runs. The default N (DEFAULT_SEEDS) keeps every cell of the built-in
 * scenario agreeing; rare leaks of some examples do not (examples/README.md records the
 * measurement). `--pairs K` compares K consecutive pairs of sets (seeds S … S+2KN-1): a rule must
 * hold for any seeds, not for one pair.
 *
 *   npx tsx bench/seed-stability.ts [--seeds N[,N…]] [--pairs K] [--workers W] [--duration T] [FILE…]
 * Without files: the built-in scenario and every examples/*.yaml but default.yaml (the same) and
 * the sweep files.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultScenario, loadScenario, parseTime } from '../src/scenario/load.ts';
import { defaultWorkers, runSeeds } from '../src/sim/pool.ts';
import type { Scenario, SimTime } from '../src/sim/scenario-types.ts';
import { DEFAULT_SEEDS, summarize, type SeedsReport } from '../src/sim/seeds.ts';

const args = process.argv.slice(2);
const opt = (name: string): string | undefined => {
  const i = args.indexOf(name);
  if (i < 0) return undefined;
  const v = args[i + 1];
  args.splice(i, 2);
  return v;
};
const ns = (opt('--seeds') ?? String(DEFAULT_SEEDS)).split(',').map(Number);
const pairs = Number(opt('--pairs') ?? 1);
const workers = Number(opt('--workers') ?? defaultWorkers());
const d = opt('--duration');
const duration = d === undefined ? undefined : (parseTime(d) as SimTime);
const examples = join(dirname(fileURLToPath(import.meta.url)), '..', 'examples');
// A sweep file is a grid of scenarios (kasi sweep), not one: left out.
const files = args.length > 0 ? args : readdirSync(examples).filter((f) => f.endsWith('.yaml') && f !== 'default.yaml').map((f) => join(examples, f))
  .filter((f) => !/^sweep:/m.test(readFileSync(f, 'utf8')));
const scenarios: [string, Scenario][] = [...(args.length > 0 ? [] : [['built-in default', defaultScenario()] as [string, Scenario]]), ...files.map((f) => [basename(f), loadScenario(f)] as [string, Scenario])];

interface Cell { verdict: string; leaked: number }
const verdicts = (r: SeedsReport): Map<string, Cell> => {
  const out = new Map<string, Cell>();
  for (const m of r.mitigations) for (const c of m.matrix) out.set(`${m.name}: ${c.attack} × ${c.secret}`, { verdict: c.verdict, leaked: c.seeds_leaked });
  return out;
};

for (const n of ns) {
  for (const [name, s] of scenarios) {
    for (let p = 0; p < pairs; p++) {
      const s0 = s.seed + 2 * p * n;
      const t0 = performance.now();
      const a = verdicts(summarize(await runSeeds(s, { seed: s0, seeds: n, workers, duration })));
      const b = verdicts(summarize(await runSeeds(s, { seed: s0 + n, seeds: n, workers, duration })));
      const secs = ((performance.now() - t0) / 1000).toFixed(1);
      const shown = (c: Cell | undefined): string => (c === undefined ? '(no cell)' : `${c.verdict} (${c.leaked}/${n})`);
      const differ = [...a.keys()].filter((k) => a.get(k)!.verdict !== b.get(k)?.verdict);
      // The half rule, judged on the same cells: leaks at k >= N/2, unstable below, no leak at 0.
      const half = (c: Cell | undefined): string => { const k = c?.leaked ?? 0; return k === 0 ? 'no leak' : 2 * k >= n ? 'leaks' : 'unstable'; };
      const differHalf = [...a.keys()].filter((k) => half(a.get(k)) !== half(b.get(k)));
      const mixed = (c: Cell | undefined): boolean => c !== undefined && c.leaked > 0 && c.leaked < n;
      const partial = [...a.keys()].filter((k) => mixed(a.get(k)) || mixed(b.get(k)));
      console.log(`N=${n} ${name}: seeds ${s0}..${s0 + n - 1} vs ${s0 + n}..${s0 + 2 * n - 1}: ${a.size} cells, ${differ.length} verdicts differ (${differHalf.length} with the half rule), ${partial.length} leak in some seeds only (${secs}s)`);
      for (const k of differ) console.log(`    differs  ${k}: ${shown(a.get(k))} vs ${shown(b.get(k))}`);
      for (const k of partial) if (!differ.includes(k)) console.log(`    partial  ${k}: ${shown(a.get(k))} vs ${shown(b.get(k))}`);
    }
  }
}
