/**
 * Fuzzing every reader of an outside file and the scenario loader (issue 15), each in a worker
 * thread with a watchdog (test/fuzz/run-fuzz.ts), so a hang fails the test instead of stalling
 * it. Inputs are the shipped fixtures and examples mutated three ways (test/fuzz/mutate.ts):
 * structure-preserving leaf mutations that keep the file valid YAML/JSON, line mutations, raw
 * text; each is read, then used as the commands use it (test/fuzz/targets.ts). Accepted, or
 * refused with the project's InputError: anything else fails, with the input that caused it.
 * Inputs that failed once are kept in test/fixtures/hostile/ (test/scenario/hostile-corpus.test.ts).
 *
 * Cases: the default run spreads 17,000 cases over the targets (under a minute on the 2-core CI
 * machine, watchdog included) and boots 6 mutated capture folders. Set KASI_FUZZ_CASES=N to run
 * N cases of every target (the full run: KASI_FUZZ_CASES=20000, a few minutes a target;
 * capture folders get N/500), and KASI_FUZZ_SEED=S for other inputs than the fixed default seeds.
 */
import { describe, expect, it } from 'vitest';
import { runFuzz } from './run-fuzz.ts';

/** The default share of the 17,000 cases (slower readers fewer: footprints parses 300 KB a case). */
const SHARE: Record<string, number> = {
  scenario: 4000, capture: 2000, 'access-cases': 2500, kallsyms: 2000, iomem: 2000, kconfig: 1500, cmdline: 1500, footprints: 300, 'tool-outputs': 800, ptdump: 400,
};
const FULL = process.env.KASI_FUZZ_CASES === undefined ? null : Number(process.env.KASI_FUZZ_CASES);
const SEED = process.env.KASI_FUZZ_SEED === undefined ? null : Number(process.env.KASI_FUZZ_SEED);
if (FULL !== null && !(Number.isSafeInteger(FULL) && FULL > 0)) throw new Error(`KASI_FUZZ_CASES: expected a positive integer, found ${process.env.KASI_FUZZ_CASES}`);

/** A case that takes longer than this hangs (the slowest legitimate case, a 1 MiB scenario, parses in under a second). */
const WATCHDOG_MS = 10_000;

describe('fuzz: every reader and the scenario loader (accepted, or an InputError; never a hang)', () => {
  Object.entries(SHARE).forEach(([target, share], k) => {
    const cases = FULL ?? share;
    it(`${target}: ${cases} cases`, async () => {
      const r = await runFuzz(target, cases, SEED ?? 0x15_0000 + k, WATCHDOG_MS);
      expect(r.ok, r.report).toBe(true);
      expect(r.numRuns).toBe(cases);
    }, Math.max(120_000, cases * 50));
  });

  it('the watchdog: a case that hangs fails the run, names its input, and the loop is stopped', async () => {
    const t = performance.now();
    const r = await runFuzz('selftest-hang', 5, 1, 1000);
    expect(r.ok).toBe(false);
    expect(r.report).toMatch(/^selftest-hang: no answer in 1000 ms \(a hang\) on case 1 \(seed 1\):\nany input$/);
    expect(performance.now() - t).toBeLessThan(30_000);
  });

  const folders = FULL === null ? 6 : Math.max(6, Math.round(FULL / 500));
  it(`capture folder (iomem.txt, cmdline.txt mutated; each boots the kernel): ${folders} cases`, async () => {
    const r = await runFuzz('capture-folder', folders, SEED ?? 0x15_00ff, 60_000);
    expect(r.ok, r.report).toBe(true);
  }, Math.max(180_000, folders * 30_000));
});
