/**
 * The demo app: sign in with a password, a visit counter, flashes, sign out,
 * sign out everywhere, your devices (at most a few per user, with a setting
 * for what a sign-in past them does), an admins-only count of active
 * sessions, and the store's OpenTelemetry metrics. Pages are plain
 * server-rendered HTML; Hono's html helper escapes every interpolated value.
 *
 * It shows the practice we recommend: Hono's own csrf() (Origin and
 * Sec-Fetch-Site checks on form posts, so no cross-site login or logout) and
 * secureHeaders(), a `__Host-` cookie name, and no lasting document for
 * anonymous visitors (only a sign-in stores a session).
 */
import { Hono } from 'hono';
import { csrf } from 'hono/csrf';
import { html } from 'hono/html';
import { secureHeaders } from 'hono/secure-headers';
import type { HtmlEscapedString } from 'hono/utils/html';
import type { MongoStore } from '../../src/index.ts';
import { type SessionEnv, sessions } from '../../src/hono.ts';
import { deviceName, signedInAt, timeAgo } from './devices.ts';
import type { PrometheusMetrics } from './telemetry.ts';
import { type DemoUsers, maxPasswordLength } from './users.ts';

/** What the demo keeps in a session. */
export interface DemoValues extends Record<string, unknown> {
  user: string;
  provider: 'password';
  visits: number;
}

/**
 * `__Host-`: the browser accepts it only Secure, host-only and on path `/`,
 * so a sibling subdomain cannot plant a duplicate that shadows it.
 */
export const cookieName = '__Host-sid';
const provider = 'password';
const rememberSeconds = 90 * 24 * 60 * 60;

/** What a sign-in past the limit does (the store option `onSessionLimit`). */
export type LimitPolicy = 'evict-oldest' | 'refuse';

/**
 * The demo's session limit: `store` is built with `maxSessionsPerUser: max`
 * (and the default `'evict-oldest'`), `refusing` with the same and
 * `onSessionLimit: 'refuse'`, on the same collection and keys. An app picks
 * one policy for its store; the demo lets each user pick on the devices
 * page, and saves a sign-in with the store of that user's choice.
 */
export interface DemoLimit {
  max: number;
  refusing: MongoStore<DemoValues>;
}

/**
 * The app on `store`, signing in `users`; `/metrics` serves
 * `metrics.scrape()`, which should cover the MeterProvider the store was
 * given (see telemetry.ts).
 */
