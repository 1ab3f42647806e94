import { randomBytes } from 'node:crypto';
import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from 'vitest';
import { MongoStore, type Session, SessionOptionsError } from '../src/index.ts';
import { type SessionEnv, sessions } from '../src/hono.ts';
import { openTestDatabase, type TestDatabase } from './support/database.ts';
import { randomKey } from './support/http.ts';

let t: TestDatabase;
let store: MongoStore<{ visits: number }>;
beforeAll(async () => {
  t = await openTestDatabase();
  store = new MongoStore(t.db, {
    keyPairs: [{ authentication: randomKey() }],
    collection: `hono_${randomBytes(4).toString('hex')}`,
  });
  await store.init();
});
afterAll(async () => {
  await t.close();
});

function app() {
  const app = new Hono<SessionEnv<{ visits: number }>>();
  app.use(sessions(store, { name: 'sid' }));
  const count = (session: Session<{ visits: number }>) => {
    session.values.visits = (session.values.visits ?? 0) + 1;
    return session.values.visits;
  };
  app.get('/text', (c) => c.text(String(count(c.get('session')))));
  app.get('/json', (c) => c.json({ visits: count(c.var.session) }));
  app.get('/redirect', (c) => {
    count(c.get('session'));
    return c.redirect('/text');
  });
  app.get('/response', (c) => {
    count(c.get('session'));
    return new Response('plain', { headers: { 'x-kind': 'plain' } });
  });
  app.get('/immutable', (c) => {
    count(c.get('session'));
    return Response.redirect('https://app.example/text', 302);
  });
  app.get('/read', (c) => c.text(String(c.get('session').values.visits ?? 0)));
  app.get('/throws', (c) => {
    count(c.get('session'));
    throw new Error('boom');
  });
  return app;
}

function cookieOf(response: Response): string {
  const line = response.headers.getSetCookie().find((c) => c.startsWith('sid='));
  if (!line) throw new Error('no sid cookie');
  return line.slice(0, line.indexOf(';'));
}

