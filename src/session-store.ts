/**
 * SessionStore: gorilla/sessions' Store on any SessionBackend. The cookie
 * carries only the sealed session id; the values live in the database.
 * MongoStore (MongoDB) and PostgresSessionStore (PostgreSQL) are this class
 * over their backends.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { parse as parseCookies } from 'cookie';
import { defaultTimeoutMs, type Lifetime, type LiveWrite, type SessionBackend, withTimeout, writeFailure } from './backend.ts';
import { checkBatchSize, checkErrorHandler, checkMillisecondsOrZero, defaultCleanupBatchSize, expiredCleanup, isValidInterval, maxTimerMs, runEvery } from './cleanup.ts';
import { CookieCodec } from './codec.ts';
import { type DeviceDetailsInput, deviceFieldsFor, type DeviceInfo, isHandle, newHandle, toDeviceInfo } from './devices.ts';
import { appendSetCookie, type CookieTarget, expiredCookie, sessionCookie } from './cookies.ts';
import { SessionOptionsError, SessionStoreError, SessionValuesError } from './errors.ts';
import type { KeyPair } from './keys.ts';
import { expiryAt, lifetimeKey, lifetimeOf, ownLifetime, refreshDue } from './lifetime.ts';
import { mergeSessionText } from './merge.ts';
import { checkKnownKeys, maxMaxAge, resolveSessionOptions, type SessionOptions, validateCookie } from './options.ts';
import { checkOwnerArgument, type Owner, ownerOf } from './owner.ts';
import { Registry, type RequestLike, toRequest } from './registry.ts';
import { isSessionId, newSessionId, type SaveOutcome, Session, type SessionLoadError, sessionState } from './session.ts';
import { Telemetry, type TelemetryOptions } from './telemetry.ts';
import { instrumentBackend } from './instrumented-backend.ts';
import { decodeSession, encodeValues, type SessionValues, type Storable } from './values.ts';

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

/** What a save writes: the values and flashes as text and as bytes, their owner, and the lifetime. */
interface RecordToWrite {
  text: string;
  /** The text as UTF-8, encoded when first read: a save that writes nothing never encodes it. */
  readonly data: Uint8Array;
  owner: Owner;
  /** The lifetime in force, for the expiry and the cookie. */
  lifetime: Lifetime;
  /** What is stored of it: undefined while it is the store's default. */
  own: Lifetime | undefined;
}

