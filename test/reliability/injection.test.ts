/**
 * Caller-supplied arguments never reach MongoDB as query operators, and
 * hostile value keys round-trip without touching any prototype.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { MongoDBStore, MongoStore } from '../../src/index.ts';
import { openTestDatabase, type TestDatabase } from '../support/database.ts';
import { onlyCookie, randomKey, requestWith } from '../support/http.ts';

let t: TestDatabase;
beforeAll(async () => {
  t = await openTestDatabase();
});
afterAll(async () => {
  await t.close();
});

const hostile: unknown[] = [
  { $ne: null },
  { $gt: '' },
  { $regex: '.*' },
  { $where: 'true' },
  ['alice'],
  [],
  {},
  0,
  42,
  Number.NaN,
  null,
  undefined,
  true,
  '',
  'x'.repeat(1025),
  'x'.repeat(1_000_000),
  Symbol('s'),
  () => 'alice',
  new String('alice'),
];

it('refuses hostile arguments with a TypeError, sending nothing and deleting nothing', async () => {
  const store = new MongoStore(t.db, { keyPairs: [{ authentication: randomKey() }], collection: 'inj_sessions' });
  const tokens = new MongoDBStore(t.db, { collection: 'inj_tokens', cleanupInterval: 0 });
  await store.init();
  await tokens.init();
  for (let i = 0; i < 5; i++) {
    const req = requestWith();
    const session = await store.get(req, 'sid');
    session.values = { user: 'alice', provider: 'password' };
    await store.save(req, new Headers(), session);
    await tokens.commit(`token-${i}`, new Uint8Array([i]), new Date(Date.now() + 60_000));
  }
  const count = async () =>
    (await t.db.collection('inj_sessions').countDocuments()) + (await t.db.collection('inj_tokens').countDocuments());
  const before = await count();

  const calls: [string, (value: never) => Promise<unknown>][] = [
    ['expireSessions(user)', (v) => store.expireSessions(v, 'password')],
    ['expireSessions(provider)', (v) => store.expireSessions('alice', v)],
    ['find', (v) => tokens.find(v)],
    ['commit(token)', (v) => tokens.commit(v, new Uint8Array([1]), new Date(Date.now() + 1000))],
    ['commit(data)', (v) => tokens.commit('token-0', v, new Date(Date.now() + 1000))],
    ['commit(expiry)', (v) => tokens.commit('token-0', new Uint8Array([1]), v)],
    ['delete', (v) => tokens.delete(v)],
  ];
  let tried = 0;
  let refused = 0;
  t.commands.reset();
  for (const [, call] of calls) {
    for (const value of hostile) {
      tried++;
      const outcome = await call(value as never).then(
        () => 'resolved',
        (error: unknown) => (error instanceof TypeError ? 'TypeError' : String(error)),
      );
      if (outcome === 'TypeError') refused++;
      else if (!(typeof value === 'string' && value.length > 0 && value.length <= 1024)) {
        throw new Error(`accepted a hostile argument: ${String(value)}`);
      }
    }
  }
  const commands = t.commands.names();
  const after = await count();
  console.log(`injection: ${tried} hostile calls, ${refused} refused with TypeError, ${commands.length} commands sent, documents ${before} -> ${after}`);
  expect(refused).toBe(tried);
  expect(commands).toEqual([]);
  expect(after).toBe(before);
});

it('round-trips $, dotted, __proto__ and constructor keys and leaves Object.prototype untouched', async () => {
  const store = new MongoStore(t.db, { keyPairs: [{ authentication: randomKey() }], collection: 'inj_values' });
  const values = JSON.parse(
    '{"$set":{"isAdmin":true},"$where":"1","a.b.c":1,"__proto__":{"isAdmin":true},"constructor":{"prototype":{"isAdmin":true}},' +
      '"nested":{"__proto__":{"x":1},"$inc":{"n":1}},"list":[{"$ne":null},{"__proto__":[]}]}',
  ) as Record<string, unknown>;
  const req = requestWith();
  const session = await store.get(req, 'sid');
  session.values = { ...values };
  const headers = new Headers();
  await store.save(req, headers, session);
  const loaded = await store.get(requestWith({ sid: onlyCookie(headers).value }), 'sid');
  expect(loaded.values).toEqual(values);
  expect(Object.getPrototypeOf(loaded.values)).toBe(Object.prototype);
  expect(({} as { isAdmin?: unknown }).isAdmin).toBeUndefined();
  expect(Object.prototype).not.toHaveProperty('isAdmin');
  expect(Object.prototype).not.toHaveProperty('x');
  expect(await t.db.collection('inj_values').countDocuments({ isAdmin: true })).toBe(0);
});
