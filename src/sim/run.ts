/**
 * `kasi run`: one scenario, every isolation entry, the same seed → what leaked and what it cost,
 * per mitigation set (docs/DESIGN.md "Data flow of kasi run").
 *
 * The unmitigated baseline (the first entry whose command line is `mitigations=off`, else the
 * first entry) runs first, for the scenario's duration; every other entry then runs the SAME
 * workload: the same number of events per workload task, drawn from the same PRNG streams. Its
 * cost is the sum over workload tasks of the cycle at which each finished — so stalls (stuns,
 * forced idle, a thread lost to SMT off) count as well as the cycles of each mechanism — and the
 * overhead is that sum against the baseline's. With `events: N` every entry runs N events per
 * workload task.
 */
import { ATTACK_NAMES, type AttackName } from '../attacks/sample.ts';
import { scoreLeak } from '../attacks/score.ts';
import { nsToCycles } from './costs.ts';
import { Engine } from './engine.ts';
import type { Scenario, SimTime } from './scenario-types.ts';
import { EK, EK_NAMES, N_EK, type Counts } from './thread.ts';
import { stateKey } from './same-state.ts';
import { buildWorld, type World } from './world.ts';

export interface LeakCell {
  readonly attack: string;
  readonly secret: string;
  readonly owner: string;
  readonly bytes: number;
  readonly of: number;
  /** Cycle of the earliest sample that contributed a counted byte (-1: none). */
  readonly when: number;
}

export interface ExitReason {
  readonly event: string;
  readonly part: string;
  readonly object: string;
  readonly count: number;
  /** The first faulting address of this reason. */
  readonly va: string;
}

export interface MitigationResult {
  readonly name: string;
  readonly cmdline: string;
  readonly design: string;
  readonly stun: boolean;
  readonly state: Readonly<Record<string, string | boolean>>;
  /** Cells with at least one byte leaked. */
  readonly leaks: readonly LeakCell[];
  /** Every attack × secret cell. */
  readonly matrix: readonly LeakCell[];
  readonly costs: {
    readonly cycles: number;
    readonly overhead_pct: number;
    readonly counts: Readonly<Record<string, number>>;
    readonly by_kind: Readonly<Record<string, number>>;
  };
  readonly asi_exit_reasons: readonly ExitReason[];
  readonly secrets: readonly { name: string; owner: string; pa: string[] }[];
  readonly events_per_task: readonly number[];
  readonly notes: readonly string[];
}

export interface RunReport {
  readonly scenario: string;
  readonly file: string;
  readonly seed: number;
  readonly cpu: string;
  readonly stop: string;
  readonly baseline: string;
  readonly mitigations: readonly MitigationResult[];
  /** Per entry, sim/same-state.ts stateKey() (not part of the JSON). */
  readonly stateKeys: readonly string[];
  /** The cost model's clock in GHz (cycles per ns). */
  readonly ghz: number;
}

export interface RunOptions {
  seed?: number;
  duration?: SimTime;
  /** Called before each isolation entry runs. */
  onProgress?: (index: number, total: number, name: string) => void;
}

/** The overrides applied to a parsed scenario (--seed, --duration). */
export function withRunOptions(s: Scenario, o: RunOptions): Scenario {
  let out = s;
  if (o.seed !== undefined) out = { ...out, seed: o.seed };
  if (o.duration !== undefined) out = { ...out, stop: { kind: 'duration', time: o.duration } };
  return out;
}

/** The index of the baseline entry. */
export function baselineIndex(s: Scenario): number {
  const i = s.isolation.findIndex((x) => x.mitigations.cpuMitigations === 'off' && x.design === 'off');
  return i >= 0 ? i : 0;
}

const hex = (n: number | bigint): string => `0x${n.toString(16)}`;

