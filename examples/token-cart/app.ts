/**
 * The token-store example of docs/token-store.md: a shopping cart kept under an opaque
 * token in a `__Host-cart` cookie, with the scs-style TokenStore.
 */
import { randomBytes } from 'node:crypto';
import { Hono } from 'hono';
import { getCookie, setCookie } from 'hono/cookie';
import { maxTokenLength, type TokenStore } from '../../src/index.ts';

export function cartApp(tokens: TokenStore): Hono {
  const app = new Hono();
  app.post('/cart', async (c) => {
    const presented = getCookie(c, '__Host-cart');
    const usable = presented !== undefined && presented !== '' && presented.length <= maxTokenLength;
    const data = usable ? await tokens.find(presented, { signal: c.req.raw.signal }) : undefined;
    const cart: string[] = data ? (JSON.parse(new TextDecoder().decode(data)) as string[]) : [];
    cart.push('apple');
    // Reuse a token only when the store knows it: storing one the client made
    // up would let an attacker plant a token in a victim's browser (fixation).
    const token = data && presented ? presented : randomBytes(32).toString('base64url');
    const expiry = new Date(Date.now() + 86_400_000);
    await tokens.commit(token, new TextEncoder().encode(JSON.stringify(cart)), expiry);
    setCookie(c, '__Host-cart', token, { httpOnly: true, secure: true, sameSite: 'Lax', path: '/', expires: expiry });
    return c.json(cart);
  });
  return app;
}
