/**
 * perf kvm stat: the shared samples (counts read off the files by hand), then live mode,
 * per-VCPU reports and messy input as tools/perf/builtin-kvm.c print_result() prints them.
 */
import { describe, expect, it } from 'vitest';
import { parsePerfKvmStat } from '../../src/formats/perf-kvm-stat.ts';
import { counts, inputError, profileOf, sample } from './helpers.ts';

const S = (name: string) => sample('perf-kvm-stat', name);
const sum = (p: { events: { count: number }[] }) => p.events.reduce((a, e) => a + e.count, 0);

describe('perf kvm stat samples', () => {
  it('amd-svm-idle-baseline-notes: svm.h lower-case reasons mapped onto footprint keys; rows add up to Total Samples', () => {
    const { text, file } = S('amd-svm-idle-baseline-notes.txt');
    const p = profileOf(parsePerfKvmStat, text, file);
    // Lines 7-9.
    expect(p.events).toEqual([
      { name: 'interrupt', count: 619522, total_ns: 353_127_540, errors: null, reason: 'vm-exit:EXTERNAL_INTERRUPT' }, // 0.57us avg
      { name: 'msr', count: 4517, total_ns: 3_523_260, errors: null, reason: 'vm-exit:MSR_WRITE' }, // 0.78us avg
      { name: 'vintr', count: 2, total_ns: 1_640, errors: null, reason: 'vm-exit:INTERRUPT_WINDOW' }, // 0.82us avg
    ]);
    expect(sum(p)).toBe(624041); // line 11: "Total Samples:624041"
    expect(p.kind).toBe('vm-exits');
    expect(p.skipped).toEqual([]);
  });

  it('intel-hyperv-mail-wrapped-lines: the wrapped header and every wrapped row are read, the VMCALL row without its ")" too', () => {
    const { text, file } = S('intel-hyperv-mail-wrapped-lines.txt');
    const p = profileOf(parsePerfKvmStat, text, file);
    // Lines 4-11, two lines a row.
    expect(counts(p)).toEqual({ APIC_WRITE: 172232, DR_ACCESS: 19136, EXTERNAL_INTERRUPT: 15921, VMCALL: 6971 });
    expect(p.events.find((e) => e.name === 'VMCALL')!.total_ns).toBe(38_201_080); // 6971 × 5.48us
    // The four rows add up to 214260 samples (78.36 + 8.71 + 7.24 + 3.17 = 97.48% of them), line 12 says
    // "Total Samples:219802": the author cut 5542 samples' rows. Said at that line, not hidden.
    expect(p.skipped).toEqual([{ line: 12, why: 'the rows read add up to 214260 samples, this line says 219802: 5542 are in rows the file does not have (cut?)' }]);
  });

  it('intel-live-win10-guest-timestamp-1: live mode with its timestamp line; 10 rows adding up to 70746', () => {
    const { text, file } = S('intel-live-win10-guest-timestamp-1.txt');
    const p = profileOf(parsePerfKvmStat, text, file);
    // Lines 7-16.
    expect(counts(p)).toEqual({
      IO_INSTRUCTION: 55654, MSR_READ: 7114, MSR_WRITE: 3781, HLT: 2933, EXTERNAL_INTERRUPT: 731, PENDING_INTERRUPT: 413,
      TPR_BELOW_THRESHOLD: 82, EPT_VIOLATION: 26, EPT_MISCONFIG: 7, PAUSE_INSTRUCTION: 5,
    });
    expect(sum(p)).toBe(70746); // line 18
    expect(p.events.find((e) => e.name === 'PENDING_INTERRUPT')!.reason).toBe('vm-exit:INTERRUPT_WINDOW'); // the pre-5.x name
    expect(p.events.find((e) => e.name === 'TPR_BELOW_THRESHOLD')!.reason).toBe('vm-exit:TPR_BELOW_THRESHOLD');
    expect(p.duration_ns).toBeNull(); // one timestamp: no interval
  });

  it('intel-vmexit-sysbench-0xba1a-blog: 9 rows adding up to 25898; HLT max filling its column', () => {
    const { text, file } = S('intel-vmexit-sysbench-0xba1a-blog.txt');
    const p = profileOf(parsePerfKvmStat, text, file);
    // Lines 7-15.
    expect(counts(p)).toEqual({
      MSR_WRITE: 9167, EXTERNAL_INTERRUPT: 5877, PREEMPTION_TIMER: 5728, HLT: 2232, CPUID: 2160, PAUSE_INSTRUCTION: 390,
      EPT_MISCONFIG: 303, EOI_INDUCED: 37, EXCEPTION_NMI: 4,
    });
    expect(sum(p)).toBe(25898); // line 17
    expect(p.events.find((e) => e.name === 'HLT')!.total_ns).toBe(68_227_642_080); // 2232 × 30567.94us
  });

  it('perf3.7-era-mmio-event-indented: the first layout (no Min/Max), MMIO keys, 4-space indent', () => {
    const { text, file } = S('perf3.7-era-mmio-event-indented.txt');
    const p = profileOf(parsePerfKvmStat, text, file);
    expect(p.kind).toBe('mmio');
    // Lines 5-8: all in the local APIC page, so APIC_ACCESS exits.
    expect(p.events.map((e) => [e.name, e.count, e.reason])).toEqual([
      ['0xfee00380:W', 58686, 'vm-exit:APIC_ACCESS'], ['0xfee00300:R', 2124, 'vm-exit:APIC_ACCESS'],
      ['0xfee00310:W', 2124, 'vm-exit:APIC_ACCESS'], ['0xfee00300:W', 2123, 'vm-exit:APIC_ACCESS'],
    ]);
    expect(sum(p)).toBe(65057); // line 10
  });
});

