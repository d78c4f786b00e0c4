/**
 * `npx tsx bench/sim.ts`: the engine's speed. Writes bench/sim-results.json.
 *
 *  1. Touches per second on one core: a single-thread host process running a syscall / page-fault
 *     mix for 20 ms of simulated time, under mitigations=off and under the defaults (KPTI, VERW).
 *     A "touch" is one memory access of a footprint that goes through the thread's MMU: a kernel
 *     text page fetched, or a 64-byte line of a data object loaded or stored through the core
 *     (L1D, fill buffer, load port, store buffer). The lines after the first of a page reuse the
 *     translation the TLB just gave (`translations` counts the Mmu.translate() calls). Engine
 *     time only (the world is built first); best of ROUNDS runs.
 *  2. The built-in scenario (`kasi run` without a file): all 9 mitigation sets, in-process, the
 *     first run of the process (cold JIT) and the best of the next ROUNDS (warm).
 */
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultScenario, parseScenario } from '../src/scenario/load.ts';
import { Engine } from '../src/sim/engine.ts';
import { runScenario } from '../src/sim/run.ts';
import { buildWorld } from '../src/sim/world.ts';

const here = dirname(fileURLToPath(import.meta.url));
const ROUNDS = 5;

const ONE_CORE = `
name: one-core
seed: 1
duration: 20ms
machine: { cpu: skylake-sp, cores: 1, threads_per_core: 1, ram: 1GiB }
tenants:
  - { name: db, kind: process, objects: [{ name: f, kind: page-cache }, { name: a, kind: anon-page }, { name: c, kind: cred }] }
workload:
  - thread: 0
    tenant: db
    mix:
      - { event: syscall, name: read, weight: 4 }
      - { event: syscall, name: pread64, weight: 2 }
      - { event: syscall, name: write, weight: 2 }
      - { event: syscall, name: openat, weight: 1 }
      - { event: syscall, name: futex, weight: 2 }
      - { event: page-fault, weight: 1 }
      - { event: timer-interrupt, weight: 1 }
isolation:
  - { name: off, cmdline: "mitigations=off" }
  - { name: default, cmdline: "" }
`;

function touchRate(index: number): Record<string, number> {
  const s = parseScenario(ONE_CORE, 'bench/one-core.yaml');
  let best = Infinity;
  let last: Engine | null = null;
  for (let r = 0; r < ROUNDS; r++) {
    const w = buildWorld(s, index);
    const e = new Engine(w, { targets: null, endCycles: 20e-3 * w.costs.clock.ghz * 1e9 });
    const t0 = performance.now();
    e.run();
    const ms = performance.now() - t0;
    if (ms < best) { best = ms; last = e; }
  }
  const c = last!.meter.counts;
  return {
    engine_ms: Math.round(best * 10) / 10,
    events: c.events,
    touches: c.touches,
    translations: c.translations,
    touches_per_s: Math.round(c.touches / (best / 1000)),
    translations_per_s: Math.round(c.translations / (best / 1000)),
    events_per_s: Math.round(c.events / (best / 1000)),
  };
}

const t0 = performance.now();
runScenario(defaultScenario());
const cold = performance.now() - t0;
let warm = Infinity;
let sets = 0;
for (let r = 0; r < ROUNDS; r++) {
  const a = performance.now();
  const rep = runScenario(defaultScenario());
  warm = Math.min(warm, performance.now() - a);
  sets = rep.mitigations.length;
}

const results = {
  one_core_mitigations_off: touchRate(0),
  one_core_default_mitigations: touchRate(1),
  default_scenario: { mitigation_sets: sets, cold_ms: Math.round(cold), warm_ms: Math.round(warm), duration: '2ms (sim/default-scenario.ts)' },
  node: process.version,
};
writeFileSync(join(here, 'sim-results.json'), JSON.stringify(results, null, 2) + '\n');
console.log(JSON.stringify(results, null, 2));
