/**
 * Engine units: the thread heap's order, determinism, event-granularity interleaving of the
 * thread clocks, and what one faulting touch in a restricted space does (one ASI exit, the CR3
 * writes the session emits), checked against the page tables themselves (an independent walk).
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseScenario } from '../../src/scenario/load.ts';
import { probe, Probe } from '../../src/asi/restricted.ts';

import { ThreadHeap } from '../../src/sim/heap.ts';
import { Engine } from '../../src/sim/engine.ts';
import { buildWorld } from '../../src/sim/world.ts';
import { runEntry } from '../../src/sim/run.ts';
import { loadFootprintTable } from '../../src/sim/footprints.ts';
import { buildPlan } from '../../src/sim/plan.ts';
import { defaultScenario } from '../../src/scenario/load.ts';
import { N_EK } from '../../src/sim/thread.ts';

const TWO_VMS = (iso: string, extra = '') => `
name: unit
seed: 11
duration: 200us
machine: { cpu: skylake-sp, cores: 1, threads_per_core: 2, ram: 1GiB }
tenants:
  - { name: victim, kind: vm, vcpus: 1, memory: 16MiB, objects: [{ name: k, kind: guest-page }] }
  - { name: evil, kind: vm, vcpus: 1, memory: 16MiB }
secrets: [{ name: key, in: victim/k, bytes: 32 }]
workload:
  - thread: 1
    tenant: victim
    mix: [{ event: vm-exit, reason: EPT_VIOLATION, weight: 1 }, { event: vm-exit, reason: MSR_WRITE, weight: 1 }, { event: guest-run, cycles: 3000, weight: 2 }]
${extra}
attackers: [{ thread: 0, tenant: evil, attacks: [l1tf-guest, mfbds], every: 2us }]
isolation:
  - { name: a, cmdline: "${iso}" }
`;

describe('ThreadHeap', () => {
  it('pops threads in clock order, ties by thread id', () => {
    fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: 50 }), { minLength: 1, maxLength: 40 }), (clocks) => {
      const c = Float64Array.from(clocks);
      const h = new ThreadHeap(c);
      for (let i = clocks.length - 1; i >= 0; i--) h.push(i);
      const got: number[] = [];
      for (let id = h.pop(); id >= 0; id = h.pop()) got.push(id);
      const want = clocks.map((v, i) => [v, i]).sort((a, b) => a[0] - b[0] || a[1] - b[1]).map((x) => x[1]);
      expect(got).toEqual(want);
    }));
  });

  it('re-pushing a thread with a later clock keeps the order', () => {
    const c = new Float64Array([5, 3, 9]);
    const h = new ThreadHeap(c);
    [0, 1, 2].forEach((i) => h.push(i));
    expect(h.pop()).toBe(1);
    c[1] = 7;
    h.push(1);
    expect([h.pop(), h.pop(), h.pop(), h.pop()]).toEqual([0, 1, 2, -1]);
  });
});

describe('Engine', () => {
  it('is deterministic: the same scenario and seed give the same counts, samples and clocks', () => {
    const s = parseScenario(TWO_VMS('mitigations=off'), 'unit.yaml');
    const a = runEntry(s, 0, null);
    const b = runEntry(s, 0, null);
    expect(Array.from(b.engine.meter.byKind)).toEqual(Array.from(a.engine.meter.byKind));
    expect(b.engine.meter.counts).toEqual(a.engine.meter.counts);
    expect(b.engine.samples.count).toBe(a.engine.samples.count);
    expect(Buffer.from(b.engine.samples.data.subarray(0, b.engine.samples.used)).equals(Buffer.from(a.engine.samples.data.subarray(0, a.engine.samples.used)))).toBe(true);
    expect(Array.from(b.world.threads.clock)).toEqual(Array.from(a.world.threads.clock));
  });

  it('advances the thread with the smallest clock: siblings interleave at event granularity', () => {
    const s = parseScenario(TWO_VMS('mitigations=off'), 'unit.yaml');
    const w = buildWorld(s, 0);
    const e = new Engine(w, { targets: null, endCycles: 200_000 });
    const seen: { t: number; clock: number }[] = [];
    const step = (e as unknown as { step(t: number): void }).step.bind(e);
    (e as unknown as { step(t: number): void }).step = (t: number) => { seen.push({ t, clock: w.threads.clock[t] }); step(t); };
    e.run();
    for (let i = 1; i < seen.length; i++) expect(seen[i].clock).toBeGreaterThanOrEqual(seen[i - 1].clock);
    // Both threads run throughout: neither finishes before the other starts.
    const switches = seen.filter((x, i) => i > 0 && x.t !== seen[i - 1].t).length;
    expect(switches).toBeGreaterThan(20);
    expect(new Set(seen.map((x) => x.t))).toEqual(new Set([0, 1]));
  });

  it('a touch that faults in a restricted space causes exactly one ASI exit and its CR3 write', () => {
    // google-asi-2025: guest memory is __GFP_SENSITIVE, absent from the KVM class space.
    const s = parseScenario(TWO_VMS('asi=google-asi-2025'), 'unit.yaml');
    const w = buildWorld(s, 0);
    const e = new Engine(w, { targets: null, endCycles: 1 });
    const asi = w.spaces.asi!;
    const victim = w.tasks[0];
    const t = victim.thread;
    e.tr.switchTask(t, null, victim);
    e.tr.vmEnter(t, victim, 0);
    expect(asi.inRestricted(t)).toBe(true);
    const space = asi.spaces[w.spaces.asiSpace[victim.tenant.index]];
    const mmu = w.threads.mmus[t];
    expect(mmu.cpu.rootAddr).toBe(space.root);
    // A plan with one touch: the fresh backing page (64 lines, written), from the EPT_VIOLATION entry.
    const fp = loadFootprintTable().entries.get('vm-exit:EPT_VIOLATION')!;
    const only = { ...fp, text: { ...fp.text, pages: [] }, data: fp.data.filter((d) => d.kind === 'fresh-page') };
    const plan = buildPlan(w, only, victim.tenant, victim.tenant, t, e.reasons);
    const ref = victim.tenant.objs.get('fresh-page')![0];
    const u = BigInt.asUintN(64, ref.va);
    const pr = new Probe();
    // Independent walks: the restricted root does not map the page, the full root does.
    expect(probe(w.sys.mem, space.root, w.sys.levels, Number(u & 0xffffffffn), Number(u >> 32n), pr)).toBe(false);
    expect(probe(w.sys.mem, space.fullRoot, w.sys.levels, Number(u & 0xffffffffn), Number(u >> 32n), pr)).toBe(true);
    const before = { exits: asi.counters.exits, cr3: e.meter.counts.cr3Writes, faults: asi.counters.faultsRetry };
    e.toucher.run(t, plan, victim.rng);
    expect(asi.counters.exits - before.exits).toBe(1);
    expect(asi.counters.faultsRetry - before.faults).toBe(1);
    expect(e.meter.counts.cr3Writes - before.cr3).toBe(1); // asi_exit(): one write of the unrestricted CR3
    expect(mmu.cpu.rootAddr).toBe(space.fullRoot);
    expect(e.meter.counts.unmapped).toBe(0);
    const r = e.reasons;
    const hits = r.counts.slice(0, r.key.length).reduce((a, b) => a + b, 0);
    expect(hits).toBe(1);
  });

  it('every cycle of a workload task\'s elapsed time is in one of its rows (run-queue waits, forced idle, stuns included)', () => {
    const s = defaultScenario();
    for (const name of ['none', 'nosmt', 'core-sched', 'asi-2025-stun', 'asi-2025-cs']) {
      const { world, engine } = runEntry(s, s.isolation.findIndex((x) => x.name === name), null);
      const m = engine.meter;
      for (const t of world.tasks) {
        if (t.attacker !== null) continue;
        let rows = 0;
        for (let k = 0; k < N_EK; k++) rows += m.byKind[t.id * N_EK + k];
        expect([name, t.tenant.spec.name, Math.abs(rows - m.finish[t.id]) <= 1e-6 * m.finish[t.id]]).toEqual([name, t.tenant.spec.name, true]);
      }
    }
  }, 60_000);
});
