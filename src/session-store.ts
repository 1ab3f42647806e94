/**
 * SessionStore: gorilla/sessions' Store on any SessionBackend. The cookie
 * carries only the sealed session id; the values live in the database.
 * MongoStore (MongoDB) and PostgresSessionStore (PostgreSQL) are this class
 * over their backends.
 */
import { parse as parseCookies, serialize as serializeCookie } from 'cookie';
import { runEvery, isValidInterval } from './cleanup.ts';
import { CookieCodec } from './codec.ts';
import { SessionOptionsError } from './errors.ts';
import type { SessionBackend } from './backend.ts';
import type { KeyPair } from './keys.ts';
import { checkOwnerArgument, ownerOf, type Owner } from './owner.ts';
import { resolveSessionOptions, type SessionOptions, validateCookie } from './options.ts';
import { Registry, type RequestLike, toRequest } from './registry.ts';
import { newSessionId, Session, sessionState } from './session.ts';
import { decodeValues, encodeValues, type SessionValues } from './values.ts';

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
  /** Largest encoded values `save` accepts, in bytes. Default 1 MiB. */
  maxValuesBytes?: number | undefined;
  /** Verified cookie values remembered to skip unsealing. Default 10,000; 0 disables. */
  unsealCacheSize?: number | undefined;
  /** Receives each failed `startAutoClean` tick. Default: `console.error`. */
  onError?: ((error: unknown) => void) | undefined;
}

/**
 * Anything `save` can add a Set-Cookie header to: a Fetch `Headers`, or a
 * Hono `Context` (any object with `header(name, value, { append: true })`).
 */
export type CookieTarget =
  | Headers
  | { header(name: string, value: string, options: { append: true }): void };

/**
 * What `save` did.
 * - `created`: a document was inserted under a new id (a new session, or
 *   after `regenerate()`); a cookie was sent.
 * - `updated`: values and/or expiry were written; a cookie was sent if the
 *   expiry moved or the cookie needed re-sealing under the current key.
 * - `unchanged`: nothing was written; a cookie was sent only to re-seal one
 *   issued under an older key pair.
 * - `deleted`: maxAge <= 0: the document was deleted and the cookie expired.
 * - `expired`: the document had expired or been force-expired since `get`;
 *   nothing was written (expiry is authoritative) and the cookie expired.
 */
export type SaveOutcome = 'created' | 'updated' | 'unchanged' | 'deleted' | 'expired';

/** What a save writes: the values as text and as bytes, and their owner. */
interface RecordToWrite {
  text: string;
  data: Uint8Array;
  owner: Owner;
}

const defaultTouchAfterSeconds = 3600;
const defaultMaxValuesBytes = 1024 * 1024;
const defaultUnsealCacheSize = 10_000;
const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

/**
 * Sessions stored server-side, with only a sealed id in the cookie.
 *
 * The backend's schema (indexes or tables) is created by
 * {@link SessionStore.init}, or lazily before the store's first database
 * command; the command counts documented on each method assume it exists.
 *
 * @typeParam V the shape of every session's values.
 */
export class SessionStore<V extends SessionValues = SessionValues> {
  /** Defaults copied into every new Session's `options`. */
  readonly options: Readonly<SessionOptions>;
  readonly #sessions: SessionBackend;
  readonly #codec: CookieCodec;
  readonly #registry = new Registry<Promise<Session<V>>>();
  readonly #touchAfterMs: number;
  readonly #maxValuesBytes: number;
  readonly #onError: (error: unknown) => void;
  #autoCleanRunning = false;

