/**
 * `npm run bench`: every contender, every scenario, one run, one server.
 *
 * HTTP scenarios (1 new visitor, 2 returning read-only, 3 read-modify-write)
 * run each contender in a server process of its own and drive it from here
 * at concurrency 1 and 32. Database scenarios (4 forced logout, 5 active
 * count, 6 cleanup, 7 parallel writers of one session: bench/parallel-writers.ts,
 * also runnable alone as `npm run bench:parallel`) call the stores directly.
 * Results: a table on stdout, bench/results/latest.json and bench/results/latest.md.
 *
 * Environment: BENCH_REQUESTS (per measurement, default 1000),
 * BENCH_COOKIE_POOL (sessions each contender creates for the returning
 * scenarios, default 256), BENCH_SESSIONS (documents for scenarios 4-6,
 * default 100000), BENCH_CONTENDERS (comma-separated subset),
 * BENCH_PARALLEL_RUNS (runs of scenario 7, default 5; BENCH_PARALLEL_PG and
 * BENCH_PARALLEL_MONGO as for bench/parallel-writers.ts), BENCH_OUT (results
 * folder, default bench/results), MONGODB_URI and PG_URI as for the tests.
 *
 *   BENCH_REQUESTS=50 BENCH_COOKIE_POOL=16 BENCH_SESSIONS=1000 BENCH_PARALLEL_RUNS=1 \
 *   BENCH_PARALLEL_PG=20 BENCH_PARALLEL_MONGO=10 BENCH_OUT=/tmp/x npm run bench      (CI's smoke run)
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import MongoConnect from 'connect-mongo';
import { Binary, type Collection, type Db, MongoClient } from 'mongodb';
import pg from 'pg';
import { MongoStore } from '../src/index.ts';
import { PostgresSessionStore } from '../src/postgres/index.ts';
import { resolveMongoServer } from '../servers/mongo.ts';
import { resolvePostgresServer } from '../servers/postgres.ts';
import { CommandLog, recordQueries } from '../test/support/commands.ts';
import { contenders, type HttpScenario } from './contenders.ts';
import { control, drive } from './load.ts';
import { benchParallelWriters, type ParallelRow, renderParallel } from './parallel-writers.ts';

const requests = Number(process.env.BENCH_REQUESTS ?? 1000);
const documents = Number(process.env.BENCH_SESSIONS ?? 100_000);
const concurrencies = [1, 32] as const;
const cookiePool = Number(process.env.BENCH_COOKIE_POOL ?? 256);
const selected = process.env.BENCH_CONTENDERS?.split(',').filter(Boolean) ?? Object.keys(contenders);
const scenarioNames: Record<HttpScenario, string> = {
  new: '1 new visitor',
  read: '2 returning, read-only',
  incr: '3 returning, read-modify-write',
};
const reads = new Set(['find', 'aggregate', 'count', 'getMore', 'SELECT']);
const writes = new Set(['insert', 'update', 'delete', 'findAndModify', 'INSERT', 'UPDATE', 'DELETE']);

interface HttpRow {
  contender: string;
  scenario: HttpScenario;
  concurrency: number;
  requests: number;
  failures: number;
  rps: number;
  cpuMicrosPerRequest: number;
  sessionCpuMicrosPerRequest: number | null;
  p50Ms: number;
  p99Ms: number;
  readsPerRequest: number;
  writesPerRequest: number;
  commandsPerRequest: Record<string, number>;
}

interface DbRow {
  scenario: string;
  contender: string;
  runs: number;
  medianMs: number;
  commandsPerOp: Record<string, number>;
  affected: number;
}

const mongo = await resolveMongoServer();
console.log(`MongoDB server: ${mongo.description}`);
const postgres = await resolvePostgresServer();
console.log(`PostgreSQL server: ${postgres.description}`);
console.log(`${requests} requests per measurement, concurrency ${concurrencies.join(' and ')}, ${cpus().length} CPUs\n`);
const runId = randomBytes(3).toString('hex');

try {
  const httpRows: HttpRow[] = [];
  for (const name of selected) httpRows.push(...(await benchHttp(name)));
  fillSessionCost(httpRows);
  const dbRows = await benchDatabase();
  // 7: 100 parallel writers of one session (and 400 on PostgreSQL).
  const parallelRows = await benchParallelWriters({
    mongoUri: mongo.uri,
    mongoDescription: mongo.description,
    postgresUri: postgres.uri,
    postgresDescription: postgres.description,
    runs: Number(process.env.BENCH_PARALLEL_RUNS ?? 5),
    pgWriters: writerCounts(process.env.BENCH_PARALLEL_PG, [100, 400]),
    mongoWriters: writerCounts(process.env.BENCH_PARALLEL_MONGO, [100]),
  });
  const report = render(httpRows, dbRows, parallelRows);
  console.log(report);
  const dir = process.env.BENCH_OUT ?? join(import.meta.dirname, 'results');
  await mkdir(dir, { recursive: true });
  const meta = {
    date: new Date().toISOString(),
    server: mongo.description,
    postgres: postgres.description,
    requests,
    documents,
    node: process.version,
    cpus: cpus().length,
  };
  await writeFile(join(dir, 'latest.json'), `${JSON.stringify({ meta, http: httpRows, database: dbRows, parallel: parallelRows }, null, 2)}\n`);
  await writeFile(join(dir, 'latest.md'), `# Benchmark results\n\n${metaLines(meta)}\n\n${report}\n`);
} finally {
  await Promise.all([mongo.stop(), postgres.stop()]);
}

async function benchHttp(name: string): Promise<HttpRow[]> {
  const contender = contenders[name];
  if (!contender) throw new Error(`unknown contender ${name}`);
  const database = `bench_${runId}_${name.replace(/\W/g, '_')}`;
  const serverArgs = [join(import.meta.dirname, 'server.ts'), name, mongo.uri, database, postgres.uri];
  const child = spawn(process.execPath, ['--import', 'tsx', ...serverArgs], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    const port = await readyPort(child);
    const rows: HttpRow[] = [];
    const pool = (await drive({ port, path: '/new', requests: cookiePool, concurrency: 8 })).cookies;
    if (contender.baseline !== null && pool.length < cookiePool) {
      throw new Error(`${name}: /new set ${pool.length} cookies for ${cookiePool} requests`);
    }
    // Returning visitors first, on the pooled sessions alone, so that
    // every contender's reads and updates see the same small collection.
    const order: HttpScenario[] = ['read', 'incr', 'new'];
    for (const scenario of order.filter((s) => contender.scenarios.includes(s))) {
      for (const concurrency of concurrencies) {
        const cookies = scenario === 'new' ? undefined : pool;
        const path = `/${scenario}`;
        // Warm up with every cookie of the pool at least once: a returning
        // visitor's steady state, the same for every contender.
        await drive({ port, path, requests: Math.max(cookiePool, requests / 4), concurrency, cookies });
        await control(port, '/__bench/reset');
        const run = await drive({ port, path, requests, concurrency, cookies });
        const stats = JSON.parse(await control(port, '/__bench/stats')) as { cpuMicros: number; commands: string[] };
        const byName: Record<string, number> = {};
        for (const command of stats.commands) byName[command] = (byName[command] ?? 0) + 1 / requests;
        const sorted = [...run.latencies].sort((a, b) => a - b);
        rows.push({
          contender: name,
          scenario,
          concurrency,
          requests,
          failures: run.failures,
          rps: requests / (run.wallMs / 1000),
          cpuMicrosPerRequest: stats.cpuMicros / requests,
          sessionCpuMicrosPerRequest: null,
          p50Ms: percentile(sorted, 0.5),
          p99Ms: percentile(sorted, 0.99),
          readsPerRequest: stats.commands.filter((c) => reads.has(c)).length / requests,
          writesPerRequest: stats.commands.filter((c) => writes.has(c)).length / requests,
          commandsPerRequest: byName,
        });
        process.stderr.write(`  ${name} ${scenario} c=${concurrency}: ${Math.round(requests / (run.wallMs / 1000))} req/s\n`);
      }
    }
    return rows;
  } finally {
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('exit', resolve));
    const client = new MongoClient(mongo.uri);
    await client.db(database).dropDatabase().catch(() => {});
    await client.close();
    if (contender.usesPostgres) {
      const admin = new pg.Client({ connectionString: postgres.uri });
      await admin.connect();
      await admin.query(`DROP SCHEMA IF EXISTS ${database} CASCADE`);
      await admin.end();
    }
  }
}

/** The session's own cost: CPU per request minus the same framework's bare app. */
function fillSessionCost(rows: HttpRow[]): void {
  for (const row of rows) {
    const baseline = contenders[row.contender]?.baseline;
    if (!baseline) continue;
    const bare = rows.find((r) => r.contender === baseline && r.scenario === row.scenario && r.concurrency === row.concurrency);
    if (bare) row.sessionCpuMicrosPerRequest = row.cpuMicrosPerRequest - bare.cpuMicrosPerRequest;
  }
}

