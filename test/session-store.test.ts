/**
 * The gorilla-style store's contract, run against every backend: MongoStore
 * on MongoDB and PostgresSessionStore on PostgreSQL.
 */
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, expectTypeOf, it, vi } from 'vitest';
import {
  Session,
  SessionOptionsError,
  SessionStoreError,
  type SessionStoreConfig,
  SessionValuesError,
} from '../src/index.ts';
import type { SessionStore } from '../src/session-store.ts';
import { type Backend, backends, type RawPlace } from './support/backends.ts';
import { ImmutableHeaders, onlyCookie, randomKey, requestWith, sentCookies } from './support/http.ts';

describe.each(backends)('SessionStore on $name', (backend: Backend) => {
beforeAll(() => backend.open());
afterAll(() => backend.close());

const k1 = { authentication: randomKey(), encryption: randomKey() };
const k2 = { authentication: randomKey(), encryption: randomKey() };
const day = 24 * 60 * 60;

interface AppValues extends Record<string, unknown> {
  user: string;
  provider: string;
  visits: number;
}

/** A store on a collection or table of its own, schema in place, so counts are exact. */
async function makeStore(
  config: Partial<SessionStoreConfig> = {},
  place?: string,
): Promise<{ store: SessionStore<AppValues>; docs: RawPlace }> {
  // saveUninitialized: most tests store empty sessions on purpose; its default has tests of its own.
  const { store, raw } = await backend.sessionStore<AppValues>({ keyPairs: [k1], saveUninitialized: true, ...config }, place);
  return { store, docs: raw };
}

function uniquePlace(): string {
  return `shared_${Math.random().toString(36).slice(2, 10)}`;
}

/** Creates and saves a session in a request of its own; returns its cookie value. */
async function createSession(
  store: SessionStore<AppValues>,
  values: Partial<AppValues>,
  name = 'sid',
): Promise<{ cookie: string; session: Session<AppValues> }> {
  const req = requestWith();
  const session = await store.get(req, name);
  // Spread, not Object.assign: assigning a "__proto__" key would set the prototype.
  session.values = { ...values };
  const headers = new Headers();
  expect(await store.save(req, headers, session)).toBe('created');
  return { cookie: onlyCookie(headers).value, session };
}

function load(store: SessionStore<AppValues>, cookie: string, name = 'sid') {
  return store.get(requestWith({ [name]: cookie }), name);
}

describe('options and keys', () => {
  it('defaults to a secure, host-only, 30-day, SameSite=Lax cookie on /', async () => {
    const { store } = await makeStore();
    expect(store.options).toEqual({
      path: '/',
      maxAge: 30 * day,
      persistent: true,
      secure: true,
      httpOnly: true,
      sameSite: 'lax',
      partitioned: false,
    });
    const session = await store.get(requestWith(), 'sid');
    expect(session.options).toEqual(store.options);
    session.options.maxAge = 5;
    expect(store.options.maxAge).toBe(30 * day);
  });

  it('sends those attributes on the cookie', async () => {
    const { store } = await makeStore();
    const req = requestWith();
    const headers = new Headers();
    await store.save(req, headers, await store.get(req, 'sid'));
    const cookie = onlyCookie(headers);
    expect(cookie.attributes).toMatchObject({
      path: '/',
      httponly: true,
      secure: true,
      samesite: 'Lax',
      'max-age': String(30 * day),
    });
    expect(cookie.attributes).not.toHaveProperty('domain');
    expect(cookie.attributes).not.toHaveProperty('partitioned');
  });

  it('refuses no key pairs, short keys and keys of the wrong type', async () => {
    const make = (keyPairs: unknown) =>
      backend.sessionStore({ keyPairs: keyPairs as SessionStoreConfig['keyPairs'] });
    await expect(make([])).rejects.toThrow(SessionOptionsError);
    await expect(make(undefined)).rejects.toThrow(/at least one key pair/);
    await expect(make([{ authentication: 'x'.repeat(31) }])).rejects.toThrow(/at least 32 characters/);
    await expect(make([{ authentication: new Uint8Array(31) }])).rejects.toThrow(/at least 32 bytes/);
    await expect(make([{ authentication: randomKey(), encryption: 'short' }])).rejects.toThrow(
      /keyPairs\[0\]\.encryption/,
    );
    await expect(make([{ authentication: 42 }])).rejects.toThrow(/string or a Uint8Array/);
    await expect(make([{ authentication: 'correct horse battery staple, 32+' }])).resolves.toBeDefined();
  });

  it.each([
    ['sameSite none without secure', { sameSite: 'none', secure: false }, /sameSite 'none' requires secure/],
    ['partitioned without secure', { partitioned: true, secure: false }, /partitioned requires secure/],
  ] as const)('refuses %s in the store options', async (_, options, message) => {
    await expect(backend.sessionStore({ keyPairs: [k1], options })).rejects.toThrow(message);
  });

  it.each([
    ['__Host- with a domain', '__Host-sid', { domain: 'example.com' }, /must not set a domain/],
    ['__Host- with a path', '__Host-sid', { path: '/app' }, /requires path '\/'/],
    ['__Host- without secure', '__Host-sid', { secure: false }, /requires secure/],
    ['__Secure- without secure', '__Secure-sid', { secure: false }, /requires secure/],
    ['an invalid cookie name', 'bad name', {}, /invalid cookie name/],
  ] as const)('save refuses %s, writing nothing', async (_, name, options, message) => {
    const { store, docs } = await makeStore();
    const req = requestWith();
    const session = await store.get(req, name);
    Object.assign(session.options, options);
    const headers = new Headers();
    await expect(store.save(req, headers, session)).rejects.toThrow(message);
    await expect(store.save(req, headers, session)).rejects.toBeInstanceOf(SessionOptionsError);
    expect(await docs.count()).toBe(0);
    expect(headers.getSetCookie()).toEqual([]);
  });

  it('accepts a valid __Host- cookie', async () => {
    const { store } = await makeStore();
    const { cookie } = await createSession(store, { who: 'a' }, '__Host-sid');
    expect((await load(store, cookie, '__Host-sid')).values.who).toBe('a');
  });

  it('types values through the store type parameter', async () => {
    const { store } = await makeStore();
    const session = await store.get(requestWith(), 'sid');
    expectTypeOf(session.values.visits).toEqualTypeOf<number | undefined>();
    expectTypeOf(session.values.user).toEqualTypeOf<string | undefined>();
  });
});

describe('flashes', () => {
  it('adds, returns and removes flashes, per key, across requests', async () => {
    const { store } = await makeStore();
    const req = requestWith();
    const session = await store.get(req, 'sid');
    session.addFlash('welcome');
    session.addFlash('again');
    session.addFlash({ level: 'warn' }, 'alerts');
    const headers = new Headers();
    await store.save(req, headers, session);

    const next = await load(store, onlyCookie(headers).value);
    expect(next.flashes()).toEqual(['welcome', 'again']);
    expect(next.flashes()).toEqual([]);
    expect(next.flashes('alerts')).toEqual([{ level: 'warn' }]);
    await store.save(requestWith(), new Headers(), next);

    const third = await load(store, onlyCookie(headers).value);
    expect(third.flashes()).toEqual([]);
    expect(third.flashes('alerts')).toEqual([]);
  });
});

describe('get and new', () => {
  it('gives the same Session object for the same request and name, and for Hono-style { raw }', async () => {
    const { store } = await makeStore();
    const req = requestWith();
    const first = await store.get(req, 'sid');
    expect(await store.get(req, 'sid')).toBe(first);
    expect(await store.get({ raw: req }, 'sid')).toBe(first);
    expect(await store.get(req, 'other')).not.toBe(first);
    expect(await store.get(requestWith(), 'sid')).not.toBe(first);
  });

  it('decodes once per request even when called concurrently', async () => {
    const { store } = await makeStore();
    const { cookie } = await createSession(store, { who: 'a' });
    const req = requestWith({ sid: cookie });
    const commands = await backend.during(async () => {
      const [a, b, c] = await Promise.all([
        store.get(req, 'sid'),
        store.get(req, 'sid'),
        store.get({ raw: req }, 'sid'),
      ]);
      expect(a).toBe(b);
      expect(a).toBe(c);
    });
    expect(commands).toEqual(['read']);
  });

  it('new() decodes afresh each time and leaves the registry alone', async () => {
    const { store } = await makeStore();
    const { cookie } = await createSession(store, { who: 'a' });
    const req = requestWith({ sid: cookie });
    const registered = await store.get(req, 'sid');
    const fresh = await store.new(req, 'sid');
    expect(fresh).not.toBe(registered);
    expect(fresh.values).toEqual({ who: 'a' });
    expect(await store.new(req, 'sid')).not.toBe(fresh);
    expect(await store.get(req, 'sid')).toBe(registered);
  });

  it('returns the stored values for a valid cookie', async () => {
    const { store } = await makeStore();
    const { cookie, session } = await createSession(store, { who: 'alice', visits: 3 });
    const loaded = await load(store, cookie);
    expect(loaded.isNew).toBe(false);
    expect(loaded.id).toBe(session.id);
    expect(loaded.values).toEqual({ who: 'alice', visits: 3 });
    expect(loaded.error).toBeUndefined();
  });

  it('gives a fresh session with no error and no command when there is no cookie', async () => {
    const { store } = await makeStore();
    let session: Session<AppValues> | undefined;
    const commands = await backend.during(async () => {
      session = await store.get(requestWith({ other: 'x' }), 'sid');
    });
    expect(commands).toEqual([]);
    expect(session).toMatchObject({ isNew: true, id: '', values: {}, error: undefined });
  });

  it('gives fresh sessions, without any command, for cookies that do not unseal', async () => {
    const { store } = await makeStore();
    const { cookie } = await createSession(store, { who: 'alice' });
    const foreign = await makeStore({ keyPairs: [k2] });
    const { cookie: foreignCookie } = await createSession(foreign.store, { who: 'mallory' });
    const parts = cookie.split('*');
    const flip = (s: string) => (s[0] === 'A' ? 'B' : 'A') + s.slice(1);
    const cases: [string, string][] = [
      [flip(cookie.slice(0, -1)) + cookie.slice(-1), 'malformed'],
      [cookie.slice(0, -2), 'malformed'], // the HMAC is no longer 43 characters
      [cookie.slice(0, -1) + (cookie.endsWith('A') ? 'B' : 'A'), 'tampered'],
      [[...parts.slice(0, 4), flip(parts[4] ?? ''), ...parts.slice(5)].join('*'), 'tampered'],
      [foreignCookie, 'unknown-key'],
      ['not-a-token', 'malformed'],
      ['Fe26.2**a*b', 'malformed'],
      ['x'.repeat(5000), 'oversized'],
    ];
    for (const [value, reason] of cases) {
      let session: Session<AppValues> | undefined;
      const commands = await backend.during(async () => {
        session = await load(store, value);
      });
      expect({ value: value.slice(0, 40), commands, reason: session?.error }).toEqual({
        value: value.slice(0, 40),
        commands: [],
        reason,
      });
      expect(session).toMatchObject({ isNew: true, id: '', values: {} });
    }
  });

  it('refuses a genuine token presented under another cookie name', async () => {
    const { store } = await makeStore();
    const { cookie } = await createSession(store, { who: 'alice' }, 'a');
    const session = await load(store, cookie, 'b');
    expect(session).toMatchObject({ isNew: true, error: 'wrong-name', values: {} });
  });

  it('gives a fresh session for a missing or expired document, even before cleanup', async () => {
    const { store, docs } = await makeStore();
    const missing = await createSession(store, { who: 'gone' });
    await docs.remove(missing.session.id);
    expect(await load(store, missing.cookie)).toMatchObject({ isNew: true, error: 'not-found' });

    const expired = await createSession(store, { who: 'old' });
    await docs.setExpiry(expired.session.id, new Date(Date.now() - 1000));
    expect(await load(store, expired.cookie)).toMatchObject({ isNew: true, error: 'not-found', values: {} });
  });

  it('does not bring an expired session back under its old id when saved', async () => {
    const { store, docs } = await makeStore();
    const { cookie, session } = await createSession(store, { who: 'old' });
    await docs.setExpiry(session.id, new Date(Date.now() - 1000));

    const req = requestWith({ sid: cookie });
    const fresh = await store.get(req, 'sid');
    fresh.values.visits = 1;
    expect(await store.save(req, new Headers(), fresh)).toBe('created');
    expect(fresh.id).not.toBe(session.id);
    expect((await docs.record(session.id))?.expiresAt.getTime()).toBeLessThan(Date.now());
  });

  it('does not revive a session that expired between get and save', async () => {
    const { store, docs } = await makeStore();
    const { cookie, session: created } = await createSession(store, { who: 'a', visits: 1 });
    const req = requestWith({ sid: cookie });
    const session = await store.get(req, 'sid');
    await docs.setExpiry(created.id, new Date(Date.now() - 1));
    session.values.visits = 2;
    const headers = new Headers();
    expect(await store.save(req, headers, session)).toBe('expired');
    expect(onlyCookie(headers).attributes['max-age']).toBe('0');
    expect((await docs.record(created.id))?.expiresAt.getTime()).toBeLessThan(Date.now());
    expect(await store.save(req, new Headers(), session)).toBe('expired');
    expect(await docs.countLive()).toBe(0);
  });

  it('rejects with SessionStoreError, cause kept, when the database fails', async () => {
    const { store } = await makeStore();
    const { cookie } = await createSession(store, { who: 'a' });
    const dead = backend.unreachable();
    try {
      const broken = dead.sessions({ keyPairs: [k1] });
      const req = requestWith({ sid: cookie });
      const error: unknown = await broken.get(req, 'sid').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(SessionStoreError);
      expect((error as Error).cause).toBeInstanceOf(Error);
      // A failed load is not cached in the registry: a retry tries again.
      const again: unknown = await broken.get(req, 'sid').catch((e: unknown) => e);
      expect(again).not.toBe(error);
      expect(again).toBeInstanceOf(SessionStoreError);
    } finally {
      await dead.close();
    }
  });
});

describe('save', () => {
  it('gives a new session a 256-bit url-safe id and a cookie holding only the sealed id', async () => {
    const { store, docs } = await makeStore();
    const secret = 'my-secret-value-123';
    const { cookie, session } = await createSession(store, { who: 'alice', visits: 1, note: secret });
    expect(session.id).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(session.id, 'base64url')).toHaveLength(32);
    expect(cookie.startsWith('Fe26.2*')).toBe(true);
    expect(cookie).not.toContain(session.id);
    expect(cookie).not.toContain('alice');
    expect(cookie).not.toContain(Buffer.from(secret).toString('base64url').slice(0, 12));

    const ids = new Set<string>();
    for (let i = 0; i < 50; i++) ids.add((await createSession(store, {})).session.id);
    expect(ids.size).toBe(50);
    expect(await docs.count()).toBe(51);
  });

  it('stores the values, expiry and top-level user/provider, and removes them when they are unset', async () => {
    const { store, docs } = await makeStore();
    const before = Date.now();
    const { cookie, session } = await createSession(store, { user: 'alice', provider: 'github' });
    let doc = await docs.record(session.id);
    expect(doc).toMatchObject({ user: 'alice', provider: 'github' });
    expect(doc?.expiresAt.getTime()).toBeGreaterThanOrEqual(before + 30 * day * 1000);
    expect(doc?.expiresAt.getTime()).toBeLessThanOrEqual(Date.now() + 30 * day * 1000);

    const req = requestWith({ sid: cookie });
    const loaded = await store.get(req, 'sid');
    (loaded.values as Record<string, unknown>).user = null;
    delete loaded.values.provider;
    expect(await store.save(req, new Headers(), loaded)).toBe('updated');
    doc = await docs.record(session.id);
    expect(doc).toMatchObject({ user: undefined, provider: undefined });
    expect((await load(store, cookie)).values).toEqual({ user: null });
  });

  it('maxAge <= 0 deletes the document and sends a cookie the browser deletes; a later save does not recreate it', async () => {
    for (const maxAge of [0, -1]) {
      const { store, docs } = await makeStore();
      const { cookie, session: created } = await createSession(store, { who: 'a' });
      const req = requestWith({ sid: cookie });
      const session = await store.get(req, 'sid');
      session.options.maxAge = maxAge;
      const headers = new Headers();
      expect(await store.save(req, headers, session)).toBe('deleted');
      const sent = onlyCookie(headers);
      expect(sent.value).toBe('');
      expect(sent.attributes['max-age']).toBe('0');
      expect(new Date(String(sent.attributes.expires)).getTime()).toBeLessThan(Date.now());
      expect(await docs.record(created.id)).toBeUndefined();

      session.options.maxAge = 3600;
      session.values.visits = 99;
      const commands = await backend.during(() => store.save(req, new Headers(), session));
      expect(commands).toEqual([]);
      expect(await docs.count()).toBe(0);
      expect(await load(store, cookie)).toMatchObject({ isNew: true, error: 'not-found' });
    }
  });

  it('destroy() ends the session like maxAge 0', async () => {
    const { store, docs } = await makeStore();
    const { cookie } = await createSession(store, { who: 'a' });
    const req = requestWith({ sid: cookie });
    const session = await store.get(req, 'sid');
    session.destroy();
    expect(await store.save(req, new Headers(), session)).toBe('deleted');
    expect(await docs.count()).toBe(0);
  });

  it('regenerate() issues a new id, keeps the values and retires the old id', async () => {
    const { store, docs } = await makeStore();
    const { cookie, session: created } = await createSession(store, { visits: 7 });
    const req = requestWith({ sid: cookie });
    const session = await store.get(req, 'sid');
    session.regenerate();
    session.values.user = 'alice';
    session.values.provider = 'password';
    const headers = new Headers();
    const commands = await backend.during(async () => {
      expect(await store.save(req, headers, session)).toBe('created');
    });
    // MongoDB: insert the new document, retire the old one while live; PostgreSQL: one statement.
    expect(commands).toEqual(backend.name === 'MongoDB' ? ['insert', 'update'] : ['other']);
    expect(session.id).not.toBe(created.id);
    // The old id is a short-lived replaced record: no data, no owner, not live.
    expect(await docs.record(created.id)).toMatchObject({ user: undefined, provider: undefined });
    expect(await docs.liveKeys()).toEqual([session.id]);
    const stale = await load(store, cookie);
    expect(stale).toMatchObject({ isNew: true, error: 'replaced', values: {} });
    const next = await load(store, onlyCookie(headers).value);
    expect(next.values).toEqual({ visits: 7, user: 'alice', provider: 'password' });
    expect(next.id).toBe(session.id);
  });

  it('rejects values over maxValuesBytes or not JSON-compatible, writing nothing', async () => {
    const { store, docs } = await makeStore({ maxValuesBytes: 1000 });
    const req = requestWith();
    const session = await store.get(req, 'sid');
    const values = session.values as Record<string, unknown>;
    values.blob = 'x'.repeat(1000);
    const headers = new Headers();
    await expect(store.save(req, headers, session)).rejects.toThrow(/more than maxValuesBytes \(1000\)/);
    for (const bad of [() => 1, Symbol('s'), 10n, Number.NaN, new Map(), new Date(Number.NaN)]) {
      values.blob = bad;
      await expect(store.save(req, headers, session)).rejects.toBeInstanceOf(SessionValuesError);
    }
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    values.blob = cyclic;
    await expect(store.save(req, headers, session)).rejects.toThrow(/cycle/);
    expect(await docs.count()).toBe(0);
    expect(headers.getSetCookie()).toEqual([]);
  });

  it('has a 1 MiB default limit', async () => {
    const { store } = await makeStore();
    const req = requestWith();
    const session = await store.get(req, 'sid');
    (session.values as Record<string, unknown>).blob = 'x'.repeat(1024 * 1024);
    await expect(store.save(req, new Headers(), session)).rejects.toThrow(/maxValuesBytes \(1048576\)/);
    (session.values as Record<string, unknown>).blob = 'x'.repeat(1024 * 1024 - 20);
    expect(await store.save(req, new Headers(), session)).toBe('created');
  });

  it('saveAll saves every session the request registered', async () => {
    const { store, docs } = await makeStore();
    const req = requestWith();
    (await store.get(req, 'a')).values.who = 'x';
    (await store.get(req, 'b')).values.visits = 1;
    await store.new(req, 'c'); // not registered
    const headers = new Headers();
    await store.saveAll(req, headers);
    expect(sentCookies(headers).map((c) => c.name)).toEqual(['a', 'b']);
    expect(await docs.count()).toBe(2);
  });
});

describe('values', () => {
  it('round-trips JSON values, Dates and hostile keys exactly, without touching prototypes', async () => {
    const { store, docs } = await makeStore();
    const hostile = JSON.parse(
      '{"$where":"sleep(1000)","$set":{"admin":true},"a.b":{"c.d":1},"__proto__":{"polluted":true},' +
        '"constructor":{"prototype":{"polluted":true}},"$date":5,"nested":[{"$gt":""},{"$$x":null}],' +
        '"$ref":"x","$id":1,"unicode":"é😀\\u0000"}',
    ) as Record<string, unknown>;
    const values = {
      ...hostile,
      when: new Date('2026-01-02T03:04:05.678Z'),
      dates: [new Date(0), { at: new Date(1) }],
      n: -12.5,
      big: 2 ** 53 - 1,
      t: true,
      nothing: null,
      empty: {},
      list: [],
    };
    const { cookie, session } = await createSession(store, values);
    const loaded = (await load(store, cookie)).values as Record<string, unknown>;
    expect(loaded).toEqual(values);
    // The same keys; their order is the database's (PostgreSQL's jsonb orders them its own way).
    expect(Object.keys(loaded).sort()).toEqual(Object.keys(values).sort());
    expect(Object.getOwnPropertyDescriptor(loaded, '__proto__')?.value).toEqual({ polluted: true });
    expect(loaded.when).toBeInstanceOf(Date);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('polluted');
    expect(await docs.record(session.id)).toMatchObject({ user: undefined, provider: undefined });
  });
});

describe('values round-trip (property)', () => {
  const hostileKey = fc.oneof(
    fc.string({ maxLength: 8 }),
    fc.constantFrom('$date', '$$date', '$ref', '$id', '$where', '$set', 'a.b', '.', '__proto__', 'constructor', 'prototype', 'user', 'provider'),
  );
  /** -0 is not JSON: JSON writes it as 0, so the property uses +0. */
  const number = fc.double({ noNaN: true, noDefaultInfinity: true }).map((n) => (Object.is(n, -0) ? 0 : n));
  const { value } = fc.letrec<{ value: unknown }>((tie) => ({
    value: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      fc.string({ unit: 'binary', maxLength: 12 }),
      number,
      fc.boolean(),
      fc.constant(null),
      fc.date({ noInvalidDate: true }),
      fc.array(tie('value'), { maxLength: 4 }),
      fc.dictionary(hostileKey, tie('value'), { maxKeys: 4, noNullPrototype: true }),
      // Objects that look like the tag the format uses for Dates.
      fc.oneof(number, fc.string(), fc.date({ noInvalidDate: true })).map((tagged) => ({ $date: tagged })),
    ),
  }));
  const values = fc
    .dictionary(hostileKey.filter((key) => key !== 'user' && key !== 'provider'), value, { maxKeys: 6, noNullPrototype: true })
    .map((record) => record as Partial<AppValues>);

  it('any JSON-compatible value with Dates and hostile keys comes back deep-equal', async () => {
    const { store } = await makeStore();
    await fc.assert(
      fc.asyncProperty(values, async (generated) => {
        const { cookie } = await createSession(store, generated);
        const loaded = (await load(store, cookie)).values;
        // toEqual, not toStrictEqual: the latter compares a `constructor` key as the class.
        expect(loaded).toEqual(generated);
      }),
      { seed: 20261123, numRuns: 150, interruptAfterTimeLimit: 30_000, markInterruptAsFailure: false },
    );
    expect(Object.prototype).not.toHaveProperty('polluted');
  }, 60_000);
});

