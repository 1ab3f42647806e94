/** The token-store example (docs/token-store.md) never stores a token the client chose. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cartApp } from '../../examples/token-cart/app.ts';
import { backends } from '../support/backends.ts';

describe.each(backends)('the token-store cart example on $name', (backend) => {
  beforeAll(() => backend.open());
  afterAll(() => backend.close());

  it('issues its own token for an unknown cart cookie and reuses only tokens it stored', async () => {
    const { store, raw } = await backend.tokenStore({ cleanupInterval: 0 });
    const app = cartApp(store);
    const cartOf = (response: Response) => /^__Host-cart=([^;]+)/.exec(response.headers.getSetCookie()[0] ?? '')?.[1];

    const planted = 'attacker-chosen-token';
    const first = await app.request('https://app.example/cart', { method: 'POST', headers: { cookie: `__Host-cart=${planted}` } });
    const issued = cartOf(first);
    expect(issued).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(await raw.keys()).toEqual([issued]);
    expect(await store.find(planted)).toBeUndefined();

    const second = await app.request('https://app.example/cart', { method: 'POST', headers: { cookie: `__Host-cart=${issued}` } });
    expect(cartOf(second)).toBe(issued);
    expect(await second.json()).toEqual(['apple', 'apple']);

    // A cookie longer than any token gets a new cart, not a server error.
    const oversized = await app.request('https://app.example/cart', { method: 'POST', headers: { cookie: `__Host-cart=${'x'.repeat(5000)}` } });
    expect(oversized.status).toBe(200);
    expect(cartOf(oversized)).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });
});
