import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // $KASI_DB in a temporary folder: no test leaves a kasi.db in the repository.
    globalSetup: ['test/store-env.ts'],
    testTimeout: 120_000,
    // Two workers even on a 2-core machine (vitest's default is one fewer than the CPUs, i.e. one):
    // many tests wait on kasi child processes, so a second worker overlaps them.
    maxWorkers: 2,
    minWorkers: 1,
    hookTimeout: 120_000,
  },
});