describe('forced logout and metrics', () => {
  it('expireSessions removes every session of one user and provider in two commands (the second catches a racing regeneration)', async () => {
    const { store, docs } = await makeStore();
    const cookies: Record<string, string[]> = { alice: [], bob: [] };
    for (let i = 0; i < 30; i++) {
      const user = i % 3 === 0 ? 'alice' : 'bob';
      cookies[user]?.push((await createSession(store, { user, provider: 'password' })).cookie);
    }
    await createSession(store, { user: 'alice', provider: 'github' });
    let removed = 0;
    const commands = await backend.during(async () => {
      removed = await store.expireSessions('alice', 'password');
    });
    expect(commands).toEqual(['delete', 'delete']);
    expect(removed).toBe(10);
    expect(await docs.count()).toBe(21);
    for (const cookie of cookies.alice ?? []) {
      expect(await load(store, cookie)).toMatchObject({ isNew: true, error: 'not-found' });
    }
    expect((await load(store, cookies.bob?.[0] ?? '')).values.user).toBe('bob');
  });

  it('expireSessions refuses anything but non-empty strings, sending no command', async () => {
    const { store, docs } = await makeStore();
    await createSession(store, { user: 'alice', provider: 'password' });
    const hostile: unknown[] = [undefined, null, '', 1, {}, [], { $ne: null }, { $gt: '' }, ['alice'], 'x'.repeat(257)];
    for (const user of hostile) {
      for (const [u, p] of [[user, 'password'], ['alice', user]]) {
        const commands = await backend.during(async () => {
          await expect(store.expireSessions(u as string, p as string)).rejects.toBeInstanceOf(TypeError);
        });
        expect(commands).toEqual([]);
      }
    }
    expect(await docs.count()).toBe(1);
  });

  it('getActiveSessionsCount counts live sessions only, in one command', async () => {
    const { store, docs } = await makeStore();
    for (let i = 0; i < 12; i++) await createSession(store, { visits: i });
    await docs.expireAll();
    for (let i = 0; i < 5; i++) await createSession(store, { visits: i });
    let count = 0;
    const commands = await backend.during(async () => {
      count = await store.getActiveSessionsCount();
    });
    expect(commands).toEqual(['read']);
    expect(count).toBe(5);
    expect(await docs.count()).toBe(17);
  });
});

