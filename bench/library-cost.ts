/**
 * The libraries' own cost, in process: every contender on its own in-memory
 * store, driven without sockets (Hono's `app.request`; Express through
 * light-my-request's injector), CPU µs per request over the bare framework
 * for a new session, a returning read-only visitor and a read-modify-write.
 * Also one iron seal (iron-webcrypto, the payload mongostore seals): the
 * floor of a new session.
 *
 *   node --import tsx bench/library-cost.ts          all runtimes (Node 20, Node 24, Bun from
 *                                                    scripts/runtimes), results in bench/results/library-cost.*
 *   BENCH_REQUESTS=200 BENCH_ROUNDS=3 BENCH_WARMUP_MS=0 ...
 *                                                    a quick run (CI's smoke test)
 *   node --import tsx bench/library-cost.ts --child <contender> <scenario>
 *                                                    one measurement, JSON on stdout (after `npm run build`)
 *
 * mongostore is measured from dist/, as users run it (the parent builds it first).
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { useSession, useSessionStorage, type SessionEnv as HonoSessionEnv } from '@hono/session';
import express from 'express';
import expressSession from 'express-session';
import { Hono } from 'hono';
import { MemoryStore as HonoSessionsMemoryStore, type Session as HonoSessionsSession, sessionMiddleware } from 'hono-sessions';
import { defaults, seal } from 'iron-webcrypto';
import { inject } from 'light-my-request';
import type * as HonoEntry from '../src/hono.ts';
import type { SessionEnv } from '../src/hono.ts';
import type * as MainEntry from '../src/index.ts';
import { MemoryBackend } from './memory-backend.ts';
import { cpuPerRequest, median } from './stats.ts';

// mongostore as users run it: the compiled dist/ (the parent builds it), as
// the peers are measured as shipped. Under tsx, src/ would carry the
// transpiler's helpers on every closure.
const dist = '../dist/';
if (!process.argv.includes('--child')) {
  // The parent builds dist/ before anything imports it (the children run after).
  const root = join(import.meta.dirname, '..');
  execFileSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
}
const { sessions } = (await import(`${dist}hono.js`)) as typeof HonoEntry;
const { SessionStore } = (await import(`${dist}index.js`)) as typeof MainEntry;

const requests = Number(process.env.BENCH_REQUESTS ?? 2000);
/** Wall-clock ms each contender, and the seal, run before the rounds (at least `requests / 4` calls). */
const warmUpMs = Number(process.env.BENCH_WARMUP_MS ?? 3000);
const rounds = Number(process.env.BENCH_ROUNDS ?? 9);
const scenarios = ['new', 'read', 'incr'] as const;
type Scenario = (typeof scenarios)[number];
type Values = { visits: number };

/** One HTTP exchange, in process. */
interface Answer {
  status: number;
  body: string;
  setCookies: string[];
}
type Send = (path: string, cookie: string | undefined) => Promise<Answer>;

interface Contender {
  label: string;
  baseline: 'bare-hono' | 'bare-express' | null;
  send: Send;
}

function honoSender(app: { request: (url: string, init?: RequestInit) => Response | Promise<Response> }): Send {
  return async (path, cookie) => {
    const response = await app.request(`https://app.example${path}`, cookie ? { headers: { cookie } } : {});
    return { status: response.status, body: await response.text(), setCookies: response.headers.getSetCookie() };
  };
}

function expressSender(app: express.Express): Send {
  return async (path, cookie) => {
    const response = await inject(app, { method: 'GET', url: path, ...(cookie ? { headers: { cookie } } : {}) });
    const raw = response.headers['set-cookie'];
    return { status: response.statusCode, body: response.payload, setCookies: raw === undefined ? [] : Array.isArray(raw) ? raw : [raw] };
  };
}

/** The three routes on a Hono app whose session reads and writes `visits`. */
function honoRoutes<E extends object>(app: Hono<E>, get: (c: never) => Promise<number | undefined> | number | undefined, set: (c: never, visits: number) => Promise<void> | void) {
  app.get('/new', async (c) => {
    await set(c as never, 1);
    return c.text('1');
  });
  app.get('/read', async (c) => c.text(String(await get(c as never))));
  app.get('/incr', async (c) => {
    const visits = ((await get(c as never)) ?? 0) + 1;
    await set(c as never, visits);
    return c.text(String(visits));
  });
  return app;
}

