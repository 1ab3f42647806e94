/**
 * The demo app (`npm start`'s program) in a real browser: Debian's Chromium
 * driven by playwright-core, against the app on loopback and the test run's
 * MongoDB server. Served on http://localhost, which browsers treat as a
 * trustworthy origin, so the Secure cookie default stays on. The demo's
 * users and their passwords (new at every start) are read from what it
 * prints, as a person trying it would.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { MongoClient } from 'mongodb';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';

const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const outputDir = join(import.meta.dirname, '..', '..', 'test-results');
const database = `demo_e2e_${randomBytes(4).toString('hex')}`;

let app: ChildProcess;
let appOutput = '';
let baseUrl: string;
/** The demo users' passwords, as the demo printed them; alice is the admin. */
const passwords = new Map<string, string>();
let browser: Browser;
let client: MongoClient;

beforeAll(async () => {
  if (!existsSync(chromiumPath)) {
    throw new Error(
      `No Chromium at ${chromiumPath}: install Debian's chromium and chromium-driver packages ` +
        '(npm test does, through scripts/setup.sh), or set CHROMIUM_PATH.',
    );
  }
  const uri = inject('mongoUri');
  client = new MongoClient(uri);
  app = spawn(process.execPath, ['--import', 'tsx', 'examples/demo/main.ts'], {
    env: {
      ...process.env,
      MONGODB_URI: uri,
      MONGOSTORE_DB: database,
      MONGOSTORE_KEYS: randomBytes(32).toString('base64url'),
      PORT: '0',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  app.stderr?.on('data', (chunk: Buffer) => {
    appOutput += chunk.toString();
  });
  baseUrl = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the demo did not start:\n${appOutput}`)), 30_000);
    createInterface({ input: app.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      appOutput += `${line}\n`;
      const user = /^ {2}(\w+) +password: (\S+)/.exec(line);
      if (user?.[1] && user[2]) passwords.set(user[1], user[2]);
      const match = /^Listening on (http:\/\/localhost:\d+)/.exec(line);
      if (match?.[1]) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    app.once('exit', (code) => reject(new Error(`the demo exited with ${code}:\n${appOutput}`)));
  });

  // launch() starts Chromium on a fresh temporary profile (user-data dir) of its own.
  browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}, 90_000);

afterAll(async () => {
  await browser?.close();
  // Not exitCode: Deno leaves it null for a child that was sent a signal.
  if (app && app.exitCode === null && app.signalCode === null) {
    const exited = new Promise((resolve) => app.once('exit', resolve));
    app.kill('SIGTERM');
    await exited;
  }
  await client?.db(database).dropDatabase().catch(() => {});
  await client?.close();
});

/** Fills in and sends the sign-in form on a new page; `password` defaults to the user's own. */
async function submitSignIn(context: BrowserContext, user: string, options: { password?: string; remember?: boolean } = {}): Promise<Page> {
  const page = await context.newPage();
  await page.goto(baseUrl);
  await page.fill('input[name=user]', user);
  await page.fill('input[name=password]', options.password ?? passwordOf(user));
  if (options.remember) await page.check('input[name=remember]');
  await page.click('button[type=submit]');
  return page;
}

async function signIn(context: BrowserContext, user: string, remember = false): Promise<Page> {
  const page = await submitSignIn(context, user, { remember });
  await page.waitForSelector('#user');
  return page;
}

function passwordOf(user: string): string {
  const password = passwords.get(user);
  if (password === undefined) throw new Error(`the demo printed no password for ${user}:\n${appOutput}`);
  return password;
}

const sessions = () => client.db(database).collection<{ _id: string; user?: string; userAgent?: string; createdAt: Date; updatedAt: Date }>('sessions');
/** Earlier tests may have left sessions of `user`: a test that counts them starts from none. */
const noSessionsOf = async (user: string) => {
  await sessions().deleteMany({ user });
};

const firefoxOnWindows = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0';
const safariOnIphone =
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1';

describe('the demo app in Chromium', () => {
  it('prints its users with their passwords at start, alice the admin', () => {
    expect([...passwords.keys()]).toEqual(['alice', 'bob', 'carol', 'dave']);
    expect(appOutput).toMatch(/^ {2}alice +password: \S+ +\(admin/m);
  });

  it('signs in with a flash, counts visits, and keeps only a sealed token in a secure cookie', async () => {
    await noSessionsOf('alice');
    const context = await browser.newContext();
    const page = await signIn(context, 'alice');
    expect(await page.textContent('#user')).toBe('alice');
    expect(await page.textContent('.flash')).toBe('Welcome, alice!');
    expect(await page.textContent('#visits')).toBe('1');

    await page.reload();
    expect(await page.textContent('#visits')).toBe('2');
    expect(await page.locator('.flash').count()).toBe(0);

    const [cookie, ...others] = await context.cookies();
    expect(others).toEqual([]);
    expect(cookie).toMatchObject({ name: '__Host-sid', httpOnly: true, secure: true, sameSite: 'Lax', path: '/' });
    expect(cookie?.value).toMatch(/^Fe26\.2\*/);
    const docs = await sessions().find({ user: 'alice' }).toArray();
    expect(docs).toHaveLength(1);
    expect(cookie?.value).not.toContain(docs[0]?._id);
    expect(cookie?.value).not.toContain('alice');
    expect(cookie?.value).not.toContain(passwordOf('alice'));

    await mkdir(outputDir, { recursive: true });
    await page.screenshot({ path: join(outputDir, 'demo-signed-in.png'), fullPage: true });
    await context.close();
  });

  it('refuses a wrong password with a message: no cookie, no session, the form kept', async () => {
    const context = await browser.newContext();
    const started = new Date();
    for (const [user, password] of [['bob', passwordOf('carol')], ['bob', `${passwordOf('bob')}x`], ['mallory', passwordOf('alice')]] as const) {
      const page = await submitSignIn(context, user, { password });
      await page.waitForSelector('.error');
      expect(await page.textContent('.error')).toBe('Wrong user name or password. Nobody was signed in.');
      expect(await page.inputValue('input[name=user]')).toBe(user);
      expect(await page.inputValue('input[name=password]')).toBe('');
      expect(await page.locator('#user').count()).toBe(0);
      await mkdir(outputDir, { recursive: true });
      await page.screenshot({ path: join(outputDir, 'demo-wrong-password.png'), fullPage: true });
      await page.close();
    }
    expect(await context.cookies()).toEqual([]);
    expect(await sessions().countDocuments({ createdAt: { $gte: started } })).toBe(0);

    // Signed in, a wrong password for another account changes nothing. (A
    // signed-in user sees no sign-in form: the page posts one it makes.)
    const page = await signIn(context, 'bob');
    const [cookie] = await context.cookies();
    await page.evaluate((fields) => {
      const form = document.createElement('form');
      form.method = 'post';
      form.action = '/login';
      for (const [name, value] of Object.entries(fields)) form.append(Object.assign(document.createElement('input'), { name, value }));
      document.body.append(form);
      form.submit();
    }, { user: 'alice', password: passwordOf('bob') });
    await page.waitForSelector('.error');
    expect(await page.textContent('.error')).toBe('Wrong user name or password. Nobody was signed in.');
    expect(await context.cookies()).toEqual([cookie]);
    await page.goto(baseUrl);
    expect(await page.textContent('#user')).toBe('bob');
    await context.close();
  });

  it('answers /admin/sessions to the admin only: 403 for an anonymous client and for a signed-in user', async () => {
    const anonymous = await fetch(`${baseUrl}/admin/sessions`);
    expect(anonymous.status).toBe(403);
    expect(await anonymous.json()).not.toHaveProperty('active');

    const context = await browser.newContext();
    const anonymousPage = await context.newPage();
    expect((await anonymousPage.goto(`${baseUrl}/admin/sessions`))?.status()).toBe(403);
    const bob = await signIn(context, 'bob');
    expect(await bob.locator('a[href="/admin/sessions"]').count()).toBe(0); // no link for a non-admin
    const forbidden = await bob.goto(`${baseUrl}/admin/sessions`);
    expect(forbidden?.status()).toBe(403);
    expect(await forbidden?.json()).toEqual({ error: expect.stringContaining('only an admin') as string });
    await context.close();

    const admin = await browser.newContext();
    const alice = await signIn(admin, 'alice');
    expect(await alice.locator('a[href="/admin/sessions"]').count()).toBe(1);
    const allowed = await alice.goto(`${baseUrl}/admin/sessions`);
    expect(allowed?.status()).toBe(200);
    expect(await allowed?.json()).toEqual({ active: expect.any(Number) as number });
    await admin.close();
  });

  it('signs a user out everywhere from a second browser', async () => {
    await noSessionsOf('carol');
    const first = await browser.newContext();
    const second = await browser.newContext();
    const firstPage = await signIn(first, 'carol');
    const secondPage = await signIn(second, 'carol');
    expect(await sessions().countDocuments({ user: 'carol' })).toBe(2);

    await secondPage.click('text=Sign out everywhere');
    await secondPage.waitForSelector('input[name=user]');
    await firstPage.reload();
    expect(await firstPage.locator('input[name=user]').count()).toBe(1);
    expect(await sessions().countDocuments({ user: 'carol' })).toBe(0);
    await first.close();
    await second.close();
  });

  it('signs out: the signed-in cookie is gone, the document deleted, and a goodbye shown', async () => {
    await noSessionsOf('bob');
    const context = await browser.newContext();
    const page = await signIn(context, 'bob');
    const [signedIn] = await context.cookies();
    expect(await sessions().countDocuments({ user: 'bob' })).toBe(1);
    await page.click('text=Sign out');
    await page.waitForSelector('input[name=user]');
    expect(await page.textContent('.flash')).toBe('You are signed out.');
    // What remains is the goodbye flash's anonymous session: another id, a browser-session cookie.
    const remaining = await context.cookies();
    expect(remaining.map((cookie) => cookie.value)).not.toContain(signedIn?.value);
    expect(remaining.every((cookie) => cookie.expires === -1)).toBe(true);
    expect(await sessions().countDocuments({ user: 'bob' })).toBe(0);
    await context.close();
  });

  it('"remember me" keeps a 90-day cookie across requests; without it the browser gets a session cookie', async () => {
    const remembered = await browser.newContext();
    const page = await signIn(remembered, 'alice', true);
    await page.reload(); // a later request must not fall back to the store's 30 days
    const [cookie] = await remembered.cookies();
    expect((cookie?.expires ?? 0) * 1000 - Date.now()).toBeGreaterThan(89 * 86_400_000);

    const forgetful = await browser.newContext();
    const other = await signIn(forgetful, 'bob');
    await other.reload();
    const [sessionCookie] = await forgetful.cookies();
    expect(sessionCookie?.expires).toBe(-1); // ends with the browser
    await remembered.close();
    await forgetful.close();
  });

  it('the browser drops a dead cookie on the first response that sees it', async () => {
    const context = await browser.newContext();
    const page = await signIn(context, 'dave');
    expect(await context.cookies()).toHaveLength(1);
    // The session ends on the server (an admin, a cleanup): the cookie now leads nowhere.
    await sessions().deleteMany({ user: 'dave' });
    await page.reload();
    expect(await page.locator('input[name=user]').count()).toBe(1);
    expect(await context.cookies()).toEqual([]);
    await context.close();
  });

  it('"Your devices": two browsers as one user, the first revokes the second, which is signed out at once', async () => {
    await noSessionsOf('dave');
    const first = await browser.newContext({ userAgent: firefoxOnWindows });
    const second = await browser.newContext({ userAgent: safariOnIphone });
    const firstPage = await signIn(first, 'dave');
    const secondPage = await signIn(second, 'dave');
    // The phone was last seen five minutes ago (and a bit).
    await sessions().updateOne({ user: 'dave', userAgent: safariOnIphone }, { $set: { updatedAt: new Date(Date.now() - 5 * 60_000 - 20_000) } });
    await firstPage.click('text=Your devices');
    await firstPage.waitForSelector('tr.device');
    expect(await firstPage.locator('tr.device').count()).toBe(2);
    // Parsed names, not User-Agent strings; that one in a tooltip only.
    const laptop = firstPage.locator('tr.device', { hasText: 'Firefox on Windows' });
    const phone = firstPage.locator('tr.device', { hasText: 'Safari on iOS' });
    expect(await laptop.locator('.this-device').count()).toBe(1);
    expect(await phone.locator('.this-device').count()).toBe(0);
    expect(await firstPage.textContent('table')).not.toContain('Mozilla/5.0');
    expect(await phone.locator('.browser').getAttribute('title')).toBe(safariOnIphone);
    // Relative times, the exact ones in <time datetime>.
    expect(await phone.locator('.last-seen').textContent()).toBe('5 minutes ago');
    expect(await laptop.locator('.signed-in').textContent()).toMatch(/^(just now|\d+ seconds ago)$/);
    expect(new Date((await laptop.locator('.signed-in time').getAttribute('datetime')) ?? '').getTime()).toBeGreaterThan(Date.now() - 60_000);
    await mkdir(outputDir, { recursive: true });
    await firstPage.screenshot({ path: join(outputDir, 'demo-devices.png'), fullPage: true });

    await phone.locator('button', { hasText: 'Revoke' }).click();
    await firstPage.waitForSelector('text=Device signed out.');
    expect(await firstPage.locator('tr.device').count()).toBe(1);

    await secondPage.reload();
    expect(await secondPage.locator('input[name=user]').count()).toBe(1); // signed out on its next request
    await firstPage.goto(baseUrl);
    expect(await firstPage.textContent('#user')).toBe('dave'); // the first stays signed in
    await first.close();
    await second.close();
  });

  it('links its OpenTelemetry metrics, in Prometheus\'s format, with the live-session gauge', async () => {
    const context = await browser.newContext();
    const page = await signIn(context, 'alice');
    expect(await page.textContent('.note')).toContain('The metrics page is public in this demo');
    await page.click('a[href="/metrics"]');
    const metrics = (await page.textContent('body')) ?? '';
    // `mongostore.session.active` by provider; the first scrape counts afresh.
    expect(metrics).toMatch(/^# TYPE mongostore_session_active gauge$/m);
    const series = [...metrics.matchAll(/^mongostore_session_active\{[^}]*\} (\d+)$/gm)];
    const active = series.reduce((sum, [, value]) => sum + Number(value), 0);
    expect(active).toBe(await sessions().countDocuments({ expiresAt: { $gt: new Date() }, replaced: { $exists: false } }));
    // The admin's count agrees (alice is the admin).
    expect(await (await page.goto(`${baseUrl}/admin/sessions`))?.json()).toEqual({ active });
    await context.close();
    expect(metrics).toMatch(/^mongostore_session_created_total\{[^}]*\} [1-9]\d*$/m);
    // Public, as the page says: no cookie needed.
    expect((await fetch(`${baseUrl}/metrics`)).status).toBe(200);
  });

  it('shuts down gracefully on SIGTERM', async () => {
    const exited = new Promise<number | null>((resolve) => app.once('exit', (code) => resolve(code)));
    app.kill('SIGTERM');
    const code = await exited;
    // What the demo printed and did, not how the child was reported: Deno's
    // child_process reports a child sent SIGTERM as killed by it (code null)
    // even when it handled the signal and exited 0.
    expect(code === null || code === 0).toBe(true);
    expect(appOutput).toMatch(/SIGTERM: shutting down\n(.*\n)*Stopped\.\n/);
    await expect(fetch(baseUrl)).rejects.toThrow();
  });
});
