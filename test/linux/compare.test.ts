// The comparison itself: it must say "match" only for identical leaves, name the region of a
// difference, explain a direct-map difference only when the capture itself shows the
// vmalloc alias that causes it (set_memory.c cpa_process_alias()), and report physical
// addresses apart. Also the capture reader's error contract and the `kasi kernel` command.
import { afterAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { bootKernel, type KernelModel } from '../../src/linux/kernel.ts';
import { compareKernels, markerRegions } from '../../src/linux/compare.ts';
import { setMemoryRo, __PAGE_KERNEL } from '../../src/linux/cpa.ts';
import { populate } from '../../src/linux/fixed.ts';
import { modelFromCapture } from '../../src/linux/capture.ts';
import { CLI } from '../helpers/kasi-cli.ts';
import { InputError } from '../../src/x86/ptimage.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const CAP = join(ROOT, 'test/fixtures/captures/la48-pti-nokaslr');
const TMP = mkdtempSync(join(tmpdir(), 'kasi-kernel-'));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));

const side = (m: KernelModel) => ({
  kernel: { mem: m.mem, root: m.kernelRoot, levels: m.levels },
  user: m.userRoot === null ? null : { mem: m.mem, root: m.userRoot, levels: m.levels },
});
const region = (r: ReturnType<typeof compareKernels>, name: string, root: 'kernel' | 'user' = 'kernel') =>
  (root === 'kernel' ? r.kernel : r.user!).regions.find((x) => x.name === name)!;

/** Map one page of the vmalloc area to `pa`, as vmap() would (PAGE_KERNEL). */
function vmapPage(m: KernelModel, va: bigint, pa: bigint): void {
  const pt = m.cpa.pt;
  pt.write(populate(pt, va, 1, 0x67n), pa | (__PAGE_KERNEL & m.cpa.masks.defaultKernel));
}

describe('compareKernels()', () => {
  it('an identical model and capture match everywhere, every physical address equal', () => {
    const a = bootKernel({ seed: 7 });
    const b = bootKernel({ seed: 7 });
    const r = compareKernels(a.layout, side(a), side(b));
    expect(r.ok).toBe(true);
    for (const x of [...r.kernel.regions, ...r.user!.regions]) {
      expect(x.status, x.name).toBe('match');
      expect(x.pa.equal).toBe(x.pa.compared);
    }
    expect(region(r, 'ESPfix Area').modelLeaves).toBe(65536);
  });

  it('a changed permission in the image is a required difference, named with its region and VA', () => {
    const a = bootKernel({});
    const b = bootKernel({});
    const va = b.sections.sdata;
    setMemoryRo(b.cpa, va, va + 4096n);
    const r = compareKernels(a.layout, side(a), side(b));
    expect(r.ok).toBe(false);
    expect(r.failures).toContain('kernel root: High Kernel Mapping differs');
    const hk = region(r, 'High Kernel Mapping');
    expect(hk.status).toBe('differ');
    expect(hk.differences.join('\n')).toContain(`0x${va.toString(16)}`);
  });

  it('a read-only vmalloc page explains its read-only direct-map alias and the split around it', () => {
    const model = bootKernel({});
    const cap = bootKernel({});
    const pa = 0x10000000n + 0x3000n; // inside a 2M page of the direct map
    const va = cap.layout.addrs.vmalloc_base + 0x5000n;
    vmapPage(cap, va, pa);
    setMemoryRo(cap.cpa, va, va + 4096n); // primary on vmalloc, cpa_process_alias() on the direct map
    const r = compareKernels(model.layout, side(model), side(cap));
    const dm = region(r, 'Low Kernel Mapping');
    expect(dm.status).toBe('dynamic');
    expect(dm.unexplained).toBe(0);
    expect(dm.reason).toMatch(/cpa_process_alias/);
    expect(region(r, 'vmalloc() Area').status).toBe('dynamic');
    expect(r.ok).toBe(true);
  });

  it('the same read-only direct-map page without a vmalloc alias in the capture stays a difference', () => {
    const model = bootKernel({});
    const cap = bootKernel({});
    const dva = cap.layout.addrs.page_offset_base + 0x10003000n;
    setMemoryRo(cap.cpa, dva, dva + 4096n);
    const r = compareKernels(model.layout, side(model), side(cap));
    expect(region(r, 'Low Kernel Mapping').status).toBe('differ');
    expect(r.failures).toContain('kernel root: Low Kernel Mapping differs');
  });

  it('a writable vmalloc alias does not explain a read-only direct-map page', () => {
    const model = bootKernel({});
    const cap = bootKernel({});
    const pa = 0x10003000n;
    vmapPage(cap, cap.layout.addrs.vmalloc_base + 0x5000n, pa); // RW
    const dva = cap.layout.addrs.page_offset_base + pa;
    setMemoryRo(cap.cpa, dva, dva + 4096n);
    const r = compareKernels(model.layout, side(model), side(cap));
    expect(region(r, 'Low Kernel Mapping').status).toBe('differ');
  });

  it('physical addresses are reported apart: another ESPFIX stack page is a PA difference, not a failure', () => {
    const a = bootKernel({ espfixPage: 100, espfixStackPa: [0x5000000n] });
    const b = bootKernel({ espfixPage: 100, espfixStackPa: [0x6000000n] });
    const r = compareKernels(a.layout, side(a), side(b));
    const e = region(r, 'ESPfix Area');
    expect(e.status).toBe('match');
    expect(e.pa.compared).toBe(65536);
    expect(e.pa.equal).toBe(0);
    expect(e.pa.expectation).toMatch(/dynamic/);
    expect(r.ok).toBe(true);
    // Another page_random moves the window: a required difference.
    const c = bootKernel({ espfixPage: 101, espfixStackPa: [0x6000000n] });
    expect(compareKernels(a.layout, side(a), side(c)).failures).toContain('kernel root: ESPfix Area differs');
  });

  it('the regions are the ptdump markers in address order, tiling the kernel half', () => {
    const m = bootKernel({ levels: 5, cpu: { la57: true } });
    const regs = markerRegions(m.layout);
    for (let i = 1; i < regs.length; i++) expect(regs[i].start).toBe(regs[i - 1].end);
    expect(regs.map((x) => x.name)).toContain('Low Kernel Mapping');
    expect(regs[0].start).toBe(0n);
    expect(regs[regs.length - 1].end).toBe(1n << 64n);
  });
});

