/**
 * A session's lifetime, on both backends: its own maxAge and persistent flag
 * survive its requests (refreshes and rotation re-seals included), an
 * absolute lifetime caps it, and fractions round the same way for cookie and
 * document.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SessionStoreConfig } from '../src/index.ts';
import type { SessionStore } from '../src/session-store.ts';
import { type Backend, backends, type RawPlace } from './support/backends.ts';
import { onlyCookie, randomKey, requestWith, sentCookies } from './support/http.ts';

type Values = { visits?: number; user?: string; provider?: string };
const day = 86_400;
const k1 = { authentication: randomKey(), encryption: randomKey() };
const k2 = { authentication: randomKey(), encryption: randomKey() };

describe.each(backends)('session lifetimes on $name', (backend: Backend) => {
  beforeAll(() => backend.open());
  afterAll(() => backend.close());

  async function makeStore(config: Partial<SessionStoreConfig> = {}, place?: string) {
    const { store, raw } = await backend.sessionStore<Values>({ keyPairs: [k1], ...config }, place);
    return { store, docs: raw };
  }

  /** Signs in with the given per-session options; returns the cookie value and the session id. */
  async function signIn(store: SessionStore<Values>, options: { maxAge?: number; persistent?: boolean }) {
    const req = requestWith();
    const session = await store.get(req, 'sid');
    Object.assign(session.options, options);
    session.values = { visits: 1 };
    const headers = new Headers();
    expect(await store.save(req, headers, session)).toBe('created');
    return { cookie: onlyCookie(headers), id: session.id };
  }

  async function visit(store: SessionStore<Values>, cookie: string) {
    const req = requestWith({ sid: cookie });
    const session = await store.get(req, 'sid');
    session.values.visits = (session.values.visits ?? 0) + 1;
    const headers = new Headers();
    const outcome = await store.save(req, headers, session);
    return { session, outcome, sent: sentCookies(headers)[0] };
  }

  async function expiresInSeconds(docs: RawPlace, id: string): Promise<number> {
    return ((await docs.record(id))?.expiresAt.getTime() ?? 0) / 1000 - Date.now() / 1000;
  }

  it('"remember me": a session\'s own maxAge holds on its next requests, through refreshes', async () => {
    const { store, docs } = await makeStore({ touchAfter: 60 });
    const { cookie, id } = await signIn(store, { maxAge: 90 * day });
    expect(cookie.attributes['max-age']).toBe(String(90 * day));

    const next = await visit(store, cookie.value);
    expect(next.session.options.maxAge).toBe(90 * day);
    expect(next.outcome).toBe('updated');
    expect(next.sent).toBeUndefined(); // no refresh due yet: the cookie stays
    expect(await expiresInSeconds(docs, id)).toBeGreaterThan(89 * day);

    // Two minutes later (moved back in the database): the refresh keeps 90 days, not the store's 30.
    await docs.setExpiry(id, new Date(Date.now() + 90 * day * 1000 - 120_000));
    const refreshed = await visit(store, cookie.value);
    expect(refreshed.sent?.attributes['max-age']).toBe(String(90 * day));
    expect(await expiresInSeconds(docs, id)).toBeGreaterThan(90 * day - 5);
  });

  it('a short per-session maxAge is not stretched to the store default either', async () => {
    const { store, docs } = await makeStore();
    const { cookie, id } = await signIn(store, { maxAge: 600 });
    await docs.setExpiry(id, new Date(Date.now() + 200_000));
    const next = await visit(store, cookie.value);
    expect(next.session.options.maxAge).toBe(600);
    expect(next.sent?.attributes['max-age']).toBe('600');
    expect(await expiresInSeconds(docs, id)).toBeLessThanOrEqual(600);
  });

  it('the lifetime survives a key rotation re-seal', async () => {
    const place = `rot_${Math.random().toString(36).slice(2, 8)}`;
    const { store: before } = await makeStore({}, place);
    const { store: after } = await makeStore({ keyPairs: [k2, k1] }, place);
    const { cookie } = await signIn(before, { maxAge: 90 * day, persistent: false });
    const req = requestWith({ sid: cookie.value });
    const session = await after.get(req, 'sid');
    const headers = new Headers();
    expect(await after.save(req, headers, session)).toBe('updated'); // a re-seal comes with a refresh write
    const resealed = onlyCookie(headers);
    expect(resealed.value).not.toBe(cookie.value);
    expect(resealed.attributes).not.toHaveProperty('max-age');
    expect(resealed.attributes).not.toHaveProperty('expires');
    expect((await after.get(requestWith({ sid: resealed.value }), 'sid')).options).toMatchObject({ maxAge: 90 * day, persistent: false });
  });

  it('persistent: false sends a browser-session cookie while the document still expires after maxAge', async () => {
    const { store, docs } = await makeStore({ options: { persistent: false, maxAge: 3600 } });
    const { cookie, id } = await signIn(store, {});
    expect(cookie.attributes).not.toHaveProperty('max-age');
    expect(cookie.attributes).not.toHaveProperty('expires');
    expect(await expiresInSeconds(docs, id)).toBeGreaterThan(3590);
    expect(await expiresInSeconds(docs, id)).toBeLessThanOrEqual(3600);
    await docs.setExpiry(id, new Date(Date.now() - 1000));
    expect(await store.get(requestWith({ sid: cookie.value }), 'sid')).toMatchObject({ isNew: true, error: 'not-found' });
  });

  it('changing a loaded session\'s lifetime moves its expiry and resends the cookie', async () => {
    const { store, docs } = await makeStore();
    const { cookie, id } = await signIn(store, {});
    const req = requestWith({ sid: cookie.value });
    const session = await store.get(req, 'sid');
    session.options.maxAge = 90 * day;
    const headers = new Headers();
    expect(await store.save(req, headers, session)).toBe('updated');
    expect(onlyCookie(headers).attributes['max-age']).toBe(String(90 * day));
    expect(await expiresInSeconds(docs, id)).toBeGreaterThan(89 * day);
  });

  it('absoluteMaxAge ends a session that long after creation however active it is, regenerate included', async () => {
    const { store, docs } = await makeStore({ absoluteMaxAge: 3600, options: { maxAge: 30 * day } });
    const { cookie, id } = await signIn(store, {});
    expect(Number(cookie.attributes['max-age'])).toBeLessThanOrEqual(3600);
    expect(await expiresInSeconds(docs, id)).toBeLessThanOrEqual(3600);

    // Regenerating (a sign-in) keeps the creation time, so the cap does not move.
    const req = requestWith({ sid: cookie.value });
    const session = await store.get(req, 'sid');
    session.regenerate();
    Object.assign(session.values, { user: 'alice', provider: 'password' });
    const headers = new Headers();
    expect(await store.save(req, headers, session)).toBe('created');
    expect(await expiresInSeconds(docs, session.id)).toBeLessThanOrEqual(3600);
    expect(Number(onlyCookie(headers).attributes['max-age'])).toBeLessThanOrEqual(3600);
  });

  it('a session past its absolute lifetime is ended by its next save', async () => {
    const { store, docs } = await makeStore({ absoluteMaxAge: 2, options: { maxAge: 3600 } });
    const { cookie } = await signIn(store, {});
    const req = requestWith({ sid: cookie.value });
    const session = await store.get(req, 'sid');
    // Keep the document alive past the cap (as a long request would see it), then let the cap pass.
    await docs.setExpiry(session.id, new Date(Date.now() + 60_000));
    await new Promise((resolve) => setTimeout(resolve, 2100));
    session.values.visits = 5;
    const headers = new Headers();
    expect(await store.save(req, headers, session)).toBe('expired');
    expect(onlyCookie(headers).value).toBe('');
    expect(await docs.countLive()).toBe(0);
  });

  it('rounds a fractional maxAge up to whole seconds for both the cookie and the document', async () => {
    const { store, docs } = await makeStore();
    // The document's expiry is the save's clock plus the lifetime: between
    // [before + 2 s, after + 2 s] for the save's bounds, however slow the
    // machine. That window excludes 1.5 s (and 1 s) whenever the save took
    // less than 0.5 s: a slow sample is taken again, a few times at most.
    for (let attempt = 1; ; attempt++) {
      const before = Date.now();
      const { cookie, id } = await signIn(store, { maxAge: 1.5 });
      const after = Date.now();
      expect(cookie.attributes['max-age']).toBe('2');
      const expiresAt = (await docs.record(id))?.expiresAt.getTime() ?? 0;
      expect(expiresAt).toBeGreaterThanOrEqual(before + 2000);
      expect(expiresAt).toBeLessThanOrEqual(after + 2000);
      if (after - before < 500 || attempt === 5) break;
    }
  });

  it('refuses a bad absoluteMaxAge', async () => {
    for (const absoluteMaxAge of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, 401 * day]) {
      await expect(makeStore({ absoluteMaxAge })).rejects.toThrow(/absoluteMaxAge/);
    }
  });
});
