/**
 * The session limit (`maxSessionsPerUser`, `onSessionLimit`), on both
 * backends: evictions of the least recently used sessions, refusals that
 * write nothing, the commands each save costs, and parallel sign-ins that
 * leave exactly the limit.
 */
import { Collection } from 'mongodb';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { MemoryBackend } from '../bench/memory-backend.ts';
import type { LimitResult, SessionLimit } from '../src/backend.ts';
import { MongoStore, type Session, type SessionStoreConfig, SessionOptionsError, SessionStore, SessionStoreError } from '../src/index.ts';
import { PostgresSessionStore } from '../src/postgres/index.ts';
import { type Backend, backends } from './support/backends.ts';
import { openTestDatabase, type TestDatabase } from './support/database.ts';
import { onlyCookie, randomKey, requestWith, sentCookies } from './support/http.ts';
import { openTestSchema, type TestSchema } from './support/postgres.ts';

type Values = { user?: string; provider?: string; cart?: string[]; visits?: number };
const keyPairs = [{ authentication: randomKey(), encryption: randomKey() }];
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('the limit options', () => {
  const store = (config: Partial<SessionStoreConfig>) => backends[0]?.unreachable().sessions({ keyPairs, ...config });

  it.each([0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53, '3', 2n ** 60n, null, {}, [3]])(
    'refuses maxSessionsPerUser %s with a SessionOptionsError',
    (max) => {
      expect(() => store({ maxSessionsPerUser: max as number })).toThrow(SessionOptionsError);
      expect(() => store({ maxSessionsPerUser: max as number })).toThrow(/^maxSessionsPerUser must be a whole number from 1 to 9007199254740991, not (-?[\d.]+|NaN|Infinity|"3"|\d+n|null|an object|an array)$/);
    },
  );

  it('refuses an unknown onSessionLimit, and onSessionLimit without maxSessionsPerUser', () => {
    expect(() => store({ maxSessionsPerUser: 2, onSessionLimit: 'drop-newest' as 'refuse' })).toThrow(/onSessionLimit must be 'evict-oldest' or 'refuse'/);
    expect(() => store({ onSessionLimit: 'refuse' })).toThrow(/onSessionLimit needs maxSessionsPerUser/);
    expect(() => store({ maxSessionsPerUser: 1, onSessionLimit: 'refuse' })).not.toThrow();
    expect(() => store({ maxSessionsPerUser: 1 })).not.toThrow();
  });
});

describe('a check that fails after the sign-in\'s write', () => {
  /** A backend whose limit check fails as often as `failures` says. */
  class FailingOnce extends MemoryBackend {
    failures = 0;
    override limitOwnedBy(user: string, provider: string, id: string, limit: SessionLimit): Promise<LimitResult> {
      if (this.failures-- > 0) return Promise.reject(new SessionStoreError('limitOwnedBy failed: connection reset', { cause: undefined }));
      return super.limitOwnedBy(user, provider, id, limit);
    }
  }

  it('goes to onError; the sign-in stands (its write is done) and the next sign-in trims again', async () => {
    const backend = new FailingOnce();
    const reported: unknown[] = [];
    const store = new SessionStore(backend, { keyPairs, maxSessionsPerUser: 1, onError: (error) => void reported.push(error), cleanupInterval: 0 });
    const signIn = async () => {
      const req = requestWith();
      const session = await store.get(req, 'sid');
      session.values = { user: 'alice', provider: 'password' };
      const headers = new Headers();
      return { outcome: await store.save(req, headers, session), cookie: sentCookies(headers)[0]?.value };
    };
    await signIn();
    backend.failures = 1;
    const failed = await signIn();
    expect(failed.outcome).toBe('created');
    expect(failed.cookie).toMatch(/^Fe26/);
    expect(reported).toHaveLength(1);
    expect(String(reported[0])).toContain('limitOwnedBy failed');
    expect(await store.listSessions('alice', 'password')).toHaveLength(2);
    const next = await signIn();
    expect(next.outcome).toBe('created');
    expect(await store.listSessions('alice', 'password')).toHaveLength(1);
    expect(reported).toHaveLength(1);
  });
});

