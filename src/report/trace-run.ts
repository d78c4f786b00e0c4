/**
 * `kasi run --trace out.json`: one seed of the scenario run again in this thread with a
 * TraceRecorder on the engine (sim/engine-trace.ts), every mitigation set as sim/run.ts runs it —
 * the baseline for the scenario's stop, then each other set for the baseline's events per task —
 * so the trace shows the run the report's seed S is (same world, same PRNG streams, same counts).
 * One process per mitigation set, one thread per hardware thread ("cpu3: victim"). `limit` bounds
 * the events of the whole file: each set keeps its first limit / sets events and counts the rest.
 */
import { nsToCycles } from '../sim/costs.ts';
import { Engine } from '../sim/engine.ts';
import { baselineIndex, withRunOptions } from '../sim/run.ts';
import type { Scenario, SimTime } from '../sim/scenario-types.ts';
import { buildWorld } from '../sim/world.ts';
import { DEFAULT_TRACE_LIMIT, traceJson, TraceRecorder, type TraceTrack } from './trace.ts';

export interface TraceRunOptions {
  /** The seed traced (default: the scenario's). */
  seed?: number;
  /** Events kept in the file, over all sets (default DEFAULT_TRACE_LIMIT). */
  limit?: number;
  /** The --duration override. */
  duration?: SimTime;
}

export interface TraceRun {
  readonly json: string;
  readonly seed: number;
  /** Per set: its name, the events kept and dropped, and the engine's counts (report JSON names). */
  readonly sets: readonly { name: string; kept: number; dropped: number; counts: Readonly<Record<string, number>> }[];
}

function runTraced(s: Scenario, i: number, targets: Int32Array | null, rec: TraceRecorder): { engine: Engine; track: TraceTrack } {
  const world = buildWorld(s, i);
  let endCycles = Infinity;
  let tg = targets;
  if (s.stop.kind === 'events') { const n = s.stop.count; tg = Int32Array.from(world.tasks, (t) => (t.attacker ? 0 : n)); } else if (tg === null) endCycles = s.stop.time.unit === 'cycles' ? s.stop.time.value : nsToCycles(s.stop.time.value, world.costs);
  const engine = new Engine(world, { targets: tg, endCycles, trace: rec }).run();
  const threads = world.threadTasks.map((ids, t) => `cpu${t}: ${ids.length === 0 ? 'idle' : [...new Set(ids.map((id) => world.tasks[id].tenant.spec.name + (world.tasks[id].attacker ? ' (attacker)' : '')))].join(', ')}`);
  return { engine, track: { name: world.iso.name, recorder: rec, ghz: world.costs.clock.ghz, threads } };
}

/** The trace-event JSON of one seed of `input`, every mitigation set. */
export function traceScenario(input: Scenario, o: TraceRunOptions = {}): TraceRun {
  const s = withRunOptions(input, { seed: o.seed, duration: o.duration });
  const n = s.isolation.length;
  const limit = o.limit ?? DEFAULT_TRACE_LIMIT;
  const per = Math.floor(limit / n);
  const b = baselineIndex(s);
  const runs = new Array<{ engine: Engine; track: TraceTrack }>(n);
  runs[b] = runTraced(s, b, null, new TraceRecorder(per));
  const targets = Int32Array.from(runs[b].engine.meter.eventsDone);
  for (let i = 0; i < n; i++) if (i !== b) runs[i] = runTraced(s, i, targets, new TraceRecorder(per));
  const sets = runs.map((r) => {
    const c = r.engine.meter.counts;
    return {
      name: r.track.name, kept: r.track.recorder.length, dropped: r.track.recorder.dropped,
      counts: { asi_exits: c.asiExits, asi_entries: c.asiEntries, l1d_flushes: c.l1dFlushes, verw: c.verw, tlb_flushes: c.tlbFlushes, page_faults: c.pageFaults, stuns: c.stuns, context_switches: c.contextSwitches, attacks: c.attacks, ipis: c.ipis },
    };
  });
  const json = traceJson(runs.map((r) => r.track), { scenario: s.name, file: s.file, seed: s.seed, trace_limit: limit, clock: 'ts in µs of the model clock (cycles / GHz)' });
  return { json, seed: s.seed, sets };
}
