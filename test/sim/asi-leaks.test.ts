/**
 * ASI against an attacker on the sibling hyperthread, through the engine. What each design
 * protects follows from what it maps and when it leaves its space — never from the test:
 *
 *  - A guest that uses its key (its own code touches the page) exposes it to a sibling guest
 *    under every ASI design as posted: ASI keeps the HOST kernel's data out of the restricted
 *    space; one guest from another is core scheduling's job (Chartre v4 cover letter: "Core
 *    Scheduling can prevent a malicious VM from attacking another VM"). ASI + core scheduling
 *    leaks nothing.
 *  - A key the guest does not touch (cold) is out of reach while both siblings stay inside
 *    their restricted spaces; without ASI a Spectre v1 gadget in the attacker's own VM exits
 *    reaches it through the direct map.
 *  - Host data read by a process's system call after an ASI exit (2025: page-cache pages are
 *    __GFP_SENSITIVE, the read exits): no posted design stuns the sibling, so a sibling guest
 *    reads it through L1TF; stunning it (a what-if, named so) closes that window.
 */
import { describe, expect, it } from 'vitest';
import { parseScenario } from '../../src/scenario/load.ts';
import { runScenario, type RunReport } from '../../src/sim/run.ts';

const twoVms = (victimMix: string, attacks: string, isos: string[], cold: boolean, attackerExtra = '') => `
name: asi-leaks
seed: 21
duration: 1ms
machine: { cpu: skylake-sp, cores: 1, threads_per_core: 2, ram: 1GiB }
tenants:
  - { name: victim, kind: vm, vcpus: 1, memory: 16MiB, objects: [{ name: k, kind: guest-page, cold: ${cold} }], working_set: { bytes: 16KiB } }
  - { name: evil, kind: vm, vcpus: 1, memory: 16MiB }
secrets: [{ name: key, in: victim/k, bytes: 32 }]
workload:
  - { thread: 1, tenant: victim, mix: [${victimMix}] }
attackers: [{ thread: 0, tenant: evil, attacks: [${attacks}], every: 2us${attackerExtra} }]
isolation:
${isos.map((c, i) => `  - { name: s${i}, ${c} }`).join('\n')}
`;

const INSIDE = '{ event: vm-exit, reason: MSR_WRITE, weight: 2 }, { event: vm-exit, reason: CPUID, weight: 1 }, { event: guest-run, cycles: 4000, weight: 3 }';
const ALL = 'l1tf-guest, mfbds, mlpds, msbds, spectre-v1';

const total = (r: RunReport, i: number): number => r.mitigations[i].leaks.reduce((s, l) => s + l.bytes, 0);
const cell = (r: RunReport, i: number, attack: string, secret = 'key'): number => r.mitigations[i].matrix.find((c) => c.attack === attack && c.secret === secret)!.bytes;

describe('ASI and a sibling guest attacker', () => {
  it('a guest that uses its key exposes it to its sibling under every ASI design; ASI + core scheduling does not', () => {
    const r = runScenario(parseScenario(twoVms(INSIDE, 'l1tf-guest', [
      'cmdline: "asi=kvm-asi-2019"',
      'cmdline: "asi=google-asi-2022"',
      'cmdline: "asi=google-asi-2025"',
      'cmdline: "asi=google-asi-2025 sched_core=1"',
    ], false), 'asi.yaml'));
    for (const i of [0, 1, 2]) {
      const m = r.mitigations[i];
      expect(m.costs.counts.asi_entries).toBeGreaterThan(0);
      // The victim's exits never needed its key: the leak is its own code's (the guest-run touches).
      expect(m.asi_exit_reasons.every((x) => !x.object.includes('GPA 0x100000'))).toBe(true);
      expect([m.name, cell(r, i, 'l1tf-guest')]).toEqual([m.name, 32]);
    }
    expect(r.mitigations[3].costs.by_kind['forced-idle']).toBeGreaterThan(0);
    expect(total(r, 3)).toBe(0);
  }, 60_000);

  it('a key the guest does not touch: nothing leaks while both stay inside; without ASI Spectre v1 reaches it', () => {
    const r = runScenario(parseScenario(twoVms(INSIDE, ALL, [
      'cmdline: ""',
      'cmdline: "asi=google-asi-2025"',
      'cmdline: "asi=kvm-asi-2019"',
    ], true), 'asi.yaml'));
    // Without ASI the attacker's own VM exits run on the full tables: a Spectre v1 gadget there
    // reaches the victim's guest page through the direct map (spectre.rst) — the test can fail.
    expect(cell(r, 0, 'spectre-v1')).toBe(32);
    for (const i of [1, 2]) {
      const m = r.mitigations[i];
      expect(m.costs.counts.asi_entries).toBeGreaterThan(0);
      expect([m.name, total(r, i)]).toEqual([m.name, 0]);
    }
    // The report says the cold key is reached by nothing the workload does.
    expect(r.mitigations[1].notes.some((n) => n.startsWith('secret key') && n.includes('no event'))).toBe(true);
  }, 60_000);
});

