/**
 * Key pairs -> the two 32-byte keys iron uses for each pair, and the pair's
 * id written into every token.
 *
 * iron uses a byte password raw as the AES-256 key and as the HMAC key
 * (iron.ts, iron-webcrypto, @hapi/iron alike), so only 32-byte keys work as
 * given, and a pair without an `encryption` key would use one key for both
 * algorithms. Everything else is derived here, with the platform's crypto:
 * - two distinct 32-byte Uint8Arrays: used as given (any iron implementation
 *   holding the same two keys reads the cookies);
 * - any other byte key (one key for both, or longer than 32 bytes): HKDF-SHA256
 *   expands it into separate encryption and integrity keys;
 * - a string (a passphrase): stretched once, when the store is built, with
 *   scrypt, then expanded by HKDF like bytes.
 * The pair's id is an HKDF output of the derived keys: it names the pair
 * without revealing anything that helps guess a key.
 */
import { hkdfSync, scryptSync } from 'node:crypto';
import { SessionOptionsError } from './errors.ts';

/**
 * One pair of secret keys. `authentication` signs the cookie (iron's
 * integrity key); `encryption` encrypts it. Each key is either a Uint8Array
 * of at least 32 random bytes (e.g. `crypto.getRandomValues(new Uint8Array(32))`)
 * or a passphrase string of at least 32 characters. Two distinct 32-byte
 * Uint8Arrays are used as given; every other form is derived (see
 * docs/keys.md), so a pair never uses one key for two algorithms.
 */
export interface KeyPair {
  authentication: string | Uint8Array;
  encryption?: string | Uint8Array | undefined;
}

/** The keys iron is given for one pair, and the pair's id. */
export interface DerivedKeyPair {
  /** 16 hex characters naming the pair inside each token. */
  readonly id: string;
  readonly encryption: Uint8Array;
  readonly integrity: Uint8Array;
}

/** iron's AES-256 and HMAC-SHA256 keys are 32 bytes. */
const keyBytes = 32;
const minKeyLength = 32;
/** Fewer distinct characters or bytes than this is no secret. */
const minDistinctUnits = 8;
/**
 * scrypt's cost for a passphrase: 2^15 x 8 x 128 bytes = 32 MiB and 100-300
 * ms of CPU on a 2-core machine, once per key when the store is built, never
 * per request.
 */
const scryptOptions = { N: 2 ** 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };
/** Fixed, so that every process holding the passphrase derives the same keys. */
const scryptSalt = 'mongostore passphrase v1';

/**
 * Checks one key pair and derives the keys iron gets for it.
 * @param label names the pair in errors, e.g. `keyPairs[0]`.
 * @throws SessionOptionsError for a key of the wrong type, too short, or
 * trivially weak (fewer than 8 distinct characters or bytes, a repeated
 * block, or an arithmetic run such as 0, 1, 2, ...).
 */
export function deriveKeyPair(pair: KeyPair | undefined, label: string): DerivedKeyPair {
  // Copies: iron reads the key bytes on every seal, so a caller zeroing or
  // reusing its buffer later must not change the store's keys.
  const authentication = copy(checkKey(pair?.authentication, `${label}.authentication`));
  const encryption = pair?.encryption === undefined ? undefined : copy(checkKey(pair.encryption, `${label}.encryption`));
  let keys: { encryption: Uint8Array; integrity: Uint8Array };
  if (isRawKey(authentication) && isRawKey(encryption) && !sameBytes(authentication, encryption)) {
    keys = { encryption, integrity: authentication };
  } else {
    const authenticationMaterial = keyMaterial(authentication);
    const encryptionMaterial = encryption === undefined ? authenticationMaterial : keyMaterial(encryption);
    keys = {
      integrity: expand(authenticationMaterial, 'integrity'),
      encryption: expand(encryptionMaterial, 'encryption'),
    };
  }
  const id = Buffer.from(expand(concat(keys.integrity, keys.encryption), 'key id').subarray(0, 8)).toString('hex');
  return { id, ...keys };
}

function checkKey(key: unknown, label: string): string | Uint8Array {
  let units: ArrayLike<number>;
  if (typeof key === 'string') {
    if (key.length < minKeyLength) {
      throw new SessionOptionsError(`${label} must be at least ${minKeyLength} characters long`);
    }
    units = Array.from(key, (char) => char.codePointAt(0) ?? 0);
  } else if (key instanceof Uint8Array) {
    if (key.byteLength < minKeyLength) {
      throw new SessionOptionsError(`${label} must be at least ${minKeyLength} bytes long`);
    }
    units = key;
  } else {
    throw new SessionOptionsError(`${label} must be a string or a Uint8Array`);
  }
  const weakness = trivialWeakness(units);
  if (weakness !== undefined) throw new SessionOptionsError(`${label} is not a secret: ${weakness}`);
  return key;
}

/**
 * Why a key is trivially weak, or undefined. Not a strength meter: it refuses
 * only keys that no random source would produce in practice.
 */
function trivialWeakness(units: ArrayLike<number>): string | undefined {
  if (new Set(Array.from(units)).size < minDistinctUnits) {
    return `fewer than ${minDistinctUnits} distinct characters or bytes`;
  }
  const length = units.length;
  for (let period = 1; period <= length / 2; period++) {
    let repeats = true;
    for (let i = period; i < length && repeats; i++) repeats = units[i] === units[i - period];
    if (repeats) return 'a repeated block';
  }
  const step = (units[1] ?? 0) - (units[0] ?? 0);
  let run = true;
  for (let i = 2; i < length && run; i++) run = (units[i] ?? 0) - (units[i - 1] ?? 0) === step;
  return run ? 'an arithmetic run' : undefined;
}

function copy(key: string | Uint8Array): string | Uint8Array {
  return typeof key === 'string' ? key : new Uint8Array(key);
}

function isRawKey(key: string | Uint8Array | undefined): key is Uint8Array {
  return key instanceof Uint8Array && key.byteLength === keyBytes;
}

/** Bytes as they are; a passphrase stretched by scrypt. */
function keyMaterial(key: string | Uint8Array): Uint8Array {
  return typeof key === 'string' ? new Uint8Array(scryptSync(key.normalize('NFC'), scryptSalt, keyBytes, scryptOptions)) : key;
}

function expand(material: Uint8Array, purpose: string): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', material, new Uint8Array(0), `mongostore ${purpose}`, keyBytes));
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.byteLength + b.byteLength);
  out.set(a);
  out.set(b, a.byteLength);
  return out;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && a.every((byte, index) => byte === b[index]);
}
