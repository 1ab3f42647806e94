/**
 * The backends the contract suites run against, behind one test-side shape:
 * a store on a fresh collection or table, raw access to what it stored, and
 * the database commands it sent, named by kind so that MongoDB's `find` and
 * PostgreSQL's `SELECT` both count as a read.
 */
import { randomBytes } from 'node:crypto';
import { type Db, MongoClient } from 'mongodb';
import pg from 'pg';
import { inject } from 'vitest';
import type { SessionStoreConfig, TokenStoreConfig } from '../../src/index.ts';
import { MongoDBStore, MongoStore } from '../../src/index.ts';
import { PostgresSessionStore, PostgresStore } from '../../src/postgres/index.ts';
import type { SessionStore } from '../../src/session-store.ts';
import type { TokenStore } from '../../src/token-store.ts';
import type { Storable } from '../../src/values.ts';
import { CommandLog, recordQueries } from './commands.ts';
import { isFerretDB } from './database.ts';

export type CommandKind = 'read' | 'insert' | 'update' | 'delete' | 'schema' | 'other';

/** What a store stored for one id, read around the store. */
export interface RawRecord {
  user: string | undefined;
  provider: string | undefined;
  expiresAt: Date;
}

/** Direct access to one collection or table, for arranging and checking. */
export interface RawPlace {
  count(): Promise<number>;
  /** Records that are live sessions: expiry in the future, not replaced. */
  countLive(): Promise<number>;
  record(key: string): Promise<RawRecord | undefined>;
  keys(): Promise<string[]>;
  /** Keys of the live sessions (expiry in the future, not replaced). */
  liveKeys(): Promise<string[]>;
  setExpiry(key: string, at: Date): Promise<void>;
  expireAll(): Promise<void>;
  insertExpired(key: string): Promise<void>;
  remove(key: string): Promise<void>;
}

export interface Backend {
  readonly name: 'MongoDB' | 'PostgreSQL';
  open(): Promise<void>;
  close(): Promise<void>;
  /** A session store on a fresh place (or `place`, to share one), schema created unless `init` is false. */
  sessionStore<V extends Storable<V>>(config: SessionStoreConfig, place?: string, init?: boolean): Promise<{ store: SessionStore<V>; raw: RawPlace }>;
  tokenStore(config: TokenStoreConfig, place?: string): Promise<{ store: TokenStore; raw: RawPlace }>;
  /** Stores whose database cannot be reached (fails fast). */
  unreachable(): { sessions(config: SessionStoreConfig): SessionStore; tokens(config: TokenStoreConfig): TokenStore; close(): Promise<void> };
  /** Runs `action` and returns the kinds of the commands it sent. */
  during(action: () => Promise<unknown>): Promise<CommandKind[]>;
  /**
   * The kinds of the commands sent since `during` last started, so far: for
   * a test that polls, inside `during`, for what a background loop sent
   * (polling the database itself there would add reads to the log).
   */
  sentSoFar(): CommandKind[];
  /**
   * Runs the saves at once where the server makes a conditional update
   * atomic (MongoDB, PostgreSQL), in turn on FerretDB 1.24, whose racing
   * conditional updates can all match (pinned in test/server.test.ts).
   */
  saveConcurrently<T>(saves: (() => Promise<T>)[]): Promise<T[]>;
}

async function inTurn<T>(saves: (() => Promise<T>)[]): Promise<T[]> {
  const results: T[] = [];
  for (const save of saves) results.push(await save());
  return results;
}

const freshName = (prefix: string) => `${prefix}_${randomBytes(5).toString('hex')}`;

export function mongoBackend(): Backend {
  let client: MongoClient;
  let db: Db;
  const log = new CommandLog();
  const kinds: Record<string, CommandKind> = {
    find: 'read',
    aggregate: 'read',
    insert: 'insert',
    update: 'update',
    findAndModify: 'update',
    delete: 'delete',
    createIndexes: 'schema',
  };
  const raw = (name: string): RawPlace => {
    const docs = db.collection<{ _id: string; expiresAt: Date; user?: string; provider?: string; replaced?: true }>(name);
    return {
      count: () => docs.countDocuments(),
      countLive: () => docs.countDocuments({ expiresAt: { $gt: new Date() }, replaced: { $exists: false } }),
      record: async (key) => {
        const doc = await docs.findOne({ _id: key });
        return doc ? { user: doc.user, provider: doc.provider, expiresAt: doc.expiresAt } : undefined;
      },
      keys: async () => (await docs.find({}, { projection: { _id: 1 } }).toArray()).map((doc) => doc._id),
      liveKeys: async () =>
        (await docs.find({ expiresAt: { $gt: new Date() }, replaced: { $exists: false } }, { projection: { _id: 1 } }).toArray()).map(
          (doc) => doc._id,
        ),
      setExpiry: async (key, at) => void (await docs.updateOne({ _id: key }, { $set: { expiresAt: at } })),
      expireAll: async () => void (await docs.updateMany({}, { $set: { expiresAt: new Date(Date.now() - 1000) } })),
      insertExpired: async (key) => void (await docs.insertOne({ _id: key, expiresAt: new Date(Date.now() - 1000) })),
      remove: async (key) => void (await docs.deleteOne({ _id: key })),
    };
  };
  return {
    name: 'MongoDB',
    open: async () => {
      client = new MongoClient(inject('mongoUri'), { monitorCommands: true });
      client.on('commandStarted', (event) => log.record(event));
      await client.connect();
      db = client.db(freshName('t'));
    },
    close: async () => {
      await db.dropDatabase().catch(() => {});
      await client.close();
    },
    sessionStore: async <V extends Storable<V>>(config: SessionStoreConfig, place = freshName('sessions'), init = true) => {
      const store = new MongoStore<V>(db, { ...quietHousekeeping, ...config, collection: place });
      if (init) await store.init();
      return { store, raw: raw(place) };
    },
    tokenStore: async (config, place = freshName('tokens')) => {
      const store = new MongoDBStore(db, { ...config, collection: place });
      await store.init();
      return { store, raw: raw(place) };
    },
    unreachable: () => {
      const dead = new MongoClient('mongodb://127.0.0.1:9', { serverSelectionTimeoutMS: 50 });
      return {
        sessions: (config) => new MongoStore(dead.db('x'), config),
        tokens: (config) => new MongoDBStore(dead.db('x'), config),
        close: () => dead.close(),
      };
    },
    during: async (action) => (await log.during(action)).map((name) => kinds[name] ?? 'other'),
    sentSoFar: () => log.names().map((name) => kinds[name] ?? 'other'),
    saveConcurrently: async (saves) => ((await isFerretDB(db)) ? inTurn(saves) : Promise.all(saves.map((save) => save()))),
  };
}

