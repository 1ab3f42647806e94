/**
 * The write path of `SessionStore.save`: what a save writes, as named steps
 * (create, regenerate, update, delete), each one guarded write.
 *
 * A save writes a delta: only the entries its request changed since it
 * loaded the session (content.ts), so parallel requests of one browser
 * never conflict on different keys and need no retry; the same key is
 * last-writer-wins. Every write of a loaded session is guarded by the owner
 * tenure the request loaded (an epoch that moves with each owner change),
 * so nothing a request did under one owner lands in a session that has
 * another owner now: that save resolves `'superseded'`. The rules:
 * - an owner change from nobody (a first sign-in) is a delta: the cart and
 *   the pending flashes carry over;
 * - an owner change from someone (a sign-in as someone else, a sign-out by
 *   clearing) replaces the content whole, and the previous owner's pending
 *   flashes are dropped (the ones this request added are kept);
 * - a session's own lifetime is written only by the request that changed
 *   it; a write that rolls the expiry or sends a cookie is guarded by the
 *   lifetime the request loaded, and adopts the stored one when another
 *   request changed it;
 * - a cookie is only ever sent after a guarded write (or the insert) that
 *   found the session live.
 */
import type { ContentDelta, Lifetime, LiveChange, LiveWrite, SessionBackend, SessionContent, SessionLimit } from './backend.ts';
import type { CookieCodec } from './codec.ts';
import { contentSize, deltaOf, emptyContent, encodeContent, isEmptyDelta, type PendingFlash } from './content.ts';
import { appendSetCookie, type CookieTarget, sessionCookie } from './cookies.ts';
import { end, skipEmpty, withdrawn } from './session-end.ts';
import { type DeviceDetailsInput, newHandle } from './devices.ts';
import { forgetTried, newIdentity } from './retried-writes.ts';
import { SessionStoreError, SessionValuesError } from './errors.ts';
import type { InsecureCookieWarning } from './insecure-cookie.ts';
import { OwnerLimit } from './session-limit.ts';
import { cappedExpiry, expiryAt, isTransient, lifetimeKey, lifetimeOf, ownLifetime, refreshDue } from './lifetime.ts';
import type { SessionOptions } from './options.ts';
import { type Owner, ownerOf, sameOwner } from './owner.ts';
import { type SaveOutcome, type Session, sessionState } from './session.ts';
import type { Telemetry } from './telemetry.ts';
import type { SessionValues, Storable } from './values.ts';

/** What a store's writes depend on; fixed for the life of the store. */
export interface WriterConfig {
  backend: SessionBackend;
  codec: CookieCodec;
  telemetry: Telemetry;
  /** The store's session defaults (what a lifetime of its own differs from). */
  defaults: Readonly<SessionOptions>;
  touchAfterMs: number;
  absoluteMaxAgeMs: number | undefined;
  maxValuesBytes: number;
  saveUninitialized: boolean;
  describeDevice: ((request: Request) => DeviceDetailsInput | undefined) | undefined;
  /** Told of each new cookie (a new or regenerated session), to warn of a Secure cookie over plain http. */
  insecureCookies: InsecureCookieWarning;
  /** Called after each write that stored a session (an insert, an update, a regeneration). */
  written(): void;
  /** At most this many live sessions per owner; undefined: no limit (see session-limit.ts). */
  sessionLimit: SessionLimit | undefined;
  /** Receives what fails in the background of a save (the store option `onError`). */
  onError: (error: unknown) => void;
  /** Runs one database call within the store's time bound. */
  withTimeout<T>(operation: string, call: (signal: AbortSignal | undefined) => Promise<T>): Promise<T>;
}