function contenders(): Record<string, Contender> {
  const secret = randomBytes(32).toString('hex');

  const bareHono = new Hono();
  bareHono.get('/new', (c) => c.text('1'));
  bareHono.get('/read', (c) => c.text('1'));
  bareHono.get('/incr', (c) => c.text('2'));

  const bareExpress = express();
  bareExpress.get('/new', (_req, res) => void res.send('1'));
  bareExpress.get('/read', (_req, res) => void res.send('1'));
  bareExpress.get('/incr', (_req, res) => void res.send('2'));

  const store = new SessionStore<Values>(new MemoryBackend(), {
    keyPairs: [{ authentication: new Uint8Array(randomBytes(32)) }],
    telemetry: false, // as for an app without @opentelemetry/api (bench/telemetry-cost.ts measures the rest)
  });
  const mongostore = new Hono<SessionEnv<Values>>();
  mongostore.use(sessions(store, { name: 'sid' }));
  honoRoutes(
    mongostore,
    (c: { get(key: 'session'): { values: Partial<Values> } }) => c.get('session').values.visits,
    (c: { get(key: 'session'): { values: Partial<Values> } }, visits) => void (c.get('session').values.visits = visits),
  );

  type HonoSessionsEnv = { Variables: { session: HonoSessionsSession<Values>; session_key_rotation: boolean } };
  const honoSessions = new Hono<HonoSessionsEnv>();
  honoSessions.use(
    sessionMiddleware({
      store: new HonoSessionsMemoryStore(),
      encryptionKey: secret,
      expireAfterSeconds: 30 * 24 * 3600,
      cookieOptions: { sameSite: 'Lax', path: '/', httpOnly: true, secure: true },
    }),
  );
  honoRoutes(
    honoSessions,
    (c: { get(key: 'session'): HonoSessionsSession<Values> }) => c.get('session').get('visits') ?? undefined,
    (c: { get(key: 'session'): HonoSessionsSession<Values> }, visits) => c.get('session').set('visits', visits),
  );

  const honoSessionData = new Map<string, Values>();
  const honoSession = new Hono<HonoSessionEnv<Values>>();
  honoSession.use(
    useSessionStorage<Values, HonoSessionEnv<Values>>({
      get: (sid) => honoSessionData.get(sid) ?? null,
      set: (sid, value) => void honoSessionData.set(sid, value),
      delete: (sid) => void honoSessionData.delete(sid),
    }),
    useSession<Values>({ secret, duration: { absolute: 30 * 24 * 3600, inactivity: 3600 } }),
  );
  honoRoutes(
    honoSession,
    async (c: { var: { session: { get(): Promise<Values | null> } } }) => (await c.var.session.get())?.visits,
    (c: { var: { session: { update(data: Values): Promise<void> } } }, visits) => c.var.session.update({ visits }),
  );

  const expressApp = express();
  expressApp.use(
    expressSession({
      secret,
      resave: false,
      saveUninitialized: false,
      store: new expressSession.MemoryStore(),
      cookie: { secure: false, httpOnly: true, sameSite: 'lax', maxAge: 30 * 24 * 3600 * 1000 },
    }),
  );
  const data = (req: express.Request) => req.session as unknown as Partial<Values>;
  expressApp.get('/new', (req, res) => {
    data(req).visits = 1;
    res.send('1');
  });
  expressApp.get('/read', (req, res) => void res.send(String(data(req).visits)));
  expressApp.get('/incr', (req, res) => {
    const visits = (data(req).visits ?? 0) + 1;
    data(req).visits = visits;
    res.send(String(visits));
  });

  return {
    'bare-hono': { label: 'Hono, no session', baseline: null, send: honoSender(bareHono) },
    'bare-express': { label: 'Express, no session', baseline: null, send: expressSender(bareExpress) },
    mongostore: { label: 'mongostore (Hono middleware)', baseline: 'bare-hono', send: honoSender(mongostore) },
    'hono-sessions': { label: 'hono-sessions (MemoryStore)', baseline: 'bare-hono', send: honoSender(honoSessions) },
    '@hono/session': { label: '@hono/session (session storage)', baseline: 'bare-hono', send: honoSender(honoSession) },
    'express-session': { label: 'express-session (MemoryStore)', baseline: 'bare-express', send: expressSender(expressApp) },
  };
}

/** Runs `one` for `warmUpMs` of wall-clock time, and at least `requests / 4` times. */
async function warmUp(one: () => Promise<unknown>): Promise<void> {
  const until = performance.now() + warmUpMs;
  for (let done = 0; done < requests / 4 || performance.now() < until; done++) await one();
}

