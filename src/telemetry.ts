/**
 * OpenTelemetry metrics and traces of a store, through `@opentelemetry/api`
 * (an optional peer). Without the API package and without providers passed
 * in, nothing is created and every hook returns at once; with the API but no
 * SDK registered, the API's own no-op instruments take the calls.
 *
 * Names follow OpenTelemetry's conventions: the database client's semantic
 * conventions for spans and `db.client.operation.duration`, and a
 * `mongostore.` namespace for what is the store's own. docs/metrics.md lists
 * every instrument.
 */
import { createRequire } from 'node:module';
import type * as Otel from '@opentelemetry/api';
import type { SessionLoadError } from './session.ts';
import { version } from './version.ts';
import { SessionOptionsError } from './errors.ts';
import { checkKnownKeys } from './options.ts';
import { type SessionBackend } from './backend.ts';
import { withTimeout } from './operations.ts';

/** Any `@opentelemetry/api` 1.x MeterProvider (an SDK's, or the global one). */
export interface MeterProviderLike {
  getMeter(name: string, version?: string): unknown;
}

/** Any `@opentelemetry/api` 1.x TracerProvider (an SDK's, or the global one). */
export interface TracerProviderLike {
  getTracer(name: string, version?: string): unknown;
}

/** The store option `telemetry`. */
export interface TelemetryOptions {
  /**
   * Where metrics go. Default: the global MeterProvider of
   * `@opentelemetry/api` as it is when the store is built (so register the
   * SDK first), or none when the package is not installed.
   */
  meterProvider?: MeterProviderLike | undefined;
  /**
   * Where spans go. Default: the global TracerProvider of
   * `@opentelemetry/api` (one registered later is used too), or none when
   * the package is not installed.
   */
  tracerProvider?: TracerProviderLike | undefined;
  /**
   * Milliseconds a count of live sessions serves the gauge
   * `mongostore.session.active`: however often it is collected, at most one
   * counting command runs per interval. Default 30,000.
   */
  activeSessionsInterval?: number | undefined;
}

/** What a store's database is, in the semantic conventions' terms. */
export interface DatabaseDescription {
  /** `db.system.name`: `'mongodb'`, `'postgresql'`, or another well-known name. */
  readonly system: string;
  /** `db.namespace`: the database name, when known. */
  readonly namespace?: string | undefined;
  /** `db.collection.name`: the collection or table. */
  readonly collection: string;
}

/** Why sessions were ended from outside their requests. */
export type RevokeReason = 'forced_logout' | 'device' | 'other_devices' | 'session_limit';

type Attributes = Record<string, string | boolean>;

const instrumentationName = 'mongostore';
const instrumentationVersion = version;
const defaultActiveSessionsInterval = 30_000;
/** The semantic conventions' advice for db.client.operation.duration, in seconds. */
const durationBuckets = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10];
const spanKindClient = 2; // SpanKind.CLIENT
const spanStatusError = 2; // SpanStatusCode.ERROR

let api: typeof Otel | null | undefined;
/** `@opentelemetry/api`, loaded once on first need; null when it is not installed. */
function openTelemetryApi(): typeof Otel | null {
  if (api === undefined) {
    try {
      // Synchronous (a store is built synchronously) and without top-level
      // await, which would keep `require(esm)` from loading this package.
      api = createRequire(import.meta.url)('@opentelemetry/api') as typeof Otel;
    } catch {
      api = null;
    }
  }
  return api;
}

/**
 * A store's instruments. `Telemetry.off` records nothing; a store built with
 * the API installed or providers passed gets live instruments.
 */
export class Telemetry {
  /** Records nothing, creates nothing. */
  static readonly off = new Telemetry(undefined, undefined, { system: 'other', collection: '' }, 0);

