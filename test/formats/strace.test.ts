/**
 * strace -c: one test per shared sample, with the counts read off the sample by hand (the
 * comments say where), then messy input built the way strace's src/count.c prints.
 */
import { describe, expect, it } from 'vitest';
import { parseStraceC } from '../../src/formats/strace.ts';
import { detectFormat } from '../../src/formats/detect.ts';
import { counts, inputError, profileOf, sample } from './helpers.ts';

const S = (name: string) => sample('strace-c', name);

describe('strace -c samples', () => {
  it('strace-cw-pr396-author-elided: three rows, the author\'s "..." listed as skipped', () => {
    const { text, file } = S('strace-cw-pr396-author-elided.txt');
    const p = profileOf(parseStraceC, text, file);
    // Rows 3-5 of the file: wait4 4 calls / 2 errors / 0.054119 s, newfstatat 68 / 64 / 0.001591 s, vfork 2 / blank / 0.000937 s.
    expect(p.events).toEqual([
      { name: 'wait4', count: 4, total_ns: 54_119_000, errors: 2, reason: null },
      { name: 'newfstatat', count: 68, total_ns: 1_591_000, errors: 64, reason: null },
      { name: 'vfork', count: 2, total_ns: 937_000, errors: 0, reason: null },
    ]);
    expect(p.kind).toBe('syscalls');
    expect(p.duration_ns).toBeNull();
    expect(p.skipped).toEqual([{ line: 6, why: 'elided rows' }]); // line 6 is "..."
  });

  it('strace-issue95-f-c-sleep: all 12 rows; they add up to the total row (32 calls, 3 errors, 0.000476 s)', () => {
    const { text, file } = S('strace-issue95-f-c-sleep.txt');
    const p = profileOf(parseStraceC, text, file);
    // Lines 3-14, calls column.
    expect(counts(p)).toEqual({ mmap: 6, mprotect: 4, openat: 3, close: 5, munmap: 1, nanosleep: 1, fstat: 3, brk: 3, read: 1, access: 3, arch_prctl: 1, execve: 1 });
    const sum = (k: 'count' | 'errors' | 'total_ns') => p.events.reduce((a, e) => a + (e[k] ?? 0), 0);
    expect(sum('count')).toBe(32); // line 16: "100.00    0.000476                    32         3 total"
    expect(sum('errors')).toBe(3);
    expect(sum('total_ns')).toBe(476_000);
    expect(p.events.find((e) => e.name === 'access')).toMatchObject({ errors: 3, total_ns: 12_000 });
    expect(p.skipped).toEqual([]);
  });

  it('strace4-rhel6-attach-detach-messages: the old attach/detach lines are not rows and not skipped', () => {
    const { text, file } = S('strace4-rhel6-attach-detach-messages.txt');
    const p = profileOf(parseStraceC, text, file);
    // Lines 5-6; the total row (line 8) says 332 calls, 0.033997 s.
    expect(p.events).toEqual([
      { name: 'nanosleep', count: 331, total_ns: 33_997_000, errors: 0, reason: null },
      { name: 'restart_syscall', count: 1, total_ns: 0, errors: 0, reason: null },
    ]);
    expect(p.skipped).toEqual([]);
  });

  it('strace4-systemd-logind-many-errors: 21 rows adding up to 235612 calls and 11055 errors', () => {
    const { text, file } = S('strace4-systemd-logind-many-errors.txt');
    const p = profileOf(parseStraceC, text, file);
    expect(p.events).toHaveLength(21); // lines 5-25
    expect(p.events[0]).toEqual({ name: 'recvmsg', count: 52055, total_ns: 306_078_000, errors: 8539, reason: null }); // line 5
    expect(p.events.find((e) => e.name === 'mkdir')).toMatchObject({ count: 2516, errors: 2516 }); // line 16
    expect(p.events.find((e) => e.name === 'read')).toMatchObject({ count: 8, total_ns: 0 }); // line 25
    expect(p.events.reduce((a, e) => a + e.count, 0)).toBe(235612); // line 27, the total row
    expect(p.events.reduce((a, e) => a + (e.errors ?? 0), 0)).toBe(11055);
    expect(p.skipped).toEqual([]);
  });
});

const HEAD = '% time     seconds  usecs/call     calls    errors syscall\n------ ----------- ----------- --------- --------- ----------------\n';
const FOOT = '------ ----------- ----------- --------- --------- ----------------\n';

