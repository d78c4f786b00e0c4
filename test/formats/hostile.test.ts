/**
 * Hostile input to the readers (issue 15): every class the audit found ends in one InputError
 * naming the file (and line, and field), quickly — never a hang, a heap that dies, a stack
 * overflow or a value accepted and wrong. Each case was a crash, hang or silent acceptance
 * before the fix; the corpus of fuzzer finds is test/scenario/hostile-corpus.test.ts.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync, gunzipSync } from 'node:zlib';
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { InputError, parseJson, readTextMaybeGz } from '../../src/formats/files.ts';
import { parsePtImage } from '../../src/x86/ptimage.ts';
import { parseAccessCases } from '../../src/x86/access-cases.ts';
import { parseIomem } from '../../src/formats/iomem.ts';
import { parseKconfig } from '../../src/formats/kconfig.ts';
import { layoutConfigFromKconfig } from '../../src/linux/kconfig-layout.ts';
import { parseKallsyms } from '../../src/formats/kallsyms.ts';
import { paramSpans } from '../../src/formats/cmdline.ts';
import { imageSymbolsFromKallsyms } from '../../src/linux/image.ts';
import { forEachLeaf, TableLoopError } from '../../src/x86/leaves.ts';
import { PhysMemory } from '../../src/phys/memory.ts';

const CAP = new URL('../fixtures/captures/la48-pti-nokaslr/', import.meta.url).pathname;
const TMP = mkdtempSync(join(tmpdir(), 'kasi-hostile-'));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));

/** The message of the InputError `f` throws (fails the test on anything else). */
function inputError(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e, (e as Error).stack).toBeInstanceOf(InputError);
    expect((e as Error).message).not.toContain('\n');
    return (e as Error).message;
  }
  throw new Error('no error');
}

/** Time `f` in ms. */
function timed(f: () => unknown): number {
  const t = performance.now();
  f();
  return performance.now() - t;
}

describe('reading files: size limits, devices, gzip', () => {
  it('/dev/zero stops at the limit with one line, in well under a second', () => {
    let msg = '';
    const ms = timed(() => { msg = inputError(() => readTextMaybeGz('/dev/zero', 'utf8', 1 << 20)); });
    expect(msg).toMatch(/^\/dev\/zero: more than 1MiB, the most kasi reads/);
    expect(ms).toBeLessThan(1000);
  });

  it('a regular file above the limit is refused from its size, before reading it', () => {
    const f = join(TMP, 'big.txt');
    writeFileSync(f, Buffer.alloc(3 << 20, 0x41));
    expect(inputError(() => readTextMaybeGz(f, 'utf8', 1 << 20))).toBe(`${f}: 3145728 bytes, above the 1MiB kasi reads from one file of this kind`);
  });

  it('a valid gzip stream larger than the limit names the limit, not "corrupt"', () => {
    const f = join(TMP, 'big.gz');
    writeFileSync(f, gzipSync(Buffer.alloc(4 << 20, 0x41)));
    const m = inputError(() => readTextMaybeGz(f, 'utf8', 1 << 20));
    expect(m).toMatch(/more than 1MiB once decompressed, .*not corrupt/);
    expect(m).not.toMatch(/corrupt or truncated/);
    writeFileSync(f, gzipSync(Buffer.from('hello')).subarray(0, 12));
    expect(inputError(() => readTextMaybeGz(f))).toMatch(/corrupt or truncated gzip data/);
  });

  it('a folder is refused by name', () => {
    expect(inputError(() => readTextMaybeGz(TMP))).toMatch(/EISDIR/);
  });
});

describe('JSON depth is bounded before JSON.parse', () => {
  const deep = `{"a": ${'['.repeat(200_000)}${']'.repeat(200_000)}}`;
  it('a deep capture or access case is one line, not "Maximum call stack size exceeded"', () => {
    expect(inputError(() => parsePtImage(deep, 'deep.json'))).toMatch(/^deep\.json: JSON nested more than 64 levels deep/);
    expect(inputError(() => parseAccessCases(`\n${deep}\n`, 'deep.jsonl'))).toMatch(/^deep\.jsonl:2: JSON nested more than 64/);
  });
  it('strings do not count: brackets inside them are text', () => {
    expect(parseJson(`{"s": "${'['.repeat(500)}\\"["}`, 'x')).toEqual({ s: `${'['.repeat(500)}"[` });
  });
});

