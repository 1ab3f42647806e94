/**
 * N parallel writers of one session (issue 21): one anonymous cart session,
 * then N requests that each load it with its cookie (`store.get`) and save a
 * change to a key of their own (`w000` = 0, `w001` = 1, ...). Every request
 * loads before any saves (a barrier), so each save is N-1 saves behind what
 * is stored: the worst case of a page that fires N requests at once.
 *
 * Per backend and N it reports the database statements (PostgreSQL) or
 * commands (MongoDB) per save by kind, counted exactly (test/support/
 * commands.ts), the loads' as well, the wall time, the saves that threw
 * (rejections), the save outcomes, and how many of the N disjoint keys (and
 * the cart) a fresh read finds at the end. It measures and never fails on
 * what it finds: on FerretDB 1.x a conditional update is not atomic under
 * true parallelism, so disjoint keys may be lost there.
 *
 *   npm run bench:parallel
 *   BENCH_PARALLEL_PG=100,400 BENCH_PARALLEL_MONGO=100 BENCH_RUNS=5 npm run bench:parallel
 *   BENCH_PARALLEL_MONGO= npm run bench:parallel          (PostgreSQL only)
 *
 * Servers as for the tests: MONGODB_URI, else mongodb-memory-server, else
 * the embedded FerretDB; PG_URI, else a throwaway Debian cluster. Pools are
 * the drivers' defaults unless set: pg 10 connections (BENCH_PG_POOL), the
 * MongoDB driver 100. Writes bench/results/parallel-writers.md and .json
 * (BENCH_OUT: another folder). `npm run bench` runs it too (scenario 7).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MongoClient } from 'mongodb';
import pg from 'pg';
import { type MongoTestServer, resolveMongoServer } from '../servers/mongo.ts';
import { resolvePostgresServer } from '../servers/postgres.ts';
import { MongoStore } from '../src/index.ts';
import { PostgresSessionStore } from '../src/postgres/index.ts';
import type { SessionStore } from '../src/session-store.ts';
import { CommandLog, recordQueries } from '../test/support/commands.ts';
import { median, quantile } from './stats.ts';

/** One backend at one N, over all runs. */
export interface ParallelRow {
  backend: 'PostgreSQL' | 'MongoDB';
  /** The backend and, for the MongoDB side, the server when it is not MongoDB (e.g. 'MongoDB (FerretDB v1.24.2)'). */
  label: string;
  server: string;
  writers: number;
  runs: number;
  /** Statements/commands the loads sent, by name, per request (mean over the runs). */
  commandsPerLoad: Record<string, number>;
  /** Statements/commands the saves sent, by name, per save (mean over the runs). */
  commandsPerSave: Record<string, number>;
  /** Per run: the loads and the saves, ms. */
  wallMs: number[];
  /** Per run: the saves alone (from the first save to the last settled), ms. */
  saveWallMs: number[];
  /** One save's latency over every save of every run, ms. */
  saveP50Ms: number;
  saveP99Ms: number;
  /** Per run: saves that threw. */
  rejections: number[];
  /** Per run: loads that threw (their request saves nothing). */
  loadErrors: number[];
  /** The first error message, if any. */
  firstError: string | undefined;
  /** Save outcomes over every run ('created', 'updated', 'superseded', ...). */
  outcomes: Record<string, number>;
  /** Per run: how many of the N keys a fresh read found with their value. */
  keysKept: number[];
  /** Per run: whether the cart survived. */
  cartKept: boolean[];
}

export interface ParallelOptions {
  mongoUri: string | undefined;
  mongoDescription: string;
  postgresUri: string | undefined;
  postgresDescription: string;
  /** Writer counts on PostgreSQL (default 100 and 400). */
  pgWriters?: readonly number[];
  /** Writer counts on the MongoDB-compatible server (default 100). */
  mongoWriters?: readonly number[];
  runs?: number;
  pgPoolSize?: number;
  /** Progress lines (stderr by default). */
  log?: (line: string) => void;
}

type Values = Record<string, unknown>;
const cart = ['sku-1042', 'sku-2210'];
const url = 'https://shop.example/cart';
const keyOf = (i: number) => `w${String(i).padStart(3, '0')}`;

