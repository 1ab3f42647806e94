import * as iron from 'iron-webcrypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CookieCodec } from '../src/codec.ts';
import * as tokens from '../src/iron.ts';
import { randomKey } from './support/http.ts';

vi.mock('../src/iron.ts', async (importOriginal) => {
  const original = await importOriginal<typeof tokens>();
  return { ...original, openIron: vi.fn(original.openIron) };
});

const id = 'A'.repeat(43);
const key = { authentication: randomKey(), encryption: randomKey() };

afterEach(() => {
  vi.useRealTimers();
  vi.mocked(tokens.openIron).mockClear();
});

describe('CookieCodec', () => {
  it('round-trips an id bound to a cookie name', () => {
    const codec = new CookieCodec([key], 10);
    const sealed = codec.seal('sid', id, 60_000);
    expect(codec.unseal('sid', sealed)).toEqual({ ok: true, id, keyPairId: codec.keyPairIds[0], sealedWithCurrentKey: true });
    expect(sealed.split('*')[1]).toBe(codec.keyPairIds[0]);
    expect(codec.unseal('other', sealed)).toEqual({ ok: false, reason: 'wrong-name' });
  });

  it('unseals a returning cookie from the cache, without crypto', () => {
    const codec = new CookieCodec([key], 10);
    const sealed = codec.seal('sid', id, 60_000);
    for (let i = 0; i < 5; i++) expect((codec.unseal('sid', sealed)).ok).toBe(true);
    expect(tokens.openIron).toHaveBeenCalledTimes(1);
    expect(codec.cachedValues).toBe(1);
  });

  it('caches only verified values', () => {
    const codec = new CookieCodec([key], 10);
    const sealed = codec.seal('sid', id, 60_000);
    const forged = `${sealed.slice(0, -1)}${sealed.endsWith('A') ? 'B' : 'A'}`;
    for (let i = 0; i < 3; i++) expect(codec.unseal('sid', forged)).toMatchObject({ ok: false });
    expect(tokens.openIron).toHaveBeenCalledTimes(3);
    expect(codec.cachedValues).toBe(0);
  });

  it('keeps at most cacheSize values, evicting the least recently used', () => {
    const codec = new CookieCodec([key], 3);
    const seals = [0, 1, 2, 3].map((n) => codec.seal('sid', String(n).repeat(43), 60_000));
    for (const sealed of seals.slice(0, 3)) codec.unseal('sid', sealed);
    codec.unseal('sid', seals[0] as string); // 0 is now the most recent
    codec.unseal('sid', seals[3] as string); // evicts 1
    expect(codec.cachedValues).toBe(3);
    vi.mocked(tokens.openIron).mockClear();
    codec.unseal('sid', seals[0] as string);
    codec.unseal('sid', seals[1] as string);
    expect(tokens.openIron).toHaveBeenCalledTimes(1);
  });

  it('a full cache evicts its least recently used 1/64 at once, and keeps the rest', () => {
    const codec = new CookieCodec([key], 128);
    const seals = Array.from({ length: 129 }, (_, n) => codec.seal('sid', String(n % 10).repeat(43), 60_000));
    for (const sealed of seals.slice(0, 128)) codec.unseal('sid', sealed);
    expect(codec.cachedValues).toBe(128);
    codec.unseal('sid', seals[128] as string); // full: the two oldest go
    expect(codec.cachedValues).toBe(127);
    vi.mocked(tokens.openIron).mockClear();
    for (const sealed of seals.slice(2)) expect(codec.unseal('sid', sealed).ok).toBe(true);
    expect(tokens.openIron).not.toHaveBeenCalled();
    codec.unseal('sid', seals[0] as string);
    codec.unseal('sid', seals[1] as string);
    expect(tokens.openIron).toHaveBeenCalledTimes(2);
  });

  it('a cache size of 0 disables the cache', () => {
    const codec = new CookieCodec([key], 0);
    const sealed = codec.seal('sid', id, 60_000);
    codec.unseal('sid', sealed);
    codec.unseal('sid', sealed);
    expect(tokens.openIron).toHaveBeenCalledTimes(2);
  });

  it('never extends a seal: a cached value stops working when its seal expires', () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const codec = new CookieCodec([key], 10);
    const sealed = codec.seal('sid', id, 1000);
    expect((codec.unseal('sid', sealed)).ok).toBe(true);
    // Past the seal's expiry and iron's 60 s clock-skew allowance.
    vi.setSystemTime(Date.now() + 62_000);
    expect(codec.unseal('sid', sealed)).toEqual({ ok: false, reason: 'expired' });
    expect(codec.cachedValues).toBe(0);
  });

  it('reports an older pair so the store can re-seal, and a retired one as unknown', () => {
    const old = { authentication: randomKey() };
    const sealedOld = new CookieCodec([old], 0).seal('sid', id, 60_000);
    const rotated = new CookieCodec([key, old], 0);
    expect(rotated.keyPairIds).toEqual([new CookieCodec([key], 0).keyPairIds[0], new CookieCodec([old], 0).keyPairIds[0]]);
    expect(rotated.unseal('sid', sealedOld)).toEqual({
      ok: true,
      id,
      keyPairId: rotated.keyPairIds[1],
      sealedWithCurrentKey: false,
    });
    expect(new CookieCodec([key], 0).unseal('sid', sealedOld)).toEqual({
      ok: false,
      reason: 'unknown-key',
    });
  });

  it('refuses altered fields that iron does not authenticate', async () => {
    const codec = new CookieCodec([key], 0);
    const sealed = codec.seal('sid', id, 60_000);
    const parts = sealed.split('*');
    expect(parts[6]).toBe(''); // byte keys: no HMAC salt
    const withSalt = [...parts.slice(0, 6), 'A', parts[7]].join('*');
    expect(await iron.unseal(withSalt, { [parts[1] as string]: { integrity: key.authentication, encryption: key.encryption } }, iron.defaults)).toBeTruthy();
    expect(codec.unseal('sid', withSalt)).toEqual({ ok: false, reason: 'tampered' });

    // The HMAC's last character carries 2 unused bits: flipping them keeps the bytes.
    const hmac = parts[7] as string;
    const last = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const index = last.indexOf(hmac.slice(-1));
    const variant = hmac.slice(0, -1) + (last[index ^ 1] as string);
    expect(Buffer.from(variant, 'base64url')).toEqual(Buffer.from(hmac, 'base64url'));
    expect(codec.unseal('sid', [...parts.slice(0, 7), variant].join('*'))).toEqual({ ok: false, reason: 'tampered' });
    expect((codec.unseal('sid', sealed)).ok).toBe(true);
  });

  it('binds a token to its cookie name without the cache, and refuses a token that never expires', async () => {
    const codec = new CookieCodec([key], 0);
    const sealed = codec.seal('sid', id, 60_000);
    expect(codec.unseal('other', sealed)).toEqual({ ok: false, reason: 'wrong-name' });
    expect(codec.unseal('sid', sealed).ok).toBe(true);
    const password = { id: sealed.split('*')[1] as string, integrity: key.authentication, encryption: key.encryption };
    const forever = await iron.seal({ n: 'sid', i: id }, password, { ...iron.defaults, ttl: 0 });
    expect(forever.split('*')[5]).toBe('');
    expect(codec.unseal('sid', forever)).toEqual({ ok: false, reason: 'malformed' });
  });

  it('refuses a well-sealed payload that is not a session id', async () => {
    const codec = new CookieCodec([key], 10);
    const passwordId = (codec.seal('sid', id, 1000)).split('*')[1] as string;
    const password = { id: passwordId, integrity: key.authentication, encryption: key.encryption };
    const odd = await iron.seal({ n: 'sid', i: { $ne: null } }, password, iron.defaults);
    expect(codec.unseal('sid', odd)).toEqual({ ok: false, reason: 'malformed' });
  });
});
