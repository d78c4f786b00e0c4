/**
 * More vCPUs than hardware threads (sim/engine.ts scheduling, sim/guest-lock.ts): the host
 * time-shares a thread among its tasks, a halted task gives its CPU away, a timer idle ends on
 * the task's own timeline, a VM's lock can be held by a descheduled vCPU, and under core
 * scheduling an idle sibling holds no cookie. Each case checks a conservation law or a bound the
 * mechanism must keep, computed from the run's own per-task rows, not a number typed in.
 */
import { describe, expect, it } from 'vitest';
import { parseScenario } from '../../src/scenario/load.ts';
import { runEntry } from '../../src/sim/run.ts';
import { EK, N_EK } from '../../src/sim/thread.ts';
import { PLE_WINDOW } from '../../src/sim/guest-lock.ts';
import { Engine } from '../../src/sim/engine.ts';
import { buildWorld } from '../../src/sim/world.ts';

const ON_CPU = ['vm-exit', 'context-switch', 'guest-run', 'lock-spin', 'stun-wait'] as const;

function run(yaml: string, iso = 0) {
  const s = parseScenario(yaml, 'overcommit.yaml');
  const { world, engine } = runEntry(s, iso, null);
  const row = (task: number, kind: keyof typeof EK) => engine.meter.byKind[task * N_EK + EK[kind]];
  const onCpu = (task: number) => ON_CPU.reduce((a, k) => a + row(task, k), 0);
  return { world, engine, row, onCpu, finish: (task: number) => engine.meter.finish[task] };
}

const cpuBound = '[{ event: guest-run, cycles: 40000, weight: 1 }]';
/** Runs 10% of the time: 40,000 cycles of guest code, then 360,000 halted. */
const tenPercent = '[{ event: guest-run, cycles: 40000, weight: 1 }, { event: idle, cycles: 360000, weight: 1 }]';

describe('a thread shared by several tasks', () => {
  it('is never idle while a task can run: a halted vCPU gives its CPU away', () => {
    // A is always runnable; B (background) runs 10% and halts 90%. If B's idle held the CPU,
    // A would finish its work later by B's idle time; it finishes at the sum of what ran.
    const r = run(`
events: 300
machine: { cpu: skylake-sp, cores: 1, threads_per_core: 1, ram: 1GiB }
tenants: [{ name: a, kind: vm, memory: 16MiB }, { name: b, kind: vm, memory: 16MiB }]
workload:
  - { thread: 0, tenant: a, mix: ${cpuBound} }
  - { thread: 0, tenant: b, background: true, mix: ${tenPercent} }
isolation: [{ name: off, cmdline: "" }]
`);
    const busy = r.onCpu(0) + r.onCpu(1);
    expect(r.row(1, 'idle')).toBeGreaterThan(r.finish(0) / 2); // B was halted most of the run
    expect(Math.abs(r.finish(0) - busy) / r.finish(0)).toBeLessThan(0.02);
  });

  it('with no guest lock, overcommit loses only the time slices: the work of both, their switches, nothing waited on', () => {
    const r = run(`
events: 300
machine: { cpu: skylake-sp, cores: 1, threads_per_core: 1, ram: 1GiB }
tenants: [{ name: v, kind: vm, vcpus: 2, memory: 16MiB }]
workload:
  - { thread: 0, tenant: v, mix: ${cpuBound} }
  - { thread: 0, tenant: v, mix: ${cpuBound} }
isolation: [{ name: off, cmdline: "" }]
`);
    const last = Math.max(r.finish(0), r.finish(1));
    expect(r.row(0, 'lock-spin') + r.row(1, 'lock-spin') + r.row(0, 'lock-wait') + r.row(1, 'lock-wait')).toBe(0);
    expect(r.engine.meter.counts.contextSwitches).toBeGreaterThan(10); // they did time-share
    expect(Math.abs(last - (r.onCpu(0) + r.onCpu(1))) / last).toBeLessThan(0.02);
    // each task's rows add up to its elapsed time (running, or waiting for the other's slice)
    for (const t of [0, 1]) expect(Math.abs(r.onCpu(t) + r.row(t, 'sched-wait') - r.finish(t)) / r.finish(t)).toBeLessThan(0.02);
  });

  it('a timer idle is shortened by the time the task waited for a CPU; an event idle is not', () => {
    const yaml = (wake: string) => `
events: 200
machine: { cpu: skylake-sp, cores: 1, threads_per_core: 1, ram: 1GiB }
tenants: [{ name: p, kind: vm, memory: 16MiB }, { name: hog, kind: vm, memory: 16MiB }]
workload:
  - { thread: 0, tenant: p, mix: [{ event: guest-run, cycles: 40000, weight: 1 }, { event: idle, cycles: 900000, weight: 1, wake: ${wake} }] }
  - { thread: 0, tenant: hog, background: true, mix: ${cpuBound} }
isolation: [{ name: off, cmdline: "" }]
`;
    const ev = run(yaml('event'));
    const tm = run(yaml('timer'));
    // the same events (the same draws): the event idles add up to their nominal cycles ...
    expect(tm.engine.meter.eventsDone[0]).toBe(ev.engine.meter.eventsDone[0]);
    const nominal = ev.row(0, 'idle');
    // ... and the timer ones to those less the task's waits (none of its waits here outlasts an idle)
    expect(tm.row(0, 'sched-wait')).toBeGreaterThan(nominal * 0.1); // it did wait, enough to tell the two apart
    expect(Math.abs(tm.row(0, 'idle') + tm.row(0, 'sched-wait') - nominal) / nominal).toBeLessThan(0.05);
    expect(tm.finish(0)).toBeLessThan(ev.finish(0));
  });
});

