/**
 * The README's token-store example: a shopping cart kept under an opaque
 * token in a `cart` cookie, with the scs-style TokenStore.
 */
import { randomBytes } from 'node:crypto';
import { Hono } from 'hono';
import { getCookie, setCookie } from 'hono/cookie';
import type { TokenStore } from '../../src/index.ts';

export function cartApp(tokens: TokenStore): Hono {
  const app = new Hono();
  app.post('/cart', async (c) => {
    const presented = getCookie(c, 'cart');
    const data = presented ? await tokens.find(presented, { signal: c.req.raw.signal }) : undefined;
    const cart: string[] = data ? (JSON.parse(new TextDecoder().decode(data)) as string[]) : [];
    cart.push('apple');
    // Reuse a token only when the store knows it: storing one the client made
    // up would let an attacker plant a token in a victim's browser (fixation).
    const token = data && presented ? presented : randomBytes(32).toString('base64url');
    const expiry = new Date(Date.now() + 86_400_000);
    await tokens.commit(token, new TextEncoder().encode(JSON.stringify(cart)), expiry);
    setCookie(c, 'cart', token, { httpOnly: true, secure: true, sameSite: 'Lax', expires: expiry });
    return c.json(cart);
  });
  return app;
}