describe('schema', () => {
  it('is created lazily before the first command when init was not called, and only once', async () => {
    const { store } = await backend.sessionStore({ keyPairs: [k1] }, undefined, false);
    const first = await backend.during(() => store.getActiveSessionsCount());
    expect(first.at(-1)).toBe('read');
    expect(first.slice(0, -1).length).toBeGreaterThanOrEqual(1);
    // PostgreSQL reads the catalog first and creates only what is missing.
    expect(new Set(first.slice(0, -1))).toEqual(new Set(backend.name === 'MongoDB' ? ['schema'] : ['read', 'schema']));
    expect(await backend.during(() => store.getActiveSessionsCount())).toEqual(['read']);
    expect(await backend.during(() => store.init())).toEqual([]);
  });

  it('tolerates a schema that already exists', async () => {
    const place = uniquePlace();
    await makeStore({}, place);
    const { store } = await backend.sessionStore({ keyPairs: [k1] }, place, false);
    await expect(store.init()).resolves.toBeUndefined();
  });
});

describe('autoClean', () => {
  it('deletes expired sessions each tick and stops when the signal aborts', async () => {
    const { store, docs } = await makeStore();
    for (let i = 0; i < 3; i++) await createSession(store, {});
    await docs.expireAll();
    await createSession(store, {});

    const controller = new AbortController();
    const running = await backend.during(async () => {
      const loop = store.startAutoClean(controller.signal, 20);
      await expect.poll(() => docs.count(), { timeout: 5000 }).toBe(1);
      controller.abort();
      await loop;
    });
    expect(running.filter((kind) => kind === 'delete').length).toBeGreaterThanOrEqual(1);
    const afterStop = await backend.during(() => new Promise((resolve) => setTimeout(resolve, 100)));
    expect(afterStop).toEqual([]);
  });

  it('deletes in bounded batches: a tick runs batch after batch until one comes back short, and keeps live sessions; the first tick one interval after the call', async () => {
    const { store, docs } = await makeStore({ cleanupBatchSize: 10 });
    for (let i = 0; i < 25; i++) await docs.insertExpired(`expired-${i}`);
    const live = await createSession(store, { visits: 1 });
    const controller = new AbortController();
    const interval = 500;
    let firstTickAfter: number | undefined;
    const commands = await backend.during(async () => {
      const started = performance.now();
      const loop = store.startAutoClean(controller.signal, interval);
      // The end state, however late a loaded machine runs the first tick: its
      // three batches sent (watched in the command log: a read of the
      // database here would be logged too).
      await expect
        .poll(
          () => {
            const sent = backend.sentSoFar();
            if (sent.length > 0) firstTickAfter ??= performance.now() - started;
            return sent.filter((kind) => kind === 'delete').length;
          },
          { timeout: 10_000 + interval, interval: 5 },
        )
        .toBeGreaterThanOrEqual(3);
      controller.abort();
      await loop;
    });
    // Not at once: the first command came no earlier than one interval after
    // the call (a lower bound, which no load can break).
    expect(firstTickAfter).toBeGreaterThanOrEqual(interval - 5);
    // No other command before it; the first tick: batches of 10, 10 and 5
    // (MongoDB: a find of the ids, then their delete, and a later tick finds
    // nothing; PostgreSQL: one DELETE each). Each batch's own bound is tested
    // on its backend (test/mongo/session-collection.test.ts, test/postgres/cleanup.test.ts).
    if (backend.name === 'MongoDB') {
      expect(commands.slice(0, 6)).toEqual(['read', 'delete', 'read', 'delete', 'read', 'delete']);
      expect(commands.slice(6).every((kind) => kind === 'read')).toBe(true);
    } else {
      expect(commands.length).toBeGreaterThanOrEqual(3);
      expect(commands.every((kind) => kind === 'delete')).toBe(true);
    }
    expect(await docs.count()).toBe(1);
    expect(await docs.liveKeys()).toEqual([live.session.id]);
  });

  it('an abort stops a tick between batches: the loop resolves with expired sessions left, and sends nothing after', async () => {
    const { store, docs } = await makeStore({ cleanupBatchSize: 1 });
    const expired = 200;
    for (let i = 0; i < expired; i += 50) {
      await Promise.all(Array.from({ length: 50 }, (_, j) => docs.insertExpired(`expired-${i + j}`)));
    }
    const controller = new AbortController();
    const loop = store.startAutoClean(controller.signal, 10);
    // One batch of one deletes one session; 200 batches take far longer
    // than this 5 ms poll, so the abort lands inside the first tick.
    await expect.poll(() => docs.count(), { timeout: 10_000, interval: 5 }).toBeLessThan(expired);
    controller.abort();
    await loop;
    const left = await docs.count();
    expect(left).toBeGreaterThan(0);
    expect(await backend.during(() => new Promise((resolve) => setTimeout(resolve, 100)))).toEqual([]);
    expect(await docs.count()).toBe(left);
  });

  it('refuses a batch size that is not a whole number from 1 to 100,000', async () => {
    for (const cleanupBatchSize of [0, -1, 1.5, 100_001, Number.NaN, '10']) {
      await expect(backend.sessionStore({ keyPairs: [k1], cleanupBatchSize: cleanupBatchSize as number })).rejects.toThrow(SessionOptionsError);
    }
  });

  it('resolves at once, with no command, for an aborted signal', async () => {
    const { store } = await makeStore();
    const commands = await backend.during(() => store.startAutoClean(AbortSignal.abort(), 1));
    expect(commands).toEqual([]);
  });

  it('refuses a second loop on the same store while one runs, and allows one after', async () => {
    const { store } = await makeStore();
    const first = new AbortController();
    const loop = store.startAutoClean(first.signal, 1000);
    await expect(store.startAutoClean(new AbortController().signal, 1000)).rejects.toThrow(/already running/);
    first.abort();
    await loop;
    const second = new AbortController();
    const next = store.startAutoClean(second.signal, 1000);
    second.abort();
    await next;
  });

  it('refuses bad arguments, and an interval longer than a timer can wait (2^31 - 1 ms), with no command', async () => {
    const { store } = await makeStore();
    const commands = await backend.during(async () => {
      await expect(store.startAutoClean(undefined as never, 10)).rejects.toBeInstanceOf(TypeError);
      for (const interval of [0, -5, 2 ** 31, 30 * 24 * 3600 * 1000, Number.NaN]) {
        await expect(store.startAutoClean(new AbortController().signal, interval)).rejects.toBeInstanceOf(TypeError);
      }
    });
    expect(commands).toEqual([]);
  });

  it('refuses a timeoutMs a timer cannot keep and an onError that is not a function', async () => {
    for (const timeoutMs of [-1, 2 ** 31, Number.POSITIVE_INFINITY, Number.NaN]) {
      await expect(backend.sessionStore({ keyPairs: [k1], timeoutMs })).rejects.toThrow(SessionOptionsError);
    }
    await expect(backend.sessionStore({ keyPairs: [k1], timeoutMs: 2 ** 31 - 1 })).resolves.toBeDefined();
    await expect(backend.sessionStore({ keyPairs: [k1], onError: 'log' as never })).rejects.toThrow(SessionOptionsError);
  });

  it('reports failed ticks and carries on', async () => {
    const dead = backend.unreachable();
    const errors: unknown[] = [];
    const store = dead.sessions({ keyPairs: [k1], onError: (e) => errors.push(e) });
    const controller = new AbortController();
    const loop = store.startAutoClean(controller.signal, 5);
    await expect.poll(() => errors.length, { timeout: 5000 }).toBeGreaterThanOrEqual(3);
    controller.abort();
    await loop;
    expect(errors[0]).toBeInstanceOf(SessionStoreError);
    await dead.close();
  });
});

