/**
 * Vitest global setup: resolves one MongoDB-compatible server and one
 * PostgreSQL server for the whole run, names them in the output, and hands
 * test files their URIs through `inject('mongoUri')` and `inject('pgUri')`.
 * Failing to find either fails the run: database tests are never skipped.
 */
import type { TestProject } from 'vitest/node';
import { resolveMongoServer } from '../servers/mongo.ts';
import { resolvePostgresServer } from '../servers/postgres.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    mongoUri: string;
    mongoServer: string;
    pgUri: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const mongo = await resolveMongoServer();
  console.log(`MongoDB test server: ${mongo.description}`);
  let postgres;
  try {
    postgres = await resolvePostgresServer();
  } catch (error) {
    await mongo.stop();
    throw error;
  }
  console.log(`PostgreSQL test server: ${postgres.description}`);
  project.provide('mongoUri', mongo.uri);
  project.provide('mongoServer', mongo.description);
  project.provide('pgUri', postgres.uri);
  return async () => {
    await Promise.all([mongo.stop(), postgres.stop()]);
  };
}