describe('strace -c: messy input keeps every readable row', () => {
  it('a table cut mid-row: the rows before it are kept, the cut line is listed', () => {
    const p = profileOf(parseStraceC, `${HEAD} 92.39    0.054119       13529         4         2 wait4\n  2.72    0.001591          23        68\n`);
    expect(counts(p)).toEqual({ wait4: 4 });
    expect(p.skipped).toEqual([{ line: 4, why: 'a partial row (columns missing)' }]);
  });

  it('a mail-wrapped row is joined with its continuation', () => {
    const p = profileOf(parseStraceC, `${HEAD} 92.39    0.054119       13529         4\n2 wait4\n  1.60    0.000937         468         2           vfork\n`);
    expect(p.events.map((e) => [e.name, e.count, e.errors])).toEqual([['wait4', 4, 2], ['vfork', 2, 0]]);
    expect(p.skipped).toEqual([]);
  });

  it('program output, +++ exited, signals and strace: lines around the table; other text is listed', () => {
    const text = `strace: Process 77 attached\nhello from the program\n--- SIGCHLD {si_signo=SIGCHLD} ---\n+++ exited with 0 +++\n${HEAD} 50.00    0.000010          10         1           read\n 50.00    0.000010          10         1           write\n${FOOT}100.00    0.000020          10         2           total\n`;
    const p = profileOf(parseStraceC, text);
    expect(counts(p)).toEqual({ read: 1, write: 1 });
    expect(p.skipped).toEqual([{ line: 2, why: 'not part of a strace -c table' }]);
  });

  it('the 32-bit personality table is summed with the first', () => {
    const text = `${HEAD} 100.00    0.000010          10         3           read\n${FOOT}100.00    0.000010          3           total\nSystem call usage summary for 32 bit mode:\n${HEAD} 100.00    0.000020          10         2         1 read\n${FOOT}100.00    0.000020          10         2         1 total\n`;
    const p = profileOf(parseStraceC, text);
    expect(p.events).toEqual([{ name: 'read', count: 5, total_ns: 30_000, errors: 1, reason: null }]);
  });

  it('-U columns: shortest/longest and wall-total, a table without errors column, indentation from a code block', () => {
    const text = [
      '    calls   shortest    longest wall-total syscall',
      '    ----- ---------- ---------- ---------- ----------------',
      '        7   0.000001   0.000004   0.000012 getpid',
      '        2   0.000002   0.000003   0.000005 munmap',
    ].join('\n');
    const p = profileOf(parseStraceC, text);
    expect(p.events).toEqual([
      { name: 'getpid', count: 7, total_ns: 12_000, errors: null, reason: null },
      { name: 'munmap', count: 2, total_ns: 5_000, errors: null, reason: null },
    ]);
  });

  it('a row after which the author wrote a comment: the comment is listed, the rows kept', () => {
    const p = profileOf(parseStraceC, `${HEAD} 92.39    0.054119       13529         4         2 wait4\n# the rest is boring\n  1.60    0.000937         468         2           vfork\n`);
    expect(counts(p)).toEqual({ wait4: 4, vfork: 2 });
    expect(p.skipped).toEqual([{ line: 4, why: 'annotation' }]);
  });

  it('a table pasted without its header: the default columns (% time, seconds, usecs/call, calls, errors, syscall)', () => {
    const p = profileOf(parseStraceC, ' 92.39    0.054119       13529         4         2 wait4\n  1.60    0.000937         468         2           vfork\n');
    expect(p.events.map((e) => [e.name, e.count, e.errors, e.total_ns])).toEqual([['wait4', 4, 2, 54_119_000], ['vfork', 2, 0, 937_000]]);
  });

  it('-C and -f: the trace lines before the summary are not listed as skipped', () => {
    const text = `[pid  4242] read(3, "x", 1)          = 1\nwrite(1, "hi\\n", 3 <unfinished ...>\n[pid  4242] <... write resumed>) = 3\n[pid  4242] +++ exited with 0 +++\n${HEAD} 100.00    0.000010          10         1           read\n`;
    const p = profileOf(parseStraceC, text);
    expect(counts(p)).toEqual({ read: 1 });
    expect(p.skipped).toEqual([]);
  });

  it('-U with the name first: count.c prints the chosen columns in the given order (header, divider, rows, total); detected too', () => {
    // strace -U name,calls,errors,max,min,avg,total: cdesc[] headers syscall, calls, errors, longest, shortest, usecs/call, seconds.
    const text = [
      'syscall          calls    errors  longest shortest usecs/call     seconds',
      '---------------- --------- --------- -------- -------- ----------- -----------',
      'read                    10         2 0.000010 0.000001           3    0.000030',
      'write                    5           0.000020 0.000002           4    0.000020',
      '---------------- --------- --------- -------- -------- ----------- -----------',
      'total                   15         2 0.000020 0.000001           3    0.000050',
    ].join('\n');
    const p = profileOf(parseStraceC, text);
    expect(p.events.map((e) => [e.name, e.count, e.errors, e.total_ns])).toEqual([['read', 10, 2, 30_000], ['write', 5, 0, 20_000]]);
    expect(p.skipped).toEqual([]);
    expect(detectFormat(text, 'u')).toEqual({ format: 'strace-c', line: 1 });
  });

  it('-f on a 32-bit child: "System call usage summary for 32 bit mode:" starts the next personality\'s table; both are summed', () => {
    const T = (rows: string[], total: string) => [HEAD.trimEnd(), ...rows, FOOT.trimEnd(), total];
    const text = [
      ...T([' 60.00    0.000006           6         1           read', ' 40.00    0.000004           4         1           write'], '100.00    0.000010           5         2           total'),
      'System call usage summary for 32 bit mode:', // call_summary(): personality_names[1] on x86_64
      ...T(['100.00    0.000001           1         1           read'], '100.00    0.000001           1         1           total'),
    ].join('\n');
    const p = profileOf(parseStraceC, text);
    expect(p.events.map((e) => [e.name, e.count, e.total_ns])).toEqual([['read', 2, 7_000], ['write', 1, 4_000]]);
    expect(p.skipped).toEqual([]);
  });

  it('a divider and a personality line, nothing else (found by the fuzzer: a TypeError once): one InputError', () => {
    const e = inputError(() => parseStraceC(`${FOOT}System call usage summary for 32 bit mode:\n`, 'f.txt'));
    expect(e.message).toBe('f.txt:2: expected a syscall row under the header of line 1, found "System call usage summary for 32 bit mode:"');
  });

  it('rows that do not add up to the total row are said at the total row (new and strace 4 spacing); rows that do are not', () => {
    const cut = `${HEAD} 60.00    0.000006           6         1           read\n${FOOT}100.00    0.000010           5         9           total\n`;
    expect(profileOf(parseStraceC, cut).skipped).toEqual([{ line: 5, why: 'the rows read add up to 1 calls, the total row says 9: 8 are in rows the file does not have (cut?)' }]);
    // strace 4's total row leaves usecs/call blank ("%9.u" … count.c before 5.x): the calls column by the divider's spans.
    const { text } = sample('strace-c', 'strace4-rhel6-attach-detach-messages.txt');
    expect(profileOf(parseStraceC, text).skipped).toEqual([]); // 331 + 1 = 332, as its total row says
    expect(profileOf(parseStraceC, text.replace('   332           total', '   333           total')).skipped)
      .toEqual([{ line: 8, why: 'the rows read add up to 332 calls, the total row says 333: 1 are in rows the file does not have (cut?)' }]);
  });

  it('a reply quoting a before/after pair of runs (Zhang Yi quoting Dave Chinner\'s iomap zero-range commit message, linux-xfs): the second table is said', () => {
    // Two strace -c runs of ./pwrite-trunc, each 50000 ftruncate and 50000 pwrite64 calls, each cut with "....".
    const text = [
      '> $ sudo strace -c ./pwrite-trunc /mnt/scratch/foo 50000',
      '> path /mnt/scratch/foo, 50000 iters',
      '> % time     seconds  usecs/call     calls    errors syscall',
      '> ------ ----------- ----------- --------- --------- ----------------',
      '>  85.90    0.847616          16     50000           ftruncate',
      '>  14.01    0.138229           2     50000           pwrite64',
      '> ....',
      '> ',
      '> After:',
      '> ',
      '> $ sudo strace -c ./pwrite-trunc /mnt/scratch/foo 50000',
      '> path /mnt/scratch/foo, 50000 iters',
      '> % time     seconds  usecs/call     calls    errors syscall',
      '> ------ ----------- ----------- --------- --------- ----------------',
      '>  53.86    0.505964          10     50000           ftruncate',
      '>  46.12    0.433251           8     50000           pwrite64',
      '> ....',
    ].join('\n');
    const p = profileOf(parseStraceC, text);
    expect(p.events.map((e) => [e.name, e.count, e.total_ns])).toEqual([['ftruncate', 100000, 847_616_000 + 505_964_000], ['pwrite64', 100000, 138_229_000 + 433_251_000]]);
    expect(p.skipped.filter((x) => x.line === 13 || x.why === 'elided rows')).toEqual([
      { line: 7, why: 'elided rows' },
      { line: 13, why: 'a second table with no "System call usage summary for" line before it (another run?): its rows are added to the others\'' },
      { line: 17, why: 'elided rows' },
    ]);
  });

  it('nothing is a table: one error at the first line, saying what was expected', () => {
    const e = inputError(() => parseStraceC('hello\nworld\n', 'x.txt'));
    expect(e.message).toBe('x.txt:1: expected a strace -c table (a "% time     seconds  usecs/call     calls    errors syscall" header), found "hello"');
  });

  it('a file truncated after the header: the error names the end of the file', () => {
    const e = inputError(() => parseStraceC(HEAD, 'cut.txt'));
    expect(e.message).toMatch(/^cut\.txt:2: expected a syscall row under the header of line 1, found the end of the file$/);
  });

  it('binary data is refused at the line of the first NUL', () => {
    const e = inputError(() => parseStraceC(`${HEAD}\u0000\u0001\u0002`, 'bin'));
    expect(e.message).toBe('bin:3: expected text, found binary data (a NUL byte at offset 127)'); // HEAD is 58 + 1 and 67 + 1 characters
  });
});
