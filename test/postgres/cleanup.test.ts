/**
 * PostgreSQL only: one cleanup batch's bound, and cleanup against a transaction that holds an expired row,
 * making it live again (the token store's commit of an expired token; a
 * session's refresh that began just before its expiry). The cleanup must
 * neither wait for the lock (every tick would park one more blocked DELETE
 * on the pool, until the application has no connection left) nor delete the
 * row once it is live.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { PostgresSessionStore, PostgresStore } from '../../src/postgres/index.ts';
import { SessionTable } from '../../src/postgres/session-table.ts';
import { onlyCookie, randomKey, requestWith } from '../support/http.ts';
import { openTestSchema, type TestSchema } from '../support/postgres.ts';

let db: TestSchema;
beforeAll(async () => {
  db = await openTestSchema('cleanup_race');
});
afterAll(() => db.close());

const past = () => new Date(Date.now() - 1000);

it('one batch deletes at most its limit even when the statistics say the table is tiny', async () => {
  // Analyzed with one row, then filled: the plan a semi-join on
  // `IN (SELECT ... LIMIT n FOR UPDATE SKIP LOCKED)` gets here reruns the
  // subquery per row, and each rerun returns the next n.
  const table = 'tokens_stale_stats';
  const tokens = new PostgresStore(db.pool, { table, cleanupInterval: 0 });
  await tokens.commit('dead-0', new Uint8Array([1]), past());
  await db.pool.query(`ANALYZE "${table}"`);
  for (let i = 1; i < 40; i++) await tokens.commit(`dead-${i}`, new Uint8Array([1]), past());
  const backend = new SessionTable(db.pool, table, { hashIds: false, indexOwners: false });
  expect(await backend.deleteExpired(5)).toBe(5);
  expect(Number((await db.pool.query<{ n: string }>(`SELECT count(*) AS n FROM "${table}"`)).rows[0]?.n)).toBe(35);
});

it('one batch deletes at most its limit, expired rows only', async () => {
  const table = 'tokens_batch';
  const tokens = new PostgresStore(db.pool, { table, cleanupInterval: 0 });
  for (let i = 0; i < 25; i++) await tokens.commit(`dead-${i}`, new Uint8Array([1]), past());
  await tokens.commit('live', new Uint8Array([1]), new Date(Date.now() + 3_600_000));
  const backend = new SessionTable(db.pool, table, { hashIds: false, indexOwners: false });
  expect(await backend.deleteExpired(10)).toBe(10);
  expect(Number((await db.pool.query<{ n: string }>(`SELECT count(*) AS n FROM "${table}"`)).rows[0]?.n)).toBe(16);
  expect(await backend.deleteExpired(100)).toBe(15);
  expect((await db.pool.query<{ token: string }>(`SELECT token FROM "${table}"`)).rows).toEqual([{ token: 'live' }]);
});

/**
 * Holds the row `token` of `table` locked, made live again but not yet
 * committed, while `cleanUp` runs: it must delete `others` meanwhile,
 * without a statement waiting on the lock. Commits, then `stop`s the cleanup.
 */
async function reviveWhileCleaning(table: string, token: string, others: string[], cleanUp: () => void, stop: () => Promise<void>): Promise<void> {
  const holder = await db.pool.connect();
  try {
    await holder.query('BEGIN');
    await holder.query(`UPDATE "${table}" SET expiry = now() + interval '1 hour' WHERE token = $1`, [token]);
    cleanUp();
    const left = async () => (await db.pool.query(`SELECT 1 FROM "${table}" WHERE token = ANY($1)`, [others])).rowCount;
    await expect.poll(left, { timeout: 10_000 }).toBe(0);
    // Several ticks later, still nothing waits on the held row.
    await new Promise((resolve) => setTimeout(resolve, 100));
    const { rows } = await db.pool.query<{ n: string }>(
      `SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE $1`,
      [`DELETE FROM "${table}"%`],
    );
    expect(Number(rows[0]?.n)).toBe(0);
    await holder.query('COMMIT');
  } finally {
    holder.release();
  }
  await stop(); // after the batch in progress
}

it('a token being committed anew is skipped, not waited for, and stays', async () => {
  const table = 'tokens_revived';
  const writer = new PostgresStore(db.pool, { table, cleanupInterval: 0 });
  await writer.init();
  await writer.commit('revived', new Uint8Array([7]), past());
  const dead = Array.from({ length: 25 }, (_, i) => `dead-${i}`);
  for (const token of dead) await writer.commit(token, new Uint8Array([1]), past());

  const errors: unknown[] = [];
  let cleaner: PostgresStore | undefined;
  await reviveWhileCleaning(
    table,
    'revived',
    dead,
    () => void (cleaner = new PostgresStore(db.pool, { table, cleanupInterval: 10, cleanupBatchSize: 10, onError: (error) => errors.push(error) })),
    async () => cleaner?.stopCleanup(),
  );

  expect(errors).toEqual([]);
  expect(await writer.find('revived')).toEqual(new Uint8Array([7]));
});

it('a session being refreshed at its expiry is skipped, not waited for, and stays', async () => {
  const table = 'sessions_revived';
  const store = new PostgresSessionStore<{ n: number }>(db.pool, { keyPairs: [{ authentication: randomKey() }], table, cleanupBatchSize: 10 });
  await store.init();
  const save = async (n: number) => {
    const req = requestWith();
    const session = await store.get(req, 'sid');
    session.values.n = n;
    const headers = new Headers();
    await store.save(req, headers, session);
    return { id: session.id, cookie: onlyCookie(headers).value };
  };
  const refreshed = await save(1);
  const expired = await Promise.all(Array.from({ length: 25 }, (_, i) => save(i + 2)));
  // Every expiry passes; the refresh of one began just before.
  await db.pool.query(`UPDATE "${table}" SET expiry = now() - interval '1 second'`);

  const stopping = new AbortController();
  let loop: Promise<void> | undefined;
  await reviveWhileCleaning(
    table,
    refreshed.id,
    expired.map((session) => session.id),
    () => void (loop = store.startAutoClean(stopping.signal, 10)),
    async () => {
      stopping.abort();
      await loop;
    },
  );

  const again = await store.get(requestWith({ sid: refreshed.cookie }), 'sid');
  expect(again.isNew).toBe(false);
  expect(again.values.n).toBe(1);
});
