/**
 * Two isolation entries that are one configuration (sim/same-state.ts): different command lines
 * that resolve to the same mitigation state, design and variant are flagged (report note, JSON
 * same_as); entries whose state differs are not.
 */
import { describe, expect, it } from 'vitest';
import { parseScenario } from '../../src/scenario/load.ts';
import { runScenario } from '../../src/sim/run.ts';
import { sameAs } from '../../src/sim/same-state.ts';
import { sameStateLines, summarize } from '../../src/sim/seeds.ts';
import { formatRunJson } from '../../src/report/run-json.ts';
import { formatRunText } from '../../src/report/run-text.ts';

const yaml = (isos: string) => `name: same
seed: 2
events: 30
machine: { cpu: skylake-sp, cores: 1, threads_per_core: 2, ram: 1GiB }
tenants:
  - { name: victim, kind: vm, vcpus: 1, memory: 16MiB, objects: [{ name: k, kind: guest-page }] }
  - { name: db, kind: process, objects: [{ name: c, kind: cred }] }
secrets: [{ name: key, in: victim/k, bytes: 32 }]
workload:
  - { thread: 1, tenant: victim, mix: [{ event: vm-exit, reason: HLT }, { event: guest-run, cycles: 2000 }] }
  - { thread: 0, tenant: db, mix: [{ event: syscall, name: getppid }] }
isolation:
${isos}
`;

describe('same mitigation state', () => {
  it('sameAs points each later duplicate at its first occurrence', () => {
    expect(sameAs(['a', 'b', 'a', 'c', 'b', 'a'])).toEqual([-1, -1, 0, -1, 1, 0]);
  });

  it('l1d-cond and kpti: two command lines that are the 6.1 default on Skylake-SP are one configuration', () => {
    // On Skylake-SP (Meltdown-affected) pti=auto is on, and vmentry_l1d_flush=cond is KVM's default
    // (Documentation/admin-guide/hw-vuln/l1tf.rst): both lines resolve to the default state.
    const r = summarize([runScenario(parseScenario(yaml(`  - { name: none, cmdline: "mitigations=off" }
  - { name: l1d-cond, cmdline: "kvm-intel.vmentry_l1d_flush=cond" }
  - { name: nosmt, cmdline: "nosmt" }
  - { name: kpti, cmdline: "pti=on" }
  - { name: default, cmdline: "" }`), 'same.yaml'))]);
    expect(r.same_state.map((x) => [x.entry, x.same_as])).toEqual([['kpti', 'l1d-cond'], ['default', 'l1d-cond']]);
    expect(r.mitigations.map((m) => m.same_as)).toEqual([null, null, null, 'l1d-cond', 'l1d-cond']);
    const lines = sameStateLines(r);
    expect(lines[0]).toMatch(/^l1d-cond and kpti resolve to the same mitigation state: pti=true .*vmentry_l1d_flush=cond/);
    expect(formatRunText(r)).toContain(`note: ${lines[0]}`);
    expect(JSON.parse(formatRunJson(r)).mitigations[3].same_as).toBe('l1d-cond');
  });

  it('entries whose resolved state, design or stun differ are not flagged', () => {
    const r = summarize([runScenario(parseScenario(yaml(`  - { name: none, cmdline: "mitigations=off" }
  - { name: l1d-always, cmdline: "kvm-intel.vmentry_l1d_flush=always" }
  - { name: nopti, cmdline: "nopti" }
  - { name: nosmt, cmdline: "nosmt" }
  - { name: default, cmdline: "" }
  - { name: asi, cmdline: "asi=google-asi-2025" }
  - { name: asi-stun, cmdline: "asi=google-asi-2025", stun: true }`), 'differ.yaml'))]);
    expect(r.same_state).toEqual([]);
    expect(r.mitigations.every((m) => m.same_as === null)).toBe(true);
    expect(formatRunText(r)).not.toMatch(/same mitigation state/);
  });
});
