/**
 * A session store's configuration: what each option means, and the one
 * place that checks it and fills in the defaults.
 */
import { checkBatchSize, checkErrorHandler, checkMillisecondsOrZero, defaultCleanupBatchSize } from './cleanup.ts';
import type { SessionLimit } from './backend.ts';
import { defaultTimeoutMs } from './operations.ts';
import type { DeviceDetailsInput } from './devices.ts';
import { SessionOptionsError } from './errors.ts';
import type { KeyPair } from './keys.ts';
import { checkKnownKeys, describeValue, maxMaxAge, resolveSessionOptions, type SessionOptions } from './options.ts';
import type { TelemetryOptions } from './telemetry.ts';

/** Configuration of a {@link SessionStore}, whatever the backend. Only `keyPairs` is required. */
export interface SessionStoreConfig {
  /**
   * Secret key pairs: the first seals new cookies, every pair unseals. To
   * rotate, put a new pair in front; drop the old one once the longest
   * session lifetime has passed.
   */
  keyPairs: readonly KeyPair[];
  /** Defaults for every session's options; see {@link SessionOptions}. */
  options?: Partial<SessionOptions> | undefined;
  /**
   * Seconds that must pass before an unchanged session's expiry is pushed
   * forward (a write and a new cookie). Sessions roll: each refresh sets the
   * expiry to now + maxAge. The effective threshold is at most half of
   * maxAge, so a short-lived session is still refreshed in time. Default 3600.
   */
  touchAfter?: number | undefined;
  /**
   * Seconds after a session was created (first saved) at which it ends,
   * however active it is (OWASP's absolute timeout). `regenerate()` keeps
   * the clock running; a session started afresh (`destroy()`, then `new`)
   * starts a new one. Unset: no limit. At most 400 days.
   */
  absoluteMaxAge?: number | undefined;
  /**
   * Store a new session whose values are still empty (a document and a
   * cookie for every visitor). Default false, as express-session users
   * configure it: a session is stored once it holds something (a value or a
   * flash). Applies to `save`, `saveAll` and the Hono middleware alike.
   */
  saveUninitialized?: boolean | undefined;
  /**
   * Longest time, in milliseconds, that `get`, `new` and `save` wait for one
   * database command before rejecting with SessionStoreError (cause: a
   * TimeoutError); each batch of a `startAutoClean` tick waits as long, then
   * reports that error to `onError` and the loop goes on (the live-session
   * gauge's count too). The command is abandoned, not cancelled: a write may
   * still complete on the server. Default 10,000; 0 waits as long as the
   * driver does (30 s of server selection for MongoDB's default client). At
   * most 2,147,483,647 (the longest timer).
   */
  timeoutMs?: number | undefined;
  /**
   * Most expired records one `startAutoClean` statement deletes: a tick
   * deletes batch after batch (each within `timeoutMs`) until one comes back
   * short, so no tick runs one unbounded delete. Default 1,000.
   */
  cleanupBatchSize?: number | undefined;
  /**
   * Milliseconds between the batches of expired sessions a store deletes
   * on its own: after one of its writes, when this long has passed since
   * its last batch (the first at its first write), it deletes at most
   * `cleanupBatchSize` expired sessions in the background (a failure goes
   * to `onError`). No timer: an idle store does nothing and holds nothing
   * open. Default 60,000; 0 turns it off (e.g. with `startAutoClean`, or a
   * TTL index on MongoDB). At most 2,147,483,647.
   */
  cleanupInterval?: number | undefined;
  /** Largest encoded values (with pending flashes) `save` accepts, in bytes. Default 1 MiB. */
  maxValuesBytes?: number | undefined;
  /** Verified cookie values remembered to skip unsealing. Default 10,000; 0 disables. */
  unsealCacheSize?: number | undefined;
  /**
   * OpenTelemetry metrics and traces (docs/metrics.md). By
   * default the global providers of `@opentelemetry/api` when it is
   * installed; nothing is recorded without it; `false` turns it off.
   */
  telemetry?: TelemetryOptions | false | undefined;
  /**
   * Receives what fails in the background: each failed cleanup batch (a
   * `startAutoClean` tick, or one a write started, see `cleanupInterval`),
   * and a `maxSessionsPerUser` check that failed after its sign-in's write
   * (the sign-in stands; the owner's next sign-in checks again). Default:
   * `console.error`. What it throws, or the promise it returns rejects
   * with, is ignored: the loop goes on.
   */
  onError?: ((error: unknown) => void) | undefined;
  /**
   * Records more about a session's device when it is created (or
   * regenerated), for `listSessions`: e.g. a client address from Hono's
   * `getConnInfo`. A flat object of strings, finite numbers and booleans
   * (null and undefined fields are left out, strings cut to 256 characters,
   * fields past 1024 bytes of JSON dropped); any other shape makes `save`
   * reject with SessionValuesError before writing. Stored as one text field.
   */
  describeDevice?: ((request: Request) => DeviceDetailsInput | undefined) | undefined;
  /**
   * Most live sessions one owner (`user` + `provider`) may have: a whole
   * number from 1. Checked by each save that gives a session its owner (a
   * sign-in), never by other saves; what happens past it is
   * `onSessionLimit`. Unset: no limit. See docs/devices.md.
   */
  maxSessionsPerUser?: number | undefined;
  /**
   * What a sign-in past `maxSessionsPerUser` does. `'evict-oldest'`
   * (default): it is stored, and the owner's least recently used sessions
   * (oldest last write) end at once, before `save` resolves. `'refuse'`:
   * `save` writes nothing and resolves `'limited'` ("sign out on another
   * device first"). Only with `maxSessionsPerUser`.
   */
  onSessionLimit?: SessionLimit['policy'] | undefined;
}

