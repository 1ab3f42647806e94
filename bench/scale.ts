/**
 * The store's database operations at scale, through the store's own API, on
 * PostgreSQL (default 1,000,000 and 10,000,000 sessions) and on the
 * MongoDB-compatible server (default 100,000; FerretDB here), 10% of them
 * expired: a returning visitor's `get`, `expireSessions` of a 10-session
 * user, `listSessions` of that user, `getActiveSessionsCount`, the
 * live-session gauge's grouped count, and one `startAutoClean` tick (which
 * deletes every expired session in batches; before each run after the first,
 * the expired sessions are seeded again, untimed, and on PostgreSQL the table
 * vacuumed, so every run starts from the same table). Each with its median and the
 * server's plan of every statement or command it sent (PostgreSQL `EXPLAIN`,
 * MongoDB `explain`), saved with the results. On the MongoDB side it also
 * times the read filter the store used before 0.2 (`{ _id, expiresAt: { $gt } }`)
 * against the one it uses now (`{ _id }`).
 *
 *   node --import tsx bench/scale.ts
 *   BENCH_SCALE_PG=1000000 BENCH_SCALE_MONGO=100000 BENCH_RUNS=9 node --import tsx bench/scale.ts
 *   BENCH_SCALE_PG=2000 BENCH_SCALE_MONGO=2000 BENCH_RUNS=3 BENCH_OUT=/tmp/x ...   (CI's smoke run)
 */
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type Document, MongoClient } from 'mongodb';
import pg from 'pg';
import { resolveMongoServer } from '../servers/mongo.ts';
import { resolvePostgresServer } from '../servers/postgres.ts';
import { median } from './stats.ts';
import { defaultCleanupBatchSize, deleteInBatches } from '../src/cleanup.ts';
import { MongoStore, type SessionBackend, type SessionStore } from '../src/index.ts';
import { SessionCollection } from '../src/mongo/session-collection.ts';
import { PostgresSessionStore } from '../src/postgres/index.ts';
import { SessionTable } from '../src/postgres/session-table.ts';

const pgSizes = (process.env.BENCH_SCALE_PG ?? '1000000,10000000').split(',').filter(Boolean).map(Number);
const mongoSizes = (process.env.BENCH_SCALE_MONGO ?? '100000').split(',').filter(Boolean).map(Number);
const runs = Number(process.env.BENCH_RUNS ?? 9);
/** FerretDB (SQLite) scans for most operations: fewer runs there. */
const mongoRuns = Number(process.env.BENCH_MONGO_RUNS ?? Math.min(runs, 5));
/** Plans saved per operation: its first statements (a cleanup tick sends one per batch). */
const maxPlans = 3;
const out = process.env.BENCH_OUT ?? join(import.meta.dirname, 'results');
const keyPairs = [{ authentication: new Uint8Array(randomBytes(32)) }];
const user = 'scale-user';
const provider = 'password';

/** One operation's timings and the plans of what it sent. */
interface Row {
  backend: string;
  sessions: number;
  operation: string;
  medianMs: number;
  runs: number;
  /** How many statements or commands the first run sent. */
  commandCount: number;
  /** The first of them (a cleanup tick sends one per batch), with their plans. */
  commands: string[];
  plans: string[];
}


async function timed(action: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await action();
  return performance.now() - started;
}

/** A returning visitor: a cookie for a session the store saved itself. */
async function returningCookie(store: SessionStore<{ user?: string; provider?: string; visits?: number }>): Promise<string> {
  const req = new Request('https://app.example/');
  const session = await store.get(req, 'sid');
  session.values = { visits: 1 };
  const headers = new Headers();
  await store.save(req, headers, session);
  return (headers.getSetCookie()[0] ?? '').split(';')[0] ?? '';
}

async function signInTen(store: SessionStore<{ user?: string; provider?: string; visits?: number }>): Promise<void> {
  for (let i = 0; i < 10; i++) {
    const req = new Request('https://app.example/', { headers: { 'user-agent': `Browser ${i}` } });
    const session = await store.get(req, 'sid');
    session.values = { user, provider, visits: i };
    await store.save(req, new Headers(), session);
  }
}

