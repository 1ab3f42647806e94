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
   * Lifetime in seconds of both the document and the cookie. Default 30 days.
   * `maxAge <= 0` on `save` deletes the session and expires the cookie.
   */
  maxAge: number;
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
  secure: true,
  httpOnly: true,
  sameSite: 'lax',
  partitioned: false,
});

/**
 * The defaults overridden by `overrides`, validated.
 * @throws SessionOptionsError for a value of the wrong type or a combination
 * browsers reject (see {@link validateCookie}).
 */
export function resolveSessionOptions(overrides: Partial<SessionOptions> = {}): SessionOptions {
  const options: SessionOptions = { ...defaultSessionOptions };
  for (const [key, value] of Object.entries(overrides)) {
    if (value !== undefined) Object.assign(options, { [key]: value });
  }
  validateAttributes(options);
  return options;
}

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
  if (typeof options.maxAge !== 'number' || Number.isNaN(options.maxAge)) {
    throw new SessionOptionsError('maxAge must be a number of seconds');
  }
  if (typeof options.path !== 'string' || !options.path.startsWith('/')) {
    throw new SessionOptionsError("path must be a string starting with '/'");
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
