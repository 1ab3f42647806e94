/**
 * SessionStore: gorilla/sessions' Store on any SessionBackend. The cookie
 * carries only the sealed session id; the values live in the database.
 * MongoStore (MongoDB) and PostgresSessionStore (PostgreSQL) are this class
 * over their backends.
 */
import { parse as parseCookies } from 'cookie';
import { defaultTimeoutMs, type SessionBackend, withTimeout } from './backend.ts';
import { checkBatchSize, checkErrorHandler, checkMillisecondsOrZero, defaultCleanupBatchSize, expiredCleanup, isValidInterval, maxTimerMs, runEvery } from './cleanup.ts';
import { CookieCodec } from './codec.ts';
import { decodeContent } from './content.ts';
import type { CookieTarget } from './cookies.ts';
import { type DeviceDetailsInput, type DeviceInfo, isHandle, toDeviceInfo } from './devices.ts';
import { SessionOptionsError } from './errors.ts';
import type { KeyPair } from './keys.ts';
import { checkKnownKeys, maxMaxAge, resolveSessionOptions, type SessionOptions, validateCookie } from './options.ts';
import { checkOwnerArgument, ownerOf } from './owner.ts';
import { Registry, type RequestLike, toRequest } from './registry.ts';
import { type SaveOutcome, Session, type SessionLoadError, sessionState } from './session.ts';
import { end, SessionWriter } from './session-writer.ts';
import { Telemetry, type TelemetryOptions } from './telemetry.ts';
import { instrumentBackend } from './instrumented-backend.ts';
import type { SessionValues, Storable } from './values.ts';

export type { CookieTarget } from './cookies.ts';
export type { SaveOutcome } from './session.ts';

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
  /** Largest encoded values (with pending flashes) `save` accepts, in bytes. Default 1 MiB. */
  maxValuesBytes?: number | undefined;
  /** Verified cookie values remembered to skip unsealing. Default 10,000; 0 disables. */
  unsealCacheSize?: number | undefined;
  /**
   * OpenTelemetry metrics and traces (README, "Metrics and traces"). By
   * default the global providers of `@opentelemetry/api` when it is
   * installed; nothing is recorded without it; `false` turns it off.
   */
  telemetry?: TelemetryOptions | false | undefined;
  /**
   * Receives each failed `startAutoClean` tick. Default: `console.error`.
   * What it throws, or the promise it returns rejects with, is ignored: the
   * loop goes on.
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
  'unsealCacheSize',
  'onError',
  'describeDevice',
] as const satisfies readonly (keyof SessionStoreConfig)[];

const defaultTouchAfterSeconds = 3600;
const defaultMaxValuesBytes = 1024 * 1024;
const defaultUnsealCacheSize = 10_000;
const maxDeletePasses = 5;
/** Most sessions `listSessions` gives unless asked for fewer or more, and the most it gives. */
const defaultListLimit = 100;
const maxListLimit = 1000;
/** Load errors whose cookie leads nowhere and should be cleared (not `replaced`). */
const deadCookieErrors = new Set(['malformed', 'oversized', 'tampered', 'unknown-key', 'expired', 'wrong-name', 'not-found', 'unreadable']);

/**
 * Sessions stored server-side, with only a sealed id in the cookie.
 *
 * The backend's schema (indexes or tables) is created by
 * {@link SessionStore.init}, or lazily before the store's first database
 * command; the command counts documented on each method assume it exists.
 *
 * @typeParam V the shape of every session's values: a `type` or an
 * `interface` whose fields are storable (see {@link Storable}).
 */
export class SessionStore<V extends Storable<V> = SessionValues> {
  /** Defaults copied into every new Session's `options`. */
  readonly options: Readonly<SessionOptions>;
  readonly #sessions: SessionBackend;
  readonly #codec: CookieCodec;
  readonly #registry = new Registry<Promise<Session<V>>>();
  readonly #writer: SessionWriter<V>;
  readonly #absoluteMaxAgeMs: number | undefined;
  readonly #timeoutMs: number;
  readonly #cleanupTick: (stop: AbortSignal) => Promise<number>;
  readonly #onError: (error: unknown) => void;
  readonly #telemetry: Telemetry;
  #autoCleanRunning = false;

