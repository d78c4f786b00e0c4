/**
 * One boot per distinct kernel, copied per isolation entry (sim/boot-cache.ts), against booting
 * every entry (useBootCache(false)): whole run reports equal on the default scenario (10 entries,
 * 4 distinct kernels: PTI off/on, the ASI designs' global-kernel rule) and on the 5-level and SCI
 * examples; and the kept kernel is never changed by the worlds built on its copies — after runs,
 * a copy still equals a fresh boot frame by frame and field by field. A copy that shared a
 * mutable part with the kept kernel (a typed array, the buddy-visible reserved list, page-table
 * frames) would make the second entry that boots it see the first entry's changes.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { defaultScenario, loadScenario } from '../../src/scenario/load.ts';
import { runScenario } from '../../src/sim/run.ts';
import { bootKernelCached, keptKernels, useBootCache } from '../../src/sim/boot-cache.ts';
import { bootKernel, type KernelModel, type KernelOptions } from '../../src/linux/kernel.ts';
import type { Scenario } from '../../src/sim/scenario-types.ts';

afterEach(() => useBootCache(true));

const ms = (x: number) => ({ unit: 'ns' as const, value: x * 1e6 });

function both(s: Scenario, seed: number): void {
  useBootCache(false);
  const each = runScenario(s, { seed, duration: ms(0.2) });
  useBootCache(true);
  const cached = runScenario(s, { seed, duration: ms(0.2) });
  expect(cached).toEqual(each);
}

/** Everything of a kernel model but its memory (compared frame by frame) and the shared layout. */
function fields(k: KernelModel): string {
  const { mem: _m, layout: _l, cpa, ...rest } = k;
  const { pt: _p, ...cpaRest } = cpa;
  return JSON.stringify({ ...rest, cpa: cpaRest }, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v));
}

describe('boot cache', () => {
  it('default scenario: the same report as a boot per entry', () => both(defaultScenario(), 42), 60_000);
  it('la57 and sci examples: the same reports', () => {
    both(loadScenario('examples/la57-icelake.yaml'), 1);
    both(loadScenario('examples/sci-syscalls.yaml'), 2);
  }, 60_000);

  it('runs on copies leave the kept kernel as booted', () => {
    useBootCache(true);
    runScenario(defaultScenario(), { seed: 3, duration: ms(0.2) });
    const MiB = 1 << 20;
    // The default scenario's PTI kernel (world.ts kernelOptions for skylake-sp, 4 CPUs, 4 GiB; pti_mode
    // auto, as the default command line boots it: PTI_FORCE_ON only for pti=on).
    const opts: KernelOptions = {
      cpus: 4, levels: 4, seed: 7, ram: [{ start: 0x1000n, end: 0x9fc00n }, { start: BigInt(MiB), end: BigInt(4096 * MiB) }], kaslr: { seed: 7 }, pti: 'auto',
      nonGlobalKernel: false, nonGlobalImage: false, highmapTail: 'keep',
      cpu: { vendor: 'intel', family: 6, pcid: true, la57: false, gbpages: true, nx: true, meltdown: true },
    };
    const fresh = bootKernel(opts);
    const n = keptKernels();
    expect(n).toBeGreaterThan(1); // the default scenario boots 4 distinct kernels for its 10 entries
    const copy = bootKernelCached(opts);
    expect(keptKernels(), 'the options are the ones world.ts booted with').toBe(n);
    expect(copy.mem).not.toBe(fresh.mem);
    expect(fields(copy)).toBe(fields(fresh));
    expect(copy.mem.frames()).toEqual(fresh.mem.frames());
    let differ = -1;
    for (const pfn of fresh.mem.frames()) {
      const a = copy.mem.frameWords(pfn);
      const b = fresh.mem.frameWords(pfn);
      for (let i = 0; i < 1024 && differ < 0; i++) if (a[i] !== b[i]) differ = pfn;
    }
    expect(differ, 'first frame that differs').toBe(-1);
    // A second copy is independent of the first.
    copy.mem.write32(Number(copy.kernelRoot), 0xdead);
    expect(bootKernelCached(opts).mem.read32(Number(copy.kernelRoot))).toBe(fresh.mem.read32(Number(fresh.kernelRoot)));
  }, 60_000);
});