export function createApp(
  store: MongoStore<DemoValues>,
  metrics: Pick<PrometheusMetrics, 'scrape'>,
  users: DemoUsers,
  limit?: DemoLimit,
): Hono<SessionEnv<DemoValues>> {
  const app = new Hono<SessionEnv<DemoValues>>();
  /** Each user's choice of what a sign-in past the limit does; in memory, as the demo's accounts are. */
  const policies = new Map<string, LimitPolicy>();
  app.use(
    secureHeaders({
      contentSecurityPolicy: {
        defaultSrc: ["'none'"],
        styleSrc: ["'unsafe-inline'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
        baseUri: ["'none'"],
      },
    }),
  );
  app.use(csrf());
  app.use(sessions(store, { name: cookieName }));

  app.get('/', (c) => {
    const session = c.get('session');
    const flashes = session.flashes<string>();
    const { user } = session.values;
    if (user === undefined) return c.html(signInPage(flashes));
    session.values.visits = (session.values.visits ?? 0) + 1;
    const admin = users.isAdmin(user);
    return c.html(page(`Hello, ${user}`, flashes, html`
      <p>Signed in as <strong id="user">${user}</strong> (provider ${session.values.provider})${admin ? ', an admin' : ''}.</p>
      <p>Visits in this session: <strong id="visits">${session.values.visits}</strong></p>
      <form method="post" action="/logout"><button type="submit">Sign out</button></form>
      <form method="post" action="/logout-everywhere"><button type="submit">Sign out everywhere</button></form>
      <p><a href="/devices">Your devices</a>${admin ? html` · <a href="/admin/sessions">Active sessions</a>` : ''} · <a href="/metrics">Metrics</a></p>
      <p class="note">${metricsNote}</p>`));
  });

  // "Your devices": every session of this user, a revoke button each, and "sign out other devices".
  app.get('/devices', async (c) => {
    const session = c.get('session');
    const { user } = session.values;
    if (user === undefined) return c.redirect('/', 303);
    const devices = await store.listSessions(user, provider);
    const now = new Date();
    // The raw User-Agent stays in a tooltip; exact times in <time> and their tooltips.
    return c.html(page('Your devices', session.flashes<string>(), html`
      <table>
        <tr><th>Device</th><th>Signed in</th><th>Last seen</th><th></th></tr>
        ${devices.map((device) => html`<tr class="device">
          <td><span class="browser" title="${device.userAgent ?? ''}">${deviceName(device.userAgent)}</span>${device.handle !== '' && device.handle === session.handle ? html` <strong class="this-device">(this device)</strong>` : ''}</td>
          <td class="signed-in">${time(signedInAt(device), now)}</td><td class="last-seen">${time(device.lastSeenAt, now)}</td>
          <td>${device.handle === session.handle || device.handle === '' ? '' : html`<form method="post" action="/devices/revoke">
            <input type="hidden" name="handle" value="${device.handle}"><button type="submit">Revoke</button></form>`}</td>
        </tr>`)}
      </table>
      <form method="post" action="/devices/revoke-others"><button type="submit">Sign out other devices</button></form>
      ${limit === undefined ? '' : limitSetting(limit.max, policies.get(user) ?? 'evict-oldest')}
      <p><a href="/">Back</a></p>`));
  });

  // The setting: what a sign-in on one device more than the limit does.
  app.post('/devices/limit', async (c) => {
    const session = c.get('session');
    const { policy } = await c.req.parseBody();
    const { user } = session.values;
    if (user !== undefined && limit !== undefined && (policy === 'evict-oldest' || policy === 'refuse')) {
      policies.set(user, policy);
      session.addFlash(policy === 'refuse' ? 'A sign-in on one device too many will be refused.' : 'A sign-in on one device too many will sign out the one used least recently.');
    }
    return c.redirect('/devices', 303);
  });

  app.post('/devices/revoke', async (c) => {
    const session = c.get('session');
    const { handle } = await c.req.parseBody();
    const { user } = session.values;
    // Scoped to the signed-in user: a handle of another account ends nothing.
    if (user !== undefined && typeof handle === 'string') {
      // false: already ended, regenerated meanwhile under a new handle (the
      // list shows which), or not a handle at all (a tampered form).
      session.addFlash((await store.revokeSession(user, provider, handle)) ? 'Device signed out.' : 'That device is not in the list any more.');
    }
    return c.redirect('/devices', 303);
  });

  app.post('/devices/revoke-others', async (c) => {
    const session = c.get('session');
    if (session.values.user !== undefined) session.addFlash(`Signed out ${await store.revokeOtherSessions(session)} other device(s).`);
    return c.redirect('/devices', 303);
  });

  app.post('/login', async (c) => {
    const body = await c.req.parseBody();
    const user = typeof body.user === 'string' ? body.user.trim() : '';
    const password = typeof body.password === 'string' ? body.password : '';
    const session = c.get('session');
    // A failed sign-in is answered in place and changes no session: it stores
    // nothing for an anonymous visitor, and whoever was signed in stays so.
    // eslint-disable-next-line no-control-regex -- control characters are what is refused
    if (user === '' || user.length > 64 || /[\u0000-\u001f\u007f]/.test(user) || !user.isWellFormed() || password === '' || password.length > maxPasswordLength) {
      return c.html(signInPage([], { user, error: `Please enter a user name (1 to 64 printable characters) and a password (at most ${maxPasswordLength} characters).` }), 400);
    }
    if ((await users.authenticate(user, password)) === undefined) {
      // One message for an unknown name and a wrong password: it does not tell which names exist.
      return c.html(signInPage([], { user, error: 'Wrong user name or password. Nobody was signed in.' }), 401);
    }
    // A new id on sign-in: a session id planted before login is worthless after it.
    session.regenerate();
    session.values = { user, provider, visits: 0 };
    // "Remember me": 90 days, kept by the session on every later request;
    // otherwise a browser-session cookie (the document still expires after
    // the store's maxAge of inactivity).
    // Both set at every sign-in: a session keeps its lifetime across regenerate().
    Object.assign(
      session.options,
      body.remember === 'on' ? { maxAge: rememberSeconds, persistent: true } : { maxAge: store.options.maxAge, persistent: false },
    );
    session.addFlash(`Welcome, ${user}!`);
    if (limit !== undefined) {
      // Saved here, not by the middleware after the handler, to answer a 'limited' sign-in:
      // with 'refuse' at the limit, nothing was written and no cookie sent, so the browser
      // keeps the session it had; otherwise (parallel sign-ins took the places) the sign-in
      // was written and withdrawn, and its cookie is cleared.
      const refusing = policies.get(user) === 'refuse';
      if ((await (refusing ? limit.refusing : store).save(c.req, c, session)) === 'limited') {
        const error = refusing
          ? `${user} is signed in on ${limit.max} devices already: sign out on one of them first (Your devices).`
          : `${user} signed in on ${limit.max} other devices at the same moment: please sign in again.`;
        return c.html(signInPage([], { user, error }), 409);
      }
    }
    return c.redirect('/', 303);
  });

  app.post('/logout', async (c) => {
    const session = c.get('session');
    const signedIn = session.values.user !== undefined;
    session.destroy();
    if (signedIn) {
      // A fresh session in the same response carries the goodbye; anonymous,
      // so it lives five minutes, in a browser-session cookie.
      const goodbye = await store.new(c.req, cookieName);
      Object.assign(goodbye.options, { maxAge: 300, persistent: false });
      goodbye.addFlash('You are signed out.');
    }
    return c.redirect('/', 303);
  });

  app.post('/logout-everywhere', async (c) => {
    const session = c.get('session');
    if (session.values.user !== undefined) await store.expireSessions(session.values.user, provider);
    session.destroy();
    return c.redirect('/', 303);
  });

  // Admins only: an anonymous visitor and a signed-in user who is not an admin get 403.
  app.use('/admin/*', async (c, next) => {
    if (!users.isAdmin(c.get('session').values.user)) {
      return c.json({ error: 'Forbidden: only an admin may see this page. Sign in as one.' }, 403);
    }
    await next();
  });
  app.get('/admin/sessions', async (c) => c.json({ active: await store.getActiveSessionsCount() }));

  // The store's OpenTelemetry metrics (docs/metrics.md), for
  // Prometheus. Public in this demo, as its pages say: counts and timings,
  // no user's data; in production serve it to your scraper only.
  app.get('/metrics', async (c) =>
    c.text(await metrics.scrape(), 200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }),
  );

  return app;
}

