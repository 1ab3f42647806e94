/**
 * OpenTelemetry metrics and traces, on both backends, read through the
 * SDK's in-memory exporters: every instrument docs/metrics.md lists moves as it
 * says, spans follow the database client conventions, and the live-session
 * gauge costs at most one counting command per interval.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { type Attributes, type Context, context, type ContextManager, metrics, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import {
  AggregationTemporality,
  DataPointType,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type SessionStoreConfig, SessionOptionsError, SessionStoreError } from '../src/index.ts';
import { CookieCodec } from '../src/codec.ts';
import { instrumentBackend } from '../src/instrumented-backend.ts';
import { newSessionId } from '../src/ids.ts';
import { SessionStore } from '../src/session-store.ts';
import { Telemetry } from '../src/telemetry.ts';
import { MemoryBackend } from '../bench/memory-backend.ts';
import { type Backend, backends } from './support/backends.ts';
import { onlyCookie, randomKey, requestWith } from './support/http.ts';

type Values = { user?: string; provider?: string; visits?: number };
const oldPair = { authentication: randomKey(), encryption: randomKey() };
const newPair = { authentication: randomKey(), encryption: randomKey() };

/** An in-memory backend that counts the gauge's counting calls. */
class CountingBackend extends MemoryBackend {
  counts = 0;
  override countLiveByProvider(): Promise<Map<string | null, number>> {
    this.counts++;
    return super.countLiveByProvider();
  }
}

/** An SDK pipeline whose metrics and spans the test reads. */
/** The context manager an SDK registers (@opentelemetry/context-async-hooks), in a few lines. */
class AsyncLocalContextManager implements ContextManager {
  readonly #storage = new AsyncLocalStorage<Context>();
  active(): Context {
    return this.#storage.getStore() ?? ROOT_CONTEXT;
  }
  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(ctx: Context, fn: F, thisArg?: ThisParameterType<F>, ...args: A): ReturnType<F> {
    return this.#storage.run(ctx, () => fn.apply(thisArg, args));
  }
  bind<T>(_ctx: Context, target: T): T {
    return target;
  }
  enable(): this {
    return this;
  }
  disable(): this {
    this.#storage.disable();
    return this;
  }
}

function pipeline() {
  const metrics = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const reader = new PeriodicExportingMetricReader({ exporter: metrics, exportIntervalMillis: 3_600_000 });
  const meterProvider = new MeterProvider({ readers: [reader] });
  const spans = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
  /** Collects now; every data point of the instrument `name` (values: sums, gauges, or histogram counts). */
  const points = async (name: string): Promise<{ value: number; attributes: Attributes }[]> => {
    metrics.reset();
    await reader.forceFlush();
    const found = metrics
      .getMetrics()
      .flatMap((resource) => resource.scopeMetrics)
      .flatMap((scope) => scope.metrics)
      .filter((metric) => metric.descriptor.name === name);
    return found.flatMap((metric) =>
      metric.dataPoints.map((point) => ({
        value: metric.dataPointType === DataPointType.HISTOGRAM ? (point.value as { count: number }).count : (point.value as number),
        attributes: point.attributes,
      })),
    );
  };
  /** The sum of the points of `name` whose attributes include `match`. */
  const total = async (name: string, match: Attributes = {}) =>
    (await points(name))
      .filter((point) => Object.entries(match).every(([key, value]) => point.attributes[key] === value))
      .reduce((sum, point) => sum + point.value, 0);
  return { meterProvider, tracerProvider, spans, points, total };
}

