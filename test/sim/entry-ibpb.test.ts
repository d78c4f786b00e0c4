/**
 * IBPB on kernel entry (X86_FEATURE_ENTRY_IBPB: retbleed=ibpb, spec_rstack_overflow=ibpb;
 * arch/x86/kernel/cpu/bugs.c, UNTRAIN_RET in entry_64.S): one barrier a syscall on a CPU with
 * the bug, none on one without or under mitigations=off, and the handler that follows runs untrained.
 */
import { describe, expect, it } from 'vitest';
import { parseScenario } from '../../src/scenario/load.ts';
import { runScenario } from '../../src/sim/run.ts';
import { parseMitigationCmdline, CmdlineError } from '../../src/mitigations/cmdline.ts';
import { selectMitigations } from '../../src/mitigations/select.ts';
import { getProfile } from '../../src/uarch/profiles.ts';
import { getCostModel } from '../../src/sim/costs.ts';
import { loadFootprintTable } from '../../src/sim/footprints.ts';
import { buildWorld } from '../../src/sim/world.ts';
import { Engine } from '../../src/sim/engine.ts';
import { EK } from '../../src/sim/thread.ts';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const N = 300;
const loop = (cpu: string, cmdlines: string[]) => runScenario(parseScenario(`
events: ${N}
machine: { cpu: ${cpu}, cores: 1, threads_per_core: 1, ram: 1GiB }
tenants: [{ name: p, kind: process }]
workload: [{ thread: 0, tenant: p, mix: [{ event: syscall, name: getppid }] }]
isolation:
${cmdlines.map((c, i) => `  - { name: s${i}, cmdline: "${c}" }`).join('\n')}
`, 'entry-ibpb.yaml')).mitigations;

