/**
 * mongostore: gorilla-style server-side sessions on MongoDB for Fetch-API
 * apps. `MongoStore` is the session store; `MongoDBStore` the scs-style token
 * store on the same persistence layer. Hono helpers: `mongostore/hono`; the
 * same two APIs on PostgreSQL: `mongostore/postgres`. `SessionStore` and
 * `TokenStore` take any `SessionBackend`, for a backend of your own.
 */
export type { UnsealFailure } from './codec.ts';
export type { KeyPair } from './keys.ts';
export { type DeviceDetails, type DeviceDetailsInput, type DeviceInfo, maxDeviceDetailsBytes, maxUserAgentLength } from './devices.ts';
export { SessionOptionsError, SessionStoreError, SessionValuesError } from './errors.ts';
export type {
  DeviceFields,
  DeviceRecord,
  FoundSession,
  Lifetime,
  LiveChange,
  LiveWrite,
  Owner,
  ReplacedSession,
  SessionBackend,
  SessionRecord,
  StoredSession,
} from './backend.ts';
export { MongoDBStore, type MongoDBStoreConfig, MongoStore, type MongoStoreConfig } from './mongo/stores.ts';
export { defaultSessionOptions, type SessionOptions } from './options.ts';
export type { RequestLike } from './registry.ts';
export { Session, type SessionLoadError } from './session.ts';
export {
  type CookieTarget,
  type SaveOutcome,
  SessionStore,
  type SessionStoreConfig,
} from './session-store.ts';
export { type CallOptions, maxTokenLength, TokenStore, type TokenStoreConfig } from './token-store.ts';
export type { Flashes, SessionValues, Storable } from './values.ts';