async function benchDatabase(): Promise<DbRow[]> {
  const client = new MongoClient(mongo.uri, { monitorCommands: true });
  const commands = new CommandLog();
  client.on('commandStarted', (event) => commands.record(event));
  const db = client.db(`bench_${runId}_db`);
  // Polls go through clients whose commands are not counted.
  const observer = new MongoClient(mongo.uri);
  const pool = new pg.Pool({ connectionString: postgres.uri });
  const observerPool = new pg.Pool({ connectionString: postgres.uri });
  recordQueries(pool, (statement) => commands.add(statement));
  const rows: DbRow[] = [];
  const keyPairs = [{ authentication: randomBytes(32) }];
  try {
    const measure = async (scenario: string, contender: string, runs: number, prepare: () => Promise<unknown>, op: () => Promise<number>) => {
      const times: number[] = [];
      let perOp: Record<string, number> = {};
      let affected = 0;
      for (let i = 0; i < runs; i++) {
        await prepare();
        commands.reset();
        const began = performance.now();
        affected = await op();
        times.push(performance.now() - began);
        perOp = {};
        for (const name of commands.names()) perOp[name] = (perOp[name] ?? 0) + 1;
      }
      rows.push({ scenario, contender, runs, medianMs: percentile(times.sort((a, b) => a - b), 0.5), commandsPerOp: perOp, affected });
      process.stderr.write(`  ${scenario} ${contender}: ${Math.round(percentile(times, 0.5))} ms\n`);
    };

    // 4: forced logout of one user holding 10% of the sessions.
    const s4 = db.collection<SeedDoc>('s4');
    const store4 = new MongoStore(db, { keyPairs, collection: 's4' });
    await store4.init();
    const targetCount = Math.round(documents / 10);
    await seed(s4, documents - targetCount, () => ({ user: `u${randomBytes(4).toString('hex')}`, expired: false }));
    const reseedTarget = () => seed(s4, targetCount, () => ({ user: 'target', expired: false }));
    const s4name = `4 forced logout (${targetCount} of ${documents})`;
    await measure(s4name, 'mongostore', 3, reseedTarget, () => store4.expireSessions('target', 'password'));
    await measure(s4name, 'floor', 3, reseedTarget, async () => (await s4.deleteMany({ user: 'target', provider: 'password' })).deletedCount);

    // 5: active count with 10% expired.
    const s5 = db.collection<SeedDoc>('s5');
    const store5 = new MongoStore(db, { keyPairs, collection: 's5' });
    await store5.init();
    await seed(s5, documents, (i) => ({ user: 'u', expired: i % 10 === 0 }));
    const s5name = `5 active count (${documents}, 10% expired)`;
    const none = async () => {};
    await measure(s5name, 'mongostore', 5, none, () => store5.getActiveSessionsCount());
    await measure(s5name, 'floor', 5, none, () => s5.countDocuments({ expiresAt: { $gt: new Date() } }));
    const connect = await connectMongoCount(client, db, documents);
    await measure(s5name, 'connect-mongo', 5, none, connect);

    // 6: cleanup of expired sessions.
    const s6 = db.collection<SeedDoc>('s6');
    const store6 = new MongoStore(db, { keyPairs, collection: 's6', onError: () => {} });
    await store6.init();
    const seedExpired = () => seed(s6, documents, () => ({ user: 'u', expired: true }));
    const s6name = `6 cleanup (${documents} expired)`;
    const watched = observer.db(db.databaseName).collection('s6');
    await measure(s6name, 'mongostore', 1, seedExpired, () =>
      oneCleanupTick(store6, async () => (await watched.countDocuments()) === 0),
    );
    await measure(s6name, 'floor', 1, seedExpired, async () => (await s6.deleteMany({ expiresAt: { $lte: new Date() } })).deletedCount);

    // The same three on PostgreSQL.
    const pg4 = new PostgresSessionStore(pool, { keyPairs, table: 'pg_s4' });
    const pg5 = new PostgresSessionStore(pool, { keyPairs, table: 'pg_s5' });
    const pg6 = new PostgresSessionStore(pool, { keyPairs, table: 'pg_s6', onError: () => {} });
    await Promise.all([pg4.init(), pg5.init(), pg6.init()]);
    await seedTable(pool, 'pg_s4', documents - targetCount, 'other', false);
    const reseedPgTarget = () => seedTable(pool, 'pg_s4', targetCount, 'target', false);
    await measure(s4name, 'mongostore/postgres', 3, reseedPgTarget, () => pg4.expireSessions('target', 'password'));
    await measure(s4name, 'floor (PostgreSQL)', 3, reseedPgTarget, async () =>
      (await pool.query(`DELETE FROM pg_s4 WHERE "user" = $1 AND provider = $2`, ['target', 'password'])).rowCount ?? 0,
    );
    await seedTable(pool, 'pg_s5', documents, 'u', 'every tenth');
    await measure(s5name, 'mongostore/postgres', 5, none, () => pg5.getActiveSessionsCount());
    await measure(s5name, 'floor (PostgreSQL)', 5, none, async () =>
      Number((await pool.query<{ n: string }>('SELECT count(*) AS n FROM pg_s5 WHERE expiry > now()')).rows[0]?.n),
    );
    const seedPgExpired = () => seedTable(pool, 'pg_s6', documents, 'u', true);
    await measure(s6name, 'mongostore/postgres', 1, seedPgExpired, () =>
      oneCleanupTick(pg6, async () => (await observerPool.query<{ n: string }>('SELECT count(*) AS n FROM pg_s6')).rows[0]?.n === '0'),
    );
    await measure(s6name, 'floor (PostgreSQL)', 1, seedPgExpired, async () =>
      (await pool.query('DELETE FROM pg_s6 WHERE expiry <= now()')).rowCount ?? 0,
    );
    return rows;
  } finally {
    await db.dropDatabase().catch(() => {});
    await pool.query('DROP TABLE IF EXISTS pg_s4, pg_s5, pg_s6').catch(() => {});
    await Promise.all([client.close(), observer.close(), pool.end(), observerPool.end()]);
  }
}

