/**
 * Every cookie the store sends (creation, refresh, re-seal, deletion) carries
 * the secure defaults; prefix rules are enforced with clear errors.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { MongoStore, SessionOptionsError } from '../../src/index.ts';
import { openTestDatabase, type TestDatabase } from '../support/database.ts';
import { onlyCookie, randomKey, requestWith, type SentCookie } from '../support/http.ts';

let t: TestDatabase;
beforeAll(async () => {
  t = await openTestDatabase();
});
afterAll(async () => {
  await t.close();
});

it('sends HttpOnly, Secure, SameSite=Lax, Path=/ on every cookie it writes', async () => {
  const k1 = { authentication: randomKey() };
  const old = new MongoStore(t.db, { keyPairs: [k1], collection: 'attrs', touchAfter: 0 });
  const store = new MongoStore(t.db, { keyPairs: [{ authentication: randomKey() }, k1], collection: 'attrs', touchAfter: 0 });
  const sent: SentCookie[] = [];
  const save = async (s: MongoStore, cookie: string | undefined, change: (v: Record<string, unknown>) => void) => {
    const req = requestWith(cookie ? { sid: cookie } : {});
    const session = await s.get(req, 'sid');
    change(session.values);
    const headers = new Headers();
    await s.save(req, headers, session);
    const one = onlyCookie(headers);
    sent.push(one);
    return one.value;
  };
  const created = await save(old, undefined, (v) => void (v.n = 1));
  const resealed = await save(store, created, () => {});
  await new Promise((resolve) => setTimeout(resolve, 1100));
  const refreshed = await save(store, resealed, () => {});
  await save(store, refreshed, (v) => void (v.n = 2));
  const req = requestWith({ sid: refreshed });
  const session = await store.get(req, 'sid');
  session.destroy();
  const headers = new Headers();
  await store.save(req, headers, session);
  sent.push(onlyCookie(headers));

  console.log(`cookie attributes: ${sent.length} cookies checked`);
  expect(sent.length).toBe(5);
  for (const cookie of sent) {
    expect(cookie.attributes).toMatchObject({ httponly: true, secure: true, samesite: 'Lax', path: '/' });
  }
});

it('enforces __Host- and __Secure- rules with clear errors', () => {
  const make = (name: string, options: object) => async () => {
    const store = new MongoStore(t.db, { keyPairs: [{ authentication: randomKey() }], options });
    const req = requestWith();
    await store.save(req, new Headers(), await store.get(req, name));
  };
  return Promise.all([
    expect(make('__Host-id', { domain: 'example.com' })()).rejects.toThrow(SessionOptionsError),
    expect(make('__Host-id', { path: '/x' })()).rejects.toThrow(/__Host-id requires path/),
    expect(make('__Secure-id', { secure: false })()).rejects.toThrow(/__Secure-id requires secure/),
  ]);
});
