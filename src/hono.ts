/**
 * Hono integration (`mongostore/hono`): a middleware that puts the request's
 * session on the context and saves it after the handler.
 *
 * Handlers that manage sessions themselves need no helper: the store takes
 * Hono's `c.req` as the request and the Context as the cookie target, i.e.
 * `await store.get(c.req, 'sid')` and `await store.save(c.req, c, session)`.
 */
import type { Context, MiddlewareHandler } from 'hono';
import { validateCookie } from './options.ts';
import type { SessionStore } from './session-store.ts';
import type { Session } from './session.ts';
import type { SessionValues } from './values.ts';

/**
 * The Hono environment the middleware provides: `c.get('session')` (or
 * `c.var.session`) is the request's Session, typed by `V`.
 */
export interface SessionEnv<V extends SessionValues = SessionValues> {
  Variables: { session: Session<V> };
}

/** Options of {@link sessions}. */
export interface SessionMiddlewareOptions {
  /** The cookie name. */
  name: string;
  /**
   * Save a new session whose values are still empty (creating a document
   * and a cookie for every visitor). Default false, as express-session
   * users configure it: a session is stored once it holds something.
   */
  saveUninitialized?: boolean | undefined;
}

/**
 * Loads the session named `options.name` before the handler (through the
 * store's per-request registry) and saves it after, adding any Set-Cookie to
 * the response however the handler built it (`c.text`, `c.json`,
 * `c.redirect`, or a returned `Response`, even one with immutable headers).
 * The store's rules hold: an unchanged session costs no write and no cookie,
 * and a new session is not stored while its values are empty (see
 * `saveUninitialized`).
 *
 * When the handler threw (Hono's `c.error` is set), the session is not
 * saved, so a half-done change is never stored. A failing load or save
 * (e.g. SessionStoreError) propagates to Hono's error handling.
 *
 * @throws SessionOptionsError at once, when mounting, for a cookie name
 * browsers reject or one whose prefix the store's options break (`__Host-`
 * needs `secure`, path `/` and no domain).
 */
export function sessions<V extends SessionValues = SessionValues>(
  store: SessionStore<V>,
  options: SessionMiddlewareOptions,
): MiddlewareHandler<SessionEnv<V>> {
  validateCookie(options.name, store.options);
  return async (c, next) => {
    const session = await store.get(c.req, options.name);
    c.set('session', session);
    await next();
    if (c.error !== undefined) return;
    if (!options.saveUninitialized && session.id === '' && Object.keys(session.values).length === 0) {
      return;
    }
    const headers = new Headers();
    await store.save(c.req, headers, session);
    appendCookies(c, headers.getSetCookie());
  };
}

function appendCookies(c: Context, cookies: string[]): void {
  if (cookies.length === 0) return;
  try {
    for (const cookie of cookies) c.res.headers.append('Set-Cookie', cookie);
  } catch {
    // Immutable headers (Response.redirect, a fetched Response): re-wrap.
    // Hono's res setter copies the old headers into the new response.
    c.res = new Response(c.res.body, c.res);
    for (const cookie of cookies) c.res.headers.append('Set-Cookie', cookie);
  }
}
