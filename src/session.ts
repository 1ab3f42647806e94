/**
 * A session: its values, its cookie options, and the bookkeeping the store
 * needs to decide what `save` must write.
 */
import { randomBytes } from 'node:crypto';
import type { UnsealFailure } from './codec.ts';
import type { SessionOptions } from './options.ts';
import type { SessionValues } from './values.ts';

/**
 * Why `get` or `new` gave a fresh session although the request carried a
 * cookie of that name: the cookie did not unseal (see {@link UnsealFailure}),
 * or its document is missing, expired or force-expired (`'not-found'`), or it
 * holds values that cannot be decoded (`'unreadable'`).
 */
export type SessionLoadError = UnsealFailure | 'not-found' | 'unreadable';

/** @internal The store's bookkeeping for one session. */
export interface SessionState {
  /** Encoded values as last read or written; compared on save to skip writes. */
  storedValues: string | undefined;
  /** The document's expiry as last read or written. */
  expiresAt: Date | undefined;
  /** Whether the cookie the browser holds was sealed with the current key pair. */
  sealedWithCurrentKey: boolean;
  /** `regenerate()` was called: the next save replaces the document under a new id. */
  regenerating: boolean;
  /** Deleted (maxAge <= 0, destroy(), or gone from the database): terminal. */
  ended: boolean;
}

/** @internal Key of the store's bookkeeping on a Session. */
export const sessionState: unique symbol = Symbol('mongostore.sessionState');

/**
 * One named session of one request. Change `values` (and, if needed,
 * `options`), then call the store's `save`.
 *
 * @typeParam V the shape of `values`; every key is optional, since a fresh
 * session starts empty.
 */
export class Session<V extends SessionValues = SessionValues> {
  /** The cookie name this session is stored under. */
  readonly name: string;
  /**
   * The session id, a 256-bit random url-safe string; `''` for a new session
   * until its first save. Never put it in a page or a URL: the cookie
   * carries it sealed.
   */
  id = '';
  /** The session's data. JSON-compatible values and Dates. */
  values: Partial<V> = {};
  /** This session's own copy of the store's options. */
  options: SessionOptions;
  /** True when no stored session was found for the request's cookie. */
  isNew = true;
  /**
   * Set when the request carried a cookie of this name that did not lead to
   * a stored session; `undefined` when it did, or when there was no cookie.
   */
  error: SessionLoadError | undefined;

  /** @internal */
  readonly [sessionState]: SessionState = {
    storedValues: undefined,
    expiresAt: undefined,
    sealedWithCurrentKey: false,
    regenerating: false,
    ended: false,
  };

  /** @internal Sessions come from the store's `get` or `new`. */
  constructor(name: string, options: SessionOptions) {
    this.name = name;
    this.options = options;
  }

  /** Appends a flash message under `key` (default `'_flash'`). */
  addFlash(value: unknown, key = '_flash'): void {
    const values = this.values as Record<string, unknown>;
    const existing = values[key];
    values[key] = Array.isArray(existing) ? [...(existing as unknown[]), value] : [value];
  }

  /**
   * Returns the flash messages under `key` (default `'_flash'`) and removes
   * them; the removal is stored by the next save. An empty array when none.
   */
  flashes<T = unknown>(key = '_flash'): T[] {
    const values = this.values as Record<string, unknown>;
    const existing = values[key];
    if (existing === undefined) return [];
    delete values[key];
    return Array.isArray(existing) ? (existing as T[]) : [existing as T];
  }

  /**
   * Gives the session a new id on its next save and deletes the document
   * under the old one, keeping the values. Call it when privileges change,
   * above all on sign-in: it defeats session fixation. If the old document
   * was deleted or expired in the meantime (a forced logout, a `destroy()`
   * by another request), that save resolves `'expired'` and nothing stays
   * live: a signed-out session never comes back under a new id.
   */
  regenerate(): void {
    if (this.id !== '') this[sessionState].regenerating = true;
  }

  /**
   * Ends the session: the next save deletes its document and expires the
   * cookie, like `options.maxAge = 0`. Terminal: a later save of this object
   * writes nothing, so no code path can bring a signed-out session back. Use
   * the store's `new` for a fresh session in the same request.
   */
  destroy(): void {
    this.options.maxAge = 0;
  }
}

/** A new session id: 256 bits from the CSPRNG, base64url (43 characters). */
export function newSessionId(): string {
  return randomBytes(32).toString('base64url');
}