/** Runs autoClean until `done` says the expired sessions are gone; its ticks are the commands counted. */
async function oneCleanupTick(store: { startAutoClean(signal: AbortSignal, ms: number): Promise<void> }, done: () => Promise<boolean>): Promise<number> {
  const stop = new AbortController();
  const loop = store.startAutoClean(stop.signal, 1);
  while (!(await done())) await new Promise((resolve) => setTimeout(resolve, 5));
  stop.abort();
  await loop;
  return documents;
}

/** Inserts `count` rows in one statement; `expired`: all, none, or every tenth. */
async function seedTable(pool: pg.Pool, table: string, count: number, user: string, expired: boolean | 'every tenth'): Promise<void> {
  const expiry =
    expired === 'every tenth'
      ? `CASE WHEN i % 10 = 0 THEN now() - interval '1 minute' ELSE now() + interval '1 hour' END`
      : expired
        ? `now() - interval '1 minute'`
        : `now() + interval '1 hour'`;
  await pool.query(
    `INSERT INTO ${table} (token, data, expiry, "user", provider)
     SELECT md5(random()::text || i::text) || md5(i::text || clock_timestamp()::text), '\\x7b7d'::bytea, ${expiry},
            CASE WHEN $1 = 'other' THEN 'u' || i ELSE $1 END, 'password'
     FROM generate_series(1, $2::int) AS i`,
    [user, count],
  );
}

