/**
 * perf trace -s: the shared samples (counts read off the files by hand), then layouts and
 * messy input as tools/perf/builtin-trace.c and util/bpf-trace-summary.c print them.
 */
import { describe, expect, it } from 'vitest';
import { parsePerfTrace } from '../../src/formats/perf-trace.ts';
import { counts, inputError, profileOf, sample } from './helpers.ts';

const S = (name: string) => sample('perf-trace-summary', name);
const HDR = [
  '   syscall            calls  errors  total       min       avg       max       stddev',
  '                                     (msec)    (msec)    (msec)    (msec)        (%)',
  '   --------------- --------  ------ -------- --------- --------- ---------     ------',
].join('\n');

describe('perf trace -s samples', () => {
  it('perf6.12-trace-s-true-single-thread-errors: 16 rows, 32 calls, 2 errors, 0.253 ms (indented by the commit message)', () => {
    const { text, file } = S('perf6.12-trace-s-true-single-thread-errors.txt');
    const p = profileOf(parsePerfTrace, text, file);
    // Lines 9-24: calls and errors columns.
    expect(counts(p)).toEqual({
      mmap: 8, mprotect: 3, openat: 2, munmap: 1, access: 1, pread64: 4, fstat: 2, arch_prctl: 2, read: 1, close: 2, brk: 1,
      rseq: 1, prlimit64: 1, set_robust_list: 1, set_tid_address: 1, execve: 1,
    });
    expect(p.events.reduce((a, e) => a + e.count, 0)).toBe(32); // 64 events on line 3 = 32 enters + 32 exits
    expect(p.events.filter((e) => e.errors).map((e) => [e.name, e.errors])).toEqual([['access', 1], ['arch_prctl', 1]]);
    expect(p.events[0]).toEqual({ name: 'mmap', count: 8, total_ns: 150_000, errors: 0, reason: null }); // "0.150" msec
    expect(p.events.reduce((a, e) => a + (e.total_ns ?? 0), 0)).toBe(253_000); // the total column adds up to 0.253 msec
    expect(p.skipped).toEqual([]);
  });

  it('sysperf-book-mysqld-old-format-elided: the layout without errors, the [...] listed', () => {
    const { text, file } = S('sysperf-book-mysqld-old-format-elided.txt');
    const p = profileOf(parsePerfTrace, text, file);
    // Lines 6-8.
    expect(p.events).toEqual([
      { name: 'sendto', count: 27239, total_ns: 267_904_000, errors: null, reason: null },
      { name: 'recvfrom', count: 69861, total_ns: 212_213_000, errors: null, reason: null },
      { name: 'ppoll', count: 15478, total_ns: 201_183_000, errors: null, reason: null },
    ]);
    expect(p.skipped).toEqual([{ line: 10, why: 'elided rows' }]);
  });
});

