// /proc/iomem reader against the captures. Truth: the same boot's serial log (the BIOS-e820
// table and its later edits; the "Memory: avail/physpages" line of mm_init's
// mem_init_print_info(); the "Freeing ..." lines) and /proc/meminfo's MemTotal.
//
// What can be checked exactly: System RAM counted in whole pages equals the kernel's physpages,
// and MemTotal = physpages - reserved-at-boot + everything freed later, all from the log. What
// cannot: how the reserved part splits (kernel image, memmap, page tables, initrd...), which the
// log gives only in total.
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { loadIomem, parseIomem } from '../../src/formats/iomem.ts';

const CAPTURES = join(import.meta.dirname, '../fixtures/captures');

function e820Usable(log: string): { start: bigint; end: bigint }[] {
  let ranges: { start: bigint; end: bigint }[] = [];
  for (const m of log.matchAll(/BIOS-e820: \[mem 0x([0-9a-f]+)-0x([0-9a-f]+)\] usable/g)) {
    ranges.push({ start: BigInt('0x' + m[1]), end: BigInt('0x' + m[2]) + 1n });
  }
  // "e820: update [mem A-B] usable ==> reserved" and "e820: remove [mem A-B] usable" take RAM away.
  for (const m of log.matchAll(/e820: (?:update|remove) \[mem 0x([0-9a-f]+)-0x([0-9a-f]+)\] usable/g)) {
    const s = BigInt('0x' + m[1]);
    const e = BigInt('0x' + m[2]) + 1n;
    ranges = ranges.flatMap((r) => {
      if (e <= r.start || s >= r.end) return [r];
      const out = [];
      if (s > r.start) out.push({ start: r.start, end: s });
      if (e < r.end) out.push({ start: e, end: r.end });
      return out;
    });
  }
  return ranges;
}

describe.each(['la48-pti-nokaslr', 'la57-pti-nokaslr'])('capture %s', (name) => {
  const dir = join(CAPTURES, name);
  const iomem = loadIomem(join(dir, 'iomem.txt'));
  // boot.log holds the serial console and then a dmesg dump of the same boot: keep each line once.
  const log = [...new Set(readFileSync(join(dir, 'boot.log'), 'utf8').split('\n'))].join('\n');
  const meminfo = readFileSync(join(dir, 'meminfo.txt'), 'utf8');

  it('builds the nested tree', () => {
    expect(iomem.roots.map((r) => r.name)).toContain('System RAM');
    const ram = iomem.roots.find((r) => r.name === 'System RAM' && r.children.length > 0)!;
    expect(ram.children.map((c) => c.name)).toEqual(['Kernel code', 'Kernel rodata', 'Kernel data', 'Kernel bss']);
    expect(iomem.find('System ROM')[0].depth).toBe(1);
    expect([...iomem.nodes()].length).toBe(24); // the file's 24 lines
  });

  it('System RAM is the e820 usable memory after the kernel trimmed it', () => {
    const want = e820Usable(log);
    expect(iomem.systemRam()).toEqual(want);
    expect(iomem.maxPhysAddr()).toBe(0x1ffe0000n);
  });

  it('System RAM in whole pages is the kernel\'s physpages, and MemTotal follows from the boot log', () => {
    const m = /Memory: (\d+)K\/(\d+)K available \(.* (\d+)K reserved, (\d+)K cma-reserved\)/.exec(log)!;
    const physK = BigInt(m[2]);
    expect(iomem.systemRamPages() * 4n).toBe(physK);
    const reservedK = BigInt(m[3]) + BigInt(m[4]);
    let freedK = 0n;
    for (const f of log.matchAll(/Freeing [^:]*: (\d+)K/g)) freedK += BigInt(f[1]);
    const memTotal = BigInt(/MemTotal:\s+(\d+) kB/.exec(meminfo)![1]);
    expect(physK - reservedK + freedK).toBe(memTotal);
    // And the unpaged total: only the partial page below 0x9fc00 separates bytes from pages.
    expect(iomem.systemRamBytes() - iomem.systemRamPages() * 4096n).toBe(0xc00n);
  });
});

describe('malformed /proc/iomem', () => {
  const cases: [string, string][] = [
    ['00000000-00000fff : Reserved\nzzz\n', 'x:2: expected "START-END : NAME"'],
    ['00000000-00000fff : Reserved\n   00000000-000000ff : odd\n', 'x:2: indentation of 3 spaces'],
    ['    00000000-00000fff : deep\n', 'x:1: nested 2 levels deep'],
    ['00001000-00000fff : backwards\n', 'x:1: range ends (0x00000fff) before it starts (0x00001000)'],
    ['00100000-001fffff : System RAM\n  00300000-003fffff : Kernel code\n', 'x:2: 0x00300000-0x003fffff lies outside its parent System RAM (line 1)'],
    ['00000000-00000000 : System RAM\n  00000000-00000000 : Kernel code\n', 'x: every address is zero'],
  ];
  for (const [text, msg] of cases) {
    it(`reports ${JSON.stringify(msg)}`, () => expect(() => parseIomem(text, 'x')).toThrow(msg));
  }
});
