/**
 * The cookie value: a session id sealed (AES-256-CBC + HMAC-SHA256) by
 * iron-webcrypto, bound to the cookie's name, under rotating key pairs whose
 * keys come from keys.ts.
 *
 * Unsealing costs most of a request's CPU, so verified cookie values are kept
 * in a bounded LRU map from the exact cookie string to what it unsealed to. An
 * entry is used only until the seal's own expiry, so the cache never extends
 * a seal's validity, and it belongs to one codec, i.e. to one key list.
 */
import { defaults, type password, seal, unseal } from 'iron-webcrypto';
import { SessionOptionsError } from './errors.ts';
import { deriveKeyPair, type KeyPair } from './keys.ts';
import { isSessionId } from './session.ts';

/** Why a cookie value did not unseal. Every case yields a fresh session. */
export type UnsealFailure =
  /** Not an iron token (wrong prefix, wrong number of parts, bad encoding). */
  | 'malformed'
  /** Longer than any cookie this store writes (4096 characters). */
  | 'oversized'
  /** Sealed under a key pair this store does not have (unknown or retired). */
  | 'unknown-key'
  /** The seal's own lifetime is over. */
  | 'expired'
  /** The signature does not match: altered, or forged. */
  | 'tampered'
  /** A genuine token, but issued for another cookie name. */
  | 'wrong-name';

/** The result of {@link CookieCodec.unseal}: an id, or why there is none. */
export type Unsealed =
  | {
      readonly ok: true;
      readonly id: string;
      /** The id of the key pair that sealed it. */
      readonly keyPairId: string;
      /** False when an older pair sealed it: the next save should re-seal. */
      readonly sealedWithCurrentKey: boolean;
    }
  | { readonly ok: false; readonly reason: UnsealFailure };

interface CacheEntry {
  readonly name: string;
  /** What a hit under `name` returns (one object, never changed). */
  readonly opened: Unsealed & { ok: true };
  readonly sealExpiresAt: number;
  /** When it was last moved to the end of the cache's order (a count of moves). */
  touched: number;
}

/** Longest cookie value looked at; browsers cap a cookie at about 4 KB. */
const maxCookieValueLength = 4096;

/** Seals and unseals session ids under a list of key pairs. */
export class CookieCodec {
  /** Each configured pair's id, in the configured order (the first seals). */
  readonly keyPairIds: readonly string[];
  readonly #passwords: Record<string, password.Specific>;
  readonly #sealingPassword: password.Specific;
  readonly #cache = new Map<string, CacheEntry>();
  readonly #cacheSize: number;
  /** Moves to the end of the cache's order so far (insertions and refreshes). */
  #moves = 0;

  /**
   * @param keyPairs the first pair seals; every pair unseals.
   * @param cacheSize most verified cookie values remembered; 0 disables the cache.
   * @throws SessionOptionsError when there is no pair, or a key is not
   * usable (see {@link deriveKeyPair}).
   */
  constructor(keyPairs: readonly KeyPair[], cacheSize: number) {
    const list: unknown = keyPairs; // checked as unknown: callers may not use TypeScript
    if (!Array.isArray(list) || list.length === 0) {
      throw new SessionOptionsError('keyPairs must hold at least one key pair');
    }
    if (!Number.isInteger(cacheSize) || cacheSize < 0) {
      throw new SessionOptionsError('unsealCacheSize must be a whole number >= 0');
    }
    this.#passwords = {};
    const ids: string[] = [];
    const integrityKeys = new Set<string>();
    const encryptionKeys = new Set<string>();
    for (const [index, pair] of keyPairs.entries()) {
      const keys = deriveKeyPair(pair, `keyPairs[${index}]`);
      integrityKeys.add(Buffer.from(keys.integrity).toString('hex'));
      encryptionKeys.add(Buffer.from(keys.encryption).toString('hex'));
      this.#passwords[keys.id] ??= { id: keys.id, integrity: keys.integrity, encryption: keys.encryption };
      ids.push(keys.id);
    }
    this.keyPairIds = Object.freeze(ids);
    // Within a pair deriveKeyPair keeps the two keys apart; across pairs, a
    // key given as one pair's authentication key and another's encryption
    // key would serve both algorithms.
    for (const key of integrityKeys) {
      if (encryptionKeys.has(key)) {
        throw new SessionOptionsError('keyPairs: a key is the authentication key of one pair and the encryption key of another');
      }
    }
    this.#sealingPassword = Object.values(this.#passwords)[0] as password.Specific;
    this.#cacheSize = cacheSize;
  }