describe('periodic background tasks', () => {
  it('start at spread phases of their period, the same in every configuration', () => {
    const period = 40000 + 360000; // one slice and one timer idle, drawn alike: the mean time between two timer idles
    const s = parseScenario(`
events: 10
machine: { cpu: skylake-sp, cores: 1, threads_per_core: 2, ram: 1GiB }
tenants: [{ name: m, kind: vm, memory: 16MiB }, { name: n, kind: vm, vcpus: 4, memory: 16MiB }]
workload:
  - { thread: 0, tenant: m, mix: ${cpuBound} }
  - { thread: 0, tenant: n, background: true, mix: &p [{ event: guest-run, cycles: 40000, weight: 1 }, { event: idle, cycles: 360000, weight: 1, wake: timer }] }
  - { thread: 0, tenant: n, background: true, mix: *p }
  - { thread: 1, tenant: n, background: true, mix: *p }
  - { thread: 1, tenant: n, background: true, mix: *p }
isolation: [{ name: on, cmdline: "" }, { name: off, cmdline: "nosmt" }]
`, 'phase.yaml');
    const phases = (iso: number) => Array.from(new Engine(buildWorld(s, iso), { targets: null, endCycles: 1 }).wakeAt);
    const a = phases(0);
    expect(a[0]).toBe(0); // the measured task starts the measurement
    const bg = a.slice(1);
    expect(new Set(bg).size).toBe(bg.length); // spread, not all at a burst's start
    for (const x of bg) { expect(x).toBeGreaterThan(0); expect(x).toBeLessThan(period * 1.1); }
    expect(phases(1)).toEqual(a); // nosmt moved thread 1's tasks, not their phases
  });
});

describe('guest locks (lock-holder preemption)', () => {
  // thread 1 starts with its noise task: the two vCPUs run in opposite slices, so one runs while the other is out
  const yaml = (fraction: number, wait: string) => `
events: 300
machine: { cpu: skylake-sp, cores: 2, threads_per_core: 1, ram: 1GiB }
tenants:
  - { name: v, kind: vm, vcpus: 2, memory: 16MiB, lock_fraction: ${fraction}, lock_wait: ${wait} }
  - { name: n0, kind: vm, memory: 16MiB }
  - { name: n1, kind: vm, memory: 16MiB }
workload:
  - { thread: 0, tenant: v, mix: ${cpuBound} }
  - { thread: 1, tenant: n1, background: true, mix: ${cpuBound} }
  - { thread: 1, tenant: v, mix: ${cpuBound} }
  - { thread: 0, tenant: n0, background: true, mix: ${cpuBound} }
isolation: [{ name: off, cmdline: "" }]
`;
  const locks = (e: Engine) => e.locks!;
  const V = [0, 2]; // the VM's two vCPUs (tasks in workload order)
  it('a vCPU reaching the lock of a switched-out holder halts until the holder runs and frees it (block)', () => {
    const free = run(yaml(0, 'block'));
    const held = run(yaml(0.5, 'block'));
    expect(free.engine.locks).toBeNull();
    expect(locks(held.engine).waits).toBeGreaterThan(0);
    expect(V.map((t) => held.world.tasks[t].tenant.spec.name)).toEqual(['v', 'v']);
    const waited = V.reduce((a, t) => a + held.row(t, 'lock-wait'), 0);
    expect(waited).toBeGreaterThan(0);
    // the waits are time the VM lost: it finishes later than without the lock ...
    const fin = (r: typeof free) => V.reduce((a, t) => a + r.finish(t), 0);
    expect(fin(held)).toBeGreaterThan(fin(free));
    // ... and each vCPU's rows still add up to its elapsed time (running, waiting for its turn, halted on the lock)
    for (const t of V) expect(Math.abs(held.onCpu(t) + held.row(t, 'sched-wait') + held.row(t, 'lock-wait') - held.finish(t)) / held.finish(t)).toBeLessThan(0.02);
  });
  it('a spinning vCPU takes PLE exits of at least ple_window cycles each (spin)', () => {
    const r = run(yaml(0.5, 'spin'));
    const l = locks(r.engine);
    expect(l.spins).toBeGreaterThan(0);
    const spun = V.reduce((a, t) => a + r.row(t, 'lock-spin'), 0);
    expect(spun).toBeGreaterThanOrEqual(l.spins * PLE_WINDOW);
    // the spins are the VM's time lost: it finishes later than without the lock
    const free = run(yaml(0, 'spin'));
    const fin = (x: typeof r) => V.reduce((a, t) => a + x.finish(t), 0);
    expect(fin(r)).toBeGreaterThan(fin(free));
  });
});