/** Run one isolation entry; `targets` null = duration mode. */
export function runEntry(scenario: Scenario, index: number, targets: Int32Array | null): { world: World; engine: Engine } {
  const world = buildWorld(scenario, index);
  const stop = scenario.stop;
  let endCycles = Infinity;
  let tg = targets;
  if (stop.kind === 'events') tg = Int32Array.from(world.tasks, (t) => (t.attacker ? 0 : stop.count));
  else if (tg === null) endCycles = stop.time.unit === 'cycles' ? stop.time.value : nsToCycles(stop.time.value, world.costs);
  const engine = new Engine(world, { targets: tg, endCycles }).run();
  return { world, engine };
}

function countsJson(c: Counts): Record<string, number> {
  return {
    cr3_writes: c.cr3Writes, tlb_flushes: c.tlbFlushes, asi_exits: c.asiExits, asi_entries: c.asiEntries, page_faults: c.pageFaults,
    l1d_flushes: c.l1dFlushes, verw: c.verw, stuns: c.stuns, ipis: c.ipis, asi_faults: c.asiFaults,
    cr3_noflush: c.cr3NoFlush, events: c.events, touches: c.touches, translations: c.translations, tlb_walks: c.walks, walk_upper_loads: c.walkUpperLoads, stlb_hits: c.stlbHits, l1d_misses: c.l1dMisses,
    context_switches: c.contextSwitches, kills: c.kills, sci_faults: c.sciFaults, sci_mapped_ptes: c.sciMapped, ephmap_maps: c.ephmapMaps, migrations: c.migrations, ibpbs: c.ibpbs, unmapped_touches: c.unmapped, attacks: c.attacks,
    kernel_insns: Math.round(c.kernelInsns), kernel_insns_warm: Math.round(c.kernelInsnsWarm), kernel_insns_untrained: Math.round(c.kernelInsnsUntrained),
  };
}

function matrixOf(world: World, engine: Engine): LeakCell[] {
  const used = new Set<AttackName>();
  for (const a of world.attackers) for (const n of a.names) used.add(n);
  const out: LeakCell[] = [];
  const samples = engine.samples;
  for (const name of ATTACK_NAMES) {
    if (!used.has(name)) continue;
    const code = ATTACK_NAMES.indexOf(name);
    const scores = scoreLeak(world.secrets, samples, (i) => samples.attack[i] === code);
    for (const s of scores) out.push({ attack: name, secret: s.secret.name, owner: s.secret.ownerName, bytes: s.recovered, of: s.total, when: s.firstAt });
  }
  return out;
}

function resultOf(world: World, engine: Engine, baseCycles: number): MitigationResult {
  const m = engine.meter;
  const work = world.tasks.filter((t) => t.attacker === null && !t.background); // background tasks are the scenery, not the work
  let cycles = 0;
  for (const t of work) cycles += m.finish[t.id];
  const byKind: Record<string, number> = {};
  for (let k = 0; k < N_EK; k++) {
    const v = m.kindTotal(k, (i) => world.tasks[i].attacker === null && !world.tasks[i].background);
    if (v > 0) byKind[EK_NAMES[k]] = Math.round(v);
  }
  const r = engine.reasons;
  const agg = new Map<string, { event: string; part: string; object: string; count: number; va: string }>();
  for (let i = 0; i < r.key.length; i++) {
    if (r.counts[i] === 0) continue;
    const k = `${r.key[i]}\u0000${r.part[i]}\u0000${r.what[i]}`;
    const va = (BigInt(r.faultHi[i] >>> 0) << 32n) | BigInt(r.faultLo[i] >>> 0);
    const row = agg.get(k);
    if (row === undefined) agg.set(k, { event: r.key[i], part: r.part[i], object: r.what[i], count: r.counts[i], va: hex(va) });
    else row.count += r.counts[i];
  }
  const reasons: ExitReason[] = [...agg.values()];
  const matrix = matrixOf(world, engine);
  const st = world.state;
  const iso = world.iso;
  return {
    name: iso.name, cmdline: iso.cmdline, design: iso.design, stun: iso.stun,
    state: {
      pti: st.pti, smt: st.smtControl, sched_core: st.schedCore, l1tf: st.l1tf, pte_inversion: st.l1tfPteInversion,
      vmentry_l1d_flush: st.vmentryL1dFlush, mds: st.mds, clear_cpu_buffers: st.clearCpuBuffers, idle_clear: st.idleClear, tsx: st.tsxEnabled,
      ibpb: st.ibpb, entry_ibpb: st.entryIbpb,
    },
    leaks: matrix.filter((c) => c.bytes > 0),
    matrix,
    costs: {
      cycles: Math.round(cycles), overhead_pct: baseCycles > 0 ? Math.round(((cycles - baseCycles) / baseCycles) * 10000) / 100 : 0,
      counts: { ...countsJson(m.counts), stun_spin_cycles: Math.round(m.kindTotal(EK['stun-wait'], () => true)) }, by_kind: byKind,
    },
    asi_exit_reasons: reasons,
    secrets: world.secrets.all().map((s) => ({ name: s.name, owner: s.ownerName, pa: s.ranges.map((x) => `${hex(x.pa)}+${x.len}`) })),
    events_per_task: Array.from(m.eventsDone),
    notes: world.notes,
  };
}

