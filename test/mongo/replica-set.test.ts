/**
 * What a replica set needs of the store, checked on one server (none can
 * run here): its reads go to the primary whatever the client's read
 * preference, and every delete that ends a session is sent with
 * `w: 'majority'` whatever the client's write concern. Both driver majors
 * (CI runs the suite with MONGODB_DRIVER=6 too).
 */
import { randomBytes } from 'node:crypto';
import { Collection, type CommandStartedEvent, MongoClient } from 'mongodb';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { MongoDBStore, MongoStore } from '../../src/index.ts';
import { onlyCookie, randomKey, requestWith } from '../support/http.ts';

let client: MongoClient;
const sent: CommandStartedEvent[] = [];
beforeAll(async () => {
  // An app's client as analytics-sharing apps configure it: secondaries preferred, w: 1.
  client = new MongoClient(inject('mongoUri'), {
    readPreference: 'secondaryPreferred',
    readConcernLevel: 'majority',
    writeConcern: { w: 1 },
    monitorCommands: true,
  });
  client.on('commandStarted', (event) => sent.push(event));
  await client.connect();
});
afterAll(async () => {
  await client.db(database).dropDatabase().catch(() => {});
  await client.close();
});
afterEach(() => {
  vi.restoreAllMocks();
});

const database = `rs_${randomBytes(5).toString('hex')}`;
const keyPairs = [{ authentication: randomKey() }];
type Values = { user?: string; provider?: string; n?: number };

/** Each read the store asks the driver for, with the read preference the driver resolves for it. */
function recordReads(): { method: string; mode: string; concern: string }[] {
  const reads: { method: string; mode: string; concern: string }[] = [];
  for (const method of ['findOne', 'find', 'countDocuments', 'aggregate'] as const) {
    const original = Reflect.get(Collection.prototype, method) as (this: Collection, ...args: unknown[]) => unknown;
    vi.spyOn(Collection.prototype, method).mockImplementation(function (this: Collection, ...args: unknown[]) {
      // What the driver resolves: the call's own option, else the collection's.
      const options = args[1] as { readPreference?: { mode?: string } | string } | undefined;
      const own = typeof options?.readPreference === 'string' ? options.readPreference : options?.readPreference?.mode;
      reads.push({ method, mode: own ?? this.readPreference?.mode ?? 'unset', concern: this.readConcern?.level ?? 'unset' });
      return original.apply(this, args);
    } as never);
  }
  return reads;
}

/** The write concern each write command of `action` carried on the wire, by command name. */
async function writeConcerns(action: () => Promise<unknown>): Promise<{ command: string; w: unknown }[]> {
  sent.length = 0;
  await action();
  return sent
    .filter((event) => ['insert', 'update', 'delete', 'findAndModify'].includes(event.commandName))
    .map((event) => {
      const concern = event.command.writeConcern as { w?: unknown; wtimeout?: unknown } | undefined;
      return { command: event.commandName, w: concern?.w, ...(concern?.wtimeout === undefined ? {} : { wtimeout: concern.wtimeout }) };
    });
}

async function signIn(store: MongoStore<Values>, user: string) {
  const req = requestWith();
  const session = await store.get(req, 'sid');
  session.values = { user, provider: 'password', n: 1 };
  const headers = new Headers();
  expect(await store.save(req, headers, session)).toBe('created');
  return { cookie: onlyCookie(headers).value, session };
}

