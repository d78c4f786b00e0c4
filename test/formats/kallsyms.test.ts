// kallsyms / System.map reader against the captures: the symbols the capture tool read through
// the kernel's own page tables (kernel.json.gz kernel_symbols), the "Kernel code/rodata/data/bss"
// resources of /proc/iomem (arch/x86/kernel/setup.c: [__pa_symbol(start), __pa_symbol(end) - 1]),
// and hand-written malformed inputs for the error messages.
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { loadPtImage } from '../../src/x86/ptimage.ts';
import { loadKallsyms, parseKallsyms, type SymbolHit } from '../../src/formats/kallsyms.ts';
import { loadIomem } from '../../src/formats/iomem.ts';

const CAPTURES = join(import.meta.dirname, '../fixtures/captures');
const START_KERNEL_MAP = 0xffffffff80000000n;

describe.each(['la48-pti-nokaslr', 'la57-pti-nokaslr'])('capture %s', (name) => {
  const dir = join(CAPTURES, name);
  const ks = loadKallsyms(join(dir, 'kallsyms.txt.gz'));
  const img = loadPtImage(join(dir, 'kernel.json.gz'), 40);

  it('reads all 94k lines, per-CPU symbols apart', () => {
    expect(ks.count + ks.perCpu.size + ks.absolute.size).toBe(94266);
    expect(ks.perCpu.size).toBe(383); // the type-A lines of the file
    expect(ks.absolute.size).toBe(0);
  });

  it('agrees with every symbol the capture read from the running kernel', () => {
    const want = img.kernel_symbols!;
    expect(Object.keys(want).length).toBeGreaterThan(20);
    for (const [sym, va] of Object.entries(want)) expect([sym, ks.addressOf(sym)]).toEqual([sym, BigInt(va)]);
    expect(ks.isPerCpu('__per_cpu_end')).toBe(true);
    expect(ks.isPerCpu('_stext')).toBe(false);
  });

  it('section boundaries give the physical ranges /proc/iomem reports', () => {
    // phys_base derived, not assumed: PA(_text) - (VA(_text) - __START_KERNEL_map), from kernel_values.
    const kv = img.kernel_values!;
    const physBase = BigInt(kv['_text.pa']) - (BigInt(kv['_text.va']) - START_KERNEL_MAP);
    const pa = (va: bigint) => va - START_KERNEL_MAP + physBase;
    const s = ks.sections();
    const res = loadIomem(join(dir, 'iomem.txt')).kernelImage();
    const range = (r: { start: bigint; end: bigint } | undefined) => r && [r.start.toString(16), r.end.toString(16)];
    // code_resource = [_text, _etext), rodata = [__start_rodata, __end_rodata), data = [_sdata, _edata), bss = [__bss_start, __bss_stop)
    expect(range(res.code)).toEqual(range({ start: pa(s.image!.start), end: pa(s.text!.end) }));
    expect(range(res.rodata)).toEqual(range({ start: pa(s.rodata!.start), end: pa(s.rodata!.end) }));
    expect(range(res.data)).toEqual(range({ start: pa(s.data!.start), end: pa(s.data!.end) }));
    expect(range(res.bss)).toEqual(range({ start: pa(s.bss!.start), end: pa(s.bss!.end) }));
    for (const k of ['entryText', 'irqentryText', 'init', 'perCpu'] as const) expect(s[k], k).toBeDefined();
    expect(s.entryText!.start >= s.text!.start && s.entryText!.end <= s.text!.end).toBe(true);
  });

  it('symbolAt: name + offset, first alias, nothing below the first symbol or past _end', () => {
    const syscall = BigInt(img.kernel_symbols!.entry_SYSCALL_64);
    expect(ks.symbolAt(syscall + 5n)).toMatchObject({ name: 'entry_SYSCALL_64', offset: 5, type: 'T' });
    // startup_64, _stext and _text share 0xffffffff81000000; /proc/kallsyms lists startup_64 first.
    expect(ks.symbolAt(BigInt(img.kernel_symbols!._text))).toMatchObject({ name: 'startup_64', offset: 0 });
    expect(ks.symbolAt(0xffffffff80000000n)).toBeNull();
    const end = ks.addressOf('_end')!;
    expect(ks.symbolAt(end + 0x1000n)).toBeNull();
    expect(ks.symbolAt(end - 1n)!.offset).toBeGreaterThanOrEqual(0);
  });

  it('lookups are consistent with a linear scan and do not allocate per call', () => {
    const out: SymbolHit = { name: '', offset: 0, type: '', module: undefined, index: -1 };
    let seed = 12345;
    const start = ks.addressAt(0);
    const span = Number(ks.addressOf('_end')! - start);
    for (let k = 0; k < 2000; k++) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      const va = start + BigInt(Math.floor((seed / 4294967296) * span));
      expect(ks.symbolAtHalves(Number(va & 0xffffffffn), Number(va >> 32n), out)).toBe(true);
      const sym = ks.addressAt(out.index);
      expect(sym + BigInt(out.offset)).toBe(va);
      // the first of its aliases, and no symbol between it and va
      if (out.index > 0) expect(ks.addressAt(out.index - 1) < sym).toBe(true);
      let j = out.index + 1;
      while (j < ks.count && ks.addressAt(j) === sym) j++;
      if (j < ks.count) expect(ks.addressAt(j) > va).toBe(true);
    }
    const t0 = performance.now();
    let n = 0;
    const base = Number(start & 0xffffffffn);
    for (let k = 0; k < 1_000_000; k++) if (ks.symbolAtHalves((base + (k * 97) % span) >>> 0, 0xffffffff, out)) n++;
    const ms = performance.now() - t0;
    expect(n).toBe(1_000_000);
    expect(ms).toBeLessThan(2000); // about 0.1 µs a lookup in practice
  });
});

