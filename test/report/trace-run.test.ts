/**
 * `kasi run --trace` (report/trace-run.ts, sim/engine-trace.ts): the timeline of one seed of the
 * built-in scenario (200 µs, its 10 mitigation sets: none, the 6.1 default, SMT off, core
 * scheduling, three ASI generations, a stun what-if) against the run's own report, which counts
 * in the engine's and the mechanisms' counters, not through the tracer:
 *  - the trace passes the structural check (report/trace.ts checkTrace);
 *  - each thread's slices tile its time from 0 with no gap and no overlap, and the two workload
 *    threads' tracks end where the report says their tasks finished (costs.cycles is their sum);
 *  - per set, the instants equal the report's counts: ASI exits, L1D flushes, VERWs, TLB flushes
 *    (summed), #PFs, stuns, context switches, attack instants — an action performed on a path the
 *    tracer does not see, or a tracer that changes the run, breaks an equality;
 *  - only sets with an ASI design have kernel-restricted slices, and after an ASI exit a thread's
 *    kernel time is on full tables until it enters again;
 *  - each exit on a fault names its cause as the report's exit reasons do (sim/touch.ts counts them
 *    where the touch faulted), and as many times;
 *  - --trace-limit bounds the events in the file.
 */
import { describe, expect, it } from 'vitest';
import { defaultScenario } from '../../src/scenario/load.ts';
import { runScenario, withRunOptions } from '../../src/sim/run.ts';
import { traceScenario } from '../../src/report/trace-run.ts';
import { checkTrace } from '../../src/report/trace.ts';

interface Ev { name: string; ph: string; pid: number; tid: number; ts: number; dur?: number; args?: Record<string, number | string> }

const scenario = withRunOptions(defaultScenario(), { duration: { unit: 'ns', value: 200_000 } });
const traced = traceScenario(scenario);
const report = runScenario(scenario);
const doc = JSON.parse(traced.json) as { traceEvents: Ev[]; otherData: Record<string, unknown> };
const evs = doc.traceEvents.filter((e) => e.ph !== 'M');
const NS = 0.0011; // µs: times are whole ns

