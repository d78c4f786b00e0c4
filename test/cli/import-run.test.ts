/**
 * Real workloads in runs (issue 14): every examples/imported-*.yaml scenario loads its tool
 * output from examples/workloads/ (copies of the shared samples, checked byte for byte) and
 * runs, and `kasi run --workload FILE` runs the built-in scenario with a sample of each kind,
 * the text report naming the file and every borrowed footprint. The weights expected are read
 * off the files by hand (the comments say where); one seed, a short duration.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runReport } from '../../src/cli/commands/run.ts';
import { loadScenario } from '../../src/scenario/load.ts';
import { getCostModel } from '../../src/sim/costs.ts';
import type { MixItem } from '../../src/sim/scenario-types.ts';

const EX = (f: string) => fileURLToPath(new URL(`../../examples/${f}`, import.meta.url));
const SAMPLE = (f: string) => fileURLToPath(new URL(`../fixtures/tool-samples/${f}`, import.meta.url));
const weights = (mix: readonly MixItem[]) => Object.fromEntries(mix.map((m) => [m.event === 'vm-exit' ? m.reason : m.event === 'syscall' ? m.name : m.event, m.weight]));
const SHORT = { seeds: '1', workers: '1', duration: '30us', store: false, progress: false } as const;

describe('examples/workloads: the copies are the shared samples', () => {
  it.each([
    ['strace4-systemd-logind-many-errors.txt', 'strace-c'], ['sysperf-book-mysqld-old-format-elided.txt', 'perf-trace-summary'],
    ['intel-vmexit-sysbench-0xba1a-blog.txt', 'perf-kvm-stat'], ['new-fmt-amd-svm-lowercase-reasons-no-task-prefix-2024.txt', 'kvm-exit-trace'],
    ['bcc-example-pid-collapsed.txt', 'bcc-kvmexit'],
  ])('%s', (f, dir) => {
    expect(readFileSync(EX(`workloads/${f}`))).toEqual(readFileSync(SAMPLE(`${dir}/${f}`)));
  });
});

describe('an example scenario per format', () => {
  it('imported-perf-trace: mysqld\'s sendto 27239, recvfrom 69861, ppoll 15478 (lines 6-8) → poll; the written user time', () => {
    const s = loadScenario(EX('imported-perf-trace.yaml'));
    expect(weights(s.workload[0].mix)).toEqual({ sendto: 27239, recvfrom: 69861, poll: 15478, 'user-compute': 112578 });
    expect(s.notes).toContain('ppoll: syscall:ppoll has no footprint, borrows syscall:poll (do_sys_poll)');
  });

  it('imported-kvm-trace: vCPU 0\'s hlt, vintr, msr (lines 6, 8, 11); 2 us over 3 exits paired in 0 ns is the guest-run gap', () => {
    const s = loadScenario(EX('imported-kvm-trace.yaml'));
    const ghz = getCostModel(s.machine.cpu).clock.ghz;
    // Lines 1 and 13: 6204.951631 to 6204.951633, 2000 ns; hlt and vintr re-entered at the same microsecond, msr never.
    expect(weights(s.workload[0].mix)).toEqual({ HLT: 1, CPUID: 1, MSR_WRITE: 1, 'guest-run': 3 });
    expect(s.workload[0].mix.find((m) => m.event === 'guest-run')).toMatchObject({ cycles: Math.round((2000 / 3) * ghz) });
    expect(s.notes.some((n) => n.startsWith('vintr: vm-exit:INTERRUPT_WINDOW has no footprint, borrows vm-exit:CPUID'))).toBe(true);
  });

  it('imported-bcc-kvmexit: 9 rows (lines 3-11), 19335 exits in the title\'s 5 s', () => {
    const s = loadScenario(EX('imported-bcc-kvmexit.yaml'));
    const ghz = getCostModel(s.machine.cpu).clock.ghz;
    expect(weights(s.workload[0].mix)).toEqual({
      MSR_WRITE: 13467, HLT: 5060, CPUID: 345 + 6 + 2, EPT_MISCONFIG: 264, EXTERNAL_INTERRUPT: 169, EPT_VIOLATION: 18, IO_INSTRUCTION: 4,
      'guest-run': 19335,
    });
    expect(s.workload[0].mix.find((m) => m.event === 'guest-run')).toMatchObject({ cycles: Math.round((5e9 / 19335) * ghz) });
    expect(s.notes).toContain('workload[0] from workloads/bcc-example-pid-collapsed.txt (bcc-kvmexit): 8 mix items, 3867 events/s');
  });

  it.each(['imported-strace.yaml', 'imported-perf-trace.yaml', 'imported-kvm-stat.yaml', 'imported-kvm-trace.yaml', 'imported-bcc-kvmexit.yaml'])('%s runs and its report lists what was borrowed', async (f) => {
    const { text, report } = await runReport(EX(f), SHORT);
    expect(report.seeds).toBe(1);
    expect(text).toMatch(/note: workload\[0\] from workloads\/\S+ \([a-z-]+\): \d+ mix items/);
    expect(text).toMatch(/note: \S+: \S+ has no footprint, borrows (syscall|vm-exit):\w+ \(/);
  });
});

describe('kasi run --workload FILE: each kind in the built-in scenario', () => {
  it.each([
    // [sample, kind, tenant whose entry is replaced, a borrowed footprint the report must list]
    ['strace-c/strace-issue95-f-c-sleep.txt', 'strace-c', 'host-db', 'arch_prctl: syscall:arch_prctl has no footprint, borrows syscall:getppid'],
    ['perf-trace-summary/perf6.12-trace-s-true-single-thread-errors.txt', 'perf-trace-summary', 'host-db', 'rseq: syscall:rseq has no footprint, borrows syscall:getppid'],
    ['perf-kvm-stat/amd-svm-idle-baseline-notes.txt', 'perf-kvm-stat', 'victim-vm', 'vintr: vm-exit:INTERRUPT_WINDOW has no footprint, borrows vm-exit:CPUID'],
    ['kvm-exit-trace/old-fmt-trace-cmd-intel-ept-nested-vitaly-2020.txt', 'kvm-trace', 'victim-vm', null],
    ['bcc-kvmexit/bcc-example-all-threads-6s.txt', 'bcc-kvmexit', 'victim-vm', 'PREEMPTION_TIMER: vm-exit:PREEMPTION_TIMER has no footprint, borrows vm-exit:CPUID'],
  ])('%s (%s)', async (f, kind, tenant, borrowed) => {
    const { text } = await runReport(undefined, { ...SHORT, workload: SAMPLE(f) });
    expect(text).toContain(`note: workload of ${tenant} (thread `);
    expect(text).toContain(`its kernel events replaced by ${SAMPLE(f)} (${kind})`);
    if (borrowed !== null) expect(text).toContain(`note: ${borrowed}`);
    else expect(text).not.toMatch(/has no footprint, borrows/); // the one exit, EPT_VIOLATION, has a footprint of its own
  });
});
