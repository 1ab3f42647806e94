/**
 * Hono integration (`mongostore/hono`): a middleware that puts the request's
 * session on the context and saves it after the handler.
 *
 * Handlers that manage sessions themselves need no helper: the store takes
 * Hono's `c.req` as the request and the Context as the cookie target, i.e.
 * `await store.get(c.req, 'sid')` and `await store.save(c.req, c, session)`.
 */
import type { Context, MiddlewareHandler } from 'hono';
import { SessionOptionsError } from './errors.ts';
import { checkKnownKeys, validateCookie } from './options.ts';
import type { SessionStore } from './session-store.ts';
import type { Session } from './session.ts';
import type { SessionValues, Storable } from './values.ts';

/**
 * The Hono environment the middleware provides: `c.get(key)` (or
 * `c.var[key]`) is the request's Session, typed by `V`; `key` is the
 * middleware's `contextKey`, `'session'` by default.
 */
export interface SessionEnv<V extends Storable<V> = SessionValues, K extends string = 'session'> {
  Variables: { [P in K]: Session<V> };
}

/** Options of {@link sessions}. */
export interface SessionMiddlewareOptions<K extends string = 'session'> {
  /** The cookie name. */
  name: string;
  /**
   * The context variable that holds the session. Default `'session'`; give
   * each of several mounted middlewares (one per cookie) its own.
   */
  contextKey?: K | undefined;
}

/**
 * Loads the session named `options.name` before the handler (through the
 * store's per-request registry) and puts it on the context; after the
 * handler, saves every session the store handed out for the request, in the
 * order they were first asked for (the store's `saveAll`: a second named
 * session from `store.get(c.req, 'prefs')`, and a fresh one from `store.new`
 * after a `destroy()`), adding any Set-Cookie to the response however the
 * handler built it (`c.text`, `c.json`, `c.redirect`, or a returned
 * `Response`, even one with immutable headers). The store's rules hold: an
 * unchanged session costs no write and no cookie, a new session is not
 * stored while it is empty (the store's `saveUninitialized`), and a dead
 * cookie the request carried is cleared.
 *
 * When the handler threw (Hono's `c.error` is set), nothing is saved, so a
 * half-done change is never stored. A failing load or save (e.g.
 * SessionStoreError) propagates to Hono's error handling.
 *
 * @throws SessionOptionsError at once, when mounting, for an unknown option,
 * an empty `contextKey`, a cookie name browsers reject or one whose prefix
 * the store's options break (`__Host-` needs `secure`, path `/` and no domain).
 */
export function sessions<V extends Storable<V> = SessionValues, K extends string = 'session'>(
  store: SessionStore<V>,
  options: SessionMiddlewareOptions<K>,
): MiddlewareHandler<SessionEnv<V, K>> {
  checkKnownKeys(options, ['name', 'contextKey'], 'sessions()');
  validateCookie(options.name, store.options);
  const key = (options.contextKey ?? 'session') as K;
  if (typeof key !== 'string' || key === '') throw new SessionOptionsError('sessions(): contextKey must be a non-empty string');
  return async (c, next) => {
    const session = await store.get(c.req, options.name);
    (c.set as (key: K, value: Session<V>) => void)(key, session);
    await next();
    if (c.error !== undefined) return;
    // The saves' Set-Cookie lines, collected in a plain list (a Headers
    // object per request costs more than a cached read on Node 20).
    const cookies: string[] = [];
    try {
      await store.saveAll(c.req, { header: (_name, value) => void cookies.push(value) });
    } finally {
      // Even when a later save fails: the cookies of the saves that were
      // written must reach the browser (a regenerated id, say).
      appendCookies(c, cookies);
    }
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