/** Times `operation` `count` times (after `before`, untimed) and asks `explain` for the plan of each statement it sent. */
async function measure(
  rows: Row[],
  base: Omit<Row, 'operation' | 'medianMs' | 'runs' | 'commandCount' | 'commands' | 'plans'>,
  operation: string,
  count: number,
  action: () => Promise<unknown>,
  capture: { start(): void; stop(): Promise<{ commands: string[]; plans: string[] }> },
  before: () => Promise<unknown> = async () => {},
): Promise<void> {
  const times: number[] = [];
  let sent = { commands: [] as string[], plans: [] as string[] };
  for (let i = 0; i < count; i++) {
    await before();
    if (i === 0) capture.start();
    times.push(await timed(action));
    if (i === 0) sent = await capture.stop();
  }
  const row = { ...base, operation, medianMs: median(times), runs: count, commandCount: sent.commands.length, commands: sent.commands.slice(0, maxPlans), plans: sent.plans };
  rows.push(row);
  console.error(`scale: ${base.backend} ${base.sessions}: ${operation} ${row.medianMs.toFixed(2)} ms`);
}

async function postgres(rows: Row[], pool: pg.Pool, sessions: number): Promise<void> {
  const table = `scale_${sessions}`;
  await pool.query(`DROP TABLE IF EXISTS ${table}`);
  const store = new PostgresSessionStore<{ user?: string; provider?: string; visits?: number }>(pool, { keyPairs, table, telemetry: false });
  await store.init();
  const seeded = performance.now();
  // Filler in one statement per million: 10% expired (every tenth row), a
  // few providers, no owner for most. `expiredOnly`: the expired tenth
  // alone, the same rows again (after a cleanup tick deleted them).
  const seed = async (expiredOnly: boolean) => {
    for (let from = 1; from <= sessions; from += 1_000_000) {
      const to = Math.min(sessions, from + 999_999);
      await pool.query(
        `INSERT INTO ${table} (token, data, entries, flashes, epoch, expiry, "user", provider, created_at, updated_at, handle)
         SELECT md5(i::text) || md5((i + 7)::text), '\\x'::bytea, '{"kdmlzaXRz": "1"}'::jsonb, '{}'::jsonb, 1,
                CASE WHEN i % 10 = 0 THEN now() - interval '1 hour' ELSE now() + interval '1 day' END,
                CASE WHEN i % 3 = 0 THEN 'u' || i END, CASE WHEN i % 3 = 0 THEN (ARRAY['password', 'github', 'google'])[i % 3 + 1] END,
                now(), now(), substr(md5(i::text), 1, 22)
         FROM generate_series($1::bigint, $2::bigint) AS i${expiredOnly ? ' WHERE i % 10 = 0' : ''}`,
        [from, to],
      );
    }
    await pool.query(`VACUUM ANALYZE ${table}`);
  };
  await seed(false);
  console.error(`scale: PostgreSQL ${sessions} seeded in ${((performance.now() - seeded) / 1000).toFixed(0)} s`);

  const statements: { text: string; values: unknown[] }[] = [];
  let recording = false;
  const query = pool.query.bind(pool) as (...args: unknown[]) => Promise<unknown>;
  pool.query = ((...args: unknown[]) => {
    if (recording && typeof args[0] === 'string') statements.push({ text: args[0], values: (args[1] as unknown[] | undefined) ?? [] });
    return query(...args);
  }) as typeof pool.query;
  const capture = {
    start: () => {
      statements.length = 0;
      recording = true;
    },
    stop: async () => {
      recording = false;
      const plans: string[] = [];
      for (const statement of statements.slice(0, maxPlans)) {
        // Writes are explained with ANALYZE inside a transaction that is rolled back.
        const client = await pool.connect();
        try {
          await client.query('BEGIN');
          const result = await client.query<{ 'QUERY PLAN': string }>(`EXPLAIN (ANALYZE, BUFFERS) ${statement.text}`, statement.values);
          plans.push(result.rows.map((row) => row['QUERY PLAN']).join('\n'));
        } finally {
          await client.query('ROLLBACK');
          client.release();
        }
      }
      return { commands: statements.map((statement) => statement.text.replace(/\s+/g, ' ').trim()), plans };
    },
  };
  const base = { backend: 'PostgreSQL', sessions };
  const cookie = await returningCookie(store);
  await measure(rows, base, 'get (returning visitor)', runs * 5, () => store.get(new Request('https://app.example/', { headers: { cookie } }), 'sid'), capture);
  await measure(rows, base, 'expireSessions (10 sessions)', runs, () => store.expireSessions(user, provider), capture, () => signInTen(store));
  await signInTen(store);
  await measure(rows, base, 'listSessions (10 sessions)', runs, () => store.listSessions(user, provider), capture);
  await measure(rows, base, 'getActiveSessionsCount', runs, () => store.getActiveSessionsCount(), capture);
  const tableBackend = new SessionTable(pool, table, { hashIds: false, indexOwners: true });
  await tableBackend.ensureSchema(); // its catalog read is not the tick's
  await measure(rows, base, 'cleanup tick (every expired session, batches of 1,000)', runs, () => cleanupTick(tableBackend), capture, afterTheFirst(() => seed(true)));
  await pool.query(`DROP TABLE ${table}`);
  pool.query = query as typeof pool.query;
}

