/**
 * Load balancing (scenario machine.load_balance, sim/balance.ts): a task waiting behind another
 * moves to an idle thread, within its tenant's pin, not while it is cache hot (except to its
 * sibling), and under core scheduling not next to another cookie. Each case compares a run with
 * its twin that differs in the one thing the rule looks at, and checks a law the scheduler must
 * keep (rows that add up to elapsed time, work conserved), not a number typed in.
 */
import { describe, expect, it } from 'vitest';
import { parseScenario } from '../../src/scenario/load.ts';
import { runEntry } from '../../src/sim/run.ts';
import { EK, N_EK } from '../../src/sim/thread.ts';

const ON_CPU = ['vm-exit', 'context-switch', 'guest-run', 'lock-spin', 'stun-wait', 'idle'] as const;

function run(yaml: string, iso = 0) {
  const s = parseScenario(yaml, 'balance.yaml');
  const { world, engine } = runEntry(s, iso, null);
  const row = (task: number, kind: keyof typeof EK) => engine.meter.byKind[task * N_EK + EK[kind]];
  const onCpu = (task: number) => ON_CPU.reduce((a, k) => a + row(task, k), 0);
  return { world, engine, row, onCpu, finish: (task: number) => engine.meter.finish[task], migrations: engine.meter.counts.migrations };
}

const cpuBound = (cycles = 40000) => `[{ event: guest-run, cycles: ${cycles}, weight: 1 }]`;

const twoOnOne = (balance: boolean, pin = '[]') => `
events: 300
machine: { cpu: skylake-sp, cores: 2, threads_per_core: 1, ram: 1GiB, load_balance: ${balance} }
tenants: [{ name: v, kind: vm, vcpus: 2, memory: 16MiB, pin: ${pin} }]
workload:
  - { thread: 0, tenant: v, mix: ${cpuBound()} }
  - { thread: 0, tenant: v, mix: ${cpuBound()} }
isolation: [{ name: off, cmdline: "" }]
`;

