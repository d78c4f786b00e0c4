/**
 * Replaying the measured code footprints through SCI (src/asi/sci-report.ts). Truth used:
 *  - the fixture's own numbers (test/fixtures/footprints): per part, the pages outside the KPTI
 *    user map (the cloned 2 MiB entry-text PMD, `ranges.pti`) and whether do_syscall_64's page
 *    is among its pages; the README's "5 code faults even for an invalid syscall" with only the
 *    entry text pre-mapped (SCI also pre-maps do_syscall_64's page: one fewer);
 *  - kallsyms of the capture for do_syscall_64, x64_sys_call and the functions of getppid;
 *  - the RFC (patch 2/7): the backtrace holds do_syscall_64 plus one entry per fault at a symbol
 *    start, and once it holds SCI_MAX_BACKTRACE (64) entries every fault is refused;
 *    (4/7) invalid syscalls never enter SCI; (3/7) exception and interrupt entries leave it.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadFootprints } from '../../src/formats/footprints.ts';
import { loadKallsyms } from '../../src/formats/kallsyms.ts';
import { modelFromCapture } from '../../src/linux/capture.ts';
import { DEFAULT_CAPTURE, DEFAULT_FOOTPRINTS, replayFootprints, sciFootprintsReport, sciTaskOnModel } from '../../src/asi/sci-report.ts';
import { InputError } from '../../src/formats/files.ts';

const fp = loadFootprints(DEFAULT_FOOTPRINTS);
const ks = loadKallsyms(join(DEFAULT_CAPTURE, 'kallsyms.txt.gz'));
const { model } = modelFromCapture(DEFAULT_CAPTURE);
const rows = replayFootprints(sciTaskOnModel(model, ks), fp);
const DO_SYSCALL_PAGE = ks.addressOf('do_syscall_64')! & ~0xfffn;
const parts = fp.tests.flatMap((t) => t.parts.map((p, i) => ({ t, p, i })));

describe('code faults SCI takes on the measured syscalls', () => {
  it('replays every part of every test', () => {
    expect(rows).toHaveLength(parts.length);
    expect(rows.map((r) => `${r.test}/${r.part}`)).toEqual(parts.map(({ t, i }) => `${t.name}/${i}`));
  });

  it('takes one fault per page outside the KPTI user map, less do_syscall_64\'s pre-mapped page', () => {
    expect(DO_SYSCALL_PAGE).toBe(0xffffffff81a43000n);
    for (const [k, { t, p, i }] of parts.entries()) {
      const expected = p.pagesOutsidePtiUserMap - (p.textPages.includes(DO_SYSCALL_PAGE) ? 1 : 0);
      expect(rows[k].codeFaults, `${t.name}/${i}`).toBe(expected);
      expect(rows[k].premapped + rows[k].codeFaults, `${t.name}/${i}`).toBe(p.textPages.length);
    }
  });

  it('matches the README: 5 faults for an invalid syscall with only entry text mapped, so 4 here, and at least that for every syscall', () => {
    const inv = rows.find((r) => r.test === 'invalid_syscall')!;
    expect(inv.codeFaults).toBe(5 - 1);
    for (const r of rows.filter((x) => x.kind === 'syscall')) expect(r.codeFaults, r.test).toBeGreaterThanOrEqual(4);
    // Single-part tests: the README table's "outside entry text" column, less do_syscall_64's page.
    const readme: Record<string, number> = { getppid: 10, read_devzero_1B: 23, stat_tmpfs: 50, futex_wake_nowaiters: 11, epoll_wait_timeout0: 11, clock_gettime_syscall: 16, sched_yield: 25 };
    for (const [name, outside] of Object.entries(readme)) expect(rows.find((r) => r.test === name)!.codeFaults, name).toBe(outside - 1);
  });

  it('admits getppid\'s nine faults at the entries of the functions it calls', () => {
    const g = rows.find((r) => r.test === 'getppid')!;
    const faulted = g.steps.filter((s) => !s.premapped);
    expect(faulted.map((s) => s.basis)).toEqual(Array(9).fill('symbol-start'));
    // Each page's fetch is the start (kallsyms) of a function getppid ran that begins in it.
    for (const s of faulted) {
      expect(ks.addressOf(s.symbol), s.symbol).toBe(s.fetch);
      expect(s.fetch & ~0xfffn).toBe(s.page);
    }
    expect(faulted.map((s) => s.symbol)).toEqual(expect.arrayContaining(['x64_sys_call', '__x64_sys_getppid', '__task_pid_nr_ns', '__rcu_read_lock', '__rcu_read_unlock']));
    expect(g.kill).toBeNull();
    expect(g.ptes).toBe(9);
    expect(g.backtrace).toBe(10);
  });

  it('admits close()\'s second page of x64_sys_call as the page after an entered function', () => {
    const c = rows.find((r) => r.test === 'open_close_tmpfs' && r.part === 1)!;
    const x = ks.addressOf('x64_sys_call')!; // 0xffffffff81003320, 4768 bytes
    const step = c.steps.find((s) => s.page === (x & ~0xfffn) + 0x1000n)!;
    expect(step.basis).toBe('continuation');
    expect(step.symbol).toBe('x64_sys_call');
    expect(step.refusal).toBeNull();
    expect(c.steps.findIndex((s) => s.page === (x & ~0xfffn))).toBeLessThan(c.steps.indexOf(step));
  });

  it('kills munmap when the backtrace is full: 63 function entries after do_syscall_64', () => {
    const m = rows.find((r) => r.test === 'mmap_touch_munmap_4K' && r.part === 2)!;
    expect(m.kill).not.toBeNull();
    expect(m.kill!.code).toBe('no-room-backtrace');
    const before = m.steps.filter((s) => !s.premapped).slice(0, m.kill!.fault - 1);
    expect(before.filter((s) => s.basis === 'symbol-start').length).toBe(64 - 1);
    for (const r of rows) {
      if (r.backtrace <= 64) expect(r.kill, `${r.test}/${r.part}`).toBeNull();
      expect(r.ptes, `${r.test}/${r.part}`).toBeLessThanOrEqual(256);
    }
  });

  it('marks what the RFC never isolates: invalid syscalls, exceptions, interrupts', () => {
    const no = rows.filter((r) => !r.rfcIsolates).map((r) => `${r.test}/${r.part}`);
    expect(no).toEqual(['invalid_syscall/0', 'mmap_touch_munmap_4K/1', 'user_page_fault_anon/0', 'user_spin_timer_irq/0']);
  });
});

describe('the sci-2019 footprints report', () => {
  it('prints a table with a row per part and the notes', () => {
    const text = sciFootprintsReport();
    for (const t of fp.tests) expect(text).toContain(t.name);
    expect(text).toMatch(/mmap_touch_munmap_4K\s+2 __x64_sys_munmap\s+yes\s+75\s+2\s+73 .*killed at fault \d+ \(0x[0-9a-f]+, no-room-backtrace\)/);
    expect(text).toContain('upper bound');
  });

  it('prints JSON with --json', () => {
    const doc = JSON.parse(sciFootprintsReport({ json: true }));
    expect(doc.design).toBe('sci-2019');
    expect(doc.rows).toHaveLength(parts.length);
    const g = doc.rows.find((r: { test: string }) => r.test === 'getppid');
    expect(g).toMatchObject({ pages: 11, premapped: 2, code_faults: 9, ptes: 9, killed: null, rfc_isolates: true });
  });

  it('refuses footprints measured on another kernel', () => {
    const other = { ...fp, symbols: new Map([['entry_SYSCALL_64', 0xffffffff81c00090n]]) };
    expect(() => replayFootprints(sciTaskOnModel(model, ks), other)).toThrow(InputError);
    expect(() => replayFootprints(sciTaskOnModel(model, ks), other)).toThrow(/field symbols\.entry_SYSCALL_64: 0xffffffff81c00090, but .*kallsyms\.txt\.gz has 0xffffffff81c00080/);
  });
});