describe('ASI and host data read after an exit', () => {
  const hostRead = (isos: string[]) => `
name: asi-host-read
seed: 4
duration: 1ms
machine: { cpu: skylake-sp, cores: 1, threads_per_core: 2, ram: 1GiB }
tenants:
  - { name: db, kind: process, objects: [{ name: f, kind: page-cache, cold: true }] }
  - { name: evil, kind: vm, vcpus: 1, memory: 16MiB }
secrets: [{ name: rows, in: db/f, bytes: 64 }]
workload:
  - { thread: 1, tenant: db, mix: [{ event: syscall, name: pread64, weight: 2 }, { event: user-compute, cycles: 3000, weight: 1 }] }
attackers: [{ thread: 0, tenant: evil, attacks: [l1tf-guest], every: 2us }]
isolation:
${isos.map((c, i) => `  - { name: s${i}, ${c} }`).join('\n')}
`;

  it('google-asi-2025 as posted does not stun: the sibling reads what the exit touched; a stun (what-if) closes it', () => {
    const r = runScenario(parseScenario(hostRead(['cmdline: "asi=google-asi-2025"', 'cmdline: "asi=google-asi-2025", stun: true']), 'asi.yaml'));
    const posted = r.mitigations[0];
    const whatIf = r.mitigations[1];
    expect(posted.stun).toBe(false);
    expect(posted.costs.counts.stuns).toBe(0);
    expect(posted.asi_exit_reasons.some((x) => x.event === 'syscall:pread64' && x.part === 'page-cache')).toBe(true);
    expect(cell(r, 0, 'l1tf-guest', 'rows')).toBe(64);
    expect(whatIf.notes.some((n) => n.startsWith('what-if: sibling stunning added to google-asi-2025'))).toBe(true);
    expect(whatIf.costs.counts.stuns).toBeGreaterThan(0);
    expect(whatIf.costs.counts.stun_spin_cycles).toBeGreaterThan(0);
    expect(cell(r, 1, 'l1tf-guest', 'rows')).toBe(0);
  }, 60_000);
});

describe('Spectre v1 in the attacker\'s own kernel context', () => {
  const run = (gadget: string, window: string, isos: string[]) =>
    runScenario(parseScenario(twoVms(INSIDE, 'spectre-v1', isos, true, `, spectre_v1: { gadget: ${gadget}, window: ${window} }`), 'v1.yaml'));

  it('the v1 software mitigations close a usercopy gadget, not an unaudited one', () => {
    const isos = ['cmdline: ""', 'cmdline: "nospectre_v1"', 'cmdline: "mitigations=off"'];
    const usercopy = run('usercopy', 'entry', isos);
    // bugs.c: "Mitigation: usercopy/swapgs barriers and __user pointer sanitization"; nospectre_v1 removes them.
    expect(usercopy.mitigations.map((m) => cell(usercopy, usercopy.mitigations.indexOf(m), 'spectre-v1'))).toEqual([0, 32, 32]);
    const unaudited = run('unaudited', 'entry', isos);
    expect(unaudited.mitigations.map((m) => cell(unaudited, unaudited.mitigations.indexOf(m), 'spectre-v1'))).toEqual([32, 32, 32]);
  }, 60_000);

  it('ASI stops a gadget on the entry path, not one that runs after its handler left the restricted space', () => {
    const isos = ['cmdline: "asi=google-asi-2025"', 'cmdline: "asi=kvm-asi-2019"'];
    const entry = run('unaudited', 'entry', isos);
    const after = run('unaudited', 'after-exit', isos);
    for (const i of [0, 1]) {
      expect([isos[i], cell(entry, i, 'spectre-v1')]).toEqual([isos[i], 0]);
      expect([isos[i], cell(after, i, 'spectre-v1')]).toEqual([isos[i], 32]);
    }
  }, 60_000);
});
