/**
 * kvm_exit / kvm_entry traces: the shared samples (counted by hand), then every generation of
 * arch/x86/kvm/trace.h's format, the prefixes of ftrace, trace-cmd and perf script, pairing.
 */
import { describe, expect, it } from 'vitest';
import { parseKvmTrace } from '../../src/formats/kvm-trace.ts';
import { counts, inputError, profileOf, sample } from './helpers.ts';

const S = (name: string) => sample('kvm-exit-trace', name);

describe('kvm_exit trace samples', () => {
  it('new-fmt-amd-svm-lowercase-reasons-no-task-prefix-2024: three exits of vCPU 0, paired exits take 0 ns at µs resolution', () => {
    const { text, file } = S('new-fmt-amd-svm-lowercase-reasons-no-task-prefix-2024.txt');
    const p = profileOf(parseKvmTrace, text, file);
    // kvm_exit on lines 6 (hlt), 8 (vintr), 11 (msr, info1 0x1: a write). hlt and vintr are each
    // followed by a kvm_entry with the same timestamp (lines 7, 10); msr by none.
    expect(p.events).toEqual([
      { name: 'hlt', count: 1, total_ns: 0, errors: null, reason: 'vm-exit:HLT' },
      { name: 'vintr', count: 1, total_ns: 0, errors: null, reason: 'vm-exit:INTERRUPT_WINDOW' },
      { name: 'msr', count: 1, total_ns: null, errors: null, reason: 'vm-exit:MSR_WRITE' },
    ]);
    expect(p.duration_ns).toBe(2000); // 6204.951631 (line 1) to 6204.951633 (line 13)
    expect(p.skipped).toEqual([]);
    expect(counts(profileOf(parseKvmTrace, text, file, 0))).toEqual({ hlt: 1, vintr: 1, msr: 1 });
  });

  it('new-fmt-trace-cmd-intel-exception-nmi-paolo-2022: one EXCEPTION_NMI exit, never re-entered in the excerpt', () => {
    const { text, file } = S('new-fmt-trace-cmd-intel-exception-nmi-paolo-2022.txt');
    const p = profileOf(parseKvmTrace, text, file);
    expect(p.events).toEqual([{ name: 'EXCEPTION_NMI', count: 1, total_ns: null, errors: null, reason: 'vm-exit:EXCEPTION_NMI' }]); // line 2
    expect(p.duration_ns).toBe(4000); // 758186.750321 to .750325
  });

  it('old-fmt-trace-cmd-intel-ept-nested-vitaly-2020: the old "reason X rip ... info a b" form; kvm_nested_vmexit is not a second exit', () => {
    const { text, file } = S('old-fmt-trace-cmd-intel-ept-nested-vitaly-2020.txt');
    const p = profileOf(parseKvmTrace, text, file);
    expect(p.events).toEqual([{ name: 'EPT_VIOLATION', count: 1, total_ns: null, errors: null, reason: 'vm-exit:EPT_VIOLATION' }]); // line 1
    expect(p.duration_ns).toBe(12_000); // 22018.775584 to .775596
    expect(inputError(() => profileOf(parseKvmTrace, text, file, 0)).message).toMatch(/no per-vCPU breakdown/); // the old format names no vCPU
  });
});

describe('kvm_exit traces: formats and pairing', () => {
  it('ftrace lines with a flags column, perf script lines, raw fields; exit→entry pairs per task give time', () => {
    const text = [
      '# tracer: nop',
      '#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION',
      ' CPU 0/KVM-4242    [003] d..1.   100.000010: kvm_exit: vcpu 0 reason EPT_VIOLATION rip 0xffffffff81000000 info1 0x0000000000000181 info2 0x0000000000000000 intr_info 0x00000000 error_code 0x00000000',
      ' CPU 1/KVM-4243    [001] d..1.   100.000012: kvm_exit: vcpu 1 reason MSR_WRITE rip 0x1 info1 0x0000000000000000 info2 0x0000000000000000 intr_info 0x00000000 error_code 0x00000000 requests 0x0000000000000000',
      ' CPU 0/KVM-4242    [003] d..1.   100.000015: kvm_entry: vcpu 0, rip 0xffffffff81000000',
      ' CPU 1/KVM-4243    [001] d..1.   100.000013: kvm_entry: vcpu 1, rip 0x3',
      'qemu-kvm  4244 [002] 100.000020: kvm:kvm_exit: exit_reason=12 guest_rip=0x4 isa=1 info1=0x0 info2=0x0 vcpu_id=2',
      'qemu-kvm  4244 [002] 100.000030: kvm:kvm_entry: vcpu_id=2 rip=0x5',
    ].join('\n');
    const p = profileOf(parseKvmTrace, text);
    expect(p.events).toEqual([
      { name: 'EPT_VIOLATION', count: 1, total_ns: 5000, errors: null, reason: 'vm-exit:EPT_VIOLATION' },
      { name: 'MSR_WRITE', count: 1, total_ns: 1000, errors: null, reason: 'vm-exit:MSR_WRITE' },
      { name: 'HLT', count: 1, total_ns: 10_000, errors: null, reason: 'vm-exit:HLT' },
    ]);
    expect(p.duration_ns).toBe(20_000);
    expect(p.skipped).toEqual([]);
    expect(counts(profileOf(parseKvmTrace, text, 'f', 1))).toEqual({ MSR_WRITE: 1 });
  });

  it('vcpu from kvm_entry for the old format; FAILED_VMENTRY; trace-cmd plugin names; an SVM msr read; UNKNOWN', () => {
    const text = [
      'qemu-1 [000] 1.000000: kvm_entry: vcpu 3',
      'qemu-1 [000] 1.000001: kvm_exit: reason INVALID_STATE FAILED_VMENTRY rip 0x0 info 0 0',
      'qemu-1 [000] 1.000002: kvm_exit: reason EXIT_NPF rip 0xfff0 info 100000004 febd0000',
      'qemu-1 [000] 1.000003: kvm_exit: reason EXIT_REASON_HLT rip 0x10 info 0 0',
      'qemu-1 [000] 1.000004: kvm_exit: vcpu 3 reason msr rip 0x1 info1 0x0000000000000000 info2 0x0 intr_info 0x0 error_code 0x0',
      'qemu-1 [000] 1.000005: kvm_exit: reason UNKNOWN (99) rip 0x10 info 0 0',
      'qemu-1 [000] 1.000006: kvm_exit: garbage',
    ].join('\n');
    const p = profileOf(parseKvmTrace, text, 'f', 3);
    expect(p.events.map((e) => [e.name, e.count, e.reason])).toEqual([
      ['INVALID_STATE FAILED_VMENTRY', 1, 'vm-exit:INVALID_STATE'], ['EXIT_NPF', 1, 'vm-exit:EPT_VIOLATION'],
      ['HLT', 1, 'vm-exit:HLT'], ['msr', 1, 'vm-exit:MSR_READ'], ['UNKNOWN (99)', 1, null],
    ]);
    expect(p.skipped).toEqual([{ line: 7, why: 'a kvm_exit line in no known format' }]);
  });

  it('no kvm_exit line: one error; other trace events alone are not exits', () => {
    expect(inputError(() => parseKvmTrace(' 1.000: kvm_apic: apic_write APIC_EOI = 0x0\n', 'k')).message)
      .toMatch(/^k:1: expected kvm_exit trace lines .*, found " ?1\.000: kvm_apic: apic_write APIC_EOI = 0x0"$/);
  });
});
