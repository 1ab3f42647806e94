/**
 * When a session's document expires: `maxAge` of inactivity (rolled forward
 * by refreshes), never past `absoluteMaxAge` after the session was created.
 */
import type { Lifetime } from './backend.ts';
import type { SessionOptions } from './options.ts';

/** The lifetime a save stores: `maxAge` rounded up to whole seconds (as the cookie's Max-Age is), and `persistent`. */
export function lifetimeOf(options: SessionOptions): Lifetime {
  return { maxAge: Math.ceil(options.maxAge), persistent: options.persistent };
}

/**
 * What a save stores of a session's lifetime: nothing (undefined) while it
 * is the store's default, so that a later change of the default reaches the
 * session; the lifetime itself once the app set its own.
 */
export function ownLifetime(lifetime: Lifetime, defaults: SessionOptions): Lifetime | undefined {
  const fallback = lifetimeOf(defaults);
  return lifetime.maxAge === fallback.maxAge && lifetime.persistent === fallback.persistent ? undefined : lifetime;
}

/** A stored lifetime as comparable text, to tell whether a save changes it. */
export function lifetimeKey(lifetime: Lifetime | undefined): string {
  return lifetime === undefined ? 'default' : `${lifetime.maxAge}:${lifetime.persistent}`;
}

/**
 * The expiry a save writes now: `maxAge` from now, capped at `createdAt`
 * plus `absoluteMaxAgeMs` (when set).
 */
export function expiryAt(now: number, lifetime: Lifetime, createdAt: Date, absoluteMaxAgeMs: number | undefined): Date {
  const rolling = now + lifetime.maxAge * 1000;
  return new Date(absoluteMaxAgeMs === undefined ? rolling : Math.min(rolling, createdAt.getTime() + absoluteMaxAgeMs));
}

/**
 * Whether an unchanged session's expiry is due to move: once it would move
 * by at least `touchAfterMs`, and at least every half lifetime, so a
 * short-lived session is still refreshed in time.
 */
export function refreshDue(stored: Date, wanted: Date, lifetime: Lifetime, touchAfterMs: number): boolean {
  return Math.abs(wanted.getTime() - stored.getTime()) >= Math.min(touchAfterMs, (lifetime.maxAge * 1000) / 2);
}

/**
 * How long a transient session lives at most when it is created, or signed
 * out by clearing its owner: one with no owner and no values, holding
 * flashes at most (a "You are signed out" after a sign-out). Its flashes are
 * for the next request; kept for the store's 30 days, every sign-out would
 * leave an empty record behind. A save that stores a value rolls it to the
 * full lifetime; one that empties a session does not roll it. Not with the
 * store's `saveUninitialized`, which asks to keep empty sessions.
 */
export const transientLifetimeMs = 60 * 60 * 1000;

/** Whether a session with these values' count and owner is transient (see {@link transientLifetimeMs}). */
export function isTransient(valueCount: number, user: string | undefined): boolean {
  return valueCount === 0 && user === undefined;
}

/** `expiry`, capped at {@link transientLifetimeMs} from `now` for a transient session. */
export function cappedExpiry(expiry: Date, now: number, transient: boolean): Date {
  return transient && expiry.getTime() > now + transientLifetimeMs ? new Date(now + transientLifetimeMs) : expiry;
}