/** Runs the scenario on each backend given and returns one row per backend and N. */
export async function benchParallelWriters(options: ParallelOptions): Promise<ParallelRow[]> {
  const runs = options.runs ?? 5;
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const keyPairs = [{ authentication: new Uint8Array(randomBytes(32)) }];
  const tag = randomBytes(3).toString('hex');
  const rows: ParallelRow[] = [];

  if (options.postgresUri !== undefined && (options.pgWriters ?? [100, 400]).length > 0) {
    const commands = new CommandLog();
    const pool = new pg.Pool({ connectionString: options.postgresUri, max: options.pgPoolSize ?? 10 });
    recordQueries(pool, (statement) => commands.add(statement));
    const table = `parallel_${tag}`;
    try {
      const store = new PostgresSessionStore<Values>(pool, { keyPairs, table });
      await store.init();
      for (const writers of options.pgWriters ?? [100, 400]) {
        rows.push(await measure('PostgreSQL', options.postgresDescription, store, commands, writers, runs, log));
      }
    } finally {
      await pool.query(`DROP TABLE IF EXISTS "${table}"`).catch(() => {});
      await pool.end();
    }
  }

  if (options.mongoUri !== undefined && (options.mongoWriters ?? [100]).length > 0) {
    const commands = new CommandLog();
    const client = new MongoClient(options.mongoUri, { monitorCommands: true });
    client.on('commandStarted', (event) => commands.record(event));
    const db = client.db(`bench_parallel_${tag}`);
    try {
      const store = new MongoStore<Values>(db, { keyPairs, collection: 'sessions' });
      await store.init();
      for (const writers of options.mongoWriters ?? [100]) {
        rows.push(await measure('MongoDB', options.mongoDescription, store, commands, writers, runs, log));
      }
    } finally {
      await db.dropDatabase().catch(() => {});
      await client.close();
    }
  }
  return rows;
}

/** What one run saw. */
interface RunResult {
  loadCommands: string[];
  saveCommands: string[];
  wallMs: number;
  saveWallMs: number;
  /** Each save's latency (saves that threw included), ms. */
  latencies: number[];
  rejections: number;
  loadErrors: number;
  firstError: string | undefined;
  outcomes: Record<string, number>;
  keysKept: number;
  cartKept: boolean;
  sessionGone: boolean;
}

async function measure(
  backend: ParallelRow['backend'],
  server: string,
  store: SessionStore<Values>,
  commands: CommandLog,
  writers: number,
  runs: number,
  log: (line: string) => void,
): Promise<ParallelRow> {
  const ferret = /^FerretDB v[\d.]+/.exec(server)?.[0];
  const row: ParallelRow = {
    backend,
    label: backend === 'MongoDB' && ferret !== undefined ? `MongoDB (${ferret})` : backend,
    server,
    writers,
    runs,
    commandsPerLoad: {},
    commandsPerSave: {},
    wallMs: [],
    saveWallMs: [],
    saveP50Ms: Number.NaN,
    saveP99Ms: Number.NaN,
    rejections: [],
    loadErrors: [],
    firstError: undefined,
    outcomes: {},
    keysKept: [],
    cartKept: [],
  };
  const latencies: number[] = [];
  // One unrecorded run first: connections opened, statements and JIT warm.
  await oneRun(store, commands, writers);
  for (let run = 0; run < runs; run++) {
    const result = await oneRun(store, commands, writers);
    addPer(row.commandsPerLoad, result.loadCommands, writers * runs);
    addPer(row.commandsPerSave, result.saveCommands, writers * runs);
    row.wallMs.push(result.wallMs);
    row.saveWallMs.push(result.saveWallMs);
    latencies.push(...result.latencies);
    row.rejections.push(result.rejections);
    row.loadErrors.push(result.loadErrors);
    row.firstError ??= result.firstError;
    for (const [outcome, count] of Object.entries(result.outcomes)) row.outcomes[outcome] = (row.outcomes[outcome] ?? 0) + count;
    row.keysKept.push(result.keysKept);
    row.cartKept.push(result.cartKept);
    log(
      `  parallel writers ${row.label} N=${writers} run ${run + 1}/${runs}: ${Math.round(result.wallMs)} ms, ` +
        `${result.rejections} rejected, ${result.keysKept}/${writers} keys kept${result.sessionGone ? ' (session gone)' : ''}`,
    );
  }
  row.saveP50Ms = quantile(latencies, 0.5);
  row.saveP99Ms = quantile(latencies, 0.99);
  return row;
}

