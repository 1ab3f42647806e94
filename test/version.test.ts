/** The version constant the telemetry reports is package.json's. */
import { readFile } from 'node:fs/promises';
import { expect, it } from 'vitest';
import { version } from '../src/version.ts';

it('src/version.ts says the version package.json says', async () => {
  const manifest = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  expect(version).toBe(manifest.version);
});
