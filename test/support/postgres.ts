/** A per-file PostgreSQL schema on the run's server, for tests that need the pool itself. */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';

export interface TestSchema {
  pool: pg.Pool;
  name: string;
  close(): Promise<void>;
}

/** Creates a fresh schema and a pool whose search_path is it. */
export async function openTestSchema(prefix: string): Promise<TestSchema> {
  const name = `${prefix}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: inject('pgUri') });
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${name}`);
  await admin.end();
  const pool = new pg.Pool({ connectionString: inject('pgUri'), options: `-c search_path=${name}` });
  return {
    pool,
    name,
    close: async () => {
      await pool.query(`DROP SCHEMA ${name} CASCADE`).catch(() => {});
      await pool.end();
    },
  };
}
