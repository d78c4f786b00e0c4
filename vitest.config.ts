import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // $KASI_DB in a temporary folder: no test leaves a kasi.db in the repository.
    globalSetup: ['test/store-env.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
