/**
 * The ptdump reader: the kernel's dump_pagetables.c text (as kasi's report/ptdump.ts prints it,
 * the same format) back into regions and runs; the detector on every shared sample.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { detectFormat } from '../../src/formats/detect.ts';
import { parsePtdump } from '../../src/formats/ptdump.ts';
import { PROT_GLOBAL, PROT_NX, PROT_PRESENT, PROT_PSE, PROT_RW, PROT_USER, formatRun } from '../../src/report/ptdump.ts';
import { SAMPLES, inputError, sample } from './helpers.ts';

const VPN = (va: bigint) => Number(va >> 12n);

describe('ptdump reader', () => {
  it('reads back what note_page() prints: regions, runs, flags, levels, sizes, skipped entries', () => {
    const text = [
      '---[ User Space ]---',
      formatRun(0, VPN(0xffff880000000000n), 0, 0).trimEnd(),
      '---[ Low Kernel Mapping ]---',
      formatRun(VPN(0xffff888000000000n), VPN(0xffff888000200000n), PROT_PRESENT | PROT_RW | PROT_GLOBAL | PROT_NX, 4).trimEnd(),
      formatRun(VPN(0xffff888000200000n), VPN(0xffff888001000000n), PROT_PRESENT | PROT_RW | PROT_PSE | PROT_NX, 3).trimEnd(),
      '---[ ESPfix Area ]---',
      formatRun(VPN(0xffffff0000000000n), VPN(0xffffff0000001000n), PROT_PRESENT | PROT_USER, 4).trimEnd(),
      '... 131059 entries skipped ... ',
      'x86/mm: Checked W+X mappings: passed, no W+X pages found.',
    ].join('\n');
    const d = parsePtdump(text, 'pt');
    expect(d.regions.map((r) => [r.name, r.ranges.length, r.skippedEntries])).toEqual([['User Space', 1], ['Low Kernel Mapping', 2], ['ESPfix Area', 1]].map(([n, k]) => [n, k, n === 'ESPfix Area' ? 131059 : 0]));
    expect(d.regions[0].ranges[0]).toEqual({ start: '0x0000000000000000', end: '0xffff880000000000', bytes: String(0xffff880000000000n), flags: [], present: false, level: 'pgd', line: 2 });
    expect(d.regions[1].ranges[0]).toMatchObject({ bytes: String(2 << 20), flags: ['RW', 'GLB', 'NX'], present: true, level: 'pte' });
    expect(d.regions[1].ranges[1]).toMatchObject({ bytes: String(14 << 20), flags: ['RW', 'PSE', 'NX'], level: 'pmd' });
    expect(d.regions[2].ranges[0].flags).toEqual(['USR', 'ro', 'x']);
    expect(d.skipped).toEqual([{ line: 9, why: 'not a ptdump line' }]);
  });

  it('32-bit addresses, a run with an unknown flag listed, nothing readable is one error', () => {
    const d = parsePtdump('0xc0000000-0xc0400000           4M     RW         PSE GLB NX pmd\n0xc0400000-0xc0401000           4K     RW   FOO               NX pte\n', 'p');
    expect(d.regions).toHaveLength(1);
    expect(d.regions[0].name).toBeNull();
    expect(d.skipped).toEqual([{ line: 2, why: 'unknown flag "FOO"' }]);
    expect(inputError(() => parsePtdump('nothing here\n', 'p')).message).toMatch(/^p:1: expected the kernel's page-table dump .*, found "nothing here"$/);
  });
});

describe('format detection', () => {
  it('detects the format of every shared sample (the directory it is in); the traceback still reads as bcc', () => {
    const expected: Record<string, string> = {
      'strace-c': 'strace-c', 'perf-trace-summary': 'perf-trace-summary', 'perf-kvm-stat': 'perf-kvm-stat',
      'kvm-exit-trace': 'kvm-trace', 'bcc-kvmexit': 'bcc-kvmexit',
    };
    for (const dir of Object.keys(expected)) {
      for (const f of readdirSync(join(SAMPLES, dir))) {
        const { text } = sample(dir, f);
        expect(detectFormat(text, f)?.format, `${dir}/${f}`).toBe(expected[dir]);
      }
    }
    expect(detectFormat('---[ User Space ]---\n', 'x')?.format).toBe('ptdump');
    expect(detectFormat('hello\n', 'x')).toBeNull();
  });
});
