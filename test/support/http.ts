/** Requests with cookies, and the cookies a save sends back. */
import { randomBytes } from 'node:crypto';

/** 32 random bytes: a valid key. */
export function randomKey(): Uint8Array {
  return new Uint8Array(randomBytes(32));
}

/** A GET request carrying the given cookies. */
export function requestWith(cookies: Record<string, string> = {}): Request {
  const header = Object.entries(cookies)
    .map(([name, value]) => `${name}=${value}`)
    .join('; ');
  return new Request('https://app.example/', header ? { headers: { cookie: header } } : {});
}

/** One Set-Cookie header taken apart: value and attributes (names lower-cased). */
export interface SentCookie {
  name: string;
  value: string;
  attributes: Record<string, string | true>;
}

/** Every Set-Cookie header in `headers`, parsed. */
export function sentCookies(headers: Headers): SentCookie[] {
  return headers.getSetCookie().map((line) => {
    const [pair = '', ...parts] = line.split(';').map((part) => part.trim());
    const eq = pair.indexOf('=');
    const attributes: Record<string, string | true> = {};
    for (const part of parts) {
      const at = part.indexOf('=');
      if (at === -1) attributes[part.toLowerCase()] = true;
      else attributes[part.slice(0, at).toLowerCase()] = part.slice(at + 1);
    }
    return { name: pair.slice(0, eq), value: decodeURIComponent(pair.slice(eq + 1)), attributes };
  });
}

/** The single cookie a save sent; fails the test when there is not exactly one. */
export function onlyCookie(headers: Headers): SentCookie {
  const cookies = sentCookies(headers);
  if (cookies.length !== 1) throw new Error(`expected one Set-Cookie, got ${cookies.length}`);
  return cookies[0] as SentCookie;
}


/**
 * Headers that refuse every change, as a `Response.redirect()`'s do on Node
 * and Deno (Bun's are mutable, so the tests cannot rely on those).
 */
export class ImmutableHeaders extends Headers {
  override append(): never {
    throw new TypeError('immutable headers');
  }

  override set(): never {
    throw new TypeError('immutable headers');
  }
}
