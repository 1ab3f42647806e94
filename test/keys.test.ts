/**
 * Key pairs -> iron keys: every accepted key works, no key serves two
 * algorithms, passphrases are stretched, the key id gives nothing away, and
 * two distinct 32-byte keys interoperate with any iron implementation.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as hapiIron from '@hapi/iron';
import * as iron from 'iron-webcrypto';
import { describe, expect, it } from 'vitest';
import { CookieCodec } from '../src/codec.ts';
import { SessionOptionsError } from '../src/errors.ts';
import { deriveKeyPair } from '../src/keys.ts';
import { randomKey } from './support/http.ts';

const id = 'B'.repeat(43);
const sameBytes = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));

/** The id formula of 753425a: SHA-256 of a fixed prefix and the key, unsalted. */
function cheapKeyId(key: string): string {
  const hash = createHash('sha256').update('mongostore key id\0');
  for (let i = 0; i < 2; i++) hash.update(`s${key.length}:`).update(key);
  return hash.digest('hex').slice(0, 16);
}

describe('deriveKeyPair', () => {
  it('uses two distinct 32-byte keys as given', () => {
    const authentication = randomKey();
    const encryption = randomKey();
    const derived = deriveKeyPair({ authentication, encryption }, 'k');
    expect(sameBytes(derived.integrity, authentication)).toBe(true);
    expect(sameBytes(derived.encryption, encryption)).toBe(true);
  });

  it.each([
    ['one 32-byte key', () => ({ authentication: randomKey() })],
    ['one key given twice', () => { const key = randomKey(); return { authentication: key, encryption: key }; }],
    ['a 64-byte key', () => ({ authentication: new Uint8Array(randomBytes(64)) })],
    ['a passphrase', () => ({ authentication: 'correct horse battery staple 2024' })],
  ])('derives separate 32-byte keys from %s', (_, pair) => {
    const given = pair();
    const derived = deriveKeyPair(given, 'k');
    expect(derived.encryption.byteLength).toBe(32);
    expect(derived.integrity.byteLength).toBe(32);
    expect(sameBytes(derived.encryption, derived.integrity)).toBe(false);
    if (given.authentication instanceof Uint8Array) {
      expect(sameBytes(derived.integrity, given.authentication.subarray(0, 32))).toBe(false);
    }
  });

  it('is deterministic, so every process with the same keys reads the same cookies', () => {
    const pair = { authentication: 'correct horse battery staple 2024' };
    expect(deriveKeyPair(pair, 'a')).toEqual(deriveKeyPair({ ...pair }, 'b'));
    expect(deriveKeyPair(pair, 'a').id).not.toBe(deriveKeyPair({ authentication: 'correct horse battery staple 2025' }, 'a').id);
  });

  it('names a passphrase pair by an id that the cheap unsalted hash of 753425a does not give', () => {
    const passphrase = 'correct horse battery staple 2024';
    const derived = deriveKeyPair({ authentication: passphrase }, 'k');
    expect(derived.id).toMatch(/^[0-9a-f]{16}$/);
    expect(derived.id).not.toBe(cheapKeyId(passphrase));
  });

  it('refuses keys of the wrong type, short, or trivially weak, naming the key', () => {
    expect(() => deriveKeyPair({ authentication: 'x'.repeat(31) }, 'keyPairs[2]')).toThrow(/keyPairs\[2\]\.authentication/);
    expect(() => deriveKeyPair({ authentication: new Uint8Array(32) }, 'k')).toThrow(SessionOptionsError);
    expect(() => deriveKeyPair({ authentication: randomKey(), encryption: 'ab'.repeat(16) }, 'k')).toThrow(/k\.encryption is not a secret/);
    expect(() => deriveKeyPair(undefined, 'k')).toThrow(/string or a Uint8Array/);
  });

  it('never refuses random keys', () => {
    for (let i = 0; i < 2000; i++) {
      expect(() => deriveKeyPair({ authentication: randomKey() }, 'k')).not.toThrow();
    }
  });
});

describe('cookies under derived keys', () => {
  it('a cookie sealed under a passphrase does not open with iron and the bare passphrase (it was stretched)', async () => {
    const passphrase = 'correct horse battery staple 2024';
    const codec = new CookieCodec([{ authentication: passphrase }], 0);
    const sealed = codec.seal('sid', id, 60_000);
    await expect(iron.unseal(sealed, { [sealed.split('*')[1] ?? '']: passphrase }, iron.defaults)).rejects.toThrow();
  });

  it('a pair of two distinct 32-byte keys interoperates with @hapi/iron, both ways', async () => {
    const authentication = randomKey();
    const encryption = randomKey();
    const codec = new CookieCodec([{ authentication, encryption }], 0);
    const sealed = codec.seal('sid', id, 60_000);
    const passwordId = sealed.split('*')[1] ?? '';
    const hapiPassword = { id: passwordId, encryption: Buffer.from(encryption), integrity: Buffer.from(authentication) };

    expect(await hapiIron.unseal(sealed, { [passwordId]: hapiPassword }, hapiIron.defaults)).toEqual({ n: 'sid', i: id });
    const fromHapi = await hapiIron.seal({ n: 'sid', i: id }, hapiPassword, { ...hapiIron.defaults, ttl: 60_000 });
    expect(codec.unseal('sid', fromHapi)).toEqual({ ok: true, id, keyPairId: passwordId, sealedWithCurrentKey: true });
  });
});
