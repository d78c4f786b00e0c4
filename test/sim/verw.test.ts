/**
 * The buffer clears the engine applies at transitions, at the mechanism level: the victim's
 * kernel path reads a secret line (an L1D miss, so it passes a fill buffer), the thread returns
 * to user space through the engine's own transition, and an MFBDS sampler on that thread then
 * samples the buffers. mds.rst "Mitigation points / 1. Return to user space": "When
 * transitioning from kernel to user space the CPU buffers are flushed on affected CPUs" — so
 * with VERW (the 6.1 default on Skylake-SP) nothing is left, and with the clear off the secret
 * is sampled. If VERW stopped clearing, or the engine stopped issuing it, this fails.
 *
 * And KVM's conditional L1D flush on VM entry: an EPT_MISCONFIG exit goes through instruction
 * emulation, which sets vcpu->arch.l1tf_flush_l1d (x86_emulate_instruction()), so every such
 * exit is followed by a flush; MSR_WRITE is an audited fast path and is not.
 */
import { describe, expect, it } from 'vitest';
import { parseScenario } from '../../src/scenario/load.ts';
import { Engine } from '../../src/sim/engine.ts';
import { buildWorld } from '../../src/sim/world.ts';
import { ENTRY_SYSCALL } from '../../src/sim/mitigate.ts';
import { runScenario } from '../../src/sim/run.ts';
import { mfbds } from '../../src/attacks/mds.ts';
import { Samples } from '../../src/attacks/sample.ts';
import { scoreLeak } from '../../src/attacks/score.ts';

const yaml = (cmdline: string) => `
machine: { cpu: skylake-sp, cores: 1, threads_per_core: 2, ram: 1GiB }
tenants: [{ name: v, kind: process, objects: [{ name: f, kind: page-cache, cold: true }] }]
secrets: [{ name: k, in: v/f, bytes: 64 }]
workload: [{ thread: 0, tenant: v, mix: [{ event: syscall, name: pread64 }] }]
isolation: [{ name: s, cmdline: "${cmdline}" }]
`;

function sampledAfterReturn(cmdline: string): { clear: boolean; bytes: number } {
  const w = buildWorld(parseScenario(yaml(cmdline), 'verw.yaml'), 0);
  const e = new Engine(w, { targets: null, endCycles: 1 });
  const task = w.tasks[0];
  const t = task.thread;
  e.tr.switchTask(t, null, task);
  e.tr.kernelEntry(t, task, ENTRY_SYSCALL);
  // The kernel reads the secret's line (filemap_read of the page-cache page): a miss, through a fill buffer.
  const pa = w.secrets.all()[0].ranges[0].pa;
  w.machine.l1dFlush(t);
  w.machine.load(t, pa - (pa % 8));
  e.tr.returnToUser(t, task, ENTRY_SYSCALL);
  const out = new Samples(64, 1 << 12);
  mfbds({ cpu: w.profile, hw: w.machine.threads[t] }, out, 0);
  return { clear: w.state.clearCpuBuffers, bytes: scoreLeak(w.secrets, out)[0].recovered };
}

describe('buffer clears at transitions', () => {
  it('VERW on return to user leaves nothing in the fill buffers; without it the secret is there', () => {
    expect(sampledAfterReturn('')).toEqual({ clear: true, bytes: 0 });
    const off = sampledAfterReturn('mds=off tsx_async_abort=off mmio_stale_data=off');
    expect(off.clear).toBe(false);
    expect(off.bytes).toBeGreaterThan(0);
  });

  it('an EPT_MISCONFIG exit (instruction emulation) arms the conditional L1D flush; MSR_WRITE does not', () => {
    const vm = (reason: string) => `
events: 200
machine: { cpu: skylake-sp, cores: 1, threads_per_core: 2, ram: 1GiB }
tenants: [{ name: g, kind: vm, memory: 16MiB }]
workload: [{ thread: 1, tenant: g, mix: [{ event: vm-exit, reason: ${reason} }] }]
isolation: [{ name: cond, cmdline: "kvm-intel.vmentry_l1d_flush=cond" }]
`;
    const mis = runScenario(parseScenario(vm('EPT_MISCONFIG'), 'm.yaml')).mitigations[0].costs.counts;
    const msr = runScenario(parseScenario(vm('MSR_WRITE'), 'm.yaml')).mitigations[0].costs.counts;
    expect(mis.l1d_flushes).toBeGreaterThanOrEqual(200);
    expect(msr.l1d_flushes).toBeLessThan(5); // only the first entry after kvm_arch_sched_in()
  });
});