  readonly #database: Attributes;
  /** The tracer, or undefined while there is none to record to (no SDK registered yet). */
  readonly #tracer: (() => Otel.Tracer | undefined) | undefined;
  readonly #meter: Otel.Meter | undefined;
  /** Attributes of each operation's points and spans, built once. */
  readonly #operations = new Map<string, Attributes>();
  readonly #counters: {
    created: Otel.Counter;
    regenerated: Otel.Counter;
    ended: Otel.Counter;
    revoked: Otel.Counter;
    limited: Otel.Counter;
    rejected: Otel.Counter;
    accepted: Otel.Counter;
    duration: Otel.Histogram;
  } | undefined;
  readonly #activeSessionsInterval: number;
  #activeGauge: Otel.ObservableGauge | undefined;

  /**
   * `false`: off, whatever is installed.
   * @throws SessionOptionsError for an unknown option, a provider without
   * `getMeter`/`getTracer`, or an interval that is not a positive number.
   */
  static create(options: TelemetryOptions | false | undefined, database: DatabaseDescription): Telemetry {
    if (options === false) return Telemetry.off;
    const given: unknown = options ?? {};
    if (typeof given !== 'object' || given === null) throw new SessionOptionsError('telemetry must be an object');
    checkKnownKeys(given, ['meterProvider', 'tracerProvider', 'activeSessionsInterval'], 'telemetry');
    const { meterProvider, tracerProvider, activeSessionsInterval } = given as TelemetryOptions;
    if (meterProvider !== undefined && typeof meterProvider?.getMeter !== 'function') {
      throw new SessionOptionsError('telemetry.meterProvider must have a getMeter method');
    }
    if (tracerProvider !== undefined && typeof tracerProvider?.getTracer !== 'function') {
      throw new SessionOptionsError('telemetry.tracerProvider must have a getTracer method');
    }
    const interval = activeSessionsInterval ?? defaultActiveSessionsInterval;
    if (typeof interval !== 'number' || !Number.isFinite(interval) || interval <= 0) {
      throw new SessionOptionsError('telemetry.activeSessionsInterval must be a positive number of milliseconds');
    }
    const otel = meterProvider !== undefined && tracerProvider !== undefined ? null : openTelemetryApi();
    const meter = (meterProvider ?? otel?.metrics.getMeterProvider())?.getMeter(instrumentationName, instrumentationVersion) as
      | Otel.Meter
      | undefined;
    // The API's no-op meter (no SDK registered) records nothing: skip it, and its cost, entirely.
    const recordingMeter = meter === undefined || meter === otel?.createNoopMeter() ? undefined : meter;
    const tracer = tracerProvider !== undefined ? fixedTracer(tracerProvider) : otel ? globalTracer(otel) : undefined;
    if (recordingMeter === undefined && tracer === undefined) return Telemetry.off;
    return new Telemetry(recordingMeter, tracer, database, interval);
  }

  private constructor(
    meter: Otel.Meter | undefined,
    tracer: (() => Otel.Tracer | undefined) | undefined,
    database: DatabaseDescription,
    interval: number,
  ) {
    this.#database = {
      'db.system.name': database.system,
      'db.collection.name': database.collection,
      ...(database.namespace ? { 'db.namespace': database.namespace } : {}),
    };
    this.#tracer = tracer;
    this.#meter = meter;
    this.#activeSessionsInterval = interval;
    if (meter === undefined) return;
    const sessions = (name: string, description: string) => meter.createCounter(name, { description, unit: '{session}' });
    const cookies = (name: string, description: string) => meter.createCounter(name, { description, unit: '{cookie}' });
    this.#counters = {
      created: sessions('mongostore.session.created', 'Sessions stored for the first time.'),
      regenerated: sessions('mongostore.session.regenerated', 'Sessions moved to a new id (regenerate(), a sign-in).'),
      ended: sessions('mongostore.session.ended', 'Stored sessions ended by their own request: destroy() (a maxAge of 0) or a maxAge <= 0.'),
      revoked: sessions('mongostore.session.revoked', 'Sessions ended from outside their requests: forced logout, device revocation, the session limit.'),
      limited: sessions('mongostore.session.limited', "Sign-ins refused by the session limit (onSessionLimit: 'refuse')."),
      rejected: cookies('mongostore.cookie.rejected', 'Session cookies that gave a fresh session, by reason.'),
      accepted: cookies('mongostore.cookie.accepted', 'Session cookies that opened a live session, by the key pair that sealed them.'),
      duration: meter.createHistogram('db.client.operation.duration', {
        description: 'Duration of the store\'s database calls.',
        unit: 's',
        advice: { explicitBucketBoundaries: durationBuckets },
      }),
    };
  }

  /** False for {@link Telemetry.off}: callers may skip work only telemetry needs. */
  get enabled(): boolean {
    return this.#meter !== undefined || this.#tracer !== undefined;
  }

  sessionCreated(): void {
    this.#counters?.created.add(1, this.#database);
  }

  sessionRegenerated(): void {
    this.#counters?.regenerated.add(1, this.#database);
  }

  sessionEnded(): void {
    this.#counters?.ended.add(1, this.#database);
  }

  sessionsRevoked(reason: RevokeReason, count: number): void {
    if (count > 0) this.#counters?.revoked.add(count, { ...this.#database, 'mongostore.session.revoke_reason': reason });
  }

  signInRefused(): void {
    this.#counters?.limited.add(1, this.#database);
  }

  cookieRejected(reason: SessionLoadError): void {
    this.#counters?.rejected.add(1, { ...this.#database, 'mongostore.cookie.reject_reason': reason });
  }

  cookieAccepted(keyPairId: string, current: boolean): void {
    this.#counters?.accepted.add(1, { ...this.#database, 'mongostore.key_pair.id': keyPairId, 'mongostore.key_pair.current': current });
  }

  /**
   * Serves the live-session gauge from `backend`'s count, each within
   * `timeoutMs`. The backend is held weakly, so a store nobody uses any more
   * is not kept alive by the meter (its gauge then stops).
   */
  observeLiveSessionsOf(backend: Pick<SessionBackend, 'countLiveByProvider'>, timeoutMs: number): void {
    const held = new WeakRef(backend);
    this.observeActiveSessions(() => {
      const live = held.deref();
      return live && withTimeout('countLiveByProvider', timeoutMs, (signal) => live.countLiveByProvider(signal));
    });
  }

  /**
   * Runs `call` outside the caller's trace: work a request only triggers
   * (a cleanup batch after its write) gets spans of its own, not children
   * of the request's span, which it may outlive.
   */
  detached<T>(call: () => T): T {
    if (this.#tracer?.() === undefined) return call();
    const otel = openTelemetryApi();
    return otel ? otel.context.with(otel.ROOT_CONTEXT, call) : call();
  }

  /**
   * Runs one call to the database inside a client span named
   * `{operation} {collection}` and records its duration; a failure is
   * recorded on both (`error.type`) and rethrown.
   */
  async databaseCall<T>(operation: string, call: () => Promise<T>): Promise<T> {
    const tracer = this.#tracer?.();
    if (tracer === undefined && this.#counters === undefined) return call(); // nothing records (yet)
    let attributes = this.#operations.get(operation);
    if (attributes === undefined) {
      attributes = { ...this.#database, 'db.operation.name': operation };
      this.#operations.set(operation, attributes);
    }
    const span = tracer?.startSpan(`${operation} ${this.#database['db.collection.name'] as string}`, {
      kind: spanKindClient,
      attributes,
    });
    const started = performance.now();
    let errorType: string | undefined;
    try {
      const otel = span === undefined ? null : openTelemetryApi();
      return await (otel && span ? otel.context.with(otel.trace.setSpan(otel.context.active(), span), call) : call());
    } catch (error) {
      errorType = errorTypeOf(error);
      span?.recordException(error instanceof Error ? error : String(error));
      span?.setAttribute('error.type', errorType);
      span?.setStatus({ code: spanStatusError, message: error instanceof Error ? error.message : String(error) });
      throw error;
    } finally {
      this.#counters?.duration.record((performance.now() - started) / 1000, errorType ? { ...attributes, 'error.type': errorType } : attributes);
      span?.end();
    }
  }

  /**
   * Serves the gauge `mongostore.session.active` (live sessions by
   * provider) from `count`, called at most once per interval however often
   * the gauge is collected (a failed count too, so a failing database is not
   * asked on every scrape). A provider counted before and not now is
   * observed as 0, not left at its last value. After a failed count nothing
   * is observed until the next one succeeds: no stale value. `count` gives
   * undefined once its store is gone (garbage-collected): the gauge then
   * stops asking it.
   */
  observeActiveSessions(count: () => Promise<ReadonlyMap<string | null, number>> | undefined): void {
    const meter = this.#meter;
    if (meter === undefined || this.#activeGauge !== undefined) return;
    const gauge = meter.createObservableGauge('mongostore.session.active', {
      description: 'Live sessions, by provider (absent: anonymous sessions).',
      unit: '{session}',
    });
    this.#activeGauge = gauge;
    let last: { at: number; counts: ReadonlyMap<string | null, number> | undefined } | undefined;
    let counting: Promise<boolean> | undefined;
    // The anonymous series from the start, so an idle app reports 0, not nothing.
    const seen = new Map<string | null, Attributes>([[null, this.#database]]);
    /** Counts once (parallel collections share it); false when the store is gone. */
    const refresh = () =>
      (counting ??= (async () => {
        const pending = count();
        if (pending === undefined) return false;
        try {
          last = { at: performance.now(), counts: await pending };
        } catch {
          last = { at: performance.now(), counts: undefined };
        } finally {
          counting = undefined;
        }
        return true;
      })());
    const callback: Otel.ObservableCallback = async (result) => {
      if (last === undefined || performance.now() - last.at >= this.#activeSessionsInterval) {
        if (!(await refresh())) {
          gauge.removeCallback(callback);
          return;
        }
      }
      const counts = last?.counts;
      if (counts === undefined) return;
      for (const provider of counts.keys()) {
        if (!seen.has(provider)) {
          seen.set(provider, provider === null ? this.#database : { ...this.#database, 'mongostore.session.provider': provider });
        }
      }
      for (const [provider, attributes] of seen) result.observe(counts.get(provider) ?? 0, attributes);
    };
    gauge.addCallback(callback);
  }
}

function fixedTracer(provider: TracerProviderLike): () => Otel.Tracer {
  const tracer = provider.getTracer(instrumentationName, instrumentationVersion) as Otel.Tracer;
  return () => tracer;
}

/**
 * The global tracer, looked up until there is one. Until an SDK registers a
 * TracerProvider, the API's global is its own proxy with nothing behind it:
 * no span is started and nothing is spent. Once a provider is registered
 * (through this copy of the API or another: the global is shared), its
 * tracer is used from then on.
 */
function globalTracer(otel: typeof Otel): () => Otel.Tracer | undefined {
  let found: Otel.Tracer | undefined;
  return () => {
    if (found !== undefined) return found;
    const provider = otel.trace.getTracerProvider();
    found =
      provider instanceof otel.ProxyTracerProvider
        ? provider.getDelegateTracer(instrumentationName, instrumentationVersion)
        : provider.getTracer(instrumentationName, instrumentationVersion);
    return found;
  };
}

/** `error.type`: the cause's class name when the store wrapped a driver's error (SessionStoreError), else the error's. */
function errorTypeOf(error: unknown): string {
  if (!(error instanceof Error)) return '_OTHER';
  const cause: unknown = error.cause;
  if (error.name === 'SessionStoreError' && cause instanceof Error) return cause.name;
  return error.name;
}
