/**
 * bcc kvmexit.py: the shared samples (counted by hand), the other output forms of the script
 * (-a, -v, Ctrl-C) and its traceback as an error.
 */
import { describe, expect, it } from 'vitest';
import { parseBccKvmexit } from '../../src/formats/bcc-kvmexit.ts';
import { counts, inputError, profileOf, sample } from './helpers.ts';

const S = (name: string) => sample('bcc-kvmexit', name);

describe('bcc kvmexit samples', () => {
  it('bcc-example-all-threads-6s: two VMs summed, the EXIT_REASON_ prefix dropped, 6 s', () => {
    const { text, file } = S('bcc-example-all-threads-6s.txt');
    const p = profileOf(parseBccKvmexit, text, file);
    // Lines 3-12 (pid 1273903) plus lines 13-20 (pid 1273551), by reason.
    expect(counts(p)).toEqual({
      EXTERNAL_INTERRUPT: 175 + 18, CPUID: 10, HLT: 6043 + 989, IO_INSTRUCTION: 24 + 10, MSR_WRITE: 15025 + 2205,
      PAUSE_INSTRUCTION: 11 + 1, EOI_INDUCED: 12 + 5, EPT_VIOLATION: 6, EPT_MISCONFIG: 380 + 61, PREEMPTION_TIMER: 194 + 14,
    });
    expect(p.events.every((e) => e.reason === `vm-exit:${e.name}` && e.total_ns === null)).toBe(true);
    expect(p.duration_ns).toBe(6e9); // line 1: "after sleeping 6 secs."
    expect(p.skipped).toEqual([]);
  });

  it('bcc-example-pid-collapsed: the -p form without id columns, 5 s', () => {
    const { text, file } = S('bcc-example-pid-collapsed.txt');
    const p = profileOf(parseBccKvmexit, text, file);
    // Lines 3-11.
    expect(counts(p)).toEqual({
      MSR_WRITE: 13467, HLT: 5060, PREEMPTION_TIMER: 345, EPT_MISCONFIG: 264, EXTERNAL_INTERRUPT: 169, EPT_VIOLATION: 18,
      PAUSE_INSTRUCTION: 6, IO_INSTRUCTION: 4, EOI_INDUCED: 2,
    });
    expect(p.duration_ns).toBe(5e9);
  });

  it('bcc-example-vcpu-error-traceback: the tool failed, one error at the traceback with its exception', () => {
    const { text, file } = S('bcc-example-vcpu-error-traceback.txt');
    expect(inputError(() => parseBccKvmexit(text, 'tb.txt')).message)
      .toBe('tb.txt:1: expected a kvmexit.py table, found a Python traceback (the tool failed: "Exception: There\'s no vCPU 4 for PID 1273795.")');
    expect(file).toMatch(/traceback/);
  });
});

describe('bcc kvmexit: other forms', () => {
  it('-p -v: the rows are that vCPU\'s; Ctrl-C: no duration; "TPAUSEN/A" (the script\'s missing comma) is TPAUSE; N/A has no key', () => {
    const text = 'Display kvm exit reasons and statistics for PID 77 VCPU 1... Hit Ctrl-C to end.\n\nKVM_EXIT_REASON                     COUNT\nHLT                                 12\nTPAUSEN/A                           3\nN/A                                 1\n';
    const p = profileOf(parseBccKvmexit, text, 'v', 1);
    expect(p.events.map((e) => [e.name, e.count, e.reason])).toEqual([['HLT', 12, 'vm-exit:HLT'], ['TPAUSEN/A', 3, 'vm-exit:TPAUSE'], ['N/A', 1, null]]);
    expect(p.duration_ns).toBeNull();
  });

  it('-p -a: a TID column; a row of the wrong width and the author\'s "..." are listed', () => {
    const text = 'Display kvm exit reasons and statistics for PID 77 and its all threads after sleeping 2 secs.\nTID      KVM_EXIT_REASON                     COUNT\n78       HLT                                 5\n79       HLT                                 6\n1 2      HLT                                 7\n...\n';
    const p = profileOf(parseBccKvmexit, text);
    expect(counts(p)).toEqual({ HLT: 11 });
    expect(p.skipped).toEqual([{ line: 5, why: 'not a row of this table' }, { line: 6, why: 'elided rows' }]);
  });

  it('AMD (kvmexit.py since 2025-07): SVM_EXIT_REASONS by macro suffix, mapped as svm.h\'s exits', () => {
    // tools/kvmexit.py SVM_EXIT_REASONS: 0x400 "NPF", 0x7c "MSR", 0x60 "INTR", 0x7b "IOIO", 0x64 "VINTR", 0x93 "CR3_WRITE_TRAP", 0x5f "LAST_EXCP".
    const text = 'Display kvm exit reasons and statistics for PID 4242 after sleeping 2 secs.\nKVM_EXIT_REASON                     COUNT\n'
      + ['NPF 9120', 'MSR 3001', 'INTR 1200', 'IOIO 64', 'HLT 50', 'VINTR 7', 'CR3_WRITE_TRAP 3', 'LAST_EXCP 1'].map((r) => `${r.split(' ')[0].padEnd(35)} ${r.split(' ')[1].padEnd(8)}`).join('\n');
    const p = profileOf(parseBccKvmexit, text);
    expect(p.events.map((e) => [e.name, e.count, e.reason])).toEqual([
      ['NPF', 9120, 'vm-exit:EPT_VIOLATION'], ['MSR', 3001, 'vm-exit:MSR_WRITE'], ['INTR', 1200, 'vm-exit:EXTERNAL_INTERRUPT'],
      ['IOIO', 64, 'vm-exit:IO_INSTRUCTION'], ['HLT', 50, 'vm-exit:HLT'], ['VINTR', 7, 'vm-exit:INTERRUPT_WINDOW'],
      ['CR3_WRITE_TRAP', 3, 'vm-exit:CR_ACCESS'], ['LAST_EXCP', 1, 'vm-exit:EXCEPTION_NMI'],
    ]);
    expect(p.duration_ns).toBe(2e9);
  });

  it('a title with no rows: the end of the file is what was found', () => {
    expect(inputError(() => parseBccKvmexit('Display kvm exit reasons and statistics for all threads after sleeping 1 secs.\nPID      TID      KVM_EXIT_REASON                     COUNT\n', 'e')).message)
      .toBe('e:2: expected a "REASON COUNT" row of the kvmexit.py table, found the end of the file');
  });
});
