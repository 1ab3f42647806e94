/**
 * How `SessionStore.get` turns a request's cookie into a Session: unseal
 * (no database command for a cookie that fails), one read by id, the
 * absolute lifetime, the content decoded; every way it can lead nowhere is
 * a fresh session whose `error` says why.
 */
import { parse as parseCookies } from 'cookie';
import type { SessionBackend } from './backend.ts';
import type { CookieCodec } from './codec.ts';
import { decodeContent } from './content.ts';
import type { SessionOptions } from './options.ts';
import { ownerOf } from './owner.ts';
import { Session, type SessionLoadError, sessionState } from './session.ts';
import type { Telemetry } from './telemetry.ts';
import type { Storable } from './values.ts';

/** Load errors whose cookie leads nowhere and should be cleared (not `replaced`). */
const deadCookieErrors = new Set(['malformed', 'oversized', 'tampered', 'unknown-key', 'expired', 'wrong-name', 'not-found', 'unreadable']);

/** What loading depends on; fixed for the life of a store. */
export interface LoaderConfig {
  backend: SessionBackend;
  codec: CookieCodec;
  telemetry: Telemetry;
  defaults: Readonly<SessionOptions>;
  absoluteMaxAgeMs: number | undefined;
  withTimeout<T>(operation: string, call: (signal: AbortSignal | undefined) => Promise<T>): Promise<T>;
}

/** Loads sessions from requests for one store. */
export class SessionLoader {
  readonly #config: LoaderConfig;

  constructor(config: LoaderConfig) {
    this.#config = config;
  }

  /** The session the request's cookie `name` leads to, or a fresh one with `error` set. One read when the cookie unseals. */
  async load<V extends Storable<V>>(request: Request, name: string): Promise<Session<V>> {
    const session = new Session<V>(name, { ...this.#config.defaults });
    const header = request.headers.get('cookie');
    const value = header === null ? undefined : parseCookies(header)[name];
    if (value === undefined) return session;

    const rejected = (reason: SessionLoadError) => {
      this.#config.telemetry.cookieRejected(reason);
      return failed(session, reason);
    };
    const unsealed = this.#config.codec.unseal(name, value);
    if (!unsealed.ok) return rejected(unsealed.reason);
    const found = await this.#config.withTimeout('find', (signal) => this.#config.backend.find(unsealed.id, signal));
    if (found === undefined) return rejected('not-found');
    if (found.state === 'replaced') {
      session[sessionState].replacedId = unsealed.id;
      return rejected('replaced');
    }
    if (this.#config.absoluteMaxAgeMs !== undefined && found.createdAt.getTime() + this.#config.absoluteMaxAgeMs <= Date.now()) {
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
    this.#config.telemetry.cookieAccepted(unsealed.keyPairId, unsealed.sealedWithCurrentKey);
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
    state.signedInAt = found.signedInAt;
    state.ownLifetime = found.lifetime;
    state.cookieDelivered = true;
    state.olderKey = !unsealed.sealedWithCurrentKey;
    return session;
  }
}

function failed<V extends Storable<V>>(session: Session<V>, reason: NonNullable<Session<V>['error']>): Session<V> {
  session.error = reason;
  session[sessionState].deadCookie = deadCookieErrors.has(reason);
  return session;
}
