/**
 * Key rotation while requests run: [k1] -> [k2, k1] -> [k2], each a new
 * store instance over the same collection.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { MongoStore } from '../../src/index.ts';
import { openTestDatabase, type TestDatabase } from '../support/database.ts';
import { randomKey, requestWith } from '../support/http.ts';

let t: TestDatabase;
beforeAll(async () => {
  t = await openTestDatabase();
});
afterAll(async () => {
  await t.close();
});

it('fails no request, keeps re-sealed cookies and refreshes the rest as fresh sessions', async () => {
  const k1 = { authentication: randomKey() };
  const k2 = { authentication: randomKey() };
  const stores = [[k1], [k2, k1], [k2]].map((keyPairs) => new MongoStore<{ n: number }>(t.db, { keyPairs, collection: 'rotation' }));
  let current = stores[0] as MongoStore<{ n: number }>;
  await current.init();

  // 200 clients, each holding the cookie the server last sent it.
  const jar: string[] = [];
  let failures = 0;
  let served = 0;
  const visit = async (client: number) => {
    const store = current;
    try {
      const req = requestWith(jar[client] ? { sid: jar[client] } : {});
      const session = await store.get(req, 'sid');
      session.values.n = (session.values.n ?? 0) + 1;
      const headers = new Headers();
      await store.save(req, headers, session);
      const sent = headers.getSetCookie()[0];
      if (sent) jar[client] = sent.slice(4, sent.indexOf(';'));
      served++;
      return session;
    } catch (error) {
      failures++;
      throw error;
    }
  };
  const visitAll = (clients: number[]) => Promise.all(clients.map(visit));
  const everyone = Array.from({ length: 200 }, (_, i) => i);
  const returning = everyone.slice(0, 100);
  const away = everyone.slice(100);

  await visitAll(everyone); // all sessions created under [k1]
  // Requests keep running while the key list moves to [k2, k1].
  const during = visitAll(returning);
  current = stores[1] as MongoStore<{ n: number }>;
  await during;
  await visitAll(returning);
  await visitAll(returning); // re-sealed under k2 by now
  current = stores[2] as MongoStore<{ n: number }>;
  const last = await visitAll(everyone);

  const kept = last.filter((session, i) => i < 100 && !session.isNew).length;
  const refreshed = last.filter((session, i) => i >= 100 && session.isNew && session.error === 'unknown-key').length;
  console.log(`rotation: ${served} requests, ${failures} failed; after [k2]: ${kept}/100 re-sealed kept, ${refreshed}/100 others fresh`);
  expect(failures).toBe(0);
  expect(kept).toBe(returning.length);
  expect(refreshed).toBe(away.length);
  expect(last.slice(0, 100).every((session) => (session.values.n ?? 0) >= 4)).toBe(true);
});