describe.each(backends)('telemetry on $name', (backend: Backend) => {
  beforeAll(() => backend.open());
  afterAll(() => backend.close());
  const system = backend.name === 'MongoDB' ? 'mongodb' : 'postgresql';

  /** A store with its own SDK pipeline, on a fresh place or on `place` (to share one with another store). */
  async function makeStore(config: Partial<SessionStoreConfig> = {}, keyPairs = [newPair], place?: string) {
    const otel = pipeline();
    const { store, raw } = await backend.sessionStore<Values>(
      { keyPairs, telemetry: { meterProvider: otel.meterProvider, tracerProvider: otel.tracerProvider }, ...config },
      place,
    );
    otel.spans.reset(); // init() is not what the tests count
    return { store, raw, otel };
  }

  const uniquePlace = () => `telemetry_${Math.random().toString(36).slice(2, 10)}`;

  async function signIn(store: SessionStore<Values>, user: string, provider = 'password') {
    const req = requestWith();
    const session = await store.get(req, 'sid');
    session.values = { user, provider };
    const headers = new Headers();
    expect(await store.save(req, headers, session)).toBe('created');
    return { cookie: onlyCookie(headers).value, session };
  }

  it('counts sessions created, regenerated, ended and revoked, with the backend as an attribute', async () => {
    const { store, otel } = await makeStore();
    const { cookie } = await signIn(store, 'alice');
    expect(await otel.total('mongostore.session.created', { 'db.system.name': system })).toBe(1);

    const req = requestWith({ sid: cookie });
    const session = await store.get(req, 'sid');
    session.regenerate();
    expect(await store.save(req, new Headers(), session)).toBe('created');
    expect(await otel.total('mongostore.session.regenerated', { 'db.system.name': system })).toBe(1);
    expect(await otel.total('mongostore.session.created')).toBe(1);

    const gone = await signIn(store, 'carol');
    const ending = await store.get(requestWith({ sid: gone.cookie }), 'sid');
    ending.destroy();
    expect(await store.save(requestWith({ sid: gone.cookie }), new Headers(), ending)).toBe('deleted');
    const unsaved = await store.get(requestWith(), 'sid');
    unsaved.destroy(); // never stored: nothing ended
    await store.save(requestWith(), new Headers(), unsaved);
    expect(await otel.total('mongostore.session.ended', { 'db.system.name': system })).toBe(1);

    await signIn(store, 'bob');
    await signIn(store, 'bob');
    expect(await store.expireSessions('bob', 'password')).toBe(2);
    const first = await signIn(store, 'dave');
    const second = await signIn(store, 'dave');
    await signIn(store, 'dave');
    expect(await store.revokeSession('dave', 'password', first.session.handle)).toBe(true);
    expect(await store.revokeSession('dave', 'password', first.session.handle)).toBe(false);
    expect(await store.revokeOtherSessions(second.session)).toBe(1);
    const revoked = (reason: string) => otel.total('mongostore.session.revoked', { 'mongostore.session.revoke_reason': reason, 'db.system.name': system });
    expect([await revoked('forced_logout'), await revoked('device'), await revoked('other_devices')]).toEqual([2, 1, 1]);
  });

  it('counts evictions by the session limit as revocations (reason session_limit), and refused sign-ins', async () => {
    const revoked = (otel: ReturnType<typeof pipeline>) =>
      otel.total('mongostore.session.revoked', { 'mongostore.session.revoke_reason': 'session_limit', 'db.system.name': system });
    const evicting = await makeStore({ maxSessionsPerUser: 2 });
    for (let i = 0; i < 5; i++) await signIn(evicting.store, 'alice');
    expect(await revoked(evicting.otel)).toBe(3);
    expect(await evicting.otel.total('mongostore.session.limited', {})).toBe(0);
    const refusing = await makeStore({ maxSessionsPerUser: 2, onSessionLimit: 'refuse' });
    await signIn(refusing.store, 'alice');
    await signIn(refusing.store, 'alice');
    for (let i = 0; i < 3; i++) {
      const req = requestWith();
      const session = await refusing.store.get(req, 'sid');
      session.values = { user: 'alice', provider: 'password' };
      expect(await refusing.store.save(req, new Headers(), session)).toBe('limited');
    }
    expect(await refusing.otel.total('mongostore.session.limited', { 'db.system.name': system })).toBe(3);
    expect(await revoked(refusing.otel)).toBe(0);
    // The limit's commands are database calls like the others: a span each.
    const names = refusing.otel.spans.getFinishedSpans().map((span) => span.name.split(' ')[0]);
    expect(names.filter((name) => name === 'countOwnedBy')).toHaveLength(5);
    expect(names.filter((name) => name === 'limitOwnedBy')).toHaveLength(2);
  });

  it('counts cookies that gave a fresh session, by reason', async () => {
    const { store, otel } = await makeStore();
    const { cookie } = await signIn(store, 'alice');
    const stranger = new CookieCodec([{ authentication: randomKey() }], 0).seal('sid', newSessionId(), 60_000);
    const cookies: Record<string, string> = {
      malformed: 'not-a-token',
      tampered: `${cookie.slice(0, -3)}${cookie.endsWith('AAA') ? 'BBB' : 'AAA'}`,
      'unknown-key': stranger,
      'not-found': new CookieCodec([newPair], 0).seal('sid', newSessionId(), 60_000),
    };
    for (const [reason, value] of Object.entries(cookies)) {
      expect((await store.get(requestWith({ sid: value }), 'sid')).error).toBe(reason);
    }
    expect((await store.get(requestWith({ other: cookie }), 'other')).error).toBe('wrong-name');
    const req = requestWith({ sid: cookie });
    const signingIn = await store.get(req, 'sid');
    signingIn.regenerate();
    await store.save(req, new Headers(), signingIn);
    expect((await store.get(requestWith({ sid: cookie }), 'sid')).error).toBe('replaced');
    const rejected = await otel.points('mongostore.cookie.rejected');
    const byReason = Object.fromEntries(rejected.map((point) => [String(point.attributes['mongostore.cookie.reject_reason']), point.value]));
    // ('expired' needs a seal a minute past its end: iron allows 60 s of clock skew.)
    expect(byReason).toEqual({ malformed: 1, tampered: 1, 'unknown-key': 1, 'not-found': 1, 'wrong-name': 1, replaced: 1 });
    expect(rejected.every((point) => point.attributes['db.system.name'] === system)).toBe(true);
  });

  it('counts accepted cookies by the key pair that sealed them: how an operator sees an old pair fall out of use', async () => {
    const place = uniquePlace();
    const before = await makeStore({}, [oldPair], place);
    const { cookie } = await signIn(before.store, 'alice');
    const { store, otel } = await makeStore({}, [newPair, oldPair], place);
    const [currentId, oldId] = store.keyPairIds;
    expect(store.keyPairIds).toHaveLength(2);
    expect(before.store.keyPairIds).toEqual([oldId]);
    expect(cookie.split('*')[1]).toBe(oldId); // the id a token names its pair by

    // The old pair's cookie is accepted under its id, and re-sealed under the current pair by the save.
    const req = requestWith({ sid: cookie });
    const session = await store.get(req, 'sid');
    const headers = new Headers();
    expect(await store.save(req, headers, session)).toBe('updated');
    const resealed = onlyCookie(headers).value;
    expect(resealed.split('*')[1]).toBe(currentId);
    await store.get(requestWith({ sid: resealed }), 'sid');
    await store.get(requestWith({ sid: resealed }), 'sid'); // a cached unseal counts too
    const byKey = Object.fromEntries(
      (await otel.points('mongostore.cookie.accepted')).map((point) => [
        `${String(point.attributes['mongostore.key_pair.id'])} current=${String(point.attributes['mongostore.key_pair.current'])}`,
        point.value,
      ]),
    );
    expect(byKey).toEqual({ [`${oldId} current=false`]: 1, [`${currentId} current=true`]: 2 });
  });

  it('one client span and one duration point per database call, named and attributed by the conventions', async () => {
    const { store, otel } = await makeStore();
    const req = requestWith();
    const session = await store.get(req, 'sid');
    session.values.visits = 1;
    const headers = new Headers();
    await store.save(req, headers, session);
    await store.get(requestWith({ sid: onlyCookie(headers).value }), 'sid');
    await store.get(requestWith({ sid: 'not-a-token' }), 'sid'); // no database call, no span

    const spans = otel.spans.getFinishedSpans();
    const collection = String(spans[0]?.attributes['db.collection.name']);
    expect(spans.map((span) => span.name)).toEqual([`insert ${collection}`, `find ${collection}`]);
    for (const span of spans) {
      expect(span.kind).toBe(SpanKind.CLIENT);
      expect(span.attributes).toMatchObject({ 'db.system.name': system, 'db.operation.name': span.name.split(' ')[0] });
      expect(span.status.code).toBe(SpanStatusCode.UNSET);
    }
    if (system === 'mongodb') expect(spans[0]?.attributes['db.namespace']).toEqual(expect.any(String));
    // Not counted: init()'s ensureSchema, and the gauge's count that collecting runs.
    const durations = (await otel.points('db.client.operation.duration')).filter(
      (point) => !['ensureSchema', 'countLiveByProvider'].includes(String(point.attributes['db.operation.name'])),
    );
    expect(durations.map((point) => [point.attributes['db.operation.name'], point.value]).sort()).toEqual([['find', 1], ['insert', 1]]);
    expect(durations.every((point) => point.attributes['error.type'] === undefined)).toBe(true);
  });

  it('records failed calls: error.type on the span and the duration, the exception on the span', async () => {
    const otel = pipeline();
    const dead = backend.unreachable();
    const store = dead.sessions({ keyPairs: [newPair], telemetry: { meterProvider: otel.meterProvider, tracerProvider: otel.tracerProvider } });
    const req = requestWith();
    const session = await store.get(req, 'sid');
    session.values.visits = 1;
    await expect(store.save(req, new Headers(), session)).rejects.toThrow(SessionStoreError);
    await dead.close();
    const failed = otel.spans.getFinishedSpans().filter((span) => span.status.code === SpanStatusCode.ERROR);
    expect(failed.length).toBeGreaterThan(0);
    for (const span of failed) {
      expect(span.attributes['error.type']).toEqual(expect.any(String));
      expect(span.events.some((event) => event.name === 'exception')).toBe(true);
    }
    const durations = await otel.points('db.client.operation.duration');
    expect(durations.some((point) => typeof point.attributes['error.type'] === 'string' && point.value > 0)).toBe(true);
  });

  it('serves live sessions by provider as a gauge, with at most one counting command per interval', async () => {
    const otel = pipeline();
    const { store, raw } = await backend.sessionStore<Values>({
      keyPairs: [newPair],
      telemetry: { meterProvider: otel.meterProvider, activeSessionsInterval: 200 },
    });
    await signIn(store, 'alice');
    await signIn(store, 'bob');
    await signIn(store, 'carol', 'github');
    const anonymous = await store.get(requestWith(), 'sid');
    anonymous.values.visits = 1;
    await store.save(requestWith(), new Headers(), anonymous);
    const expired = await signIn(store, 'erin');
    await raw.setExpiry(expired.session.id, new Date(Date.now() - 1000));

    let gauge: { value: number; attributes: Attributes }[] = [];
    const commands = await backend.during(async () => {
      gauge = await otel.points('mongostore.session.active');
      await otel.points('mongostore.session.active');
      await otel.points('mongostore.session.active');
    });
    expect(commands).toEqual(['read']);
    const byProvider = Object.fromEntries(gauge.map((point) => [String(point.attributes['mongostore.session.provider'] ?? '(none)'), point.value]));
    expect(byProvider).toEqual({ password: 2, github: 1, '(none)': 1 });
    expect(gauge.every((point) => point.attributes['db.system.name'] === system)).toBe(true);

    await new Promise((resolve) => setTimeout(resolve, 250));
    expect(await backend.during(() => otel.points('mongostore.session.active'))).toEqual(['read']);
    expect(await store.getActiveSessionsCount()).toBe(4);
  });

  it('observes 0 for a provider whose sessions all ended, not its last count', async () => {
    const otel = pipeline();
    const { store } = await backend.sessionStore<Values>({ keyPairs: [newPair], telemetry: { meterProvider: otel.meterProvider, activeSessionsInterval: 50 } });
    await signIn(store, 'alice');
    await signIn(store, 'carol', 'github');
    const byProvider = async () =>
      Object.fromEntries((await otel.points('mongostore.session.active')).map((point) => [String(point.attributes['mongostore.session.provider']), point.value]));
    expect(await byProvider()).toEqual({ password: 1, github: 1, undefined: 0 });
    await store.expireSessions('carol', 'github');
    await new Promise((resolve) => setTimeout(resolve, 80));
    expect(await byProvider()).toEqual({ password: 1, github: 0, undefined: 0 });
  });

  it('a cleanup batch a request\'s write started is traced on its own, not as a child of the request', async () => {
    const { store, otel } = await makeStore({ cleanupInterval: undefined });
    // An app's request span, active while the handler saves (a context
    // manager as an SDK registers one).
    const manager = new AsyncLocalContextManager();
    context.setGlobalContextManager(manager);
    try {
      const tracer = otel.tracerProvider.getTracer('app');
      await tracer.startActiveSpan('GET /cart', async (span) => {
        const req = requestWith();
        const session = await store.get(req, 'sid');
        session.values.visits = 1;
        await store.save(req, new Headers(), session);
        span.end();
      });
      await vi.waitFor(() => expect(otel.spans.getFinishedSpans().some((span) => span.name.startsWith('deleteExpired'))).toBe(true));
    } finally {
      context.disable();
    }
    const spans = otel.spans.getFinishedSpans();
    const parentOf = (span: (typeof spans)[number]) =>
      (span as unknown as { parentSpanContext?: { spanId: string } }).parentSpanContext?.spanId ??
      (span as unknown as { parentSpanId?: string }).parentSpanId;
    const request = spans.find((span) => span.name === 'GET /cart');
    const insert = spans.find((span) => span.name.startsWith('insert'));
    const cleanup = spans.find((span) => span.name.startsWith('deleteExpired'));
    expect(parentOf(insert as (typeof spans)[number])).toBe(request?.spanContext().spanId); // the request's own call
    expect(parentOf(cleanup as (typeof spans)[number])).toBeUndefined();
  });

  it('observes 0 on an idle store, not nothing', async () => {
    const otel = pipeline();
    await backend.sessionStore<Values>({ keyPairs: [newPair], telemetry: { meterProvider: otel.meterProvider } });
    const points = await otel.points('mongostore.session.active');
    expect(points.map((point) => point.value)).toEqual([0]);
    expect(points[0]?.attributes['mongostore.session.provider']).toBeUndefined();
  });

  it('a failed count is observed as nothing, not a stale value, and is not retried before the interval is over', async () => {
    const otel = pipeline();
    const dead = backend.unreachable();
    dead.sessions({
      keyPairs: [newPair],
      timeoutMs: 500,
      telemetry: { meterProvider: otel.meterProvider, tracerProvider: otel.tracerProvider, activeSessionsInterval: 60_000 },
    });
    for (let i = 0; i < 4; i++) expect(await otel.points('mongostore.session.active')).toEqual([]);
    const counts = otel.spans.getFinishedSpans().filter((span) => span.name.startsWith('countLiveByProvider'));
    expect(counts).toHaveLength(1);
    expect(counts[0]?.status.code).toBe(SpanStatusCode.ERROR);
    await dead.close();
  });

  it('the token store reports its calls too: a span and a duration point each', async () => {
    const otel = pipeline();
    const { store } = await backend.tokenStore({ telemetry: { meterProvider: otel.meterProvider, tracerProvider: otel.tracerProvider } });
    otel.spans.reset();
    await store.commit('token-1', new Uint8Array([1]), new Date(Date.now() + 60_000));
    expect(await store.find('token-1')).toEqual(new Uint8Array([1]));
    expect(otel.spans.getFinishedSpans().map((span) => span.name.split(' ')[0])).toEqual(['upsert', 'find']);
    expect(await otel.total('db.client.operation.duration', { 'db.operation.name': 'find', 'db.system.name': system })).toBe(1);
    await store.stopCleanup();
  });

  it('refuses bad telemetry options before anything is built', async () => {
    const bad: unknown[] = [
      { meterProvider: {} },
      { tracerProvider: 42 },
      { activeSessionsInterval: 0 },
      { activeSessionsInterval: Number.NaN },
      { meterprovider: {} },
      'on',
    ];
    for (const telemetry of bad) {
      await expect(backend.sessionStore({ keyPairs: [newPair], telemetry: telemetry as never })).rejects.toThrow(SessionOptionsError);
    }
  });
});

