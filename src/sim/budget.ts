/**
 * How much work a scenario asks for, predicted before anything runs, so that an absurd one
 * (`duration: 1000s`, `every: 1ns`, a guest-run of 10^15 cycles touching its working set) is
 * refused up front with the numbers instead of running for hours.
 *
 * The prediction follows the engine's own arithmetic (sim/engine.ts Engine.compile()): an item
 * costs its transition + footprint insns × the cheapest of the warm, untrained and cold prices
 * (sim/code-warmth.ts; so no run makes more events than predicted) + loop cycles + its `cycles`, and touches its
 * footprint's text pages and data lines (sim/touch.ts), plus, for guest-run and user-compute,
 * lines_per_kcycle × cycles / 1000 lines of the tenant's working set (sim/working-set.ts). A task
 * in duration mode draws duration / (mean item cycles) events; in events mode its count. Each
 * attacker samples every `every` over the run, each of its attacks once a sample. TLB misses,
 * flush refills and waits are not predicted: they make a run slower than this, never faster.
 *
 * Two kinds of result:
 * - `impossible`: what no run can do, refused always — a duration shorter than the shortest event
 *   of the workload (no event would complete: the report would be all zeros), or clocks past
 *   2^52 cycles (the engine's clocks are doubles that must stay exact integers);
 * - `excessive`: work above WORK_LIMIT units (touches + attack samples over every isolation entry
 *   and seed), or more tenants than TENANT_LIMIT: refused unless the user says --force.
 */
import { getCostModel, nsToCycles, withCostOverrides, type CostModel } from './costs.ts';
import { loadFootprintTable, type Footprint, type FootprintTable } from './footprints.ts';
import { mixFootprintKey, type MixItem, type Scenario, type SimTime } from './scenario-types.ts';
import { sizedFootprint } from './sized.ts';
import { withNativeBase } from './event-base.ts';

/**
 * Touches and attack samples for one run of every entry and seed: 10^9, about half an hour of one
 * core (the engine was measured at ~600 000 touches a second on the CI machine, examples/default
 * .yaml at 40 ms; the built-in scenario's 8 seeds × 10 entries are 1.2 × 10^7).
 */
export const WORK_LIMIT = 1e9;
/**
 * Tenants past which a run asks for --force: the largest world measured. bench/scale.ts's host
 * cell (200 VMs of 4 GiB and 50 processes on 1 TiB, 128 threads) builds its tenants in ~3.3 s per
 * entry and seed (2026-12-02; earlier kasi took 65 s for 256).
 */
export const TENANT_LIMIT = 256;
/** Engine clocks stay below this (exact integers in a double: 2^53, with headroom for one event past the end). */
export const CLOCK_LIMIT = 2 ** 52;

export interface TaskWork {
  readonly thread: number;
  readonly tenant: string;
  /** Mean cycles and touches of one event (weighted by the mix). */
  readonly meanCycles: number;
  readonly meanTouches: number;
  /** The cheapest item (cycles): a duration below it completes no event. */
  readonly minCycles: number;
  readonly events: number;
}

export interface WorkPrediction {
  readonly tasks: readonly TaskWork[];
  /** The run's end in cycles (duration mode: the duration; events mode: the slowest task's). */
  readonly endCycles: number;
  readonly touches: number;
  readonly samples: number;
  /** Per entry and seed. */
  readonly perRun: number;
  readonly runs: number;
  readonly total: number;
  readonly impossible: string | null;
  readonly excessive: string | null;
}

function itemCost(m: MixItem, fp: Footprint | undefined, costs: CostModel, vm: boolean): number {
  const p = costs.params;
  let base = fp ? fp.insns.count * Math.min(p.kernelCyclesPerInsnWarm.cycles, p.kernelCyclesPerInsnUntrained.cycles, p.kernelCyclesPerInsn.cycles) + fp.loopCycles : 0; // the cheapest price: a lower bound on an event's cost
  switch (m.event) {
    case 'vm-exit': base += p.vmExitEntry.cycles; break;
    case 'syscall': base += p.syscallEntryExit.cycles; break;
    case 'page-fault': base += p.interruptEntryExit.cycles; break;
    case 'timer-interrupt': case 'nmi': base += p.interruptEntryExit.cycles + (vm ? p.vmExitEntry.cycles : 0); break;
    case 'context-switch': base += p.contextSwitch.cycles; break;
    default:
  }
  return withNativeBase(fp, base, costs) + ('cycles' in m ? m.cycles : 0);
}

