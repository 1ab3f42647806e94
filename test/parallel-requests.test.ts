/**
 * Parallel requests of one browser (issue 21): every reproduction of the
 * review, on both backends. Each request loads the session before the
 * other saves, then saves in turn, so none of this depends on a server's
 * atomicity (FerretDB's included).
 */
import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Session, SessionOptionsError, type SessionStoreConfig, SessionValuesError } from '../src/index.ts';
import { sessions } from '../src/hono.ts';
import type { SessionStore } from '../src/session-store.ts';
import { type Backend, backends, type RawPlace } from './support/backends.ts';
import { ImmutableHeaders, onlyCookie, randomKey, requestWith, sentCookies } from './support/http.ts';

describe.each(backends)('parallel requests on $name', (backend: Backend) => {
  beforeAll(() => backend.open());
  afterAll(() => backend.close());

  type Values = Record<string, unknown>;
  const keyPairs = [{ authentication: randomKey() }];

  async function makeStore(config: Partial<SessionStoreConfig> = {}): Promise<{ store: SessionStore<Values>; docs: RawPlace }> {
    const { store, raw } = await backend.sessionStore<Values>({ keyPairs, ...config });
    return { store, docs: raw };
  }

  /** A stored session (its cookie), and `count` requests that loaded it before any of them saves. */
  async function loaded(store: SessionStore<Values>, values: Values, count: number, flash?: string) {
    const req = requestWith();
    const first = await store.get(req, 'sid');
    first.values = { ...values };
    if (flash !== undefined) first.addFlash(flash);
    const headers = new Headers();
    expect(await store.save(req, headers, first)).toBe('created');
    const cookie = onlyCookie(headers).value;
    const requests = await Promise.all(
      Array.from({ length: count }, async () => {
        const request = requestWith({ sid: cookie });
        return { req: request, session: await store.get(request, 'sid') };
      }),
    );
    return { cookie, requests };
  }

  async function save(store: SessionStore<Values>, request: { req: Request; session: Session<Values> }, headers = new Headers()) {
    return store.save(request.req, headers, request.session);
  }

  const fresh = (store: SessionStore<Values>, cookie: string) => store.get(requestWith({ sid: cookie }), 'sid');
  const alice = { user: 'alice', provider: 'password' };
  const bob = { user: 'bob', provider: 'password' };

  describe('identity never mixes', () => {
    it('a sign-in as someone else in parallel: the stale request resolves superseded and writes none of its values', async () => {
      const { store, docs } = await makeStore();
      const { cookie, requests } = await loaded(store, { ...alice, cart: 1 }, 2);
      const [signIn, stale] = requests as [{ req: Request; session: Session<Values> }, { req: Request; session: Session<Values> }];
      signIn.session.values = { ...bob };
      expect(await save(store, signIn)).toBe('updated');
      stale.session.values.mfaVerifiedAt = 1;
      stale.session.values.note = 'alice private';
      stale.session.addFlash('alice only');
      const headers = new Headers();
      expect(await backend.during(async () => expect(await save(store, stale, headers)).toBe('superseded'))).toEqual(
        ['update', 'read'], // the guarded write missed; one read says why
      );
      expect(headers.getSetCookie()).toEqual([]);
      const now = await fresh(store, cookie);
      expect(now.values).toEqual(bob);
      expect(now.flashes()).toEqual([]);
      expect((await docs.record(now.id))?.user).toBe('bob');
      // Terminal: a second save writes nothing either.
      expect(await backend.during(() => save(store, stale))).toEqual([]);
    });

    it('a sign-out by clearing in parallel: nothing of the signed-in request lands in the anonymous session', async () => {
      const { store, docs } = await makeStore();
      const { cookie, requests } = await loaded(store, { ...alice }, 2);
      const [signOut, stale] = requests as [{ req: Request; session: Session<Values> }, { req: Request; session: Session<Values> }];
      signOut.session.values = {};
      expect(await save(store, signOut)).toBe('updated');
      stale.session.values.mfaVerifiedAt = 1;
      expect(await save(store, stale)).toBe('superseded');
      const now = await fresh(store, cookie);
      expect(now.values).toEqual({});
      expect((await docs.record(now.id))?.user).toBeUndefined();
    });

    it('a sign-out and a sign-in as the same user again (A-B-A): the request loaded before still resolves superseded', async () => {
      const { store } = await makeStore();
      const { cookie, requests } = await loaded(store, { ...alice }, 3);
      const [out, back, stale] = requests as { req: Request; session: Session<Values> }[] as [
        { req: Request; session: Session<Values> },
        { req: Request; session: Session<Values> },
        { req: Request; session: Session<Values> },
      ];
      out.session.values = {};
      expect(await save(store, out)).toBe('updated');
      const again = await fresh(store, cookie);
      again.values = { ...alice };
      expect(await store.save(requestWith(), new Headers(), again)).toBe('updated');
      stale.session.values.mfaVerifiedAt = 1;
      expect(await save(store, stale)).toBe('superseded');
      expect((await fresh(store, cookie)).values).toEqual(alice);
      expect(back.session.values).toEqual(alice);
    });

    it('through regenerate(): a step-up loaded before a parallel sign-out creates no session holding its flag', async () => {
      const { store, docs } = await makeStore();
      const { cookie, requests } = await loaded(store, { ...alice }, 2);
      const [stepUp, signOut] = requests as [{ req: Request; session: Session<Values> }, { req: Request; session: Session<Values> }];
      signOut.session.values = {};
      expect(await save(store, signOut)).toBe('updated');
      stepUp.session.regenerate();
      stepUp.session.values.mfaVerifiedAt = 1;
      const headers = new Headers();
      expect(await save(store, stepUp, headers)).toBe('superseded');
      expect(headers.getSetCookie()).toEqual([]);
      const live = await docs.liveKeys();
      expect(live).toHaveLength(1);
      expect((await fresh(store, cookie)).values).toEqual({});
    });

    it('through saveAll and the Hono middleware alike', async () => {
      const { store } = await makeStore();
      const { cookie, requests } = await loaded(store, { ...alice }, 1);
      const stale = requests[0] as { req: Request; session: Session<Values> };
      const signIn = await fresh(store, cookie);
      signIn.values = { ...bob };
      expect(await store.save(requestWith(), new Headers(), signIn)).toBe('updated');
      stale.session.values.note = 'alice private';
      await store.saveAll(stale.req, new Headers());
      expect(stale.session).toMatchObject({ values: { note: 'alice private' } });
      expect((await fresh(store, cookie)).values).toEqual(bob);

      // The middleware: a handler of alice's that waits while bob signs in.
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      const app = new Hono();
      app.use(sessions(store, { name: 'sid' }));
      app.post('/note', async (c) => {
        (c.get('session' as never) as Session<Values>).values.note = 'bob must not see this';
        await held;
        return c.text('ok');
      });
      const cookieNow = cookie;
      const pending = app.request('/note', { method: 'POST', headers: { cookie: `sid=${cookieNow}` } });
      await new Promise((resolve) => setTimeout(resolve, 50));
      const other = await fresh(store, cookie);
      other.values = { ...alice };
      expect(await store.save(requestWith(), new Headers(), other)).toBe('updated');
      release();
      const response = await pending;
      expect(response.status).toBe(200);
      expect(response.headers.getSetCookie()).toEqual([]);
      expect((await fresh(store, cookie)).values).toEqual(alice);
    });

    it('an anonymous session keeps its cart through the first sign-in, with or without regenerate()', async () => {
      for (const regenerate of [false, true]) {
        const { store } = await makeStore();
        const { cookie, requests } = await loaded(store, { cart: ['apple'] }, 2);
        const [signIn, parallel] = requests as [{ req: Request; session: Session<Values> }, { req: Request; session: Session<Values> }];
        // A parallel anonymous change saved first is carried over too.
        parallel.session.values.theme = 'dark';
        expect(await save(store, parallel)).toBe('updated');
        if (regenerate) signIn.session.regenerate();
        Object.assign(signIn.session.values, alice);
        const headers = new Headers();
        expect(await save(store, signIn, headers)).toBe(regenerate ? 'created' : 'updated');
        const now = await fresh(store, regenerate ? onlyCookie(headers).value : cookie);
        expect(now.values).toEqual({ cart: ['apple'], theme: 'dark', ...alice });
      }
    });
  });

  describe('flashes belong to their owner', () => {
    it("the README's sign-in (regenerate, then values = { user: 'bob' }) drops alice's pending flash and keeps its own", async () => {
      const { store } = await makeStore();
      const { requests } = await loaded(store, { ...alice }, 1, 'Your one-time code is 482913');
      const signIn = requests[0] as { req: Request; session: Session<Values> };
      signIn.session.regenerate();
      signIn.session.values = { ...bob };
      signIn.session.addFlash('Welcome, bob');
      const headers = new Headers();
      expect(await save(store, signIn, headers)).toBe('created');
      const page = await fresh(store, onlyCookie(headers).value);
      expect(page.values).toEqual(bob);
      expect(page.flashes()).toEqual(['Welcome, bob']);
    });

    it('a sign-out by clearing drops the signed-in flashes; an anonymous flash carries over to the first sign-in', async () => {
      const { store } = await makeStore();
      const { cookie, requests } = await loaded(store, { ...alice }, 1, 'for alice');
      const signOut = requests[0] as { req: Request; session: Session<Values> };
      signOut.session.values = {};
      signOut.session.addFlash('You are signed out');
      expect(await save(store, signOut)).toBe('updated');
      const anonymous = await fresh(store, cookie);
      expect(anonymous.flashes()).toEqual(['You are signed out']);
      anonymous.addFlash('Items in your cart were kept');
      expect(await store.save(requestWith(), new Headers(), anonymous)).toBe('updated');
      const signIn = await fresh(store, cookie);
      signIn.values = { ...bob };
      expect(await store.save(requestWith(), new Headers(), signIn)).toBe('updated');
      expect((await fresh(store, cookie)).flashes()).toEqual(['Items in your cart were kept']);
    });

    it('a flash read by one request and one added by another: neither lost nor shown again', async () => {
      const { store } = await makeStore();
      const { cookie, requests } = await loaded(store, { cart: 1 }, 2, 'old news');
      const [reader, writer] = requests as [{ req: Request; session: Session<Values> }, { req: Request; session: Session<Values> }];
      writer.session.addFlash('fresh news');
      expect(await save(store, writer)).toBe('updated');
      expect(reader.session.flashes()).toEqual(['old news']);
      expect(await save(store, reader)).toBe('updated');
      const next = await fresh(store, cookie);
      expect(next.flashes()).toEqual(['fresh news']);
    });

    it('flashes come back in the order they were added, across requests', async () => {
      const { store } = await makeStore();
      const { cookie } = await loaded(store, { cart: 1 }, 0, 'one');
      for (const message of ['two', 'three']) {
        const session = await fresh(store, cookie);
        session.addFlash(message);
        expect(await store.save(requestWith(), new Headers(), session)).toBe('updated');
      }
      expect((await fresh(store, cookie)).flashes()).toEqual(['one', 'two', 'three']);
    });
  });

  describe('sign-out wins', () => {
    it('destroy() of a session a parallel request regenerated ends the successor too', async () => {
      const { store, docs } = await makeStore();
      const { requests } = await loaded(store, { ...alice }, 2);
      const [rotate, signOut] = requests as [{ req: Request; session: Session<Values> }, { req: Request; session: Session<Values> }];
      rotate.session.regenerate();
      expect(await save(store, rotate)).toBe('created');
      expect(await docs.liveKeys()).toEqual([rotate.session.id]);
      signOut.session.destroy();
      const headers = new Headers();
      expect(await save(store, signOut, headers)).toBe('deleted');
      expect(onlyCookie(headers).value).toBe('');
      expect(await docs.liveKeys()).toEqual([]);
      expect(await docs.count()).toBe(0);
    });

    it('also when the sign-out request arrived with the replaced cookie (a fresh session, error replaced)', async () => {
      const { store, docs } = await makeStore();
      const { cookie, requests } = await loaded(store, { ...alice }, 1);
      const rotate = requests[0] as { req: Request; session: Session<Values> };
      rotate.session.regenerate();
      expect(await save(store, rotate)).toBe('created');
      const late = await fresh(store, cookie);
      expect(late.error).toBe('replaced');
      late.destroy();
      expect(await store.save(requestWith({ sid: cookie }), new Headers(), late)).toBe('deleted');
      expect(await docs.liveKeys()).toEqual([]);
    });

    it('a chain of regenerations is followed to its end', async () => {
      const { store, docs } = await makeStore();
      const loadedBefore = await loaded(store, { ...alice }, 1);
      const signOut = loadedBefore.requests[0] as { req: Request; session: Session<Values> };
      let cookie = loadedBefore.cookie;
      for (let i = 0; i < 3; i++) {
        const session = await fresh(store, cookie);
        session.regenerate();
        const headers = new Headers();
        expect(await store.save(requestWith(), headers, session)).toBe('created');
        cookie = onlyCookie(headers).value;
      }
      expect(await docs.liveKeys()).toHaveLength(1);
      signOut.session.destroy();
      expect(await save(store, signOut)).toBe('deleted');
      expect(await docs.liveKeys()).toEqual([]);
    });
  });

  describe('no cookie without a write that checked liveness', () => {
    it('a second save of a saved session sends nothing and no command (an explicit save, then the middleware)', async () => {
      const { store } = await makeStore();
      const app = new Hono();
      app.use(sessions(store, { name: 'sid' }));
      app.post('/in', async (c) => {
        const session = c.get('session' as never) as Session<Values>;
        session.regenerate();
        Object.assign(session.values, alice);
        await store.save(c.req, c, session);
        return c.text('ok');
      });
      const { cookie } = await loaded(store, { cart: 1 }, 0);
      const commands = await backend.during(async () => {
        const response = await app.request('/in', { method: 'POST', headers: { cookie: `sid=${cookie}` } });
        expect(sentCookies(response.headers)).toHaveLength(1);
      });
      // The regeneration's own writes (insert and retire on MongoDB, one statement on PostgreSQL), nothing more.
      expect(commands.filter((kind) => kind !== 'read')).toHaveLength(backend.name === 'MongoDB' ? 2 : 1);
    });

    it('a save whose cookie never reached the browser sends it on the retry only after a guarded write', async () => {
      const { store } = await makeStore({ touchAfter: 0 });
      const { requests } = await loaded(store, { cart: 1 }, 1);
      const request = requests[0] as { req: Request; session: Session<Values> };
      request.session.values.cart = 2;
      await expect(save(store, request, new ImmutableHeaders())).rejects.toThrow(TypeError);
      const headers = new Headers();
      expect(await backend.during(() => save(store, request, headers))).toEqual(['update']);
      expect(sentCookies(headers)).toHaveLength(1);
    });
  });

  describe("a session's own lifetime", () => {
    it('a stale request whose refresh is due does not write back the lifetime it loaded, nor send its cookie', async () => {
      const { store, docs } = await makeStore({ touchAfter: 0, options: { maxAge: 30 * 86_400 } });
      const { cookie, requests } = await loaded(store, { ...alice }, 2);
      const [rememberOff, stale] = requests as [{ req: Request; session: Session<Values> }, { req: Request; session: Session<Values> }];
      Object.assign(rememberOff.session.options, { maxAge: 900, persistent: false });
      expect(await save(store, rememberOff)).toBe('updated');
      await new Promise((resolve) => setTimeout(resolve, 1100)); // the stale request's refresh is due
      stale.session.values.visits = 2; // the merge path too
      const headers = new Headers();
      expect(await save(store, stale, headers)).toBe('updated');
      const sent = onlyCookie(headers);
      expect(sent.attributes['max-age']).toBeUndefined(); // a browser-session cookie, as the stored lifetime says
      expect(stale.session.options).toMatchObject({ maxAge: 900, persistent: false });
      const record = await docs.record(stale.session.id);
      expect((record?.expiresAt.getTime() ?? 0) - Date.now()).toBeLessThanOrEqual(900_000);
      const now = await fresh(store, cookie);
      expect(now.options).toMatchObject({ maxAge: 900, persistent: false });
      expect(now.values).toMatchObject({ visits: 2 });
    });
  });

  describe('the id is the store\'s', () => {
    it('save refuses a session pointed at another live session, writing nothing', async () => {
      const { store } = await makeStore();
      const victim = await loaded(store, { ...bob, secret: 1 }, 0);
      const victimId = (await fresh(store, victim.cookie)).id;
      const { requests } = await loaded(store, { ...alice }, 1);
      const request = requests[0] as { req: Request; session: Session<Values> };
      request.session.id = victimId;
      request.session.values.secret = 2;
      const headers = new Headers();
      expect(await backend.during(() => expect(save(store, request, headers)).rejects.toThrow(SessionOptionsError))).toEqual([]);
      expect(headers.getSetCookie()).toEqual([]);
      expect((await fresh(store, victim.cookie)).values).toEqual({ ...bob, secret: 1 });
    });
  });

  describe('listSessions', () => {
    it('gives the newest 100 by default and at most `limit` (1 to 1,000)', async () => {
      const { store } = await makeStore();
      for (let i = 0; i < 105; i++) {
        const req = requestWith();
        const session = await store.get(req, 'sid');
        session.values = { ...alice, n: i };
        await store.save(req, new Headers(), session);
      }
      const all = await store.listSessions('alice', 'password');
      expect(all).toHaveLength(100);
      const times = all.map((device) => device.createdAt.getTime());
      expect(times).toEqual([...times].sort((a, b) => b - a));
      const newest = await store.listSessions('alice', 'password', { limit: 3 });
      expect(newest.map((device) => device.createdAt.getTime())).toEqual(times.slice(0, 3));
      expect(await store.listSessions('alice', 'password', { limit: 1000 })).toHaveLength(105);
      for (const limit of [0, 1001, 1.5, Number.NaN, '5' as unknown as number]) {
        await expect(store.listSessions('alice', 'password', { limit })).rejects.toThrow(TypeError);
      }
    }, 60_000);
  });

  describe('what the review of the redesign found', () => {
    it('maxValuesBytes bounds what one request adds: parallel growth past it never makes later saves fail', async () => {
      const { store } = await makeStore({ maxValuesBytes: 1000 });
      const { cookie, requests } = await loaded(store, { cart: 1 }, 2);
      const [a, b] = requests as [{ req: Request; session: Session<Values> }, { req: Request; session: Session<Values> }];
      a.session.values.a = 'x'.repeat(600);
      b.session.values.b = 'y'.repeat(600);
      expect(await save(store, a)).toBe('updated');
      expect(await save(store, b)).toBe('updated');
      const big = await fresh(store, cookie);
      expect(Object.keys(big.values).sort()).toEqual(['a', 'b', 'cart']);
      expect(await store.save(requestWith({ sid: cookie }), new Headers(), big)).toBe('unchanged');
      big.values.cart = 2; // no growth
      expect(await store.save(requestWith({ sid: cookie }), new Headers(), big)).toBe('updated');
      big.values.c = 'z'.repeat(600); // growth past the limit
      await expect(store.save(requestWith({ sid: cookie }), new Headers(), big)).rejects.toThrow(SessionValuesError);
    });

    it('a lifetime that now equals a changed store default is neither rewritten nor re-sent by a request that did not change it', async () => {
      const place = `lifetime_${Math.random().toString(36).slice(2, 10)}`;
      const { store: before } = await backend.sessionStore<Values>({ keyPairs, options: { maxAge: 3600 } }, place);
      const req = requestWith();
      const first = await before.get(req, 'sid');
      first.values = { cart: 1 };
      first.options.maxAge = 200;
      const headers = new Headers();
      expect(await before.save(req, headers, first)).toBe('created');
      const cookie = onlyCookie(headers).value;
      // A redeploy makes 200 s the default.
      const { store: after } = await backend.sessionStore<Values>({ keyPairs, options: { maxAge: 200 } }, place, false);
      const [untouched, browserOnly, valueOnly] = await Promise.all([0, 1, 2].map(() => after.get(requestWith({ sid: cookie }), 'sid')));
      const untouchedHeaders = new Headers();
      expect(await backend.during(async () => expect(await after.save(requestWith(), untouchedHeaders, untouched as Session<Values>)).toBe('unchanged'))).toEqual([]);
      expect(untouchedHeaders.getSetCookie()).toEqual([]);
      (browserOnly as Session<Values>).options.persistent = false;
      expect(await after.save(requestWith(), new Headers(), browserOnly as Session<Values>)).toBe('updated');
      (valueOnly as Session<Values>).values.cart = 2;
      expect(await after.save(requestWith(), new Headers(), valueOnly as Session<Values>)).toBe('updated');
      const now = await after.get(requestWith({ sid: cookie }), 'sid');
      expect(now.options).toMatchObject({ maxAge: 200, persistent: false });
      expect(now.values).toEqual({ cart: 2 });
    });

    it('regenerate() on a fresh session, saved twice (a handler, then the middleware): one session, one cookie', async () => {
      const { store, docs } = await makeStore();
      const req = requestWith();
      const session = await store.get(req, 'sid');
      session.regenerate();
      Object.assign(session.values, alice);
      const first = new Headers();
      expect(await store.save(req, first, session)).toBe('created');
      const second = new Headers();
      expect(await backend.during(async () => expect(await store.saveAll(req, second)).toBeUndefined())).toEqual([]);
      expect(sentCookies(first)).toHaveLength(1);
      expect(second.getSetCookie()).toEqual([]);
      expect(await docs.liveKeys()).toEqual([session.id]);
      expect(await docs.count()).toBe(1);
    });

    it('new() after a superseded save gives no fresh session to replace the cookie the browser holds', async () => {
      const { store } = await makeStore();
      const { cookie, requests } = await loaded(store, { ...alice }, 1);
      const stale = requests[0] as { req: Request; session: Session<Values> };
      const signIn = await fresh(store, cookie);
      signIn.values = { ...bob };
      expect(await store.save(requestWith(), new Headers(), signIn)).toBe('updated');
      stale.session.values.note = 1;
      expect(await save(store, stale)).toBe('superseded');
      const next = await store.new(stale.req, 'sid');
      expect(next).not.toBe(stale.session);
      expect(next.values).toEqual(bob); // decoded anew: the session the cookie leads to now
      const headers = new Headers();
      await store.saveAll(stale.req, headers);
      expect(headers.getSetCookie()).toEqual([]);
      expect((await fresh(store, cookie)).values).toEqual(bob);
    });
  });
});
