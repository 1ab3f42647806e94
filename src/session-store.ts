/**
 * SessionStore: gorilla/sessions' Store on any SessionBackend. The cookie
 * carries only the sealed session id; the values live in the database.
 * MongoStore (MongoDB) and PostgresSessionStore (PostgreSQL) are this class
 * over their backends.
 */
import { type SessionBackend } from './backend.ts';
import { boundedBy, runOperation, withTimeout } from './operations.ts';
import { Housekeeping } from './housekeeping.ts';
import { InsecureCookieWarning } from './insecure-cookie.ts';
import { CookieCodec } from './codec.ts';
import { appendSetCookie, checkCookieTarget, type CookieTarget } from './cookies.ts';
import { type DeviceInfo, isHandle, listLimitOf, toDeviceInfo } from './devices.ts';
import { SessionOptionsError } from './errors.ts';
import { type SessionOptions, validateCookie } from './options.ts';
import { checkOwnerArgument, inPasses, ownerOf } from './owner.ts';
import { isSessionName, Registry, type RequestLike, toRequest } from './registry.ts';
import { type SaveOutcome, Session, sessionState } from './session.ts';
import { SessionLoader } from './session-loader.ts';
import { end, startsAfresh } from './session-end.ts';
import { SessionWriter } from './session-writer.ts';
import { resolveStoreConfig, type SessionStoreConfig } from './store-config.ts';
import { Telemetry } from './telemetry.ts';
import { instrumentBackend } from './instrumented-backend.ts';
import type { SessionValues, Storable } from './values.ts';

