/**
 * Workloads from real tool outputs in scenarios (`from:` in a workload entry) and on the command
 * line (`kasi run --workload FILE`). The expected weights are read off the sample by hand:
 * test/fixtures/tool-samples/perf-kvm-stat/intel-vmexit-sysbench-0xba1a-blog.txt lists MSR_WRITE
 * 9167, EXTERNAL_INTERRUPT 5877, PREEMPTION_TIMER 5728, HLT 2232, CPUID 2160, PAUSE_INSTRUCTION 390,
 * EPT_MISCONFIG 303, EOI_INDUCED 37 and EXCEPTION_NMI 4 exits; the three without a footprint of
 * their own that KVM handles in place borrow CPUID's, EXCEPTION_NMI borrows EPT_MISCONFIG's.
 */
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { defaultScenario, loadScenario, parseScenario } from '../../src/scenario/load.ts';
import { withImportedWorkload } from '../../src/sim/workload-swap.ts';
import type { MixItem } from '../../src/sim/scenario-types.ts';

const EX = (f: string) => fileURLToPath(new URL(`../../examples/${f}`, import.meta.url));
const KVM_STAT = fileURLToPath(new URL('../fixtures/tool-samples/perf-kvm-stat/intel-vmexit-sysbench-0xba1a-blog.txt', import.meta.url));
const weights = (mix: readonly MixItem[]) => Object.fromEntries(mix.map((m) => [m.event === 'vm-exit' ? m.reason : m.event === 'syscall' ? m.name : m.event, m.weight]));

describe('workloads from tool outputs', () => {
  it('from: a perf kvm stat report becomes the mix, borrowed footprints noted, a written guest-run added', () => {
    const s = loadScenario(EX('imported-kvm-stat.yaml'));
    expect(weights(s.workload[0].mix)).toEqual({
      MSR_WRITE: 9167, EXTERNAL_INTERRUPT: 5877, HLT: 2232, CPUID: 2160 + 5728 + 390 + 37, EPT_MISCONFIG: 303 + 4, 'guest-run': 25898,
    });
    expect(s.notes.some((n) => n.startsWith('PREEMPTION_TIMER') && n.includes('borrows vm-exit:CPUID'))).toBe(true);
  });

  it('from: a strace -c table of a process', () => {
    const s = loadScenario(EX('imported-strace.yaml'));
    const w = weights(s.workload[0].mix);
    // strace4-systemd-logind-many-errors.txt: recvmsg 52055, write 90012, sendmsg 21754, clock_gettime 30287 calls.
    expect([w.recvmsg, w.write, w.sendmsg, w.clock_gettime]).toEqual([52055, 90012, 21754, 30287]);
  });

  it('a missing file is one scenario error naming the field', () => {
    const y = 'tenants: [{ name: p, kind: process }]\nworkload:\n  - { thread: 0, tenant: p, from: { file: nope.txt } }\n';
    expect(() => parseScenario(y, '/tmp/x.yaml')).toThrow(/^\/tmp\/x\.yaml:3:\d+: field workload\[0\]\.from\.file: expected a tool output file/);
    expect(() => parseScenario('tenants: [{ name: p, kind: process }]\nworkload:\n  - { thread: 0, tenant: p }\n', 'x.yaml')).toThrow(/field workload\[0\]: expected a mix, or from/);
  });

  it('--workload swaps the kernel events of the matching entry, keeping its share of kernel time', () => {
    const s = withImportedWorkload(defaultScenario(), KVM_STAT);
    const w = s.workload.find((x) => x.tenant === 'victim-vm')!;
    const kernel = w.mix.filter((m) => m.event === 'vm-exit');
    // The default victim's exits weigh 3 + 1 + 2 + 2 = 8 against guest-run's 8.
    expect(kernel.reduce((a, m) => a + m.weight, 0)).toBeCloseTo(8, 9);
    const k = weights(kernel);
    expect(k.MSR_WRITE / k.EXTERNAL_INTERRUPT).toBeCloseTo(9167 / 5877, 9);
    expect(w.mix.find((m) => m.event === 'guest-run')!.weight).toBe(8);
    expect(s.workload.find((x) => x.tenant === 'host-db')).toEqual(defaultScenario().workload.find((x) => x.tenant === 'host-db'));
  });
});