/** `action` before every run but the first (which finds the table as seeded). */
function afterTheFirst(action: () => Promise<unknown>): () => Promise<unknown> {
  let first = true;
  return async () => {
    if (first) first = false;
    else await action();
  };
}

/**
 * One `startAutoClean` tick, as the store runs it (src/cleanup.ts): batches
 * of the default size on the backend until one comes back short. Run
 * directly, because the loop itself stops between batches when aborted.
 */
async function cleanupTick(backend: SessionBackend): Promise<number> {
  return deleteInBatches(defaultCleanupBatchSize, (limit) => backend.deleteExpired(limit));
}

async function mongo(rows: Row[], client: MongoClient, uri: string, sessions: number): Promise<void> {
  const db = client.db(`scale_${sessions}_${randomBytes(3).toString('hex')}`);
  const store = new MongoStore<{ user?: string; provider?: string; visits?: number }>(db, { keyPairs, telemetry: false });
  await store.init();
  const docs = db.collection<{ _id: string } & Document>('sessions');
  const seeded = performance.now();
  // 10% expired (every tenth), a third with an owner; `expiredOnly`: the
  // expired tenth alone, again (after a cleanup tick deleted them).
  const seed = async (expiredOnly: boolean) => {
    const now = Date.now();
    for (let from = 0; from < sessions; from += 5000) {
      const batch = [];
      for (let i = from; i < Math.min(sessions, from + 5000); i++) {
        if (expiredOnly && i % 10 !== 0) continue;
        batch.push({
          _id: randomBytes(32).toString('base64url'),
          // { visits: 1 } as the store writes it (content.ts: field 'k' + base64url('visits')).
          values: { kdmlzaXRz: '1' },
          flashes: {},
          epoch: 1,
          expiresAt: new Date(i % 10 === 0 ? now - 3_600_000 : now + 86_400_000),
          ...(i % 3 === 0 ? { user: `u${i}`, provider: ['password', 'github', 'google'][i % 3] } : {}),
          createdAt: new Date(now),
          updatedAt: new Date(now),
          handle: randomBytes(16).toString('base64url').slice(0, 22),
        });
      }
      if (batch.length > 0) await docs.insertMany(batch, { ordered: false });
    }
  };
  await seed(false);
  console.error(`scale: MongoDB-compatible ${sessions} seeded in ${((performance.now() - seeded) / 1000).toFixed(0)} s`);

  const commands: Document[] = [];
  let recording = false;
  const onCommand = (event: { commandName: string; command: Document }) => {
    if (recording && !['hello', 'ismaster', 'endSessions', 'killCursors', 'getMore'].includes(event.commandName)) commands.push(event.command);
  };
  client.on('commandStarted', onCommand);
  const explainer = new MongoClient(uri);
  const capture = {
    start: () => {
      commands.length = 0;
      recording = true;
    },
    stop: async () => {
      recording = false;
      const plans: string[] = [];
      for (const command of commands.slice(0, maxPlans)) {
        const bare = Object.fromEntries(Object.entries(command).filter(([key]) => !['lsid', '$clusterTime', '$db'].includes(key)));
        try {
          const plan = await explainer.db(db.databaseName).command({ explain: bare, verbosity: 'queryPlanner' });
          plans.push(JSON.stringify(plan.queryPlanner ?? plan, null, 1).slice(0, 4000));
        } catch (error) {
          plans.push(`explain refused: ${(error as Error).message}`);
        }
      }
      return { commands: commands.map((command) => JSON.stringify(command, (key, value: unknown) => (['lsid', '$clusterTime', '$db'].includes(key) ? undefined : value))), plans };
    },
  };
  const base = { backend: 'MongoDB-compatible (FerretDB 1.24, SQLite)', sessions };
  const cookie = await returningCookie(store);
  const knownId = (await docs.find({}, { projection: { _id: 1 } }).sort({ createdAt: -1 }).limit(1).toArray())[0]?._id ?? '';
  await measure(rows, base, 'get (returning visitor)', mongoRuns, () => store.get(new Request('https://app.example/', { headers: { cookie } }), 'sid'), capture);
  await measure(rows, base, 'read filter before 0.2: findOne({ _id, expiresAt: { $gt } })', mongoRuns, () => docs.findOne({ _id: knownId, expiresAt: { $gt: new Date() } }), capture);
  await measure(rows, base, 'read filter now: findOne({ _id })', mongoRuns, () => docs.findOne({ _id: knownId }), capture);
  await measure(rows, base, 'expireSessions (10 sessions)', mongoRuns, () => store.expireSessions(user, provider), capture, () => signInTen(store));
  await signInTen(store);
  await measure(rows, base, 'listSessions (10 sessions)', mongoRuns, () => store.listSessions(user, provider), capture);
  await measure(rows, base, 'getActiveSessionsCount', mongoRuns, () => store.getActiveSessionsCount(), capture);
  const collectionBackend = new SessionCollection(db, 'sessions', { hashIds: false, ttlIndex: false, indexOwners: true });
  await collectionBackend.ensureSchema(); // its index commands are not the tick's
  await measure(rows, base, 'cleanup tick (every expired session, batches of 1,000)', mongoRuns, () => cleanupTick(collectionBackend), capture, afterTheFirst(() => seed(true)));
  client.off('commandStarted', onCommand);
  await explainer.close();
  await db.dropDatabase();
}

