/**
 * iron's token format (Fe26.2), sealed and opened with node:crypto.
 *
 *   Fe26.2*<key id>*<encryption salt>*<iv>*<ciphertext>*<expiration>*<hmac salt>*<hmac>
 *
 * AES-256-CBC of the payload under the encryption key, then HMAC-SHA256 of
 * the first six parts under the integrity key, each binary part base64url
 * without padding. With byte keys (the only kind this store uses) both salts
 * are empty and the keys are used as they are, so iron-webcrypto and
 * `@hapi/iron` open these tokens and seal tokens these functions open
 * (test/iron.test.ts proves both ways). The layout is ours to write;
 * node:crypto supplies the primitives (cipher, MAC, constant-time compare),
 * synchronously, with the keys prepared once as KeyObjects.
 */
import { createCipheriv, createDecipheriv, createHmac, createSecretKey, type KeyObject, timingSafeEqual } from 'node:crypto';
import { randomBytesBatched } from './random.ts';

/** One key pair as the token functions use it. */
export interface IronKey {
  /** Names the pair in the token (`\w+`). */
  readonly id: string;
  readonly encryption: KeyObject;
  readonly integrity: KeyObject;
}

/** What opening a token gives: its payload text, or why there is none. */
export type IronOpened =
  | { readonly ok: true; readonly keyId: string; readonly payload: string; readonly expiration: number }
  | { readonly ok: false; readonly reason: 'malformed' | 'unknown-key' | 'tampered' | 'expired' };

const prefix = 'Fe26.2';
/** iron's allowance for clocks that differ between the sealing and the opening host. */
const timestampSkewMs = 60_000;
const ivBytes = 16;
const keyBytes = 32;
const keyIdPattern = /^\w+$/;
const expirationPattern = /^[1-9]\d*$/;
/** Every character a token can hold: checked first, so the MAC never runs over more than its length in bytes. */
const tokenPattern = /^[A-Za-z0-9_.*-]+$/;
/** base64url lengths (no padding) of the 16-byte IV and the 32-byte HMAC. */
const ivLength = 22;
const macLength = 43;

/**
 * A key pair as KeyObjects, made once.
 * @throws TypeError when the id is not `\w+` or a key is not 32 bytes.
 */
export function ironKey(id: string, encryption: Uint8Array, integrity: Uint8Array): IronKey {
  if (!keyIdPattern.test(id)) throw new TypeError('an iron key id is letters, digits and _');
  if (encryption.byteLength !== keyBytes || integrity.byteLength !== keyBytes) throw new TypeError('iron keys are 32 bytes');
  return { id, encryption: createSecretKey(encryption), integrity: createSecretKey(integrity) };
}

/**
 * Seals `payload` (text, e.g. JSON) under `key`; the token expires `ttlMs`
 * after `now` (at least 1 ms).
 * @throws RangeError when that expiration is not a safe integer (a NaN or
 * infinite lifetime): no token that could never open is written.
 */
export function sealIron(payload: string, key: IronKey, ttlMs: number, now = Date.now()): string {
  const expiration = now + Math.max(1, Math.ceil(ttlMs));
  if (!Number.isSafeInteger(expiration)) throw new RangeError('an iron token needs a finite lifetime');
  const iv = randomBytesBatched(ivBytes);
  const cipher = createCipheriv('aes-256-cbc', key.encryption, iv);
  const encrypted = Buffer.concat([cipher.update(payload, 'utf8'), cipher.final()]);
  const macBase = `${prefix}*${key.id}**${iv.toString('base64url')}*${encrypted.toString('base64url')}*${expiration}`;
  return `${macBase}**${mac(key, macBase)}`;
}

/**
 * Opens a token sealed under one of `keys` (by its id): the MAC is checked,
 * in constant time, before anything is decrypted; then the expiration
 * (iron's 60 s of clock skew allowed). Never throws.
 */
export function openIron(token: string, keys: ReadonlyMap<string, IronKey>, now = Date.now()): IronOpened {
  // Public shape first (no secret involved): the characters, the parts, the
  // lengths of the IV and the MAC.
  if (typeof token !== 'string' || !tokenPattern.test(token)) return { ok: false, reason: 'malformed' };
  const parts = token.split('*');
  if (parts.length !== 8) return { ok: false, reason: 'malformed' };
  const [tokenPrefix, keyId = '', encryptionSalt = '', ivText = '', encryptedText = '', expirationText = '', hmacSalt = '', hmac = ''] = parts;
  if (tokenPrefix !== prefix || !keyIdPattern.test(keyId) || ivText.length !== ivLength || hmac.length !== macLength) {
    return { ok: false, reason: 'malformed' };
  }
  if (expirationText !== '' && !expirationPattern.test(expirationText)) return { ok: false, reason: 'malformed' };
  const key = keys.get(keyId);
  if (key === undefined) return { ok: false, reason: 'unknown-key' };
  const macBase = `${prefix}*${keyId}*${encryptionSalt}*${ivText}*${encryptedText}*${expirationText}`;
  // The hmac salt is not covered by the MAC; byte keys have none, so only
  // the empty one (the canonical token) is accepted.
  if (hmacSalt !== '' || !sameText(hmac, mac(key, macBase))) return { ok: false, reason: 'tampered' };
  const expiration = expirationText === '' ? Number.POSITIVE_INFINITY : Number(expirationText);
  if (expiration <= now - timestampSkewMs) return { ok: false, reason: 'expired' };
  const iv = Buffer.from(ivText, 'base64url');
  if (iv.byteLength !== ivBytes) return { ok: false, reason: 'malformed' };
  try {
    const decipher = createDecipheriv('aes-256-cbc', key.encryption, iv);
    const payload = Buffer.concat([decipher.update(Buffer.from(encryptedText, 'base64url')), decipher.final()]).toString('utf8');
    return { ok: true, keyId, payload, expiration };
  } catch {
    return { ok: false, reason: 'malformed' };
  }
}

function mac(key: IronKey, macBase: string): string {
  return createHmac('sha256', key.integrity).update(macBase).digest('base64url');
}

/** Constant-time equality of two texts (their lengths are not secret). */
function sameText(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.byteLength === right.byteLength && timingSafeEqual(left, right);
}