  /**
   * @param backendKeys configuration keys the backend's store class adds (e.g. `collection`).
   * @throws SessionOptionsError for no key pairs, a key that is short, weak
   * or of the wrong type, an unknown configuration key, or invalid options.
   */
  constructor(backend: SessionBackend, config: SessionStoreConfig, backendKeys: readonly string[] = []) {
    checkKnownKeys(config, [...sessionStoreConfigKeys, ...backendKeys], 'store configuration');
    this.#codec = new CookieCodec(config.keyPairs, config.unsealCacheSize ?? defaultUnsealCacheSize);
    this.options = Object.freeze(resolveSessionOptions(config.options));
    const touchAfterMs = nonNegative(config.touchAfter ?? defaultTouchAfterSeconds, 'touchAfter') * 1000;
    this.#absoluteMaxAgeMs =
      config.absoluteMaxAge === undefined ? undefined : positiveAtMost(config.absoluteMaxAge, maxMaxAge, 'absoluteMaxAge') * 1000;
    const saveUninitialized = flag(config.saveUninitialized ?? false, 'saveUninitialized');
    this.#timeoutMs = checkMillisecondsOrZero(config.timeoutMs ?? defaultTimeoutMs, 'timeoutMs');
    const maxValuesBytes = nonNegative(config.maxValuesBytes ?? defaultMaxValuesBytes, 'maxValuesBytes');
    const cleanupBatchSize = checkBatchSize(config.cleanupBatchSize ?? defaultCleanupBatchSize, 'cleanupBatchSize');
    this.#onError = checkErrorHandler(config.onError) ?? ((error) => console.error('mongostore: cleanup failed:', error));
    if (config.describeDevice !== undefined && typeof config.describeDevice !== 'function') {
      throw new SessionOptionsError('describeDevice must be a function');
    }
    this.#telemetry = Telemetry.create(config.telemetry, backend.database);
    this.#sessions = instrumentBackend(backend, this.#telemetry);
    this.#writer = new SessionWriter<V>({
      backend: this.#sessions,
      codec: this.#codec,
      telemetry: this.#telemetry,
      defaults: this.options,
      touchAfterMs,
      absoluteMaxAgeMs: this.#absoluteMaxAgeMs,
      maxValuesBytes,
      saveUninitialized,
      describeDevice: config.describeDevice,
      withTimeout: (operation, call) => this.#withTimeout(operation, call),
    });
    // Each batch bounded like any call: a command lost on a dead connection
    // must not stop the housekeeping for good.
    this.#cleanupTick = expiredCleanup(this.#sessions, cleanupBatchSize, this.#timeoutMs);
    // Weakly held, so that a store nobody uses any more is not kept alive by the meter.
    const sessions = new WeakRef(this.#sessions);
    const timeoutMs = this.#timeoutMs;
    this.#telemetry.observeActiveSessions(() => {
      const backend = sessions.deref();
      return backend && withTimeout('countLiveByProvider', timeoutMs, (signal) => backend.countLiveByProvider(signal));
    });
  }

  /**
   * The id of each configured key pair, in the order of `keyPairs` (the
   * first seals). Tokens name their pair by it, and the metric
   * `mongostore.cookie.accepted` counts cookies by it: a pair whose count
   * stays at zero is no longer in use (README, "Keys and rotation").
   */
  get keyPairIds(): readonly string[] {
    return this.#codec.keyPairIds;
  }

  /**
   * Creates the backend's schema (indexes, tables) now rather than before the
   * first command. Safe to call more than once and with a schema that exists.
   * @throws SessionStoreError when the server refuses.
   */
  init(): Promise<void> {
    return this.#sessions.ensureSchema();
  }

  /**
   * The request's session named `name`, decoded once per request: the same
   * request (a Request, or Hono's `c.req`) and name always give the same
   * Session object.
   *
   * A fresh session (`isNew`, empty values) comes back when there is no
   * cookie, when the cookie does not unseal (no database command is sent),
   * when its document is missing or expired, or when its session was just
   * regenerated by a parallel request; `session.error` says why. A save of
   * such a session clears the dead cookie (except `'replaced'`), or replaces
   * it when the session is stored. One database command when the cookie
   * unseals, none otherwise.
   *
   * @throws SessionStoreError (rejects) when the database fails or does not
   * answer within `timeoutMs`; the cause is the driver's error or a
   * TimeoutError. A later `get` for the request tries again.
   */
  get(req: RequestLike, name: string): Promise<Session<V>> {
    const request = toRequest(req);
    const existing = this.#registry.get(request, name);
    if (existing !== undefined) return existing;
    const loading = this.#load(request, name);
    this.#registry.set(request, name, loading);
    loading.catch(() => this.#registry.deleteIf(request, name, loading));
    return loading;
  }

  /**
   * Like {@link SessionStore.get}, but decodes anew and does not register
   * the result: a new Session object on each call. Once the request's
   * registered session of that name is destroyed (`destroy()` or
   * `maxAge <= 0`), it gives a fresh, empty session instead, which `saveAll`
   * (and so the middleware) saves right after the destroyed one: the way to
   * sign out and flash "You are signed out" in one response.
   * @throws SessionStoreError as `get` does.
   */
  async new(req: RequestLike, name: string): Promise<Session<V>> {
    const request = toRequest(req);
    const registered = await this.#registry.get(request, name)?.catch(() => undefined);
    if (registered !== undefined && (registered.options.maxAge <= 0 || registered[sessionState].ended !== undefined)) {
      // One fresh session per destroyed one: asked again, `new` gives the same.
      const existing = registered[sessionState].successor as Session<V> | undefined;
      if (existing !== undefined) return existing;
      const fresh = new Session<V>(name, { ...this.options });
      registered[sessionState].successor = fresh;
      fresh[sessionState].predecessor = registered;
      return fresh;
    }
    return this.#load(request, name);
  }

  /**
   * Saves the session and adds its Set-Cookie header to `target` when the
   * browser's cookie must change. See {@link SaveOutcome} for what each case
   * writes. At most one write for a new, changed or refreshed session (two
   * after `regenerate()` on MongoDB: insert new, retire old); none for an
   * unchanged one or a new one that is still empty (unless
   * `saveUninitialized`). Everything that can be refused is checked, and the
   * cookie sealed and serialized, before the first write.
   *
   * @throws SessionOptionsError when the session's options or name are invalid.
   * @throws SessionValuesError when the values or flashes are not storable
   * or larger than `maxValuesBytes`, or `user`/`provider` break the owner
   * rule; nothing is written.
   * @throws SessionStoreError when the database fails or does not answer
   * within `timeoutMs`; the cookie is not sent.
   */
  async save(req: RequestLike, target: CookieTarget, session: Session<V>): Promise<SaveOutcome> {
    if (!(session instanceof Session)) throw new TypeError('save: session must be a Session from this store\'s get or new');
    const state = session[sessionState];
    if (state.ended !== undefined) return state.ended;
    // One snapshot of the options, read once: what is validated is what is used.
    session.options = { ...session.options };
    validateCookie(session.name, session.options);
    if (session.id !== state.storeId) {
      throw new SessionOptionsError('session.id was changed: it must be the id the store gave the session');
    }
    if (session.options.maxAge <= 0) return this.#writer.delete(target, session);
    // A fresh session on a just-replaced id (a parallel request of a browser
    // that signed in) writes nothing, unless it is a sign-in itself.
    if (session.error === 'replaced' && !state.regenerating) return end(target, session, 'superseded');
    const predecessor = state.predecessor as Session<V> | undefined;
    if (predecessor !== undefined) await this.save(req, target, predecessor); // the destroyed one first
    return this.#writer.write(toRequest(req), target, session);
  }

  /**
   * Saves every session `get` registered for the request, in the order they
   * were first requested (gorilla's `sessions.Save`), each followed by the
   * fresh session `new` gave after it was destroyed, if any. Stops at the
   * first failure and rejects with it. Sessions whose `get` failed are
   * skipped. Saving twice is harmless: a saved session is unchanged.
   */
  async saveAll(req: RequestLike, target: CookieTarget): Promise<void> {
    const loads = await Promise.allSettled(this.#registry.values(toRequest(req)));
    for (const load of loads) {
      if (load.status !== 'fulfilled') continue;
      for (let session: Session<V> | undefined = load.value; session !== undefined; ) {
        await this.save(req, target, session);
        session = session[sessionState].successor as Session<V> | undefined;
      }
    }
  }

  /**
   * Forced logout: deletes every live session whose values held this `user`
   * and `provider` when last saved: two database commands (a second pass
   * catches a session regenerated while the first ran; more only while
   * regenerations keep racing it, at most five). Their cookies
   * then give fresh sessions, and a request still in flight with one of them
   * cannot bring it back (its save resolves `'expired'`). Resolves to the
   * number of live sessions ended (expired ones are left to cleanup).
   *
   * @throws TypeError (rejects) unless both are strings the owner rule
   * allows (1 to 256 characters, well-formed, no NUL; see `save`); no
   * command is sent.
   * @throws SessionStoreError when the database fails.
   */
  async expireSessions(user: string, provider: string): Promise<number> {
    checkOwnerArgument('expireSessions: user', user);
    checkOwnerArgument('expireSessions: provider', provider);
    const ended = await inPasses(() => this.#sessions.deleteOwnedBy(user, provider));
    this.#telemetry.sessionsRevoked('forced_logout', ended);
    return ended;
  }

  /**
   * The live sessions of a user, newest first, for a "your devices" page:
   * each one's handle, creation, last write, expiry, User-Agent and
   * `describeDevice` details, never its id or values. At most
   * `options.limit` of them (default 100, at most 1,000): the newest. One
   * database command, served by the owner index.
   * @throws TypeError (rejects) for arguments the owner rule refuses, or a
   * limit that is not a whole number from 1 to 1,000; no command is sent.
   * @throws SessionStoreError when the database fails.
   */
  async listSessions(user: string, provider: string, options?: { limit?: number | undefined }): Promise<DeviceInfo[]> {
    checkOwnerArgument('listSessions: user', user);
    checkOwnerArgument('listSessions: provider', provider);
    const limit = options?.limit ?? defaultListLimit;
    if (!Number.isInteger(limit) || limit < 1 || limit > maxListLimit) {
      throw new TypeError(`listSessions: limit must be a whole number from 1 to ${maxListLimit}`);
    }
    const absolute = this.#absoluteMaxAgeMs;
    const now = Date.now();
    return (await this.#sessions.listOwnedBy(user, provider, limit))
      .filter((record) => absolute === undefined || record.createdAt.getTime() + absolute > now) // as `get` sees them
      .map(toDeviceInfo);
  }

  /**
   * Ends the session with this handle, only when it belongs to `user` and
   * `provider` (a handle posted by another account ends nothing). Its cookie
   * gives a fresh session on its next request, and a request in flight with
   * it cannot bring it back (its save resolves `'expired'`). One database command.
   * @returns true when a session was ended.
   * @throws TypeError (rejects) for arguments the owner rule refuses or a
   * string that is not a handle; no command is sent.
   * @throws SessionStoreError when the database fails.
   */
  async revokeSession(user: string, provider: string, handle: string): Promise<boolean> {
    checkOwnerArgument('revokeSession: user', user);
    checkOwnerArgument('revokeSession: provider', provider);
    if (!isHandle(handle)) throw new TypeError('revokeSession: handle must be a handle from listSessions');
    const ended = await this.#sessions.deleteOwnedByHandle(user, provider, handle, false);
    this.#telemetry.sessionsRevoked('device', ended);
    return ended > 0;
  }

  /**
   * "Sign out other devices": ends every live session of this session's
   * owner (its `values.user` and `values.provider`) except this one. Two
   * database commands, like `expireSessions` (the second catches a device
   * that regenerated while the first ran).
   * @returns how many sessions were ended.
   * @throws TypeError (rejects) when the session is not saved yet or has no owner; no command is sent.
   * @throws SessionStoreError when the database fails.
   */
  async revokeOtherSessions(session: Session<V>): Promise<number> {
    if (!(session instanceof Session) || !isHandle(session.handle)) {
      throw new TypeError('revokeOtherSessions: session must be a saved Session of this store');
    }
    const { user, provider } = ownerOf({ ...(session.values as SessionValues) });
    if (user === undefined || provider === undefined) {
      throw new TypeError('revokeOtherSessions: the session has no owner (values.user and values.provider)');
    }
    const ended = await inPasses(() => this.#sessions.deleteOwnedByHandle(user, provider, session.handle, true));
    this.#telemetry.sessionsRevoked('other_devices', ended);
    return ended;
  }

  /**
   * The number of sessions not yet expired (expired documents that cleanup
   * has not removed yet are not counted). One command, served by the expiry index.
   * @throws SessionStoreError when the database fails.
   */
  getActiveSessionsCount(): Promise<number> {
    return this.#sessions.countLive();
  }

  /**
   * Deletes expired documents every `intervalMs` until `signal` aborts, the
   * first tick one interval after the call. A tick deletes in batches of
   * `cleanupBatchSize` until one comes back short (each batch one bounded
   * statement on PostgreSQL, a find of ids and their delete on MongoDB,
   * each within `timeoutMs`). A failed tick goes to the `onError` option
   * and the loop carries on. The timers never keep the process alive.
   * Resolves once the loop has stopped: after the batch in progress (an
   * abort stops a tick between batches), so within `timeoutMs` of the abort
   * (with `timeoutMs: 0`, whenever the database answers); no batch starts
   * after it resolves (one given up after `timeoutMs` may still reach the
   * database later, and deletes only what is expired then). At once, with
   * no command, for an aborted signal.
   *
   * @throws TypeError (rejects) for a missing signal or an interval that is
   * not from 1 to 2,147,483,647 milliseconds.
   * @throws Error (rejects) when a loop is already running on this store:
   * one loop per store; abort it before starting another.
   */
  async startAutoClean(signal: AbortSignal, intervalMs: number): Promise<void> {
    if (!(signal instanceof AbortSignal)) throw new TypeError('startAutoClean needs an AbortSignal');
    if (!isValidInterval(intervalMs)) {
      throw new TypeError(`startAutoClean: intervalMs must be a number of milliseconds from 1 to ${maxTimerMs}`);
    }
    if (signal.aborted) return;
    if (this.#autoCleanRunning) {
      throw new Error('startAutoClean: a loop is already running on this store; abort it first');
    }
    this.#autoCleanRunning = true;
    try {
      await runEvery(signal, intervalMs, () => this.#cleanupTick(signal), this.#onError);
    } finally {
      this.#autoCleanRunning = false;
    }
  }

  async #load(request: Request, name: string): Promise<Session<V>> {
    const session = new Session<V>(name, { ...this.options });
    const header = request.headers.get('cookie');
    const value = header === null ? undefined : parseCookies(header)[name];
    if (value === undefined) return session;

    const rejected = (reason: SessionLoadError) => {
      this.#telemetry.cookieRejected(reason);
      return failed(session, reason);
    };
    const unsealed = await this.#codec.unseal(name, value);
    if (!unsealed.ok) return rejected(unsealed.reason);
    const found = await this.#withTimeout('find', (signal) => this.#sessions.find(unsealed.id, signal));
    if (found === undefined) return rejected('not-found');
    if (found.state === 'replaced') {
      session[sessionState].replacedId = unsealed.id;
      return rejected('replaced');
    }
    if (this.#absoluteMaxAgeMs !== undefined && found.createdAt.getTime() + this.#absoluteMaxAgeMs <= Date.now()) {
      // Past its absolute lifetime (a limit added or lowered since it was written).
      return rejected('not-found');
    }
    let decoded;
    let owner;
    try {
      decoded = decodeContent(found.content);
      owner = ownerOf(decoded.values);
    } catch {
      return rejected('unreadable');
    }
    this.#telemetry.cookieAccepted(unsealed.keyPairId, unsealed.sealedWithCurrentKey);
    session.values = decoded.values as Partial<V>;
    session.id = unsealed.id;
    session.handle = found.handle;
    session.isNew = false;
    if (found.lifetime !== undefined) Object.assign(session.options, found.lifetime);
    const state = session[sessionState];
    state.storeId = unsealed.id;
    state.stored = decoded.content;
    state.legacy = decoded.legacy;
    state.flashes = decoded.flashes;
    state.owner = owner;
    state.epoch = found.epoch;
    state.expiresAt = found.expiresAt;
    state.createdAt = found.createdAt;
    state.ownLifetime = found.lifetime;
    state.cookieDelivered = true;
    state.olderKey = !unsealed.sealedWithCurrentKey;
    return session;
  }

  /** Runs one database call bounded by `timeoutMs`; a timeout becomes SessionStoreError. */
  #withTimeout<T>(operation: string, call: (signal: AbortSignal | undefined) => Promise<T>): Promise<T> {
    return withTimeout(operation, this.#timeoutMs, call);
  }
}

/**
 * Runs an owner-scoped delete until a pass deletes nothing, two passes at
 * least. A regeneration inserts its new record before it retires the old
 * one, so a pass that ran meanwhile may have missed the new record and found
 * the old one already retired (a multi-record delete is not a snapshot on
 * MongoDB, and PostgreSQL's statement snapshot predates the insert): the
 * next pass sees it.
 */
async function inPasses(pass: () => Promise<number>): Promise<number> {
  let ended = 0;
  for (let count = 1; count <= maxDeletePasses; count++) {
    const deleted = await pass();
    ended += deleted;
    if (count >= 2 && deleted === 0) break;
  }
  return ended;
}

function failed<V extends Storable<V>>(session: Session<V>, reason: NonNullable<Session<V>['error']>): Session<V> {
  session.error = reason;
  session[sessionState].deadCookie = deadCookieErrors.has(reason);
  return session;
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
