/**
 * The footprint table against its truths: measured entries against the fixture's raw JSON
 * (read here with JSON.parse, not through formats/footprints.ts), matched by the syscall handler the
 * fixture names; modelled text pages against the kallsyms of the same kernel (the capture of
 * that boot); every part of every entry has a source; overrides apply by key.
 */
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadKallsyms, type Kallsyms } from '../../src/formats/kallsyms.ts';
import { parseScenario } from '../../src/scenario/load.ts';
import {
  DATA_KINDS, DEFAULT_FOOTPRINTS_FILE, footprintKeys, loadFootprintTable, parseFootprintKey, textPageOffset, type Footprint,
} from '../../src/sim/footprints.ts';

interface RawPart { kind: string; syscall_handler?: string | null; text_pages: string[]; insns_per_call_est: number }
interface RawTest { kind: string; text_pages: string[]; insns_per_call_est: number; parts?: RawPart[] }
const raw = JSON.parse(readFileSync(DEFAULT_FOOTPRINTS_FILE, 'utf8')) as { ranges: { text: [string, string] }; syscalls: Record<string, RawTest> };
/** Every kernel entry of the fixture: a test without parts is one entry. */
const entries = Object.entries(raw.syscalls).flatMap(([test, t]) => (t.parts ?? [{ ...t, syscall_handler: null }]).map((p, i) => ({ test, part: i, testKind: t.kind, nParts: (t.parts ?? [0]).length, ...p })));
const hex = (p: bigint) => `0x${p.toString(16)}`;

const table = loadFootprintTable();
const all = [...table.entries.values()];

describe('measured entries equal the fixture', () => {
  it('each measured syscall entry is the fixture part of its handler, pages in order, and its insns', () => {
    let checked = 0;
    for (const f of all.filter((x) => x.event === 'syscall' && x.text.source.startsWith('measured:'))) {
      const cands = f.detail === 'invalid'
        ? entries.filter((e) => e.testKind === 'syscall' && e.syscall_handler === null)
        : entries.filter((e) => e.syscall_handler === `__x64_sys_${f.detail}`);
      expect(cands.length, f.key).toBeGreaterThan(0);
      const match = cands.find((c) => c.text_pages.join() === f.text.pages.map(hex).join());
      expect(match, `${f.key} equals a fixture part of its handler`).toBeDefined();
      expect(f.insns.count).toBe(match!.insns_per_call_est);
      expect(f.text.source).toBe(`measured: footprints.json ${match!.test} parts[${match!.part}].text_pages`);
      checked++;
    }
    expect(checked).toBe(17); // 16 named handlers + the invalid syscall
  });

  it('read is the whole-test read of /dev/zero (the pipe read is the other __x64_sys_read part)', () => {
    expect(table.entries.get('syscall:read')!.text.pages.map(hex)).toEqual(raw.syscalls.read_devzero_1B.text_pages);
  });

  it('every syscall handler the fixture measured has an entry', () => {
    const handlers = new Set(entries.map((e) => e.syscall_handler).filter((h): h is string => typeof h === 'string'));
    for (const h of handlers) expect(table.entries.has(`syscall:${h.replace('__x64_sys_', '')}`), h).toBe(true);
  });

  it('page fault and timer interrupt are the single-entry fault and interrupt tests', () => {
    const fault = entries.filter((e) => e.testKind === 'fault' && e.nParts === 1);
    const irq = entries.filter((e) => e.testKind === 'interrupt');
    expect(fault).toHaveLength(1);
    expect(irq).toHaveLength(1);
    expect(table.entries.get('page-fault')!.text.pages.map(hex)).toEqual(fault[0].text_pages);
    expect(table.entries.get('page-fault')!.insns.count).toBe(fault[0].insns_per_call_est);
    expect(table.entries.get('timer-interrupt')!.text.pages.map(hex)).toEqual(irq[0].text_pages);
    expect(table.entries.get('timer-interrupt')!.insns.count).toBe(irq[0].insns_per_call_est);
  });

  it('borrowed text is exactly the borrowed part', () => {
    for (const f of all) {
      const m = /^modelled: borrows measured (\w+) parts\[(\d+)\]/.exec(f.text.source);
      if (m === null) continue;
      const t = raw.syscalls[m[1]];
      const pages = (t.parts ?? [t])[Number(m[2])].text_pages;
      expect(f.text.pages.map(hex), f.key).toEqual(pages);
    }
  });
});

