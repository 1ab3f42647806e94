import { defineConfig } from 'vitest/config';

/**
 * MONGODB_DRIVER=6 runs the suite on the `mongodb6` dev dependency (the
 * driver's 6.x line) instead of `mongodb` (7.x): both majors are supported
 * peers. test/server.test.ts checks which one a run really loaded.
 */
const driver = process.env.MONGODB_DRIVER ?? '7';
const outage = 'test/reliability/outage.test.ts';
if (driver !== '6' && driver !== '7') throw new Error(`MONGODB_DRIVER must be 6 or 7, not ${driver}`);

export default defineConfig({
  resolve: { alias: driver === '6' ? [{ find: /^mongodb$/, replacement: 'mongodb6' }] : [] },
  test: {
    // The memory test measures heap after a forced collection.
    execArgv: ['--expose-gc'],
    // Every file talks to one shared server; hooks may create collections and
    // indexes, which takes longer than vitest's defaults on a loaded machine.
    testTimeout: 30_000,
    hookTimeout: 60_000,
    projects: [
      // The shared FerretDB and PostgreSQL servers, for every other file.
      {
        extends: true,
        test: { name: 'suite', include: ['test/**/*.test.ts', 'test/**/*.test.tsx'], exclude: [outage], globalSetup: ['test/global-setup.ts'] },
      },
      // The outage test stops and restarts a server of its own and times the
      // driver's recovery, so it runs alone, after everything else (a group
      // of its own), where no other file's load shifts its timings. (This did
      // not cure the driver's occasional silent monitor after the restart:
      // the test reconnects the client then; see the test.)
      { extends: true, test: { name: 'outage', include: [outage], sequence: { groupOrder: 1 } } },
    ],
  },
});