/** `name=value` pairs of every Set-Cookie, as one Cookie header. */
function cookieHeader(setCookies: string[]): string {
  return setCookies.map((line) => line.split(';')[0]).join('; ');
}


/**
 * Runs one contender and its bare framework in this process, interleaved,
 * for one scenario (and, for mongostore's new sessions, one iron seal); the
 * medians in CPU µs per request. Each contender and scenario gets a process
 * of its own, so no library's garbage lands in another's numbers, and the
 * sessions a new-session run leaves in its in-memory store (in a real
 * deployment they live in the database) do not slow the returning runs.
 */
async function measureHere(
  contender: string,
  scenario: Scenario,
): Promise<{ runtime: string; perRequest: Record<string, number>; ironSeal: number | undefined }> {
  const every = contenders();
  const baseline = every[contender]?.baseline;
  if (!baseline) throw new Error(`no contender ${contender} with a baseline`);
  if (!scenarios.includes(scenario)) throw new Error(`no scenario ${scenario}`);
  const all = { [contender]: every[contender] as Contender, [baseline]: every[baseline] as Contender };
  const withSeal = contender === 'mongostore' && scenario === 'new';
  const cookies: Record<string, string> = {};
  for (const [name, contender] of Object.entries(all)) {
    const made = await contender.send('/new', undefined);
    cookies[name] = cookieHeader(made.setCookies);
    if (contender.baseline !== null && cookies[name] === '') throw new Error(`${name}: /new set no cookie`);
    const read = await contender.send('/read', cookies[name]);
    if (contender.baseline !== null && read.body !== '1') throw new Error(`${name}: /read gave ${read.body}, not 1`);
  }
  const run = (name: string) => {
    const contender = all[name] as Contender;
    const cookie = scenario === 'new' ? undefined : cookies[name];
    return async () => {
      const answer = await contender.send(`/${scenario}`, cookie);
      if (answer.status !== 200) throw new Error(`${name} /${scenario}: status ${answer.status}`);
    };
  };
  const ironPassword = { id: 'bench', encryption: randomBytes(32), integrity: randomBytes(32) };
  const sealOnce = () => seal({ n: 'sid', i: randomBytes(32).toString('base64url') }, ironPassword, { ...defaults, ttl: 2_592_000_000 });

  // Warm up to the steady state of a long-running server: on Node 24 the
  // read path needs some 20,000 requests before the JIT has settled, and the
  // compiler threads' CPU lands in whatever is measured meanwhile.
  for (const name of Object.keys(all)) await warmUp(run(name));
  if (withSeal) await warmUp(sealOnce);
  const samples = new Map<string, number[]>();
  const push = (key: string, value: number) => samples.set(key, [...(samples.get(key) ?? []), value]);
  for (let round = 0; round < rounds; round++) {
    const names = Object.keys(all);
    const order = [...names.slice(round % names.length), ...names.slice(0, round % names.length)];
    for (const name of order) push(name, await cpuPerRequest(requests, run(name)));
    if (withSeal) push('iron-seal', await cpuPerRequest(requests, sealOnce));
  }
  const perRequest = Object.fromEntries(Object.keys(all).map((name) => [name, median(samples.get(name) ?? [])]));
  const versions = process.versions as Record<string, string | undefined>;
  const runtime = versions.bun ? `Bun ${versions.bun}` : `Node ${process.version}`;
  return { runtime, perRequest, ironSeal: withSeal ? median(samples.get('iron-seal') ?? []) : undefined };
}

