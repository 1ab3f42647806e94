/**
 * The demo app's security practice, in-process (`app.request`): CSRF checks
 * on form posts, security headers, a `__Host-` cookie, no lasting document
 * for anonymous visitors, password sign-in, and the admins-only page.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cookieName, createApp, type DemoValues } from '../../examples/demo/app.ts';
import { prometheusMetrics } from '../../examples/demo/telemetry.ts';
import { type DemoAccount, DemoUsers } from '../../examples/demo/users.ts';
import { MongoStore } from '../../src/index.ts';
import { openTestDatabase, type TestDatabase } from '../support/database.ts';
import { randomKey } from '../support/http.ts';

let t: TestDatabase;
let app: ReturnType<typeof createApp>;
const origin = 'https://demo.example';
const accounts: DemoAccount[] = [
  { name: 'alice', password: 'alice-Pa55word', admin: true },
  { name: 'bob', password: 'bob-Pa55word', admin: false },
  { name: 'dora', password: 'dora-Pa55word', admin: false },
  { name: 'metrics-user', password: 'metrics-Pa55word', admin: false },
];
/** The urlencoded sign-in form of `name` with its password (or `password`). */
const credentials = (name: string, password = accounts.find((account) => account.name === name)?.password ?? '') =>
  new URLSearchParams({ user: name, password }).toString();
const cookieOf = (response: Response) => response.headers.getSetCookie()[0]?.split(';')[0] ?? '';
const form = (body: string, headers: Record<string, string> = {}) => ({
  method: 'POST',
  body,
  headers: { 'content-type': 'application/x-www-form-urlencoded', origin, ...headers },
});

beforeAll(async () => {
  t = await openTestDatabase();
  const metrics = prometheusMetrics();
  const store = new MongoStore<DemoValues>(t.db, {
    keyPairs: [{ authentication: randomKey() }],
    telemetry: { meterProvider: metrics.meterProvider },
  });
  await store.init();
  app = createApp(store, metrics, await DemoUsers.create(accounts));
});
afterAll(() => t.close());

const documents = () => t.db.collection('sessions').countDocuments();

