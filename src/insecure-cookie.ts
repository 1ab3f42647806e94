/**
 * The warning for a `Secure` cookie sent in answer to a plain-http request:
 * browsers drop such a cookie (except on localhost), so every request of
 * that browser starts a new anonymous session, and nothing says why.
 */
import type { SessionOptions } from './options.ts';

/** Hosts whose plain-http origins browsers treat as secure: they keep a `Secure` cookie there. */
function isLoopback(hostname: string): boolean {
  return (
    hostname === 'localhost' ||
    hostname.endsWith('.localhost') ||
    hostname === '[::1]' ||
    /^127(?:\.\d{1,3}){3}$/.test(hostname)
  );
}

/** Warns once per store, on the first `Secure` cookie sent over plain http to a host other than localhost. */
export class InsecureCookieWarning {
  #warned = false;
  readonly #warn: (message: string) => void;

  constructor(warn: (message: string) => void = (message) => console.warn(message)) {
    this.#warn = warn;
  }

  /** Called when a cookie with `options` is sent in answer to `request`. Costs one string check once it has warned, or for https. */
  cookieSent(request: Request, options: SessionOptions): void {
    if (this.#warned || !options.secure || !request.url.startsWith('http:')) return;
    // Behind a proxy that terminates TLS, the app sees http but the browser https.
    if (request.headers.get('x-forwarded-proto')?.split(',')[0]?.trim().toLowerCase() === 'https') return;
    let hostname: string;
    try {
      hostname = new URL(request.url).hostname;
    } catch {
      return;
    }
    if (isLoopback(hostname)) return;
    this.#warned = true;
    this.#warn(
      `mongostore: a Secure session cookie was sent in answer to http://${hostname}/. Browsers drop Secure cookies on plain http ` +
        '(except on localhost), so each request starts a new session. Serve the app over https (a proxy that terminates TLS ' +
        'should send X-Forwarded-Proto: https), or set options.secure = false for a plain-http test host only ' +
        '(and drop a __Host- or __Secure- prefix from the cookie name, which requires Secure). Warned once per store.',
    );
  }
}
