/**
 * PostgreSQL only: a cleanup batch that picked an expired record, then
 * waited on its row lock while another transaction made the record live
 * again (the token store's commit of an expired token; a session's refresh
 * that began just before its expiry), must not delete it. Under READ
 * COMMITTED the DELETE rechecks only its own conditions against the new row
 * version, not the subquery that chose the ids.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { PostgresSessionStore, PostgresStore } from '../../src/postgres/index.ts';
import { onlyCookie, randomKey, requestWith } from '../support/http.ts';
import { openTestSchema, type TestSchema } from '../support/postgres.ts';

let db: TestSchema;
beforeAll(async () => {
  db = await openTestSchema('cleanup_race');
});
afterAll(() => db.close());

/** Holds the row `token` of `table` locked, made live again but not yet committed, while `cleanup` runs into the lock. */
async function reviveDuringCleanup(table: string, token: string, cleanup: () => Promise<void>): Promise<void> {
  const holder = await db.pool.connect();
  try {
    await holder.query('BEGIN');
    await holder.query(`UPDATE "${table}" SET expiry = now() + interval '1 hour' WHERE token = $1`, [token]);
    const running = cleanup();
    // Wait until the cleanup's DELETE is blocked on the row lock.
    let blocked = false;
    for (let i = 0; i < 200 && !blocked; i++) {
      const { rows } = await db.pool.query<{ n: string }>(
        `SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE $1`,
        [`DELETE FROM "${table}"%`],
      );
      blocked = Number(rows[0]?.n) > 0;
      if (!blocked) await new Promise((resolve) => setTimeout(resolve, 25));
    }
    expect(blocked).toBe(true);
    await holder.query('COMMIT');
    await running;
  } finally {
    holder.release();
  }
}

it('a token committed again while a cleanup batch waits on its lock stays', async () => {
  const table = 'tokens_revived';
  const writer = new PostgresStore(db.pool, { table, cleanupInterval: 0 });
  await writer.init();
  await writer.commit('revived', new Uint8Array([7]), new Date(Date.now() - 1000));
  await writer.commit('dead', new Uint8Array([1]), new Date(Date.now() - 1000));

  const errors: unknown[] = [];
  let cleaner: PostgresStore | undefined;
  await reviveDuringCleanup(table, 'revived', async () => {
    cleaner = new PostgresStore(db.pool, { table, cleanupInterval: 10, onError: (error) => errors.push(error) });
    await expect.poll(async () => (await db.pool.query(`SELECT 1 FROM "${table}" WHERE token = 'dead'`)).rowCount, { timeout: 10_000 }).toBe(0);
  });
  await cleaner?.stopCleanup();

  expect(errors).toEqual([]);
  expect(await writer.find('revived')).toEqual(new Uint8Array([7]));
  expect(await writer.find('dead')).toBeUndefined();
});

it('a session refreshed while a cleanup batch waits on its lock stays', async () => {
  const table = 'sessions_revived';
  const store = new PostgresSessionStore<{ n: number }>(db.pool, { keyPairs: [{ authentication: randomKey() }], table, cleanupBatchSize: 10 });
  await store.init();
  const req = requestWith();
  const session = await store.get(req, 'sid');
  session.values.n = 1;
  const headers = new Headers();
  await store.save(req, headers, session);
  const cookie = onlyCookie(headers).value;
  // Its expiry passes as a refresh that began just before it takes the row lock.
  await db.pool.query(`UPDATE "${table}" SET expiry = now() - interval '1 second' WHERE token = $1`, [session.id]);

  const stop = new AbortController();
  let loop: Promise<void> | undefined;
  await reviveDuringCleanup(table, session.id, () => {
    loop = store.startAutoClean(stop.signal, 10);
    return Promise.resolve();
  });
  stop.abort();
  await loop; // after the tick in progress: the DELETE that waited has run

  const again = await store.get(requestWith({ sid: cookie }), 'sid');
  expect(again.isNew).toBe(false);
  expect(again.values.n).toBe(1);
});
