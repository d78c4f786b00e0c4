// .config and kernel command-line readers. Truth: the captured kernel's own boot log (it prints
// its compiler, NR_CPUS and command line, and which parameters it did not know), the captured
// page tables for what the Kconfig-derived layout predicts (see test/linux/layout.test.ts), and
// for the command line, next_arg()'s rules (lib/cmdline.c) worked out by hand below.
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { loadKconfig, parseKconfig } from '../../src/formats/kconfig.ts';
import { layoutConfigFromKconfig } from '../../src/linux/kconfig-layout.ts';
import { hasParam, lastParam, loadCmdline, paramEq, parseCmdline } from '../../src/formats/cmdline.ts';

const CAPTURES = join(import.meta.dirname, '../fixtures/captures');

describe.each(['la48-pti-nokaslr', 'la57-pti-nokaslr'])('capture %s', (name) => {
  const dir = join(CAPTURES, name);
  const log = readFileSync(join(dir, 'boot.log'), 'utf8').replace(/\r/g, ''); // serial console: CR LF

  it('reads config.gz: every symbol line, typed', () => {
    const k = loadKconfig(join(dir, 'config.gz'));
    const text = readFileSync(join(dir, 'config.gz'));
    expect(text[0]).toBe(0x1f); // it really is gzip
    expect(k.values.size).toBe(6441 + 2336); // `CONFIG_X=` lines + `# CONFIG_X is not set` lines
    expect(k.builtin('X86_5LEVEL')).toBe(true);
    expect(k.module('X86_MCE_INJECT')).toBe(true);
    expect(k.enabled('KASAN')).toBe(false);
    expect(k.get('KASAN')).toMatchObject({ kind: 'tristate', value: 'n' });
    expect(k.number('PHYSICAL_START')).toBe(0x1000000n);
    expect(k.number('RANDOMIZE_MEMORY_PHYSICAL_PADDING')).toBe(10n);
    expect(k.number('ILLEGAL_POINTER_VALUE')).toBe(0xdead000000000000n); // above 2^53: kept exact
    expect(k.number('MTD_REDBOOT_DIRECTORY_BLOCK')).toBe(-1n);
    expect(k.number('NOT_A_SYMBOL', 7n)).toBe(7n);
    // The kernel says what it was built with and for how many CPUs.
    expect(log).toContain(`Linux version 6.1.0-56-amd64 (debian-kernel@lists.debian.org) (${k.string('CC_VERSION_TEXT')},`);
    expect(log).toContain(`setup_percpu: NR_CPUS:${k.number('NR_CPUS')} `);
    expect(() => k.number('CC_VERSION_TEXT')).toThrow(/config\.gz:5: CONFIG_CC_VERSION_TEXT is not a number/);
  });

  it('derives the layout configuration', () => {
    const c = layoutConfigFromKconfig(loadKconfig(join(dir, 'config.gz')));
    expect(c).toMatchObject({ kasan: false, randomizeBase: true, physicalPaddingTb: 10, physicalStart: 0x1000000n, physicalAlign: 0x200000n });
    expect(c.fixmap).toMatchObject({ vsyscallEmulation: true, localApic: true, ioApic: true, paravirtXxl: true, apeiGhes: true, intelTxt: true, ohci1394DmaInit: false });
  });

  it('splits cmdline.txt as the kernel did', () => {
    const c = loadCmdline(join(dir, 'cmdline.txt'));
    expect(c.params).toEqual([
      { name: 'console', value: 'ttyS0' }, { name: 'pti', value: 'on' }, { name: 'panic', value: '-1' }, { name: 'nokaslr', value: null },
    ]);
    expect(c.initArgs).toBeUndefined();
    // "Kernel command line: ..." is the same text; "Unknown kernel command line parameters" lists
    // parameters the kernel split out itself, each of which must be one of ours.
    const text = readFileSync(join(dir, 'cmdline.txt'), 'utf8').trim();
    expect(log).toContain(`Kernel command line: ${text}\n`);
    const unknown = /Unknown kernel command line parameters "([^"]*)"/.exec(log)![1].split(' ');
    const ours = c.params.map((p) => (p.value === null ? p.name : `${p.name}=${p.value}`));
    for (const u of unknown) expect(ours).toContain(u);
    expect(hasParam(c, 'nokaslr')).toBe(true);
    expect(lastParam(c, 'pti')!.value).toBe('on');
  });
});

