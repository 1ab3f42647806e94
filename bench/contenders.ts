/**
 * Every contender as its own framework's idiomatic app, all answering the
 * same three routes:
 *   GET /new   a new visitor: the session gets visits = 1 and is saved
 *   GET /read  a returning visitor reads visits; nothing changes
 *   GET /incr  a returning visitor increments visits
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import MongoConnect from 'connect-mongo';
import express from 'express';
import expressSession from 'express-session';
import { Hono } from 'hono';
import { getCookie, setCookie } from 'hono/cookie';
import { CookieStore, type Session as HonoSession, sessionMiddleware } from 'hono-sessions';
import type { Db, MongoClient } from 'mongodb';
import type { Pool } from 'pg';
import { type SessionEnv, sessions } from '../src/hono.ts';
import { MongoStore } from '../src/index.ts';
import { PostgresSessionStore } from '../src/postgres/index.ts';
import type { SessionStore } from '../src/session-store.ts';

export type Handler =
  | { kind: 'fetch'; fetch: (request: Request) => Response | Promise<Response> }
  | { kind: 'node'; listener: (req: IncomingMessage, res: ServerResponse) => void };

/** The databases a contender may use, opened by the server process. */
export interface Databases {
  client: MongoClient;
  db: Db;
  /** Opened only for contenders with `usesPostgres`. */
  pool: Pool | undefined;
}

export interface Contender {
  /** Shown in the tables. */
  label: string;
  /** The bare app of the same framework, subtracted to get the session's own cost. */
  baseline: 'bare-hono' | 'bare-express' | null;
  /** Which HTTP scenarios apply. */
  scenarios: readonly HttpScenario[];
  usesPostgres?: boolean;
  build(databases: Databases): Handler | Promise<Handler>;
}

export type HttpScenario = 'new' | 'read' | 'incr';
const all: readonly HttpScenario[] = ['new', 'read', 'incr'];
const month = 30 * 24 * 60 * 60;
const secret = 'a benchmark secret that is long enough to be a key';
type Values = { visits: number };

