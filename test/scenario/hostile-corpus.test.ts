/**
 * The corpus of hostile inputs (test/fixtures/hostile/README.md): every file there once crashed,
 * hung or was accepted and wrong; each must now be refused with the project's InputError (a
 * command line: CmdlineError, which its callers turn into one). They run through the fuzz
 * worker (test/fuzz/run-fuzz.ts), so a regression to a hang fails here instead of stalling.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runFuzz } from '../fuzz/run-fuzz.ts';

const DIR = new URL('../fixtures/hostile/', import.meta.url).pathname;
/** Corpus folder -> fuzz target (test/fuzz/targets.ts). */
const TARGET: Record<string, string> = {
  scenario: 'scenario', capture: 'capture', access: 'access-cases', iomem: 'iomem', kconfig: 'kconfig', kallsyms: 'kallsyms', cmdline: 'cmdline',
};

describe('hostile corpus: each file is refused, in time', () => {
  for (const [folder, target] of Object.entries(TARGET)) {
    it(`${folder}/`, async () => {
      const files = readdirSync(join(DIR, folder)).sort().map((f) => ({ file: join(DIR, folder, f), text: readFileSync(join(DIR, folder, f), 'latin1') }));
      expect(files.length).toBeGreaterThan(0);
      const r = await runFuzz(target, 0, 0, 10_000, files);
      expect(r.ok, r.report).toBe(true);
      expect(r.numRuns).toBe(files.length);
    }, 120_000);
  }
  it('every folder is read', () => {
    expect(readdirSync(DIR).filter((f) => f !== 'README.md').sort()).toEqual(Object.keys(TARGET).sort());
  });
});