const sessionStoreConfigKeys = [
  'keyPairs',
  'options',
  'touchAfter',
  'absoluteMaxAge',
  'saveUninitialized',
  'timeoutMs',
  'telemetry',
  'maxValuesBytes',
  'cleanupBatchSize',
  'cleanupInterval',
  'unsealCacheSize',
  'onError',
  'describeDevice',
  'maxSessionsPerUser',
  'onSessionLimit',
] as const satisfies readonly (keyof SessionStoreConfig)[];

const defaultTouchAfterSeconds = 3600;
const defaultMaxValuesBytes = 1024 * 1024;
const defaultUnsealCacheSize = 10_000;
const defaultCleanupIntervalMs = 60_000;

/** A configuration checked and completed with its defaults. */
export interface StoreSettings {
  options: Readonly<SessionOptions>;
  touchAfterMs: number;
  absoluteMaxAgeMs: number | undefined;
  saveUninitialized: boolean;
  timeoutMs: number;
  maxValuesBytes: number;
  cleanupBatchSize: number;
  cleanupIntervalMs: number;
  unsealCacheSize: number;
  onError: (error: unknown) => void;
  describeDevice: ((request: Request) => DeviceDetailsInput | undefined) | undefined;
  sessionLimit: SessionLimit | undefined;
}

/**
 * Checks a store configuration and fills in the defaults (the key pairs are
 * checked by the codec).
 * @param backendKeys configuration keys the backend's store class adds (e.g. `collection`).
 * @throws SessionOptionsError for an unknown key or an invalid value.
 */
export function resolveStoreConfig(config: SessionStoreConfig, backendKeys: readonly string[]): StoreSettings {
  checkKnownKeys(config, [...sessionStoreConfigKeys, ...backendKeys], 'store configuration');
  if (config.describeDevice !== undefined && typeof config.describeDevice !== 'function') {
    throw new SessionOptionsError('describeDevice must be a function');
  }
  return {
    options: Object.freeze(resolveSessionOptions(config.options)),
    touchAfterMs: nonNegative(config.touchAfter ?? defaultTouchAfterSeconds, 'touchAfter') * 1000,
    absoluteMaxAgeMs:
      config.absoluteMaxAge === undefined ? undefined : positiveAtMost(config.absoluteMaxAge, maxMaxAge, 'absoluteMaxAge') * 1000,
    saveUninitialized: flag(config.saveUninitialized ?? false, 'saveUninitialized'),
    timeoutMs: checkMillisecondsOrZero(config.timeoutMs ?? defaultTimeoutMs, 'timeoutMs'),
    maxValuesBytes: nonNegative(config.maxValuesBytes ?? defaultMaxValuesBytes, 'maxValuesBytes'),
    cleanupBatchSize: checkBatchSize(config.cleanupBatchSize ?? defaultCleanupBatchSize, 'cleanupBatchSize'),
    cleanupIntervalMs: checkMillisecondsOrZero(config.cleanupInterval ?? defaultCleanupIntervalMs, 'cleanupInterval'),
    unsealCacheSize: config.unsealCacheSize ?? defaultUnsealCacheSize,
    // The error names what failed: `deleteExpired failed: ...`, `limitOwnedBy failed: ...`.
    onError: checkErrorHandler(config.onError) ?? ((error) => console.error('mongostore: background work failed:', error)),
    describeDevice: config.describeDevice,
    sessionLimit: sessionLimitOf(config.maxSessionsPerUser, config.onSessionLimit),
  };
}

/** A value a caller gave, for an error message: a number or string as given, anything else by its kind; never throws. */
function shown(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (typeof value === 'bigint') return `${value}n`;
  return describeValue(value);
}

const limitPolicies: readonly SessionLimit['policy'][] = ['evict-oldest', 'refuse'];

function sessionLimitOf(max: unknown, policy: unknown): SessionLimit | undefined {
  if (policy !== undefined && !limitPolicies.includes(policy as SessionLimit['policy'])) {
    throw new SessionOptionsError(`onSessionLimit must be 'evict-oldest' or 'refuse', not ${shown(policy)}`);
  }
  if (max === undefined) {
    if (policy !== undefined) throw new SessionOptionsError('onSessionLimit needs maxSessionsPerUser');
    return undefined;
  }
  if (typeof max !== 'number' || !Number.isSafeInteger(max) || max < 1) {
    throw new SessionOptionsError(`maxSessionsPerUser must be a whole number from 1 to ${Number.MAX_SAFE_INTEGER}, not ${shown(max)}`);
  }
  return { max, policy: (policy as SessionLimit['policy'] | undefined) ?? 'evict-oldest' };
}

function flag(value: unknown, label: string): boolean {
  if (typeof value !== 'boolean') throw new SessionOptionsError(`${label} must be true or false`);
  return value;
}

function positiveAtMost(value: number, max: number, label: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || value > max) {
    throw new SessionOptionsError(`${label} must be a number of seconds > 0 and at most ${max}`);
  }
  return value;
}

function nonNegative(value: number, label: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new SessionOptionsError(`${label} must be a finite number >= 0`);
  }
  return value;
}
