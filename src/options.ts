/**
 * Cookie attributes and lifetime of a session, their defaults, and the rules
 * browsers enforce on them, checked up front so a misconfiguration fails
 * loudly instead of a browser silently dropping the cookie.
 */
import { SessionOptionsError } from './errors.ts';

/**
 * Options of one session: its cookie's attributes and its lifetime. Every
 * session gets its own copy of the store's options and may change it before
 * `save` (for example a longer `maxAge` for "remember me").
 */
export interface SessionOptions {
  /** Cookie `Path`. Default `'/'`. */
  path: string;
  /** Cookie `Domain`; unset (host-only) by default. */
  domain?: string | undefined;
  /**
   * Lifetime in seconds of both the document and the cookie, counted from
   * the session's last refresh (see `touchAfter`). Default 30 days; at most
   * 400 days (browsers cap a cookie's lifetime there). A fraction is rounded
   * up to whole seconds for both. `maxAge <= 0` on `save` deletes the
   * session and expires the cookie; the store's own default must be
   * positive. Set on one session (e.g. "remember me"), it is stored with
   * the session and holds on its later requests.
   */
  maxAge: number;
  /**
   * `false`: a browser-session cookie (no `Max-Age`/`Expires`), gone when
   * the browser closes, while the document still expires after `maxAge` of
   * inactivity. Default `true`. Stored with the session like `maxAge`.
   */
  persistent: boolean;
  /** Cookie `Secure`. Default `true`. */
  secure: boolean;
  /** Cookie `HttpOnly`. Default `true`. */
  httpOnly: boolean;
  /** Cookie `SameSite`. Default `'lax'`. */
  sameSite: 'lax' | 'strict' | 'none';
  /** Cookie `Partitioned` (CHIPS); requires `secure`. Default `false`. */
  partitioned: boolean;
}

/** The defaults: secure, host-only, 30 days, SameSite=Lax. */
export const defaultSessionOptions: Readonly<SessionOptions> = Object.freeze({
  path: '/',
  maxAge: 30 * 24 * 60 * 60,
  persistent: true,
  secure: true,
  httpOnly: true,
  sameSite: 'lax',
  partitioned: false,
});

/**
 * The defaults overridden by `overrides`, validated.
 * @throws SessionOptionsError when `overrides` is not a plain object, for
 * an unknown option, a value of the wrong
 * type, or a combination browsers reject (see {@link validateCookie}).
 */
export function resolveSessionOptions(overrides: Partial<SessionOptions> = {}): SessionOptions {
  const given: unknown = overrides; // checked as unknown: callers may not use TypeScript
  const prototype = given !== null && typeof given === 'object' ? (Object.getPrototypeOf(given) as unknown) : undefined;
  if (prototype !== Object.prototype && prototype !== null) {
    // 42, true, a function, an array: nothing to read options from, and ignoring it would hide the mistake.
    throw new SessionOptionsError(`options must be an object of session options, not ${describeValue(given)}`);
  }
  const options: SessionOptions = { ...defaultSessionOptions };
  for (const [key, value] of Object.entries(overrides)) {
    // Own keys only, and only known ones: a typo ('maxage') or '__proto__' is refused, not ignored.
    if (!Object.hasOwn(defaultSessionOptions, key) && key !== 'domain') {
      throw new SessionOptionsError(`unknown session option ${JSON.stringify(key)}`);
    }
    if (value !== undefined) Object.defineProperty(options, key, { value, enumerable: true, writable: true, configurable: true });
  }
  validateAttributes(options);
  if (options.maxAge <= 0) {
    throw new SessionOptionsError('the store\'s default maxAge must be > 0 (set maxAge <= 0 on one session to delete it)');
  }
  return options;
}

/** Longest lifetime in seconds: RFC 6265bis caps cookies at 400 days. */
export const maxMaxAge = 400 * 24 * 60 * 60;

/** RFC 6265 path-value: any CHAR except CTLs and ';'. */
const pathPattern = /^\/[\u0020-\u003A\u003C-\u007E]*$/;
/** A host name, optionally with a leading dot: labels of letters, digits and hyphens. */
const domainPattern = /^\.?[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/**
 * Checks a cookie name with its options against the rules browsers apply.
 * @throws SessionOptionsError naming the broken rule.
 */
export function validateCookie(name: string, options: SessionOptions): void {
  if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(name)) {
    throw new SessionOptionsError(`invalid cookie name ${JSON.stringify(name)}`);
  }
  validateAttributes(options);
  if (name.startsWith('__Secure-') && !options.secure) {
    throw new SessionOptionsError(`a cookie named ${name} requires secure: true`);
  }
  if (name.startsWith('__Host-')) {
    if (!options.secure) throw new SessionOptionsError(`a cookie named ${name} requires secure: true`);
    if (options.domain !== undefined) {
      throw new SessionOptionsError(`a cookie named ${name} must not set a domain`);
    }
    if (options.path !== '/') throw new SessionOptionsError(`a cookie named ${name} requires path '/'`);
  }
}

function validateAttributes(options: SessionOptions): void {
  if (typeof options.maxAge !== 'number' || !Number.isFinite(options.maxAge) || options.maxAge > maxMaxAge) {
    throw new SessionOptionsError(`maxAge must be a finite number of seconds, at most ${maxMaxAge} (400 days)`);
  }
  if (typeof options.path !== 'string' || !pathPattern.test(options.path)) {
    throw new SessionOptionsError("path must start with '/' and hold no ';' or control characters");
  }
  if (options.domain !== undefined && (typeof options.domain !== 'string' || !domainPattern.test(options.domain))) {
    throw new SessionOptionsError(`domain must be a host name, not ${JSON.stringify(options.domain)}`);
  }
  for (const flag of ['secure', 'httpOnly', 'partitioned', 'persistent'] as const) {
    if (typeof options[flag] !== 'boolean') throw new SessionOptionsError(`${flag} must be true or false`);
  }
  if (!['lax', 'strict', 'none'].includes(options.sameSite)) {
    throw new SessionOptionsError("sameSite must be 'lax', 'strict' or 'none'");
  }
  if (options.sameSite === 'none' && !options.secure) {
    throw new SessionOptionsError("sameSite 'none' requires secure: true");
  }
  if (options.partitioned && !options.secure) {
    throw new SessionOptionsError('partitioned requires secure: true');
  }
}

/**
 * Refuses keys a configuration object does not know: a typo such as
 * `absoluteMaxage` would otherwise silently switch a setting off.
 * @throws SessionOptionsError naming the first unknown key.
 */
export function checkKnownKeys(config: object, known: readonly string[], label: string): void {
  for (const key of Object.keys(config)) {
    if (!known.includes(key)) throw new SessionOptionsError(`${label}: unknown option ${JSON.stringify(key)}`);
  }
}

/** A short description of a value for an error message: its kind, never its content. */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value !== 'object') return typeof value;
  const prototype: unknown = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null ? 'an object' : 'an instance of a class';
}