describe('modelFromCapture() input errors', () => {
  const dir = join(TMP, 'bad');
  const copy = (f: string) => copyFileSync(join(CAP, f), join(dir, f));
  it('a truncated kallsyms.txt.gz is an error naming the file', () => {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir);
    const gz = readFileSync(join(CAP, 'kallsyms.txt.gz'));
    writeFileSync(join(dir, 'kallsyms.txt.gz'), gz.subarray(0, gz.length >> 1));
    copy('iomem.txt');
    expect(() => modelFromCapture(dir)).toThrow(InputError);
    expect(() => modelFromCapture(dir)).toThrow(/kallsyms\.txt\.gz: corrupt or truncated gzip/);
  });
  it('a bad /proc/iomem line is an error naming the file and line', () => {
    copy('kallsyms.txt.gz');
    writeFileSync(join(dir, 'iomem.txt'), readFileSync(join(CAP, 'iomem.txt'), 'utf8').replace('00100000-1ffdffff : System RAM', '00100000-1ffdffff System RAM'));
    expect(() => modelFromCapture(dir)).toThrow(/iomem\.txt:9: expected "START-END : NAME"/);
  });
  it('a missing iomem.txt is an error naming it', () => {
    rmSync(join(dir, 'iomem.txt'));
    expect(() => modelFromCapture(dir)).toThrow(/iomem\.txt: cannot read: ENOENT/);
  });
});

function kasi(...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((res) => {
    const p = spawn(process.execPath, [CLI, ...args], { cwd: ROOT });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('close', (status) => res({ status, stdout, stderr }));
  });
}

describe('kasi kernel', () => {
  it('--capture --compare exits 0 when the required items match; a mismatching compare exits 1; bad options exit 2 with one line', async () => {
    const [ok, mismatch, bad] = await Promise.all([
      kasi('kernel', '--capture', CAP, '--compare'),
      kasi('kernel', '--compare', join(CAP, 'kernel.json.gz'), '--kaslr-seed', '3'),
      kasi('kernel', '--pti', 'sometimes'),
    ]);
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.stdout).toContain('required items: all match');
    expect(ok.stdout).toMatch(/Low Kernel Mapping\s+dynamic\s+yes/);
    expect(ok.stdout).toMatch(/High Kernel Mapping\s+match\s+yes/);
    expect(mismatch.status, mismatch.stderr).toBe(1);
    expect(mismatch.stdout).toContain('required items that differ');
    expect(bad.status).toBe(2);
    expect(bad.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(bad.stderr).toMatch(/--pti: expected on, off or auto/);
    expect(bad.stdout).toBe('');
  });
});
