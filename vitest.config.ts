import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // $KASI_DB in a temporary folder: no test leaves a kasi.db in the repository; the CLI the
    // tests' child processes run, compiled from the sources (dist/test-cli/).
    globalSetup: ['test/store-env.ts', 'test/build-cli.ts'],
    testTimeout: 120_000,
    // vitest's default is one fewer than the CPUs: one worker on a 2-core machine. Many tests wait
    // on kasi child processes, so at least two workers overlap them.
    maxWorkers: Math.max(2, availableParallelism() - 1),
    minWorkers: 1,
    hookTimeout: 120_000,
  },
});
