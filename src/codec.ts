/**
 * The cookie value: a session id sealed in iron's format (AES-256-CBC +
 * HMAC-SHA256, iron.ts), bound to the cookie's name, under rotating key
 * pairs whose keys come from keys.ts.
 *
 * Verified cookie values are kept in a bounded LRU map from the exact cookie
 * string to what it unsealed to. An entry is used only until the seal's own
 * expiry, so the cache never extends a seal's validity, and it belongs to
 * one codec, i.e. to one key list.
 */
import { SessionOptionsError } from './errors.ts';
import { isSessionId } from './ids.ts';
import { type IronKey, ironKey, openIron, sealIron } from './iron.ts';
import { deriveKeyPair, type KeyPair } from './keys.ts';

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

/** A full cache evicts this share of its values at once (1/64: at most 157 of the default 10,000). */
const evictionBatches = 64;

/** Longest cookie value looked at; browsers cap a cookie at about 4 KB. */
const maxCookieValueLength = 4096;

/** Seals and unseals session ids under a list of key pairs. */
export class CookieCodec {
  /** Each configured pair's id, in the configured order (the first seals). */
  readonly keyPairIds: readonly string[];
  readonly #keys = new Map<string, IronKey>();
  readonly #sealingKey: IronKey;
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
    const ids: string[] = [];
    const integrityKeys = new Set<string>();
    const encryptionKeys = new Set<string>();
    for (const [index, pair] of keyPairs.entries()) {
      const keys = deriveKeyPair(pair, `keyPairs[${index}]`);
      integrityKeys.add(Buffer.from(keys.integrity).toString('hex'));
      encryptionKeys.add(Buffer.from(keys.encryption).toString('hex'));
      if (!this.#keys.has(keys.id)) this.#keys.set(keys.id, ironKey(keys.id, keys.encryption, keys.integrity));
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
    this.#sealingKey = this.#keys.values().next().value as IronKey;
    this.#cacheSize = cacheSize;
  }

  /**
   * Seals `id` for the cookie `name` with the first key pair; the seal
   * expires after `ttlMs` (at least 1 ms).
   */
  seal(name: string, id: string, ttlMs: number): string {
    return sealIron(JSON.stringify({ n: name, i: id }), this.#sealingKey, ttlMs);
  }

  /**
   * Unseals a cookie value read under the cookie `name`. Never throws: a
   * value that does not unseal gives `{ ok: false, reason }`.
   */
  unseal(name: string, value: string): Unsealed {
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

    const opened = openIron(value, this.#keys);
    if (!opened.ok) return { ok: false, reason: opened.reason };
    // This codec always writes an expiration; a token without one (iron's
    // ttl 0, sealed elsewhere with the same keys) would never expire.
    if (!Number.isFinite(opened.expiration)) return { ok: false, reason: 'malformed' };
    let payload: unknown;
    try {
      payload = JSON.parse(opened.payload);
    } catch {
      return { ok: false, reason: 'malformed' };
    }
    if (!isPayload(payload)) return { ok: false, reason: 'malformed' };
    const entry: CacheEntry = {
      name: payload.n,
      opened: Object.freeze({ ok: true, id: payload.i, keyPairId: opened.keyId, sealedWithCurrentKey: opened.keyId === this.#sealingKey.id }),
      sealExpiresAt: opened.expiration,
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
      // The least recently used values go a batch at a time: finding the
      // oldest walks past every entry deleted since the map last compacted,
      // which, one value per miss, cost a cold request more than the
      // unseal the cache saves.
      let evict = Math.ceil(this.#cacheSize / evictionBatches);
      for (const oldest of this.#cache.keys()) {
        this.#cache.delete(oldest);
        if (--evict === 0) break;
      }
    }
    this.#cache.set(value, entry);
  }
}

function isPayload(payload: unknown): payload is { n: string; i: string } {
  if (payload === null || typeof payload !== 'object') return false;
  const { n, i } = payload as Record<string, unknown>;
  return typeof n === 'string' && isSessionId(i);
}
