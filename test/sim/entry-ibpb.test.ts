/**
 * IBPB on kernel entry (X86_FEATURE_ENTRY_IBPB: retbleed=ibpb, spec_rstack_overflow=ibpb;
 * arch/x86/kernel/cpu/bugs.c, UNTRAIN_RET in entry_64.S): one barrier a syscall on a CPU with
 * the bug, none on one without or under mitigations=off, and the handler that follows runs cold.
 */
import { describe, expect, it } from 'vitest';
import { parseScenario } from '../../src/scenario/load.ts';
import { runScenario } from '../../src/sim/run.ts';
import { parseMitigationCmdline, CmdlineError } from '../../src/mitigations/cmdline.ts';
import { selectMitigations } from '../../src/mitigations/select.ts';
import { getProfile } from '../../src/uarch/profiles.ts';
import { getCostModel } from '../../src/sim/costs.ts';
import { loadFootprintTable } from '../../src/sim/footprints.ts';

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

  it('issues one barrier a syscall and leaves the handler cold: the loop pays IBPB + the cold path', () => {
    const [plain, ibpb] = loop('zen3', ['', 'spec_rstack_overflow=ibpb']);
    expect(plain.costs.counts.ibpbs).toBe(0);
    expect(ibpb.costs.counts.ibpbs).toBe(N);
    expect(ibpb.costs.counts.kernel_insns_warm).toBe(0);
    expect(plain.costs.counts.kernel_insns_warm).toBeGreaterThan(0);
    const p = getCostModel('zen3').params;
    const insns = loadFootprintTable().entries.get('syscall:getppid')!.insns.count;
    const perCall = (ibpb.costs.cycles - plain.costs.cycles) / N;
    const expected = p.ibpb.cycles + insns * (p.kernelCyclesPerInsn.cycles - p.kernelCyclesPerInsnWarm.cycles) * (N - 1) / N;
    expect(Math.abs(perCall - expected)).toBeLessThan(2);
  });
});
