/**
 * Concurrent saves on MongoDB: distinct sessions never collide or lose
 * updates; one session written concurrently merges per key (same key: the
 * last writer's value). The disjoint-keys numbers on both backends are in
 * the contract suite (test/session-store.test.ts).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { MongoStore } from '../../src/index.ts';
import { openTestDatabase, type TestDatabase } from '../support/database.ts';
import { onlyCookie, randomKey, requestWith } from '../support/http.ts';

let t: TestDatabase;
let store: MongoStore<{ n: number; writer: number }>;
beforeAll(async () => {
  t = await openTestDatabase();
  // FerretDB's SQLite backend serializes writes: hundreds at once can queue
  // past the store's default 10 s bound, which would test FerretDB, not us.
  store = new MongoStore(t.db, { keyPairs: [{ authentication: randomKey() }], timeoutMs: 0 });
  await store.init();
});
afterAll(async () => {
  await t.close();
});

async function create(n: number): Promise<string> {
  const req = requestWith();
  const session = await store.get(req, 'sid');
  session.values.n = n;
  const headers = new Headers();
  await store.save(req, headers, session);
  return onlyCookie(headers).value;
}

async function increment(cookie: string, writer = 0): Promise<void> {
  const req = requestWith({ sid: cookie });
  const session = await store.get(req, 'sid');
  session.values.n = (session.values.n ?? 0) + 1;
  session.values.writer = writer;
  await store.save(req, new Headers(), session);
}

it('saves 1,000 concurrent new sessions as 1,000 documents with distinct ids', async () => {
  const before = await t.db.collection('sessions').countDocuments();
  const cookies = await Promise.all(Array.from({ length: 1000 }, (_, i) => create(i)));
  const sessions = await Promise.all(cookies.map((cookie) => store.get(requestWith({ sid: cookie }), 'sid')));
  const ids = new Set(sessions.map((session) => session.id));
  console.log(`concurrency: 1000 concurrent creations -> ${ids.size} distinct ids`);
  expect(ids.size).toBe(1000);
  expect(sessions.map((session) => session.values.n)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
  expect((await t.db.collection('sessions').countDocuments()) - before).toBe(1000);
}, 180_000);

it('loses no update across 200 concurrent read-modify-writes on 200 sessions', async () => {
  const cookies = await Promise.all(Array.from({ length: 200 }, () => create(1)));
  // 25 in flight at a time: FerretDB's SQLite backend serializes writes and, with
  // 200 at once on a loaded machine, can stall for minutes; MongoDB would not.
  const queue = [...cookies];
  await Promise.all(
    Array.from({ length: 25 }, async () => {
      for (let cookie = queue.shift(); cookie !== undefined; cookie = queue.shift()) await increment(cookie);
    }),
  );
  const values = await Promise.all(cookies.map(async (cookie) => (await store.get(requestWith({ sid: cookie }), 'sid')).values.n));
  expect(values).toEqual(Array.from({ length: 200 }, () => 2));
}, 180_000);

it("concurrent writes of the same key of one session: one writer's value wins, none is lost half-way", async () => {
  const cookie = await create(1);
  // Ten requests read n = 1 at the same time and each saves n = 2 with its own writer.
  const requests = Array.from({ length: 10 }, () => requestWith({ sid: cookie }));
  const sessions = await Promise.all(requests.map((req) => store.get(req, 'sid')));
  sessions.forEach((session, writer) => {
    session.values.n = (session.values.n ?? 0) + 1;
    session.values.writer = writer;
  });
  const order: number[] = [];
  await Promise.all(
    sessions.map(async (session, writer) => {
      await store.save(requests[writer] as Request, new Headers(), session);
      order.push(writer);
    }),
  );
  const final = (await store.get(requestWith({ sid: cookie }), 'sid')).values;
  // Each request changed n and writer, so on a merge its own values win: the last writer's pair stands.
  console.log(`concurrency: 10 concurrent increments of one session from 1 -> ${final.n} (last writer ${final.writer})`);
  expect(final.n).toBe(2);
  expect(order).toContain(final.writer);
});