describe('database commands per call', () => {
  it('get: one command with a valid cookie; save: none when unchanged, one when changed', async () => {
    const { store } = await makeStore();
    const { cookie } = await createSession(store, { visits: 1 });
    const req = requestWith({ sid: cookie });
    let session: Session<AppValues> | undefined;
    expect(
      await backend.during(async () => {
        session = await store.get(req, 'sid');
      }),
    ).toEqual(['read']);
    const loaded = session as Session<AppValues>;

    const unchanged = new Headers();
    expect(await backend.during(() => store.save(req, unchanged, loaded))).toEqual([]);
    expect(unchanged.getSetCookie()).toEqual([]);

    loaded.values.visits = 2;
    const changed = new Headers();
    expect(await backend.during(() => store.save(req, changed, loaded))).toEqual(['update']);
    // The expiry did not move, so the browser's cookie stays as it is.
    expect(changed.getSetCookie()).toEqual([]);
    expect(await backend.during(() => store.save(req, new Headers(), loaded))).toEqual([]);

    expect(await backend.during(() => store.save(req, new Headers(), new Session('sid', { ...store.options })))).toEqual([
      'insert',
    ]);
  });

  it('refreshes the expiry once touchAfter has passed: one write and a new cookie consistent with it', async () => {
    const { store, docs } = await makeStore({ touchAfter: 60 });
    const { cookie, session: created } = await createSession(store, { visits: 1 });
    const twoMinutesAgo = new Date(Date.now() + 30 * day * 1000 - 120_000);
    await docs.setExpiry(created.id, twoMinutesAgo);

    const req = requestWith({ sid: cookie });
    const session = await store.get(req, 'sid');
    const headers = new Headers();
    const commands = await backend.during(async () => {
      expect(await store.save(req, headers, session)).toBe('updated');
    });
    expect(commands).toEqual(['update']);
    const doc = await docs.record(created.id);
    const sent = onlyCookie(headers);
    const expires = new Date(String(sent.attributes.expires)).getTime();
    expect(Math.abs(expires - (doc?.expiresAt.getTime() ?? 0))).toBeLessThan(1000);
    expect(Number(sent.attributes['max-age'])).toBeGreaterThan(30 * day - 5);
    expect((await load(store, sent.value)).values).toEqual({ visits: 1 });
  });

  it('never refreshes more often than half of maxAge allows', async () => {
    const { store, docs } = await makeStore({ touchAfter: 3600, options: { maxAge: 100 } });
    const { cookie, session: created } = await createSession(store, {});
    await docs.setExpiry(created.id, new Date(Date.now() + 40_000));
    const req = requestWith({ sid: cookie });
    const session = await store.get(req, 'sid');
    expect(await backend.during(() => store.save(req, new Headers(), session))).toEqual(['update']);
  });
});

describe('key rotation', () => {
  it('moves from [k1] to [k2, k1] to [k2]: re-sealed cookies survive, the others become fresh', async () => {
    const place = uniquePlace();
    const v1 = (await makeStore({ keyPairs: [k1] }, place)).store;
    const v2 = (await makeStore({ keyPairs: [k2, k1] }, place)).store;
    const v3 = (await makeStore({ keyPairs: [k2] }, place)).store;

    const returning = await createSession(v1, { who: 'returns' });
    const away = await createSession(v1, { who: 'away' });

    // During the rotation: old cookies still work, and saving re-seals them with k2
    // with one refresh write, which also checks the session is still live.
    const req = requestWith({ sid: returning.cookie });
    const session = await v2.get(req, 'sid');
    expect(session.values.who).toBe('returns');
    const headers = new Headers();
    const commands = await backend.during(async () => {
      expect(await v2.save(req, headers, session)).toBe('updated');
    });
    expect(commands).toEqual(['update']);
    // Re-sealed once: the next save of it writes nothing.
    expect(await backend.during(() => v2.save(req, new Headers(), session))).toEqual([]);
    const resealed = onlyCookie(headers).value;
    expect(resealed).not.toBe(returning.cookie);
    expect((await load(v2, away.cookie)).values.who).toBe('away');

    // After it: only re-sealed cookies still work.
    expect((await load(v3, resealed)).values.who).toBe('returns');
    expect(await load(v3, away.cookie)).toMatchObject({ isNew: true, error: 'unknown-key' });
    expect(await load(v1, resealed)).toMatchObject({ isNew: true, error: 'unknown-key' });
  });

  it('keeps cookies valid when a pair is added in front or the list is reordered', async () => {
    const place = uniquePlace();
    const k3 = { authentication: 'a passphrase of at least thirty-two characters' };
    const before = (await makeStore({ keyPairs: [k1, k3] }, place)).store;
    const after = (await makeStore({ keyPairs: [k2, k3, k1] }, place)).store;
    const { cookie } = await createSession(before, { who: 'x' });
    expect((await load(after, cookie)).values.who).toBe('x');
  });
});

