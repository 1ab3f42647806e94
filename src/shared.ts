/**
 * What every entry point shares, whatever the database: the session and
 * token store APIs over any SessionBackend, their options, values and
 * errors. `mongostore` adds the MongoDB stores, `mongostore/postgres` the
 * PostgreSQL ones; neither needs the other's driver.
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
  LimitResult,
  LiveChange,
  LiveWrite,
  Owner,
  ReplacedSession,
  SessionBackend,
  SessionLimit,
  SessionRecord,
  StoredSession,
} from './backend.ts';
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
export type { DatabaseDescription, MeterProviderLike, TelemetryOptions, TracerProviderLike } from './telemetry.ts';
export type { Flashes, SessionValues, Storable } from './values.ts';