/** A record a save wrote: the record's version now, and whether it is a merge (not the session's own values). */
interface Written {
  record: RecordToWrite;
  version: number;
  merged: boolean;
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
/**
 * Compare-and-set attempts of one save before it gives up (each after a
 * merge and a short random pause, so that many parallel writers of one
 * session spread out).
 */
const maxMergeAttempts = 32;
/** Load errors whose cookie leads nowhere and should be cleared (not `replaced`). */
const deadCookieErrors = new Set(['malformed', 'oversized', 'tampered', 'unknown-key', 'expired', 'wrong-name', 'not-found', 'unreadable']);
const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

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
  readonly #touchAfterMs: number;
  readonly #absoluteMaxAgeMs: number | undefined;
  readonly #saveUninitialized: boolean;
  readonly #timeoutMs: number;
  readonly #maxValuesBytes: number;
  readonly #cleanupTick: (stop: AbortSignal) => Promise<number>;
  readonly #onError: (error: unknown) => void;
  readonly #describeDevice: ((request: Request) => DeviceDetailsInput | undefined) | undefined;
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
    this.#touchAfterMs = nonNegative(config.touchAfter ?? defaultTouchAfterSeconds, 'touchAfter') * 1000;
    this.#absoluteMaxAgeMs =
      config.absoluteMaxAge === undefined ? undefined : positiveAtMost(config.absoluteMaxAge, maxMaxAge, 'absoluteMaxAge') * 1000;
    this.#saveUninitialized = flag(config.saveUninitialized ?? false, 'saveUninitialized');
    this.#timeoutMs = checkMillisecondsOrZero(config.timeoutMs ?? defaultTimeoutMs, 'timeoutMs');
    this.#maxValuesBytes = nonNegative(config.maxValuesBytes ?? defaultMaxValuesBytes, 'maxValuesBytes');
    const cleanupBatchSize = checkBatchSize(config.cleanupBatchSize ?? defaultCleanupBatchSize, 'cleanupBatchSize');
    this.#onError = checkErrorHandler(config.onError) ?? ((error) => console.error('mongostore: cleanup failed:', error));
    if (config.describeDevice !== undefined && typeof config.describeDevice !== 'function') {
      throw new SessionOptionsError('describeDevice must be a function');
    }
    this.#describeDevice = config.describeDevice;
    this.#telemetry = Telemetry.create(config.telemetry, backend.database);
    this.#sessions = instrumentBackend(backend, this.#telemetry);
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
    if (session.id !== '' && !isSessionId(session.id)) {
      throw new SessionOptionsError('session.id was changed: it must be the id the store gave the session');
    }
    if (session.options.maxAge <= 0) return this.#delete(target, session);
    // A fresh session on a just-replaced id (a parallel request of a browser
    // that signed in) writes nothing, unless it is a sign-in itself.
    if (session.error === 'replaced' && !state.regenerating) return this.#end(target, session, 'superseded');
    const predecessor = state.predecessor as Session<V> | undefined;
    if (predecessor !== undefined) await this.save(req, target, predecessor); // the destroyed one first
    const record = this.#recordToWrite(session);
    if (session.id === '') {
      if (!this.#saveUninitialized && record.text === '{}') return this.#skipEmpty(target, session);
      return this.#create(toRequest(req), target, session, record);
    }
    return state.regenerating ? this.#create(toRequest(req), target, session, record) : this.#update(target, session, record);
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
   * `describeDevice` details, never its id or values. One database command,
   * served by the owner index.
   * @throws TypeError (rejects) for arguments the owner rule refuses; no command is sent.
   * @throws SessionStoreError when the database fails.
   */
  async listSessions(user: string, provider: string): Promise<DeviceInfo[]> {
    checkOwnerArgument('listSessions: user', user);
    checkOwnerArgument('listSessions: provider', provider);
    const limit = this.#absoluteMaxAgeMs;
    const now = Date.now();
    return (await this.#sessions.listOwnedBy(user, provider))
      .filter((record) => limit === undefined || record.createdAt.getTime() + limit > now) // as `get` sees them
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
    if (found.state === 'replaced') return rejected('replaced');
    if (this.#absoluteMaxAgeMs !== undefined && found.createdAt.getTime() + this.#absoluteMaxAgeMs <= Date.now()) {
      // Past its absolute lifetime (a limit added or lowered since it was written).
      return rejected('not-found');
    }
    const text = fromUtf8.decode(found.data);
    let decoded;
    try {
      decoded = decodeSession(text);
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
    state.flashes = decoded.flashes;
    state.storedValues = text;
    state.expiresAt = found.expiresAt;
    state.createdAt = found.createdAt;
    state.storedLifetime = lifetimeKey(found.lifetime);
    state.cookieDelivered = true;
    state.olderKey = !unsealed.sealedWithCurrentKey;
    state.version = found.version;
    return session;
  }

  /** Validates and encodes what a save of `session` would write, before anything is written. */
  #recordToWrite(session: Session<V>): RecordToWrite {
    const root: unknown = session.values;
    if (root === null || typeof root !== 'object' || Array.isArray(root)) {
      throw new SessionValuesError('session values must be a plain object');
    }
    // One read of each top-level value: the owner and the data come from the same snapshot.
    const values = { ...(root as SessionValues) };
    const text = encodeValues(values, this.#maxValuesBytes, session[sessionState].flashes);
    const lifetime = lifetimeOf(session.options);
    return recordOf(text, ownerOf(values), lifetime, ownLifetime(lifetime, this.options));
  }

  /** A new session, or a regenerated one: a new id, then one insert or one replace. */
  async #create(request: Request, target: CookieTarget, session: Session<V>, record: RecordToWrite): Promise<SaveOutcome> {
    const state = session[sessionState];
    const device = deviceFieldsFor(request, this.#describeDevice);
    const id = newSessionId();
    const now = Date.now();
    const createdAt = state.createdAt ?? new Date(now);
    const expiresAt = expiryAt(now, record.lifetime, createdAt, this.#absoluteMaxAgeMs);
    if (!(expiresAt.getTime() > now)) return this.#expireNow(target, session);
    const cookie = await this.#sealedCookie(session, id, expiresAt);
    let written: Written = { record, version: 1, merged: false };
    if (session.id === '') {
      await this.#withTimeout('insert', (signal) =>
        this.#sessions.insert(id, { data: record.data, owner: record.owner, lifetime: record.own, createdAt, expiresAt, device }, signal),
      );
    } else {
      const replaced = await this.#writeMerging(session, record, (attempt, version) =>
        this.#withTimeout('replace', (signal) =>
          this.#sessions.replace(
            session.id,
            id,
            { data: attempt.data, owner: attempt.owner, lifetime: attempt.own, createdAt, expiresAt, device },
            version,
            signal,
          ),
        ),
      );
      if (replaced.write.outcome !== 'done') return this.#end(target, session, endingOf(replaced.write));
      written = replaced.written;
    }
    if (session.id === '') this.#telemetry.sessionCreated();
    else this.#telemetry.sessionRegenerated();
    session.id = id;
    session.handle = device.handle;
    state.regenerating = false;
    state.createdAt = createdAt;
    this.#stored(session, { ...written, version: 1 }, expiresAt);
    this.#send(target, session, cookie);
    return 'created';
  }