describe('.config syntax', () => {
  it('unescapes strings and keeps the last of duplicate symbols', () => {
    const k = parseKconfig('CONFIG_A="say \\"hi\\" \\\\o/"\nCONFIG_B=y\n# comment\n\nCONFIG_B=m\nCONFIG_C=""\n', 'c');
    expect(k.string('A')).toBe('say "hi" \\o/');
    expect(k.module('CONFIG_B')).toBe(true);
    expect(k.string('C')).toBe('');
  });
  const bad: [string, string][] = [
    ['CONFIG_A=y\nCONFIG_B\n', 'c:2: expected CONFIG_NAME=VALUE'],
    ['CONFIG_A="open\n', 'c:1: CONFIG_A: unterminated string'],
    ['CONFIG_A="x" y\n', 'c:1: CONFIG_A: text after the closing quote'],
    ['\n\nCONFIG_A=maybe\n', 'c:3: CONFIG_A: value "maybe" is not y, m, n, a quoted string or a number'],
  ];
  for (const [text, msg] of bad) it(`reports ${JSON.stringify(msg)}`, () => expect(() => parseKconfig(text, 'c')).toThrow(msg));
});

describe('command line (lib/cmdline.c next_arg, kernel/params.c parse_args)', () => {
  // [input, [name, value][] , initArgs] — worked out from the C code by hand.
  const cases: [string, [string, string | null][], string | undefined][] = [
    ['a="b c" d', [['a', 'b c'], ['d', null]], undefined],
    ['"a b"', [['a b', null]], undefined],
    ['"a=b c"', [['a', 'b c']], undefined], // quoted whole argument: the trailing quote goes
    ['a=b"c d"e f', [['a', 'b"c d"e'], ['f', null]], undefined], // inner quotes stay
    ['=x', [['=x', null]], undefined], // an '=' at index 0 does not split
    ['=x=y', [['=x', 'y']], undefined],
    ['a= b', [['a', ''], ['b', null]], undefined],
    ['a="" b', [['a', ''], ['b', null]], undefined],
    ['a=b=c', [['a', 'b=c']], undefined],
    ['a="b', [['a', 'b']], undefined], // unterminated: to the end, opening quote dropped
    ['"open x', [['open x', null]], undefined],
    ['dyndbg="file foo.c +p" quiet', [['dyndbg', 'file foo.c +p'], ['quiet', null]], undefined],
    ['  x\t\ny  \n', [['x', null], ['y', null]], undefined],
    ['a\u00a0b', [['a', null], ['b', null]], undefined], // 0xA0 is a space in lib/ctype.c
    ['ro -- single  "x y"', [['ro', null]], 'single  "x y"'],
    ['ro --=1 x', [['ro', null], ['--', '1'], ['x', null]], undefined], // only a bare -- stops
    ['', [], undefined],
  ];
  for (const [input, want, init] of cases) {
    it(JSON.stringify(input), () => {
      const c = parseCmdline(input);
      expect(c.params.map((p) => [p.name, p.value])).toEqual(want);
      expect(c.initArgs).toBe(init);
    });
  }
  it('treats - and _ alike in names (parameq)', () => {
    expect(paramEq('init_on_alloc', 'init-on-alloc')).toBe(true);
    expect(paramEq('a_b', 'a_c')).toBe(false);
    expect(lastParam(parseCmdline('x-y=1 x_y=2'), 'x_y')!.value).toBe('2');
  });
});
