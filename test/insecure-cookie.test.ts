import { describe, expect, it } from 'vitest';
import { InsecureCookieWarning } from '../src/insecure-cookie.ts';
import { defaultSessionOptions } from '../src/options.ts';

const secure = { ...defaultSessionOptions };

describe('InsecureCookieWarning', () => {
  it('warns once when a Secure cookie answers plain http on a host other than localhost', () => {
    const warnings: string[] = [];
    const warning = new InsecureCookieWarning((message) => warnings.push(message));
    warning.cookieSent(new Request('http://devbox.lan/login'), secure);
    warning.cookieSent(new Request('http://devbox.lan/other'), secure);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/http:\/\/devbox\.lan\/.*Secure/);
  });

  it('is quiet on https, on localhost, behind a TLS proxy, and for a cookie that is not Secure', () => {
    const warnings: string[] = [];
    const warning = new InsecureCookieWarning((message) => warnings.push(message));
    for (const url of ['https://devbox.lan/', 'http://localhost:3000/', 'http://app.localhost/', 'http://127.0.0.1:8080/', 'http://[::1]:3000/']) {
      warning.cookieSent(new Request(url), secure);
    }
    warning.cookieSent(new Request('http://example.com/', { headers: { 'x-forwarded-proto': 'https' } }), secure);
    warning.cookieSent(new Request('http://devbox.lan/'), { ...secure, secure: false });
    expect(warnings).toEqual([]);
  });
});
