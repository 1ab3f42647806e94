/**
 * The token format stays iron's: tokens sealed by src/iron.ts (node:crypto)
 * open with iron-webcrypto and with @hapi/iron, tokens they seal open with
 * it, and an altered token is refused by all three.
 */
import * as hapiIron from '@hapi/iron';
import fc from 'fast-check';
import * as iron from 'iron-webcrypto';
import { describe, expect, it } from 'vitest';
import { ironKey, openIron, sealIron } from '../src/iron.ts';

const bytes32 = fc.uint8Array({ minLength: 32, maxLength: 32 });
const pair = fc.record({ id: fc.stringMatching(/^\w{1,24}$/), encryption: bytes32, integrity: bytes32 });
/**
 * JSON values as text, the way iron's implementations serialize a payload
 * (@hapi/iron refuses a `__proto__` key when it parses, by design).
 */
const payload = fc
  .jsonValue()
  .map((value) => JSON.stringify(value))
  .filter((text) => !text.includes('"__proto__"'));
const ttl = fc.integer({ min: 1000, max: 400 * 86_400_000 });

type Pair = { id: string; encryption: Uint8Array; integrity: Uint8Array };
const webcryptoPassword = (p: Pair) => ({ [p.id]: { id: p.id, encryption: p.encryption, integrity: p.integrity } });
const hapiPassword = (p: Pair) => ({ id: p.id, encryption: Buffer.from(p.encryption), integrity: Buffer.from(p.integrity) });
const keysOf = (p: Pair) => new Map([[p.id, ironKey(p.id, p.encryption, p.integrity)]]);

describe('iron tokens on node:crypto', () => {
  it('open with iron-webcrypto and @hapi/iron (round-trip property)', async () => {
    await fc.assert(
      fc.asyncProperty(pair, payload, ttl, async (p, text, ttlMs) => {
        const token = sealIron(text, keysOf(p).get(p.id) as ReturnType<typeof ironKey>, ttlMs);
        expect(JSON.stringify(await iron.unseal(token, webcryptoPassword(p), iron.defaults))).toBe(text);
        expect(JSON.stringify(await hapiIron.unseal(token, { [p.id]: hapiPassword(p) }, hapiIron.defaults))).toBe(text);
        const opened = openIron(token, keysOf(p));
        expect(opened).toMatchObject({ ok: true, keyId: p.id, payload: text });
      }),
      { numRuns: 150 },
    );
  });

  it('open what iron-webcrypto and @hapi/iron seal (round-trip property)', async () => {
    await fc.assert(
      fc.asyncProperty(pair, payload, ttl, async (p, text, ttlMs) => {
        const value: unknown = JSON.parse(text);
        const keys = keysOf(p);
        const fromWebcrypto = await iron.seal(value, { id: p.id, encryption: p.encryption, integrity: p.integrity }, { ...iron.defaults, ttl: ttlMs });
        const fromHapi = await hapiIron.seal(value, hapiPassword(p), { ...hapiIron.defaults, ttl: ttlMs });
        for (const token of [fromWebcrypto, fromHapi]) {
          const opened = openIron(token, keys);
          expect(opened.ok).toBe(true);
          if (opened.ok) expect(opened.payload).toBe(text);
        }
      }),
      { numRuns: 150 },
    );
  });

  it('an altered token is refused by all three (any part the MAC covers, and the MAC itself)', async () => {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    await fc.assert(
      fc.asyncProperty(pair, payload, fc.constantFrom(0, 1, 2, 3, 4, 5, 7), fc.nat(), fc.integer({ min: 1, max: 63 }), async (p, text, part, at, shift) => {
        const token = sealIron(text, keysOf(p).get(p.id) as ReturnType<typeof ironKey>, 3_600_000);
        const parts = token.split('*');
        const original = parts[part] as string;
        // The MAC's last character carries unused bits: alter one before it.
        const length = part === 7 ? original.length - 1 : original.length;
        if (length === 0) {
          parts[part] = 'A';
        } else {
          const index = at % length;
          const char = original[index] as string;
          const replacement = /\d/.test(char) && part === 5 ? String((Number(char) + 1) % 10) : (alphabet[(alphabet.indexOf(char) + shift) % 64] as string);
          parts[part] = original.slice(0, index) + replacement + original.slice(index + 1);
        }
        const altered = parts.join('*');
        if (altered === token) return;
        expect(openIron(altered, keysOf(p)).ok).toBe(false);
        await expect(iron.unseal(altered, webcryptoPassword(p), iron.defaults)).rejects.toThrow();
        await expect(hapiIron.unseal(altered, { [p.id]: hapiPassword(p) }, hapiIron.defaults)).rejects.toThrow();
      }),
      { numRuns: 200 },
    );
  });

  it('checks the MAC before the expiry and before decrypting: a forged token is tampered, whatever else it says', () => {
    const p = { id: 'k1', encryption: new Uint8Array(32).fill(1), integrity: new Uint8Array(32).fill(2) };
    const keys = keysOf(p);
    const token = sealIron('{"a":1}', keys.get('k1') as ReturnType<typeof ironKey>, 60_000);
    const parts = token.split('*');
    const past = [...parts.slice(0, 5), '1000', ...parts.slice(6)].join('*');
    expect(openIron(past, keys)).toEqual({ ok: false, reason: 'tampered' });
    const otherCiphertext = [...parts.slice(0, 4), 'AAAA', ...parts.slice(5)].join('*');
    expect(openIron(otherCiphertext, keys)).toEqual({ ok: false, reason: 'tampered' });
    // The public shape is checked first: characters, parts, IV and MAC lengths.
    const mac = parts[7] as string;
    for (const shape of [mac.slice(0, 42), '', `${mac}A`, `${mac.slice(0, 42)}=`]) {
      expect(openIron([...parts.slice(0, 7), shape].join('*'), keys)).toEqual({ ok: false, reason: 'malformed' });
    }
    for (const odd of [`${token}\u00e9`, token.replace('*', '%2A'), ` ${token}`, [...parts.slice(0, 4), '!!!', ...parts.slice(5)].join('*')]) {
      expect(openIron(odd, keys)).toEqual({ ok: false, reason: 'malformed' });
    }
    expect(openIron(42 as unknown as string, keys)).toEqual({ ok: false, reason: 'malformed' });
    expect(() => sealIron('{}', keys.get('k1') as ReturnType<typeof ironKey>, Number.NaN)).toThrow(RangeError);
    expect(openIron(token, new Map())).toEqual({ ok: false, reason: 'unknown-key' });
    expect(openIron('Fe26.2*k1*a', keys)).toEqual({ ok: false, reason: 'malformed' });
    // Expired: past its expiration and iron's 60 s of skew.
    expect(openIron(token, keys, Date.now() + 60_000 + 60_001)).toEqual({ ok: false, reason: 'expired' });
    expect(openIron(token, keys, Date.now() + 60_000 + 59_000).ok).toBe(true);
  });
});
