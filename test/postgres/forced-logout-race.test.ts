/**
 * PostgreSQL only: a regeneration that commits while a forced logout (or
 * "sign out other devices") is running, blocked here on a row lock another
 * transaction holds, is still logged out. The logout's first statement cannot see the regenerated row
 * (its snapshot predates the insert); its second pass does.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Session } from '../../src/index.ts';
import { PostgresSessionStore } from '../../src/postgres/index.ts';
import { onlyCookie, randomKey, requestWith } from '../support/http.ts';
import { openTestSchema, type TestSchema } from '../support/postgres.ts';

let db: TestSchema;
beforeAll(async () => {
  db = await openTestSchema('race');
});
afterAll(() => db.close());

const logouts = {
  expireSessions: (store: PostgresSessionStore<Values>) => store.expireSessions('alice', 'password'),
  revokeOtherSessions: async (store: PostgresSessionStore<Values>, keeper: Session<Values>) => store.revokeOtherSessions(keeper),
};
type Values = { user: string; provider: string; n?: number };

it.each(Object.keys(logouts))('a session regenerated while %s waits on a lock is logged out all the same', async (which) => {
  const store = new PostgresSessionStore<Values>(db.pool, { keyPairs: [{ authentication: randomKey() }], table: `s_${which.toLowerCase()}` });
  await store.init();
  const create = async () => {
    const req = requestWith();
    const session = await store.get(req, 'sid');
    session.values = { user: 'alice', provider: 'password' };
    const headers = new Headers();
    await store.save(req, headers, session);
    return { cookie: onlyCookie(headers).value, id: session.id, session };
  };
  const keeper = await create(); // revokeOtherSessions keeps this one
  const locked = await create(); // scanned before the regenerated one by the logout
  const regenerated = await create();
  const table = `s_${which.toLowerCase()}`;

  const holder = await db.pool.connect();
  await holder.query('BEGIN');
  await holder.query(`SELECT 1 FROM ${table} WHERE token = $1 FOR UPDATE`, [locked.id]);
  const logout = logouts[which as keyof typeof logouts](store, keeper.session);
  // Wait until the logout's DELETE is blocked on the lock.
  for (let i = 0; i < 200; i++) {
    const { rows } = await db.pool.query<{ n: string }>(
      `SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'DELETE FROM "${table}"%'`,
    );
    if (Number(rows[0]?.n) > 0) break;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }

  const req = requestWith({ sid: regenerated.cookie });
  const session = await store.get(req, 'sid');
  session.regenerate();
  const outcome = await store.save(req, new Headers(), session);
  await holder.query('COMMIT');
  holder.release();
  const ended = await logout;

  // The regeneration committed first (its row was not locked), then the logout ended it as well.
  expect(outcome).toBe('created');
  const live = await db.pool.query<{ token: string }>(`SELECT token FROM ${table} WHERE expiry > now() AND NOT replaced`);
  expect(live.rows.map((row) => row.token)).toEqual(which === 'expireSessions' ? [] : [keeper.id]);
  expect(ended).toBe(which === 'expireSessions' ? 3 : 2);
});