const HEADER = '             VM-EXIT    Samples  Samples%     Time%    Min Time    Max Time         Avg time';
const row = (name: string, n: number, avg: string) => `${name.padStart(20)} ${String(n).padStart(10)}    50.00%    50.00%      0.50us      9.00us      ${avg}us ( +-   1.00% )`;
/** A report as print_result() prints it; its Total Samples is the rows' sum, as the tool's is. */
const table = (rows: string[], total: boolean) => {
  const n = rows.reduce((a, r) => a + Number(/(\d+)\s+[\d.]+%/.exec(r)![1]), 0);
  return ['', '', 'Analyze events for all VMs, all VCPUs:', '', HEADER, '', ...rows, '', ...(total ? [`Total Samples:${n}, Total events handled time:2.00us.`, ''] : [])];
};

describe('perf kvm stat: live mode, VCPU sections, messy input', () => {
  it('live mode: of repeated tables the last complete one counts, its interval is the duration, the others are listed', () => {
    const text = [
      '\x1b[H\x1b[2J10:00:00.000000', ...table([row('HLT', 5, '1.00')], true),
      '\x1b[H\x1b[2J10:00:01.000000', ...table([row('HLT', 7, '1.00'), row('MSR_WRITE', 1, '2.00')], true),
      '\x1b[H\x1b[2J10:00:02.500000', ...table([row('HLT', 1, '1.00')], false),
    ].join('\n');
    const p = profileOf(parsePerfKvmStat, text);
    expect(counts(p)).toEqual({ HLT: 7, MSR_WRITE: 1 });
    expect(p.duration_ns).toBe(1_000_000_000);
    expect(p.skipped.map((s) => s.why)).toEqual([
      'an earlier table of the same section (live mode: the last complete table counts)',
      'an incomplete table (no "Total Samples" line): the last complete one counts',
    ]);
  });

  it('live --duration: the "event took" lines handle_end_event() prints between tables are not rows and not skipped', () => {
    const text = [
      '\x1b[H\x1b[2J10:00:00.000000', '1234567890123 VM 4242, vcpu 0: EPT_VIOLATION event took 1500usec', ...table([row('HLT', 2, '1.00')], true),
    ].join('\n');
    const p = profileOf(parsePerfKvmStat, text);
    expect(counts(p)).toEqual({ HLT: 2 });
    expect(p.skipped).toEqual([]);
  });

  it('per-VCPU reports are summed; --vcpu picks one; stderr lines in between are listed', () => {
    const text = [
      'Analyze events for all VMs, VCPU 0:', '', HEADER, '', row('HLT', 3, '1.00'), row('CPUID', 2, '0.50'), '',
      'Warning: 1 out of order events recorded.',
      'Analyze events for all VMs, VCPU 1:', '', HEADER, '', row('HLT', 4, '1.00'), '',
    ].join('\n');
    expect(counts(profileOf(parsePerfKvmStat, text))).toEqual({ HLT: 7, CPUID: 2 });
    expect(counts(profileOf(parsePerfKvmStat, text, 'f', 1))).toEqual({ HLT: 4 });
    expect(profileOf(parsePerfKvmStat, text).skipped).toEqual([{ line: 8, why: 'not a row of this table' }]);
    expect(inputError(() => profileOf(parsePerfKvmStat, text, 'f', 2)).message).toBe('f: no events of vCPU 2 (the file has vCPU 0, 1)');
  });

  it('an AMD reason with a space ("PF excp"), a row cut with [...], an ioport table', () => {
    const text = ['Analyze events for all VMs, all VCPUs:', HEADER, row('PF excp', 9, '3.00'), '[...]', row('npf', 4, '2.00')].join('\n');
    const p = profileOf(parsePerfKvmStat, text);
    expect(p.events.map((e) => [e.name, e.count, e.reason])).toEqual([['PF excp', 9, 'vm-exit:EXCEPTION_NMI'], ['npf', 4, 'vm-exit:EPT_VIOLATION']]);
    expect(p.skipped).toEqual([{ line: 4, why: 'elided rows' }]);
    const io = profileOf(parsePerfKvmStat, `Analyze events for all VMs, all VCPUs:\n      IO Port Access    Samples  Samples%     Time%    Min Time    Max Time         Avg time\n${row('0xcf8:POUT', 12, '4.00')}\n`);
    expect(io.kind).toBe('ioport');
    expect(io.events[0]).toMatchObject({ name: '0xcf8:POUT', count: 12, reason: 'vm-exit:IO_INSTRUCTION' });
  });

  it('a table quoted in a mail reply ("> > "), its header wrapped before "Max Time"', () => {
    const text = [
      'On Sat, Nov 05, 2022, someone wrote:', '> > ', '> >   Analyze events for all VMs, VCPU 27:', '> > ',
      '> >                VM-EXIT    Samples  Samples%     Time%    Min Time', '> > Max Time         Avg time', '> > ',
      '> >                  SYS64        808    98.54%    91.24%      0.00us    303.76us      3.46us ( +-  13.54% )',
      '> >                    WFx         10     1.22%     7.79%      0.00us     69.48us     23.91us ( +-  25.91% )',
      '> >   Total Samples:820, Total events handled time:3068.28us.', '> ',
    ].join('\n');
    const p = profileOf(parsePerfKvmStat, text, 'mail', 27);
    expect(p.events.map((e) => [e.name, e.count, e.reason])).toEqual([['SYS64', 808, null], ['WFx', 10, null]]); // arm64 names: no x86 key
    // 808 + 10 = 818 rows' samples (98.54% + 1.22%), the quoted total 820: the quoting cut a row of 2 samples.
    expect(p.skipped).toEqual([
      { line: 1, why: 'not part of a perf kvm stat table' },
      { line: 10, why: 'the rows read add up to 818 samples, this line says 820: 2 are in rows the file does not have (cut?)' },
    ]);
  });

  it('a reply quoting two wrapped reports (Vitaly Kuznetsov quoting Liang Li, "About the performance of hyper-v", kvm/qemu-devel 2021)', () => {
    // As quoted: the first report is complete (Total Samples:787803) but its two rows hold 471831 + 238932 = 710763
    // samples (59.89% + 30.33%); the excerpt kept here ends after the second report's first row. The last complete table counts.
    const text = [
      '> perf stat will show something like below [recorded for 5 seconds]',
      '>',
      '> ---------',
      '>',
      '> Analyze events for all VMs, all VCPUs:',
      '>              VM-EXIT    Samples  Samples%     Time%    Min Time    Max',
      '> Time         Avg time',
      '>   EXTERNAL_INTERRUPT     471831    59.89%    68.58%      0.64us',
      '> 65.42us      2.34us ( +-   0.11% )',
      '>            MSR_WRITE     238932    30.33%    23.07%      0.48us',
      '> 41.05us      1.56us ( +-   0.14% )',
      '>',
      '> Total Samples:787803, Total events handled time:1611193.84us.',
      '>',
      '> I tried turning off hyper-v for the same workload and repeat the test,',
      '> the overall virtualization overhead reduced by about of 50%:',
      '>',
      '> -------',
      '>',
      '> Analyze events for all VMs, all VCPUs:',
      '>',
      '>              VM-EXIT    Samples  Samples%     Time%    Min Time    Max',
      '> Time         Avg time',
      '>           APIC_WRITE     255152    74.43%    50.72%      0.49us',
      '> 50.01us      1.42us ( +-   0.14% )',
    ].join('\n');
    const p = profileOf(parsePerfKvmStat, text);
    expect(counts(p)).toEqual({ EXTERNAL_INTERRUPT: 471831, MSR_WRITE: 238932 });
    expect(p.skipped.filter((x) => !x.why.startsWith('not part of'))).toEqual([
      { line: 13, why: 'the rows read add up to 710763 samples, this line says 787803: 77040 are in rows the file does not have (cut?)' },
      { line: 22, why: 'an incomplete table (no "Total Samples" line): the last complete one counts' },
    ]);
  });

  it('rows pasted without the header: the layout is taken from the first row', () => {
    const p = profileOf(parsePerfKvmStat, `${row('HLT', 3, '1.00')}\n${row('CPUID', 2, '0.50')}\n`);
    expect(p.events.map((e) => [e.name, e.count, e.total_ns])).toEqual([['HLT', 3, 3000], ['CPUID', 2, 1000]]);
    const mmio = profileOf(parsePerfKvmStat, '        0xfee00380:W      58686    90.21%    15.67%      4.95us ( +-   2.96% )\n');
    expect(mmio.kind).toBe('mmio');
  });

  it('a complete report of no samples is an empty profile; a table cut after its header is one error', () => {
    expect(profileOf(parsePerfKvmStat, `Analyze events for all VMs, VCPU 4:\n\n${HEADER}\n\nTotal Samples:0, Total events handled time:0.00us.\n`).events).toEqual([]);
    const e = inputError(() => parsePerfKvmStat(`Analyze events for all VMs, all VCPUs:\n\n${HEADER}\n\n`, 'k.txt'));
    expect(e.message).toBe('k.txt:4: expected a row of the perf kvm stat table, found the end of the file');
    expect(inputError(() => parsePerfKvmStat('perf: not found\n', 'k.txt')).message).toMatch(/^k\.txt:1: expected a perf kvm stat table .*, found "perf: not found"$/);
  });
});