  /** A loaded session: a write when values or lifetime changed or the expiry is due; a cookie when it must change. */
  async #update(target: CookieTarget, session: Session<V>, record: RecordToWrite): Promise<SaveOutcome> {
    const state = session[sessionState];
    const now = Date.now();
    const storedExpiry = state.expiresAt ?? new Date(0);
    const wantedExpiry = expiryAt(now, record.lifetime, state.createdAt ?? new Date(now), this.#absoluteMaxAgeMs);
    if (!(wantedExpiry.getTime() > now)) return this.#expireNow(target, session);
    const changed = record.text !== state.storedValues;
    const lifetimeChanged = lifetimeKey(record.own) !== state.storedLifetime;
    // A cookie under an older key pair is re-sealed with a refresh: the
    // write checks the session is still live (a re-seal alone could hand the
    // browser back an id a parallel sign-in just replaced).
    const refresh =
      lifetimeChanged || state.olderKey || refreshDue(storedExpiry, wantedExpiry, record.lifetime, this.#touchAfterMs);
    const expiresAt = refresh ? wantedExpiry : storedExpiry;
    const cookie =
      refresh || !state.cookieDelivered ? await this.#sealedCookie(session, session.id, expiresAt) : undefined;
    if (changed || refresh) {
      // A session from before handles gets one with this write.
      const handle = session.handle === '' ? newHandle() : undefined;
      const refreshing = { ...(refresh ? { expiresAt, lifetime: record.own ?? null } : {}), ...(handle === undefined ? {} : { handle }) };
      // A data write is compare-and-set (merged on a conflict); an expiry refresh alone is not.
      const result = changed
        ? await this.#writeMerging(session, record, (attempt, version) =>
            this.#withTimeout('update', (signal) =>
              this.#sessions.updateLive(
                session.id,
                { data: attempt.data, owner: attempt.owner, expectedVersion: version, ...refreshing },
                signal,
              ),
            ),
          )
        : {
            write: await this.#withTimeout('update', (signal) => this.#sessions.updateLive(session.id, refreshing, signal)),
            written: { record, version: state.version, merged: false },
          };
      if (result.write.outcome !== 'done') return this.#end(target, session, endingOf(result.write));
      if (handle !== undefined) session.handle = handle;
      this.#stored(session, result.written, expiresAt);
    }
    if (cookie !== undefined) this.#send(target, session, cookie);
    return changed || refresh ? 'updated' : 'unchanged';
  }

  /**
   * Runs a compare-and-set write of this request's changes. On a conflict
   * (another request wrote the session since it was loaded) it re-reads the
   * stored session, merges this request's changes into it (see merge.ts),
   * and tries again, at most {@link maxMergeAttempts} times. The merge is
   * always of the changes against the values as loaded, so a retry never
   * counts a change twice.
   * @returns the last write's result and, when it was done, what it wrote.
   * @throws SessionStoreError when the session kept changing through every attempt.
   */
  async #writeMerging(
    session: Session<V>,
    record: RecordToWrite,
    write: (record: RecordToWrite, expectedVersion: number) => Promise<LiveWrite>,
  ): Promise<{ write: LiveWrite; written: Written }> {
    const state = session[sessionState];
    let attempt = record;
    let version = state.version;
    for (let tries = 1; ; tries++) {
      const result = await write(attempt, version);
      if (result.outcome !== 'conflict') {
        return { write: result, written: { record: attempt, version: version + 1, merged: attempt !== record } };
      }
      if (tries >= maxMergeAttempts) {
        throw new SessionStoreError(`save: the session changed under ${tries} parallel writes in a row; nothing of this request was written`, {
          cause: undefined,
        });
      }
      let current = result.current;
      if (tries > 1) {
        // Many writers of one session: a random pause, growing with each
        // miss, spreads them out; what was read before it is stale by then.
        await sleep(Math.random() * Math.min(250, 2 ** (tries + 1)));
        const found = await this.#withTimeout('find', (signal) => this.#sessions.find(session.id, signal));
        if (found?.state !== 'live') return { write: writeFailure(found), written: { record: attempt, version, merged: false } };
        current = found;
      }
      const text = mergeSessionText({
        base: state.storedValues ?? '{}',
        ours: record.text,
        theirs: fromUtf8.decode(current.data),
        readFlashKeys: state.readFlashKeys,
      });
      attempt = this.#recordFromText(text, record.lifetime);
      version = current.version;
    }
  }

  /** A merged text as a record, checked like any values: size and owner rule. */
  #recordFromText(text: string, lifetime: Lifetime): RecordToWrite {
    const record = recordOf(text, ownerOf(decodeSession(text).values), lifetime, ownLifetime(lifetime, this.options));
    if (record.data.byteLength > this.#maxValuesBytes) {
      throw new SessionValuesError(`merged session values take ${record.data.byteLength} bytes, more than maxValuesBytes (${this.#maxValuesBytes})`);
    }
    return record;
  }

  /** A new session that is still empty is not stored; a dead cookie the request carried is cleared. */
  #skipEmpty(target: CookieTarget, session: Session<V>): SaveOutcome {
    const state = session[sessionState];
    if (state.deadCookie) {
      appendSetCookie(target, expiredCookie(session.name, session.options));
      state.deadCookie = false;
    }
    return 'unchanged';
  }

  async #delete(target: CookieTarget, session: Session<V>): Promise<SaveOutcome> {
    if (session.id !== '') {
      await this.#withTimeout('delete', (signal) => this.#sessions.delete(session.id, signal));
      this.#telemetry.sessionEnded();
    }
    return this.#end(target, session, 'deleted');
  }

  /** The absolute lifetime is over: the document goes, like an expiry. */
  async #expireNow(target: CookieTarget, session: Session<V>): Promise<SaveOutcome> {
    if (session.id !== '') await this.#withTimeout('delete', (signal) => this.#sessions.delete(session.id, signal));
    return this.#end(target, session, 'expired');
  }

  /**
   * Terminal: later saves resolve `outcome` again and write nothing. The
   * browser's cookie is expired, except when the session was superseded:
   * the browser then holds the regenerated session's cookie, which a
   * clearing cookie arriving later would delete.
   */
  #end(target: CookieTarget, session: Session<V>, outcome: SaveOutcome): SaveOutcome {
    // The cookie first: if the target throws, a retried save sends it again.
    if (outcome !== 'superseded') appendSetCookie(target, expiredCookie(session.name, session.options));
    session[sessionState].ended = outcome;
    return outcome;
  }

  /**
   * Records what was written; after a merge, the session's values and
   * flashes become the merged ones. The browser's cookie is stale until
   * {@link #send} delivers the new one.
   */
  #stored(session: Session<V>, { record, version, merged }: Written, expiresAt: Date): void {
    const state = session[sessionState];
    if (merged) {
      const decoded = decodeSession(record.text);
      session.values = decoded.values as Partial<V>;
      state.flashes = decoded.flashes;
    }
    state.storedValues = record.text;
    state.storedLifetime = lifetimeKey(record.own);
    state.expiresAt = expiresAt;
    state.version = version;
    state.olderKey = false;
    state.readFlashKeys = new Set();
    state.cookieDelivered = false;
  }

  /**
   * Hands the cookie to the target. If that throws (a Response's immutable
   * headers), the session still knows its cookie is stale, so a retried save
   * sends it without writing again.
   */
  #send(target: CookieTarget, session: Session<V>, cookie: string): void {
    appendSetCookie(target, cookie);
    const state = session[sessionState];
    state.cookieDelivered = true;
    state.deadCookie = false;
  }

  /**
   * The Set-Cookie line naming `id`, sealed under the current key pair; built
   * before any write, so a save that fails here has written nothing. The
   * seal ends with the document.
   */
  async #sealedCookie(session: Session<V>, id: string, expiresAt: Date): Promise<string> {
    const sealed = await this.#codec.seal(session.name, id, expiresAt.getTime() - Date.now());
    return sessionCookie(session.name, sealed, session.options, expiresAt);
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

/** How a save ends when its write found the session replaced or gone. */
function endingOf(write: LiveWrite): SaveOutcome {
  return write.outcome === 'replaced' ? 'superseded' : 'expired';
}

/** Marks a fresh session with why the cookie gave no session. */
/** A record to write whose bytes are encoded on first use: a save that writes nothing never encodes them. */
class LazyRecord implements RecordToWrite {
  #data: Uint8Array | undefined;
  constructor(
    readonly text: string,
    readonly owner: Owner,
    readonly lifetime: Lifetime,
    readonly own: Lifetime | undefined,
  ) {}

  get data(): Uint8Array {
    return (this.#data ??= utf8.encode(this.text));
  }
}

function recordOf(text: string, owner: Owner, lifetime: Lifetime, own: Lifetime | undefined): RecordToWrite {
  return new LazyRecord(text, owner, lifetime, own);
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