describe('the global providers of @opentelemetry/api', () => {
  const database = { system: 'mongodb', collection: 'sessions' };

  it('without an SDK nothing records; a TracerProvider registered after the store was built gets the spans', async () => {
    const telemetry = Telemetry.create(undefined, database);
    expect(await telemetry.databaseCall('find', () => Promise.resolve(1))).toBe(1); // no span, no point: nothing to record to
    const spans = new InMemorySpanExporter();
    // This file imports the API's ES module build, the store requires its CommonJS build: the global is shared.
    trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] }));
    try {
      await telemetry.databaseCall('find', () => Promise.resolve(2));
      expect(spans.getFinishedSpans().map((span) => span.name)).toEqual(['find sessions']);
    } finally {
      trace.disable();
    }
  });

  it('a MeterProvider registered before the store is built gets the metrics', async () => {
    const otel = pipeline();
    metrics.setGlobalMeterProvider(otel.meterProvider);
    try {
      const telemetry = Telemetry.create(undefined, database);
      telemetry.sessionCreated();
      expect(await otel.total('mongostore.session.created', { 'db.system.name': 'mongodb' })).toBe(1);
    } finally {
      metrics.disable();
    }
  });
});

describe('a store nobody holds any more', () => {
  it('is not kept alive by the gauge: its callback stops counting once the store is collected', async () => {
    const gc = (globalThis as { gc?: () => void }).gc;
    expect(gc).toBeTypeOf('function'); // vitest.config.ts runs the tests with --expose-gc
    const otel = pipeline();
    const backend = new CountingBackend();
    (() => {
      new SessionStore(backend, { keyPairs: [newPair], telemetry: { meterProvider: otel.meterProvider, activeSessionsInterval: 1 } });
    })();
    await otel.points('mongostore.session.active');
    expect(backend.counts).toBe(1);
    for (let i = 0; i < 5 && backend.counts < 100; i++) {
      gc?.();
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    await otel.points('mongostore.session.active');
    await otel.points('mongostore.session.active');
    expect(backend.counts).toBe(1);
  });
});

describe('telemetry off', () => {
  it('is off with `telemetry: false`, even with the API installed and providers registered', () => {
    expect(Telemetry.create(false, { system: 'mongodb', collection: 'x' })).toBe(Telemetry.off);
    // The API is a dev dependency here: a tracer may be registered at any time.
    expect(Telemetry.create({}, { system: 'mongodb', collection: 'x' }).enabled).toBe(true);
  });

  it('leaves the backend unwrapped: nothing is spent per call', () => {
    const backend = { database: { system: 'other', collection: 'x' } } as never;
    expect(instrumentBackend(backend, Telemetry.off)).toBe(backend);
    expect(Telemetry.off.enabled).toBe(false);
  });
});