describe('load balancing', () => {
  it('a task placed behind another moves to the idle thread: nothing waits, each task its own elapsed time', () => {
    const off = run(twoOnOne(false));
    const on = run(twoOnOne(true));
    const waitedOff = off.row(0, 'sched-wait') + off.row(1, 'sched-wait');
    expect(waitedOff).toBeGreaterThan(0.8 * Math.min(off.finish(0), off.finish(1))); // time-shared, half the run each
    expect(on.migrations).toBe(1);
    expect(on.world.tasks[1].thread).toBe(1);
    for (const t of [0, 1]) {
      expect(on.row(t, 'sched-wait')).toBeLessThan(0.01 * on.finish(t));
      expect(Math.abs(on.onCpu(t) + on.row(t, 'sched-wait') - on.finish(t)) / on.finish(t)).toBeLessThan(0.02);
    }
    expect(Math.max(on.finish(0), on.finish(1))).toBeLessThan(0.6 * Math.max(off.finish(0), off.finish(1)));
  });

  it("keeps a task within its tenant's pin (cpus_allowed)", () => {
    const pinned = run(twoOnOne(true, '[0]'));
    expect(pinned.migrations).toBe(0);
    expect(pinned.row(0, 'sched-wait') + pinned.row(1, 'sched-wait')).toBeGreaterThan(0.8 * Math.min(pinned.finish(0), pinned.finish(1)));
  });

  it('is work conserving: three tasks on two threads finish in about half their work, not two thirds', () => {
    const yaml = (balance: boolean) => `
events: 300
machine: { cpu: skylake-sp, cores: 2, threads_per_core: 1, ram: 1GiB, load_balance: ${balance} }
tenants: [{ name: v, kind: vm, vcpus: 3, memory: 16MiB }]
workload:
  - { thread: 0, tenant: v, mix: ${cpuBound()} }
  - { thread: 0, tenant: v, mix: ${cpuBound()} }
  - { thread: 1, tenant: v, mix: ${cpuBound()} }
isolation: [{ name: off, cmdline: "" }]
`;
    for (const balance of [false, true]) {
      const r = run(yaml(balance));
      const work = r.onCpu(0) + r.onCpu(1) + r.onCpu(2);
      const last = Math.max(r.finish(0), r.finish(1), r.finish(2));
      // pinned, thread 0 carries two thirds of the work; balanced, the idle thread takes the waiting
      // task, which time-sharing keeps cache hot, once it has failed to balance long enough
      if (balance) expect(last).toBeLessThan(work / 2 + 1.2 * r.engine.balance!.hotEscape);
      else expect(last).toBeGreaterThan(0.95 * (2 * work) / 3);
    }
  });

  it('leaves a cache-hot task to time-share before taking it to another core, not to its sibling', () => {
    // a and b time-share thread 0, so the one waiting ran within sysctl_sched_migration_cost; c runs
    // a tenth as long on thread x, then x idles and takes the waiting one of a, b. Thread 1 is
    // thread 0's sibling; thread 2 is on the other core.
    const yaml = (x: number) => `
events: 2000
machine: { cpu: skylake-sp, cores: 2, threads_per_core: 2, ram: 1GiB, load_balance: true }
tenants: [{ name: v, kind: vm, vcpus: 2, memory: 16MiB, pin: [0, ${x}] }, { name: c, kind: vm, memory: 16MiB, pin: [${x}] }]
workload:
  - { thread: 0, tenant: v, mix: ${cpuBound()} }
  - { thread: 0, tenant: v, mix: ${cpuBound()} }
  - { thread: ${x}, tenant: c, mix: ${cpuBound(4000)} }
isolation: [{ name: off, cmdline: "" }]
`;
    const sib = run(yaml(1));
    const far = run(yaml(2));
    expect(sib.migrations).toBeGreaterThan(0);
    expect(far.migrations).toBeGreaterThan(0);
    const waited = (r: ReturnType<typeof run>) => r.row(0, 'sched-wait') + r.row(1, 'sched-wait');
    // the other core's idle thread leaves the hot task until its balancing has failed long enough:
    // that much more waiting in all (one of the two waits at any time)
    const escape = far.engine.balance!.hotEscape;
    expect(waited(far) - waited(sib)).toBeGreaterThan(0.7 * escape);
    expect(waited(far) - waited(sib)).toBeLessThan(1.3 * escape);
  });

  it('under core scheduling does not move a task next to a sibling running another cookie', () => {
    const yaml = (cmdline: string) => `
events: 200
machine: { cpu: skylake-sp, cores: 2, threads_per_core: 2, ram: 1GiB, load_balance: true }
tenants:
  - { name: a, kind: vm, memory: 16MiB, pin: [0] }
  - { name: b, kind: vm, vcpus: 2, memory: 16MiB, pin: [1, 2] }
  - { name: c, kind: vm, memory: 16MiB, pin: [3] }
workload:
  - { thread: 0, tenant: a, background: true, mix: ${cpuBound()} }
  - { thread: 2, tenant: b, mix: ${cpuBound()} }
  - { thread: 2, tenant: b, mix: ${cpuBound()} }
  - { thread: 3, tenant: c, mix: ${cpuBound()} }
isolation: [{ name: cs, cmdline: "${cmdline}" }]
`;
    const plain = run(yaml(''));
    const cs = run(yaml('sched_core=1'));
    expect(plain.migrations).toBe(1); // thread 1 idles beside a: b's second vCPU goes there
    expect(cs.migrations).toBe(0); // thread 1's core runs a's cookie all along: b's vCPU stays queued
    expect(cs.row(1, 'sched-wait') + cs.row(2, 'sched-wait')).toBeGreaterThan(10 * (plain.row(1, 'sched-wait') + plain.row(2, 'sched-wait')));
  });
});
