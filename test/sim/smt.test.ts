/**
 * SMT throughput sharing (sim/smt.ts): two busy hyperthreads of a core together retire the
 * profile's smtSpeedup times one thread's work (Marr et al., Intel Technology Journal 2002, as
 * profiles.ts cites), an idle or absent sibling slows nothing, and nosmt keeps 1/smtSpeedup of a
 * CPU-bound pair's throughput. Each test fails if the stretch is not applied, applied with an
 * idle sibling, or applied to the wrong thread.
 */
import { describe, expect, it } from 'vitest';
import { parseScenario } from '../../src/scenario/load.ts';
import { runScenario } from '../../src/sim/run.ts';
import { getProfile } from '../../src/uarch/profiles.ts';
import { buildWorld } from '../../src/sim/world.ts';
import { Engine } from '../../src/sim/engine.ts';

const cpuBound = (threads: number[], extra = '', iso = '[{ name: on, cmdline: "mitigations=off" }]') => `
events: 400
machine: { cpu: skylake-sp, cores: 1, threads_per_core: 2, ram: 1GiB }
tenants: [{ name: a, kind: process }, { name: b, kind: process }]
workload:
${threads.map((t, i) => `  - { thread: ${t}, tenant: ${i === 0 ? 'a' : 'b'}, mix: [{ event: user-compute, cycles: 10000 }${extra}] }`).join('\n')}
isolation: ${iso}
`;

/** Per mitigation set: all tasks' cycles, and those of their user-compute events (the work). */
function finishes(yaml: string) {
  const r = runScenario(parseScenario(yaml, 'smt.yaml'));
  return r.mitigations.map((m) => ({ name: m.name, cycles: m.costs.cycles, work: m.costs.by_kind['user-compute'] }));
}

describe('SMT throughput sharing', () => {
  const speedup = getProfile('skylake-sp').smtSpeedup;
  it('the profile figure is sourced and between one and two threads', () => {
    expect(speedup).toBeGreaterThan(1);
    expect(speedup).toBeLessThan(2);
    expect(getProfile('skylake-sp').sources.smtSpeedup).toMatch(/Intel Technology Journal/);
    expect(getProfile('qemu-max').smtSpeedup).toBe(1);
  });
  it('two busy siblings each run at smtSpeedup / 2 of a lone thread', () => {
    const alone = finishes(cpuBound([0]))[0].work;
    const both = finishes(cpuBound([0, 1]))[0].work;
    // Same work per task (400 × 10,000 cycles); with a busy sibling each takes 2 / speedup as long
    // (both = 2 tasks × alone × 2 / speedup), so the pair's throughput is speedup × one thread's.
    expect((4 * alone) / both).toBeCloseTo(speedup, 1);
  });
  it('a sibling that idles slows nothing', () => {
    const alone = finishes(cpuBound([0]))[0].work;
    // The second task only idles (HLT): its thread is idle nearly all the time.
    const idleSib = finishes(cpuBound([0, 1]).replace(/(tenant: b, mix: \[)[^\]]*\]/, '$1{ event: idle, cycles: 10000 }]'))[0].work;
    expect(idleSib / alone).toBeLessThan(1.05);
  });
  it('nosmt keeps 1 / smtSpeedup of a CPU-bound pair (not half)', () => {
    const [on, off] = finishes(cpuBound([0, 1], '', '[{ name: on, cmdline: "mitigations=off" }, { name: nosmt, cmdline: "mitigations=off nosmt" }]'));
    const ratio = on.cycles / off.cycles;
    expect(ratio).toBeGreaterThan(1 / speedup - 0.05);
    expect(ratio).toBeLessThan(1 / speedup + 0.05);
  });

  /**
   * Core scheduling lets two cookies share a core only while one finishes work it began before the
   * window turned; the stretch the engine charges must fit in the time the two threads' work really
   * overlapped (their busy intervals, taken from the run's own timeline). Deciding "sibling busy"
   * once at an event's start and stretching the whole event charged ~15,000 cycles at a window turn
   * where the two overlapped for a few hundred.
   */
  it('under core scheduling the stretch charged fits in the time the two cookies overlapped', () => {
    const yaml = cpuBound([0, 1], '', '[{ name: cs, cmdline: "mitigations=off sched_core=1" }]').replace(/cycles: 10000/g, 'cycles: 25000');
    const w = buildWorld(parseScenario(yaml, 'smt-cs.yaml'), 0);
    const e = new Engine(w, { targets: Int32Array.from(w.tasks, () => 400), endCycles: Infinity });
    const smt = (e as unknown as { smt: { wall(t: number, c: number): number } }).smt;
    const wall = smt.wall.bind(smt);
    const busy: [number, number][][] = [[], []];
    let charged = 0;
    smt.wall = (t, c) => {
      const r = wall(t, c);
      if (r > 0) busy[t].push([e.th.clock[t], e.th.clock[t] + r]);
      charged += r - c;
      return r;
    };
    e.run();
    let overlap = 0;
    for (let i = 0, j = 0; i < busy[0].length && j < busy[1].length;) {
      const [a0, a1] = busy[0][i], [b0, b1] = busy[1][j];
      overlap += Math.max(0, Math.min(a1, b1) - Math.max(a0, b0));
      if (a1 < b1) i++; else j++;
    }
    expect(charged).toBeGreaterThan(0); // windows do turn under running work
    expect(charged).toBeLessThanOrEqual(overlap * (1 - speedup / 2) + 1);
  });
});