describe('signed-out sessions never come back (regenerate after a logout)', () => {
  /** A session of alice, loaded by a request that will regenerate it later. */
  async function inFlight(store: SessionStore<AppValues>) {
    const { cookie, session: created } = await createSession(store, { user: 'alice', provider: 'password', visits: 1 });
    const req = requestWith({ sid: cookie });
    const session = await store.get(req, 'sid');
    return { cookie, created, req, session };
  }

  const logouts = {
    'a forced logout': async (store: SessionStore<AppValues>) => void (await store.expireSessions('alice', 'password')),
    'a destroy() saved by another request': async (store: SessionStore<AppValues>, cookie: string) => {
      const req = requestWith({ sid: cookie });
      const other = await store.get(req, 'sid');
      other.destroy();
      expect(await store.save(req, new Headers(), other)).toBe('deleted');
    },
    'expiry': async (_store: SessionStore<AppValues>, _cookie: string, docs: RawPlace, id: string) =>
      docs.setExpiry(id, new Date(Date.now() - 1000)),
  };

  it.each(Object.keys(logouts))('a regenerating save after %s resolves expired, expires the cookie and leaves nothing live', async (which) => {
    const { store, docs } = await makeStore();
    const { cookie, created, req, session } = await inFlight(store);
    await logouts[which as keyof typeof logouts](store, cookie, docs, created.id);

    session.regenerate();
    session.values.visits = 2;
    const headers = new Headers();
    expect(await store.save(req, headers, session)).toBe('expired');
    const sent = onlyCookie(headers);
    expect(sent.value).toBe('');
    expect(sent.attributes['max-age']).toBe('0');
    expect(await docs.countLive()).toBe(0);
    expect(await store.getActiveSessionsCount()).toBe(0);
    // Terminal: saving it again writes nothing.
    expect(await backend.during(() => store.save(req, new Headers(), session))).toEqual([]);
    expect(await load(store, cookie)).toMatchObject({ isNew: true });
  });

  it('saveAll after a forced logout brings nothing back either', async () => {
    const { store, docs } = await makeStore();
    const { req, session } = await inFlight(store);
    await store.expireSessions('alice', 'password');
    session.regenerate();
    const headers = new Headers();
    await store.saveAll(req, headers);
    expect(onlyCookie(headers).value).toBe('');
    expect(await docs.countLive()).toBe(0);
  });

  it('a regenerating save still costs two commands when it succeeds (MongoDB) or one statement (PostgreSQL)', async () => {
    const { store, docs } = await makeStore();
    const { created, req, session } = await inFlight(store);
    session.regenerate();
    const commands = await backend.during(() => store.save(req, new Headers(), session));
    expect(commands).toEqual(backend.name === 'MongoDB' ? ['insert', 'update'] : ['other']);
    expect(await docs.liveKeys()).toEqual([session.id]);
    expect(session.id).not.toBe(created.id);
  });

  it('a regenerating save racing a forced logout leaves no live session of the user, whatever the timing', async () => {
    for (let round = 0; round < 20; round++) {
      const { store, docs } = await makeStore();
      const { created, req, session } = await inFlight(store);
      session.regenerate();
      const [outcome] = await Promise.all([
        store.save(req, new Headers(), session),
        store.expireSessions('alice', 'password'),
      ]);
      // The old id is dead either way (deleted, or a replaced tombstone). When the logout won,
      // nothing at all is live; when the regeneration won, at most its new id is.
      expect(await docs.liveKeys()).not.toContain(created.id);
      if (outcome === 'expired') expect(await docs.countLive()).toBe(0);
      else expect((await docs.liveKeys()).filter((key) => key !== session.id)).toEqual([]);
      // A logout that starts after both have settled leaves nothing.
      await store.expireSessions('alice', 'password');
      expect(await docs.countLive()).toBe(0);
    }
  });
});

describe('keys that pass the constructor work', () => {
  it.each([
    ['a 64-byte authentication key alone', { authentication: new Uint8Array(randomBytes(64)) }],
    ['64-byte keys for both', { authentication: new Uint8Array(randomBytes(64)), encryption: new Uint8Array(randomBytes(64)) }],
    ['one 32-byte key alone', { authentication: randomKey() }],
    ['the same 32 bytes for both', (() => { const key = randomKey(); return { authentication: key, encryption: key }; })()],
    ['passphrases', { authentication: 'correct horse battery staple 2024', encryption: 'a different passphrase of 32+ chars' }],
  ])('%s: save, load and re-save', async (_, pair) => {
    const { store } = await makeStore({ keyPairs: [pair] });
    const { cookie } = await createSession(store, { visits: 1 });
    const req = requestWith({ sid: cookie });
    const session = await store.get(req, 'sid');
    expect(session.values.visits).toBe(1);
    session.regenerate();
    expect(await store.save(req, new Headers(), session)).toBe('created');
  });

  it('refuses trivially weak keys', async () => {
    const weak: unknown[] = [
      new Uint8Array(32),
      new Uint8Array(32).fill(7),
      'a'.repeat(32),
      'abcd'.repeat(8),
      Uint8Array.from({ length: 32 }, (_, i) => i),
      'password'.repeat(4),
    ];
    for (const key of weak) {
      await expect(backend.sessionStore({ keyPairs: [{ authentication: key as Uint8Array }] })).rejects.toThrow(
        /not a secret/,
      );
      await expect(
        backend.sessionStore({ keyPairs: [{ authentication: randomKey(), encryption: key as Uint8Array }] }),
      ).rejects.toBeInstanceOf(SessionOptionsError);
    }
  });
});

describe('everything is validated before anything is written', () => {
  it.each([
    ['a path with ;', { path: '/; Domain=evil.example' }],
    ['a path with a control character', { path: '/a\nb' }],
    ['a path not starting with /', { path: 'app' }],
    ['a domain with ;', { domain: 'example.com; Secure' }],
    ['a domain with a space', { domain: 'exa mple.com' }],
    ['maxAge Infinity', { maxAge: Number.POSITIVE_INFINITY }],
    ['maxAge 1e13', { maxAge: 1e13 }],
    ['maxAge over 400 days', { maxAge: 401 * day }],
    ['maxAge 0 as the default', { maxAge: 0 }],
    ['secure as a string', { secure: 'yes' }],
  ])('refuses %s in the store options', async (_, options) => {
    await expect(
      backend.sessionStore({ keyPairs: [k1], options: options as unknown as SessionStoreConfig['options'] }),
    ).rejects.toBeInstanceOf(SessionOptionsError);
  });

  it.each([
    ['a path with ;', { path: '/; Domain=evil.example' }],
    ['a domain with a control character', { domain: 'a\u0001.example' }],
    ['maxAge Infinity', { maxAge: Number.POSITIVE_INFINITY }],
    ['maxAge 1e13', { maxAge: 1e13 }],
  ])('a session with %s: save throws SessionOptionsError and writes nothing, new or regenerated', async (_, options) => {
    const { store, docs } = await makeStore();
    const fresh = await store.get(requestWith(), 'sid');
    fresh.values.visits = 1;
    Object.assign(fresh.options, options);
    const headers = new Headers();
    expect(
      await backend.during(() => expect(store.save(requestWith(), headers, fresh)).rejects.toBeInstanceOf(SessionOptionsError)),
    ).toEqual([]);

    const { cookie } = await createSession(store, { visits: 1 });
    const req = requestWith({ sid: cookie });
    const loaded = await store.get(req, 'sid');
    loaded.regenerate();
    Object.assign(loaded.options, options);
    expect(
      await backend.during(() => expect(store.save(req, headers, loaded)).rejects.toBeInstanceOf(SessionOptionsError)),
    ).toEqual([]);
    expect(headers.getSetCookie()).toEqual([]);
    expect(await docs.count()).toBe(1);
  });
});

describe('owner fields: one rule on save and on expireSessions', () => {
  const refused: [string, Record<string, unknown>][] = [
    ['a user with NUL', { user: 'ali\u0000ce', provider: 'password' }],
    ['a 3,000-character user', { user: 'u'.repeat(3000), provider: 'password' }],
    ['a 257-character provider', { user: 'alice', provider: 'p'.repeat(257) }],
    ['a numeric user', { user: 42, provider: 'password' }],
    ['an empty user', { user: '', provider: 'password' }],
    ['a lone surrogate', { user: 'a\ud800', provider: 'password' }],
    ['a user without a provider', { user: 'alice' }],
    ['a provider without a user', { provider: 'password' }],
  ];

  it.each(refused)('%s: SessionValuesError on save, nothing written', async (_, values) => {
    const { store, docs } = await makeStore();
    const req = requestWith();
    const session = await store.get(req, 'sid');
    session.values = { ...values };
    const headers = new Headers();
    expect(
      await backend.during(() => expect(store.save(req, headers, session)).rejects.toBeInstanceOf(SessionValuesError)),
    ).toEqual([]);
    expect(headers.getSetCookie()).toEqual([]);
    expect(await docs.count()).toBe(0);
  });

  it('the longest allowed owner (256 characters each, non-ASCII) is stored and can be force-expired', async () => {
    const { store, docs } = await makeStore();
    const user = '\u{1F600}'.repeat(128); // 256 UTF-16 units, 512 UTF-8 bytes
    const provider = 'é'.repeat(256);
    await createSession(store, { user, provider });
    await createSession(store, { user, provider });
    expect(await store.expireSessions(user, provider)).toBe(2);
    expect(await docs.count()).toBe(0);
  });

  it('expireSessions refuses what save refuses', async () => {
    const { store } = await makeStore();
    for (const user of ['ali\u0000ce', 'u'.repeat(257), 'a\ud800']) {
      await expect(store.expireSessions(user, 'password')).rejects.toBeInstanceOf(TypeError);
    }
  });
});