interface SeedDoc {
  _id: string;
  data: Binary;
  expiresAt: Date;
  user: string;
  provider: string;
  createdAt: Date;
  updatedAt: Date;
}

async function seed(docs: Collection<SeedDoc>, count: number, shape: (i: number) => { user: string; expired: boolean }): Promise<void> {
  const now = Date.now();
  const data = new Binary(Buffer.from('{"visits":1}'));
  for (let start = 0; start < count; start += 5000) {
    const batch: SeedDoc[] = [];
    for (let i = start; i < Math.min(count, start + 5000); i++) {
      const { user, expired } = shape(i);
      batch.push({
        _id: randomBytes(32).toString('base64url'),
        data,
        expiresAt: new Date(now + (expired ? -60_000 : 3_600_000)),
        user,
        provider: 'password',
        createdAt: new Date(now),
        updatedAt: new Date(now),
      });
    }
    await docs.insertMany(batch, { ordered: false });
  }
}

/** connect-mongo's own count (express-session's `store.length`) over documents in its format. */
async function connectMongoCount(client: MongoClient, db: Db, count: number): Promise<() => Promise<number>> {
  const collectionName = 's5_connect';
  const docs = db.collection<{ _id: string; session: string; expires: Date }>(collectionName);
  const now = Date.now();
  for (let start = 0; start < count; start += 5000) {
    await docs.insertMany(
      Array.from({ length: Math.min(5000, count - start) }, (_, j) => ({
        _id: randomBytes(24).toString('base64url'),
        session: '{"cookie":{},"visits":1}',
        expires: new Date(now + ((start + j) % 10 === 0 ? -60_000 : 3_600_000)),
      })),
    );
  }
  const store = MongoConnect.create({ client, dbName: db.databaseName, collectionName, autoRemove: 'disabled' });
  return () =>
    new Promise((resolve, reject) => store.length((error, length) => (error ? reject(error as Error) : resolve(length ?? 0))));
}

