/**
 * The demo app (`npm start`'s program) in a real browser: Debian's Chromium
 * driven by playwright-core, against the app on loopback and the test run's
 * MongoDB server. Served on http://localhost, which browsers treat as a
 * trustworthy origin, so the Secure cookie default stays on.
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

async function signIn(context: BrowserContext, user: string, remember = false): Promise<Page> {
  const page = await context.newPage();
  await page.goto(baseUrl);
  await page.fill('input[name=user]', user);
  if (remember) await page.check('input[name=remember]');
  await page.click('button[type=submit]');
  await page.waitForSelector('#user');
  return page;
}

const sessions = () => client.db(database).collection<{ _id: string; user?: string }>('sessions');

describe('the demo app in Chromium', () => {
  it('signs in with a flash, counts visits, and keeps only a sealed token in a secure cookie', async () => {
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

    await mkdir(outputDir, { recursive: true });
    await page.screenshot({ path: join(outputDir, 'demo-signed-in.png'), fullPage: true });
    await context.close();
  });

  it('signs a user out everywhere from a second browser', async () => {
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
    const page = await signIn(remembered, 'erin', true);
    await page.reload(); // a later request must not fall back to the store's 30 days
    const [cookie] = await remembered.cookies();
    expect((cookie?.expires ?? 0) * 1000 - Date.now()).toBeGreaterThan(89 * 86_400_000);

    const forgetful = await browser.newContext();
    const other = await signIn(forgetful, 'frank');
    await other.reload();
    const [sessionCookie] = await forgetful.cookies();
    expect(sessionCookie?.expires).toBe(-1); // ends with the browser
    await remembered.close();
    await forgetful.close();
  });

  it('the browser drops a dead cookie on the first response that sees it', async () => {
    const context = await browser.newContext();
    const page = await signIn(context, 'gina');
    expect(await context.cookies()).toHaveLength(1);
    // The session ends on the server (an admin, a cleanup): the cookie now leads nowhere.
    await sessions().deleteMany({ user: 'gina' });
    await page.reload();
    expect(await page.locator('input[name=user]').count()).toBe(1);
    expect(await context.cookies()).toEqual([]);
    await context.close();
  });

  it('"Your devices": two browsers as one user, the first revokes the second, which is signed out at once', async () => {
    const first = await browser.newContext({ userAgent: 'First Browser/1.0' });
    const second = await browser.newContext({ userAgent: 'Second Browser/2.0' });
    const firstPage = await signIn(first, 'ivy');
    const secondPage = await signIn(second, 'ivy');
    await firstPage.click('text=Your devices');
    await firstPage.waitForSelector('tr.device');
    expect(await firstPage.locator('tr.device').count()).toBe(2);
    expect(await firstPage.locator('tr.device', { hasText: 'First Browser/1.0' }).locator('.this-device').count()).toBe(1);
    await mkdir(outputDir, { recursive: true });
    await firstPage.screenshot({ path: join(outputDir, 'demo-devices.png'), fullPage: true });

    await firstPage.locator('tr.device', { hasText: 'Second Browser/2.0' }).locator('button', { hasText: 'Revoke' }).click();
    await firstPage.waitForSelector('text=Device signed out.');
    expect(await firstPage.locator('tr.device').count()).toBe(1);

    await secondPage.reload();
    expect(await secondPage.locator('input[name=user]').count()).toBe(1); // signed out on its next request
    await firstPage.goto(baseUrl);
    expect(await firstPage.textContent('#user')).toBe('ivy'); // the first stays signed in
    await first.close();
    await second.close();
  });

  it('links its OpenTelemetry metrics, in Prometheus\'s format, with the live-session gauge', async () => {
    const context = await browser.newContext();
    const page = await signIn(context, 'mia');
    await page.click('a[href="/metrics"]');
    const metrics = (await page.textContent('body')) ?? '';
    await context.close();
    // `mongostore.session.active` by provider; the first scrape counts afresh.
    expect(metrics).toMatch(/^# TYPE mongostore_session_active gauge$/m);
    const series = [...metrics.matchAll(/^mongostore_session_active\{[^}]*\} (\d+)$/gm)];
    const active = series.reduce((sum, [, value]) => sum + Number(value), 0);
    expect(active).toBe(await sessions().countDocuments({ expiresAt: { $gt: new Date() }, replaced: { $exists: false } }));
    expect(await (await fetch(`${baseUrl}/admin/sessions`)).json()).toEqual({ active });
    expect(metrics).toMatch(/^mongostore_session_created_total\{[^}]*\} [1-9]\d*$/m);
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
