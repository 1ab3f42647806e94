import { afterEach, describe, expect, it, vi } from 'vitest';
import { checkCookieTarget, expiredCookie, sessionCookie } from '../src/cookies.ts';
import { defaultSessionOptions } from '../src/options.ts';

const secure = { ...defaultSessionOptions };

afterEach(() => {
  vi.useRealTimers();
});

describe('sessionCookie', () => {
  it('rounds Max-Age up: a live session never gets Max-Age=0', () => {
    vi.useFakeTimers({ now: 1_000_000 });
    const cookie = sessionCookie('sid', 'v', secure, new Date(1_000_000 + 400));
    expect(cookie).toMatch(/Max-Age=1;/);
    expect(sessionCookie('sid', 'v', secure, new Date(1_000_000 + 1_000))).toMatch(/Max-Age=1;/);
    expect(sessionCookie('sid', 'v', secure, new Date(1_000_000 + 1_001))).toMatch(/Max-Age=2;/);
  });
});

describe('checkCookieTarget', () => {
  it('takes a Headers or an object with a header method, and refuses anything else with a TypeError', () => {
    expect(() => checkCookieTarget(new Headers(), 'save')).not.toThrow();
    expect(() => checkCookieTarget({ header: () => {} }, 'save')).not.toThrow();
    for (const target of [new Response('x'), {}, null, undefined, 'Set-Cookie', { header: 'x' }]) {
      expect(() => checkCookieTarget(target, 'save')).toThrow(TypeError);
    }
  });
});

describe('expiredCookie', () => {
  it('clears the cookie with the attributes it was set with, for each name and set of options', () => {
    expect(expiredCookie('sid', secure)).toBe('sid=; Max-Age=0; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; Secure; SameSite=Lax');
    expect(expiredCookie('sid', { ...secure, path: '/app', domain: 'example.com' })).toMatch(/^sid=; .*Domain=example\.com; Path=\/app;/);
    expect(expiredCookie('other', secure)).toMatch(/^other=; /);
    expect(expiredCookie('sid', { ...secure, secure: false, sameSite: 'strict' })).not.toMatch(/Secure/);
    expect(expiredCookie('sid', secure)).toBe(expiredCookie('sid', { ...secure }));
  });
});
