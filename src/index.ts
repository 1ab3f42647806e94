/**
 * mongostore: gorilla-style server-side sessions on MongoDB for Fetch-API
 * apps. `MongoStore` is the session store; `MongoDBStore` the scs-style token
 * store on the same persistence layer. Hono helpers: `mongostore/hono`; the
 * same two APIs on PostgreSQL: `mongostore/postgres`. `SessionStore` and
 * `TokenStore` take any `SessionBackend`, for a backend of your own.
 */
export * from './shared.ts';
export { MongoDBStore, type MongoDBStoreConfig, MongoStore, type MongoStoreConfig } from './mongo/stores.ts';
export { type MonitorWatchOptions, reconnectWhenMonitorHangs } from './mongo/reconnect.ts';