describe('sessions() middleware', () => {
  it.each(['/text', '/json', '/redirect', '/response', '/immutable'])(
    'sends the Set-Cookie for a response built by %s',
    async (path) => {
      const response = await app().request(`https://app.example${path}`);
      expect(response.status).toBeLessThan(400);
      const cookie = cookieOf(response);
      expect(cookie).toMatch(/^sid=Fe26\.2\*/);
      const read = await app().request('https://app.example/read', { headers: { cookie } });
      expect(await read.text()).toBe('1');
    },
  );

  it('keeps the handler response intact when it re-wraps immutable headers', async () => {
    const response = await app().request('https://app.example/immutable');
    expect(response.status).toBe(302);
    expect(response.headers.get('location')).toBe('https://app.example/text');
  });

  it('writes nothing and sends no cookie for an unchanged session', async () => {
    const first = await app().request('https://app.example/text');
    const cookie = cookieOf(first);
    let response: Response | undefined;
    const commands = await t.commands.during(async () => {
      response = await app().request('https://app.example/read', { headers: { cookie } });
    });
    expect(commands).toEqual(['find']);
    expect(response?.headers.getSetCookie()).toEqual([]);
  });

  it('counts across requests and writes once per change', async () => {
    const cookie = cookieOf(await app().request('https://app.example/text'));
    for (let visit = 2; visit <= 4; visit++) {
      let body = '';
      const commands = await t.commands.during(async () => {
        body = await (await app().request('https://app.example/text', { headers: { cookie } })).text();
      });
      expect(body).toBe(String(visit));
      expect(commands).toEqual(['find', 'update']);
    }
  });

  it('does not save when the handler throws', async () => {
    const cookie = cookieOf(await app().request('https://app.example/text'));
    const commands = await t.commands.during(async () => {
      const response = await app().request('https://app.example/throws', { headers: { cookie } });
      expect(response.status).toBe(500);
      expect(response.headers.getSetCookie()).toEqual([]);
    });
    expect(commands).toEqual(['find']);
    expect(await (await app().request('https://app.example/read', { headers: { cookie } })).text()).toBe('1');
  });

  it('shares the registry with handlers that call the store with c.req and save to the Context', async () => {
    const direct = new Hono<SessionEnv<{ visits: number }>>();
    direct.use(sessions(store, { name: 'sid' }));
    direct.get('/', async (c) => {
      const session = await store.get(c.req, 'sid');
      expect(session).toBe(c.get('session'));
      const other = await store.get(c.req, 'other');
      other.values.visits = 9;
      await store.save(c.req, c, other);
      return c.text('ok');
    });
    const response = await direct.request('https://app.example/');
    expect(response.headers.getSetCookie().map((c) => c.split('=')[0])).toEqual(['other']);
  });

  it('stores a new session only once it holds values, unless saveUninitialized', async () => {
    const empty = new Hono<SessionEnv<{ visits: number }>>();
    empty.use(sessions(store, { name: 'sid' }));
    empty.get('/', (c) => c.text('hi'));
    const commands = await t.commands.during(async () => {
      expect((await empty.request('https://app.example/')).headers.getSetCookie()).toEqual([]);
    });
    expect(commands).toEqual([]);

    const eagerStore = new MongoStore<{ visits: number }>(t.db, {
      keyPairs: [{ authentication: randomKey() }],
      collection: `eager_${randomBytes(4).toString('hex')}`,
      saveUninitialized: true,
    });
    const eager = new Hono<SessionEnv<{ visits: number }>>();
    eager.use(sessions(eagerStore, { name: 'sid' }));
    eager.get('/', (c) => c.text('hi'));
    const response = await eager.request('https://app.example/');
    expect(cookieOf(response)).toMatch(/^sid=Fe26/);
  });

  it('a request held open across a forced logout cannot sign back in by regenerating', async () => {
    type Owned = { user: string; provider: string };
    const owned = new MongoStore<Owned>(t.db, { keyPairs: [{ authentication: randomKey() }], collection: `held_${randomBytes(4).toString('hex')}` });
    const app = new Hono<SessionEnv<Owned>>();
    app.use(sessions(owned, { name: 'sid' }));
    app.post('/login', (c) => {
      c.get('session').values = { user: 'victim', provider: 'password' };
      return c.text('in');
    });
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let loaded: () => void = () => {};
    const sessionLoaded = new Promise<void>((resolve) => {
      loaded = resolve;
    });
    app.post('/elevate', async (c) => {
      loaded(); // the middleware has loaded the session by now
      await held; // the attacker keeps the request body open
      c.get('session').regenerate();
      return c.text('elevated');
    });

    const login = await app.request('https://app.example/login', { method: 'POST' });
    const cookie = cookieOf(login);
    const attack = app.request('https://app.example/elevate', { method: 'POST', headers: { cookie } });
    await sessionLoaded;
    expect(await owned.expireSessions('victim', 'password')).toBe(1); // "sign out everywhere"
    release();
    const response = await attack;
    expect(response.headers.getSetCookie()).toEqual([expect.stringMatching(/^sid=;.*Max-Age=0/)]);
    expect(await owned.getActiveSessionsCount()).toBe(0);
  });

  it('refuses a bad cookie name when mounted, not on the first request', () => {
    expect(() => sessions(store, { name: 'bad name' })).toThrow(SessionOptionsError);
    expect(() => sessions(store, { name: 'a;b' })).toThrow(SessionOptionsError);
    expect(() => sessions(store, { name: '' })).toThrow(SessionOptionsError);
    const plain = new MongoStore(t.db, { keyPairs: [{ authentication: randomKey() }], options: { secure: false } });
    expect(() => sessions(plain, { name: '__Host-sid' })).toThrow(/requires secure/);
    expect(() => sessions(store, { name: '__Host-sid' })).not.toThrow();
  });

  it('saves every session the store handed out for the request, in order, not only its own', async () => {
    const app = new Hono<SessionEnv<{ visits: number }>>();
    app.use(sessions(store, { name: 'sid' }));
    app.get('/', async (c) => {
      c.get('session').values.visits = 1;
      const prefs = await store.get(c.req, 'prefs');
      prefs.values.visits = 2;
      return c.text('ok');
    });
    const response = await app.request('https://app.example/');
    expect(response.headers.getSetCookie().map((line) => line.split('=')[0])).toEqual(['sid', 'prefs']);
  });

  it('lets the context key be chosen, so two middlewares can be mounted', async () => {
    type Prefs = { theme: string };
    const prefsStore = new MongoStore<Prefs>(t.db, { keyPairs: [{ authentication: randomKey() }], collection: `prefs_${randomBytes(4).toString('hex')}` });
    const app = new Hono<SessionEnv<{ visits: number }> & SessionEnv<Prefs, 'prefs'>>();
    app.use(sessions(store, { name: 'sid' }));
    app.use(sessions(prefsStore, { name: 'prefs', contextKey: 'prefs' }));
    app.get('/', (c) => {
      c.get('session').values.visits = 1;
      c.get('prefs').values.theme = 'dark';
      expectTypeOf(c.get('prefs').values.theme).toEqualTypeOf<string | undefined>();
      return c.text('ok');
    });
    app.get('/read', (c) => c.json({ visits: c.get('session').values.visits, theme: c.get('prefs').values.theme }));
    const first = await app.request('https://app.example/');
    const cookies = first.headers.getSetCookie();
    expect(cookies.map((line) => line.split('=')[0]).sort()).toEqual(['prefs', 'sid']);
    const header = cookies.map((line) => line.slice(0, line.indexOf(';'))).join('; ');
    expect(await (await app.request('https://app.example/read', { headers: { cookie: header } })).json()).toEqual({ visits: 1, theme: 'dark' });
  });

  it('clears a dead cookie on the response that first sees it, even when nothing is saved', async () => {
    const app = new Hono<SessionEnv<{ visits: number }>>();
    app.use(sessions(store, { name: 'sid' }));
    app.get('/', (c) => c.text(c.get('session').error ?? 'none'));
    const response = await app.request('https://app.example/', { headers: { cookie: 'sid=Fe26.2**garbage' } });
    expect(await response.text()).toBe('malformed');
    expect(response.headers.getSetCookie()).toEqual([expect.stringMatching(/^sid=; Max-Age=0;/)]);
  });

  it('signs out and flashes on a fresh session in one response (destroy, then store.new)', async () => {
    const app = new Hono<SessionEnv<{ visits: number }>>();
    app.use(sessions(store, { name: 'sid' }));
    app.post('/in', (c) => {
      c.get('session').values.visits = 1;
      return c.text('in');
    });
    app.post('/out', async (c) => {
      c.get('session').destroy();
      (await store.new(c.req, 'sid')).addFlash('You are signed out');
      return c.redirect('/', 303);
    });
    app.get('/', (c) => c.json({ flashes: c.get('session').flashes(), visits: c.get('session').values.visits ?? null }));
    const signedIn = cookieOf(await app.request('https://app.example/in', { method: 'POST' }));
    const out = await app.request('https://app.example/out', { method: 'POST', headers: { cookie: signedIn } });
    // One Set-Cookie for the name (RFC 6265 4.1.1): the fresh session's, no clearing one before it.
    const lines = out.headers.getSetCookie();
    expect(lines).toEqual([expect.stringMatching(/^sid=Fe26\.2/)]);
    const after = lines[0]?.slice(0, lines[0].indexOf(';')) ?? '';
    expect(await (await app.request('https://app.example/', { headers: { cookie: after } })).json()).toEqual({
      flashes: ['You are signed out'],
      visits: null,
    });
    expect(await (await app.request('https://app.example/', { headers: { cookie: signedIn } })).json()).toMatchObject({ visits: null });
  });

  it('delivers the cookies of the saves that were written even when a later save fails', async () => {
    const app = new Hono<SessionEnv<{ visits: number }>>();
    app.use(sessions(store, { name: 'sid' }));
    app.onError((_, c) => c.text('failed', 500));
    app.get('/', async (c) => {
      c.get('session').values.visits = 1;
      (await store.get(c.req, 'prefs')).values.visits = 'x'.repeat(2 << 20) as unknown as number; // too large
      return c.text('ok');
    });
    const response = await app.request('https://app.example/');
    expect(response.status).toBe(500);
    expect(response.headers.getSetCookie().map((line) => line.split('=')[0])).toEqual(['sid']);
  });

  it('refuses unknown middleware options and an empty context key', () => {
    expect(() => sessions(store, { name: 'sid', saveUninitialized: true } as never)).toThrow(/unknown option "saveUninitialized"/);
    expect(() => sessions(store, { name: 'sid', contextKey: '' })).toThrow(/contextKey/);
  });

  it('types the session on the context', () => {
    const typed = new Hono<SessionEnv<{ visits: number }>>();
    typed.get('/', (c) => {
      expectTypeOf(c.get('session').values.visits).toEqualTypeOf<number | undefined>();
      return c.text('');
    });
  });
});