describe('the demo app', () => {
  it('refuses a cross-site sign-in (login CSRF) and stores nothing', async () => {
    for (const headers of [{ origin: 'https://evil.example' }, { origin: 'null' }, { 'sec-fetch-site': 'cross-site', origin: 'https://evil.example' }]) {
      const response = await app.request(`${origin}/login`, form(credentials('alice'), headers));
      expect(response.status).toBe(403);
      expect(response.headers.getSetCookie()).toEqual([]);
    }
    expect(await documents()).toBe(0);
  });

  it('signs in from its own origin with a __Host- cookie', async () => {
    const response = await app.request(`${origin}/login`, form(credentials('alice')));
    expect(response.status).toBe(303);
    const [cookie] = response.headers.getSetCookie();
    expect(cookie).toMatch(new RegExp(`^${cookieName}=Fe26`));
    expect(cookieName.startsWith('__Host-')).toBe(true);
    expect(cookie).toMatch(/; Path=\/;/);
    expect(cookie).not.toMatch(/Domain=/i);
    expect(await documents()).toBe(1);
  });

  it('sends security headers on every page', async () => {
    const response = await app.request(`${origin}/`);
    expect(response.headers.get('x-frame-options')).toBe('SAMEORIGIN');
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
    expect(response.headers.get('content-security-policy')).toMatch(/frame-ancestors 'none'/);
    expect(response.headers.get('referrer-policy')).toBe('no-referrer');
  });

  it('lets nothing anonymous create a document: 50 empty sign-ins and 50 visits store nothing', async () => {
    const before = await documents();
    for (let i = 0; i < 50; i++) {
      const response = await app.request(`${origin}/login`, form(i % 2 === 0 ? 'user=&password=x' : 'user=bob&password='));
      expect(response.status).toBe(400);
      expect(response.headers.getSetCookie()).toEqual([]);
      expect(await response.text()).toContain('Please enter a user name');
      expect((await app.request(`${origin}/`)).headers.getSetCookie()).toEqual([]);
    }
    expect(await documents()).toBe(before);
  });

  it('refuses control characters in a user name with a page, not a server error', async () => {
    const response = await app.request(`${origin}/login`, form('user=a%00b&password=x'));
    expect(response.status).toBe(400);
    expect(response.headers.getSetCookie()).toEqual([]);
  });

  it('anonymous sign-outs store nothing; a signed-in one leaves only a five-minute goodbye flash', async () => {
    const before = await documents();
    for (let i = 0; i < 20; i++) {
      expect((await app.request(`${origin}/logout`, form(''))).status).toBe(303);
    }
    expect(await documents()).toBe(before);

    const signIn = await app.request(`${origin}/login`, form(credentials('dora')));
    const cookie = cookieOf(signIn);
    const out = await app.request(`${origin}/logout`, form('', { cookie }));
    // One Set-Cookie for the name: the goodbye session's (it replaces the signed-in cookie).
    const [goodbye, ...more] = out.headers.getSetCookie();
    expect(more).toEqual([]);
    expect(goodbye).toMatch(new RegExp(`^${cookieName}=Fe26`));
    expect(goodbye).not.toMatch(/Max-Age|Expires/i); // a browser-session cookie
    const page = await app.request(`${origin}/`, { headers: { cookie: goodbye?.split(';')[0] ?? '' } });
    expect(await page.text()).toContain('You are signed out.');
    const anonymous = await t.db.collection('sessions').find({ user: { $exists: false } }).toArray();
    expect(anonymous.every((doc) => (doc.expiresAt as Date).getTime() <= Date.now() + 300_000)).toBe(true);
  });

  it('serves the store\'s OpenTelemetry metrics in Prometheus\'s format: sign-ins move the counters and the gauge', async () => {
    const response = await app.request(`${origin}/login`, form(credentials('metrics-user')));
    expect(response.status).toBe(303);
    const text = await (await app.request(`${origin}/metrics`)).text();
    expect(text).toMatch(/^# TYPE mongostore_session_created_total counter$/m);
    expect(text).toMatch(/^mongostore_session_created_total\{[^}]*db_system_name="mongodb"[^}]*\} [1-9]\d*$/m);
    expect(text).toMatch(/^# TYPE mongostore_session_active gauge$/m);
    const live = [...text.matchAll(/^mongostore_session_active\{([^}]*)\} (\d+)$/gm)];
    expect(live.some(([, labels]) => labels?.includes('mongostore_session_provider="password"'))).toBe(true);
    expect(live.reduce((sum, [, , value]) => sum + Number(value), 0)).toBe(
      await t.db.collection('sessions').countDocuments({ expiresAt: { $gt: new Date() }, replaced: { $exists: false } }),
    );
    expect(text).toMatch(/^# TYPE db_client_operation_duration histogram$/m);
    expect(text).toMatch(/^db_client_operation_duration_count\{[^}]*db_operation_name="insert"[^}]*\} [1-9]\d*$/m);
  });

  it('refuses a wrong password and an unknown user with one clear message, storing nothing', async () => {
    const before = await documents();
    for (const body of [credentials('alice', 'bob-Pa55word'), credentials('alice', 'alice-pa55word'), credentials('mallory', 'alice-Pa55word')]) {
      const response = await app.request(`${origin}/login`, form(body));
      expect(response.status).toBe(401);
      expect(response.headers.getSetCookie()).toEqual([]);
      const text = await response.text();
      expect(text).toContain('Wrong user name or password.');
      expect(text).not.toContain('Pa55word'); // the password is not sent back
    }
    expect(await documents()).toBe(before);
  });

  it('a wrong password for another account leaves the signed-in user as they were', async () => {
    const cookie = cookieOf(await app.request(`${origin}/login`, form(credentials('bob'))));
    const attempt = await app.request(`${origin}/login`, form(credentials('alice', 'guess'), { cookie }));
    expect(attempt.status).toBe(401);
    expect(attempt.headers.getSetCookie()).toEqual([]);
    const home = await (await app.request(`${origin}/`, { headers: { cookie } })).text();
    expect(home).toContain('<strong id="user">bob</strong>');
  });

  it('answers /admin/sessions to an admin only: 403 for anonymous and non-admin clients', async () => {
    const anonymous = await app.request(`${origin}/admin/sessions`);
    expect(anonymous.status).toBe(403);
    expect(anonymous.headers.getSetCookie()).toEqual([]);
    expect(await anonymous.json()).not.toHaveProperty('active');

    const bob = cookieOf(await app.request(`${origin}/login`, form(credentials('bob'))));
    const plain = await app.request(`${origin}/admin/sessions`, { headers: { cookie: bob } });
    expect(plain.status).toBe(403);
    expect(await (await app.request(`${origin}/`, { headers: { cookie: bob } })).text()).not.toContain('/admin/sessions');

    const alice = cookieOf(await app.request(`${origin}/login`, form(credentials('alice'))));
    const admin = await app.request(`${origin}/admin/sessions`, { headers: { cookie: alice } });
    expect(admin.status).toBe(200);
    const { active } = (await admin.json()) as { active: unknown };
    expect(Number.isInteger(active)).toBe(true);
    expect(await (await app.request(`${origin}/`, { headers: { cookie: alice } })).text()).toContain('href="/admin/sessions"');
  });

  it('a tampered revoke form (not a handle) answers with the devices page, not a server error', async () => {
    const cookie = cookieOf(await app.request(`${origin}/login`, form(credentials('bob'))));
    for (const handle of ['short', '$ne', 'A'.repeat(500), '']) {
      const response = await app.request(`${origin}/devices/revoke`, form(new URLSearchParams({ handle }).toString(), { cookie }));
      expect(response.status).toBe(303);
      expect(response.headers.get('location')).toBe('/devices');
    }
    const home = await (await app.request(`${origin}/`, { headers: { cookie } })).text();
    expect(home).toContain('<strong id="user">bob</strong>');
  });

  it('says on its pages that /metrics is public', async () => {
    expect(await (await app.request(`${origin}/`)).text()).toContain('The metrics page is public in this demo');
  });
});

