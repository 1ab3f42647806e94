/**
 * The demo's helpers without a server: password hashing (users.ts) and what
 * the devices page shows (devices.ts).
 */
import { describe, expect, it } from 'vitest';
import { deviceName, signedInAt, timeAgo } from '../../examples/demo/devices.ts';
import { DemoUsers, hashPassword, newDemoAccounts, verifyPassword } from '../../examples/demo/users.ts';
import type { DeviceInfo } from '../../src/index.ts';

describe('demo users', () => {
  it('hash each password with a salt of its own and check it in constant time', async () => {
    const first = await hashPassword('same password');
    const second = await hashPassword('same password');
    expect(first.salt.equals(second.salt)).toBe(false);
    expect(first.hash.equals(second.hash)).toBe(false);
    expect(first.hash.toString('latin1')).not.toContain('same password');
    expect(await verifyPassword('same password', first)).toBe(true);
    expect(await verifyPassword('same passworD', first)).toBe(false);
    expect(await verifyPassword('', first)).toBe(false);
    // NFC: a composed and a decomposed "é" are one password.
    expect(await verifyPassword('caf\u0065\u0301', await hashPassword('caf\u00e9'))).toBe(true);
  });

  it('authenticate a known user with their password only; admins by role', async () => {
    const users = await DemoUsers.create([
      { name: 'alice', password: 'a-secret', admin: true },
      { name: 'bob', password: 'b-secret', admin: false },
    ]);
    expect(await users.authenticate('alice', 'a-secret')).toEqual({ name: 'alice', admin: true });
    expect(await users.authenticate('bob', 'b-secret')).toEqual({ name: 'bob', admin: false });
    expect(await users.authenticate('alice', 'b-secret')).toBeUndefined();
    expect(await users.authenticate('mallory', 'a-secret')).toBeUndefined();
    expect(await users.authenticate('__proto__', 'a-secret')).toBeUndefined();
    expect([users.isAdmin('alice'), users.isAdmin('bob'), users.isAdmin('mallory'), users.isAdmin(undefined)]).toEqual([true, false, false, false]);
  });

  it('new accounts at every start: distinct random passwords, one admin', () => {
    const first = newDemoAccounts();
    const second = newDemoAccounts();
    expect(first.map((account) => account.name)).toEqual(second.map((account) => account.name));
    expect(new Set([...first, ...second].map((account) => account.password)).size).toBe(first.length * 2);
    expect(first.every((account) => /^[A-Za-z0-9_-]{16}$/.test(account.password))).toBe(true);
    expect(first.filter((account) => account.admin).map((account) => account.name)).toEqual(['alice']);
  });
});

describe('the devices page', () => {
  it('names a device by its parsed User-Agent', () => {
    expect(deviceName('Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0.0.0 Safari/537.36')).toBe('Chrome on Linux');
    expect(deviceName('Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/140.0.0.0 Safari/537.36')).toBe('Chrome on Linux');
    expect(deviceName('Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0')).toBe('Firefox on Windows');
    expect(
      deviceName('Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1'),
    ).toBe('Safari on iOS');
    expect(deviceName('curl/8.5.0')).toBe('Unknown browser');
    expect(deviceName(undefined)).toBe('Unknown browser');
    expect(deviceName('')).toBe('Unknown browser');
  });

  it('tells times as people do', () => {
    const now = new Date('2025-06-01T12:00:00Z');
    const ago = (seconds: number) => timeAgo(new Date(now.getTime() - seconds * 1000), now);
    expect(ago(3)).toBe('just now');
    expect(ago(42)).toBe('42 seconds ago');
    expect(ago(5 * 60 + 50)).toBe('5 minutes ago');
    expect(ago(60)).toBe('1 minute ago');
    expect(ago(3 * 3600)).toBe('3 hours ago');
    expect(ago(86_400 + 60)).toBe('yesterday');
    expect(ago(3 * 7 * 86_400)).toBe('3 weeks ago');
    expect(ago(400 * 86_400)).toBe('last year');
    expect(ago(-2 * 86_400)).toBe('in 2 days');
  });

  it('shows when the owner signed in, else when the session began', () => {
    const createdAt = new Date('2025-06-01T10:00:00Z');
    const device: DeviceInfo = { handle: 'h'.repeat(22), createdAt, lastSeenAt: createdAt, expiresAt: createdAt };
    expect(signedInAt(device)).toBe(createdAt);
    const signedIn = new Date('2025-06-01T11:00:00Z');
    expect(signedInAt({ ...device, signedInAt: signedIn })).toBe(signedIn);
  });
});