describe('IBPB on kernel entry', () => {
  const sel = (cpu: string, cmd: string) => selectMitigations(getProfile(cpu), parseMitigationCmdline(cmd)).entryIbpb;
  it('is selected only on a CPU with the bug, by the option that mitigates it, and not under mitigations=off', () => {
    expect(sel('zen3', 'spec_rstack_overflow=ibpb')).toBe(true); // Zen 3: X86_BUG_SRSO (AMD-SB-7005)
    expect(sel('zen3', 'retbleed=ibpb')).toBe(false); // Zen 3 is not affected by retbleed (BTC_NO)
    expect(sel('zen3', '')).toBe(false); // the default is safe RET, a return thunk
    expect(sel('zen3', 'spec_rstack_overflow=ibpb mitigations=off')).toBe(false);
    expect(sel('sapphire-rapids', 'retbleed=ibpb spec_rstack_overflow=ibpb')).toBe(false);
    expect(sel('skylake-sp', 'retbleed=auto,ibpb,nosmt')).toBe(true); // Skylake: X86_BUG_RETBLEED (RSBA); the last mode wins
    expect(sel('skylake-sp', 'retbleed=ibpb,unret')).toBe(false);
    expect(() => parseMitigationCmdline('retbleed=stuff')).toThrow(CmdlineError);
    expect(() => parseMitigationCmdline('spec_rstack_overflow=on')).toThrow(/spec_rstack_overflow=on: unknown value/);
  });

  it('issues one barrier a syscall and leaves the handler untrained: the loop pays IBPB + the untrained path', () => {
    const [plain, ibpb] = loop('zen3', ['', 'spec_rstack_overflow=ibpb']);
    expect(plain.costs.counts.ibpbs).toBe(0);
    expect(ibpb.costs.counts.ibpbs).toBe(N);
    expect([plain.state.entry_ibpb, ibpb.state.entry_ibpb]).toEqual([false, true]); // the run's state says which
    expect(ibpb.costs.counts.kernel_insns_warm).toBe(0);
    const p = getCostModel('zen3').params;
    const insns = loadFootprintTable().entries.get('syscall:getppid')!.insns.count;
    expect(plain.costs.counts.kernel_insns_warm).toBe(insns * (N - 1)); // all but the first call warm
    const perCall = (ibpb.costs.cycles - plain.costs.cycles) / N;
    // The first call is cold in both runs; every later one untrained with the barrier, warm without.
    const expected = p.ibpb.cycles + insns * (p.kernelCyclesPerInsnUntrained.cycles - p.kernelCyclesPerInsnWarm.cycles) * (N - 1) / N;
    expect(Math.abs(perCall - expected)).toBeLessThan(2);
  });

  /**
   * Every barrier is attributed to where the engine issued it: in an event of the mix (begin()),
   * or at a switch away from a task that was in user mode (preemption, blocking, core scheduling's
   * forced idle). An event from user space gets one whatever its kind; an interrupt taken from
   * idle gets one only if it is an NMI (paranoid_entry), none for a timer (error_entry's kernel path).
   */
  const attributed = (cpu: string, cmdline: string, coreSched: boolean) => {
    const scenario = parseScenario(`
seed: 5
machine: { cpu: ${cpu}, cores: 1, threads_per_core: ${coreSched ? 2 : 1}, ram: 1GiB }
tenants: [{ name: a, kind: process }, { name: b, kind: process }]
workload:
  - { thread: 0, tenant: a, mix: [{ event: syscall, name: getppid, weight: 3 }, { event: page-fault }, { event: timer-interrupt }, { event: nmi }, { event: user-compute, cycles: 3000, weight: 3 }] }
  - { thread: ${coreSched ? 1 : 0}, tenant: b, mix: [{ event: syscall, name: read, bytes: 4096 }, { event: user-compute, cycles: 20000, weight: 4 }, { event: context-switch }, { event: timer-interrupt }, { event: nmi }] }
isolation: [{ name: s, cmdline: "${cmdline}" }]
`, 'attributed.yaml');
    const world = buildWorld(scenario, 0);
    const e = new Engine(world, { targets: null, endCycles: 20_000_000 });
    const byEvent: { kind: number; fromIdle: boolean; how: number; barriers: number }[] = [];
    let barriers = 0;
    const barrier = e.tr.entryBarrier.bind(e.tr);
    e.tr.entryBarrier = (t: number, fromGuest: boolean) => { const n = e.meter.counts.ibpbs; barrier(t, fromGuest); barriers += e.meter.counts.ibpbs - n; };
    const begin = e.begin.bind(e);
    e.begin = (t, task, j, fromIdle = false) => {
      const before = barriers;
      begin(t, task, j, fromIdle);
      const it = (e as unknown as { items: { kind: number; how: number }[][] }).items[task.id][j];
      byEvent.push({ kind: it.kind, fromIdle, how: it.how, barriers: barriers - before });
    };
    e.run();
    return { byEvent, barriers, ibpbs: e.meter.counts.ibpbs, switches: e.meter.counts.contextSwitches };
  };

  it('one barrier at every entry from user space (syscall, fault, interrupt, NMI, a yield, a preemption) under pti=on, none from user compute', () => {
    const r = attributed('skylake-sp', 'retbleed=ibpb pti=on', false);
    expect(r.ibpbs).toBe(r.barriers); // no IBPB but the entry's (no ASI, no IBPB on context switch here)
    const user = (k: number) => k === EK['user-compute'];
    for (const ev of r.byEvent) expect([ev.kind, ev.barriers]).toEqual([ev.kind, user(ev.kind) ? 0 : 1]);
    const inEvents = r.byEvent.reduce((a, ev) => a + ev.barriers, 0);
    // Two tasks share the thread: each switch but the first (at boot) and the yields (counted in
    // their events) leaves a task in user mode.
    const yields = r.byEvent.filter((ev) => ev.kind === EK['context-switch']).length;
    expect(r.barriers - inEvents).toBe(r.switches - 1 - yields);
    expect(r.switches - 1 - yields).toBeGreaterThan(3); // the quantum did preempt
    const off = attributed('skylake-sp', 'retbleed=ibpb pti=on mitigations=off', false);
    expect(off.ibpbs).toBe(0);
  });

  it('under core scheduling, an NMI taken while forced idle untrains (paranoid_entry) and a timer interrupt does not', () => {
    const r = attributed('skylake-sp', 'retbleed=ibpb sched_core=1', true);
    const fromIdle = r.byEvent.filter((ev) => ev.fromIdle);
    const nmis = fromIdle.filter((ev) => ev.kind === EK.nmi);
    const timers = fromIdle.filter((ev) => ev.kind === EK['timer-interrupt']);
    expect(nmis.length).toBeGreaterThan(0);
    expect(timers.length).toBeGreaterThan(0);
    expect(nmis.every((ev) => ev.barriers === 1)).toBe(true);
    expect(timers.every((ev) => ev.barriers === 0)).toBe(true);
    for (const ev of r.byEvent.filter((x) => !x.fromIdle)) expect([ev.kind, ev.barriers]).toEqual([ev.kind, ev.kind === EK['user-compute'] ? 0 : 1]);
  });

  it('a VMX exit does not untrain (vmx/vmenter.S has no UNTRAIN_RET); the VMM\'s own system calls do', () => {
    const vm = (cmdline: string) => runScenario(parseScenario(`
events: ${N}
machine: { cpu: skylake-sp, cores: 1, threads_per_core: 1, ram: 1GiB }
tenants: [{ name: g, kind: vm, vcpus: 1, memory: 16MiB }, { name: vmm, kind: process }]
workload:
  - { thread: 0, tenant: g, mix: [{ event: vm-exit, reason: CPUID }, { event: guest-run, cycles: 5000 }] }
  - { thread: 0, tenant: vmm, mix: [{ event: syscall, name: getppid }] }
isolation: [{ name: s, cmdline: "${cmdline}" }]
`, 'vm-ibpb.yaml')).mitigations[0].costs.counts;
    const on = vm('retbleed=ibpb'), off = vm('');
    expect(off.ibpbs).toBe(0);
    expect(on.ibpbs).toBeGreaterThanOrEqual(N); // the process's N system calls at least
    expect(on.ibpbs).toBeLessThan(N + on.context_switches); // and switches away from a task; no exit's
  });

  it('what a barrier adds to a call does not grow with the handler: the source\'s two loops, handlers ~3x apart, pay the same', () => {
    // Inception artifact (5600G): +212 ns a call in System Call Overhead, +209 ns in Pipe Throughput.
    const addedPerCall = (file: string) => {
      const path = fileURLToPath(new URL(`../../examples/calibration/${file}`, import.meta.url));
      const [base, ibpb] = runScenario(parseScenario(readFileSync(path, 'utf8'), file)).mitigations;
      return { added: (ibpb.costs.cycles - base.costs.cycles) / ibpb.costs.counts.ibpbs, insns: ibpb.costs.counts.kernel_insns / ibpb.costs.counts.ibpbs };
    };
    const sys = addedPerCall('ibpb-entry-zen3-syscall.yaml');
    const pipe = addedPerCall('ibpb-entry-zen3-pipe.yaml');
    expect(pipe.insns / sys.insns).toBeGreaterThan(2.5); // the handlers do differ
    expect(Math.abs(pipe.added - sys.added) / sys.added).toBeLessThan(0.05);
  });
});