  /**
   * @throws SessionOptionsError for no key pairs, a key shorter than 32
   * characters or bytes, or invalid options.
   */
  constructor(backend: SessionBackend, config: SessionStoreConfig) {
    this.#codec = new CookieCodec(config.keyPairs, config.unsealCacheSize ?? defaultUnsealCacheSize);
    this.options = Object.freeze(resolveSessionOptions(config.options));
    this.#touchAfterMs = nonNegative(config.touchAfter ?? defaultTouchAfterSeconds, 'touchAfter') * 1000;
    this.#maxValuesBytes = nonNegative(config.maxValuesBytes ?? defaultMaxValuesBytes, 'maxValuesBytes');
    this.#onError = config.onError ?? ((error) => console.error('mongostore: cleanup failed:', error));
    this.#sessions = backend;
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
   * or when its document is missing or expired; `session.error` says why.
   * One database command when the cookie unseals, none otherwise.
   *
   * @throws SessionStoreError (rejects) when the database fails; the cause
   * is the driver's error. A later `get` for the request tries again.
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
   * Like {@link SessionStore.get}, but always decodes anew and does not touch
   * the registry: a new Session object on each call.
   * @throws SessionStoreError as `get` does.
   */
  new(req: RequestLike, name: string): Promise<Session<V>> {
    return this.#load(toRequest(req), name);
  }

  /**
   * Saves the session and adds its Set-Cookie header to `target` when the
   * browser's cookie must change. See {@link SaveOutcome} for what each case
   * writes. At most one write for a new, changed or refreshed session (two
   * after `regenerate()`: insert new, delete old); none for an unchanged one.
   *
   * @throws SessionOptionsError when the session's options or name are invalid.
   * @throws SessionValuesError when the values are not storable or larger
   * than `maxValuesBytes`; nothing is written.
   * @throws SessionStoreError when the database fails; the cookie is not sent.
   */
  async save(_req: RequestLike, target: CookieTarget, session: Session<V>): Promise<SaveOutcome> {
    // Everything that can be refused is checked before the first write.
    validateCookie(session.name, session.options);
    const state = session[sessionState];
    if (state.ended) return 'deleted';
    if (session.options.maxAge <= 0) return this.#delete(target, session);
    const text = encodeValues(session.values, this.#maxValuesBytes);
    const record: RecordToWrite = { text, data: utf8.encode(text), owner: ownerOf(session.values) };
    return session.id === '' || state.regenerating
      ? this.#create(target, session, record)
      : this.#update(target, session, record);
  }

  /**
   * Saves every session `get` registered for the request, in the order they
   * were first requested (gorilla's `sessions.Save`). Stops at the first
   * failure and rejects with it. Sessions whose `get` failed are skipped.
   */
  async saveAll(req: RequestLike, target: CookieTarget): Promise<void> {
    const loads = await Promise.allSettled(this.#registry.values(toRequest(req)));
    for (const load of loads) {
      if (load.status === 'fulfilled') await this.save(req, target, load.value);
    }
  }

  /**
   * Forced logout: deletes every live session whose values held this `user`
   * and `provider` when last saved, in one database command. Their cookies
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
    return this.#sessions.deleteOwnedBy(user, provider);
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
   * Deletes expired documents every `intervalMs` until `signal` aborts: one
   * deleteMany per tick, the first one interval after the call. A failed
   * tick goes to the `onError` option and the loop carries on. The timers
   * never keep the process alive. Resolves once the loop has stopped (after
   * a tick in progress); at once, with no command, for an aborted signal.
   *
   * @throws TypeError (rejects) for a missing signal or an interval that is
   * not a positive number.
   * @throws Error (rejects) when a loop is already running on this store:
   * one loop per store; abort it before starting another.
   */
  async startAutoClean(signal: AbortSignal, intervalMs: number): Promise<void> {
    if (!(signal instanceof AbortSignal)) throw new TypeError('startAutoClean needs an AbortSignal');
    if (!isValidInterval(intervalMs)) {
      throw new TypeError('startAutoClean: intervalMs must be a positive number of milliseconds');
    }
    if (signal.aborted) return;
    if (this.#autoCleanRunning) {
      throw new Error('startAutoClean: a loop is already running on this store; abort it first');
    }
    this.#autoCleanRunning = true;
    try {
      await runEvery(signal, intervalMs, () => this.#sessions.deleteExpired(), this.#onError);
    } finally {
      this.#autoCleanRunning = false;
    }
  }

  async #load(request: Request, name: string): Promise<Session<V>> {
    const session = new Session<V>(name, { ...this.options });
    const header = request.headers.get('cookie');
    const value = header === null ? undefined : parseCookies(header)[name];
    if (value === undefined) return session;

    const unsealed = await this.#codec.unseal(name, value);
    if (!unsealed.ok) {
      session.error = unsealed.reason;
      return session;
    }
    const stored = await this.#sessions.find(unsealed.id);
    if (stored === undefined) {
      session.error = 'not-found';
      return session;
    }
    const text = fromUtf8.decode(stored.data);
    try {
      session.values = decodeValues(text) as Partial<V>;
    } catch {
      session.error = 'unreadable';
      return session;
    }
    session.id = unsealed.id;
    session.isNew = false;
    const state = session[sessionState];
    state.storedValues = text;
    state.expiresAt = stored.expiresAt;
    state.sealedWithCurrentKey = unsealed.sealedWithCurrentKey;
    return session;
  }

  /** A new session, or a regenerated one: a new id, then one insert or one replace. */
  async #create(target: CookieTarget, session: Session<V>, record: RecordToWrite): Promise<SaveOutcome> {
    const state = session[sessionState];
    const id = newSessionId();
    const expiresAt = new Date(Date.now() + session.options.maxAge * 1000);
    const cookie = await this.#sealedCookie(session, id, expiresAt);
    if (!state.regenerating) {
      await this.#sessions.insert(id, record.data, expiresAt, record.owner);
    } else if (!(await this.#sessions.replace(session.id, id, record.data, expiresAt, record.owner))) {
      return this.#expire(target, session);
    }
    session.id = id;
    state.regenerating = false;
    this.#stored(session, record.text, expiresAt);
    appendSetCookie(target, cookie);
    return 'created';
  }

  /** A loaded session: a write when values changed or the expiry is due; a cookie when it must change. */
  async #update(target: CookieTarget, session: Session<V>, record: RecordToWrite): Promise<SaveOutcome> {
    const state = session[sessionState];
    const lifetimeMs = session.options.maxAge * 1000;
    const storedExpiry = state.expiresAt ?? new Date(0);
    const changed = record.text !== state.storedValues;
    const wantedExpiry = Date.now() + lifetimeMs;
    const refresh =
      Math.abs(wantedExpiry - storedExpiry.getTime()) >= Math.min(this.#touchAfterMs, lifetimeMs / 2);
    const expiresAt = refresh ? new Date(wantedExpiry) : storedExpiry;
    const cookie =
      refresh || !state.sealedWithCurrentKey ? await this.#sealedCookie(session, session.id, expiresAt) : undefined;
    if (changed || refresh) {
      const live = await this.#sessions.updateLive(session.id, {
        ...(changed ? { data: record.data, owner: record.owner } : {}),
        ...(refresh ? { expiresAt } : {}),
      });
      if (!live) return this.#expire(target, session);
      this.#stored(session, record.text, expiresAt);
    }
    if (cookie !== undefined) {
      appendSetCookie(target, cookie);
      state.sealedWithCurrentKey = true;
    }
    return changed || refresh ? 'updated' : 'unchanged';
  }

  async #delete(target: CookieTarget, session: Session<V>): Promise<SaveOutcome> {
    if (session.id !== '') await this.#sessions.delete(session.id);
    this.#end(target, session);
    return 'deleted';
  }

