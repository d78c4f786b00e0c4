/**
 * An imported profile as a thread's mix (sim/import-mix.ts): counts are weights, syscalls and
 * exits without a footprint borrow a documented one and are listed, the duration gives the gap.
 */
import { describe, expect, it } from 'vitest';
import { importWorkload } from '../../src/formats/index.ts';
import { footprintKeys } from '../../src/sim/footprints.ts';
import { loadImportedMix, profileToMix } from '../../src/sim/import-mix.ts';
import { mixFootprintKey } from '../../src/sim/scenario-types.ts';
import { SAMPLES, sample } from '../formats/helpers.ts';

describe('profileToMix', () => {
  it('bcc kvmexit -p (5 s): weights are the counts, every item has a footprint, the borrowed ones are listed, the gap is a guest-run item', () => {
    const { text, file } = sample('bcc-kvmexit', 'bcc-example-pid-collapsed.txt');
    const { profile } = importWorkload(text, file);
    const m = profileToMix(profile, { cyclesPerNs: 2 });
    const keys = new Set(footprintKeys());
    for (const it of m.items) { const k = mixFootprintKey(it); if (k !== null) expect(keys.has(k), k).toBe(true); }
    expect(m.items.find((i) => i.event === 'vm-exit' && i.reason === 'HLT')!.weight).toBe(5060);
    // PREEMPTION_TIMER (345), PAUSE_INSTRUCTION (6) and EOI_INDUCED (2) have no footprint: they borrow CPUID, which then weighs 353.
    expect(m.borrowed.map((b) => [b.name, b.from])).toEqual([['PREEMPTION_TIMER', 'vm-exit:CPUID'], ['PAUSE_INSTRUCTION', 'vm-exit:CPUID'], ['EOI_INDUCED', 'vm-exit:CPUID']]);
    expect(m.items.find((i) => i.event === 'vm-exit' && i.reason === 'CPUID')!.weight).toBe(353);
    const total = 13467 + 5060 + 345 + 264 + 169 + 18 + 6 + 4 + 2;
    expect(m.eventsPerSecond).toBeCloseTo(total / 5, 6);
    expect(m.gapNs).toBeCloseTo(5e9 / total, 3);
    expect(m.items.at(-1)).toEqual({ event: 'guest-run', cycles: Math.round((5e9 / total) * 2), weight: total });
  });

  it('strace -c: families borrow their measured sibling, others getppid; no duration, no gap item', () => {
    const { text, file } = sample('strace-c', 'strace-issue95-f-c-sleep.txt');
    const m = profileToMix(importWorkload(text, file).profile, { cyclesPerNs: 2 });
    expect(m.borrowed.find((b) => b.name === 'fstat')).toMatchObject({ from: 'syscall:newfstatat' });
    expect(m.borrowed.find((b) => b.name === 'execve')).toMatchObject({ from: 'syscall:getppid' });
    expect(m.items.find((i) => i.event === 'syscall' && i.name === 'newfstatat')!.weight).toBe(3 + 3); // fstat 3 + access 3
    expect(m.gapNs).toBeNull();
    expect(m.items.some((i) => i.event === 'user-compute')).toBe(false);
  });

  it('loadImportedMix (the scenario hook): one vCPU of a trace; a file without a vCPU breakdown replays all of it, with a note', () => {
    const trace = loadImportedMix(`${SAMPLES}/kvm-exit-trace/new-fmt-amd-svm-lowercase-reasons-no-task-prefix-2024.txt`, { kind: 'kvm-trace', vcpu: 0 });
    expect(trace.items.map((i) => (i.event === 'vm-exit' ? [i.reason, i.weight] : i.event))).toEqual([['HLT', 1], ['CPUID', 1], ['MSR_WRITE', 1]]);
    expect(trace.notes).toEqual(['vintr: vm-exit:INTERRUPT_WINDOW has no footprint, borrows vm-exit:CPUID (handled in KVM without emulation: the bare exit round trip plus a handler)']);
    const stat = loadImportedMix(`${SAMPLES}/perf-kvm-stat/intel-vmexit-sysbench-0xba1a-blog.txt`, { vcpu: 0 });
    expect(stat.format).toBe('perf-kvm-stat');
    expect(stat.notes[0]).toMatch(/no per-vCPU breakdown; vCPU 0 replays the counts of the whole file$/);
    expect(stat.items.reduce((a, i) => a + i.weight, 0)).toBe(25898);
  });
});
