/**
 * A write whose acknowledgement is lost: a proxy on loopback forwards the
 * write to the server, then drops the connection instead of forwarding the
 * reply. The write is applied; the app sees an error (or, on a MongoDB
 * replica set, the driver retries it once and the server recognises the
 * retry). Retried by the app, the save must not store the session twice,
 * nor fail with a duplicate key, nor change what is stored.
 */
import { randomBytes } from 'node:crypto';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { MongoClient } from 'mongodb';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { MongoStore, type Session, SessionStoreError } from '../../src/index.ts';
import { PostgresSessionStore } from '../../src/postgres/index.ts';
import type { SessionStore } from '../../src/session-store.ts';
import { onlyCookie, randomKey, requestWith } from '../support/http.ts';

/** A TCP proxy that can lose the reply to the next request containing `pattern`. */
class LossyProxy {
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  #armed: Buffer | undefined;
  lost = 0;

  constructor(upstreamHost: string, upstreamPort: number) {
    this.#server = createServer((client) => {
      const upstream = createConnection(upstreamPort, upstreamHost);
      this.#sockets.add(client).add(upstream);
      let dropNextReply = false;
      client.on('data', (chunk: Buffer) => {
        if (this.#armed !== undefined && chunk.includes(this.#armed)) {
          this.#armed = undefined;
          dropNextReply = true;
        }
        upstream.write(chunk);
      });
      upstream.on('data', (chunk: Buffer) => {
        if (dropNextReply) {
          // The server has applied the write and answered: the answer is lost.
          this.lost += 1;
          client.destroy();
          upstream.destroy();
          return;
        }
        client.write(chunk);
      });
      const close = () => {
        client.destroy();
        upstream.destroy();
      };
      client.on('error', close).on('close', close);
      upstream.on('error', close).on('close', close);
    });
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    return (this.#server.address() as { port: number }).port;
  }

  /** Loses the reply to the next request whose bytes contain `pattern`. */
  loseNextReplyTo(pattern: string | Buffer): void {
    this.#armed = Buffer.isBuffer(pattern) ? pattern : Buffer.from(pattern);
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise((resolve) => this.#server.close(resolve));
  }
}

type Values = { user?: string; provider?: string; cart?: string[] };
const keyPairs = [{ authentication: randomKey() }];

/** Saves; when the reply is lost and the save rejects, saves again as an app would (the same request, the same Session). */
async function saveWithRetry(store: SessionStore<Values>, req: Request, session: Session<Values>, headers: Headers) {
  try {
    return { first: 'resolved', outcome: await store.save(req, headers, session) };
  } catch (error) {
    expect(error).toBeInstanceOf(SessionStoreError);
    expect(String(error)).not.toMatch(/duplicate key|E11000|23505/);
    return { first: 'rejected', outcome: await store.save(req, headers, session) };
  }
}

interface Target {
  name: string;
  store: SessionStore<Values>;
  proxy: LossyProxy;
  insert: string | Buffer;
  update: string | Buffer;
  /** Each write of a regeneration whose reply can be lost. */
  regeneration: (string | Buffer)[];
  liveCount(): Promise<number>;
  close(): Promise<void>;
}

const targets: (() => Promise<Target>)[] = [
  async () => {
    const url = new URL(inject('mongoUri'));
    const proxy = new LossyProxy(url.hostname, Number(url.port));
    const port = await proxy.listen();
    const client = new MongoClient(`mongodb://127.0.0.1:${port}/?directConnection=true`, { serverSelectionTimeoutMS: 3000 });
    const db = client.db(`lost_${randomBytes(4).toString('hex')}`);
    const store = new MongoStore<Values>(db, { keyPairs, cleanupInterval: 0, timeoutMs: 5000 });
    await store.init();
    return {
      name: 'MongoDB',
      store,
      proxy,
      // OP_MSG: the command document's first element, a string named after the command.
      insert: Buffer.from('\x02insert\x00', 'latin1'),
      update: Buffer.from('\x02update\x00', 'latin1'),
      regeneration: [Buffer.from('\x02insert\x00', 'latin1'), Buffer.from('\x02findAndModify\x00', 'latin1')],
      liveCount: () => store.getActiveSessionsCount(),
      close: async () => {
        await db.dropDatabase().catch(() => {});
        await client.close(true);
        await proxy.close();
      },
    };
  },
  async () => {
    const url = new URL(inject('pgUri'));
    const proxy = new LossyProxy(url.hostname, Number(url.port));
    const port = await proxy.listen();
    url.host = `127.0.0.1:${port}`;
    const pool = new pg.Pool({ connectionString: url.toString() });
    pool.on('error', () => {}); // a dropped idle connection
    const store = new PostgresSessionStore<Values>(pool, { keyPairs, table: `lost_${randomBytes(4).toString('hex')}`, cleanupInterval: 0, timeoutMs: 5000 });
    await store.init();
    return {
      name: 'PostgreSQL',
      store,
      proxy,
      insert: 'INSERT INTO',
      update: 'UPDATE',
      regeneration: ['WITH prior'],
      liveCount: () => store.getActiveSessionsCount(),
      close: async () => {
        await pool.end().catch(() => {});
        await proxy.close();
      },
    };
  },
];