  /** The document was gone or expired: nothing is written, the cookie goes. */
  #expire(target: CookieTarget, session: Session<V>): SaveOutcome {
    this.#end(target, session);
    return 'expired';
  }

  /** Terminal: the browser's cookie is expired and later saves write nothing. */
  #end(target: CookieTarget, session: Session<V>): void {
    session[sessionState].ended = true;
    appendSetCookie(target, this.#expiredCookie(session));
  }

  #stored(session: Session<V>, text: string, expiresAt: Date): void {
    const state = session[sessionState];
    state.storedValues = text;
    state.expiresAt = expiresAt;
    state.sealedWithCurrentKey = true;
  }

  /**
   * The Set-Cookie line naming `id`, sealed under the current key pair; built
   * before any write, so a save that fails here has written nothing. Cookie
   * and seal end with the document.
   */
  async #sealedCookie(session: Session<V>, id: string, expiresAt: Date): Promise<string> {
    const lifetimeMs = expiresAt.getTime() - Date.now();
    const sealed = await this.#codec.seal(session.name, id, lifetimeMs);
    return serializeCookie(session.name, sealed, {
      ...cookieAttributes(session.options),
      maxAge: Math.max(0, Math.round(lifetimeMs / 1000)),
      expires: expiresAt,
    });
  }

  /** A cookie every browser deletes: empty, Max-Age=0 and an Expires in the past. */
  #expiredCookie(session: Session<V>): string {
    return serializeCookie(session.name, '', {
      ...cookieAttributes(session.options),
      maxAge: 0,
      expires: new Date(0),
    });
  }
}

function cookieAttributes(options: SessionOptions) {
  return {
    path: options.path,
    httpOnly: options.httpOnly,
    secure: options.secure,
    sameSite: options.sameSite,
    partitioned: options.partitioned,
    ...(options.domain === undefined ? {} : { domain: options.domain }),
  };
}

function appendSetCookie(target: CookieTarget, cookie: string): void {
  if (target instanceof Headers) target.append('Set-Cookie', cookie);
  else target.header('Set-Cookie', cookie, { append: true });
}

function nonNegative(value: number, label: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new SessionOptionsError(`${label} must be a finite number >= 0`);
  }
  return value;
}