const childAt = process.argv.indexOf('--child');
if (childAt !== -1) {
  process.stdout.write(`${JSON.stringify(await measureHere(process.argv[childAt + 1] ?? '', (process.argv[childAt + 2] ?? '') as Scenario))}\n`);
} else {
  const runtimes = join(import.meta.dirname, '..', 'scripts', 'runtimes', 'node_modules');
  const tsx = join(import.meta.dirname, '..', 'node_modules', 'tsx', 'dist', 'esm', 'index.mjs');
  const targets = [
    { name: 'Node 20', command: join(runtimes, 'node20', 'bin', 'node'), args: ['--import', tsx] },
    { name: 'Node 24', command: join(runtimes, 'node24', 'bin', 'node'), args: ['--import', tsx] },
    { name: 'Bun', command: join(runtimes, '@oven', 'bun-linux-x64', 'bin', 'bun'), args: [] },
  ].filter((target) => existsSync(target.command));
  if (targets.length === 0) throw new Error('no runtimes: run `npm ci --prefix scripts/runtimes` first');
  const named = contenders();
  const measured = Object.keys(named).filter((name) => named[name]?.baseline);
  const results: { runtime: string; perRequest: Record<string, Record<Scenario, number>>; overBare: Record<string, Record<Scenario, number>>; ironSeal: number }[] = [];
  for (const target of targets) {
    const result = { runtime: '', perRequest: {} as Record<string, Record<Scenario, number>>, overBare: {} as Record<string, Record<Scenario, number>>, ironSeal: Number.NaN };
    for (const name of measured) {
      const baseline = named[name]?.baseline ?? '';
      result.perRequest[name] = {} as Record<Scenario, number>;
      result.overBare[name] = {} as Record<Scenario, number>;
      result.perRequest[baseline] ??= {} as Record<Scenario, number>;
      for (const scenario of scenarios) {
        const output = await new Promise<string>((resolve, reject) => {
          const child = spawn(target.command, [...target.args, import.meta.filename, '--child', name, scenario], { stdio: ['ignore', 'pipe', 'inherit'] });
          let text = '';
          child.stdout.on('data', (chunk: Buffer) => (text += chunk.toString()));
          child.once('error', reject);
          child.once('exit', (code) => (code === 0 ? resolve(text) : reject(new Error(`${target.name} ${name} ${scenario} exited with ${code}`))));
        });
        const one = JSON.parse(output) as Awaited<ReturnType<typeof measureHere>>;
        result.runtime = one.runtime;
        const own = one.perRequest[name] ?? Number.NaN;
        const bare = one.perRequest[baseline] ?? Number.NaN;
        result.perRequest[name][scenario] = own;
        result.perRequest[baseline][scenario] ??= bare;
        result.overBare[name][scenario] = own - bare;
        if (one.ironSeal !== undefined) result.ironSeal = one.ironSeal;
      }
    }
    results.push(result);
    console.error(`library cost: ${target.name} done`);
  }
  const labels = named;
  const rows = results.flatMap((result) =>
    Object.entries(result.overBare).flatMap(([name, values]) =>
      scenarios.map((scenario) => ({ runtime: result.runtime, contender: labels[name]?.label ?? name, scenario, total: result.perRequest[name]?.[scenario], overBare: values[scenario] })),
    ),
  );
  const out = process.env.BENCH_OUT ?? join(import.meta.dirname, 'results');
  await mkdir(out, { recursive: true });
  const json = { date: new Date().toISOString(), requests, rounds, results, rows };
  await writeFile(join(out, 'library-cost.json'), `${JSON.stringify(json, null, 2)}\n`);
  const f = (value: number) => value.toFixed(1);
  const scenarioLabel: Record<Scenario, string> = { new: 'new session', read: 'returning, read-only', incr: 'read-modify-write' };
  const lines = [
    '# Library cost, in process',
    '',
    `\`node --import tsx bench/library-cost.ts\`, ${json.date.slice(0, 10)}: CPU µs per request over the bare framework`,
    `(Hono's \`app.request\`; Express through light-my-request), each contender on its own in-memory store,`,
    `median of ${rounds} rounds of ${requests} requests, each contender and scenario in a process of its own, interleaved with its bare framework`,
    '(whose absolute cost, from the first contender\'s processes, heads each table). Chart: `library-cost.svg`.',
    '',
  ];
  for (const result of results) {
    lines.push(`## ${result.runtime}`, '', '| contender | new session | returning, read-only | read-modify-write |', '|---|---:|---:|---:|');
    for (const [name, values] of Object.entries(result.perRequest)) {
      const baseline = labels[name]?.baseline;
      const over = (scenario: Scenario) => (baseline ? `+${f(result.overBare[name]?.[scenario] ?? Number.NaN)}` : f(values[scenario]));
      lines.push(`| ${labels[name]?.label ?? name}${baseline ? '' : ' (absolute)'} | ${over('new')} | ${over('read')} | ${over('incr')} |`);
    }
    const mongostoreNew = result.overBare.mongostore?.new ?? Number.NaN;
    lines.push('', `One iron seal (iron-webcrypto, the payload mongostore seals), timed in mongostore's process: ${f(result.ironSeal)} µs; mongostore's new session over bare Hono: ${f(mongostoreNew)} µs = ${(mongostoreNew / result.ironSeal).toFixed(2)}× a seal.`, '');
  }
  lines.push('Scenario names: ' + scenarios.map((scenario) => `${scenario} = ${scenarioLabel[scenario]}`).join(', ') + '.', '');
  await writeFile(join(out, 'library-cost.md'), lines.join('\n'));
  console.log(lines.join('\n'));
}