describe.each(targets.map((make, index) => ({ make, name: index === 0 ? 'MongoDB' : 'PostgreSQL' })))('a lost acknowledgement on $name', ({ make }) => {
  let t: Target;
  beforeAll(async () => {
    t = await make();
  });
  afterAll(() => t.close());

  it('a sign-in whose insert was applied but not acknowledged, saved again: one session, no duplicate-key error', async () => {
    const before = await t.liveCount();
    const req = requestWith();
    const session = await t.store.get(req, 'sid');
    session.values = { user: 'alice', provider: 'password', cart: ['book'] };
    const headers = new Headers();
    t.proxy.loseNextReplyTo(t.insert);
    const lostBefore = t.proxy.lost;
    const result = await saveWithRetry(t.store, req, session, headers);
    expect(t.proxy.lost).toBe(lostBefore + 1);
    expect(result.outcome).toBe('created');
    expect(await t.liveCount()).toBe(before + 1);
    expect(await t.store.listSessions('alice', 'password')).toHaveLength(1);
    const next = await t.store.get(requestWith({ sid: onlyCookie(headers).value }), 'sid');
    expect(next.values).toEqual({ user: 'alice', provider: 'password', cart: ['book'] });
    expect(next.handle).toBe(session.handle);
  });

  it('a changed save whose update was applied but not acknowledged, saved again: the same values, stored once', async () => {
    const created = new Headers();
    const first = requestWith();
    const fresh = await t.store.get(first, 'sid');
    fresh.values = { cart: ['book'] };
    await t.store.save(first, created, fresh);
    const cookie = onlyCookie(created).value;

    const req = requestWith({ sid: cookie });
    const session = await t.store.get(req, 'sid');
    session.values.cart = ['book', 'pen'];
    t.proxy.loseNextReplyTo(t.update);
    const result = await saveWithRetry(t.store, req, session, new Headers());
    expect(['updated', 'unchanged']).toContain(result.outcome);
    expect((await t.store.get(requestWith({ sid: cookie }), 'sid')).values).toEqual({ cart: ['book', 'pen'] });
  });

  it('a sign-in by update (the owner changes) applied but not acknowledged: signed in, values intact, the cookie works', async () => {
    const created = new Headers();
    const first = requestWith();
    const fresh = await t.store.get(first, 'sid');
    fresh.values = { cart: ['tea'] };
    await t.store.save(first, created, fresh);
    const cookie = onlyCookie(created).value;

    const req = requestWith({ sid: cookie });
    const session = await t.store.get(req, 'sid');
    session.values = { ...session.values, user: 'bob', provider: 'password' };
    t.proxy.loseNextReplyTo(t.update);
    const result = await saveWithRetry(t.store, req, session, new Headers());
    // The first attempt moved the owner tenure, so the retry's guard misses
    // and reports 'superseded'; what is stored is what one save stores.
    expect(['updated', 'superseded']).toContain(result.outcome);
    expect((await t.store.get(requestWith({ sid: cookie }), 'sid')).values).toEqual({ cart: ['tea'], user: 'bob', provider: 'password' });
    expect(await t.store.listSessions('bob', 'password')).toHaveLength(1);
  });

  it('content changed between the failed and the retried create: the attempt\'s record is deleted, the retry\'s stored', async () => {
    const req = requestWith();
    const session = await t.store.get(req, 'sid');
    session.values = { user: 'carol', provider: 'password' };
    t.proxy.loseNextReplyTo(t.insert);
    await expect(t.store.save(req, new Headers(), session)).rejects.toBeInstanceOf(SessionStoreError);
    session.values = { cart: ['anonymous'] }; // the handler falls back
    const headers = new Headers();
    expect(await t.store.save(req, headers, session)).toBe('created');
    expect(await t.store.listSessions('carol', 'password')).toEqual([]);
    expect((await t.store.get(requestWith({ sid: onlyCookie(headers).value }), 'sid')).values).toEqual({ cart: ['anonymous'] });
  });

  it('destroy() after a failed create deletes what the attempt stored', async () => {
    const req = requestWith();
    const session = await t.store.get(req, 'sid');
    session.values = { user: 'erin', provider: 'password' };
    t.proxy.loseNextReplyTo(t.insert);
    await expect(t.store.save(req, new Headers(), session)).rejects.toBeInstanceOf(SessionStoreError);
    session.destroy();
    expect(await t.store.save(req, new Headers(), session)).toBe('deleted');
    expect(await t.store.listSessions('erin', 'password')).toEqual([]);
  });

  it('a regenerate() whose write was applied but not acknowledged, saved again: signed in once, the cookie works', async () => {
    for (const [index, pattern] of t.regeneration.entries()) {
      const user = `frank${index}`;
      const created = new Headers();
      const first = requestWith();
      const fresh = await t.store.get(first, 'sid');
      fresh.values = { cart: ['jam'] };
      await t.store.save(first, created, fresh);
      const req = requestWith({ sid: onlyCookie(created).value });
      const session = await t.store.get(req, 'sid');
      session.regenerate();
      session.values = { ...session.values, user, provider: 'password' };
      t.proxy.loseNextReplyTo(pattern);
      const headers = new Headers();
      const result = await saveWithRetry(t.store, req, session, headers);
      expect({ pattern: String(pattern), outcome: result.outcome }).toEqual({ pattern: String(pattern), outcome: 'created' });
      expect(await t.store.listSessions(user, 'password')).toHaveLength(1);
      expect((await t.store.get(requestWith({ sid: onlyCookie(headers).value }), 'sid')).values).toEqual({ cart: ['jam'], user, provider: 'password' });
    }
  });
});
