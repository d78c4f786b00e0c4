/**
 * ASI against a guest attacker on the sibling hyperthread, through the engine: a victim VM whose
 * guest page holds a key (guest RAM: __GFP_SENSITIVE in Google's 2025 RFC, outside the 2019 KVM
 * space), and an attacker VM on the other thread of the same core.
 *
 *  - Both siblings inside their restricted spaces: no sensitive byte leaks by any attack — the
 *    key is not mapped in the attacker's restricted kernel view (Spectre v1 finds no translation)
 *    and nothing touches it, so no buffer holds it.
 *  - The victim leaves its space (an exit that touches its guest memory through the direct map)
 *    WITHOUT stunning the sibling: the documented leaks come back (l1tf.rst, sibling L1D; mds.rst,
 *    fill buffers are shared between Hyper-Threads).
 *  - With stun (2022 cover letter: "sibling-hyperthread-stun operation in the asi_exit hook") and
 *    the taint flush on re-entry, they do not.
 */
import { describe, expect, it } from 'vitest';
import { parseScenario } from '../../src/io/scenario.ts';
import { runScenario, type RunReport } from '../../src/sim/run.ts';

const scenario = (victimMix: string, attacks: string, isos: string[]) => `
name: asi-leaks
seed: 21
duration: 1ms
machine: { cpu: skylake-sp, cores: 1, threads_per_core: 2, ram: 1GiB }
tenants:
  - { name: victim, kind: vm, vcpus: 1, memory: 16MiB, objects: [{ name: k, kind: guest-page }] }
  - { name: evil, kind: vm, vcpus: 1, memory: 16MiB }
secrets: [{ name: key, in: victim/k, bytes: 32 }]
workload:
  - { thread: 1, tenant: victim, mix: [${victimMix}] }
attackers: [{ thread: 0, tenant: evil, attacks: [${attacks}], every: 2us }]
isolation:
${isos.map((c, i) => `  - { name: s${i}, ${c} }`).join('\n')}
`;

const INSIDE = '{ event: vm-exit, reason: MSR_WRITE, weight: 2 }, { event: vm-exit, reason: CPUID, weight: 1 }, { event: guest-run, cycles: 4000, weight: 3 }';
const LEAVES = '{ event: vm-exit, reason: EPT_VIOLATION, weight: 2 }, { event: vm-exit, reason: MSR_WRITE, weight: 1 }, { event: guest-run, cycles: 4000, weight: 3 }';
const ALL = 'l1tf-guest, mfbds, mlpds, msbds, spectre-v1';

const total = (r: RunReport, i: number): number => r.mitigations[i].leaks.reduce((s, l) => s + l.bytes, 0);
const cell = (r: RunReport, i: number, attack: string): number => r.mitigations[i].matrix.find((c) => c.attack === attack)!.bytes;

describe('ASI and a sibling guest attacker', () => {
  it('both siblings inside their restricted spaces: no byte of the key leaks by any attack', () => {
    const r = runScenario(parseScenario(scenario(INSIDE, ALL, [
      'cmdline: ""',
      'cmdline: "asi=google-asi-2025", stun: true',
      'cmdline: "asi=kvm-asi-2019"',
    ]), 'asi.yaml'));
    // Without ASI the attacker's own VM exits run on the full tables: a Spectre v1 gadget there
    // reaches the victim's guest page through the direct map (spectre.rst) — the test can fail.
    expect(cell(r, 0, 'spectre-v1')).toBe(32);
    for (const i of [1, 2]) {
      const m = r.mitigations[i];
      expect(m.costs.counts.asi_entries).toBeGreaterThan(0);
      expect(m.asi_exit_reasons.every((x) => !x.object.includes('guest page'))).toBe(true);
      expect([m.name, total(r, i)]).toEqual([m.name, 0]);
    }
  }, 30_000);

  it('the victim leaves its space without stunning the sibling: the L1D and fill-buffer leaks come back', () => {
    const r = runScenario(parseScenario(scenario(LEAVES, 'l1tf-guest, mfbds', [
      'cmdline: "asi=google-asi-2025", stun: false',
      'cmdline: "asi=kvm-asi-2019", stun: false',
    ]), 'asi.yaml'));
    for (const i of [0, 1]) {
      const m = r.mitigations[i];
      expect(m.costs.counts.stuns).toBe(0);
      expect(m.asi_exit_reasons.some((x) => x.event === 'vm-exit:EPT_VIOLATION')).toBe(true);
      // l1tf.rst: the sibling "can attack the data which is brought into the L1D by the context which
      // runs on the sibling Hyperthread"; mds.rst: "Fill buffers are shared between Hyper-Threads".
      expect([m.name, cell(r, i, 'l1tf-guest')]).toEqual([m.name, 32]);
      expect(cell(r, i, 'mfbds')).toBeGreaterThan(0);
    }
  }, 30_000);

  it('with stun and the taint flush on re-entry they do not', () => {
    const r = runScenario(parseScenario(scenario(LEAVES, ALL, [
      'cmdline: "asi=google-asi-2025", stun: true',
      'cmdline: "asi=kvm-asi-2019", stun: true',
      'cmdline: "asi=google-asi-2022", stun: true',
    ]), 'asi.yaml'));
    for (const i of [0, 1, 2]) {
      const m = r.mitigations[i];
      expect(m.costs.counts.asi_exits).toBeGreaterThan(0);
      expect(m.costs.counts.stuns).toBeGreaterThan(0);
      expect(m.costs.counts.stun_spin_cycles).toBeGreaterThan(0);
      expect(m.costs.counts.l1d_flushes).toBeGreaterThan(0);
      expect([m.name, total(r, i)]).toEqual([m.name, 0]);
    }
  }, 30_000);
});
