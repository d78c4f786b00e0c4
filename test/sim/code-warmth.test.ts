/**
 * Kernel code priced by how warm it is (sim/code-warmth.ts, uarch/code-cache.ts), through the
 * engine: a loop of one syscall runs at the warm price, the same syscall after an application's
 * large code at the cold one; a sibling's code evicts it (the L1I is the core's); an IBPB on
 * every exit keeps the path cold whatever the warm price.
 */
import { describe, expect, it } from 'vitest';
import { parseScenario } from '../../src/scenario/load.ts';
import { runScenario } from '../../src/sim/run.ts';
import { getCostModel } from '../../src/sim/costs.ts';
import { loadFootprintTable } from '../../src/sim/footprints.ts';

const N = 400;
const m = getCostModel('skylake-sp');
const getppid = loadFootprintTable().entries.get('syscall:getppid')!.insns.count;
const cold = m.params.kernelCyclesPerInsn.cycles;
const warm = m.params.kernelCyclesPerInsnWarm.cycles;

const run = (mix: string, o: { extra?: string; machine?: string; costs?: string } = {}) => runScenario(parseScenario(`
events: ${N}
machine: { cpu: skylake-sp, ${o.machine ?? 'cores: 1, threads_per_core: 1'}, ram: 1GiB }
tenants: [{ name: p, kind: process }, { name: q, kind: process }]
workload:
  - { thread: 0, tenant: p, mix: [${mix}] }
${o.extra ?? ''}
${o.costs ? `costs: { override: { ${o.costs} } }` : ''}
isolation: [{ name: off, cmdline: "mitigations=off" }]
`, 'warmth.yaml')).mitigations[0];
const sys = (r: ReturnType<typeof run>) => r.costs.by_kind.syscall;
/** Syscalls the measured task made: what one more cycle of SYSCALL+SYSRET adds. */
const syscalls = (mix: string, o: Parameters<typeof run>[1] = {}) =>
  Math.round((sys(run(mix, { ...o, costs: `syscall_entry_exit: ${m.params.syscallEntryExit.cycles + 1000}` })) - sys(run(mix, o))) / 1000);
const COLD_WARM = `kernel_cycles_per_insn_warm: ${cold}`;
const LOOP = '{ event: syscall, name: getppid }';

describe('code warmth', () => {
  it('a loop of one syscall pays the warm price a call, after one cold call', () => {
    // the same run with the warm price made cold: the only difference is the instructions' price
    const r = run(LOOP);
    const d = sys(run(LOOP, { costs: COLD_WARM })) - sys(r);
    // the report says how much ran warm: every call's instructions but the first's
    expect(r.costs.counts.kernel_insns).toBe(Math.round(getppid * N));
    expect(r.costs.counts.kernel_insns_warm).toBe(Math.round(getppid * (N - 1)));
    expect(Math.abs(d - getppid * (cold - warm) * (N - 1))).toBeLessThan(2); // by_kind is rounded
  });

  it('an application whose code fills the L1I between calls leaves every call cold; a small loop\'s does not', () => {
    const big = `${LOOP}, { event: user-compute, cycles: 10, code_bytes: 64KiB }`;
    const small = `${LOOP}, { event: user-compute, cycles: 10, code_bytes: 1KiB }`;
    const saved = (mix: string) => sys(run(mix, { costs: COLD_WARM })) - sys(run(mix));
    const n = syscalls(small);
    expect(n).toBeGreaterThan(N / 3);
    expect(Math.abs(saved(small) - getppid * (cold - warm) * (n - 1))).toBeLessThan(2);
    // with the large code only a call right after another call (the mix draws at random) is warm: ~half
    expect(saved(big)).toBeLessThan(saved(small) * 0.7);
    expect(saved(big)).toBeGreaterThan(saved(small) * 0.3);
    // no code_bytes: an application's code is taken as larger than the L1I (code-warmth.ts)
    expect(saved(`${LOOP}, { event: user-compute, cycles: 10 }`)).toBe(saved(big));
  });

  it('the L1I is the core\'s: a sibling thread\'s large code evicts the loop, another core\'s does not', () => {
    const sib = '  - { thread: 1, tenant: q, background: true, mix: [{ event: user-compute, cycles: 200, code_bytes: 64KiB }] }';
    const smt = 'cores: 2, threads_per_core: 2';
    const saved = (extra: string) => sys(run(LOOP, { extra, machine: smt, costs: COLD_WARM })) - sys(run(LOOP, { extra, machine: smt }));
    const full = getppid * (cold - warm) * (N - 1);
    expect(Math.abs(saved('') - full)).toBeLessThan(2);
    expect(Math.abs(saved(sib.replace('thread: 1', 'thread: 2')) - full)).toBeLessThan(2);
    const withSibling = saved(sib);
    expect(withSibling).toBeLessThan(full * 0.7);
    expect(withSibling).toBeGreaterThanOrEqual(0);
  });

  it('an IBPB on every ASI exit keeps the path it interrupts cold: the warm price barely moves the ASI run', () => {
    const fio = (costs?: string) => runScenario(parseScenario(`
events: ${N}
machine: { cpu: sapphire-rapids, cores: 1, threads_per_core: 1, ram: 1GiB }
tenants: [{ name: fio, kind: process, working_set: { bytes: 16KiB } }]
workload: [{ thread: 0, tenant: fio, mix: [{ event: syscall, name: pread64, bytes: 4096 }, { event: user-compute, cycles: 500, code_bytes: 1KiB }] }]
${costs ? `costs: { override: { ${costs} } }` : ''}
isolation: [{ name: asi-off, cmdline: "" }, { name: asi-on, cmdline: "asi=google-asi-2025" }]
`, 'fio.yaml')).mitigations;
    const a = fio(), b = fio(COLD_WARM);
    const offSaved = b[0].costs.by_kind.syscall - a[0].costs.by_kind.syscall;
    const onSaved = b[1].costs.by_kind.syscall - a[1].costs.by_kind.syscall;
    expect(a[1].costs.counts.ibpbs).toBeGreaterThan(N / 4);
    expect(offSaved).toBeGreaterThan(0);
    expect(onSaved).toBeLessThan(offSaved * 0.2);
  });
});