describe('core scheduling with idle siblings', () => {
  it('a sibling forced idle runs as soon as the owning thread idles (an idle sibling holds no cookie)', () => {
    // A (thread 0) runs 10% of the time; B (thread 1, another cookie) always. Windows alternate
    // between the two cookies, but while A idles its window is B's too: B is forced idle only
    // about while A runs, not half the time.
    const r = run(`
events: 300
machine: { cpu: skylake-sp, cores: 1, threads_per_core: 2, ram: 1GiB }
tenants: [{ name: a, kind: vm, memory: 16MiB }, { name: b, kind: vm, memory: 16MiB }]
workload:
  - { thread: 0, tenant: a, background: true, mix: ${tenPercent} }
  - { thread: 1, tenant: b, mix: ${cpuBound} }
isolation: [{ name: cs, cmdline: "sched_core=1" }]
`);
    const forced = r.row(1, 'forced-idle');
    const aRuns = r.onCpu(0) / (r.onCpu(0) + r.row(0, 'idle'));
    expect(forced).toBeGreaterThan(0); // A's windows did force B out
    expect(forced / r.finish(1)).toBeLessThan(aRuns * 2);
  });
});

describe('a run that cannot finish', () => {
  // Measured vCPU and a background vCPU of one VM share a thread; with every slice ending inside
  // the lock, the holder is always switched out holding it when the measured vCPU runs, which
  // spins, yields to it, and finds it held again: no measured event ever completes. The schema
  // refuses lock_fraction 1; set past it, the engine must stop with a livelock error, not hang
  // (before the check counted only measured work, the background's events looked like progress).
  const text = (f: number) => `
events: 300
machine: { cpu: skylake-sp, cores: 1, threads_per_core: 2, ram: 2GiB }
tenants:
  - { name: g, kind: vm, vcpus: 2, memory: 16MiB, working_set: { bytes: 4KiB }, lock_fraction: ${f}, lock_wait: spin }
  - { name: p, kind: process }
workload:
  - { thread: 0, tenant: g, mix: [{ event: guest-run, cycles: 2000, weight: 1 }, { event: vm-exit, reason: HLT, weight: 1 }] }
  - { thread: 0, tenant: g, background: true, mix: [{ event: guest-run, cycles: 8000, weight: 1 }] }
  - { thread: 1, tenant: p, background: true, mix: [{ event: user-compute, cycles: 120000, weight: 1 }] }
isolation: [{ name: off, cmdline: "mitigations=off" }]
`;
  /** An engine on isolation entry `iso` of a parsed scenario, each measured task to the file's event count, with the checks' windows `o`. */
  const engineOf = (sc: ReturnType<typeof parseScenario>, o: { livelockCheckSteps?: number; deadlockCheckSteps?: number }, iso = 0) => {
    const world = buildWorld(sc, iso);
    const targets = Int32Array.from(world.tasks, (t) => (t.background || t.attacker !== null ? 0 : (sc.stop as { count: number }).count));
    return new Engine(world, { targets, endCycles: Infinity, ...o });
  };
  const engineOn = (yaml: string, o: { livelockCheckSteps?: number; deadlockCheckSteps?: number }) => engineOf(parseScenario(yaml, 'progress.yaml'), o);
  it('lock_fraction 1 is refused with the field named', () => {
    expect(() => parseScenario(text(1), 'lock.yaml')).toThrow(/lock\.yaml:5:\d+: field tenants\[0\]\.lock_fraction: expected a number below 1/);
  });
  it('a livelock ends in an error naming it', () => {
    const s = parseScenario(text(0.5), 'lock.yaml');
    (s.tenants[0] as { lockFraction: number }).lockFraction = 1;
    // the production window (100,000 measured steps) takes ~20 s here: the same check, a smaller window
    expect(() => engineOf(s, { livelockCheckSteps: 2000 }).run()).toThrow(/livelock/);
  });
  it('just below 1 the same file finishes', () => {
    const r = run(text(0.9));
    expect(r.engine.meter.eventsDone[0]).toBe(300);
  });

  const busyHost = (n: number, balance: boolean, measured: string) => `
events: 3
machine: { cpu: skylake-sp, cores: ${n}, threads_per_core: 1, ram: 4GiB, load_balance: ${balance} }
tenants: [{ name: m, kind: vm, memory: 16MiB }, { name: n, kind: vm, vcpus: ${n - 1}, memory: 16MiB }]
workload:
  - { thread: 0, tenant: m, mix: ${measured} }
${Array.from({ length: n - 1 }, (_, i) => `  - { thread: ${i + 1}, tenant: n, background: true, mix: [{ event: guest-run, cycles: 2000, weight: 1 }, { event: idle, cycles: 2000, weight: 1 }] }`).join('\n')}
isolation: [{ name: off, cmdline: "mitigations=off" }]
`;
  it('a long measured event while background threads take many steps is no deadlock', () => {
    // the measured VM idles 10M cycles on a thread of its own (no wake-up time: it holds the CPU)
    // while 7 background vCPUs take ~50,000 steps; the window of 5,000 passes ten times
    const e = engineOn(busyHost(8, false, '[{ event: guest-run, cycles: 40000, weight: 1 }, { event: idle, cycles: 10000000, weight: 1 }]'), { deadlockCheckSteps: 5000 });
    expect(() => e.run()).not.toThrow();
    expect(e.meter.eventsDone[0]).toBe(3);
  });
  it('a CPU woken for one step while its measured task sleeps is no livelock', () => {
    // with load balancing each background idle kicks the idle CPUs: thread 0 wakes for a step
    // while its task sleeps 8M cycles; those steps are not the task running
    const e = engineOn(busyHost(4, true, '[{ event: guest-run, cycles: 40000, weight: 1 }, { event: idle, cycles: 8000000, weight: 1 }]'), { livelockCheckSteps: 200 });
    expect(() => e.run()).not.toThrow();
    expect(e.meter.eventsDone[0]).toBe(3);
  });
  it('measured work that nothing can free is a deadlock, named as one', () => {
    const e = engineOn(busyHost(2, false, '[{ event: guest-run, cycles: 40000, weight: 1 }]'), { deadlockCheckSteps: 5000 });
    e.wakeAt[0] = Infinity; // halted without a wake-up time, as on a lock nobody frees
    expect(() => e.run()).toThrow(/deadlock/);
  });
  it('a stun ends when its thread switches to another task: a vCPU that finished mid-exit leaves no sibling stunned', () => {
    // vCPU a shares thread 0 with a background host process; once a is done, thread 0 runs the
    // process for good; b on the sibling must still finish (it was stunned for ever before)
    const text = `
events: 300
machine: { cpu: skylake-sp, cores: 1, threads_per_core: 2, ram: 2GiB }
tenants: [{ name: a, kind: vm, memory: 16MiB }, { name: b, kind: vm, memory: 16MiB }, { name: p, kind: process }]
workload:
  - { thread: 0, tenant: a, mix: [{ event: guest-run, cycles: 2000, weight: 1 }, { event: vm-exit, reason: HLT, weight: 1 }] }
  - { thread: 0, tenant: p, background: true, mix: [{ event: syscall, name: getppid }] }
  - { thread: 1, tenant: b, mix: [{ event: guest-run, cycles: 40000, weight: 1 }, { event: vm-exit, reason: CPUID, weight: 1 }] }
isolation: [{ name: asi19, cmdline: "asi=kvm-asi-2019", stun: true }, { name: g25, cmdline: "asi=google-asi-2025", stun: true }]
`;
    const sc = parseScenario(text, 'stun.yaml');
    for (const iso of [0, 1]) {
      const e = engineOf(sc, { livelockCheckSteps: 2000 }, iso).run();
      expect([iso, e.meter.eventsDone[2]]).toEqual([iso, 300]);
      expect(e.meter.byKind[2 * N_EK + EK['stun-wait']]).toBeLessThan(0.5 * e.meter.finish[2]);
    }
  });
});
