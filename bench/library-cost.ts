/**
 * The libraries' own cost, in process: every contender on its own in-memory
 * store, driven without sockets (Hono's `app.request`; Express through
 * light-my-request's injector), CPU µs per request over the bare framework
 * for a new session, a returning read-only visitor (one session, again and
 * again), a cold returning visitor (every request another existing session,
 * more sessions than mongostore's unseal cache holds), a read-modify-write,
 * and, for mongostore, a forged cookie (an iron token of the right shape
 * with a wrong MAC). Timed alongside, in mongostore's processes: one
 * node:crypto seal by the store's own codec (the floor of a new session) and
 * one HMAC-SHA256 of the token (the floor of rejecting a forged cookie).
 * mongostore with its unseal cache off (`unsealCacheSize: 0`) runs the two
 * returning scenarios in processes of its own, like a contender.
 *
 *   node --import tsx bench/library-cost.ts          all runtimes (Node 20, Node 24, Bun from
 *                                                    scripts/runtimes), results in bench/results/library-cost.*
 *   BENCH_REQUESTS=200 BENCH_ROUNDS=3 BENCH_WARMUP_MS=0 BENCH_COLD_SESSIONS=200 ...
 *                                                    a quick run (CI's smoke test)
 *   node --import tsx bench/library-cost.ts --child <contender> <scenario>
 *                                                    one measurement, JSON on stdout (after `npm run build`)
 *
 * mongostore is measured from dist/, as users run it (the parent builds it first).
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHmac, createSecretKey, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { useSession, useSessionStorage, type SessionEnv as HonoSessionEnv } from '@hono/session';
import express from 'express';
import expressSession from 'express-session';
import { Hono } from 'hono';
import { MemoryStore as HonoSessionsMemoryStore, type Session as HonoSessionsSession, sessionMiddleware } from 'hono-sessions';
import { inject } from 'light-my-request';
import type * as CodecModule from '../src/codec.ts';
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
const { CookieCodec } = (await import(`${dist}codec.js`)) as typeof CodecModule;

const requests = Number(process.env.BENCH_REQUESTS ?? 2000);
/** Wall-clock ms each contender, and each reference, run before the rounds (at least `requests / 4` calls). */
const warmUpMs = Number(process.env.BENCH_WARMUP_MS ?? 3000);
const rounds = Number(process.env.BENCH_ROUNDS ?? 9);
/** Sessions each contender holds in the cold scenario, visited in turn. */
const coldSessions = Number(process.env.BENCH_COLD_SESSIONS ?? 20_000);
/** mongostore's default `unsealCacheSize` (src/store-config.ts). */
const defaultUnsealCacheSize = 10_000;
/**
 * mongostore's cache in the cold scenario: the default, unless the run has
 * too few sessions to overflow it (a quick run), then half of them; either
 * way every request of the cold scenario misses it.
 */
const coldCacheSize = coldSessions >= 2 * defaultUnsealCacheSize ? defaultUnsealCacheSize : Math.floor(coldSessions / 2);
/** Distinct forged cookies, sent in turn. */
const forgedCookies = 256;
/** The seal's lifetime in the reference seal: mongostore's default `maxAge`, 30 days. */
const sealTtlMs = 30 * 24 * 3600 * 1000;

const scenarios = ['new', 'read', 'cold', 'incr', 'forged'] as const;
type Scenario = (typeof scenarios)[number];
const scenarioLabel: Record<Scenario, string> = {
  new: 'new session',
  read: 'returning, read-only',
  cold: 'returning, cold',
  incr: 'read-modify-write',
  forged: 'forged cookie',
};
/** The route each scenario requests. */
const routeOf: Record<Scenario, string> = { new: '/new', read: '/read', cold: '/read', incr: '/incr', forged: '/read' };
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
  /** The scenarios it runs. */
  scenarios: readonly Scenario[];
  /** Another contender configured otherwise (not one of the peers it is compared with). */
  variantOf?: string;
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

