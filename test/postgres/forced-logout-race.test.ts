/**
 * PostgreSQL only: a regeneration that commits while a forced logout (or
 * "sign out other devices") is running, blocked here on a row lock another
 * transaction holds, is still logged out. The logout's first statement cannot see the regenerated row
 * (its snapshot predates the insert); its second pass does. (Had the logout
 * locked the row first, the regeneration would wait for it and find its
 * session gone: `'expired'`.)
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
  // The logout locks an owner's rows in token order: the one held here comes
  // first, so the logout waits on it before it reaches the regenerated one.
  const [locked, regenerated] = [await create(), await create()].sort((a, b) => (a.id < b.id ? -1 : 1)) as [
    Awaited<ReturnType<typeof create>>,
    Awaited<ReturnType<typeof create>>,
  ];
  const table = `s_${which.toLowerCase()}`;

  const holder = await db.pool.connect();
  const holderPid = (await holder.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid;
  /** The statements of the backends waiting on a lock the holder's transaction holds. */
  const blockedByHolder = async () =>
    (
      await db.pool.query<{ query: string }>('SELECT query FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))', [holderPid])
    ).rows.map((row) => row.query);
  let blockedBefore: string[] = [];
  let blockedAfter: string[] = [];
  let outcome = '';
  let logout: Promise<number> | undefined;
  try {
    await holder.query('BEGIN');
    await holder.query(`SELECT 1 FROM ${table} WHERE token = $1 FOR UPDATE`, [locked.id]);
    logout = logouts[which as keyof typeof logouts](store, keeper.session);
    // Wait, bounded, until the logout is blocked on the held row: a loaded
    // machine may take a while to get its statement going.
    for (const deadline = Date.now() + 10_000; blockedBefore.length === 0 && Date.now() < deadline; ) {
      await new Promise((resolve) => setTimeout(resolve, 25));
      blockedBefore = await blockedByHolder();
    }

    const req = requestWith({ sid: regenerated.cookie });
    const session = await store.get(req, 'sid');
    session.regenerate();
    outcome = await store.save(req, new Headers(), session);
    // Still waiting after the regeneration committed?
    blockedAfter = await blockedByHolder();
  } finally {
    await holder.query('COMMIT');
    holder.release();
  }
  const ended = await logout;

  // What the test names: the logout did wait on the lock, and the regeneration
  // committed during that wait (otherwise the two just ran one after the other).
  expect(blockedBefore).toHaveLength(1);
  expect(blockedAfter).toEqual(blockedBefore);
  // The regeneration committed first (its row was not locked), then the logout ended it as well.
  expect(outcome).toBe('created');
  const live = await db.pool.query<{ token: string }>(`SELECT token FROM ${table} WHERE expiry > now() AND NOT replaced`);
  expect(live.rows.map((row) => row.token)).toEqual(which === 'expireSessions' ? [] : [keeper.id]);
  expect(ended).toBe(which === 'expireSessions' ? 3 : 2);
});
