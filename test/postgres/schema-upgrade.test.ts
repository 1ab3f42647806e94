/**
 * PostgreSQL only: a table created by mongostore 0.1.0 is upgraded in place
 * by init() (three added columns), and its rows keep working.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { PostgresSessionStore } from '../../src/postgres/index.ts';
import { onlyCookie, randomKey, requestWith } from '../support/http.ts';
import { openTestSchema, type TestSchema } from '../support/postgres.ts';

let db: TestSchema;
beforeAll(async () => {
  db = await openTestSchema('upgrade');
});
afterAll(() => db.close());

it('adds the lifetime, tombstone, device and entry columns to a 0.1.0 table; old rows load with the store defaults and convert on their next write', async () => {
  // The 0.1.0 schema, with one session in it.
  await db.pool.query(`CREATE TABLE sessions (
    token TEXT PRIMARY KEY, data BYTEA NOT NULL, expiry TIMESTAMPTZ NOT NULL,
    "user" TEXT, provider TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(), updated_at TIMESTAMPTZ NOT NULL DEFAULT now())`);
  const keyPairs = [{ authentication: randomKey() }];
  const store = new PostgresSessionStore<{ visits: number }>(db.pool, { keyPairs, table: 'sessions', options: { maxAge: 7200 } });
  await store.init();
  const columns = await db.pool.query<{ column_name: string }>(
    `SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'sessions' ORDER BY ordinal_position`,
    [db.name],
  );
  expect(columns.rows.map((row) => row.column_name)).toEqual([
    'token', 'data', 'expiry', 'user', 'provider', 'created_at', 'updated_at', 'max_age', 'persistent', 'replaced', 'handle', 'user_agent', 'device',
    'entries', 'flashes', 'epoch', 'replaced_by', 'signed_in_at',
  ]);

  // A row as 0.1.0 and 0.2 wrote it: values and flashes in one text, no lifetime, no handle, no tenure.
  const req = requestWith();
  const session = await store.get(req, 'sid');
  session.values.visits = 1;
  const headers = new Headers();
  await store.save(req, headers, session);
  await db.pool.query(
    `UPDATE sessions SET max_age = NULL, persistent = NULL, handle = NULL, epoch = 0, entries = NULL, flashes = NULL,
       data = convert_to('{"visits":1,"$flashes":{"_flash":["welcome back"]}}', 'UTF8')`,
  );
  const cookie = onlyCookie(headers).value;
  const loaded = await store.get(requestWith({ sid: cookie }), 'sid');
  expect(loaded).toMatchObject({ isNew: false, values: { visits: 1 }, handle: '' });
  expect(loaded.options).toMatchObject({ maxAge: 7200, persistent: true });
  // Its next write converts it whole and gives it a handle; a parallel delta then works on it.
  loaded.values.visits = 2;
  expect(loaded.flashes()).toEqual(['welcome back']);
  expect(await store.save(requestWith({ sid: cookie }), new Headers(), loaded)).toBe('updated');
  expect(loaded.handle).toMatch(/^[A-Za-z0-9_-]{22}$/);
  const row = await db.pool.query<{ data: Buffer; entries: object | null }>('SELECT data, entries FROM sessions');
  expect(row.rows[0]?.data.length).toBe(0);
  expect(row.rows[0]?.entries).not.toBeNull();
  const next = await store.get(requestWith({ sid: cookie }), 'sid');
  expect(next.values).toEqual({ visits: 2 });
  expect(next.flashes()).toEqual([]);
  await expect(store.init()).resolves.toBeUndefined(); // idempotent

  // Two requests converting one such row in parallel: both changes kept, a flash read by one not shown again.
  await db.pool.query(
    `UPDATE sessions SET epoch = 0, entries = NULL, flashes = NULL,
       data = convert_to('{"visits":5,"$flashes":{"_flash":["once"]}}', 'UTF8')`,
  );
  const [a, b] = await Promise.all([0, 1].map(() => store.get(requestWith({ sid: cookie }), 'sid')));
  const [first, second] = [a, b] as [typeof loaded, typeof loaded];
  first.values.visits = 6;
  expect(first.flashes()).toEqual(['once']);
  (second.values as Record<string, unknown>).theme = 'dark';
  expect(await store.save(requestWith(), new Headers(), first)).toBe('updated');
  expect(await store.save(requestWith(), new Headers(), second)).toBe('updated');
  const both = await store.get(requestWith({ sid: cookie }), 'sid');
  expect(both.values).toEqual({ visits: 6, theme: 'dark' });
  expect(both.flashes()).toEqual([]);
});

it('a store starting against a complete schema runs no DDL (no table lock), only a catalog read', async () => {
  const commands: string[] = [];
  const first = new PostgresSessionStore(db.pool, { keyPairs: [{ authentication: randomKey() }], table: 'complete' });
  await first.init();
  const query = db.pool.query.bind(db.pool) as (...args: unknown[]) => unknown;
  db.pool.query = ((...args: unknown[]) => {
    commands.push(String(args[0]).trimStart().split(/\s/, 1)[0] ?? '');
    return query(...args);
  }) as typeof db.pool.query;
  try {
    await new PostgresSessionStore(db.pool, { keyPairs: [{ authentication: randomKey() }], table: 'complete' }).init();
  } finally {
    db.pool.query = query as typeof db.pool.query;
  }
  expect(commands).toEqual(['SELECT']);
});