describe('a count that fails before a refusing sign-in writes', () => {
  /** A backend whose count of an owner's sessions fails (the database is down). */
  class CountFails extends MemoryBackend {
    down = true;
    override countOwnedBy(user: string, provider: string): Promise<number> {
      if (this.down) return Promise.reject(new SessionStoreError('countOwnedBy failed: connection refused', { cause: undefined }));
      return super.countOwnedBy(user, provider);
    }
  }

  it('rejects the save with SessionStoreError, having written nothing and sent no cookie; a retry once the database is back goes through', async () => {
    const backend = new CountFails();
    const store = new SessionStore(backend, { keyPairs, maxSessionsPerUser: 2, onSessionLimit: 'refuse', cleanupInterval: 0 });
    const req = requestWith();
    const session = await store.get(req, 'sid');
    session.values = { user: 'alice', provider: 'password' };
    const headers = new Headers();
    await expect(store.save(req, headers, session)).rejects.toThrow(SessionStoreError);
    expect(sentCookies(headers)).toEqual([]);
    expect(await backend.countLive()).toBe(0);
    backend.down = false;
    expect(await store.save(req, headers, session)).toBe('created');
    expect(await store.listSessions('alice', 'password')).toHaveLength(1);
  });
});

describe.each(backends)('the session limit on $name', (backend: Backend) => {
  beforeAll(() => backend.open());
  afterAll(() => backend.close());

  const makeStore = (config: Partial<SessionStoreConfig> = {}, place?: string) => backend.sessionStore<Values>({ keyPairs, ...config }, place);

  /** A sign-in on a new session: no earlier cookie. */
  async function signIn(store: SessionStore<Values>, user: string, provider = 'password') {
    const req = new Request('https://app.example/login', { headers: { 'user-agent': `${user} browser` } });
    const session = await store.get(req, 'sid');
    session.values = { user, provider };
    const headers = new Headers();
    const outcome = await store.save(req, headers, session);
    return { outcome, headers, session, cookie: sentCookies(headers)[0]?.value };
  }

  /** An anonymous session with a cart: the cookie. */
  async function anonymous(store: SessionStore<Values>) {
    const req = requestWith();
    const session = await store.get(req, 'sid');
    session.values.cart = ['book'];
    const headers = new Headers();
    expect(await store.save(req, headers, session)).toBe('created');
    return onlyCookie(headers).value;
  }

  /** A sign-in the way an app does it: the browser's session, regenerated, given an owner. */
  async function signInFrom(store: SessionStore<Values>, cookie: string, user: string) {
    const req = requestWith({ sid: cookie });
    const session = await store.get(req, 'sid');
    session.regenerate();
    session.values = { ...session.values, user, provider: 'password' };
    const headers = new Headers();
    const outcome = await store.save(req, headers, session);
    return { outcome, headers, session };
  }

  const load = (store: SessionStore<Values>, cookie: string | undefined) => store.get(requestWith({ sid: cookie ?? '' }), 'sid');

  /** PostgreSQL: a transaction of another client holding the rows of table `place` that `where` selects, until `release`. */
  async function holdRows(place: string, where: string, values: unknown[]) {
    const holder = new pg.Client({ connectionString: inject('pgUri') });
    await holder.connect();
    const schema = (await holder.query<{ s: string }>('SELECT table_schema AS s FROM information_schema.tables WHERE table_name = $1', [place])).rows[0]?.s;
    await holder.query('BEGIN');
    await holder.query(`SELECT 1 FROM "${schema ?? ''}"."${place}" WHERE ${where} FOR UPDATE`, values);
    return {
      release: async () => {
        await holder.query('COMMIT');
        await holder.end();
      },
    };
  }

  describe("'evict-oldest' (the default)", () => {
    it('ends the least recently used sessions at once; the others, and other owners, are untouched', async () => {
      const { store, raw } = await makeStore({ maxSessionsPerUser: 2 });
      const bob = await signIn(store, 'bob');
      const github = await signIn(store, 'alice', 'github');
      const guest = await anonymous(store);
      const first = await signIn(store, 'alice');
      await pause(5);
      const second = await signIn(store, 'alice');
      await pause(5);
      // The first is used again (a write): now the second is the least recently used.
      const req = requestWith({ sid: first.cookie ?? '' });
      const used = await store.get(req, 'sid');
      used.values.visits = 1;
      expect(await store.save(req, new Headers(), used)).toBe('updated');
      await pause(5);
      const third = await signIn(store, 'alice');
      expect(third.outcome).toBe('created');
      // Gone before the save resolved, not on its next request.
      expect(await raw.record(second.session.id)).toBeUndefined();
      const evicted = await load(store, second.cookie);
      expect(evicted.isNew).toBe(true);
      expect(evicted.error).toBe('not-found');
      expect((await load(store, first.cookie)).values.visits).toBe(1);
      expect((await load(store, third.cookie)).values.user).toBe('alice');
      expect((await store.listSessions('alice', 'password')).map((device) => device.handle).sort()).toEqual(
        [first.session.handle, third.session.handle].sort(),
      );
      for (const other of [bob.cookie, github.cookie, guest]) expect((await load(store, other)).isNew).toBe(false);
      expect(await raw.countLive()).toBe(5);
    });

    it('evicts all beyond the limit at once (a limit lowered on an existing store), and applies to a sign-in by regenerate() or by an owner change', async () => {
      const place = `limit_${Math.random().toString(36).slice(2, 10)}`;
      const { store: unlimited } = await makeStore({}, place);
      for (let i = 0; i < 5; i++) await signIn(unlimited, 'alice');
      const { store } = await makeStore({ maxSessionsPerUser: 2 }, place);
      const cookie = await anonymous(store);
      const { outcome, headers, session } = await signInFrom(store, cookie, 'alice');
      expect(outcome).toBe('created');
      expect(await store.listSessions('alice', 'password')).toHaveLength(2);
      const signedIn = await load(store, onlyCookie(headers).value);
      expect(signedIn.values).toEqual({ cart: ['book'], user: 'alice', provider: 'password' });
      expect(signedIn.handle).toBe(session.handle);
      // An owner change without regenerate(): from nobody, then from bob to alice.
      const other = await anonymous(store);
      const req = requestWith({ sid: other });
      const plain = await store.get(req, 'sid');
      plain.values.user = 'alice';
      plain.values.provider = 'password';
      expect(await store.save(req, new Headers(), plain)).toBe('updated');
      expect(await store.listSessions('alice', 'password')).toHaveLength(2);
      const bob = await signIn(store, 'bob');
      const switchReq = requestWith({ sid: bob.cookie ?? '' });
      const switching = await store.get(switchReq, 'sid');
      switching.values = { user: 'alice', provider: 'password' };
      expect(await store.save(switchReq, new Headers(), switching)).toBe('updated');
      const devices = await store.listSessions('alice', 'password');
      expect(devices.map((device) => device.handle)).toContain(switching.handle);
      expect(devices).toHaveLength(2);
    });

    it('a request in flight with an evicted session cannot bring it back', async () => {
      const { store, raw } = await makeStore({ maxSessionsPerUser: 1 });
      const first = await signIn(store, 'alice');
      const req = requestWith({ sid: first.cookie ?? '' });
      const inFlight = await store.get(req, 'sid');
      await signIn(store, 'alice');
      inFlight.values.visits = 7;
      const headers = new Headers();
      expect(await store.save(req, headers, inFlight)).toBe('expired');
      expect(await raw.record(first.session.id)).toBeUndefined();
      expect(await store.listSessions('alice', 'password')).toHaveLength(1);
    });

    it('costs a sign-in one more command (MongoDB: two when it evicts), and every other save nothing more', async () => {
      const { store: unlimited } = await makeStore();
      const { store } = await makeStore({ maxSessionsPerUser: 1 });
      const commands = async (target: SessionStore<Values>, action: (s: SessionStore<Values>) => Promise<unknown>) =>
        backend.during(() => action(target));
      const trim = backend.name === 'MongoDB' ? ['read'] : ['other'];
      const evict = backend.name === 'MongoDB' ? ['read', 'delete'] : ['other'];
      // A new session signed in at once.
      expect(await commands(store, (s) => signIn(s, 'carol'))).toEqual([...(await commands(unlimited, (s) => signIn(s, 'carol'))), ...trim]);
      expect(await commands(store, (s) => signIn(s, 'carol'))).toEqual(['insert', ...evict]);
      // A sign-in by regenerate(): what it cost before, and one more.
      const before = await commands(unlimited, async (s) => signInFrom(s, await anonymous(s), 'dave'));
      const after = await commands(store, async (s) => signInFrom(s, await anonymous(s), 'dave'));
      expect(after).toEqual([...before, ...trim]);
      // Saves that do not change the owner: a change, a regenerate() by the same owner.
      const signedIn = await signIn(store, 'erin');
      const same = async (s: SessionStore<Values>, cookie: string) => {
        const req = requestWith({ sid: cookie });
        const session = await s.get(req, 'sid');
        session.values.visits = 2;
        await s.save(req, new Headers(), session);
        const again = await s.get(requestWith({ sid: cookie }), 'sid');
        again.regenerate();
        await s.save(requestWith({ sid: cookie }), new Headers(), again);
      };
      const signedInUnlimited = await signIn(unlimited, 'erin');
      expect(await commands(store, (s) => same(s, signedIn.cookie ?? ''))).toEqual(
        await commands(unlimited, (s) => same(s, signedInUnlimited.cookie ?? '')),
      );
    });

    it('a regeneration by the same user while a sign-in trims cannot leave an excess', async () => {
      const place = `race_${Math.random().toString(36).slice(2, 10)}`;
      const { store } = await makeStore({ maxSessionsPerUser: 2 }, place);
      const first = await signIn(store, 'alice');
      await pause(5);
      await signIn(store, 'alice');
      await pause(5);
      /** Regenerates the first session (a request of its browser): the trim's oldest. */
      const regenerateFirst = async () => {
        const req = requestWith({ sid: first.cookie ?? '' });
        const session = await store.get(req, 'sid');
        session.regenerate();
        return store.save(req, new Headers(), session);
      };
      if (backend.name === 'MongoDB') {
        // Hold the trim's delete until the first session has moved to a new id.
        // eslint-disable-next-line @typescript-eslint/unbound-method -- called below with its collection as `this`
        const deleteMany = Collection.prototype.deleteMany;
        let regenerated: Promise<unknown> | undefined;
        Collection.prototype.deleteMany = function (this: Collection, filter: unknown, ...rest: unknown[]) {
          const ids = (filter as { _id?: { $in?: unknown } })._id?.$in;
          if (Array.isArray(ids) && regenerated === undefined) regenerated = regenerateFirst();
          const proceed = () => (deleteMany as (...args: unknown[]) => unknown).call(this, filter, ...rest);
          return (Array.isArray(ids) && regenerated !== undefined ? regenerated.then(proceed) : proceed()) as ReturnType<typeof deleteMany>;
        } as typeof deleteMany;
        try {
          expect((await signIn(store, 'alice')).outcome).toBe('created');
        } finally {
          Collection.prototype.deleteMany = deleteMany;
        }
        expect(await regenerated).toBe('created');
      } else {
        // The regeneration waits for a lock on the first session's row, the trim (wanting it) behind it.
        const held = await holdRows(place, 'handle = $1', [first.session.handle]);
        const regenerated = regenerateFirst();
        await pause(300);
        const third = signIn(store, 'alice');
        await pause(300);
        await held.release();
        expect(await regenerated).toBe('created');
        expect((await third).outcome).toBe('created');
      }
      expect(await store.listSessions('alice', 'password')).toHaveLength(2);
    });

    it(`leaves exactly the limit after 20 parallel sign-ins of one user${backend.name === 'MongoDB' ? ' (also on FerretDB)' : ''}`, async () => {
      const { store, raw } = await makeStore({ maxSessionsPerUser: 3 });
      const bob = await signIn(store, 'bob');
      const guests = await Promise.all(Array.from({ length: 10 }, () => anonymous(store)));
      const results = await Promise.all([
        ...Array.from({ length: 10 }, () => signIn(store, 'alice')),
        ...guests.map(async (cookie) => {
          const { outcome, headers, session } = await signInFrom(store, cookie, 'alice');
          return { outcome, headers, session, cookie: sentCookies(headers)[0]?.value };
        }),
      ]);
      const devices = await store.listSessions('alice', 'password');
      expect(devices).toHaveLength(3);
      // Each save resolved 'created' (its session may since have gone to a newer sign-in) or
      // 'limited' (gone before its save resolved: the cookie cleared).
      let live = 0;
      for (const result of results) {
        expect(['created', 'limited']).toContain(result.outcome);
        const loaded = await load(store, result.outcome === 'created' ? result.cookie : undefined);
        if (result.outcome === 'limited') expect(sentCookies(result.headers)[0]?.attributes['max-age']).toBe('0');
        if (!loaded.isNew) live++;
      }
      expect(live).toBe(3);
      // The three that stay are sessions whose saves said 'created'.
      const created = new Set(results.filter((result) => result.outcome === 'created').map((result) => result.session.handle));
      for (const device of devices) expect(created.has(device.handle)).toBe(true);
      expect((await load(store, bob.cookie)).values.user).toBe('bob');
      expect(await raw.countLive()).toBe(1 + 3);
    });
  });

  describe("'refuse'", () => {
    const refusing = () => makeStore({ maxSessionsPerUser: 2, onSessionLimit: 'refuse' });

    it("at the limit, a sign-in writes nothing and resolves 'limited'; the browser keeps its session", async () => {
      const { store, raw } = await refusing();
      const first = await signIn(store, 'alice');
      await signIn(store, 'alice');
      const cookie = await anonymous(store);
      const keys = (await raw.keys()).sort();
      const attempt = await signInFrom(store, cookie, 'alice');
      expect(attempt.outcome).toBe('limited');
      expect(sentCookies(attempt.headers)).toEqual([]);
      expect((await raw.keys()).sort()).toEqual(keys);
      expect((await load(store, cookie)).values).toEqual({ cart: ['book'] });
      // Ended: a second save sends nothing.
      expect(await backend.during(async () => expect(await store.save(requestWith(), new Headers(), attempt.session)).toBe('limited'))).toEqual([]);
      // A new session saved with an owner at once is refused the same way.
      const direct = await signIn(store, 'alice');
      expect([direct.outcome, direct.cookie]).toEqual(['limited', undefined]);
      // Other owners are not limited by alice's sessions.
      expect((await signIn(store, 'bob')).outcome).toBe('created');
      // Once a device is signed out, the sign-in goes through.
      expect(await store.revokeSession('alice', 'password', first.session.handle)).toBe(true);
      expect((await signInFrom(store, cookie, 'alice')).outcome).toBe('created');
      expect(await store.listSessions('alice', 'password')).toHaveLength(2);
    });

    it('after a refusal, new() gives the session the browser still has, e.g. for a flash', async () => {
      const { store } = await refusing();
      await signIn(store, 'alice');
      await signIn(store, 'alice');
      const cookie = await anonymous(store);
      const req = requestWith({ sid: cookie });
      const session = await store.get(req, 'sid');
      session.regenerate();
      session.values = { ...session.values, user: 'alice', provider: 'password' };
      expect(await store.save(req, new Headers(), session)).toBe('limited');
      const again = await store.new(req, 'sid');
      expect(again).not.toBe(session);
      expect(again.values).toEqual({ cart: ['book'] });
      again.addFlash('Sign out on another device first');
      const headers = new Headers();
      expect(await store.save(req, headers, again)).toBe('updated');
      expect(sentCookies(headers)).toEqual([]);
      expect((await load(store, cookie)).flashes()).toEqual(['Sign out on another device first']);
    });

    it('costs a sign-in a count before and a check after; a refused one only the count', async () => {
      const { store: unlimited } = await makeStore();
      const { store } = await refusing();
      const check = backend.name === 'MongoDB' ? ['read'] : ['other'];
      const plain = await backend.during(() => signIn(unlimited, 'carol'));
      expect(await backend.during(() => signIn(store, 'carol'))).toEqual(['read', ...plain, ...check]);
      await signIn(store, 'carol');
      expect(await backend.during(() => signIn(store, 'carol'))).toEqual(['read']);
    });

    // PostgreSQL's checks lock the owner's rows: what that promises.
    if (backend.name === 'PostgreSQL') {
      it('PostgreSQL: a regeneration by the same user while sign-ins count keeps the limit exact', async () => {
        const place = `refuse_${Math.random().toString(36).slice(2, 10)}`;
        const { store } = await makeStore({ maxSessionsPerUser: 2, onSessionLimit: 'refuse' }, place);
        const existing = await signIn(store, 'alice');
        const held = await holdRows(place, '"user" = $1', ['alice']);
        const req = requestWith({ sid: existing.cookie ?? '' });
        const session = await store.get(req, 'sid');
        session.regenerate();
        const regenerated = store.save(req, new Headers(), session);
        await pause(200);
        const signIns = Promise.all(Array.from({ length: 10 }, () => signIn(store, 'alice')));
        await pause(300);
        await held.release();
        expect(await regenerated).toBe('created');
        const outcomes = (await signIns).map((result) => result.outcome);
        expect(outcomes.filter((outcome) => outcome === 'created')).toHaveLength(1);
        expect(await store.listSessions('alice', 'password')).toHaveLength(2);
      });

      it('PostgreSQL: a check and a forced logout of the same user wait for each other, never deadlock', async () => {
        for (let round = 0; round < 3; round++) {
          const place = `deadlock_${Math.random().toString(36).slice(2, 10)}`;
          const { store } = await makeStore({ maxSessionsPerUser: 8, onSessionLimit: 'refuse' }, place);
          const tokens: string[] = [];
          for (let i = 0; i < 7; i++) tokens.push((await signIn(store, 'alice')).session.id);
          const middle = tokens.sort()[3];
          const held = await holdRows(place, 'token = $1', [middle]);
          const signing = signIn(store, 'alice');
          await pause(200);
          const logout = store.expireSessions('alice', 'password');
          await pause(200);
          await held.release();
          const [signedIn, ended] = await Promise.all([signing, logout]);
          expect(['created', 'limited']).toContain(signedIn.outcome);
          expect(ended).toBeGreaterThanOrEqual(7);
        }
      });
    }

    it(`20 parallel sign-ins of one user never leave more than the limit (${backend.name === 'PostgreSQL' ? 'exactly it' : 'a burst may keep fewer'}), and each outcome says what became of its session`, async () => {
      const { store } = await makeStore({ maxSessionsPerUser: 3, onSessionLimit: 'refuse' });
      for (const user of ['alice', 'bob', 'carol', 'dave', 'erin']) {
        const results = await Promise.all(Array.from({ length: 20 }, () => signIn(store, user)));
        const devices = await store.listSessions(user, 'password');
        // PostgreSQL counts with the owner's rows locked; MongoDB cannot, so a burst may be refused beyond what the limit needs.
        if (backend.name === 'PostgreSQL') expect(devices).toHaveLength(3);
        else expect(devices.length).toBeLessThanOrEqual(3);
        const created = results.filter((result) => result.outcome === 'created');
        expect(created.map((result) => result.session.handle).sort()).toEqual(devices.map((device) => device.handle).sort());
        for (const result of results) {
          expect(['created', 'limited']).toContain(result.outcome);
          expect((await load(store, result.cookie)).isNew).toBe(result.outcome !== 'created');
        }
        // A sign-in after the burst: refused at once when the burst filled the places, else created.
        const next = await signIn(store, user);
        expect(next.outcome).toBe(devices.length === 3 ? 'limited' : 'created');
      }
    });
  });
});