/** What one save of a session would write, validated and encoded before anything is written. */
interface Plan {
  content: SessionContent;
  delta: ContentDelta;
  owner: Owner;
  /** The owner differs from the one loaded. */
  ownerChanged: boolean;
  /** The flashes kept (an owner change from someone drops the loaded ones). */
  flashes: PendingFlash[];
  lifetime: Lifetime;
  /** What is stored of the lifetime: undefined while it is the store's default. */
  own: Lifetime | undefined;
  /**
   * This request set a lifetime other than the one in force when it loaded
   * (the stored one, or the store's default): only then is it written.
   */
  lifetimeChanged: boolean;
  /** No owner and no values (flashes at most): see `transientLifetimeMs` (lifetime.ts). */
  transient: boolean;
  /**
   * What this save stores is transient and exactly this request's view (a
   * new session, or an owner change away from someone, which no parallel
   * write of the old tenure survives): its expiry is capped.
   */
  capped: boolean;
  /** The owner this save signs in, when the session limit applies to it (see session-limit.ts). */
  signIn: ReturnType<OwnerLimit['signsIn']>;
}

/** Attempts of a write whose lifetime guard missed (another request changed the lifetime meanwhile). */
const maxLifetimeAttempts = 3;

/** The write steps of one store. */
export class SessionWriter<V extends Storable<V>> {
  readonly #config: WriterConfig;
  readonly #limit: OwnerLimit;

  constructor(config: WriterConfig) {
    this.#config = config;
    this.#limit = new OwnerLimit({ ...config, limit: config.sessionLimit });
  }

