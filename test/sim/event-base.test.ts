/**
 * A footprint's measured native base (sim/event-base.ts): it replaces the transition and the
 * instructions, and nothing else — the mitigation's mechanisms are still charged on top, so a
 * figure measured on another kernel (FreeBSD D13985's getppid) gets its own denominator and
 * kasi's numerator.
 */
import { describe, expect, it } from 'vitest';
import { parseScenario } from '../../src/scenario/load.ts';
import { runScenario } from '../../src/sim/run.ts';
import { getCostModel } from '../../src/sim/costs.ts';
import { loadFootprintTable } from '../../src/sim/footprints.ts';

const EVENTS = 500;
const yaml = (override: string) => `
events: ${EVENTS}
machine: { cpu: skylake-sp, cores: 1, threads_per_core: 1, ram: 1GiB }
tenants: [{ name: p, kind: process }]
workload: [{ thread: 0, tenant: p, mix: [{ event: syscall, name: getppid }] }]
${override}
isolation:
  - { name: off, cmdline: "mitigations=off" }
  - { name: pti, cmdline: "mitigations=off pti=on" }
`;
const BASE = `footprints:
  override:
    "syscall:getppid":
      base: { ns: 1000, source: "a measured native latency" }`;

describe('a measured native base', () => {
  const plain = runScenario(parseScenario(yaml(''), 'plain.yaml')).mitigations;
  const based = runScenario(parseScenario(yaml(BASE), 'based.yaml')).mitigations;
  const per = (r: typeof plain, i: number) => r[i].costs.cycles / EVENTS;

  it('replaces transition + insns × CPI with the source\'s latency at the clock', () => {
    const m = getCostModel('skylake-sp');
    const fp = loadFootprintTable().entries.get('syscall:getppid')!;
    // kasi's own price of the loop: the first call's code cold, the others warm (sim/code-warmth.ts)
    const cpi = (m.params.kernelCyclesPerInsn.cycles + (EVENTS - 1) * m.params.kernelCyclesPerInsnWarm.cycles) / EVENTS;
    const modelled = m.params.syscallEntryExit.cycles + fp.insns.count * cpi;
    // What the touches add (L1D misses, walks) is the same in both runs; only the base differs.
    expect(per(based, 0) - per(plain, 0)).toBeCloseTo(1000 * m.clock.ghz - modelled, 2); // cycles are rounded to the cycle in the result
  });

  it('leaves the mitigation\'s own cost to the model: the same PTI delta a call', () => {
    const d = (r: typeof plain) => per(r, 1) - per(r, 0);
    expect(d(based)).toBeCloseTo(d(plain), 6);
    expect(d(plain)).toBeGreaterThan(0);
  });

  it('must name its source', () => {
    expect(() => parseScenario(yaml(BASE.replace(', source: "a measured native latency"', '')), 'nosrc.yaml')).toThrow(/nosrc\.yaml:\d+:\d+: field footprints\.override\.syscall:getppid\.base\.source/);
  });
});

describe('a measured native base on a sized syscall', () => {
  it('is refused: the base says nothing of the cost per byte', () => {
    const s = () => parseScenario(`
events: 10
machine: { cpu: skylake-sp, cores: 1, threads_per_core: 1, ram: 1GiB }
tenants: [{ name: p, kind: process }]
workload: [{ thread: 0, tenant: p, mix: [{ event: syscall, name: read, bytes: 4096 }] }]
footprints:
  override:
    "syscall:read":
      base: { ns: 100, source: "a measured 1-byte read" }
isolation: [{ name: off, cmdline: "mitigations=off" }]
`, 'sized.yaml');
    expect(s).toThrow(/sized\.yaml:\d+:\d+: field workload\[0\]\.mix\[0\]\.bytes: expected no bytes on a syscall whose footprint carries a measured native base/);
  });
});