function itemTouches(m: MixItem, fp: Footprint | undefined, linesPerKcycle: number): number {
  let n = 0;
  if (fp) {
    n += fp.text.pages.length;
    for (const d of fp.data) n += d.lines;
  }
  if (m.event === 'guest-run' || m.event === 'user-compute') n += (linesPerKcycle * m.cycles) / 1000;
  return n;
}

const toCycles = (t: SimTime, costs: CostModel): number => (t.unit === 'cycles' ? t.value : nsToCycles(t.value, costs));

/** Predict the work of `s` run for `seeds` seeds (every isolation entry once a seed). */
export function predictWork(s: Scenario, seeds = 1, table: FootprintTable = loadFootprintTable({ overrides: s.footprintOverrides })): WorkPrediction {
  const costs = withCostOverrides(getCostModel(s.machine.cpu), s.costOverrides);
  const tasks: TaskWork[] = s.workload.map((w) => {
    const tenant = s.tenants.find((t) => t.name === w.tenant);
    const vm = tenant?.kind === 'vm';
    const lpk = tenant?.workingSet.linesPerKcycle ?? 0;
    let wsum = 0, cyc = 0, tch = 0, min = Infinity;
    for (const m of w.mix) {
      const key = mixFootprintKey(m);
      const base = key === null ? undefined : table.entries.get(key);
      const fp = base !== undefined && m.event === 'syscall' && m.bytes !== undefined ? sizedFootprint(base, m.bytes) : base;
      const c = itemCost(m, fp, costs, vm);
      wsum += m.weight;
      cyc += m.weight * c;
      tch += m.weight * itemTouches(m, fp, lpk);
      if (c < min) min = c;
    }
    const meanCycles = cyc / wsum;
    const events = s.stop.kind === 'events' ? s.stop.count : Math.ceil(toCycles(s.stop.time, costs) / Math.max(1, meanCycles));
    return { thread: w.thread, tenant: w.tenant, meanCycles, meanTouches: tch / wsum, minCycles: min, events };
  });
  const endCycles = s.stop.kind === 'duration' ? toCycles(s.stop.time, costs) : Math.max(0, ...tasks.map((t) => t.events * t.meanCycles));
  const touches = tasks.reduce((a, t) => a + t.events * t.meanTouches, 0);
  const samples = s.attackers.reduce((a, at) => a + (endCycles / Math.max(1, toCycles(at.every, costs))) * at.attacks.length, 0);
  const perRun = touches + samples;
  const runs = s.isolation.length * seeds;
  const total = perRun * runs;
  const ghz = costs.clock.ghz;
  let impossible: string | null = null;
  if (s.stop.kind === 'duration' && tasks.length > 0) {
    const shortest = Math.min(...tasks.map((t) => t.minCycles));
    if (endCycles < shortest) impossible = `a duration of at least ${Math.ceil(shortest)} cycles (${(shortest / ghz).toFixed(1)}ns at ${ghz} GHz: the shortest event of the workload; no event would complete in ${endCycles} cycles)`;
  }
  if (impossible === null && endCycles > CLOCK_LIMIT) impossible = `a run that ends below 2^52 cycles (the engine's clocks must stay exact integers), not ${endCycles.toExponential(2)} cycles (${(endCycles / ghz / 1e9).toExponential(2)} s at ${ghz} GHz)`;
  let excessive: string | null = null;
  if (total > WORK_LIMIT) {
    const busiest = tasks.reduce<TaskWork | null>((a, t) => (a === null || t.events * t.meanTouches > a.events * a.meanTouches ? t : a), null);
    const what = busiest === null ? '' : `; the busiest task, thread ${busiest.thread} (${busiest.tenant}), makes ${fmt(busiest.events)} events × ${fmt(busiest.meanTouches)} touches`;
    excessive = `predicted work ${fmt(total)} (${fmt(touches)} touches + ${fmt(samples)} attack samples per run × ${runs} runs: ${s.isolation.length} entries × ${seeds} seeds${what}) is above ${fmt(WORK_LIMIT)}, about half an hour of one core`;
  } else if (s.tenants.length > TENANT_LIMIT) {
    excessive = `${s.tenants.length} tenants: more than the ${TENANT_LIMIT} kasi has measured (bench/scale.ts: ~3 s to build 250 for every entry and seed); larger worlds are untried`;
  }
  return { tasks, endCycles, touches, samples, perRun, runs, total, impossible, excessive };
}

function fmt(n: number): string {
  return n < 1e6 ? String(Math.round(n)) : n.toExponential(2);
}