export type { CookieTarget } from './cookies.ts';
export type { SessionStoreConfig } from './store-config.ts';
export type { SaveOutcome } from './session.ts';

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
  readonly #loader: SessionLoader;
  readonly #absoluteMaxAgeMs: number | undefined;
  readonly #timeoutMs: number;
  readonly #housekeeping: Housekeeping;
  readonly #telemetry: Telemetry;

  /**
   * @param backendKeys configuration keys the backend's store class adds (e.g. `collection`).
   * @throws SessionOptionsError for no key pairs, a key that is short, weak
   * or of the wrong type, an unknown configuration key, or invalid options.
   */
  constructor(backend: SessionBackend, config: SessionStoreConfig, backendKeys: readonly string[] = []) {
    const settings = resolveStoreConfig(config, backendKeys);
    this.#codec = new CookieCodec(config.keyPairs, settings.unsealCacheSize);
    this.options = settings.options;
    this.#absoluteMaxAgeMs = settings.absoluteMaxAgeMs;
    this.#timeoutMs = settings.timeoutMs;
    // No closures here (bound methods instead): the meter holds the gauge's
    // callback, which must not keep the store or its backend alive.
    const bounded = boundedBy(settings.timeoutMs);
    this.#telemetry = Telemetry.create(config.telemetry, backend.database);
    this.#sessions = instrumentBackend(backend, this.#telemetry);
    this.#housekeeping = new Housekeeping({
      backend: this.#sessions,
      batchSize: settings.cleanupBatchSize,
      timeoutMs: settings.timeoutMs,
      intervalMs: settings.cleanupIntervalMs,
      onError: settings.onError,
      detached: this.#telemetry.detached.bind(this.#telemetry),
    });
    this.#writer = new SessionWriter<V>({
      backend: this.#sessions,
      codec: this.#codec,
      telemetry: this.#telemetry,
      defaults: this.options,
      touchAfterMs: settings.touchAfterMs,
      absoluteMaxAgeMs: this.#absoluteMaxAgeMs,
      maxValuesBytes: settings.maxValuesBytes,
      saveUninitialized: settings.saveUninitialized,
      describeDevice: settings.describeDevice,
      sessionLimit: settings.sessionLimit,
      onError: settings.onError,
      insecureCookies: new InsecureCookieWarning(),
      written: this.#housekeeping.afterWrite.bind(this.#housekeeping),
      withTimeout: bounded,
    });
    this.#loader = new SessionLoader({
      backend: this.#sessions,
      codec: this.#codec,
      telemetry: this.#telemetry,
      defaults: this.options,
      absoluteMaxAgeMs: this.#absoluteMaxAgeMs,
      withTimeout: bounded,
    });
    this.#telemetry.observeLiveSessionsOf(this.#sessions, this.#timeoutMs);
  }

  /**
   * The id of each configured key pair, in the order of `keyPairs` (the
   * first seals). Tokens name their pair by it, and the metric
   * `mongostore.cookie.accepted` counts cookies by it: a pair whose count
   * stays at zero is no longer in use (docs/keys.md).
   */
  get keyPairIds(): readonly string[] {
    return this.#codec.keyPairIds;
  }

  /**
   * Creates the backend's schema (indexes, tables) now rather than before the
   * first command. Safe to call more than once and with a schema that exists.
   * @throws SessionStoreError when the server refuses, or does not answer
   * within `timeoutMs` (cause: a TimeoutError; a later call waits for
   * the same attempt, or starts another once it has failed).
   */
  init(): Promise<void> {
    const sessions = this.#sessions;
    return withTimeout('init', this.#timeoutMs, (signal) =>
      runOperation('init', signal, () => sessions.ensureSchema(), () => Promise.resolve()),
    );
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
   * @throws TypeError (rejects) when `name` is not a non-empty string; no command is sent.
   * @throws SessionStoreError (rejects) when the database fails or does not
   * answer within `timeoutMs`; the cause is the driver's error or a
   * TimeoutError. A later `get` for the request tries again.
   */
  get(req: RequestLike, name: string): Promise<Session<V>> {
    if (!isSessionName(name)) return Promise.reject(new TypeError('get: name must be the cookie name, a non-empty string'));
    const request = toRequest(req);
    const existing = this.#registry.get(request, name);
    if (existing !== undefined) return existing;
    const loading = this.#loader.load<V>(request, name);
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
   * @throws TypeError and SessionStoreError (rejects) as `get` does.
   */
  async new(req: RequestLike, name: string): Promise<Session<V>> {
    if (!isSessionName(name)) throw new TypeError('new: name must be the cookie name, a non-empty string');
    const request = toRequest(req);
    const registered = await this.#registry.get(request, name)?.catch(() => undefined);
    const ended = registered?.[sessionState].ended;
    if (registered !== undefined && (registered.options.maxAge <= 0 || startsAfresh(ended))) {
      // One fresh session per destroyed one: asked again, `new` gives the same.
      const existing = registered[sessionState].successor as Session<V> | undefined;
      if (existing !== undefined) return existing;
      const fresh = new Session<V>(name, { ...this.options });
      registered[sessionState].successor = fresh;
      fresh[sessionState].predecessor = registered;
      return fresh;
    }
    return this.#loader.load<V>(request, name);
  }

  /**
   * Saves the session and adds its Set-Cookie header to `target` when the
   * browser's cookie must change. See {@link SaveOutcome} for what each case
   * writes. At most one write for a new, changed or refreshed session (two
   * after `regenerate()` on MongoDB: insert new, retire old); none for an
   * unchanged one or a new one that is still empty (unless
   * `saveUninitialized`). Everything that can be refused is checked, and the
   * cookie sealed and serialized, before the first write (of a fresh session
   * `new` gave after a `destroy()`, the destroyed one is deleted first: a
   * sign-out happens even when the fresh session is refused). With
   * `maxSessionsPerUser`, a save that gives the session its owner (a
   * sign-in) sends one more command after its write (on MongoDB a second
   * when sessions are evicted; more in a burst of parallel sign-ins), and
   * with `'refuse'` one before it too.
   *
   * @throws TypeError when `target` cannot take a Set-Cookie (a Response:
   * pass its `headers`) or `session` is not a Session; nothing is written.
   * @throws SessionOptionsError when the session's options or name are invalid.
   * @throws SessionValuesError when the values or flashes are not storable
   * or larger than `maxValuesBytes`, or `user`/`provider` break the owner
   * rule; nothing is written.
   * @throws SessionStoreError when the database fails or does not answer
   * within `timeoutMs`; the cookie is not sent.
   */
  async save(req: RequestLike, target: CookieTarget, session: Session<V>): Promise<SaveOutcome> {
    checkCookieTarget(target, 'save');
    const request = toRequest(req);
    if (!(session instanceof Session)) throw new TypeError('save: session must be a Session from this store\'s get or new');
    const state = session[sessionState];
    if (state.ended !== undefined) return state.ended;
    // One snapshot of the options, read once: what is validated is what is used.
    session.options = { ...session.options };
    validateCookie(session.name, session.options);
    if (session.id !== state.storeId) {
      throw new SessionOptionsError('session.id was changed: it must be the id the store gave the session');
    }
    // The destroyed session a fresh one follows is saved (deleted) first,
    // even when the fresh one is destroyed too: the sign-out always happens.
    const predecessor = state.predecessor as Session<V> | undefined;
    if (predecessor !== undefined && predecessor[sessionState].ended === undefined) {
      return this.#saveAfter(predecessor, request, target, session);
    }
    return this.#saveOwn(request, target, session);
  }

  /** Saves one session whose predecessor, if any, is saved. */
  #saveOwn(request: Request, target: CookieTarget, session: Session<V>): Promise<SaveOutcome> {
    if (session.options.maxAge <= 0) return this.#writer.delete(target, session);
    // A fresh session on a just-replaced id (a parallel request of a browser
    // that signed in) writes nothing, unless it is a sign-in itself.
    if (session.error === 'replaced' && session.id === '' && !session[sessionState].regenerating) {
      return Promise.resolve(end(target, session, 'superseded'));
    }
    return this.#writer.write(request, target, session);
  }

  /**
   * Saves the destroyed session, then the fresh one `new` gave after it.
   * One Set-Cookie per name (RFC 6265 4.1.1): the destroyed session's
   * clearing cookie is sent only when the fresh one sends none.
   */
  async #saveAfter(predecessor: Session<V>, request: Request, target: CookieTarget, session: Session<V>): Promise<SaveOutcome> {
    const clearing: string[] = [];
    await this.save(request, { header: (_name, value) => void clearing.push(value) }, predecessor);
    let sent = false;
    const recorded: CookieTarget = { header: (_name, value) => void ((sent = true), appendSetCookie(target, value)) };
    try {
      return await this.#saveOwn(request, recorded, session);
    } finally {
      if (!sent) for (const line of clearing) appendSetCookie(target, line);
    }
  }

  /**
   * Saves every session `get` registered for the request, in the order they
   * were first requested (gorilla's `sessions.Save`), each followed by the
   * fresh session `new` gave after it was destroyed, if any (one Set-Cookie
   * for the two: the fresh one's, or else the clearing one). Stops at the
   * first failure and rejects with it. Sessions whose `get` failed are
   * skipped. Saving twice is harmless: a saved session is unchanged.
   */
  async saveAll(req: RequestLike, target: CookieTarget): Promise<void> {
    checkCookieTarget(target, 'saveAll');
    const loads = await Promise.allSettled(this.#registry.values(toRequest(req)));
    for (const load of loads) {
      if (load.status !== 'fulfilled') continue;
      // The last of the chain: its save saves the destroyed ones before it, first.
      let session = load.value;
      while (session[sessionState].successor !== undefined) session = session[sessionState].successor as Session<V>;
      await this.save(req, target, session);
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
    const limit = listLimitOf(options?.limit);
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
   * @param handle as posted by a form: anything that is not a live handle
   * of this owner (not a string, not a handle's shape, another owner's,
   * already ended) ends nothing and resolves false, without a command when
   * its shape is wrong.
   * @returns true when a session was ended.
   * @throws TypeError (rejects) for a `user` or `provider` the owner rule
   * refuses (they come from the app's session, not from a form); no command is sent.
   * @throws SessionStoreError when the database fails.
   */
  async revokeSession(user: string, provider: string, handle: string): Promise<boolean> {
    checkOwnerArgument('revokeSession: user', user);
    checkOwnerArgument('revokeSession: provider', provider);
    if (!isHandle(handle)) return false;
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
   * While it runs, the batches the store's writes start (`cleanupInterval`) pause.
   *
   * @throws TypeError (rejects) for a missing signal or an interval that is
   * not from 1 to 2,147,483,647 milliseconds.
   * @throws Error (rejects) when a loop is already running on this store:
   * one loop per store; abort it before starting another.
   */
  startAutoClean(signal: AbortSignal, intervalMs: number): Promise<void> {
    return this.#housekeeping.loop(signal, intervalMs);
  }
}