describe('modelled text pages hold the kernel symbols they name', () => {
  let ks: Kallsyms;
  beforeAll(() => { ks = loadKallsyms(new URL('../fixtures/captures/la48-pti-nokaslr/kallsyms.txt.gz', import.meta.url).pathname); });

  /** Pages spanned by a symbol: from its address to the next higher symbol address. */
  function span(name: string): bigint[] {
    const i = ks.indexOf(name);
    expect(i, name).toBeGreaterThanOrEqual(0);
    const at = (k: number) => (BigInt(ks.addrHi[k]) << 32n) | BigInt(ks.addrLo[k]);
    const a = at(i);
    let j = i + 1;
    while (at(j) === a) j++;
    const out: bigint[] = [];
    for (let p = a & ~0xfffn; p < at(j); p += 4096n) out.push(p);
    return out;
  }

  it.each([
    ['nmi', ['asm_exc_nmi', 'exc_nmi', 'default_do_nmi', 'nmi_handle', 'perf_event_nmi_handler'], true],
    ['idle', ['do_idle', 'default_idle_call', 'default_idle', 'arch_cpu_idle', 'schedule_idle'], true],
    ['ipi', ['asm_sysvec_call_function_single', 'sysvec_call_function_single', '__flush_smp_call_function_queue', 'generic_smp_call_function_single_interrupt'], true],
    ['context-switch', ['__schedule', 'switch_mm_irqs_off', '__switch_to_asm', '__switch_to', 'finish_task_switch.isra.0', 'switch_fpu_return'], false],
    ['vm-exit:IO_INSTRUCTION', ['__x64_sys_ioctl'], false],
  ])('%s', (key, symbols, only) => {
    const f = table.entries.get(key as string)!;
    const want = new Set((symbols as string[]).flatMap(span));
    for (const p of want) expect(f.text.pages, `${key} has ${hex(p)}`).toContain(p);
    if (only) expect(new Set(f.text.pages)).toEqual(want);
  });
});

describe('every entry', () => {
  const [textLo, textHi] = raw.ranges.text.map((h) => BigInt(h));
  const SOURCE = /^(measured: |modelled|assumption: |definition: )/;

  it('has a source for its text, insns and each data touch, and a whole-entry source', () => {
    for (const f of all) {
      expect(f.source.length, f.key).toBeGreaterThan(0);
      expect(f.text.source, f.key).toMatch(SOURCE);
      expect(f.insns.source, f.key).toMatch(SOURCE);
      for (const d of f.data) expect(d.source, `${f.key} ${d.kind}`).toMatch(SOURCE);
    }
  });

  it('has kernel text pages inside [_text, _etext), 4 KiB aligned, each once; sane counts', () => {
    for (const f of all) {
      expect(new Set(f.text.pages).size, f.key).toBe(f.text.pages.length);
      for (const p of f.text.pages) {
        expect(p % 4096n, f.key).toBe(0n);
        expect(p >= (textLo & ~0xfffn) && p < textHi, `${f.key} ${hex(p)}`).toBe(true);
      }
      expect(f.text.pages.length + f.text.modulePages, f.key).toBeGreaterThan(0);
      expect(f.insns.count, f.key).toBeGreaterThanOrEqual(0);
      for (const d of f.data) {
        expect(DATA_KINDS, f.key).toContain(d.kind);
        expect(Number.isInteger(d.lines) && d.lines >= 1, f.key).toBe(true);
      }
      expect(parseFootprintKey(f.key)).toEqual({ event: f.event, detail: f.detail });
    }
  });

  it('covers the events the workload engine needs', () => {
    for (const r of ['EPT_VIOLATION', 'HLT', 'MSR_WRITE', 'EXTERNAL_INTERRUPT', 'IO_INSTRUCTION', 'CPUID']) expect(footprintKeys()).toContain(`vm-exit:${r}`);
    for (const e of ['page-fault', 'timer-interrupt', 'nmi', 'context-switch', 'idle']) expect(footprintKeys()).toContain(e);
    // A fault zeroes a newly allocated page (do_anonymous_page; KVM's fault-in of a guest page), never
    // the tenant's own data: guest memory is read only where KVM emulates (EPT_MISCONFIG).
    for (const k of ['vm-exit:EPT_VIOLATION', 'page-fault']) {
      const d = table.entries.get(k)!.data;
      expect(d.some((x) => x.kind === 'fresh-page' && x.access === 'write' && x.lines === 64)).toBe(true);
      expect(d.some((x) => x.kind === 'guest-memory' || (x.kind === 'user-pages' && x.lines === 64))).toBe(false);
    }
    expect(table.entries.get('vm-exit:EPT_MISCONFIG')!.data.some((d) => d.kind === 'guest-memory' && d.access === 'read')).toBe(true);
    expect(table.entries.get('vm-exit:EPT_VIOLATION')!.data.some((d) => d.kind === 'ept')).toBe(true);
    expect(table.entries.get('syscall:read')!.data.some((d) => d.kind === 'user-pages' && d.access === 'write')).toBe(true);
    expect(table.entries.get('page-fault')!.transition).toBe('interrupt');
    expect(table.entries.get('vm-exit:HLT')!.transition).toBe('vm-exit');
  });

  it('page offsets rebase from the image start', () => {
    expect(textPageOffset(0xffffffff81c00000n)).toBe(0xc00000);
  });
});

