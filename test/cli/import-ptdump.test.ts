/**
 * `kasi kernel --compare-ptdump FILE`: the model's tables against a page-table dump in the
 * kernel's debugfs format, region by region (report/ptdump-compare.ts over formats/ptdump.ts).
 * The model's own dump compares the same; one flag changed in the file is reported at its line
 * with the present bytes by flag set, and the command exits 1.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { kasiRun } from '../helpers/kasi-cli.ts';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parsePtdump } from '../../src/formats/ptdump.ts';
import { bootKernel } from '../../src/linux/kernel.ts';
import { markerLayout } from '../../src/linux/compare.ts';
import { ptdump } from '../../src/report/ptdump.ts';
import { comparePtdumps } from '../../src/report/ptdump-compare.ts';

const TMP = mkdtempSync(join(tmpdir(), 'kasi-ptc-'));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));

describe('kasi kernel --compare-ptdump', () => {
  const model = bootKernel({});
  const text = ptdump(model.mem, model.kernelRoot, markerLayout(model.layout)).text;

  it("the model's own dump read back compares the same, region by region", () => {
    const c = comparePtdumps(parsePtdump(text, 'model'), parsePtdump(text, 'file'));
    expect(c.ok).toBe(true);
    expect(c.regions.map((r) => r.name)).toContain('High Kernel Mapping');
  });

  it('one flag changed in the file: that region differs at that line, exit 1', async () => {
    const lines = text.split('\n');
    const at = lines.findIndex((l) => l.startsWith('0xffff888000000000-') && / RW /.test(l));
    expect(at).toBeGreaterThan(0);
    lines[at] = lines[at].replace(' RW ', ' ro ');
    const file = join(TMP, 'kernel');
    writeFileSync(file, lines.join('\n'));
    const r = await kasiRun(['kernel', '--compare-ptdump', file]);
    expect(r.status, r.stderr).toBe(1);
    expect(r.stdout).toMatch(/ptdump comparison with \S+kernel: 1 of \d+ regions differ\n/);
    expect(r.stdout).toContain(`first difference (file line ${at + 1}): model 0xffff888000000000-0xffff888000001000 RW NX pte | file 0xffff888000000000-0xffff888000001000 ro NX pte`);
    expect(r.stdout).toMatch(/present ro NX pte: model 0 bytes, file 4096 bytes/);
  });
});