/** A comma-separated list of writer counts from the environment, or the default. */
function writerCounts(value: string | undefined, fallback: number[]): number[] {
  return value === undefined ? fallback : value.split(',').filter(Boolean).map(Number);
}

function readyPort(child: ChildProcess): Promise<number> {
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).once('line', (line) => {
      const match = /^ready (\d+)$/.exec(line);
      if (match) resolve(Number(match[1]));
      else reject(new Error(`unexpected output from the bench server: ${line}`));
    });
    child.once('exit', (code) => reject(new Error(`the bench server exited with ${code}`)));
  });
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number;
}

function metaLines(meta: Record<string, unknown>): string {
  return Object.entries(meta).map(([key, value]) => `- ${key}: ${String(value)}`).join('\n');
}

function render(http: HttpRow[], db: DbRow[], parallel: ParallelRow[]): string {
  const n = (value: number | null, digits = 0) => (value === null || Number.isNaN(value) ? 'n/a' : value.toFixed(digits));
  const commandList = (counts: Record<string, number>, digits: number) =>
    Object.entries(counts).map(([name, count]) => `${name} ${count.toFixed(digits)}`).join(', ') || 'none';
  const lines: string[] = [];
  for (const scenario of Object.keys(scenarioNames) as HttpScenario[]) {
    for (const concurrency of concurrencies) {
      lines.push(`### Scenario ${scenarioNames[scenario]}, concurrency ${concurrency}`, '');
      lines.push('| contender | req/s | CPU µs/req | session CPU µs/req | p50 ms | p99 ms | reads/req | writes/req | commands/req |');
      lines.push('|---|---:|---:|---:|---:|---:|---:|---:|---|');
      for (const row of http.filter((r) => r.scenario === scenario && r.concurrency === concurrency)) {
        const label = contenders[row.contender]?.label ?? row.contender;
        const failed = row.failures > 0 ? ` (${row.failures} failed)` : '';
        lines.push(
          `| ${label}${failed} | ${n(row.rps)} | ${n(row.cpuMicrosPerRequest)} | ${n(row.sessionCpuMicrosPerRequest)} | ${n(row.p50Ms, 2)} | ${n(row.p99Ms, 2)} | ${n(row.readsPerRequest, 2)} | ${n(row.writesPerRequest, 2)} | ${commandList(row.commandsPerRequest, 2)} |`,
        );
      }
      lines.push('', ...ratios(http, scenario, concurrency), '');
    }
  }
  lines.push('### Database scenarios', '');
  lines.push('| scenario | contender | median ms | commands per operation | documents |');
  lines.push('|---|---|---:|---|---:|');
  for (const row of db) {
    lines.push(`| ${row.scenario} | ${row.contender} | ${n(row.medianMs, 1)} | ${commandList(row.commandsPerOp, 0)} | ${row.affected} |`);
  }
  lines.push('', '### Scenario 7, parallel writers of one session', '');
  lines.push('N requests load one anonymous cart session at once, then each saves a key of its own.', '');
  lines.push(renderParallel(parallel));
  return lines.join('\n');
}

/** mongostore's session cost and throughput against the floor of its own database and each peer. */
function ratios(http: HttpRow[], scenario: HttpScenario, concurrency: number): string[] {
  const row = (name: string) => http.find((r) => r.contender === name && r.scenario === scenario && r.concurrency === concurrency);
  const out: string[] = [];
  for (const [ours, floor] of [
    ['mongostore-hono', 'floor'],
    ['mongostore-plain', 'floor'],
    ['postgres-hono', 'floor-postgres'],
  ] as const) {
    const mine = row(ours);
    if (!mine?.sessionCpuMicrosPerRequest) continue;
    const parts: string[] = [];
    for (const other of [floor, 'express-session', 'hono-sessions']) {
      const theirs = row(other);
      if (!theirs?.sessionCpuMicrosPerRequest) continue;
      parts.push(
        `${other}: session CPU ×${(mine.sessionCpuMicrosPerRequest / theirs.sessionCpuMicrosPerRequest).toFixed(2)}, req/s ×${(mine.rps / theirs.rps).toFixed(2)}`,
      );
    }
    if (parts.length > 0) out.push(`- ${ours} vs ${parts.join('; ')}`);
  }
  return out;
}
