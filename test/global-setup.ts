/**
 * Vitest global setup: resolves one MongoDB-compatible server for the whole
 * run, names it in the output, and hands test files its URI through
 * `inject('mongoUri')`. Failing to find a server fails the run: the database
 * tests are never skipped.
 */
import type { TestProject } from 'vitest/node';
import { resolveMongoServer } from './mongo-server.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    mongoUri: string;
    mongoServer: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const server = await resolveMongoServer();
  console.log(`MongoDB test server: ${server.description}`);
  project.provide('mongoUri', server.uri);
  project.provide('mongoServer', server.description);
  return () => server.stop();
}