  /** Saves a session that is not ended and not being destroyed (see `SessionStore.save`). */
  async write(request: Request, target: CookieTarget, session: Session<V>): Promise<SaveOutcome> {
    const state = session[sessionState];
    for (let attempt = 1; ; attempt++) {
      const plan = this.#plan(session);
      if (plan.signIn !== undefined && attempt === 1 && (await this.#limit.refuses(plan.signIn))) {
        return end(target, session, 'limited', false);
      }
      if (session.id === '') {
        if (!this.#config.saveUninitialized && plan.content.values.size === 0 && plan.content.flashes.size === 0) {
          return skipEmpty(target, session);
        }
        return this.#create(request, target, session, plan);
      }
      const outcome = state.regenerating
        ? await this.#regenerate(request, target, session, plan)
        : await this.#update(target, session, plan);
      if (typeof outcome === 'string') return outcome;
      const write = outcome;
      if (write.outcome === 'converted' && attempt < maxLifetimeAttempts) {
        // A parallel request converted the record from the earlier format:
        // the conversion is deterministic, so what this request loaded is
        // what it converted, and a delta applies.
        state.legacy = false;
        continue;
      }
      if (write.outcome !== 'lifetime-changed' || attempt >= maxLifetimeAttempts) {
        if (write.outcome === 'lifetime-changed' || write.outcome === 'converted') {
          throw new SessionStoreError(`save: the session's lifetime changed under ${attempt} parallel writes in a row; nothing of this request was written`, {
            cause: undefined,
          });
        }
        return end(target, session, write.outcome === 'gone' ? 'expired' : 'superseded');
      }
      // Another request set the session's lifetime: this one did not, so it takes the stored one.
      const stored = write.lifetime ?? lifetimeOf(this.#config.defaults);
      session.options.maxAge = stored.maxAge;
      session.options.persistent = stored.persistent;
      state.ownLifetime = write.lifetime;
    }
  }

  /** Deletes the session and every successor it was regenerated into: a sign-out wins. */
  async delete(target: CookieTarget, session: Session<V>): Promise<SaveOutcome> {
    const state = session[sessionState];
    const id = session.id !== '' ? session.id : state.replacedId;
    if (id !== undefined) {
      await this.#config.withTimeout('delete', (signal) => this.#config.backend.deleteChain(id, signal));
      if (session.id !== '') this.#config.telemetry.sessionEnded();
    }
    await forgetTried(this.#config, session);
    return end(target, session, 'deleted');
  }

  /** Validates and encodes what a save of `session` would write. */
  #plan(session: Session<V>): Plan {
    const root: unknown = session.values;
    if (root === null || typeof root !== 'object' || Array.isArray(root)) {
      throw new SessionValuesError('session values must be a plain object');
    }
    const state = session[sessionState];
    // One read of each top-level value: the owner and the content come from the same snapshot.
    const values = { ...(root as SessionValues) };
    const owner = ownerOf(values);
    const loaded = state.stored ?? emptyContent;
    const ownerChanged = session.id !== '' && !sameOwner(owner, state.owner);
    const fromSomeone = ownerChanged && state.owner.user !== undefined;
    const flashes = keptFlashes(session, fromSomeone);
    // The limit is on what this request adds: parallel requests may have
    // stored more than it together, and a save that does not grow the
    // session further is never refused for it.
    const content = encodeContent(values, flashes, Math.max(this.#config.maxValuesBytes, contentSize(loaded)));
    const delta = deltaOf(loaded, content, fromSomeone || state.legacy ? 'replace' : 'merge');
    const lifetime = lifetimeOf(session.options);
    const inForce = state.ownLifetime ?? lifetimeOf(this.#config.defaults);
    const lifetimeChanged = session.id !== '' && lifetimeKey(lifetime) !== lifetimeKey(inForce);
    // With saveUninitialized, an empty session is what the app asked to keep.
    const transient = !this.#config.saveUninitialized && isTransient(content.values.size, owner.user);
    const capped = transient && (session.id === '' || ownerChanged);
    const own = ownLifetime(lifetime, this.#config.defaults);
    const signIn = this.#limit.signsIn(owner, session.id === '' || ownerChanged);
    return { content, delta, owner, ownerChanged, flashes, lifetime, own, lifetimeChanged, transient, capped, signIn };
  }

  /** A new session: a new id, one insert, its cookie. */
  async #create(request: Request, target: CookieTarget, session: Session<V>, plan: Plan): Promise<SaveOutcome> {
    const state = session[sessionState];
    const { id, device } = await newIdentity(this.#config, request, session, plan);
    const now = Date.now();
    const createdAt = new Date(now);
    const expiresAt = cappedExpiry(expiryAt(now, plan.lifetime, createdAt, this.#config.absoluteMaxAgeMs), now, plan.capped);
    const cookie = this.#sealedCookie(session, id, expiresAt);
    const signedInAt = plan.owner.user === undefined ? undefined : createdAt;
    const record = { content: plan.content, owner: plan.owner, epoch: 1, lifetime: plan.own, createdAt, expiresAt, device, signedInAt };
    await this.#config.withTimeout('insert', (signal) => this.#config.backend.insert(id, record, signal));
    if (!(await this.#standsAfter(plan, id))) return withdrawn(target, session);
    state.tried = undefined;
    this.#config.written();
    this.#config.telemetry.sessionCreated();
    session.id = id;
    session.handle = device.handle;
    session[sessionState].createdAt = createdAt;
    session[sessionState].regenerating = false;
    session[sessionState].signedInAt = signedInAt;
    this.#stored(session, plan, 1, expiresAt, plan.own);
    this.#send(target, session, cookie);
    this.#config.insecureCookies.cookieSent(request, session.options);
    return 'created';
  }

  /**
   * A regeneration: the session moves to a new id, guarded by the tenure
   * (and, unless this request set it, the lifetime) it loaded. Parallel
   * changes of the same tenure carry over (the delta is applied to what is
   * stored then), except after an owner change from someone.
   */
  async #regenerate(request: Request, target: CookieTarget, session: Session<V>, plan: Plan): Promise<SaveOutcome | LiveWrite> {
    const state = session[sessionState];
    const now = Date.now();
    const createdAt = state.createdAt ?? new Date(now);
    const full = expiryAt(now, plan.lifetime, createdAt, this.#config.absoluteMaxAgeMs);
    if (!(full.getTime() > now)) return this.#expireNow(target, session);
    const expiresAt = cappedExpiry(full, now, plan.capped);
    const { id, device } = await newIdentity(this.#config, request, session, plan);
    const cookie = this.#sealedCookie(session, id, expiresAt);
    // A new record never starts in tenure 0 (a record from before tenures), whose guard is "no tenure stored".
    const epoch = plan.ownerChanged ? state.epoch + 1 : Math.max(state.epoch, 1);
    const lifetime = plan.lifetimeChanged ? plan.own : state.ownLifetime;
    const signedInAt = signedInAtAfter(plan, state.signedInAt, now);
    const record = { content: plan.content, owner: plan.owner, epoch, lifetime, createdAt, expiresAt, device, signedInAt };
    const guard = { epoch: state.epoch, ...this.#lifetimeGuard(session, plan) };
    const carry = plan.delta.mode === 'merge' ? plan.delta : undefined;
    const write = await this.#config.withTimeout('replace', (signal) =>
      this.#config.backend.replace(session.id, id, record, guard, carry, signal),
    );
    if (write.outcome !== 'done') return write;
    if (!(await this.#standsAfter(plan, id))) return withdrawn(target, session);
    state.tried = undefined;
    this.#config.written();
    this.#config.telemetry.sessionRegenerated();
    session.id = id;
    session.handle = device.handle;
    state.regenerating = false;
    state.createdAt = createdAt;
    state.signedInAt = signedInAt;
    this.#stored(session, plan, epoch, expiresAt, lifetime);
    this.#send(target, session, cookie);
    this.#config.insecureCookies.cookieSent(request, session.options);
    return 'created';
  }

  /**
   * A loaded session: one guarded write when its content or owner changed,
   * its expiry is due to roll, its lifetime changed, or a cookie must be
   * (re)sent; none otherwise.
   */
  async #update(target: CookieTarget, session: Session<V>, plan: Plan): Promise<SaveOutcome | LiveWrite> {
    const state = session[sessionState];
    const now = Date.now();
    const storedExpiry = state.expiresAt ?? new Date(0);
    const full = expiryAt(now, plan.lifetime, state.createdAt ?? new Date(now), this.#config.absoluteMaxAgeMs);
    if (!(full.getTime() > now)) return this.#expireNow(target, session);
    const wantedExpiry = cappedExpiry(full, now, plan.capped);
    const { lifetimeChanged } = plan;
    // A transient save does not roll the expiry when it is due: emptied, a
    // session ends where it stood, and a parallel request that stores
    // something rolls it (its own plan is not transient). A cookie under an
    // older key pair is re-sealed with a refresh: the write checks the
    // session is still live.
    const refresh =
      lifetimeChanged ||
      plan.capped ||
      state.olderKey ||
      (!plan.transient && refreshDue(storedExpiry, wantedExpiry, plan.lifetime, this.#config.touchAfterMs));
    const cookieNeeded = refresh || !state.cookieDelivered;
    const contentChanged = !isEmptyDelta(plan.delta);
    if (!contentChanged && !plan.ownerChanged && !cookieNeeded) return 'unchanged';
    const expiresAt = refresh ? wantedExpiry : storedExpiry;
    const cookie = cookieNeeded ? this.#sealedCookie(session, session.id, expiresAt) : undefined;
    // A record of an earlier version is converted by the first write of its
    // content (guarded: only while it is unconverted), which gives it a
    // handle if it was from before handles.
    const converting = state.legacy && contentChanged;
    const handle = converting && session.handle === '' ? newHandle() : undefined;
    const change: LiveChange = {
      epoch: state.epoch,
      ...(converting ? { legacy: true } : {}),
      ...(contentChanged ? { content: plan.delta } : {}),
      ...(plan.ownerChanged ? { owner: plan.owner, signedInAt: signedInAtAfter(plan, state.signedInAt, now) ?? null } : {}),
      ...(refresh ? { expiresAt } : {}),
      ...(lifetimeChanged ? { lifetime: plan.own ?? null } : {}),
      ...(cookie === undefined ? {} : this.#lifetimeGuard(session, plan)),
      ...(handle === undefined ? {} : { handle }),
    };
    const write = await this.#config.withTimeout('update', (signal) => this.#config.backend.updateLive(session.id, change, signal));
    if (write.outcome !== 'done') return write;
    if (!(await this.#standsAfter(plan, session.id))) return withdrawn(target, session);
    this.#config.written();
    if (handle !== undefined) session.handle = handle;
    if (plan.ownerChanged) state.signedInAt = change.signedInAt ?? undefined;
    // A lifetime this request did not change stays as stored (even one that now equals the store's default).
    this.#stored(session, plan, plan.ownerChanged ? state.epoch + 1 : state.epoch, expiresAt, lifetimeChanged ? plan.own : state.ownLifetime);
    if (cookie !== undefined) this.#send(target, session, cookie);
    return contentChanged || plan.ownerChanged || refresh ? 'updated' : 'unchanged';
  }

  /**
   * The lifetime guard of a write whose expiry or cookie comes from the
   * lifetime this request loaded (it did not set one itself): none when it did.
   */
  #lifetimeGuard(session: Session<V>, plan: Plan): Pick<LiveChange, 'expectedLifetime'> {
    return plan.lifetimeChanged ? {} : { expectedLifetime: { lifetime: session[sessionState].ownLifetime } };
  }

  /** After a write that signed an owner in: whether session `id` stands under the session limit (true when the limit does not apply). */
  async #standsAfter(plan: Plan, id: string): Promise<boolean> {
    return plan.signIn === undefined || this.#limit.stands(plan.signIn, id);
  }

  /** The absolute lifetime is over: the record goes, like an expiry. */
  async #expireNow(target: CookieTarget, session: Session<V>): Promise<SaveOutcome> {
    await this.#config.withTimeout('delete', (signal) => this.#config.backend.deleteChain(session.id, signal));
    return end(target, session, 'expired');
  }

  /** Records what was written. The browser's cookie is stale until {@link #send} delivers the new one. */
  #stored(session: Session<V>, plan: Plan, epoch: number, expiresAt: Date, ownLifetime: Lifetime | undefined): void {
    const state = session[sessionState];
    state.storeId = session.id;
    state.stored = plan.content;
    state.flashes = plan.flashes;
    state.legacy = false;
    state.owner = plan.owner;
    state.epoch = epoch;
    state.ownLifetime = ownLifetime;
    state.expiresAt = expiresAt;
    state.olderKey = false;
  }

  /**
   * Hands the cookie to the target. If that throws (a Response's immutable
   * headers), the session knows its cookie was not delivered, so a retried
   * save sends it again, after a guarded write.
   */
  #send(target: CookieTarget, session: Session<V>, cookie: string): void {
    const state = session[sessionState];
    state.cookieDelivered = false;
    appendSetCookie(target, cookie);
    state.cookieDelivered = true;
    state.deadCookie = false;
  }

  /**
   * The Set-Cookie line naming `id`, sealed under the current key pair; built
   * before any write, so a save that fails here has written nothing. The
   * seal ends with the record.
   */
  #sealedCookie(session: Session<V>, id: string, expiresAt: Date): string {
    const sealed = this.#config.codec.seal(session.name, id, expiresAt.getTime() - Date.now());
    return sessionCookie(session.name, sealed, session.options, expiresAt);
  }
}

/** When the owner a save leaves signed in: now for a new owner, as before for the same one, none without one. */
function signedInAtAfter(plan: Plan, loaded: Date | undefined, now: number): Date | undefined {
  if (!plan.ownerChanged) return loaded;
  return plan.owner.user === undefined ? undefined : new Date(now);
}

/** The pending flashes a save keeps: after an owner change from someone, only the ones this request added. */
function keptFlashes(session: Session, fromSomeone: boolean): PendingFlash[] {
  const state = session[sessionState];
  if (!fromSomeone) return state.flashes;
  const loaded = state.stored ?? emptyContent;
  return state.flashes.filter((flash) => !loaded.flashes.has(flash.field));
}

