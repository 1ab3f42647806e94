/**
 * What OpenTelemetry costs a request, in process (Hono's `app.request`, the
 * store on an in-memory backend, so nothing but the library is measured):
 *
 *  - `off`: `telemetry: false`, as without `@opentelemetry/api` installed
 *    (the backend is not even wrapped);
 *  - `api, no SDK`: the default with the API installed and no SDK
 *    registered: the API's no-op meter and tracer take the calls;
 *  - `SDK`: a MeterProvider and a TracerProvider of the SDK, recording
 *    (spans to an in-memory exporter, emptied between rounds).
 *
 * CPU µs per request (process.cpuUsage) for a new session, a returning
 * read-only visitor and a read-modify-write, the three variants interleaved
 * round by round; medians of the rounds. Writes bench/results/telemetry-cost.md.
 *
 *   node --import tsx bench/telemetry-cost.ts   (BENCH_REQUESTS per round, default 2000; BENCH_ROUNDS, default 15)
 */
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { Hono } from 'hono';
import { type SessionEnv, sessions } from '../src/hono.ts';
import { SessionStore, type SessionStoreConfig } from '../src/index.ts';
import { MemoryBackend } from './memory-backend.ts';
import { cpuPerRequest, median, quantile } from './stats.ts';

type Values = { visits: number };
const requests = Number(process.env.BENCH_REQUESTS ?? 2000);
const rounds = Number(process.env.BENCH_ROUNDS ?? 15);
const keyPairs = [{ authentication: new Uint8Array(randomBytes(32)) }];

function app(telemetry: SessionStoreConfig['telemetry']) {
  const store = new SessionStore<Values>(new MemoryBackend(), { keyPairs, telemetry });
  const hono = new Hono<SessionEnv<Values>>();
  hono.use(sessions(store, { name: 'sid' }));
  hono.get('/new', (c) => {
    c.get('session').values.visits = 1;
    return c.text('1');
  });
  hono.get('/read', (c) => c.text(String(c.get('session').values.visits ?? 0)));
  hono.get('/incr', (c) => {
    const session = c.get('session');
    session.values.visits = (session.values.visits ?? 0) + 1;
    return c.text(String(session.values.visits));
  });
  return hono;
}

const spans = new InMemorySpanExporter();
const variants = {
  off: app(false),
  'api, no SDK': app(undefined),
  SDK: app({
    meterProvider: new MeterProvider(),
    tracerProvider: new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] }),
  }),
};
type Variant = keyof typeof variants;
const scenarios = ['new', 'read', 'incr'] as const;

async function cookieOf(hono: Hono<SessionEnv<Values>>): Promise<string> {
  const response = await hono.request('https://app.example/new');
  const [pair = ''] = response.headers.getSetCookie()[0]?.split(';') ?? [];
  if (!pair.startsWith('sid=')) throw new Error('no session cookie');
  return pair;
}

/** CPU µs per request of `count` requests of `scenario`; checks the answers. */
function measure(hono: Hono<SessionEnv<Values>>, scenario: (typeof scenarios)[number], cookie: string, count: number): Promise<number> {
  const init = scenario === 'new' ? {} : { headers: { cookie } };
  return cpuPerRequest(count, async () => {
    const response = await hono.request(`https://app.example/${scenario}`, init);
    if (response.status !== 200) throw new Error(`${scenario}: status ${response.status}`);
    await response.arrayBuffer();
  });
}

const cookies = Object.fromEntries(await Promise.all(Object.entries(variants).map(async ([name, hono]) => [name, await cookieOf(hono)]))) as Record<Variant, string>;
const samples: Record<string, number[]> = {};
for (const scenario of scenarios) {
  for (const [name, hono] of Object.entries(variants)) await measure(hono, scenario, cookies[name as Variant], Math.ceil(requests / 4)); // warm-up
}
for (let round = 0; round < rounds; round++) {
  const order = Object.keys(variants) as Variant[];
  for (let shift = 0; shift < round % order.length; shift++) order.push(order.shift() as Variant);
  for (const scenario of scenarios) {
    for (const name of order) {
      (samples[`${scenario}|${name}`] ??= []).push(await measure(variants[name], scenario, cookies[name], requests));
      spans.reset();
    }
  }
}
const incr = await (await variants.SDK.request('https://app.example/incr', { headers: { cookie: cookies.SDK } })).text();
if (!(Number(incr) > requests)) throw new Error(`the SDK variant lost updates: visits ${incr}`);
spans.reset();
await variants.SDK.request('https://app.example/read', { headers: { cookie: cookies.SDK } });
const spansPerRead = spans.getFinishedSpans().length;

const label = { new: 'new session', read: 'returning, read-only', incr: 'read-modify-write' };
const lines = [
  `# What telemetry costs a request`,
  '',
  `\`node --import tsx bench/telemetry-cost.ts\` on ${process.release.name} ${process.version}, ${new Date().toISOString().slice(0, 10)}: `,
  `in-process Hono \`app.request\`, the store on an in-memory backend; CPU µs per request, median of ${rounds} interleaved rounds of ${requests} requests.`,
  '',
  '| scenario | off | api, no SDK | SDK (recording) | api, no SDK − off | SDK − off |',
  '|---|---:|---:|---:|---:|---:|',
  ...scenarios.map((scenario) => {
    const [off, noop, sdk] = (['off', 'api, no SDK', 'SDK'] as const).map((name) => median(samples[`${scenario}|${name}`] ?? []));
    const f = (value: number | undefined) => (value ?? Number.NaN).toFixed(1);
    return `| ${label[scenario]} | ${f(off)} | ${f(noop)} | ${f(sdk)} | ${f((noop ?? 0) - (off ?? 0))} | ${f((sdk ?? 0) - (off ?? 0))} |`;
  }),
  '',
  'Spread (25th to 75th percentile of the rounds), µs: ' +
    scenarios
      .flatMap((scenario) =>
        (['off', 'api, no SDK', 'SDK'] as const).map((name) => {
          const values = samples[`${scenario}|${name}`] ?? [];
          return `${scenario}/${name} ${quantile(values, 0.25).toFixed(1)}-${quantile(values, 0.75).toFixed(1)}`;
        }),
      )
      .join('; ') +
    '.',
  '',
  `Spans of one returning read with the SDK: ${spansPerRead} (the read's \`find\`; the write-free save sends nothing).`,
  'A difference inside the spread is noise.',
  '',
];
const text = lines.join('\n');
console.log(text);
const out = process.env.BENCH_OUT ?? join(import.meta.dirname, 'results');
await mkdir(out, { recursive: true });
await writeFile(join(out, 'telemetry-cost.md'), text);