/** A new cart session, N loads at once, then N saves at once, then a read back (not counted). */
async function oneRun(store: SessionStore<Values>, commands: CommandLog, writers: number): Promise<RunResult> {
  const cookie = await newCart(store);
  const requests = Array.from({ length: writers }, () => new Request(url, { headers: { cookie } }));

  commands.reset();
  const began = performance.now();
  const loads = await Promise.allSettled(requests.map((request) => store.get(request, 'sid')));
  const loadCommands = commands.names();

  commands.reset();
  const savesBegan = performance.now();
  const results = await Promise.all(
    loads.map(async (load, i) => {
      if (load.status === 'rejected') return { kind: 'load-error' as const, error: load.reason as unknown };
      const session = load.value;
      session.values[keyOf(i)] = i;
      const started = performance.now();
      try {
        const outcome = await store.save(requests[i] as Request, new Headers(), session);
        return { kind: 'saved' as const, outcome, ms: performance.now() - started };
      } catch (error) {
        return { kind: 'rejected' as const, error, ms: performance.now() - started };
      }
    }),
  );
  const ended = performance.now();
  const run: RunResult = {
    loadCommands,
    saveCommands: commands.names(),
    wallMs: ended - began,
    saveWallMs: ended - savesBegan,
    latencies: [],
    rejections: 0,
    loadErrors: 0,
    firstError: undefined,
    outcomes: {},
    keysKept: 0,
    cartKept: false,
    sessionGone: false,
  };
  for (const result of results) {
    if (result.kind === 'load-error') run.loadErrors++;
    else run.latencies.push(result.ms);
    if (result.kind === 'rejected') run.rejections++;
    const outcome = result.kind === 'saved' ? result.outcome : result.kind;
    run.outcomes[outcome] = (run.outcomes[outcome] ?? 0) + 1;
    if (result.kind !== 'saved') run.firstError ??= message(result.error);
  }

  // Read back: a new request of the same browser.
  const stored = await store.get(new Request(url, { headers: { cookie } }), 'sid');
  for (let i = 0; i < writers; i++) if (stored.values[keyOf(i)] === i) run.keysKept++;
  run.cartKept = JSON.stringify(stored.values.cart) === JSON.stringify(cart);
  run.sessionGone = stored.isNew;
  return run;
}

/** A new anonymous session holding a cart; its cookie (`sid=...`). */
async function newCart(store: SessionStore<Values>): Promise<string> {
  const request = new Request(url);
  const session = await store.get(request, 'sid');
  session.values.cart = [...cart];
  const headers = new Headers();
  await store.save(request, headers, session);
  const cookie = headers.getSetCookie()[0]?.split(';')[0];
  if (cookie === undefined) throw new Error('saving the cart sent no cookie');
  return cookie;
}

function addPer(into: Record<string, number>, names: string[], per: number): void {
  for (const name of names) into[name] = (into[name] ?? 0) + 1 / per;
}

function message(error: unknown): string {
  const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return text.split('\n', 1)[0] ?? text;
}