describe('overrides', () => {
  it('replace only the fields given, and say so', () => {
    const t = loadFootprintTable({ overrides: { 'syscall:read': { insns: 7, source: 'lab' } } });
    const f = t.entries.get('syscall:read')!;
    expect(f.insns).toEqual({ count: 7, source: 'override: lab' });
    expect(f.text).toEqual(table.entries.get('syscall:read')!.text);
    expect(f.data).toEqual(table.entries.get('syscall:read')!.data);
    expect(f.source).toMatch(/override: lab \(insns\)$/);
  });

  it('add a new syscall only with text, insns and data', () => {
    const data = [{ kind: 'cred' as const, access: 'read' as const, lines: 1, scope: 'current' as const }];
    const t = loadFootprintTable({ overrides: { 'syscall:getuid': { text: { measured: [{ test: 'getppid', part: 0 }] }, insns: 300, data, source: 's.yaml:3' } } });
    const f: Footprint = t.entries.get('syscall:getuid')!;
    expect(f.text.pages.map(hex)).toEqual(raw.syscalls.getppid.text_pages);
    expect(f.data).toEqual([{ ...data[0], source: 'override: s.yaml:3' }]);
    expect(() => loadFootprintTable({ overrides: { 'syscall:getuid': { insns: 3, source: 'x' } } })).toThrow(/needs text, insns and data/);
    expect(() => loadFootprintTable({ overrides: { nmi: { text: { pages: [0xffffffff81000010n] }, source: 'x' } } })).toThrow(/not 4 KiB aligned/);
  });

  it('from a scenario file apply to the table', () => {
    const s = parseScenario('footprints:\n  override:\n    vm-exit:CPUID:\n      data: [{ kind: kvm_vcpu, access: rw, lines: 9 }]\n      text: { module_pages: 2 }\n', 'lab.yaml');
    const f = loadFootprintTable({ overrides: s.footprintOverrides }).entries.get('vm-exit:CPUID')!;
    expect(f.data).toEqual([{ kind: 'kvm_vcpu', access: 'rw', lines: 9, scope: 'current', source: 'override: scenario lab.yaml:3' }]);
    expect(f.text).toEqual({ pages: [], modulePages: 2, source: 'override: scenario lab.yaml:3' });
  });

  it('keys are checked', () => {
    expect(() => parseFootprintKey('syscall')).toThrow(/needs a lower-case syscall name/);
    expect(() => parseFootprintKey('vm-exit:hlt')).toThrow(/VMX exit reason in capitals/);
    expect(() => parseFootprintKey('nmi:x')).toThrow(/takes no/);
    expect(() => parseFootprintKey('softirq')).toThrow(/unknown event/);
  });
});