describe('what a new user hits first', () => {
  it('flashes live outside values: not in its type, not in its JSON, still stored', async () => {
    const { store } = await makeStore();
    const req = requestWith();
    const session = await store.get(req, 'sid');
    session.values.visits = 1;
    session.addFlash('Welcome!');
    expect(JSON.stringify(session.values)).toBe('{"visits":1}');
    const headers = new Headers();
    await store.save(req, headers, session);
    const next = await load(store, onlyCookie(headers).value);
    expect(next.values).toEqual({ visits: 1 });
    expect(next.flashes()).toEqual(['Welcome!']);
  });

  it('plain save does not store a new session that is still empty (saveUninitialized defaults to false)', async () => {
    const { store, docs } = await makeStore({ saveUninitialized: false });
    const req = requestWith();
    const session = await store.get(req, 'sid');
    const headers = new Headers();
    expect(await backend.during(async () => expect(await store.save(req, headers, session)).toBe('unchanged'))).toEqual([]);
    expect(headers.getSetCookie()).toEqual([]);
    expect(await docs.count()).toBe(0);
    session.addFlash('a flash is something to keep');
    expect(await store.save(req, headers, session)).toBe('created');
    expect(await docs.count()).toBe(1);
  });

  describe('dead cookies are cleared by the response that first sees them', () => {
    const reasons = {
      malformed: () => Promise.resolve('garbage'),
      tampered: async (store: SessionStore<AppValues>) => {
        const { cookie } = await createSession(store, { visits: 1 });
        const parts = cookie.split('*');
        parts[4] = `${parts[4]?.slice(0, -2)}AA`;
        return parts.join('*');
      },
      'unknown-key': async () => {
        const { store: other } = await makeStore({ keyPairs: [k2] });
        return (await createSession(other, { visits: 1 })).cookie;
      },
      'wrong-name': async (store: SessionStore<AppValues>) => (await createSession(store, { visits: 1 }, 'other')).cookie,
      'not-found': async (store: SessionStore<AppValues>, docs: RawPlace) => {
        const { cookie, session } = await createSession(store, { visits: 1 });
        await docs.remove(session.id);
        return cookie;
      },
    };

    it.each(Object.keys(reasons))('%s: one clearing cookie, no write, also when the session stays unsaved', async (reason) => {
      const { store, docs } = await makeStore({ saveUninitialized: false });
      const cookie = await reasons[reason as keyof typeof reasons](store, docs);
      const before = await docs.count();
      const req = requestWith({ sid: cookie });
      const session = await store.get(req, 'sid');
      expect(session.error).toBe(reason);
      const headers = new Headers();
      expect(await backend.during(() => store.save(req, headers, session))).toEqual([]);
      const sent = onlyCookie(headers);
      expect(sent).toMatchObject({ name: 'sid', value: '' });
      expect(sent.attributes['max-age']).toBe('0');
      expect(await docs.count()).toBe(before);
      // Cleared once: a second save of the same session sends nothing more.
      const again = new Headers();
      await store.save(req, again, session);
      expect(again.getSetCookie()).toEqual([]);
    });

    it('a dead cookie is replaced, not cleared, when the fresh session is stored', async () => {
      const { store } = await makeStore();
      const req = requestWith({ sid: 'garbage' });
      const session = await store.get(req, 'sid');
      session.values.visits = 1;
      const headers = new Headers();
      expect(await store.save(req, headers, session)).toBe('created');
      expect(onlyCookie(headers).value).toMatch(/^Fe26/);
    });

    it('a cookie whose session a parallel request just regenerated is neither cleared nor replaced', async () => {
      const { store, docs } = await makeStore();
      const { cookie } = await createSession(store, { visits: 1 });
      const signIn = requestWith({ sid: cookie });
      const session = await store.get(signIn, 'sid');
      session.regenerate();
      await store.save(signIn, new Headers(), session);

      const parallel = requestWith({ sid: cookie });
      const stale = await store.get(parallel, 'sid');
      expect(stale).toMatchObject({ isNew: true, error: 'replaced' });
      stale.values.visits = 99;
      const headers = new Headers();
      expect(await backend.during(async () => expect(await store.save(parallel, headers, stale)).toBe('superseded'))).toEqual([]);
      expect(headers.getSetCookie()).toEqual([]);
      expect(await docs.liveKeys()).toEqual([session.id]);
    });
  });

  it('destroy() then new(): the fresh session is saved after the destroyed one, so a flash reaches the next page; one Set-Cookie', async () => {
    const { store, docs } = await makeStore({ saveUninitialized: false });
    const { cookie, session: created } = await createSession(store, { user: 'alice', provider: 'password' });
    const req = requestWith({ sid: cookie });
    const session = await store.get(req, 'sid');
    session.destroy();
    const fresh = await store.new(req, 'sid');
    expect(fresh).not.toBe(session);
    expect(fresh).toMatchObject({ isNew: true, id: '', values: {} });
    fresh.addFlash('You are signed out');
    const headers = new Headers();
    await store.saveAll(req, headers);
    // RFC 6265 4.1.1: one Set-Cookie per name, the fresh session's (no clearing one before it).
    const next = onlyCookie(headers);
    expect(next.value).toMatch(/^Fe26/);
    expect(await docs.record(created.id)).toBeUndefined();
    expect((await load(store, next.value)).flashes()).toEqual(['You are signed out']);
  });

  it('new() without a destroyed session still decodes the cookie afresh', async () => {
    const { store } = await makeStore();
    const { cookie } = await createSession(store, { visits: 3 });
    const req = requestWith({ sid: cookie });
    await store.get(req, 'sid');
    expect((await store.new(req, 'sid')).values).toEqual({ visits: 3 });
  });
});

describe('what the outside review of the first fix found', () => {
  it('a re-seal during a rotation does not hand back an id a parallel sign-in replaced', async () => {
    const place = uniquePlace();
    const { store: before } = await makeStore({ keyPairs: [k1] }, place);
    const { store: rotating } = await makeStore({ keyPairs: [k2, k1] }, place);
    const { cookie } = await createSession(before, { visits: 1 });
    const [signIn, parallel] = [requestWith({ sid: cookie }), requestWith({ sid: cookie })];
    const stale = await rotating.get(parallel, 'sid');
    const session = await rotating.get(signIn, 'sid');
    session.regenerate();
    expect(await rotating.save(signIn, new Headers(), session)).toBe('created');
    const headers = new Headers();
    expect(await rotating.save(parallel, headers, stale)).toBe('superseded');
    expect(headers.getSetCookie()).toEqual([]);
  });

  it('a save whose cookie target throws can be retried: the cookie is sent then, riding a guarded write', async () => {
    const { store } = await makeStore();
    const { cookie } = await createSession(store, { visits: 1 });
    const req = requestWith({ sid: cookie });
    const session = await store.get(req, 'sid');
    session.regenerate();
    await expect(store.save(req, new ImmutableHeaders(), session)).rejects.toThrow(TypeError);
    const headers = new Headers();
    // No cookie without a write that found the session live.
    expect(await backend.during(async () => expect(await store.save(req, headers, session)).toBe('unchanged'))).toEqual(['update']);
    const sent = onlyCookie(headers);
    expect((await load(store, sent.value)).id).toBe(session.id);
    // Delivered: a third save sends nothing and no command.
    const again = new Headers();
    expect(await backend.during(() => store.save(req, again, session))).toEqual([]);
    expect(again.getSetCookie()).toEqual([]);
  });

  it('a retried cookie is not sent for an id a parallel sign-in replaced meanwhile', async () => {
    const { store, docs } = await makeStore();
    const { cookie } = await createSession(store, { visits: 1 });
    const req = requestWith({ sid: cookie });
    const session = await store.get(req, 'sid');
    session.values.visits = 2;
    session.options.maxAge = 7200; // a refresh: a cookie to send
    await expect(store.save(req, new ImmutableHeaders(), session)).rejects.toThrow(TypeError);
    const signIn = await load(store, cookie);
    signIn.regenerate();
    signIn.values.user = 'alice';
    signIn.values.provider = 'password';
    expect(await store.save(requestWith(), new Headers(), signIn)).toBe('created');
    const headers = new Headers();
    expect(await store.save(req, headers, session)).toBe('superseded');
    expect(headers.getSetCookie()).toEqual([]);
    expect(await docs.liveKeys()).toEqual([signIn.id]);
  });

  it('reads the options once: a getter cannot pass validation and then write another value', async () => {
    const { store, docs } = await makeStore();
    const req = requestWith();
    const session = await store.get(req, 'sid');
    session.values.visits = 1;
    let reads = 0;
    Object.defineProperty(session.options, 'maxAge', { get: () => (++reads <= 1 ? 3600 : 1e11), enumerable: true, configurable: true });
    expect(await store.save(req, new Headers(), session)).toBe('created');
    expect(((await docs.record(session.id))?.expiresAt.getTime() ?? 0) - Date.now()).toBeLessThanOrEqual(3600_000);
  });

  it('refuses a session id changed into anything but an id it gave, sending no command', async () => {
    const { store, docs } = await makeStore();
    const { cookie } = await createSession(store, { visits: 1 });
    await createSession(store, { visits: 2 });
    const req = requestWith({ sid: cookie });
    const session = await store.get(req, 'sid');
    for (const id of [{ $ne: session.id }, 'short', `${session.id}x`]) {
      session.id = id as unknown as string;
      session.values.visits = 9;
      expect(await backend.during(() => expect(store.save(req, new Headers(), session)).rejects.toBeInstanceOf(SessionOptionsError))).toEqual([]);
    }
    expect(await docs.count()).toBe(2);
  });

  it('refuses values that are not a plain object, and a save of something that is not a Session', async () => {
    const { store, docs } = await makeStore();
    const req = requestWith();
    const session = await store.get(req, 'sid');
    for (const values of [[1, 2], 'text', 5, null]) {
      session.values = values as unknown as Partial<AppValues>;
      await expect(store.save(req, new Headers(), session)).rejects.toBeInstanceOf(SessionValuesError);
    }
    await expect(store.save(req, new Headers(), { values: {} } as unknown as Session<AppValues>)).rejects.toThrow(/must be a Session/);
    expect(await docs.count()).toBe(0);
  });

  it('refuses unknown and prototype-setting option keys', async () => {
    await expect(makeStore({ options: { maxage: 60 } as unknown as SessionStoreConfig['options'] })).rejects.toThrow(/unknown session option "maxage"/);
    await expect(
      makeStore({ options: JSON.parse('{"__proto__":{"domain":"evil.example"}}') as SessionStoreConfig['options'] }),
    ).rejects.toBeInstanceOf(SessionOptionsError);
  });

  it('refuses a key used as one pair\'s authentication key and another\'s encryption key', async () => {
    const a = randomKey();
    const b = randomKey();
    await expect(
      makeStore({ keyPairs: [{ authentication: a, encryption: b }, { authentication: b, encryption: a }] }),
    ).rejects.toThrow(/authentication key of one pair and the encryption key of another/);
  });

  it('keeps its own copy of the keys: zeroing the caller\'s buffers changes nothing', async () => {
    const authentication = randomKey();
    const encryption = randomKey();
    const place = uniquePlace();
    const { store } = await makeStore({ keyPairs: [{ authentication, encryption }] }, place);
    const { store: witness } = await makeStore({ keyPairs: [{ authentication: authentication.slice(), encryption: encryption.slice() }] }, place);
    authentication.fill(0);
    encryption.fill(0);
    const { cookie } = await createSession(store, { visits: 1 });
    expect(await witness.get(requestWith({ sid: cookie }), 'sid')).toMatchObject({ isNew: false, values: { visits: 1 } });
  });
});

