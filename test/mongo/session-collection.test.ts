/**
 * What only the MongoDB backend has: its indexes, the exact commands that
 * create them, the TTL option, and the document shape.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MongoDBStore, MongoStore, SessionOptionsError, SessionStoreError } from '../../src/index.ts';
import { isFerretDB, openTestDatabase, type TestDatabase } from '../support/database.ts';
import { onlyCookie, randomKey, requestWith } from '../support/http.ts';

let t: TestDatabase;
beforeAll(async () => {
  t = await openTestDatabase();
});
afterAll(async () => {
  await t.close();
});

const keyPairs = [{ authentication: randomKey() }];
const uniqueCollection = () => `sessions_${randomBytes(5).toString('hex')}`;

describe('the MongoDB backend', () => {
  it('refuses a collection name MongoDB would refuse when the store is built, before any command', async () => {
    for (const collection of ['', 'a$b', 'a\0b', 'system.sessions', '.x', 'x'.repeat(121), 42]) {
      const commands = await t.commands.during(() => {
        expect(() => new MongoStore(t.db, { keyPairs, collection: collection as string })).toThrow(SessionOptionsError);
        expect(() => new MongoDBStore(t.db, { collection: collection as string })).toThrow(SessionOptionsError);
        return Promise.resolve();
      });
      expect(commands).toEqual([]);
    }
  });

  it('init creates the expiry and owner indexes, and tolerates existing ones', async () => {
    const collection = uniqueCollection();
    await new MongoStore(t.db, { keyPairs, collection }).init();
    const again = new MongoStore(t.db, { keyPairs, collection });
    await again.init();
    await again.init();
    const indexes = await t.db.collection(collection).listIndexes().toArray();
    expect(indexes.map((index: { key: unknown }) => index.key)).toEqual(
      expect.arrayContaining([{ expiresAt: 1 }, { user: 1, provider: 1 }]),
    );
  });

  it('creates the indexes lazily, one createIndexes each, before the first command', async () => {
    const store = new MongoStore(t.db, { keyPairs, collection: uniqueCollection() });
    const commands = await t.commands.during(() => store.getActiveSessionsCount());
    expect(commands).toEqual(['createIndexes', 'createIndexes', 'aggregate']);
    expect(await t.commands.during(() => store.getActiveSessionsCount())).toEqual(['aggregate']);
  });

  it('ttlIndex: a TTL expiry index on MongoDB; FerretDB 1.x refuses it with a clear error', async () => {
    const store = new MongoStore(t.db, { keyPairs, collection: uniqueCollection(), ttlIndex: true });
    if (await isFerretDB(t.db)) {
      await expect(store.init()).rejects.toBeInstanceOf(SessionStoreError);
      await expect(store.init()).rejects.toThrow(/expiresAt_1/);
    } else {
      await store.init();
    }
  });

  it('stores values as one binary field: no value key becomes a field name', async () => {
    const collection = uniqueCollection();
    const store = new MongoStore(t.db, { keyPairs, collection });
    const req = requestWith();
    const session = await store.get(req, 'sid');
    session.values = JSON.parse('{"$set":{"admin":true},"admin":true,"a.b":1,"__proto__":{"admin":true}}') as Record<string, unknown>;
    const headers = new Headers();
    await store.save(req, headers, session);
    expect(onlyCookie(headers).value).toMatch(/^Fe26/);
    const docs = t.db.collection(collection);
    expect(await docs.countDocuments({ admin: true })).toBe(0);
    expect(Object.keys((await docs.findOne({})) ?? {}).sort()).toEqual([
      '_id',
      'createdAt',
      'data',
      'expiresAt',
      'handle',
      'updatedAt',
      'version',
    ]);
  });
});
