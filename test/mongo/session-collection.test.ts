/**
 * What only the MongoDB backend has: its indexes, the exact commands that
 * create them, the TTL option, and the document shape.
 */
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { Binary, BSON, type Collection, type Db, MongoClient, ObjectId } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MongoDBStore, MongoStore, SessionOptionsError, SessionStoreError } from '../../src/index.ts';
import { chunksOfBytes, maxDeleteIdsBytes, SessionCollection } from '../../src/mongo/session-collection.ts';
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
  it('a client closed right after a save (a script, a test) ends the cleanup batch quietly: nothing reported', async () => {
    const client = new MongoClient(t.uri);
    const errors: unknown[] = [];
    const store = new MongoStore<{ n: number }>(client.db(t.db.databaseName), { keyPairs, collection: uniqueCollection(), onError: (e) => errors.push(e) });
    const req = requestWith();
    const session = await store.get(req, 'sid');
    session.values.n = 1;
    expect(await store.save(req, new Headers(), session)).toBe('created'); // starts the first batch
    await client.close();
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(errors).toEqual([]);
  });

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

  it('stores each value under a field of its own making: no value key becomes a field name or an operator', async () => {
    const collection = uniqueCollection();
    const store = new MongoStore(t.db, { keyPairs, collection });
    const req = requestWith();
    const session = await store.get(req, 'sid');
    const hostile = JSON.parse('{"$set":{"admin":true},"admin":true,"a.b":1,"__proto__":{"admin":true},"":2,"$where":"1"}') as Record<string, unknown>;
    session.values = hostile;
    session.addFlash({ $gt: '' }, 'a.$b');
    const headers = new Headers();
    await store.save(req, headers, session);
    expect(onlyCookie(headers).value).toMatch(/^Fe26/);
    const docs = t.db.collection(collection);
    expect(await docs.countDocuments({ admin: true })).toBe(0);
    const doc = ((await docs.findOne({})) ?? {}) as { values?: object; flashes?: object };
    expect(Object.keys(doc).sort()).toEqual(['_id', 'createdAt', 'epoch', 'expiresAt', 'flashes', 'handle', 'updatedAt', 'values']);
    const fields = Object.keys(doc.values ?? {});
    expect(fields).toHaveLength(Object.keys(hostile).length);
    for (const field of [...fields, ...Object.keys(doc.flashes ?? {})]) expect(field).toMatch(/^[kf][A-Za-z0-9_-]*$/);
    // A later delta $sets and $unsets those fields only, and reads back exactly.
    const again = await store.get(requestWith({ sid: onlyCookie(headers).value }), 'sid');
    expect(again.values).toEqual(hostile);
    expect(again.flashes('a.$b')).toEqual([{ $gt: '' }]);
  });
});

describe('documents of 0.2 and earlier', () => {
  it('load from their one data field and are converted whole by their next write', async () => {
    const collection = uniqueCollection();
    const store = new MongoStore<{ visits: number }>(t.db, { keyPairs, collection });
    const req = requestWith();
    const session = await store.get(req, 'sid');
    session.values.visits = 1;
    const headers = new Headers();
    await store.save(req, headers, session);
    const docs = t.db.collection<{ _id: string }>(collection);
    const legacyText = '{"visits":1,"$flashes":{"_flash":["welcome back"]}}';
    await docs.updateOne(
      { _id: session.id },
      { $set: { data: new Binary(Buffer.from(legacyText)), version: 3 }, $unset: { values: '', flashes: '', epoch: '', handle: '' } },
    );
    const cookie = onlyCookie(headers).value;
    const loaded = await store.get(requestWith({ sid: cookie }), 'sid');
    expect(loaded).toMatchObject({ isNew: false, values: { visits: 1 }, handle: '' });
    expect(loaded.flashes()).toEqual(['welcome back']);
    loaded.values.visits = 2;
    expect(await store.save(requestWith({ sid: cookie }), new Headers(), loaded)).toBe('updated');
    const doc = await docs.findOne({ _id: session.id });
    expect(doc).not.toHaveProperty('data');
    expect(doc).toHaveProperty('values');
    const next = await store.get(requestWith({ sid: cookie }), 'sid');
    expect(next.values).toEqual({ visits: 2 });
    expect(next.flashes()).toEqual([]);
  });
});

