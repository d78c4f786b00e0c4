/**
 * Boots the model cannot make from hostile inputs (issue 15): each ends in one InputError naming
 * the file that caused it (linux/boot-error.ts, capture.ts), not a RangeError from deep in the
 * boot ("no RAM ranges", "out of memory: no free N-byte block", "layout: vsyscall … overlaps",
 * "perCpuPa: 1 addresses for 4 CPUs", "Maximum call stack size exceeded"). A capture folder is
 * the shipped one with one file replaced.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { InputError } from '../../src/formats/files.ts';
import { parseScenario } from '../../src/scenario/load.ts';
import { modelFromCapture } from '../../src/linux/capture.ts';
import { bootKernel } from '../../src/linux/kernel.ts';
import { BootError } from '../../src/linux/boot-error.ts';

const CAP = new URL('../fixtures/captures/la48-pti-nokaslr/', import.meta.url).pathname;
const TMP = mkdtempSync(join(tmpdir(), 'kasi-hostile-boot-'));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));

let n = 0;
/** A copy of the shipped capture folder with `files` replaced. */
function captureWith(files: Record<string, string>): string {
  const dir = join(TMP, `cap${n++}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir);
  for (const f of readdirSync(CAP)) if (!(f in files)) copyFileSync(join(CAP, f), join(dir, f));
  for (const [f, text] of Object.entries(files)) writeFileSync(join(dir, f), text);
  return dir;
}

function inputError(f: () => unknown): InputError {
  try {
    f();
  } catch (e) {
    expect(e, (e as Error).stack).toBeInstanceOf(InputError);
    expect((e as Error).message).not.toContain('\n');
    return e as InputError;
  }
  throw new Error('no error');
}

describe('capture folders the model cannot boot name their file', () => {
  it("cmdline.txt goes through the scenarios' strict parser: pti=maybe is refused", () => {
    const dir = captureWith({ 'cmdline.txt': 'console=ttyS0 pti=maybe nokaslr\n' });
    const e = inputError(() => modelFromCapture(dir));
    expect(e.file).toBe(join(dir, 'cmdline.txt'));
    expect(e.message).toMatch(/pti=maybe: unknown value "maybe" \(expected one of on, off, auto\)/);
  });

  it('an iomem without System RAM, or too little of it for the image and the boot', () => {
    const none = captureWith({ 'iomem.txt': '00000000-00000fff : Reserved\n00100000-001fffff : PCI Bus 0000:00\n' });
    expect(inputError(() => modelFromCapture(none)).message).toMatch(/iomem\.txt: cannot boot the kernel the capture .* describes: no RAM ranges/);
    const tiny = captureWith({ 'iomem.txt': '00001000-0009fbff : System RAM\n00100000-007fffff : System RAM\n' });
    expect(inputError(() => modelFromCapture(tiny)).message).toMatch(/iomem\.txt: cannot boot .*: the kernel image \[0x1000000, 0x[0-9a-f]+\) does not start in RAM/);
    const full = captureWith({ 'iomem.txt': '01000000-0447ffff : System RAM\n' }); // the image and 300 KiB
    expect(inputError(() => modelFromCapture(full)).message).toMatch(/iomem\.txt: cannot boot .*: out of memory at boot: no free 2097152-byte block aligned to 2097152 \(RAM 303104B left\)/);
  });

  it('an empty .config is not a kernel configuration', () => {
    const dir = captureWith({ 'config.gz': '' });
    expect(inputError(() => modelFromCapture(dir)).message).toBe(`${join(dir, 'config.gz')}: no CONFIG_ settings: not a kernel .config`);
  });

  it('more CPUs than the capture booted with (its per-CPU areas)', () => {
    const e = inputError(() => modelFromCapture(CAP, { cpus: 4 }));
    expect(e.file).toBe(join(CAP, 'kernel.json.gz'));
    expect(e.message).toMatch(/shows 1 possible CPU\(s\) .* fewer than the 4/);
  });

  it('a scenario booting the shipped capture on a 4-thread machine is refused at parse time', () => {
    const file = new URL('../fixtures/scenario.yaml', import.meta.url).pathname;
    expect(() => parseScenario('machine: { cores: 2, threads_per_core: 2 }\nkernel: { capture: captures/la48-pti-nokaslr }\n', file))
      .toThrow(/scenario\.yaml:2:20: field kernel\.capture: expected a capture whose kernel booted with the machine's 4 hardware threads .*found one whose kernel booted with 1 CPU/);
  });
});

describe('RAM the model boots', () => {
  it('16 TiB boots (reserved.push(...allocated) overflowed the stack from 16 TiB)', () => {
    const m = bootKernel({ ram: [{ start: 0x1000n, end: 0x9fc00n }, { start: 1n << 20n, end: 16n << 40n }], cpu: { gbpages: true } });
    expect(m.stats.directMap.g1).toBeGreaterThan(0);
  }, 60_000);

  it('a boot error says which input it is about', () => {
    expect(() => bootKernel({ ram: [] })).toThrow(BootError);
    try { bootKernel({ ram: [] }); } catch (e) { expect((e as BootError).input).toBe('ram'); }
  });
});