  /**
   * Seals `id` for the cookie `name` with the first key pair; the seal
   * expires after `ttlMs` (at least 1 ms).
   */
  async seal(name: string, id: string, ttlMs: number): Promise<string> {
    return seal({ n: name, i: id }, this.#sealingPassword, {
      ...defaults,
      ttl: Math.max(1, Math.ceil(ttlMs)),
    });
  }

  /**
   * Unseals a cookie value read under the cookie `name`. Never rejects: a
   * value that does not unseal gives `{ ok: false, reason }`.
   */
  async unseal(name: string, value: string): Promise<Unsealed> {
    const cached = this.#cache.get(value);
    if (cached !== undefined) {
      if (Date.now() < cached.sealExpiresAt) {
        // Refresh recency (Map iteration order is insertion order), but only
        // for an entry in the older half: one in the newer half is far from
        // eviction, and moving it on every hit would cost most of a hit.
        if (this.#moves - cached.touched > this.#cacheSize / 2) {
          this.#cache.delete(value);
          this.#cache.set(value, cached);
          cached.touched = ++this.#moves;
        }
        return cached.name === name ? cached.opened : { ok: false, reason: 'wrong-name' };
      }
      this.#cache.delete(value);
    }
    if (value.length > maxCookieValueLength) return { ok: false, reason: 'oversized' };

    let payload: unknown;
    try {
      payload = await unseal(value, this.#passwords, defaults);
    } catch (error) {
      return { ok: false, reason: failureReason(error) };
    }
    if (!isPayload(payload)) return { ok: false, reason: 'malformed' };

    // iron has verified the token, so its fields can be trusted now, except
    // two that its MAC does not cover: the HMAC salt (ignored for the byte
    // keys this codec always uses) and the unused low bits of the HMAC's last
    // base64url character. Only the canonical form this codec writes is
    // accepted, so no altered token is.
    const [, passwordId = '', , , , expiration = '', hmacSalt = '', hmac = ''] = value.split('*');
    if (hmacSalt !== '' || Buffer.from(hmac, 'base64url').toString('base64url') !== hmac) {
      return { ok: false, reason: 'tampered' };
    }
    const entry: CacheEntry = {
      name: payload.n,
      opened: Object.freeze({ ok: true, id: payload.i, keyPairId: passwordId, sealedWithCurrentKey: passwordId === this.#sealingPassword.id }),
      sealExpiresAt: expiration === '' ? Number.POSITIVE_INFINITY : Number(expiration),
      touched: ++this.#moves,
    };
    this.#remember(value, entry);
    if (entry.name !== name) return { ok: false, reason: 'wrong-name' };
    return entry.opened;
  }

  /** How many verified values the cache holds now (for tests and metrics). */
  get cachedValues(): number {
    return this.#cache.size;
  }

  #remember(value: string, entry: CacheEntry): void {
    if (this.#cacheSize === 0 || !(Date.now() < entry.sealExpiresAt)) return;
    if (this.#cache.size >= this.#cacheSize) {
      const oldest = this.#cache.keys().next();
      if (!oldest.done) this.#cache.delete(oldest.value);
    }
    this.#cache.set(value, entry);
  }
}

function isPayload(payload: unknown): payload is { n: string; i: string } {
  if (payload === null || typeof payload !== 'object') return false;
  const { n, i } = payload as Record<string, unknown>;
  return typeof n === 'string' && isSessionId(i);
}

function failureReason(error: unknown): UnsealFailure {
  const message = error instanceof Error ? error.message : '';
  if (message === 'Expired seal') return 'expired';
  if (message.startsWith('Cannot find password')) return 'unknown-key';
  if (message === 'Bad hmac value') return 'tampered';
  return 'malformed';
}