/** mongostore's Hono middleware on a store of its own; `unsealCacheSize` undefined: the default. */
function mongostoreApp(unsealCacheSize: number | undefined) {
  const store = new SessionStore<Values>(new MemoryBackend(), {
    keyPairs: [{ authentication: new Uint8Array(randomBytes(32)) }],
    telemetry: false, // as for an app without @opentelemetry/api (bench/telemetry-cost.ts measures the rest)
    ...(unsealCacheSize === undefined ? {} : { unsealCacheSize }),
  });
  const app = new Hono<SessionEnv<Values>>();
  app.use(sessions(store, { name: 'sid' }));
  return honoRoutes(
    app,
    (c: { get(key: 'session'): { values: Partial<Values> } }) => c.get('session').values.visits,
    (c: { get(key: 'session'): { values: Partial<Values> } }, visits) => void (c.get('session').values.visits = visits),
  );
}

/** Every contender, built for `scenario` (mongostore's cache is sized for the cold one). */
function contenders(scenario: Scenario | undefined): Record<string, Contender> {
  const secret = randomBytes(32).toString('hex');
  const common = ['new', 'read', 'cold', 'incr'] as const;

  const bareHono = new Hono();
  bareHono.get('/new', (c) => c.text('1'));
  bareHono.get('/read', (c) => c.text('1'));
  bareHono.get('/incr', (c) => c.text('2'));

  const bareExpress = express();
  bareExpress.get('/new', (_req, res) => void res.send('1'));
  bareExpress.get('/read', (_req, res) => void res.send('1'));
  bareExpress.get('/incr', (_req, res) => void res.send('2'));

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
    'bare-hono': { label: 'Hono, no session', baseline: null, scenarios, send: honoSender(bareHono) },
    'bare-express': { label: 'Express, no session', baseline: null, scenarios: common, send: expressSender(bareExpress) },
    mongostore: {
      label: 'mongostore (Hono middleware)',
      baseline: 'bare-hono',
      scenarios,
      send: honoSender(mongostoreApp(scenario === 'cold' ? coldCacheSize : undefined)),
    },
    'mongostore-nocache': {
      label: 'mongostore, unsealCacheSize: 0',
      baseline: 'bare-hono',
      scenarios: ['read', 'cold'],
      variantOf: 'mongostore',
      send: honoSender(mongostoreApp(0)),
    },
    'hono-sessions': { label: 'hono-sessions (MemoryStore)', baseline: 'bare-hono', scenarios: common, send: honoSender(honoSessions) },
    '@hono/session': { label: '@hono/session (session storage)', baseline: 'bare-hono', scenarios: common, send: honoSender(honoSession) },
    'express-session': { label: 'express-session (MemoryStore)', baseline: 'bare-express', scenarios: common, send: expressSender(expressApp) },
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

/** `sid=<iron token>` with the token's MAC (its last part) replaced by 32 random bytes: the right shape, the wrong MAC. */
function forge(cookie: string): string {
  const at = cookie.indexOf('=');
  const parts = decodeURIComponent(cookie.slice(at + 1)).split('*');
  if (parts.length !== 8) throw new Error(`not an iron token: ${cookie}`);
  parts[7] = randomBytes(32).toString('base64url');
  return `${cookie.slice(0, at)}=${parts.join('*')}`;
}

/** One child's answer. */
interface Measured {
  runtime: string;
  /** Median CPU µs per request of the contender and its bare framework. */
  perRequest: Record<string, number>;
  /** Every round's CPU µs per request, by the same names (and the references'). */
  samples: Record<string, number[]>;
  /** mongostore's new sessions: one node:crypto seal by the store's codec, µs. */
  seal: number | undefined;
  /** mongostore's forged cookies: one HMAC-SHA256 of the token, µs. */
  hmac: number | undefined;
}

/**
 * Runs one contender and its bare framework in this process, interleaved,
 * for one scenario (with mongostore: one seal for new sessions, one HMAC of
 * the token for forged cookies); the medians in CPU µs per request. Each
 * contender (and variant: the JIT's feedback is per process) and scenario
 * gets a process of its own, so no library's garbage lands in another's
 * numbers, and the sessions a new-session run leaves in its in-memory store
 * (in a real deployment they live in the database) do not slow the
 * returning runs.
 */
async function measureHere(contender: string, scenario: Scenario): Promise<Measured> {
  if (!scenarios.includes(scenario)) throw new Error(`no scenario ${scenario}`);
  const every = contenders(scenario);
  const own = every[contender];
  if (!own?.baseline || !own.scenarios.includes(scenario)) throw new Error(`no contender ${contender} with a baseline and scenario ${scenario}`);
  const all: Record<string, Contender> = { [contender]: own, [own.baseline]: every[own.baseline] as Contender };

  // The cookies each app is sent: one session (read, incr), `coldSessions`
  // sessions (cold), forged tokens (forged); none for new visitors and bare
  // apps. Every contender's sessions are read back once first.
  const cookies: Record<string, (string | undefined)[]> = {};
  for (const [name, app] of Object.entries(all)) {
    if (app.baseline === null) {
      cookies[name] = [undefined];
      continue;
    }
    const made: string[] = [];
    const count = scenario === 'cold' ? coldSessions : 1;
    for (let i = 0; i < count; i++) {
      const cookie = cookieHeader((await app.send('/new', undefined)).setCookies);
      if (cookie === '') throw new Error(`${name}: /new set no cookie`);
      made.push(cookie);
    }
    for (const cookie of new Set([made[0], made[made.length - 1]])) {
      const read = await app.send('/read', cookie);
      if (read.body !== '1') throw new Error(`${name}: /read gave ${read.body}, not 1`);
    }
    if (scenario === 'forged') {
      cookies[name] = Array.from({ length: forgedCookies }, () => forge(made[0] ?? ''));
      const read = await app.send('/read', cookies[name][0]);
      if (read.body !== 'undefined') throw new Error(`${name}: a forged cookie read ${read.body}`);
    } else {
      cookies[name] = scenario === 'new' ? [undefined] : made;
    }
  }
  // What each measured request must answer: /new and /read 1 (a forged
  // cookie reads nothing: a fresh session); /incr counts on.
  const expected = (app: Contender) => (scenario === 'incr' ? undefined : scenario === 'forged' && app.baseline !== null ? 'undefined' : '1');
  const run = (name: string) => {
    const app = all[name] as Contender;
    const list = cookies[name] ?? [];
    const want = expected(app);
    const path = routeOf[scenario];
    let next = 0;
    return async () => {
      const answer = await app.send(path, list[next++ % list.length]);
      if (answer.status !== 200) throw new Error(`${name} ${path}: status ${answer.status}`);
      if (want !== undefined && answer.body !== want) throw new Error(`${name} ${path}: ${answer.body}, not ${want}`);
    };
  };

  // The references, in mongostore's processes only.
  const references: Record<string, () => Promise<unknown>> = {};
  if (contender === 'mongostore' && scenario === 'new') {
    // The store's own codec and key-pair form (two distinct 32-byte keys, used as given); a new session's id.
    const codec = new CookieCodec([{ authentication: new Uint8Array(randomBytes(32)), encryption: new Uint8Array(randomBytes(32)) }], 0);
    const id = randomBytes(32).toString('base64url');
    references.seal = () => Promise.resolve(codec.seal('sid', id, sealTtlMs));
  }
  if (contender === 'mongostore' && scenario === 'forged') {
    const key = createSecretKey(randomBytes(32));
    const token = decodeURIComponent((cookies[contender]?.[0] ?? '').slice('sid='.length));
    references.hmac = () => Promise.resolve(createHmac('sha256', key).update(token).digest());
  }

  // Warm up to the steady state of a long-running server: on Node 24 the
  // read path needs some 20,000 requests before the JIT has settled, and the
  // compiler threads' CPU lands in whatever is measured meanwhile.
  const runs = Object.fromEntries(Object.keys(all).map((name) => [name, run(name)]));
  for (const one of Object.values(runs)) await warmUp(one);
  for (const one of Object.values(references)) await warmUp(one);
  const samples: Record<string, number[]> = {};
  const push = (key: string, value: number) => (samples[key] ??= []).push(value);
  const names = Object.keys(all);
  for (let round = 0; round < rounds; round++) {
    const order = [...names.slice(round % names.length), ...names.slice(0, round % names.length)];
    for (const name of order) push(name, await cpuPerRequest(requests, runs[name] as () => Promise<void>));
    for (const [name, one] of Object.entries(references)) push(name, await cpuPerRequest(requests, one));
  }
  const perRequest = Object.fromEntries(names.map((name) => [name, median(samples[name] ?? [])]));
  const versions = process.versions as Record<string, string | undefined>;
  const runtime = versions.bun ? `Bun ${versions.bun}` : `Node ${process.version}`;
  const reference = (name: string) => (samples[name] ? median(samples[name]) : undefined);
  return { runtime, perRequest, samples, seal: reference('seal'), hmac: reference('hmac') };
}

type ByScenario = Partial<Record<Scenario, number>>;
interface RuntimeResult {
  runtime: string;
  /** Absolute CPU µs per request; a bare framework's from the first process that ran it. */
  perRequest: Record<string, ByScenario>;
  /** Over the bare framework measured in the same process. */
  overBare: Record<string, ByScenario>;
  /** Bare Hono as measured in mongostore's processes. */
  bareInMongostore: ByScenario;
  /** Each round's cost over the bare framework (the two were interleaved), by contender and scenario. */
  overBareByRound: Record<string, Partial<Record<Scenario, number[]>>>;
  seal: number;
  hmac: number;
}

interface Target {
  runtime: string;
  target: string;
  measured: string;
  met: boolean;
  /** How far from the target, when missed. */
  missedBy: string;
}

function f(value: number | undefined, digits = 1): string {
  return value === undefined || Number.isNaN(value) ? 'n/a' : value.toFixed(digits);
}

/** A difference, with its sign. */
function signed(value: number | undefined): string {
  return value !== undefined && value >= 0 ? `+${f(value)}` : f(value);
}

/** The issue's targets, one runtime at a time. */
function targets(result: RuntimeResult, labels: Record<string, Contender>): Target[] {
  const out: Target[] = [];
  const over = (name: string, scenario: Scenario) => result.overBare[name]?.[scenario] ?? Number.NaN;
  const peers = Object.keys(result.overBare).filter((name) => name !== 'mongostore' && labels[name]?.variantOf === undefined);
  for (const scenario of ['new', 'cold'] as const) {
    const mine = over('mongostore', scenario);
    const [cheapest] = peers.map((name) => ({ name, cost: over(name, scenario) })).sort((a, b) => a.cost - b.cost);
    out.push({
      runtime: result.runtime,
      target: `${scenarioLabel[scenario]}: the cheapest contender`,
      measured: `mongostore ${signed(mine)} µs; next ${labels[cheapest?.name ?? '']?.label ?? '?'} ${signed(cheapest?.cost)} µs`,
      met: mine < (cheapest?.cost ?? Number.NaN),
      missedBy: `${f(mine - (cheapest?.cost ?? Number.NaN))} µs`,
    });
  }
  const forged = over('mongostore', 'forged');
  const bound = 3 * result.hmac + 10;
  out.push({
    runtime: result.runtime,
    target: 'forged cookie: at most 3 HMACs of the token + 10 µs',
    measured: `${signed(forged)} µs = ${f(forged / result.hmac, 2)}× one HMAC of ${f(result.hmac, 2)} µs ((cost - 10 µs) / HMAC = ${f((forged - 10) / result.hmac, 2)}); bound ${f(bound)} µs`,
    met: forged <= bound,
    missedBy: `${f(forged - bound)} µs`,
  });
  const total = result.perRequest.mongostore?.new ?? Number.NaN;
  const floor = result.seal + (result.bareInMongostore.new ?? Number.NaN);
  out.push({
    runtime: result.runtime,
    target: 'new session: within 1.5× (one seal + bare Hono)',
    measured: `${f(total)} µs = ${f(total / floor, 2)}× (seal ${f(result.seal)} + bare ${f(result.bareInMongostore.new)} µs)`,
    met: total <= 1.5 * floor,
    missedBy: `${f(total / floor - 1.5, 2)}×, ${f(total - 1.5 * floor)} µs`,
  });
  const read = over('mongostore', 'read');
  out.push({
    runtime: result.runtime,
    target: `returning read-only: within 10 µs of bare Hono${result.runtime.startsWith('Node v24') ? '' : ' (the target is Node 24\'s)'}`,
    measured: `${signed(read)} µs`,
    met: read <= 10,
    missedBy: `${f(read - 10)} µs`,
  });
  return out;
}

/** The unseal cache: mongostore with and without it, per returning scenario. */
function cacheLines(result: RuntimeResult): string[] {
  return (['read', 'cold'] as const).map((scenario) => {
    const withCache = result.overBare.mongostore?.[scenario] ?? Number.NaN;
    const without = result.overBare['mongostore-nocache']?.[scenario] ?? Number.NaN;
    const bare = result.bareInMongostore[scenario] ?? Number.NaN;
    const spread = (name: string) => {
      const rounds = [...(result.overBareByRound[name]?.[scenario] ?? [])].sort((a, b) => a - b);
      return `${signed(rounds[0])} to ${signed(rounds[rounds.length - 1])}`;
    };
    const saving = without - withCache;
    return (
      `- ${scenarioLabel[scenario]}: with the cache ${signed(withCache)} µs (rounds ${spread('mongostore')}), without ` +
      `${signed(without)} µs (rounds ${spread('mongostore-nocache')}): the cache saves ${f(saving)} µs, ` +
      `${f((100 * saving) / without, 0)}% of mongostore's own cost and ${f((100 * saving) / (bare + without), 0)}% of the whole request ` +
      `(bare Hono ${f(bare)} µs).`
    );
  });
}

const childAt = process.argv.indexOf('--child');
if (childAt !== -1) {
  process.stdout.write(`${JSON.stringify(await measureHere(process.argv[childAt + 1] ?? '', (process.argv[childAt + 2] ?? '') as Scenario))}\n`);
} else {
  const runtimes = join(import.meta.dirname, '..', 'scripts', 'runtimes', 'node_modules');
  const tsx = join(import.meta.dirname, '..', 'node_modules', 'tsx', 'dist', 'esm', 'index.mjs');
  const targetsOf = [
    { name: 'Node 20', command: join(runtimes, 'node20', 'bin', 'node'), args: ['--import', tsx] },
    { name: 'Node 24', command: join(runtimes, 'node24', 'bin', 'node'), args: ['--import', tsx] },
    { name: 'Bun', command: join(runtimes, '@oven', 'bun-linux-x64', 'bin', 'bun'), args: [] },
  ].filter((target) => existsSync(target.command));
  if (targetsOf.length === 0) throw new Error('no runtimes: run `npm ci --prefix scripts/runtimes` first');
  const labels = contenders(undefined);
  const measured = Object.keys(labels).filter((name) => labels[name]?.baseline);
  const results: RuntimeResult[] = [];
  for (const target of targetsOf) {
    const result: RuntimeResult = { runtime: '', perRequest: {}, overBare: {}, bareInMongostore: {}, overBareByRound: {}, seal: Number.NaN, hmac: Number.NaN };
    for (const name of measured) {
      const contender = labels[name] as Contender;
      const baseline = contender.baseline ?? '';
      for (const scenario of contender.scenarios) {
        const output = await new Promise<string>((resolve, reject) => {
          const child = spawn(target.command, [...target.args, import.meta.filename, '--child', name, scenario], { stdio: ['ignore', 'pipe', 'inherit'] });
          let text = '';
          child.stdout.on('data', (chunk: Buffer) => (text += chunk.toString()));
          child.once('error', reject);
          child.once('exit', (code) => (code === 0 ? resolve(text) : reject(new Error(`${target.name} ${name} ${scenario} exited with ${code}`))));
        });
        const one = JSON.parse(output) as Measured;
        result.runtime = one.runtime;
        const bare = one.perRequest[baseline] ?? Number.NaN;
        for (const [measuredName, value] of Object.entries(one.perRequest)) {
          (result.perRequest[measuredName] ??= {})[scenario] ??= value;
          if (measuredName !== baseline) (result.overBare[measuredName] ??= {})[scenario] = value - bare;
        }
        if (name === 'mongostore') result.bareInMongostore[scenario] = bare;
        const bareRounds = one.samples[baseline] ?? [];
        (result.overBareByRound[name] ??= {})[scenario] = (one.samples[name] ?? []).map((value, i) => value - (bareRounds[i] ?? Number.NaN));
        if (one.seal !== undefined) result.seal = one.seal;
        if (one.hmac !== undefined) result.hmac = one.hmac;
        console.error(`library cost: ${target.name} ${name} ${scenario}: ${signed((one.perRequest[name] ?? Number.NaN) - bare)} µs`);
      }
    }
    results.push(result);
    console.error(`library cost: ${target.name} done`);
  }
  const rows = results.flatMap((result) =>
    Object.entries(result.overBare).flatMap(([name, values]) =>
      scenarios
        .filter((scenario) => values[scenario] !== undefined)
        .map((scenario) => ({ runtime: result.runtime, contender: labels[name]?.label ?? name, scenario, total: result.perRequest[name]?.[scenario], overBare: values[scenario] })),
    ),
  );
  const checks = results.flatMap((result) => targets(result, labels));
  const out = process.env.BENCH_OUT ?? join(import.meta.dirname, 'results');
  await mkdir(out, { recursive: true });
  const json = { date: new Date().toISOString(), requests, rounds, warmUpMs, coldSessions, coldCacheSize, results, rows, targets: checks };
  await writeFile(join(out, 'library-cost.json'), `${JSON.stringify(json, null, 2)}\n`);
  const lines = [
    '# Library cost, in process',
    '',
    `\`node --import tsx bench/library-cost.ts\`, ${json.date.slice(0, 10)}: CPU µs per request over the bare framework`,
    `(Hono's \`app.request\`; Express through light-my-request), each contender on its own in-memory store,`,
    `median of ${rounds} rounds of ${requests} requests after ${warmUpMs} ms of warm-up, each contender and scenario in a process of its own,`,
    'interleaved with its bare framework (whose absolute cost, from the first contender\'s processes, heads each table). Chart: `library-cost.svg`.',
    '',
    `Returning, cold: ${coldSessions.toLocaleString('en-US')} sessions per contender, made through \`/new\` before the warm-up, each request`,
    `carrying the next one's cookie in turn; mongostore's unseal cache holds ${coldCacheSize.toLocaleString('en-US')}, so every request misses it.`,
    `Forged cookie (mongostore only): mongostore's own token with its MAC replaced by 32 random bytes (${forgedCookies} of them, in turn): a fresh session.`,
    '"mongostore, unsealCacheSize: 0": mongostore with its unseal cache off, in processes of its own like every contender.',
    '',
  ];
  for (const result of results) {
    lines.push(`## ${result.runtime}`, '', `| contender | ${scenarios.map((scenario) => scenarioLabel[scenario]).join(' | ')} |`, `|---|${scenarios.map(() => '---:').join('|')}|`);
    const tableOrder = ['mongostore', 'mongostore-nocache', 'bare-hono', 'hono-sessions', '@hono/session', 'express-session', 'bare-express'];
    const ordered = Object.entries(result.perRequest).sort(([a], [b]) => tableOrder.indexOf(a) - tableOrder.indexOf(b));
    for (const [name, values] of ordered) {
      const baseline = labels[name]?.baseline;
      const cell = (scenario: Scenario) => {
        const value = baseline ? result.overBare[name]?.[scenario] : values[scenario];
        return value === undefined ? '–' : baseline ? signed(value) : f(value);
      };
      lines.push(`| ${labels[name]?.label ?? name}${baseline ? '' : ' (absolute)'} | ${scenarios.map(cell).join(' | ')} |`);
    }
    lines.push(
      '',
      `Timed in mongostore's processes: one node:crypto seal by the store's codec (\`CookieCodec.seal\`) ${f(result.seal)} µs;`,
      `one HMAC-SHA256 of the token (node:crypto) ${f(result.hmac, 2)} µs; bare Hono there: ${scenarios.map((scenario) => `${scenario} ${f(result.bareInMongostore[scenario])}`).join(', ')} µs.`,
      '',
      '| target | measured | met |',
      '|---|---|---|',
      ...targets(result, labels).map((check) => `| ${check.target} | ${check.measured} | ${check.met ? 'met' : `missed by ${check.missedBy}`} |`),
      '',
      'The unseal cache:',
      '',
      ...cacheLines(result),
      '',
    );
  }
  lines.push('Scenario names in library-cost.json: ' + scenarios.map((scenario) => `${scenario} = ${scenarioLabel[scenario]}`).join(', ') + '.', '');
  await writeFile(join(out, 'library-cost.md'), lines.join('\n'));
  console.log(lines.join('\n'));
}