describe('on a client that prefers secondaries and writes with w: 1', () => {
  it('every read of the store is told to go to the primary', async () => {
    const store = new MongoStore<Values>(client.db(database), { keyPairs, collection: 'reads', cleanupInterval: 0 });
    await store.init();
    const { cookie } = await signIn(store, 'alice');
    const reads = recordReads();
    const loaded = await store.get(requestWith({ sid: cookie }), 'sid'); // find by id
    expect(loaded.values.user).toBe('alice');
    await store.listSessions('alice', 'password'); // owner query
    await store.getActiveSessionsCount(); // count
    const stop = new AbortController();
    const loop = store.startAutoClean(stop.signal, 20); // cleanup's find of expired ids
    await vi.waitFor(() => expect(reads.some((read) => read.method === 'find' && reads.length > 3)).toBe(true));
    stop.abort();
    await loop;
    expect(reads.length).toBeGreaterThanOrEqual(4);
    expect(reads.map((read) => read.mode)).toEqual(reads.map(() => 'primary'));
    // Local read concern: with the client's majority, a session just written with w: 1 would not be visible yet.
    expect(reads.map((read) => read.concern)).toEqual(reads.map(() => 'local'));
    // The client's own default is untouched for the app.
    expect(client.db(database).collection('other').readPreference?.mode).toBe('secondaryPreferred');
  });

  it('every delete that ends a session is sent with w: majority (within 10 s); other writes keep the client\'s w: 1', async () => {
    const store = new MongoStore<Values>(client.db(database), { keyPairs, collection: 'writes', cleanupInterval: 0 });
    await store.init();
    const alice = await writeConcerns(() => signIn(store, 'alice'));
    expect(alice).toEqual([{ command: 'insert', w: 1 }]);

    // destroy(): the chain's findAndModify deletes.
    const { cookie } = await signIn(store, 'alice');
    const destroyed = await writeConcerns(async () => {
      const req = requestWith({ sid: cookie });
      const session = await store.get(req, 'sid');
      session.destroy();
      expect(await store.save(req, new Headers(), session)).toBe('deleted');
    });
    expect(destroyed.length).toBeGreaterThan(0);
    expect(destroyed).toEqual(destroyed.map(() => ({ command: 'findAndModify', w: 'majority', wtimeout: 10_000 })));

    // maxAge <= 0 ends it the same way.
    const { cookie: other } = await signIn(store, 'alice');
    const zeroed = await writeConcerns(async () => {
      const req = requestWith({ sid: other });
      const session = await store.get(req, 'sid');
      session.options.maxAge = 0;
      await store.save(req, new Headers(), session);
    });
    expect(zeroed).toEqual(zeroed.map(() => ({ command: 'findAndModify', w: 'majority', wtimeout: 10_000 })));

    // Device revocation, "sign out other devices", forced logout.
    const phone = await signIn(store, 'bob');
    const laptop = await signIn(store, 'bob');
    await signIn(store, 'bob');
    expect(await writeConcerns(() => store.revokeSession('bob', 'password', phone.session.handle))).toEqual([{ command: 'delete', w: 'majority', wtimeout: 10_000 }]);
    const others = await writeConcerns(() => store.revokeOtherSessions(laptop.session));
    expect(others).toEqual(others.map(() => ({ command: 'delete', w: 'majority', wtimeout: 10_000 })));
    const forced = await writeConcerns(() => store.expireSessions('alice', 'password'));
    expect(forced.length).toBeGreaterThanOrEqual(2);
    expect(forced).toEqual(forced.map(() => ({ command: 'delete', w: 'majority', wtimeout: 10_000 })));

    // An ordinary change: the client's write concern.
    const { cookie: carol } = await signIn(store, 'carol');
    const changed = await writeConcerns(async () => {
      const req = requestWith({ sid: carol });
      const session = await store.get(req, 'sid');
      session.values.n = 2;
      await store.save(req, new Headers(), session);
    });
    expect(changed).toEqual([{ command: 'update', w: 1 }]);
  });

  it('the token store\'s delete (a sign-out) is sent with w: majority too', async () => {
    const tokens = new MongoDBStore(client.db(database), { collection: 'tokens', cleanupInterval: 0 });
    await tokens.commit('token', new Uint8Array([1]), new Date(Date.now() + 60_000));
    expect(await writeConcerns(() => tokens.delete('token'))).toEqual([{ command: 'delete', w: 'majority', wtimeout: 10_000 }]);
    await tokens.stopCleanup();
  });
});
