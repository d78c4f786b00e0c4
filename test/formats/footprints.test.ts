/**
 * Reader of `sci-code-footprints/1` (formats/footprints.ts). Truth used:
 *  - the fixture's README table (test/fixtures/footprints/README.md), copied below as literals:
 *    text pages and "outside entry text" per test;
 *  - test/fixtures/footprints/summary.md's per-part table (handlers of the two-part tests);
 *  - the README's statement that every syscall touches the same 6 pages, one of them entry text.
 * Bad input: each error names the file and the field.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/formats/files.ts';
import { loadFootprints, parseFootprints } from '../../src/formats/footprints.ts';

const FILE = join(import.meta.dirname, '..', 'fixtures', 'footprints', 'footprints.json');

// README.md: | test | text pages | outside entry text |
const README: Array<[string, number, number]> = [
  ['invalid_syscall', 6, 5], ['getppid', 11, 10], ['read_devzero_1B', 24, 23], ['pipe_write_read_1B', 42, 41],
  ['open_close_tmpfs', 80, 79], ['stat_tmpfs', 51, 50], ['mmap_touch_munmap_4K', 109, 107], ['futex_wake_nowaiters', 12, 11],
  ['unix_send_recv_64B', 59, 58], ['epoll_wait_timeout0', 12, 11], ['clock_gettime_syscall', 17, 16], ['sched_yield', 26, 25],
  ['getdents64_tmpfs_dir', 38, 37], ['user_page_fault_anon', 51, 49], ['user_spin_timer_irq', 51, 49],
];

describe('the measured footprints fixture', () => {
  const fp = loadFootprints(FILE);

  it('has the README\'s 15 tests with its page counts', () => {
    expect(fp.tests.map((t) => t.name)).toEqual(README.map((r) => r[0]));
    for (const [name, pages, outside] of README) {
      const t = fp.tests.find((x) => x.name === name)!;
      expect(t.textPages.length, name).toBe(pages);
      expect(t.pagesOutsideEntryText, name).toBe(outside);
    }
  });

  it('reads kinds and parts as test/fixtures/footprints/summary.md lists them', () => {
    const kinds = Object.fromEntries(fp.tests.map((t) => [t.name, t.kind]));
    expect(kinds.getppid).toBe('syscall');
    expect(kinds.user_page_fault_anon).toBe('fault');
    expect(kinds.user_spin_timer_irq).toBe('interrupt');
    const pipe = fp.tests.find((t) => t.name === 'pipe_write_read_1B')!;
    expect(pipe.parts.map((p) => [p.kind, p.handler, p.textPages.length, p.pagesOutsideEntryText]))
      .toEqual([['syscall', '__x64_sys_write', 37, 36], ['syscall', '__x64_sys_read', 36, 35]]);
    const mm = fp.tests.find((t) => t.name === 'mmap_touch_munmap_4K')!;
    expect(mm.parts.map((p) => p.kind)).toEqual(['syscall', 'exc_page_fault', 'syscall']);
    expect(fp.tests.find((t) => t.name === 'invalid_syscall')!.parts[0].handler).toBeNull();
  });

  it('reads a test without parts (the timer interrupt) as one part of its own pages', () => {
    const irq = fp.tests.find((t) => t.name === 'user_spin_timer_irq')!;
    expect(irq.hasParts).toBe(false);
    expect(irq.parts).toHaveLength(1);
    expect(irq.parts[0].kind).toBe('interrupt');
    expect(irq.parts[0].textPages).toEqual(irq.textPages);
    expect(irq.parts[0].functions.length).toBe(irq.functions.length);
  });

  it('keeps first-touch order: a syscall starts in the entry text page', () => {
    const g = fp.tests.find((t) => t.name === 'getppid')!;
    expect(g.textPages[0]).toBe(0xffffffff81c00000n);
    expect(g.textPages[1]).toBe(0xffffffff81a43000n);
    expect(g.functions.map((f) => f.name)).toContain('__x64_sys_getppid');
  });

  it('has the 6 pages common to all syscall tests, one of them entry text', () => {
    expect(fp.pagesCommonToAllSyscallTests).toHaveLength(6);
    expect(fp.pagesCommonToAllSyscallTests.filter((p) => p >= fp.ranges.entry[0] && p < fp.ranges.entry[1])).toHaveLength(1);
    expect(fp.entryTextPages).toEqual([0xffffffff81c00000n, 0xffffffff81c01000n]);
    expect(fp.ranges.pti).toEqual([0xffffffff81c00000n, 0xffffffff81e00000n]);
    expect(fp.symbols.get('entry_SYSCALL_64')).toBe(0xffffffff81c00080n);
  });
});

describe('bad footprints input', () => {
  const good = () => JSON.parse(JSON.stringify({
    format: 'sci-code-footprints/1',
    ranges: { entry: ['0x1000', '0x3000'], pti: ['0x1000', '0x3000'], text: ['0x0', '0x9000'] },
    symbols: { _text: '0x0' }, entry_text_pages: ['0x1000', '0x2000'],
    syscalls: {
      t: {
        kind: 'syscall', text_pages: ['0x1000', '0x5000'], n_text_pages: 2, pages_outside_entry_text: 1, pages_outside_pti_user_map: 1,
        functions: [{ name: 'f', count: 3 }],
        parts: [{ kind: 'syscall', syscall_handler: 'h', text_pages: ['0x5000'], pages_outside_entry_text: 1, pages_outside_pti_user_map: 1, functions: [['f', 3]] }],
      },
    },
  }));
  const err = (doc: unknown) => {
    try {
      parseFootprints(typeof doc === 'string' ? doc : JSON.stringify(doc), 'fp.json');
    } catch (e) {
      expect(e).toBeInstanceOf(InputError);
      return (e as Error).message;
    }
    throw new Error('no error');
  };

  it('accepts the minimal good document', () => {
    const fp = parseFootprints(JSON.stringify(good()), 'fp.json');
    expect(fp.tests[0].parts[0].functions).toEqual([{ name: 'f', count: 3 }]);
  });

  it('names the file and the field', () => {
    expect(err('{')).toMatch(/^fp\.json: not valid JSON/);
    expect(err('[]')).toBe('fp.json: expected a JSON object');
    const cases: Array<[(d: ReturnType<typeof good>) => void, RegExp]> = [
      [(d) => { d.format = 'x'; }, /^fp\.json: field format: expected "sci-code-footprints\/1"/],
      [(d) => { delete d.syscalls; }, /field syscalls: expected an object/],
      [(d) => { d.syscalls = {}; }, /field syscalls: no tests/],
      [(d) => { d.ranges.entry = ['0x3000', '0x1000']; }, /field ranges\.entry: end is not above start/],
      [(d) => { d.syscalls.t.kind = 'boot'; }, /field syscalls\.t\.kind: expected one of syscall, fault, interrupt/],
      [(d) => { d.syscalls.t.text_pages[1] = 'zz'; }, /field syscalls\.t\.text_pages\[1\]: expected a 0x-prefixed hex string/],
      [(d) => { d.syscalls.t.text_pages[1] = '0x5008'; }, /field syscalls\.t\.text_pages\[1\]: page address 0x5008 is not 4 KiB aligned/],
      [(d) => { d.syscalls.t.text_pages[1] = '0x1000'; }, /field syscalls\.t\.text_pages\[1\]: page 0x1000 listed twice/],
      [(d) => { d.syscalls.t.n_text_pages = 3; }, /field syscalls\.t\.n_text_pages: says 3 but text_pages lists 2/],
      [(d) => { d.syscalls.t.pages_outside_entry_text = 7; }, /field syscalls\.t\.pages_outside_entry_text: 7 exceeds the 2 text pages/],
      [(d) => { d.syscalls.t.pages_outside_pti_user_map = -1; }, /field syscalls\.t\.pages_outside_pti_user_map: expected a non-negative integer/],
      [(d) => { d.syscalls.t.functions[0].name = ''; }, /field syscalls\.t\.functions\[0\]\.name: expected a non-empty string/],
      [(d) => { d.syscalls.t.parts[0].functions = [['f']]; }, /field syscalls\.t\.parts\[0\]\.functions\[0\]: expected \[name, count\]/],
      [(d) => { d.syscalls.t.parts[0].text_pages = ['0x7000']; }, /field syscalls\.t\.parts\[0\]\.text_pages\[0\]: page 0x7000 is not in the test's text_pages/],
      [(d) => { d.syscalls.t.parts[0].syscall_handler = 3; }, /field syscalls\.t\.parts\[0\]\.syscall_handler: expected a string or null/],
      [(d) => { d.syscalls.t.parts = []; }, /field syscalls\.t\.parts: empty/],
    ];
    for (const [edit, re] of cases) {
      const d = good();
      edit(d);
      expect(err(d)).toMatch(re);
    }
  });

  it('reports a missing or truncated file by name', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kasi-fp-'));
    expect(() => loadFootprints(join(dir, 'none.json'))).toThrow(/none\.json: cannot read: ENOENT/);
    const f = join(dir, 'cut.json');
    writeFileSync(f, JSON.stringify(good()).slice(0, 100));
    expect(() => loadFootprints(f)).toThrow(/cut\.json: not valid JSON/);
  });
});