describe('parallel requests: no lost updates', () => {
  it('50 parallel requests each setting its own key on one session leave all 50 keys', async () => {
    const { store } = await makeStore();
    const { cookie } = await createSession(store, { visits: 1 });
    const requests = Array.from({ length: 50 }, () => requestWith({ sid: cookie }));
    // All 50 load before any saves: every save but the first meets a newer version.
    const sessions = await Promise.all(requests.map((req) => store.get(req, 'sid')));
    const outcomes = await backend.saveConcurrently(
      sessions.map((session, i) => () => {
        (session.values as Record<string, unknown>)[`k${i}`] = i;
        return store.save(requests[i] as Request, new Headers(), session);
      }),
    );
    expect(outcomes.every((outcome) => outcome === 'updated')).toBe(true);
    const final = (await load(store, cookie)).values as Record<string, unknown>;
    expect(Object.keys(final).sort()).toEqual(['visits', ...Array.from({ length: 50 }, (_, i) => `k${i}`)].sort());
    for (let i = 0; i < 50; i++) expect(final[`k${i}`]).toBe(i);
  }, 60_000);

  /** Two requests that loaded the same session before either saved. */
  async function twoRequests(store: SessionStore<AppValues>, values: Partial<AppValues> & Record<string, unknown>) {
    const { cookie } = await createSession(store, values);
    const [a, b] = [requestWith({ sid: cookie }), requestWith({ sid: cookie })];
    return { cookie, a: { req: a, session: await store.get(a, 'sid') }, b: { req: b, session: await store.get(b, 'sid') } };
  }

  it('merges per top-level key: disjoint changes and removals both survive, the same key takes the later save', async () => {
    const { store } = await makeStore();
    const { cookie, a, b } = await twoRequests(store, { visits: 1, keep: 'x', drop: 'y', same: 0 });
    Object.assign(b.session.values, { theme: 'dark', same: 'b' });
    expect(await store.save(b.req, new Headers(), b.session)).toBe('updated');
    const values = a.session.values as Record<string, unknown>;
    values.visits = 2;
    values.same = 'a';
    delete values.drop;
    const commands = await backend.during(async () => expect(await store.save(a.req, new Headers(), a.session)).toBe('updated'));
    // A delta needs no compare-and-set: a parallel write costs nothing extra.
    expect(commands).toEqual(['update']);
    expect(await backend.during(() => store.save(a.req, new Headers(), a.session))).toEqual([]);
    expect((await load(store, cookie)).values).toEqual({ visits: 2, keep: 'x', same: 'a', theme: 'dark' });
    expect(a.session.values).toEqual({ visits: 2, keep: 'x', same: 'a' }); // the request's own values: not re-read
  });

  it('a flash added by one request and read by another is neither lost nor shown twice', async () => {
    const { store } = await makeStore();
    const { cookie } = await createSession(store, { visits: 1 });
    const seed = await load(store, cookie);
    seed.addFlash('old news');
    await store.save(requestWith(), new Headers(), seed);

    const [reader, writer] = [requestWith({ sid: cookie }), requestWith({ sid: cookie })];
    const read = await store.get(reader, 'sid');
    const write = await store.get(writer, 'sid');
    write.addFlash('fresh news');
    expect(await store.save(writer, new Headers(), write)).toBe('updated');
    expect(read.flashes()).toEqual(['old news']); // shown by this request
    expect(await store.save(reader, new Headers(), read)).toBe('updated');

    const next = await load(store, cookie);
    expect(next.flashes()).toEqual(['fresh news']);
  });

  it('a regeneration carries over a parallel change saved before it', async () => {
    const { store, docs } = await makeStore();
    const { a, b } = await twoRequests(store, { visits: 1 });
    b.session.values.visits = 5;
    (b.session.values as Record<string, unknown>).cart = ['apple'];
    await store.save(b.req, new Headers(), b.session);
    a.session.regenerate();
    Object.assign(a.session.values, { user: 'alice', provider: 'password' });
    const headers = new Headers();
    expect(await store.save(a.req, headers, a.session)).toBe('created');
    expect(await docs.liveKeys()).toEqual([a.session.id]);
    expect((await load(store, onlyCookie(headers).value)).values).toEqual({ visits: 5, cart: ['apple'], user: 'alice', provider: 'password' });
  });

  it('after a regeneration, a parallel request on the old id neither signs the browser out nor reaches the new session', async () => {
    const { store, docs } = await makeStore();
    const { cookie, a, b } = await twoRequests(store, { visits: 1 });
    a.session.regenerate();
    Object.assign(a.session.values, { user: 'alice', provider: 'password' });
    expect(await store.save(a.req, new Headers(), a.session)).toBe('created');
    b.session.values.visits = 9;
    const headers = new Headers();
    expect(await store.save(b.req, headers, b.session)).toBe('superseded');
    expect(headers.getSetCookie()).toEqual([]); // no clearing cookie that could land after the new one
    expect(await load(store, cookie)).toMatchObject({ isNew: true, error: 'replaced', values: {} });
    expect(await docs.liveKeys()).toEqual([a.session.id]);
  });

  it('two parallel regenerations of one session leave exactly one live session, and no clearing cookie', async () => {
    const { store, docs } = await makeStore();
    const { a, b } = await twoRequests(store, { visits: 1 });
    a.session.regenerate();
    b.session.regenerate();
    const [ha, hb] = [new Headers(), new Headers()];
    const outcomes = await backend.saveConcurrently([() => store.save(a.req, ha, a.session), () => store.save(b.req, hb, b.session)]);
    expect(outcomes.sort()).toEqual(['created', 'superseded']);
    expect(await docs.liveKeys()).toHaveLength(1);
    expect([...ha.getSetCookie(), ...hb.getSetCookie()].filter((line) => line.startsWith('sid=;'))).toEqual([]);
  });
});

