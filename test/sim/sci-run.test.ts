/**
 * System Call Isolation driven by `kasi run` (sim/sci-run.ts): the syscalls of a process run on
 * its SCI tables, every kernel page they touch faults in through sci_verify_and_map(), the
 * mappings are dropped at the end of each call, a return into the middle of a function (the RFC's
 * ROP example) is refused while KPTI lets it run, and the RFC's caps kill a syscall that needs
 * more than 64 entered functions (a what-if lifts them).
 */
import { describe, expect, it } from 'vitest';
import { parseScenario } from '../../src/scenario/load.ts';
import { runEntry, runScenario } from '../../src/sim/run.ts';

const scenario = (mix: string, isos: string[]) => `
name: sci-run
seed: 3
events: 400
machine: { cpu: skylake-sp, cores: 1, threads_per_core: 2, ram: 1GiB }
tenants:
  - { name: app, kind: process, objects: [{ name: c, kind: cred }, { name: f, kind: page-cache, cold: true }] }
  - { name: spy, kind: process }
secrets:
  - { name: cred-key, in: app/c, bytes: 16, offset: 8 }
  - { name: file-key, in: app/f, bytes: 32 }
workload:
  - { thread: 0, tenant: app, mix: [${mix}] }
attackers: [{ thread: 1, tenant: spy, attacks: [rop, spectre-v1], every: 5us }]
isolation:
${isos.map((c, i) => `  - { name: s${i}, ${c} }`).join('\n')}
`;
const LIGHT = '{ event: syscall, name: getppid }, { event: syscall, name: pread64 }, { event: syscall, name: openat }, { event: syscall, name: futex }, { event: user-compute, cycles: 2000 }';
const cell = (m: { matrix: readonly { attack: string; secret: string; bytes: number }[] }, attack: string, secret: string) => m.matrix.find((c) => c.attack === attack && c.secret === secret)!.bytes;

describe('kasi run under asi=sci-2019', () => {
  it('system calls fault their kernel pages in, verified, and pay for it; KPTI lets a ROP chain run, SCI refuses it', () => {
    const r = runScenario(parseScenario(scenario(LIGHT, ['cmdline: "mitigations=off pti=on"', 'cmdline: "mitigations=off pti=on asi=sci-2019"']), 'sci.yaml'));
    const [kpti, sci] = r.mitigations;
    expect(kpti.costs.counts.sci_faults).toBe(0);
    expect(sci.costs.counts.sci_faults).toBeGreaterThan(400); // every call faults its handler's pages and data in
    expect(sci.costs.counts.sci_mapped_ptes).toBe(sci.costs.counts.sci_faults);
    expect(sci.costs.counts.kills).toBe(0);
    expect(sci.costs.cycles).toBeGreaterThan(kpti.costs.cycles);
    // The RFC's ROP example: a return into commit_creds+0x1a.
    for (const s of ['cred-key', 'file-key']) {
      expect(cell(kpti, 'rop', s)).toBeGreaterThan(0);
      expect(cell(sci, 'rop', s)).toBe(0);
      // A Spectre v1 gadget in the spy's own syscall sees only what its SCI tables map then.
      expect(cell(kpti, 'spectre-v1', s)).toBeGreaterThan(0);
      expect(cell(sci, 'spectre-v1', s)).toBe(0);
    }
    expect(sci.notes.some((n) => /refused \d+ ROP attempts of spy/.test(n))).toBe(true);
  }, 60_000);

  it('drops every PTE a call mapped when the call ends', () => {
    const s = parseScenario(scenario(LIGHT, ['cmdline: "mitigations=off pti=on asi=sci-2019"']), 'sci.yaml');
    const { world, engine } = runEntry(s, 0, null);
    const sci = world.spaces.sci!;
    expect(engine.meter.counts.sciMapped).toBeGreaterThan(0);
    for (const tb of sci.tables) if (tb !== null) expect(tb.ptes).toEqual([]);
    expect(sci.session.every((x) => x === null)).toBe(true);
  }, 60_000);

  it('the 64-entry backtrace cap kills a call that enters more functions; without the caps the symbol rule alone refuses nothing', () => {
    const heavy = '{ event: syscall, name: munmap }, { event: syscall, name: mmap }, { event: user-compute, cycles: 2000 }';
    const r = runScenario(parseScenario(scenario(heavy, ['cmdline: "mitigations=off pti=on asi=sci-2019"', 'cmdline: "mitigations=off pti=on asi=sci-2019", what_if: [sci-no-caps]']), 'sci.yaml'));
    const [posted, noCaps] = r.mitigations;
    expect(posted.costs.counts.kills).toBe(1);
    expect(posted.notes.some((n) => n.startsWith('sci-2019 killed app') && n.includes('SCI_MAX_BACKTRACE'))).toBe(true);
    expect(noCaps.costs.counts.kills).toBe(0);
    expect(noCaps.events_per_task[0]).toBe(400);
  }, 60_000);

  it('needs PTI', () => {
    expect(() => runScenario(parseScenario(scenario(LIGHT, ['cmdline: "mitigations=off asi=sci-2019"']), 'sci.yaml'))).toThrow(/sci-2019 needs PTI/);
  });
});