describe('documents of earlier versions, under parallel requests', () => {
  async function legacySession(flashes: string[]) {
    const collection = uniqueCollection();
    const store = new MongoStore<Record<string, unknown>>(t.db, { keyPairs, collection });
    const req = requestWith();
    const session = await store.get(req, 'sid');
    session.values.a = 1;
    const headers = new Headers();
    await store.save(req, headers, session);
    const docs = t.db.collection<{ _id: string }>(collection);
    const legacyText = JSON.stringify({ a: 1, $flashes: { _flash: flashes } });
    await docs.updateOne(
      { _id: session.id },
      { $set: { data: new Binary(Buffer.from(legacyText)), version: 3 }, $unset: { values: '', flashes: '', epoch: '', handle: '' } },
    );
    const cookie = onlyCookie(headers).value;
    const load = () => store.get(requestWith({ sid: cookie }), 'sid');
    return { store, cookie, load };
  }

  it('two requests convert it in parallel: both changes kept, a flash read by one is not shown again', async () => {
    const { store, load } = await legacySession(['once']);
    const [a, b] = await Promise.all([load(), load()]);
    a.values.x = 1;
    expect(a.flashes()).toEqual(['once']);
    b.values.y = 2;
    expect(await store.save(requestWith(), new Headers(), a)).toBe('updated');
    expect(await store.save(requestWith(), new Headers(), b)).toBe('updated');
    const next = await load();
    expect(next.values).toEqual({ a: 1, x: 1, y: 2 });
    expect(next.flashes()).toEqual([]);
  });

  it('regenerated before its first write: the new document is writable like any other', async () => {
    const { store, load } = await legacySession([]);
    const session = await load();
    session.regenerate();
    session.values.b = 2;
    const headers = new Headers();
    expect(await store.save(requestWith(), headers, session)).toBe('created');
    const again = await store.get(requestWith({ sid: onlyCookie(headers).value }), 'sid');
    again.values.c = 3;
    expect(await store.save(requestWith(), new Headers(), again)).toBe('updated');
    again.values = { user: 'u', provider: 'p' };
    expect(await store.save(requestWith(), new Headers(), again)).toBe('updated');
    expect((await store.get(requestWith({ sid: onlyCookie(headers).value }), 'sid')).values).toEqual({ user: 'u', provider: 'p' });
  });
});

