/**
 * PostgreSQL only: the `schema` option puts the table in a schema other
 * than the search path's first (`auth.sessions`), checked like the table name.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { SessionOptionsError } from '../../src/index.ts';
import { PostgresSessionStore, PostgresStore } from '../../src/postgres/index.ts';
import { onlyCookie, randomKey, requestWith } from '../support/http.ts';
import { openTestSchema, type TestSchema } from '../support/postgres.ts';

let home: TestSchema;
let other: TestSchema;
beforeAll(async () => {
  home = await openTestSchema('home');
  other = await openTestSchema('auth');
});
afterAll(async () => {
  await home.close();
  await other.close();
});

const keyPairs = [{ authentication: randomKey() }];

it('creates and uses the table in the schema given, not in the search path', async () => {
  // The pool's search path is `home`; the store is told `other`.
  const store = new PostgresSessionStore<{ visits: number }>(home.pool, { keyPairs, schema: other.name, table: 'sessions' });
  const req = requestWith();
  const session = await store.get(req, 'sid');
  session.values.visits = 1;
  const headers = new Headers();
  expect(await store.save(req, headers, session)).toBe('created');
  expect((await store.get(requestWith({ sid: onlyCookie(headers).value }), 'sid')).values).toEqual({ visits: 1 });

  const tables = await home.pool.query<{ table_schema: string }>(
    `SELECT table_schema FROM information_schema.tables WHERE table_name = 'sessions' AND table_schema IN ($1, $2)`,
    [home.name, other.name],
  );
  expect(tables.rows.map((row) => row.table_schema)).toEqual([other.name]);
  const indexes = await home.pool.query<{ indexname: string }>(`SELECT indexname FROM pg_indexes WHERE schemaname = $1 ORDER BY indexname`, [other.name]);
  expect(indexes.rows.map((row) => row.indexname)).toEqual(['sessions_expiry_idx', 'sessions_owner_idx', 'sessions_pkey']);
  expect(await store.getActiveSessionsCount()).toBe(1);

  const tokens = new PostgresStore(home.pool, { schema: other.name, cleanupInterval: 0 });
  await tokens.commit('token', new TextEncoder().encode('data'), new Date(Date.now() + 60_000));
  expect(await home.pool.query(`SELECT 1 FROM ${other.name}.tokens`)).toMatchObject({ rowCount: 1 });
});

it('refuses a schema or table name that is not a plain identifier, at construction', () => {
  for (const schema of ['auth.sessions', 'a"b', '', 'x; DROP TABLE y', 42 as unknown as string, 'a'.repeat(49)]) {
    expect(() => new PostgresSessionStore(home.pool, { keyPairs, schema })).toThrow(SessionOptionsError);
    expect(() => new PostgresStore(home.pool, { schema, cleanupInterval: 0 })).toThrow(SessionOptionsError);
  }
  expect(() => new PostgresSessionStore(home.pool, { keyPairs, table: 'auth.sessions' })).toThrow(/plain SQL identifier/);
});