/** The rows as a markdown table, with a line per row on what went wrong, if anything. */
export function renderParallel(rows: readonly ParallelRow[]): string {
  const n = (value: number, digits = 0) => (Number.isNaN(value) ? 'n/a' : value.toFixed(digits));
  const list = (counts: Record<string, number>) =>
    Object.entries(counts)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, count]) => `${name} ${count.toFixed(2)}`)
      .join(', ') || 'none';
  const perRun = (values: readonly number[]) => values.join(', ');
  const rejections = (values: readonly number[]) =>
    values.every((value) => value === 0) ? '0' : `${values.reduce((a, b) => a + b, 0)} (per run: ${perRun(values)})`;
  const kept = (values: readonly number[], of: number) => {
    const low = Math.min(...values);
    const high = Math.max(...values);
    return low === high ? `${low}/${of} every run` : `${low}-${high}/${of} (per run: ${perRun(values)})`;
  };
  const yes = (values: readonly boolean[]) => {
    const count = values.filter(Boolean).length;
    return count === values.length ? 'yes' : `${count} of ${values.length} runs`;
  };
  const lines = [
    '| backend | N | per save | per load | wall ms (median) | saves ms (median) | save p50 / p99 ms | rejections | keys kept | cart kept | outcomes |',
    '|---|---:|---|---|---:|---:|---:|---:|---|---|---|',
  ];
  for (const row of rows) {
    const outcomes = Object.entries(row.outcomes).map(([name, count]) => `${name} ${count}`).join(', ');
    lines.push(
      `| ${row.label} | ${row.writers} | ${list(row.commandsPerSave)} | ${list(row.commandsPerLoad)} | ${n(median(row.wallMs))} | ` +
        `${n(median(row.saveWallMs))} | ${n(row.saveP50Ms, 1)} / ${n(row.saveP99Ms, 1)} | ${rejections(row.rejections)} | ` +
        `${kept(row.keysKept, row.writers)} | ${yes(row.cartKept)} | ${outcomes} |`,
    );
  }
  const notes = rows.flatMap((row) => {
    const out: string[] = [];
    if (row.firstError !== undefined) out.push(`- ${row.label} N=${row.writers}: first error: ${row.firstError}`);
    if (row.loadErrors.some((count) => count > 0)) out.push(`- ${row.label} N=${row.writers}: loads that threw, per run: ${perRun(row.loadErrors)}`);
    return out;
  });
  const servers = [...new Set(rows.map((row) => `- ${row.label}: ${row.server}`))];
  return [
    ...lines,
    '',
    `Per save / per load: statements (PostgreSQL) or commands (MongoDB) by name, mean over ${rows[0]?.runs ?? 0} runs. ` +
      'Wall: the N loads and the N saves; saves: from the first save to the last settled. ' +
      'Rejections: saves that threw, over all runs. Keys kept: of the N disjoint keys, found by a fresh read after each run.',
    ...servers,
    ...notes,
  ].join('\n');
}

async function main(): Promise<void> {
  const numbers = (value: string | undefined, fallback: number[]) =>
    value === undefined ? fallback : value.split(',').filter(Boolean).map(Number);
  const pgWriters = numbers(process.env.BENCH_PARALLEL_PG, [100, 400]);
  const mongoWriters = numbers(process.env.BENCH_PARALLEL_MONGO, [100]);
  const runs = Number(process.env.BENCH_RUNS ?? 5);
  const pgPoolSize = Number(process.env.BENCH_PG_POOL ?? 10);
  const postgres = pgWriters.length > 0 ? await resolvePostgresServer() : undefined;
  let mongo: MongoTestServer | undefined;
  try {
    mongo = mongoWriters.length > 0 ? await resolveMongoServer() : undefined;
  } catch (error) {
    await postgres?.stop();
    throw error;
  }
  try {
    if (postgres) console.log(`PostgreSQL server: ${postgres.description}`);
    if (mongo) console.log(`MongoDB server: ${mongo.description}`);
    const rows = await benchParallelWriters({
      postgresUri: postgres?.uri,
      postgresDescription: postgres?.description ?? '',
      mongoUri: mongo?.uri,
      mongoDescription: mongo?.description ?? '',
      pgWriters,
      mongoWriters,
      runs,
      pgPoolSize,
    });
    const report = renderParallel(rows);
    console.log(`\n${report}`);
    const meta = { date: new Date().toISOString(), node: process.version, cpus: cpus().length, runs, pgPoolSize };
    const dir = process.env.BENCH_OUT ?? join(import.meta.dirname, 'results');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'parallel-writers.json'), `${JSON.stringify({ meta, rows }, null, 2)}\n`);
    await writeFile(
      join(dir, 'parallel-writers.md'),
      `# Parallel writers of one session\n\n${Object.entries(meta).map(([key, value]) => `- ${key}: ${String(value)}`).join('\n')}\n\n${report}\n`,
    );
  } finally {
    await Promise.all([mongo?.stop(), postgres?.stop()]);
  }
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