/** One isolation entry's run, as a worker returns it: the result, its state key and the clock. */
export interface EntryRun {
  readonly result: MitigationResult;
  /** sim/same-state.ts stateKey(): equal keys = one configuration. */
  readonly stateKey: string;
  /** The cost model's clock (cycles per ns), to turn `when` into ns. */
  readonly ghz: number;
}

/** The baseline entry `b` of one seed: its run and the events per task every other entry repeats. */
export function runBaseline(scenario: Scenario, b: number): EntryRun & { readonly targets: number[] } {
  const base = runEntry(scenario, b, null);
  const r = resultOf(base.world, base.engine, 0);
  return {
    result: { ...r, costs: { ...r.costs, overhead_pct: 0 } },
    stateKey: stateKey(base.world.state, base.world.iso),
    ghz: base.world.costs.clock.ghz,
    targets: Array.from(base.engine.meter.eventsDone),
  };
}

/** Entry `i` of one seed, after its baseline: the baseline's events per task, overhead against its cycles. */
export function runAfterBaseline(scenario: Scenario, i: number, targets: ArrayLike<number>, baseCycles: number): EntryRun {
  const r = runEntry(scenario, i, Int32Array.from(targets));
  return { result: resultOf(r.world, r.engine, baseCycles), stateKey: stateKey(r.world.state, r.world.iso), ghz: r.world.costs.clock.ghz };
}

/** The workload line of the report. */
function stopText(s: Scenario): string {
  return s.stop.kind === 'events' ? `${s.stop.count} events per task` : `${s.stop.time.value}${s.stop.time.unit === 'ns' ? 'ns' : ' cycles'} (baseline), then the baseline's events per task`;
}

/** One seed's report from its entries' runs (in scenario order). */
export function assembleReport(scenario: Scenario, runs: readonly EntryRun[]): RunReport {
  const b = baselineIndex(scenario);
  return {
    scenario: scenario.name, file: scenario.file, seed: scenario.seed, cpu: scenario.machine.cpu, stop: stopText(scenario), baseline: scenario.isolation[b].name,
    mitigations: runs.map((r) => r.result), stateKeys: runs.map((r) => r.stateKey), ghz: runs[b].ghz,
  };
}

/** Run every isolation entry of `scenario` for its one seed, in this thread (sim/seeds.ts runs many seeds). */
export function runScenario(input: Scenario, o: RunOptions = {}): RunReport {
  const scenario = withRunOptions(input, o);
  const n = scenario.isolation.length;
  const b = baselineIndex(scenario);
  o.onProgress?.(0, n, scenario.isolation[b].name);
  const base = runBaseline(scenario, b);
  const runs: EntryRun[] = new Array(n);
  runs[b] = base;
  let done = 1;
  for (let i = 0; i < n; i++) {
    if (i === b) continue;
    o.onProgress?.(done++, n, scenario.isolation[i].name);
    runs[i] = runAfterBaseline(scenario, i, base.targets, base.result.costs.cycles);
  }
  return assembleReport(scenario, runs);
}
