import { defineConfig } from 'vitest/config';

/**
 * MONGODB_DRIVER=6 runs the suite on the `mongodb6` dev dependency (the
 * driver's 6.x line) instead of `mongodb` (7.x): both majors are supported
 * peers. test/server.test.ts checks which one a run really loaded.
 */
const driver = process.env.MONGODB_DRIVER ?? '7';
if (driver !== '6' && driver !== '7') throw new Error(`MONGODB_DRIVER must be 6 or 7, not ${driver}`);

export default defineConfig({
  resolve: { alias: driver === '6' ? [{ find: /^mongodb$/, replacement: 'mongodb6' }] : [] },
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