describe('what the second outside review found', () => {
  it('a browser whose sign-in cookie never arrived can still sign in on the replaced id', async () => {
    const { store, docs } = await makeStore();
    const { cookie } = await createSession(store, { visits: 1 });
    const lost = requestWith({ sid: cookie });
    const session = await store.get(lost, 'sid');
    session.regenerate();
    await store.save(lost, new Headers(), session); // the response never reaches the browser
    const retry = requestWith({ sid: cookie });
    const fresh = await store.get(retry, 'sid');
    expect(fresh.error).toBe('replaced');
    fresh.regenerate(); // a sign-in
    Object.assign(fresh.values, { user: 'alice', provider: 'password' });
    const headers = new Headers();
    expect(await store.save(retry, headers, fresh)).toBe('created');
    expect((await load(store, onlyCookie(headers).value)).values).toMatchObject({ user: 'alice' });
    expect(await docs.liveKeys()).toContain(fresh.id);
  });

  it('a session on the default lifetime follows a later change of the default; one with its own keeps it', async () => {
    const place = uniquePlace();
    const { store: before } = await makeStore({ options: { maxAge: 30 * day } }, place);
    const plain = await createSession(before, { visits: 1 });
    const req = requestWith();
    const remembered = await before.get(req, 'sid');
    remembered.values.visits = 2;
    remembered.options.maxAge = 90 * day;
    const headers = new Headers();
    await before.save(req, headers, remembered);
    const { store: after } = await makeStore({ options: { maxAge: 3600 } }, place);
    expect((await load(after, plain.cookie)).options.maxAge).toBe(3600);
    expect((await load(after, onlyCookie(headers).value)).options.maxAge).toBe(90 * day);
  });

  it('get gives a fresh session once the absolute lifetime is over, without waiting for a save', async () => {
    const place = uniquePlace();
    const { store: unlimited } = await makeStore({}, place);
    const { cookie } = await createSession(unlimited, { visits: 1 });
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const { store: limited } = await makeStore({ absoluteMaxAge: 1 }, place);
    expect(await load(limited, cookie)).toMatchObject({ isNew: true, error: 'not-found' });
  });

  it('destroy() then new(): saving the fresh one by hand saves the destroyed one first; new() again gives the same', async () => {
    const { store, docs } = await makeStore({ saveUninitialized: false });
    const { cookie, session: created } = await createSession(store, { user: 'alice', provider: 'password' });
    const req = requestWith({ sid: cookie });
    const session = await store.get(req, 'sid');
    session.destroy();
    const fresh = await store.new(req, 'sid');
    expect(await store.new(req, 'sid')).toBe(fresh);
    fresh.addFlash('bye');
    const headers = new Headers();
    expect(await store.save(req, headers, fresh)).toBe('created');
    expect(sentCookies(headers).map((sent) => sent.value === '')).toEqual([false]);
    expect(await docs.record(created.id)).toBeUndefined();
    expect(await docs.liveKeys()).toEqual([fresh.id]);
  });

  it('a destroy through a target that throws sends the clearing cookie on the retry', async () => {
    const { store } = await makeStore();
    const { cookie } = await createSession(store, { visits: 1 });
    const req = requestWith({ sid: cookie });
    const session = await store.get(req, 'sid');
    session.destroy();
    await expect(store.save(req, new ImmutableHeaders(), session)).rejects.toThrow(TypeError);
    const headers = new Headers();
    expect(await store.save(req, headers, session)).toBe('deleted');
    expect(onlyCookie(headers).value).toBe('');
  });

  it('flash keys named like Object.prototype members are plain keys', async () => {
    const { store } = await makeStore();
    const req = requestWith();
    const session = await store.get(req, 'sid');
    expect(session.flashes('toString')).toEqual([]);
    session.addFlash('a', 'constructor');
    session.addFlash('b', '__proto__');
    const headers = new Headers();
    await store.save(req, headers, session);
    const next = await load(store, onlyCookie(headers).value);
    expect(next.flashes('constructor')).toEqual(['a']);
    expect(next.flashes('__proto__')).toEqual(['b']);
  });

  it('a new session whose values are only undefined is still empty: not stored', async () => {
    const { store, docs } = await makeStore({ saveUninitialized: false });
    const req = requestWith();
    const session = await store.get(req, 'sid');
    (session.values as Record<string, unknown>).a = undefined;
    expect(await store.save(req, new Headers(), session)).toBe('unchanged');
    expect(await docs.count()).toBe(0);
  });

  it('destroy(), new(), destroy() again: the signed-in session is deleted, one clearing cookie', async () => {
    const { store, docs } = await makeStore({ saveUninitialized: false });
    const { cookie } = await createSession(store, { user: 'alice', provider: 'password' });
    const req = requestWith({ sid: cookie });
    (await store.get(req, 'sid')).destroy();
    const fresh = await store.new(req, 'sid');
    fresh.destroy();
    const headers = new Headers();
    await store.saveAll(req, headers);
    expect(onlyCookie(headers).value).toBe('');
    expect(await docs.count()).toBe(0);
    expect((await load(store, cookie)).isNew).toBe(true);
  });

  it('a sign-out without a flash sends the one clearing cookie', async () => {
    const { store, docs } = await makeStore({ saveUninitialized: false });
    const { cookie } = await createSession(store, { user: 'alice', provider: 'password' });
    const req = requestWith({ sid: cookie });
    (await store.get(req, 'sid')).destroy();
    await store.new(req, 'sid'); // asked for, left empty: not stored
    const headers = new Headers();
    await store.saveAll(req, headers);
    expect(onlyCookie(headers).value).toBe('');
    expect(await docs.count()).toBe(0);
  });

  it('a session holding only flashes lives an hour at most, and one emptied is not extended', async () => {
    const { store, docs } = await makeStore({ saveUninitialized: false });
    const hour = 60 * 60 * 1000;
    const req = requestWith();
    const flashed = await store.get(req, 'sid');
    flashed.addFlash('You are signed out');
    const headers = new Headers();
    expect(await store.save(req, headers, flashed)).toBe('created');
    const stored = await docs.record(flashed.id);
    expect(stored?.expiresAt.getTime()).toBeLessThanOrEqual(Date.now() + hour);
    expect(onlyCookie(headers).attributes['max-age']).toBe('3600');
    // The next page reads the flash: the session is empty, its expiry stays where it was.
    const reader = requestWith({ sid: onlyCookie(headers).value });
    const next = await store.get(reader, 'sid');
    expect(next.flashes()).toEqual(['You are signed out']);
    await store.save(reader, new Headers(), next);
    expect((await docs.record(flashed.id))?.expiresAt).toEqual(stored?.expiresAt);
    // A parallel request that stores a value gives it the full lifetime (and a new cookie).
    const parallel = requestWith({ sid: onlyCookie(headers).value });
    const cart = await store.get(parallel, 'sid');
    cart.values.visits = 1;
    const refreshed = new Headers();
    expect(await store.save(parallel, refreshed, cart)).toBe('updated');
    expect((await docs.record(flashed.id))?.expiresAt.getTime()).toBeGreaterThan(Date.now() + 29 * day * 1000);
    expect(Number(onlyCookie(refreshed).attributes['max-age'])).toBeGreaterThan(29 * day);
  });

  it('a transient save never shortens what a parallel request stored: regenerate(), a lifetime change, a re-seal', async () => {
    const { store, docs } = await makeStore({ saveUninitialized: false });
    const hour = 60 * 60 * 1000;
    for (const variant of ['regenerate', 'lifetime'] as const) {
      const req = requestWith();
      const flashed = await store.get(req, 'sid');
      flashed.addFlash('hello');
      const headers = new Headers();
      await store.save(req, headers, flashed);
      const cookie = onlyCookie(headers).value;
      // R1 and R2 load the flash-only session; R2 stores a value first.
      const r1req = requestWith({ sid: cookie });
      const r1 = await store.get(r1req, 'sid');
      const r2req = requestWith({ sid: cookie });
      const r2 = await store.get(r2req, 'sid');
      r2.values.visits = 1;
      expect(await store.save(r2req, new Headers(), r2)).toBe('updated');
      if (variant === 'regenerate') r1.regenerate();
      else r1.options.persistent = false;
      r1.addFlash('again');
      const sent = new Headers();
      await store.save(r1req, sent, r1);
      const stored = await docs.record(r1.id);
      expect({ variant, rolled: (stored?.expiresAt.getTime() ?? 0) > Date.now() + 29 * day * 1000 }).toEqual({ variant, rolled: true });
      expect((await load(store, onlyCookie(sent).value)).values).toEqual({ visits: 1 });
      expect(stored?.expiresAt.getTime()).toBeGreaterThan(Date.now() + hour);
    }
  });

  it('signing out by clearing the owner leaves a record that lives an hour at most', async () => {
    const { store, docs } = await makeStore({ saveUninitialized: false });
    const { cookie, session: created } = await createSession(store, { user: 'alice', provider: 'password' });
    const req = requestWith({ sid: cookie });
    const session = await store.get(req, 'sid');
    session.values = {};
    session.addFlash('You are signed out');
    const headers = new Headers();
    expect(await store.save(req, headers, session)).toBe('updated');
    expect((await docs.record(created.id))?.expiresAt.getTime()).toBeLessThanOrEqual(Date.now() + 60 * 60 * 1000);
    expect(onlyCookie(headers).attributes['max-age']).toBe('3600');
  });

  it('checks the cookie target and the name before anything is written', async () => {
    const { store, docs } = await makeStore();
    const req = requestWith();
    const session = await store.get(req, 'sid');
    session.values.visits = 1;
    await expect(store.save(req, new Response('x') as unknown as Headers, session)).rejects.toThrow(/cookie target/);
    await expect(store.saveAll(req, 42 as unknown as Headers)).rejects.toThrow(/cookie target/);
    expect(await docs.count()).toBe(0);
    await expect(store.get(req, undefined as unknown as string)).rejects.toBeInstanceOf(TypeError);
    await expect(store.get(req, '')).rejects.toBeInstanceOf(TypeError);
    await expect(store.new(req, 7 as unknown as string)).rejects.toBeInstanceOf(TypeError);
  });

  it('refuses store options that are not an object of session options', async () => {
    for (const options of [42, true, () => ({}), 'secure', [], null, new Date()]) {
      await expect(makeStore({ options: options as never })).rejects.toBeInstanceOf(SessionOptionsError);
    }
    await expect(makeStore({ options: Object.create(null) as never })).resolves.toBeDefined();
  });

  it('warns once when a Secure cookie answers plain http on a LAN name (the browser drops it)', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    try {
      const { store } = await makeStore();
      for (let i = 0; i < 2; i++) {
        const req = new Request('http://devbox.lan/');
        const session = await store.get(req, 'sid');
        session.values.visits = 1;
        await store.save(req, new Headers(), session);
      }
      expect(warn).toHaveBeenCalledTimes(1);
      expect(String(warn.mock.calls[0]?.[0])).toMatch(/devbox\.lan/);
    } finally {
      warn.mockRestore();
    }
  });

  it('maxValuesBytes holds across saves with non-ASCII keys: what is stored never raises the budget', async () => {
    const { store } = await makeStore({ maxValuesBytes: 1000 });
    let { cookie } = await createSession(store, {});
    const outcomes: string[] = [];
    for (let round = 0; round < 5; round++) {
      const req = requestWith({ sid: cookie });
      const session = await store.get(req, 'sid');
      // 300 UTF-16 units (600 UTF-8 bytes) per key: the encoder counts 303 per key.
      (session.values as Record<string, unknown>)[`${'é'.repeat(299)}${round}`] = 1;
      const headers = new Headers();
      try {
        outcomes.push(await store.save(req, headers, session));
      } catch (error) {
        expect(error).toBeInstanceOf(SessionValuesError);
        outcomes.push('refused');
      }
      if (sentCookies(headers)[0]?.value) cookie = sentCookies(headers)[0]?.value ?? cookie;
    }
    expect(outcomes).toEqual(['updated', 'updated', 'updated', 'refused', 'refused']);
  });

  it('refuses unknown store configuration keys', async () => {
    for (const typo of [{ absoluteMaxage: 3600 }, { maxAge: 60 }, { timeoutMS: 100 }]) {
      await expect(makeStore(typo as Partial<SessionStoreConfig>)).rejects.toThrow(/unknown option/);
    }
  });
});
});