const metricsNote = 'The metrics page is public in this demo (counts and timings, no user\'s data); in production, serve it to your Prometheus only.';

/** The sign-in form, with the flashes and a failed attempt's `error` above it, its `user` filled in. */
function signInPage(flashes: string[], { user = '', error }: { user?: string; error?: string } = {}) {
  return page('Sign in', flashes, html`
    ${error === undefined ? '' : html`<p class="flash error" role="alert">${error}</p>`}
    <form method="post" action="/login" class="sign-in">
      <label>User name <input name="user" value="${user}" required maxlength="64" autocomplete="username" ${user === '' ? 'autofocus' : ''}></label>
      <label>Password <input name="password" type="password" required maxlength="${maxPasswordLength}" autocomplete="current-password" ${user === '' ? '' : 'autofocus'}></label>
      <label><input type="checkbox" name="remember"> Remember me</label>
      <button type="submit">Sign in</button>
    </form>
    <p class="note">The demo's users and their passwords (new at every start) are printed where it was started. ${metricsNote}</p>`);
}

/** The devices page's setting for the session limit. */
function limitSetting(max: number, policy: LimitPolicy) {
  return html`<form method="post" action="/devices/limit" class="limit">
      <p>You may be signed in on at most ${max} devices. When you sign in on one more:</p>
      <label><input type="radio" name="policy" value="evict-oldest" ${policy === 'evict-oldest' ? 'checked' : ''}> sign out the device used least recently</label>
      <label><input type="radio" name="policy" value="refuse" ${policy === 'refuse' ? 'checked' : ''}> refuse the sign-in</label>
      <button type="submit">Save</button>
    </form>`;
}

/** A relative time ("5 minutes ago"), the exact one in its tooltip and datetime. */
function time(date: Date, now: Date) {
  const exact = date.toISOString();
  return html`<time datetime="${exact}" title="${exact}">${timeAgo(date, now)}</time>`;
}

function page(title: string, flashes: string[], body: HtmlEscapedString | Promise<HtmlEscapedString>) {
  return html`<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <title>${title} · mongostore demo</title>
    <style>
      body { font: 16px/1.5 system-ui, sans-serif; max-width: 40rem; margin: 3rem auto; padding: 0 1rem; }
      .flash { background: #e8f5e9; border: 1px solid #a5d6a7; padding: .5rem 1rem; }
      .flash.error { background: #ffebee; border-color: #ef9a9a; }
      form { display: inline-block; margin: .5rem .5rem .5rem 0; }
      form.sign-in label, form.limit label { display: block; margin: .25rem 0; }
      .note { color: #555; font-size: 14px; }
      table { border-collapse: collapse; margin: 1rem 0; font-size: 14px; }
      td, th { border-bottom: 1px solid #ddd; padding: .4rem .6rem; text-align: left; vertical-align: top; }
    </style>
  </head>
  <body>
    <h1>${title}</h1>
    ${flashes.map((message) => html`<p class="flash" role="status">${message}</p>`)}
    ${body}
  </body>
</html>`;
}