/**
 * Stores made here do not start cleanup batches after their writes unless a
 * test asks (`cleanupInterval`): tests that list the commands a call sends
 * must see only those. test/housekeeping.test.ts tests the default.
 */
const quietHousekeeping = { cleanupInterval: 0 } as const;

export function postgresBackend(): Backend {
  let pool: pg.Pool;
  let schema: string;
  const log = new CommandLog();
  const kinds: Record<string, CommandKind> = {
    SELECT: 'read',
    INSERT: 'insert',
    UPDATE: 'update',
    DELETE: 'delete',
    CREATE: 'schema',
  };
  const raw = (table: string): RawPlace => {
    const q = async <Row extends object>(text: string, values: unknown[] = []) => (await pool.query<Row>(text, values)).rows;
    const t = `"${table}"`;
    return {
      count: async () => Number((await q<{ n: string }>(`SELECT count(*) AS n FROM ${t}`))[0]?.n),
      countLive: async () =>
        Number((await q<{ n: string }>(`SELECT count(*) AS n FROM ${t} WHERE expiry > now() AND NOT replaced`))[0]?.n),
      record: async (key) => {
        const row = (await q<{ user: string | null; provider: string | null; expiry: Date }>(
          `SELECT "user", provider, expiry FROM ${t} WHERE token = $1`,
          [key],
        ))[0];
        return row ? { user: row.user ?? undefined, provider: row.provider ?? undefined, expiresAt: row.expiry } : undefined;
      },
      keys: async () => (await q<{ token: string }>(`SELECT token FROM ${t}`)).map((row) => row.token),
      liveKeys: async () =>
        (await q<{ token: string }>(`SELECT token FROM ${t} WHERE expiry > now() AND NOT replaced`)).map((row) => row.token),
      setExpiry: async (key, at) => void (await q(`UPDATE ${t} SET expiry = $2 WHERE token = $1`, [key, at])),
      expireAll: async () => void (await q(`UPDATE ${t} SET expiry = now() - interval '1 second'`)),
      insertExpired: async (key) =>
        void (await q(`INSERT INTO ${t} (token, data, expiry) VALUES ($1, '\\x'::bytea, now() - interval '1 second')`, [key])),
      remove: async (key) => void (await q(`DELETE FROM ${t} WHERE token = $1`, [key])),
    };
  };
  /** A pool whose queries are recorded, on this test file's own schema. */
  const recordingPool = () => {
    const recorded = new pg.Pool({ connectionString: inject('pgUri'), options: `-c search_path=${schema}` });
    recordQueries(recorded, (statement) => log.add(statement));
    return recorded;
  };
  return {
    name: 'PostgreSQL',
    open: async () => {
      schema = freshName('t');
      const admin = new pg.Client({ connectionString: inject('pgUri') });
      await admin.connect();
      await admin.query(`CREATE SCHEMA ${schema}`);
      await admin.end();
      pool = recordingPool();
    },
    close: async () => {
      await pool.query(`DROP SCHEMA ${schema} CASCADE`).catch(() => {});
      await pool.end();
    },
    sessionStore: async <V extends Storable<V>>(config: SessionStoreConfig, place = freshName('sessions'), init = true) => {
      const store = new PostgresSessionStore<V>(pool, { ...quietHousekeeping, ...config, table: place });
      if (init) await store.init();
      return { store, raw: raw(place) };
    },
    tokenStore: async (config, place = freshName('tokens')) => {
      const store = new PostgresStore(pool, { ...config, table: place });
      await store.init();
      return { store, raw: raw(place) };
    },
    unreachable: () => {
      const dead = new pg.Pool({ connectionString: 'postgres://postgres@127.0.0.1:9/postgres', connectionTimeoutMillis: 200 });
      return {
        sessions: (config) => new PostgresSessionStore(dead, config),
        tokens: (config) => new PostgresStore(dead, config),
        close: () => dead.end(),
      };
    },
    during: async (action) => (await log.during(action)).map((word) => kinds[word] ?? 'other'),
    sentSoFar: () => log.names().map((word) => kinds[word] ?? 'other'),
    saveConcurrently: (saves) => Promise.all(saves.map((save) => save())),
  };
}

/** Both backends, for `describe.each`. */
export const backends: Backend[] = [mongoBackend(), postgresBackend()];