describe('perf trace -s: layouts and messy input', () => {
  it('threads are summed; majfaults/minfaults of the thread line become events; --errno-summary lines are not rows', () => {
    const text = [
      '', ' Summary of events:', '',
      ' a.out (10), 8 events, 50.0%, 2 majfaults, 5 minfaults', '', HDR,
      '   read                   3      1     0.010     0.002     0.003     0.005     10.00%',
      '\t\t\t\tEAGAIN: 1',
      '', '', ' a.out (11), 4 events, 50.0%, 1 minfaults', '', HDR,
      '   read                   2      0     0.004     0.002     0.002     0.002      0.00%',
    ].join('\n');
    const p = profileOf(parsePerfTrace, text);
    expect(p.events).toEqual([
      { name: 'majfaults', count: 2, total_ns: null, errors: null, reason: null },
      { name: 'minfaults', count: 6, total_ns: null, errors: null, reason: null },
      { name: 'read', count: 5, total_ns: 14_000, errors: 1, reason: null },
    ]);
    expect(p.skipped).toEqual([]);
  });

  it('the BPF --summary-mode=total form and an unknown syscall number', () => {
    const text = ` Summary of events:\n\n total, 6194 events\n\n${HDR}\n   epoll_wait           561      0  4530.843     0.000     8.076   520.941     18.75%\n   syscall:451            2      0     0.001     0.000     0.000     0.001      1.00%\n     ...\n`;
    const p = profileOf(parsePerfTrace, text);
    expect(counts(p)).toEqual({ epoll_wait: 561, 'syscall:451': 2 });
    expect(p.events[0].total_ns).toBe(4_530_843_000);
    expect(p.skipped).toEqual([{ line: 10, why: 'elided rows' }]);
  });

  it('the first layout (3.x: count min max avg stddev): the total is calls × avg, as perf computes it', () => {
    const text = '   syscall            count       min       max       avg  stddev\n                               (msec)    (msec)    (msec)     (%)\n   --------------- -------- --------- --------- ---------  ------\n   futex                  4     0.001     0.010     0.004   20.00%\n';
    expect(profileOf(parsePerfTrace, text).events).toEqual([{ name: 'futex', count: 4, total_ns: 16_000, errors: null, reason: null }]);
  });

  it('-S: the trace lines before the summary are not counted; a wrapped row is joined; a cut-off header is inferred from the row width', () => {
    const text = [
      '     0.000 ( 0.003 ms): true/383382 brk() = 0x55d1a6c9a000',
      ' true (383382), 2 events, 100.0%',
      '   brk                    1      0     0.003     0.003     0.003',
      '0.003      0.00%',
      '   close                  1      0     0.001     0.001     0.001     0.001      0.00%',
    ].join('\n');
    const p = profileOf(parsePerfTrace, text);
    expect(p.events.map((e) => [e.name, e.count, e.total_ns])).toEqual([['brk', 1, 3000], ['close', 1, 1000]]);
    expect(p.skipped).toEqual([]);
  });

  it('a reply that mail-wrapped the header, units, divider and every row (Howard Chu on --bpf-summary, linux-perf-users, 2025-03)', () => {
    // As quoted in the reply: every line wrapped before "max"; the rows read futex 372 calls, 18 errors,
    // 4373.773 msec; poll 241, 0, 2757.963; clock_nanosleep 1, 0, 1000.093 (min 0.000, the bug the mail reports).
    const text = [
      '>      syscall            calls  errors  total       min       avg', '> max       stddev',
      '>                                        (msec)    (msec)    (msec)', '> (msec)        (%)',
      '>      --------------- --------  ------ -------- --------- ---------', '> ---------     ------',
      '>      futex                372     18  4373.773     0.000    11.757', '> 997.715    660.42%',
      '>      poll                 241      0  2757.963     0.000    11.444', '> 997.758    580.34%',
      '>      clock_nanosleep        1      0  1000.093     0.000  1000.093', '> 1000.093      0.00%',
    ].join('\n');
    const p = profileOf(parsePerfTrace, text);
    expect(p.events.map((e) => [e.name, e.count, e.errors, e.total_ns])).toEqual([
      ['futex', 372, 18, 4_373_773_000], ['poll', 241, 0, 2_757_963_000], ['clock_nanosleep', 1, 0, 1_000_093_000],
    ]);
    expect(p.skipped).toEqual([]); // the header's "max stddev" and the units' "(msec) (%)" are read as theirs
  });

  it('nothing is a summary: one line naming the first line', () => {
    expect(inputError(() => parsePerfTrace('\n\n# perf trace\nsomething else\n', 't.txt')).message)
      .toBe('t.txt:3: expected a perf trace -s summary (a "syscall  calls  errors  total  min  avg  max  stddev" header), found "# perf trace"');
  });

  it('a summary cut after its header: the end of the file is what was found', () => {
    expect(inputError(() => parsePerfTrace(` Summary of events:\n\n x (1), 2 events, 100.0%\n\n${HDR}\n`, 'c.txt')).message)
      .toBe('c.txt:7: expected a syscall row of the summary table, found the end of the file');
  });
});