export const contenders: Record<string, Contender> = {
  'bare-hono': {
    label: 'Hono, no session',
    baseline: null,
    scenarios: all,
    build: () => {
      const app = new Hono();
      app.get('/new', (c) => c.text('1'));
      app.get('/read', (c) => c.text('1'));
      app.get('/incr', (c) => c.text('2'));
      return { kind: 'fetch', fetch: app.fetch };
    },
  },

  'bare-express': {
    label: 'Express, no session',
    baseline: null,
    scenarios: all,
    build: () => {
      const app = express();
      app.get('/new', (_req, res) => void res.send('1'));
      app.get('/read', (_req, res) => void res.send('1'));
      app.get('/incr', (_req, res) => void res.send('2'));
      return { kind: 'node', listener: app };
    },
  },

  'mongostore-hono': {
    label: 'mongostore (Hono middleware)',
    baseline: 'bare-hono',
    scenarios: all,
    build: async ({ db }) => middlewareApp(new MongoStore<Values>(db, { keyPairs: [{ authentication: randomBytes(32) }] })),
  },

  'postgres-hono': {
    label: 'mongostore/postgres (Hono middleware)',
    baseline: 'bare-hono',
    scenarios: all,
    usesPostgres: true,
    build: async ({ pool }) => {
      if (!pool) throw new Error('postgres-hono needs a PostgreSQL pool');
      return middlewareApp(new PostgresSessionStore<Values>(pool, { keyPairs: [{ authentication: randomBytes(32) }] }));
    },
  },

  'mongostore-plain': {
    label: 'mongostore (plain get/save)',
    baseline: 'bare-hono',
    scenarios: all,
    build: async ({ db }) => {
      const store = new MongoStore<Values>(db, { keyPairs: [{ authentication: randomBytes(32) }] });
      await store.init();
      const app = new Hono();
      for (const [path, update] of [
        ['/new', (v: Partial<Values>) => void (v.visits = 1)],
        ['/read', () => {}],
        ['/incr', (v: Partial<Values>) => void (v.visits = (v.visits ?? 0) + 1)],
      ] as const) {
        app.get(path, async (c) => {
          const session = await store.get(c.req, 'sid');
          update(session.values);
          await store.save(c.req, c, session);
          return c.text(String(session.values.visits));
        });
      }
      return { kind: 'fetch', fetch: app.fetch };
    },
  },

  'express-session': {
    label: 'express-session + connect-mongo',
    baseline: 'bare-express',
    scenarios: all,
    build: ({ client, db }) => {
      const app = express();
      app.use(
        expressSession({
          secret,
          resave: false,
          saveUninitialized: false,
          // express-session drops Secure cookies on plain-http requests, so
          // over loopback http the cookie cannot be Secure here.
          cookie: { maxAge: month * 1000, httpOnly: true, sameSite: 'lax', secure: false },
          store: MongoConnect.create({
            client,
            dbName: db.databaseName,
            ttl: month,
            touchAfter: 3600,
            // 'native' needs a TTL index, which FerretDB 1.x refuses.
            autoRemove: 'interval',
            autoRemoveInterval: 10,
          }),
        }),
      );
      const session = (req: express.Request) => req.session as typeof req.session & Partial<Values>;
      app.get('/new', (req, res) => {
        session(req).visits = 1;
        res.send('1');
      });
      app.get('/read', (req, res) => void res.send(String(session(req).visits)));
      app.get('/incr', (req, res) => {
        const s = session(req);
        s.visits = (s.visits ?? 0) + 1;
        res.send(String(s.visits));
      });
      return { kind: 'node', listener: app };
    },
  },

  'hono-sessions': {
    label: 'hono-sessions (CookieStore)',
    baseline: 'bare-hono',
    scenarios: all,
    build: () => {
      const app = new Hono<{ Variables: { session: HonoSession<Values>; session_key_rotation: boolean } }>();
      app.use(
        sessionMiddleware({
          store: new CookieStore(),
          encryptionKey: secret,
          expireAfterSeconds: month,
          cookieOptions: { sameSite: 'Lax', path: '/', httpOnly: true, secure: true },
        }),
      );
      app.get('/new', (c) => {
        c.get('session').set('visits', 1);
        return c.text('1');
      });
      app.get('/read', (c) => c.text(String(c.get('session').get('visits'))));
      app.get('/incr', (c) => {
        const session = c.get('session');
        const visits = (session.get('visits') ?? 0) + 1;
        session.set('visits', visits);
        return c.text(String(visits));
      });
      return { kind: 'fetch', fetch: app.fetch };
    },
  },

  floor: {
    label: 'floor (bare _id commands)',
    baseline: 'bare-hono',
    scenarios: all,
    build: ({ db }) => {
      // What a server-side session cannot do without, and nothing more: a
      // random id, an insert, reads and updates by `_id` alone (the one
      // filter every MongoDB-compatible server resolves through its `_id`
      // index, FerretDB 1.x included), the expiry checked here; no crypto.
      interface Doc {
        _id: string;
        visits: number;
        expiresAt: Date;
      }
      const docs = db.collection<Doc>('floor_sessions');
      const app = new Hono();
      const live = async (id: string) => {
        const doc = await docs.findOne({ _id: id });
        return doc !== null && doc.expiresAt.getTime() > Date.now() ? doc : undefined;
      };
      const expiresAt = () => new Date(Date.now() + month * 1000);
      app.get('/new', async (c) => {
        const id = randomBytes(32).toString('base64url');
        await docs.insertOne({ _id: id, visits: 1, expiresAt: expiresAt() });
        setCookie(c, 'sid', id, { httpOnly: true, secure: true, sameSite: 'Lax', maxAge: month });
        return c.text('1');
      });
      app.get('/read', async (c) => c.text(String((await live(getCookie(c, 'sid') ?? ''))?.visits)));
      app.get('/incr', async (c) => {
        const id = getCookie(c, 'sid') ?? '';
        const visits = ((await live(id))?.visits ?? 0) + 1;
        await docs.updateOne({ _id: id }, { $set: { visits, expiresAt: expiresAt() } });
        return c.text(String(visits));
      });
      return { kind: 'fetch', fetch: app.fetch };
    },
  },

  'floor-postgres': {
    label: 'floor (bare primary-key SQL)',
    baseline: 'bare-hono',
    scenarios: all,
    usesPostgres: true,
    build: async ({ pool }) => {
      if (!pool) throw new Error('floor-postgres needs a PostgreSQL pool');
      // The same as the MongoDB floor, by primary key (in the run's own schema).
      await pool.query('CREATE TABLE IF NOT EXISTS floor_sessions (id text PRIMARY KEY, visits integer NOT NULL, expires_at timestamptz NOT NULL)');
      const app = new Hono();
      const live = async (id: string) =>
        (await pool.query<{ visits: number; expires_at: Date }>('SELECT visits, expires_at FROM floor_sessions WHERE id = $1', [id])).rows.find(
          (row) => row.expires_at.getTime() > Date.now(),
        );
      const expiresAt = () => new Date(Date.now() + month * 1000);
      app.get('/new', async (c) => {
        const id = randomBytes(32).toString('base64url');
        await pool.query('INSERT INTO floor_sessions (id, visits, expires_at) VALUES ($1, $2, $3)', [id, 1, expiresAt()]);
        setCookie(c, 'sid', id, { httpOnly: true, secure: true, sameSite: 'Lax', maxAge: month });
        return c.text('1');
      });
      app.get('/read', async (c) => c.text(String((await live(getCookie(c, 'sid') ?? ''))?.visits)));
      app.get('/incr', async (c) => {
        const id = getCookie(c, 'sid') ?? '';
        const visits = ((await live(id))?.visits ?? 0) + 1;
        await pool.query('UPDATE floor_sessions SET visits = $2, expires_at = $3 WHERE id = $1', [id, visits, expiresAt()]);
        return c.text(String(visits));
      });
      return { kind: 'fetch', fetch: app.fetch };
    },
  },
};

/** The same three routes through the `sessions()` middleware, over any backend. */
async function middlewareApp(store: SessionStore<Values>): Promise<Handler> {
  await store.init();
  const app = new Hono<SessionEnv<Values>>();
  app.use(sessions(store, { name: 'sid' }));
  app.get('/new', (c) => {
    c.var.session.values.visits = 1;
    return c.text('1');
  });
  app.get('/read', (c) => c.text(String(c.var.session.values.visits)));
  app.get('/incr', (c) => {
    const values = c.var.session.values;
    values.visits = (values.visits ?? 0) + 1;
    return c.text(String(values.visits));
  });
  return { kind: 'fetch', fetch: app.fetch };
}