describe('page-table captures: registers and tables checked when read', () => {
  const base = JSON.parse(gunzipSync(readFileSync(join(CAP, 'kernel.json.gz'))).toString('utf8'));
  const load = (edit: (d: any) => void) => {
    const d = structuredClone(base);
    edit(d);
    return () => parsePtImage(JSON.stringify(d), 'cap.json', 40);
  };
  it('the shipped capture loads (its ESPFIX tables are shared at one level: espfix_64.c)', () => {
    expect(load(() => {})().active_root).toBe('kernel');
  });
  it('active_root "__proto__" and other inherited names are refused', () => {
    expect(inputError(load((d) => { d.active_root = '__proto__'; }))).toMatch(/field active_root: expected one of kernel, user, found "__proto__"/);
    expect(inputError(load((d) => { d.active_root = 'toString'; }))).toMatch(/field active_root/);
  });
  it('CPL must be 0..3 (a string used to become NaN in a BigInt)', () => {
    expect(inputError(load((d) => { d.regs.cpl = 'zero'; }))).toMatch(/field regs\.cpl: expected 0, 1, 2 or 3/);
    expect(inputError(load((d) => { d.regs.cpl = 7; }))).toMatch(/field regs\.cpl/);
  });
  it('CR0.PG, EFER.LME/LMA, CR4.LA57 against paging_levels, CR3 reserved bits', () => {
    expect(inputError(load((d) => { d.regs.cr0 = '0x50033'; }))).toMatch(/field regs\.cr0: expected PG \(bit 31\) and PE/);
    expect(inputError(load((d) => { d.regs.efer = '0x0'; }))).toMatch(/field regs\.efer: expected LME/);
    expect(inputError(load((d) => { d.paging_levels = 5; }))).toMatch(/field paging_levels: 5, but CR4\.LA57 \(bit 12\) is clear/);
    expect(inputError(load((d) => { d.regs.cr3 = '0xffffffffffffffff'; }))).toMatch(/field regs\.cr3: expected bits 63:40 clear/);
    expect(inputError(load((d) => { d.active_root = 'user'; }))).toMatch(/root user is 0x61c9000, but CR3 points to 0x61c8000/);
  });
  it('a page at or above 2^MAXPHYADDR is refused (it was "frame … beyond MAXPHYADDR" from the model)', () => {
    expect(inputError(load((d) => { d.pages['0x10000000000000'] = Object.values(d.pages)[0]; }))).toMatch(/at or above 2\^40/);
  });
  it('a table whose entries point back at their own page is a loop naming the page, found at once', () => {
    // every entry of the root's first present PML4E target points back at the root: 512^4 leaves before
    const edit = (d: any) => {
      const root = Number(BigInt(d.roots.kernel));
      const page = Buffer.alloc(4096);
      for (let i = 0; i < 512; i++) page.writeBigUInt64LE(BigInt(root) | 0x67n, i * 8);
      d.pages[`0x${root.toString(16)}`] = page.toString('base64');
    };
    let msg = '';
    const ms = timed(() => { msg = inputError(load(edit)); });
    expect(msg).toMatch(/field pages\["0x61c8000"\]: a loop in the page tables: the page is a level-4 table \(from roots\.kernel\) and a level-3 table \(from 0x61c8000\[0\]\)/);
    expect(ms).toBeLessThan(2000);
  });
  it('the enumerator itself stops at a loop (tables built outside a capture)', () => {
    const mem = new PhysMemory(40);
    for (let i = 0; i < 512; i++) mem.write64Big(0x1000 + i * 8, 0x1067n);
    expect(() => forEachLeaf(mem, 0x1000, 4, () => {})).toThrow(TableLoopError);
  });
});

describe('line formats', () => {
  it('/proc/iomem: RAM beyond what kasi models, and nesting deeper than it reads', () => {
    expect(inputError(() => parseIomem('00000000-ffffffffffffffff : System RAM\n', 'io'))).toBe('io:1: System RAM up to 0xffffffffffffffff: kasi models at most 64TiB of RAM (the 4-level direct map, mm.rst)');
    const deep = Array.from({ length: 40 }, (_, d) => `${'  '.repeat(d)}00000000-0000ffff : r${d}`).join('\n');
    expect(inputError(() => parseIomem(deep, 'io'))).toMatch(/^io:17: nested 16 levels deep, more than the 16/);
  });
  it('.config: PHYSICAL_ALIGN=0 (a division by zero) and an empty file are refused with their line', () => {
    expect(inputError(() => layoutConfigFromKconfig(parseKconfig('CONFIG_X86_64=y\nCONFIG_PHYSICAL_ALIGN=0x0\n', 'cfg')))).toMatch(/^cfg:2: CONFIG_PHYSICAL_ALIGN=0x0: expected a multiple of 0x200000/);
    expect(inputError(() => layoutConfigFromKconfig(parseKconfig('CONFIG_X86_64=y\nCONFIG_PHYSICAL_START=0xffffffffffff\n', 'cfg')))).toMatch(/^cfg:2: CONFIG_PHYSICAL_START/);
    expect(inputError(() => layoutConfigFromKconfig(parseKconfig('', 'cfg')))).toBe('cfg: no CONFIG_ settings: not a kernel .config');
  });
  it('kallsyms: _text after _end is refused naming the line (it was a negative frame)', () => {
    const text = gunzipSync(readFileSync(join(CAP, 'kallsyms.txt.gz'))).toString('utf8');
    const bad = text.replace(/^ffffffff81000000 T _text$/m, 'ffffffffa1000000 T _text');
    const msg = inputError(() => imageSymbolsFromKallsyms(parseKallsyms(bad, 'ks')));
    expect(msg).toMatch(/^ks:\d+: _etext 0xffffffff81e01d32 is below _text 0xffffffffa1000000: not the order vmlinux\.lds\.S links/);
  });
  it('a command line with a NUL ends there (the tokenizer used to loop, pushing tokens until the heap died)', () => {
    let spans: ReturnType<typeof paramSpans> = [];
    expect(timed(() => { spans = paramSpans('nosmt\0pti=on "\0'); })).toBeLessThan(100);
    expect(spans.map((s) => s.name)).toEqual(['nosmt']);
    expect(paramSpans('a "\0 b').map((s) => s.name)).toEqual(['a', '']);
  });
});