describe('the demo app with a session limit (two devices per user here)', () => {
  let limited: ReturnType<typeof createApp>;
  beforeAll(async () => {
    const keyPairs = [{ authentication: randomKey() }];
    const db = t.client.db(`${t.db.databaseName}_limit`);
    const store = new MongoStore<DemoValues>(db, { keyPairs, maxSessionsPerUser: 2, telemetry: false });
    const refusing = new MongoStore<DemoValues>(db, { keyPairs, maxSessionsPerUser: 2, onSessionLimit: 'refuse', telemetry: false });
    await store.init();
    limited = createApp(store, prometheusMetrics(), await DemoUsers.create(accounts), { max: 2, refusing });
  });
  const signIn = (name: string) => limited.request(`${origin}/login`, form(credentials(name)));
  const home = async (cookie: string) => (await limited.request(`${origin}/`, { headers: { cookie } })).text();

  it('by default a third sign-in signs out the device used least recently; with the setting, it is refused', async () => {
    const first = cookieOf(await signIn('dora'));
    const second = cookieOf(await signIn('dora'));
    expect(await home(second)).toContain('<strong id="user">dora</strong>'); // a write: now the first is the least recently used
    const third = cookieOf(await signIn('dora'));
    expect(await home(first)).toContain('action="/login"'); // signed out
    expect(await home(third)).toContain('<strong id="user">dora</strong>');
    const devices = await (await limited.request(`${origin}/devices`, { headers: { cookie: third } })).text();
    expect(devices.match(/<tr class="device">/g)).toHaveLength(2);
    expect(devices).toContain('You may be signed in on at most 2 devices');
    expect(devices).toMatch(/value="evict-oldest" checked/);

    const setting = await limited.request(`${origin}/devices/limit`, form('policy=refuse', { cookie: third }));
    expect(setting.status).toBe(303);
    expect(await (await limited.request(`${origin}/devices`, { headers: { cookie: third } })).text()).toMatch(/value="refuse" checked/);
    const refused = await signIn('dora');
    expect(refused.status).toBe(409);
    expect(refused.headers.getSetCookie()).toEqual([]);
    expect(await refused.text()).toContain('dora is signed in on 2 devices already: sign out on one of them first');
    for (const cookie of [second, third]) expect(await home(cookie)).toContain('<strong id="user">dora</strong>');
    // Another user's limit is theirs: bob signs in as often as the limit allows, by the default.
    for (let i = 0; i < 3; i++) expect((await signIn('bob')).status).toBe(303);
    // A revoked device makes room: the sign-in goes through.
    const revoke = await limited.request(`${origin}/devices/revoke-others`, form('', { cookie: third }));
    expect(revoke.status).toBe(303);
    const fourth = await signIn('dora');
    expect(fourth.status).toBe(303);
    expect(await home(cookieOf(fourth))).toContain('<strong id="user">dora</strong>');
  });

  it('refuses a setting that is not one of the two, changing nothing', async () => {
    const cookie = cookieOf(await signIn('bob'));
    const response = await limited.request(`${origin}/devices/limit`, form('policy=%24ne', { cookie }));
    expect(response.status).toBe(303);
    expect(await (await limited.request(`${origin}/devices`, { headers: { cookie } })).text()).toMatch(/value="evict-oldest" checked/);
  });
});
