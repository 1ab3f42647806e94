/**
 * Devices, on both backends: list a user's sessions, revoke one by its
 * handle, sign out the others. Handles are not credentials; revocations
 * hold against requests in flight; reads never move lastSeenAt.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SessionStoreConfig, SessionValuesError } from '../src/index.ts';
import type { SessionStore } from '../src/session-store.ts';
import { type Backend, backends } from './support/backends.ts';
import { onlyCookie, randomKey, requestWith } from './support/http.ts';

type Values = { user?: string; provider?: string; visits?: number };
const keyPairs = [{ authentication: randomKey(), encryption: randomKey() }];

describe.each(backends)('devices on $name', (backend: Backend) => {
  beforeAll(() => backend.open());
  afterAll(() => backend.close());

  const makeStore = async (config: Partial<SessionStoreConfig> = {}) => backend.sessionStore<Values>({ keyPairs, ...config });

  /** Signs `user` in from a browser with this User-Agent; returns the cookie and the session. */
  async function signIn(store: SessionStore<Values>, user: string, userAgent = 'Mozilla/5.0 (X11) Firefox/140.0', provider = 'password') {
    const req = new Request('https://app.example/login', { headers: { 'user-agent': userAgent } });
    const session = await store.get(req, 'sid');
    session.values = { user, provider, visits: 0 };
    const headers = new Headers();
    expect(await store.save(req, headers, session)).toBe('created');
    return { cookie: onlyCookie(headers).value, session };
  }

  const visit = (store: SessionStore<Values>, cookie: string) => store.get(requestWith({ sid: cookie }), 'sid');

  it('lists a user\'s live sessions, newest first, in one command, without ids or values', async () => {
    const { store, raw } = await makeStore();
    const laptop = await signIn(store, 'alice', 'Laptop Browser');
    await new Promise((resolve) => setTimeout(resolve, 10));
    const phone = await signIn(store, 'alice', 'Phone Browser');
    await signIn(store, 'alice', 'GitHub login', 'github'); // another provider
    await signIn(store, 'bob');
    const expired = await signIn(store, 'alice', 'Old Browser');
    await raw.setExpiry(expired.session.id, new Date(Date.now() - 1000));

    let list: Awaited<ReturnType<typeof store.listSessions>> = [];
    expect(await backend.during(async () => (list = await store.listSessions('alice', 'password')))).toEqual(['read']);
    expect(list.map((device) => device.userAgent)).toEqual(['Phone Browser', 'Laptop Browser']);
    expect(list.map((device) => device.handle)).toEqual([phone.session.handle, laptop.session.handle]);
    for (const device of list) {
      expect(Object.keys(device).sort()).toEqual(['createdAt', 'expiresAt', 'handle', 'lastSeenAt', 'signedInAt', 'userAgent']);
      expect(device.signedInAt).toEqual(device.createdAt); // signed in by the save that created it
      expect(JSON.stringify(device)).not.toContain(laptop.session.id);
      expect(JSON.stringify(device)).not.toContain(phone.session.id);
      expect(device.lastSeenAt.getTime()).toBeGreaterThanOrEqual(device.createdAt.getTime());
    }
  });

  it('signedInAt is when the owner signed in: after an anonymous start, across regenerate(), gone with the owner', async () => {
    const { store } = await makeStore();
    const req = new Request('https://app.example/', { headers: { 'user-agent': 'Browser' } });
    const anonymous = await store.get(req, 'sid');
    anonymous.values = { visits: 1 };
    const headers = new Headers();
    await store.save(req, headers, anonymous);
    await new Promise((resolve) => setTimeout(resolve, 20));
    // Sign in with regenerate(), as an app should.
    const signInReq = requestWith({ sid: onlyCookie(headers).value });
    const session = await store.get(signInReq, 'sid');
    const before = Date.now();
    session.regenerate();
    session.values = { ...session.values, user: 'carol', provider: 'password' };
    const signedIn = new Headers();
    expect(await store.save(signInReq, signedIn, session)).toBe('created');
    const [device] = await store.listSessions('carol', 'password');
    expect(device?.createdAt.getTime()).toBeLessThan(before); // the anonymous start
    expect(device?.signedInAt?.getTime()).toBeGreaterThanOrEqual(before);
    // A later regenerate() by the same owner keeps it.
    const againReq = requestWith({ sid: onlyCookie(signedIn).value });
    const again = await store.get(againReq, 'sid');
    again.regenerate();
    again.values.visits = 2;
    const regenerated = new Headers();
    await store.save(againReq, regenerated, again);
    expect((await store.listSessions('carol', 'password'))[0]?.signedInAt).toEqual(device?.signedInAt);
    // Signed in without regenerate(), by an update: signed in then.
    const { cookie } = await signIn(store, 'dave');
    const plainReq = requestWith({ sid: cookie });
    const other = await store.get(plainReq, 'sid');
    const switched = Date.now();
    other.values = { user: 'erin', provider: 'password' };
    expect(await store.save(plainReq, new Headers(), other)).toBe('updated');
    expect((await store.listSessions('erin', 'password'))[0]?.signedInAt?.getTime()).toBeGreaterThanOrEqual(switched);
  });

  it('a handle is not a credential: it is not the id, and as a cookie it opens nothing', async () => {
    const { store } = await makeStore();
    const { session } = await signIn(store, 'alice');
    expect(session.handle).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(session.handle).not.toBe(session.id);
    expect(await visit(store, session.handle)).toMatchObject({ isNew: true });
    expect(await visit(store, session.id)).toMatchObject({ isNew: true });
  });

  it('a handle stays with the id and changes with regenerate()', async () => {
    const { store } = await makeStore();
    const { cookie, session } = await signIn(store, 'alice');
    const loaded = await visit(store, cookie);
    expect(loaded.handle).toBe(session.handle);
    const req = requestWith({ sid: cookie });
    const again = await store.get(req, 'sid');
    again.regenerate();
    await store.save(req, new Headers(), again);
    expect(again.handle).not.toBe(session.handle);
    expect((await store.listSessions('alice', 'password')).map((device) => device.handle)).toEqual([again.handle]);
  });

  it('lastSeenAt moves with writes only: a read-only request costs no write', async () => {
    const { store } = await makeStore();
    const { cookie } = await signIn(store, 'alice');
    const [before] = await store.listSessions('alice', 'password');
    await new Promise((resolve) => setTimeout(resolve, 20));
    const req = requestWith({ sid: cookie });
    const read = await store.get(req, 'sid');
    expect(await backend.during(() => store.save(req, new Headers(), read))).toEqual([]);
    expect((await store.listSessions('alice', 'password'))[0]?.lastSeenAt).toEqual(before?.lastSeenAt);
    read.values.visits = 1;
    await store.save(req, new Headers(), read);
    expect((await store.listSessions('alice', 'password'))[0]?.lastSeenAt.getTime()).toBeGreaterThan(before?.lastSeenAt.getTime() ?? 0);
  });

  it('revokeSession ends only a session of that user and provider, in one command', async () => {
    const { store } = await makeStore();
    const alice = await signIn(store, 'alice');
    const bob = await signIn(store, 'bob');
    // A handle posted by another account ends nothing.
    let ended = true;
    expect(await backend.during(async () => (ended = await store.revokeSession('bob', 'password', alice.session.handle)))).toEqual(['delete']);
    expect(ended).toBe(false);
    expect(await store.revokeSession('alice', 'github', alice.session.handle)).toBe(false);
    expect(await store.revokeSession('alice', 'password', alice.session.handle)).toBe(true);
    expect(await visit(store, alice.cookie)).toMatchObject({ isNew: true, error: 'not-found' });
    expect(await visit(store, bob.cookie)).toMatchObject({ isNew: false });
    expect(await store.revokeSession('alice', 'password', alice.session.handle)).toBe(false);
  });

  it('a request in flight with a revoked session cannot bring it back', async () => {
    const { store, raw } = await makeStore();
    const { cookie, session } = await signIn(store, 'alice');
    const req = requestWith({ sid: cookie });
    const inFlight = await store.get(req, 'sid');
    await store.revokeSession('alice', 'password', session.handle);
    inFlight.values.visits = 5;
    inFlight.regenerate();
    expect(await store.save(req, new Headers(), inFlight)).toBe('expired');
    expect(await raw.countLive()).toBe(0);
  });

  it('revokeOtherSessions ends the owner\'s other sessions in two commands (as expireSessions) and keeps this one', async () => {
    const { store } = await makeStore();
    const mine = await signIn(store, 'alice', 'This Browser');
    const others = [await signIn(store, 'alice', 'B'), await signIn(store, 'alice', 'C')];
    const bob = await signIn(store, 'bob');
    const current = await visit(store, mine.cookie);
    let ended = 0;
    expect(await backend.during(async () => (ended = await store.revokeOtherSessions(current)))).toEqual(['delete', 'delete']);
    expect(ended).toBe(2);
    expect((await store.listSessions('alice', 'password')).map((device) => device.handle)).toEqual([mine.session.handle]);
    for (const other of others) expect(await visit(store, other.cookie)).toMatchObject({ isNew: true });
    expect(await visit(store, mine.cookie)).toMatchObject({ isNew: false });
    expect(await visit(store, bob.cookie)).toMatchObject({ isNew: false });
  });

  it('refuses bad arguments before any command', async () => {
    const { store } = await makeStore();
    const fresh = await store.get(requestWith(), 'sid');
    const anonymous = await signIn(store, 'x');
    anonymous.session.values = { visits: 1 };
    const commands = await backend.during(async () => {
      await expect(store.listSessions({ $ne: null } as unknown as string, 'password')).rejects.toBeInstanceOf(TypeError);
      // A handle as a tampered form posts it: not a handle, so nothing to end (false), and no command.
      for (const handle of [{ $ne: '' }, 'short', undefined, 42, 'A'.repeat(23)]) {
        expect(await store.revokeSession('alice', 'password', handle as unknown as string)).toBe(false);
      }
      await expect(store.revokeSession({ $ne: '' } as unknown as string, 'password', 'A'.repeat(22))).rejects.toBeInstanceOf(TypeError);
      await expect(store.revokeOtherSessions(fresh)).rejects.toThrow(/saved Session/);
      await expect(store.revokeOtherSessions(anonymous.session)).rejects.toThrow(/no owner/);
    });
    expect(commands).toEqual([]);
  });

  it('keeps a bounded User-Agent and what describeDevice records', async () => {
    const { store } = await makeStore({ describeDevice: (req) => ({ ip: req.headers.get('x-test-ip') ?? 'unknown', trusted: false }) });
    const req = new Request('https://app.example/', { headers: { 'user-agent': 'U'.repeat(5000), 'x-test-ip': '192.0.2.7' } });
    const session = await store.get(req, 'sid');
    session.values = { user: 'alice', provider: 'password' };
    await store.save(req, new Headers(), session);
    const [device] = await store.listSessions('alice', 'password');
    expect(device?.userAgent).toHaveLength(256);
    expect(device?.details).toEqual({ ip: '192.0.2.7', trusted: false });
  });

  it('keeps what a client sends within bounds instead of failing the sign-in', async () => {
    const { store } = await makeStore({
      describeDevice: (req) => ({ forwarded: req.headers.get('x-forwarded-for'), country: req.headers.get('cf-ipcountry'), ...Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, 'v'.repeat(200)])) }),
    });
    const req = new Request('https://app.example/', { headers: { 'x-forwarded-for': '1'.repeat(5000) } });
    const session = await store.get(req, 'sid');
    session.values = { user: 'alice', provider: 'password' };
    expect(await store.save(req, new Headers(), session)).toBe('created');
    const [device] = await store.listSessions('alice', 'password');
    expect(device?.details?.forwarded).toHaveLength(256);
    expect(device?.details).not.toHaveProperty('country'); // null: left out
    expect(Buffer.byteLength(JSON.stringify(device?.details))).toBeLessThanOrEqual(1024);
  });

  it('refuses describeDevice results that are not flat data, writing nothing', async () => {
    for (const bad of [{ nested: { a: 1 } }, ['a'], { n: Number.NaN }]) {
      const { store, raw } = await makeStore({ describeDevice: () => bad as unknown as Record<string, string> });
      const req = requestWith();
      const session = await store.get(req, 'sid');
      session.values = { visits: 1 };
      await expect(store.save(req, new Headers(), session)).rejects.toBeInstanceOf(SessionValuesError);
      expect(await raw.count()).toBe(0);
    }
  });

  it('lists no session past the absolute lifetime, as get does', async () => {
    const place = `abs_${Math.random().toString(36).slice(2, 8)}`;
    const { store: unlimited } = await backend.sessionStore<Values>({ keyPairs }, place);
    await signIn(unlimited, 'alice');
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const { store: limited } = await backend.sessionStore<Values>({ keyPairs, absoluteMaxAge: 1 }, place);
    expect(await limited.listSessions('alice', 'password')).toEqual([]);
    expect(await unlimited.listSessions('alice', 'password')).toHaveLength(1);
  });
});

