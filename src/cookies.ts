/**
 * The Set-Cookie lines the store sends, and where it sends them. Serialized
 * with the `cookie` package; the attributes come from a session's options.
 */
import { serialize } from 'cookie';
import type { SessionOptions } from './options.ts';

/**
 * Anything `save` can add a Set-Cookie header to: a Fetch `Headers`, or a
 * Hono `Context` (any object with `header(name, value, { append: true })`).
 */
export type CookieTarget =
  | Headers
  | { header(name: string, value: string, options: { append: true }): void };

/**
 * The cookie that carries a sealed id until `expiresAt`: with `Max-Age` and
 * `Expires` matching it, or neither for a browser-session cookie
 * (`persistent: false`).
 * @throws TypeError (from the `cookie` package) for attributes it refuses;
 * the store validates options first, so this does not happen for options it accepted.
 */
export function sessionCookie(name: string, sealed: string, options: SessionOptions, expiresAt: Date): string {
  const lifetime = options.persistent
    ? // Rounded up, as scs does: a live session's cookie never gets Max-Age=0 (browsers would drop it).
      { maxAge: Math.max(0, Math.ceil((expiresAt.getTime() - Date.now()) / 1000)), expires: expiresAt }
    : {};
  return serialize(name, sealed, { ...attributes(options), ...lifetime });
}

/** A cookie every browser deletes: empty, `Max-Age=0` and an `Expires` in the past. */
export function expiredCookie(name: string, options: SessionOptions): string {
  // The same few lines over and over (every forged or stale cookie is
  // answered with one): each is serialized once.
  const key = JSON.stringify([name, options.path, options.domain, options.secure, options.httpOnly, options.sameSite, options.partitioned]);
  let line = expiredCookies.get(key);
  if (line === undefined) {
    if (expiredCookies.size >= maxExpiredCookies) expiredCookies.clear();
    line = serialize(name, '', { ...attributes(options), maxAge: 0, expires: new Date(0) });
    expiredCookies.set(key, line);
  }
  return line;
}

const expiredCookies = new Map<string, string>();
/** Most clearing lines kept; a full map starts over, so odd options cannot grow it. */
const maxExpiredCookies = 64;

/**
 * Checks that `target` can take a Set-Cookie line (before a save writes anything).
 * @throws TypeError naming `label` otherwise (a Response, say: pass its `headers`).
 */
export function checkCookieTarget(target: unknown, label: string): asserts target is CookieTarget {
  if (target instanceof Headers) return;
  if (target !== null && typeof target === 'object' && typeof (target as { header?: unknown }).header === 'function') return;
  throw new TypeError(`${label}: the cookie target must be a Headers or a Hono Context (an object with a header method)`);
}

/** Appends one Set-Cookie line to a Headers or a Hono Context. */
export function appendSetCookie(target: CookieTarget, cookie: string): void {
  if (target instanceof Headers) target.append('Set-Cookie', cookie);
  else target.header('Set-Cookie', cookie, { append: true });
}

function attributes(options: SessionOptions) {
  return {
    path: options.path,
    httpOnly: options.httpOnly,
    secure: options.secure,
    sameSite: options.sameSite,
    partitioned: options.partitioned,
    ...(options.domain === undefined ? {} : { domain: options.domain }),
  };
}