describe('System.map and malformed input', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kasi-kallsyms-'));

  it('reads System.map (per-CPU symbols typed D) and .gz files', () => {
    const map = [
      '0000000000000000 D __per_cpu_start',
      '0000000000006000 D cpu_tss_rw',
      '0000000000035000 D __per_cpu_end',
      '0000000001000000 A phys_startup_64',
      'ffffffff81000000 T _text',
      'ffffffff81000000 T startup_64',
      'ffffffff81000100 t helper',
      'ffffffff81001000 T _etext',
      'ffffffff81002000 B _end',
      'ffffffffc0001000 t mod_fn\t[mymod]',
    ].join('\n');
    const f = join(dir, 'System.map.gz');
    writeFileSync(f, gzipSync(map));
    const ks = loadKallsyms(f);
    expect(ks.perCpu.get('cpu_tss_rw')).toBe(0x6000);
    expect(ks.absolute.get('phys_startup_64')).toBe(0x1000000n);
    expect(ks.symbolAt(0xffffffff81000000n)!.name).toBe('_text');
    expect(ks.symbolAt(0xffffffff81000180n)).toMatchObject({ name: 'helper', offset: 0x80 });
    expect(ks.symbolAt(0xffffffffc0001010n)).toMatchObject({ name: 'mod_fn', module: 'mymod', offset: 0x10 });
  });

  const bad: [string, string][] = [
    ['ffffffff81000000 T _text\nffffffff8100zz00 T foo\n', 'f.map:2: bad address "ffffffff8100zz00"'],
    ['ffffffff81000000 T _text\nffffffff81000010 T\n', 'f.map:2: expected "ADDRESS TYPE NAME", found 2 columns'],
    ['\nffffffff81000000 Q _text\n', 'f.map:2: unknown symbol type "Q"'],
    ['ffffffff81000000 T _text [mod] extra\n', 'f.map:1: unexpected text after the name'],
    ['0000000000000000 T a\n0000000000000000 T b\n', 'f.map: every address is zero'],
  ];
  for (const [text, msg] of bad) {
    it(`reports ${JSON.stringify(msg)}`, () => {
      expect(() => parseKallsyms(text, 'f.map')).toThrow(msg);
    });
  }
});