const rows: Row[] = [];
const started = new Date();
if (pgSizes.length > 0) {
  const server = await resolvePostgresServer();
  const pool = new pg.Pool({ connectionString: server.uri, max: 4 });
  pool.on('error', () => {}); // idle clients cut off when the throwaway server stops
  try {
    for (const sessions of pgSizes) await postgres(rows, pool, sessions);
  } finally {
    await pool.end();
    await server.stop();
  }
}
if (mongoSizes.length > 0) {
  const server = await resolveMongoServer();
  const client = new MongoClient(server.uri, { monitorCommands: true });
  try {
    for (const sessions of mongoSizes) await mongo(rows, client, server.uri, sessions);
  } finally {
    await client.close();
    await server.stop();
  }
}

await mkdir(out, { recursive: true });
await writeFile(join(out, 'scale.json'), `${JSON.stringify({ date: started.toISOString(), runs, rows }, null, 2)}\n`);
const lines = [
  '# Scale',
  '',
  `\`node --import tsx bench/scale.ts\`, ${started.toISOString().slice(0, 10)}: the store's API on seeded collections (10% expired),`,
  'wall-clock median per operation over the runs given, commands sent per operation. The plan of every',
  'statement or command is in `scale-plans.md`. FerretDB numbers are the server\'s (SQLite under',
  'FerretDB 1.24), not MongoDB\'s: see bench/README.md for what MongoDB does.',
  '',
  '| backend | sessions | operation | median ms | runs | commands |',
  '|---|---:|---|---:|---:|---:|',
  ...rows.map((row) => `| ${row.backend} | ${row.sessions.toLocaleString('en-US')} | ${row.operation} | ${row.medianMs.toFixed(2)} | ${row.runs} | ${row.commandCount} |`),
  '',
];
const plans = ['# Scale: plans', '', `Each statement or command the first run of an operation sent (the first ${maxPlans} plans of each), with its plan.`, ''];
for (const row of rows) {
  plans.push(`## ${row.backend}, ${row.sessions.toLocaleString('en-US')} sessions: ${row.operation}`, '');
  row.commands.forEach((command, i) => plans.push('```', command.slice(0, 600), '```', '', '```', row.plans[i] ?? '', '```', ''));
}
await writeFile(join(out, 'scale.md'), lines.join('\n'));
await writeFile(join(out, 'scale-plans.md'), plans.join('\n'));
console.log(lines.join('\n'));