/**
 * Interleavings with a parallel request of the signing-in browser that
 * regenerates its session in the middle of the sign-in (commands held by
 * hooks on the driver, so each runs at a chosen point).
 */
describe('a sign-in whose own session a parallel request regenerates meanwhile', () => {
  let mongo: TestDatabase;
  let postgres: TestSchema;
  beforeAll(async () => {
    mongo = await openTestDatabase();
    postgres = await openTestSchema('limit_races');
  });
  afterAll(async () => {
    await mongo.close();
    await postgres.close();
  });

  type Hook = (name: string, args: unknown[]) => Promise<void> | undefined;
  /** A store on `database` whose commands `hook` may hold: it sees each command's name and arguments first. */
  function hookedStore(database: 'MongoDB' | 'PostgreSQL', config: Partial<SessionStoreConfig>, hook: { current: Hook }) {
    const place = `races_${Math.random().toString(36).slice(2, 10)}`;
    if (database === 'PostgreSQL') {
      const query = postgres.pool.query.bind(postgres.pool) as (...args: unknown[]) => Promise<unknown>;
      const pool = Object.create(postgres.pool) as pg.Pool;
      pool.query = (async (...args: unknown[]) => {
        await hook.current(typeof args[0] === 'string' ? args[0] : '', args);
        return query(...args);
      }) as typeof pool.query;
      return {
        store: new PostgresSessionStore<Values>(pool, { keyPairs, cleanupInterval: 0, ...config, table: place }),
        unlimited: new PostgresSessionStore<Values>(postgres.pool, { keyPairs, cleanupInterval: 0, table: place }),
        removeOwnedBy: async (user: string, except: string) =>
          void (await postgres.pool.query(`DELETE FROM "${place}" WHERE "user" = $1 AND token <> $2`, [user, except])),
        restore: () => {},
      };
    }
    const proto = Collection.prototype as unknown as Record<string, (...args: unknown[]) => unknown>;
    const originals = new Map(['countDocuments', 'updateOne', 'find', 'deleteOne', 'deleteMany'].map((name) => [name, proto[name]]));
    for (const [name, original] of originals) {
      proto[name] = function (this: Collection, ...args: unknown[]) {
        if (this.collectionName !== place) return (original as (...a: unknown[]) => unknown).apply(this, args);
        const held = hook.current(name, args);
        const run = () => (original as (...a: unknown[]) => unknown).apply(this, args);
        if (held === undefined) return run();
        // find() returns a cursor synchronously: hold its toArray instead.
        if (name === 'find') {
          const cursor = run() as { toArray: () => Promise<unknown> };
          const toArray = cursor.toArray.bind(cursor);
          cursor.toArray = async () => (await held, toArray());
          return cursor;
        }
        return held.then(run);
      };
    }
    const store = new MongoStore<Values>(mongo.db, { keyPairs, cleanupInterval: 0, ...config, collection: place });
    return {
      store,
      unlimited: new MongoStore<Values>(mongo.db, { keyPairs, cleanupInterval: 0, collection: place }),
      // Through the original method: the hooks do not see it.
      removeOwnedBy: async (user: string, except: string) =>
        void (await (originals.get('deleteMany') as (...args: unknown[]) => Promise<unknown>).call(mongo.db.collection(place), { user, _id: { $ne: except } })),
      restore: () => void originals.forEach((original, name) => (proto[name] = original as (...args: unknown[]) => unknown)),
    };
  }

  const save = async (store: SessionStore<Values>, cookie: string | undefined, change: (session: Session<Values>) => void) => {
    const req = requestWith(cookie === undefined ? {} : { sid: cookie });
    const session = await store.get(req, 'sid');
    change(session);
    const headers = new Headers();
    const outcome = await store.save(req, headers, session);
    return { outcome, cookie: sentCookies(headers)[0]?.value, session };
  };
  const signInAs = (session: Session<Values>) => Object.assign(session.values, { user: 'alice', provider: 'password' });

  it.each(['MongoDB', 'PostgreSQL'] as const)("'refuse' on %s: regenerated between the write and the check, it is withdrawn with its successor", async (database) => {
    const hook: { current: Hook } = { current: () => undefined };
    const { store, restore } = hookedStore(database, { maxSessionsPerUser: 1, onSessionLimit: 'refuse' }, hook);
    try {
      await store.init();
      const browser = (await save(store, undefined, (session) => void (session.values.cart = ['book']))).cookie;
      let other: Promise<{ outcome: string }> | undefined;
      let regenerated: Promise<{ outcome: string }> | undefined;
      const isCount = (name: string) => name === 'countDocuments' || name.startsWith('SELECT count(*)::integer AS count');
      const isOwnerWrite = (name: string, args: unknown[]) =>
        name === 'updateOne' ? JSON.stringify(args[1]).includes('"user":"alice"') : name.startsWith('UPDATE') && name.includes('"user" =');
      const isCheck = (name: string) => isCount(name) || name.startsWith('WITH seen');
      hook.current = (name, args) => {
        // The sign-in's write waits until another device of alice has signed in, all of it
        // (the sign-in's count, before, saw none).
        if (other === undefined && isOwnerWrite(name, args)) {
          hook.current = () => undefined;
          other = save(store, undefined, signInAs);
          return other.then(() => {
            // After the sign-in's write, before its check: the browser's parallel request regenerates it.
            hook.current = (next) => {
              if (!isCheck(next)) return undefined;
              hook.current = () => undefined;
              regenerated = save(store, browser, (session) => session.regenerate());
              return regenerated.then(() => undefined);
            };
          });
        }
        return undefined;
      };
      const signIn = await save(store, browser, signInAs);
      hook.current = () => undefined;
      expect((await other)?.outcome).toBe('created');
      expect((await regenerated)?.outcome).toBe('created');
      expect(signIn.outcome).toBe('limited');
      expect(await store.listSessions('alice', 'password')).toHaveLength(1);
    } finally {
      restore();
    }
  });

  it("'evict-oldest' on MongoDB: regenerated between the trim's read and its delete, the trim reads again", async () => {
    const hook: { current: Hook } = { current: () => undefined };
    const { store, restore } = hookedStore('MongoDB', { maxSessionsPerUser: 1 }, hook);
    try {
      await store.init();
      const device = (await save(store, undefined, signInAs)).cookie;
      const browser = (await save(store, undefined, (session) => void (session.values.cart = ['book']))).cookie;
      await pause(5);
      let touched: Promise<unknown> | undefined;
      let regenerated: Promise<{ outcome: string }> | undefined;
      hook.current = (name, args) => {
        const projection = JSON.stringify(args[1] ?? {});
        // The trim's read: first the other device is used (a write), so the sign-in's own session is the oldest.
        if (name === 'find' && projection.includes('updatedAt') && touched === undefined) {
          hook.current = () => undefined;
          touched = save(store, device, (session) => void (session.values.visits = 1));
          hook.current = (next) => {
            // The trim's delete of the sign-in's own session: first the browser's parallel request regenerates it.
            if ((next === 'deleteOne' || next === 'deleteMany') && regenerated === undefined) {
              hook.current = () => undefined;
              regenerated = save(store, browser, (session) => session.regenerate());
              return regenerated.then(() => undefined);
            }
            return undefined;
          };
          return touched.then(() => undefined);
        }
        return undefined;
      };
      const signIn = await save(store, browser, signInAs);
      hook.current = () => undefined;
      expect((await regenerated)?.outcome).toBe('created');
      expect(['updated', 'limited']).toContain(signIn.outcome);
      expect(await store.listSessions('alice', 'password')).toHaveLength(1);
    } finally {
      restore();
    }
  });
  it.each(['MongoDB', 'PostgreSQL'] as const)("'evict-oldest' on %s: pushed out by another sign-in's trim before its own, it resolves 'limited'", async (database) => {
    const hook: { current: Hook } = { current: () => undefined };
    const { store, removeOwnedBy, restore } = hookedStore(database, { maxSessionsPerUser: 1 }, hook);
    try {
      await store.init();
      const device = await save(store, undefined, signInAs);
      const isTrim = (name: string, args: unknown[]) => (name === 'find' && JSON.stringify(args[1] ?? {}).includes('updatedAt')) || name.startsWith('WITH ranked');
      hook.current = (name, args) => {
        if (!isTrim(name, args)) return undefined;
        hook.current = () => undefined;
        // Before the sign-in's trim reads: the other device is used (so the sign-in's session is the
        // oldest), and a newer sign-in's trim (played here by a plain delete) deletes the sign-in's session.
        return save(store, device.cookie, (session) => void (session.values.visits = 1)).then(() => removeOwnedBy('alice', device.session.id));
      };
      const signIn = await save(store, undefined, signInAs);
      expect(signIn.outcome).toBe('limited');
      expect(signIn.cookie).toBe('');
      expect((await store.listSessions('alice', 'password')).map((d) => d.handle)).toEqual([device.session.handle]);
    } finally {
      restore();
    }
  });

  it.each(['MongoDB', 'PostgreSQL'] as const)("'refuse' on %s: a withdrawal never takes a session that is another user's now", async (database) => {
    const hook: { current: Hook } = { current: () => undefined };
    const { store, unlimited, restore } = hookedStore(database, { maxSessionsPerUser: 1, onSessionLimit: 'refuse' }, hook);
    try {
      await store.init();
      const browser = (await save(store, undefined, (session) => void (session.values.cart = ['book']))).cookie;
      let wrote = false;
      let switched: Promise<{ outcome: string }> | undefined;
      hook.current = (name, args) => {
        if (name === 'updateOne' ? JSON.stringify(args[1]).includes('"user":"alice"') : name.startsWith('UPDATE') && name.includes('"user" =')) wrote = true;
        const isCheck = name === 'countDocuments' || name.startsWith('WITH seen');
        if (!wrote || !isCheck) return undefined;
        hook.current = () => undefined;
        // After the sign-in's write, before its check: two more sign-ins of alice got past the limit
        // (played by a store without it), and a parallel request of the browser signed it in as bob.
        switched = Promise.all([save(unlimited, undefined, signInAs), save(unlimited, undefined, signInAs)]).then(() =>
          save(store, browser, (session) => Object.assign(session.values, { user: 'bob', provider: 'password' })),
        );
        return switched.then(() => undefined);
      };
      await save(store, browser, signInAs);
      expect((await switched)?.outcome).toBe('updated');
      expect(await store.listSessions('bob', 'password')).toHaveLength(1);
      expect((await store.get(requestWith({ sid: browser ?? '' }), 'sid')).values.user).toBe('bob');
    } finally {
      restore();
    }
  });
});
