/**
 * mongostore: gorilla-style server-side sessions on MongoDB for Fetch-API
 * apps. `MongoStore` is the session store; `MongoDBStore` the scs-style token
 * store on the same persistence layer. Hono helpers: `mongostore/hono`.
 */
export type { KeyPair, UnsealFailure } from './codec.ts';
export { SessionOptionsError, SessionStoreError, SessionValuesError } from './errors.ts';
export {
  type CookieTarget,
  MongoStore,
  type MongoStoreConfig,
  type SaveOutcome,
} from './mongo-store.ts';
export { defaultSessionOptions, type SessionOptions } from './options.ts';
export type { RequestLike } from './registry.ts';
export { Session, type SessionLoadError } from './session.ts';
export { type CallOptions, MongoDBStore, type MongoDBStoreConfig, maxTokenLength } from './token-store.ts';
export type { SessionValues } from './values.ts';
