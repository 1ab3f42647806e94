/**
 * The two store APIs on MongoDB: MongoStore (gorilla-style) and MongoDBStore
 * (scs-style), both over one SessionCollection.
 */
import type { Db } from 'mongodb';
import { SessionStore, type SessionStoreConfig } from '../session-store.ts';
import { TokenStore, type TokenStoreConfig } from '../token-store.ts';
import type { SessionValues, Storable } from '../values.ts';
import { SessionCollection } from './session-collection.ts';

/** Configuration of a {@link MongoStore}. Only `keyPairs` is required. */
export interface MongoStoreConfig extends SessionStoreConfig {
  /** Collection name. Default `'sessions'`. */
  collection?: string | undefined;
  /**
   * Make the expiry index a TTL index, so MongoDB itself deletes expired
   * documents. Default false; FerretDB 1.x does not support TTL indexes.
   */
  ttlIndex?: boolean | undefined;
}

/**
 * Sessions stored in MongoDB, with only a sealed id in the cookie. See
 * {@link SessionStore} for the methods. Documents:
 * `{ _id, data, expiresAt, user?, provider?, createdAt, updatedAt }`;
 * indexes `{ expiresAt: 1 }` and `{ user: 1, provider: 1 }`.
 *
 * @throws SessionOptionsError for no key pairs, a key shorter than 32
 * characters or bytes, or invalid options.
 */
export class MongoStore<V extends Storable<V> = SessionValues> extends SessionStore<V> {
  constructor(db: Db, config: MongoStoreConfig) {
    const collection = new SessionCollection(db, config.collection ?? 'sessions', {
      hashIds: false,
      ttlIndex: config.ttlIndex ?? false,
      indexOwners: true,
    });
    super(collection, config, ['collection', 'ttlIndex']);
  }
}

/** Configuration of a {@link MongoDBStore}; everything is optional. */
export interface MongoDBStoreConfig extends TokenStoreConfig {
  /** Collection name. Default `'tokens'` (kept apart from MongoStore's `'sessions'`). */
  collection?: string | undefined;
  /** Make the expiry index a TTL index (real MongoDB only). Default false. */
  ttlIndex?: boolean | undefined;
}

/**
 * scs's token store on MongoDB. See {@link TokenStore} for the methods.
 * Documents `{ _id: token or SHA-256(token), data, expiresAt }`; index
 * `{ expiresAt: 1 }`.
 * @throws SessionOptionsError for a bad option (see {@link TokenStore}) or collection name.
 */
export class MongoDBStore extends TokenStore {
  constructor(db: Db, config: MongoDBStoreConfig = {}) {
    const collection = new SessionCollection(db, config.collection ?? 'tokens', {
      hashIds: config.hashTokens ?? false,
      ttlIndex: config.ttlIndex ?? false,
      indexOwners: false,
    });
    super(collection, config, ['collection', 'ttlIndex']);
  }
}
