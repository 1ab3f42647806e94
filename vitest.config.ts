import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'test/**/*.test.tsx'],
    globalSetup: ['test/global-setup.ts'],
    // The memory test measures heap after a forced collection.
    execArgv: ['--expose-gc'],
    // Every file talks to one shared server; hooks may create collections and
    // indexes, which takes longer than vitest's defaults on a loaded machine.
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