describe('deleteExpired, one cleanup batch', () => {
  const options = { hashIds: false, ttlIndex: false, indexOwners: true };
  const past = () => new Date(Date.now() - 1000);

  async function expiredIn(collection: string, count: number): Promise<Collection> {
    const docs = t.db.collection(collection);
    await docs.insertMany(Array.from({ length: count }, (_, i) => ({ _id: `expired-${i}` as never, expiresAt: past() })));
    await docs.insertOne({ _id: 'live' as never, expiresAt: new Date(Date.now() + 3_600_000) });
    return docs;
  }

  it('deletes at most its limit, expired documents only', async () => {
    const collection = uniqueCollection();
    const docs = await expiredIn(collection, 25);
    const backend = new SessionCollection(t.db, collection, options);
    expect(await backend.deleteExpired(10)).toBe(10);
    expect(await docs.countDocuments()).toBe(16);
    expect(await backend.deleteExpired(100)).toBe(15);
    expect((await docs.find().toArray()).map((doc) => doc._id)).toEqual(['live']);
  });

  it('sends no delete once its signal has aborted, even when the find answers later', async () => {
    const collection = uniqueCollection();
    const docs = await expiredIn(collection, 5);
    const backend = new SessionCollection(t.db, collection, options);
    await backend.ensureSchema();
    const stopped = new AbortController();
    const abortOnFind = (event: { commandName: string; command: { find?: unknown } }) => {
      if (event.commandName === 'find' && event.command.find === collection) stopped.abort();
    };
    t.client.on('commandStarted', abortOnFind);
    try {
      const commands = await t.commands.during(async () => {
        await expect(backend.deleteExpired(10, stopped.signal)).rejects.toThrow(/aborted/i);
        await new Promise((resolve) => setTimeout(resolve, 200)); // the find has answered by now
      });
      expect(commands).toEqual(['find']);
    } finally {
      t.client.off('commandStarted', abortOnFind);
    }
    expect(await docs.countDocuments()).toBe(6);
  });

  it('rejects at once, sending nothing, when its signal has already aborted', async () => {
    const collection = uniqueCollection();
    await expiredIn(collection, 2);
    const backend = new SessionCollection(t.db, collection, options);
    await backend.ensureSchema();
    const commands = await t.commands.during(() => expect(backend.deleteExpired(10, AbortSignal.abort())).rejects.toThrow(/aborted/i));
    expect(commands).toEqual([]);
  });

  it('leaves a document made live again between its find and its delete', async () => {
    const collection = uniqueCollection();
    const docs = await expiredIn(collection, 3);
    // The real collection, whose find answers only once expired-1 is live again.
    const slowFind = new Proxy(t.db.collection(collection), {
      get(target, property) {
        if (property === 'find') {
          return (...args: Parameters<Collection['find']>) => {
            const cursor = target.find(...args);
            return {
              toArray: async () => {
                const found = await cursor.toArray();
                await docs.updateOne({ _id: 'expired-1' as never }, { $set: { expiresAt: new Date(Date.now() + 3_600_000) } });
                return found;
              },
            };
          };
        }
        const value: unknown = Reflect.get(target, property, target);
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
    const db = { databaseName: t.db.databaseName, collection: () => slowFind } as unknown as Db;
    expect(await new SessionCollection(db, collection, options).deleteExpired(10)).toBe(2);
    expect((await docs.find().sort({ _id: 1 }).toArray()).map((doc) => doc._id)).toEqual(['expired-1', 'live']);
  });

  it('deletes an expired document of another writer whose _id is not a string', async () => {
    const collection = uniqueCollection();
    const docs = await expiredIn(collection, 2);
    await docs.insertOne({ _id: new ObjectId(), expiresAt: past() });
    await docs.insertOne({ _id: 42 as never, expiresAt: past() });
    expect(await new SessionCollection(t.db, collection, options).deleteExpired(10)).toBe(4);
    expect((await docs.find().toArray()).map((doc) => doc._id)).toEqual(['live']);
  });

  it('splits the delete of a batch whose ids exceed 4 MB into several commands, and deletes them all', async () => {
    const collection = uniqueCollection();
    const docs = t.db.collection(collection);
    const idLength = 1000; // a long token
    const count = Math.ceil(maxDeleteIdsBytes / idLength) + 100;
    for (let i = 0; i < count; i += 1000) {
      await docs.insertMany(
        Array.from({ length: Math.min(1000, count - i) }, (_, j) => ({ _id: String(i + j).padStart(idLength, 'x') as never, expiresAt: past() })),
      );
    }
    const backend = new SessionCollection(t.db, collection, options);
    await backend.ensureSchema();
    let deleted = 0;
    const commands = await t.commands.during(async () => {
      deleted = await backend.deleteExpired(count + 10);
    });
    expect(deleted).toBe(count);
    expect(commands.filter((name) => name === 'delete')).toEqual(['delete', 'delete']);
    expect(await docs.countDocuments()).toBe(0);
  });

  it('cuts the ids of one batch into commands of bounded size, in order', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.string({ minLength: 1, maxLength: 40, unit: 'binary' }), fc.integer())), fc.integer({ min: 1, max: 200 }), (ids, maxBytes) => {
        const chunks = chunksOfBytes(ids, maxBytes);
        expect(chunks.flat()).toEqual(ids);
        for (const chunk of chunks) {
          expect(chunk.length).toBeGreaterThan(0);
          const bytes = chunk.reduce<number>((sum, id) => sum + (typeof id === 'string' ? Buffer.byteLength(id) : BSON.calculateObjectSize({ _id: id })), 0);
          if (chunk.length > 1) expect(bytes).toBeLessThanOrEqual(maxBytes);
        }
      }),
    );
  });
});