describe('kasi run --trace: the built-in scenario, seed 42, 200 µs', () => {
  it('is a well-formed trace of the report\'s seed', () => {
    expect(checkTrace(doc)).toEqual([]);
    expect(traced.seed).toBe(report.seed);
    expect(doc.otherData.seed).toBe(42);
    const names = doc.traceEvents.filter((e) => e.name === 'process_name').map((e) => e.args!.name);
    expect(names).toEqual(report.mitigations.map((m) => m.name));
  });

  it('slices tile each thread\'s time; workload tracks end at their tasks\' finish', () => {
    const byTrack = new Map<string, Ev[]>();
    for (const e of evs) if (e.ph === 'X') { const k = `${e.pid}/${e.tid}`; byTrack.set(k, [...(byTrack.get(k) ?? []), e]); }
    expect(byTrack.size).toBeGreaterThanOrEqual(report.mitigations.length * 3);
    for (const [key, list] of byTrack) {
      list.sort((a, b) => a.ts - b.ts);
      expect(list[0].ts, key).toBeLessThan(NS);
      for (let i = 1; i < list.length; i++) expect(Math.abs(list[i].ts - (list[i - 1].ts + list[i - 1].dur!)), `${key} slice ${i}`).toBeLessThan(NS);
    }
    // cpu1 (victim-vm) and cpu2 (host-db) each run one workload task, in the sets that keep SMT and tasks in place.
    for (const name of ['none', 'default', 'asi-2025', 'asi-2025-stun']) {
      const pid = report.mitigations.findIndex((m) => m.name === name) + 1;
      const end = (tid: number) => { const l = byTrack.get(`${pid}/${tid}`)!; const last = l[l.length - 1]; return last.ts + last.dur!; };
      const ghz = report.ghz;
      const cycles = report.mitigations[pid - 1].costs.cycles;
      expect(Math.abs(end(1) + end(2) - cycles / ghz / 1000), name).toBeLessThan(4 * NS);
    }
  });

  it('instants equal the report\'s counts, set by set', () => {
    report.mitigations.forEach((m, i) => {
      const mine = evs.filter((e) => e.pid === i + 1 && e.ph === 'i');
      const n = (k: string) => mine.filter((e) => e.name === k).length;
      const c = m.costs.counts;
      const got = {
        asi_exits: n('asi-exit'), l1d_flushes: n('l1d-flush'), verw: n('verw'), page_faults: n('fault'), stuns: n('stun'),
        context_switches: n('context-switch'), attacks: n('attack'), asi_entries: n('asi-enter'),
        tlb_flushes: mine.filter((e) => e.name === 'tlb-flush').reduce((a, e) => a + Number(e.args!.count), 0),
      };
      const want = Object.fromEntries(Object.keys(got).map((k) => [k, c[k]]));
      expect(got, m.name).toEqual(want);
    });
    // The scenario is one where these happen at all.
    const asi = report.mitigations.find((m) => m.name === 'asi-2025-stun')!.costs.counts;
    expect(asi.asi_exits).toBeGreaterThan(10);
    expect(asi.stuns).toBeGreaterThan(10);
  });

  it('kernel-restricted only under an ASI design; after an exit the kernel runs on full tables', () => {
    report.mitigations.forEach((m, i) => {
      const restricted = evs.filter((e) => e.pid === i + 1 && e.name === 'kernel-restricted').length;
      if (m.design === 'off' || m.design === 'kpti') expect(restricted, m.name).toBe(0);
      else expect(restricted, m.name).toBeGreaterThan(0);
    });
    const pid = report.mitigations.findIndex((m) => m.name === 'asi-2025') + 1;
    const mine = evs.filter((e) => e.pid === pid);
    const exits = mine.filter((e) => e.name === 'asi-exit');
    expect(exits.length).toBeGreaterThan(0);
    for (const x of exits) {
      // the slice of that thread running just after the exit
      const after = mine.filter((e) => e.ph === 'X' && e.tid === x.tid && e.ts <= x.ts + NS && e.ts + e.dur! > x.ts + NS);
      for (const s of after) expect(s.name, `exit at ${x.ts}µs on thread ${x.tid}`).not.toBe('kernel-restricted');
    }
    expect(exits.some((x) => String(x.args?.what ?? '').startsWith('fault at 0xffff'))).toBe(true);
  });

  it('each ASI exit on a fault names the report\'s exit reason: footprint, part and object, as often as the report counts it', () => {
    let checked = 0;
    report.mitigations.forEach((m, i) => {
      const mine = evs.filter((e) => e.pid === i + 1 && e.name === 'asi-exit' && String(e.args?.what).startsWith('fault at '));
      const got = new Map<string, number>();
      for (const e of mine) {
        const x = /^fault at 0x[0-9a-f]+: (.*) \(([^,()]+), ([^()]+)\)$/.exec(String(e.args!.what));
        expect(x, String(e.args!.what)).not.toBeNull();
        const k = `${x![3]} | ${x![2]} | ${x![1]}`;
        got.set(k, (got.get(k) ?? 0) + 1);
      }
      const want = new Map(m.asi_exit_reasons.map((r) => [`${r.event} | ${r.part} | ${r.object}`, r.count]));
      expect(got, m.name).toEqual(want);
      checked += mine.length;
    });
    expect(checked).toBeGreaterThan(20);
  });

  it('each attack instant comes with one primitive instant per attack of its attacker; bytes where the report has a leak', () => {
    const none = report.mitigations.findIndex((m) => m.name === 'none') + 1;
    const mine = evs.filter((e) => e.pid === none && (e.name === 'attack' || e.name === 'primitive'));
    const attacks = mine.filter((e) => e.name === 'attack');
    expect(attacks.length).toBeGreaterThan(10);
    for (const a of attacks) {
      const prims = mine.filter((e) => e.name === 'primitive' && e.tid === a.tid && e.ts === a.ts);
      expect(prims.map((p) => p.args!.what)).toEqual(String(a.args!.what).split('+'));
      expect(prims.reduce((n, p) => n + Number(p.args!.samples), 0)).toBe(a.args!.samples);
    }
    // the report: l1tf-guest reads the victim's key with no mitigation; so some instant got bytes
    expect(report.mitigations[none - 1].leaks.some((c) => c.attack === 'l1tf-guest')).toBe(true);
    expect(mine.some((e) => e.name === 'primitive' && e.args!.what === 'l1tf-guest' && Number(e.args!.bytes) > 0)).toBe(true);
  });

  it('--trace-limit bounds the file', () => {
    const small = traceScenario(scenario, { limit: 500 });
    const d = JSON.parse(small.json) as { traceEvents: Ev[]; otherData: { dropped_events: Record<string, number> } };
    const kept = d.traceEvents.filter((e) => e.ph !== 'M').length;
    expect(kept).toBeLessThanOrEqual(500);
    expect(kept).toBeGreaterThan(400);
    expect(Object.values(d.otherData.dropped_events).reduce((a, b) => a + b, 0)).toBe(evs.length - kept);
    expect(checkTrace(d)).toEqual([]);
    expect(small.json.length).toBeLessThan(traced.json.length / 10);
  });
});
