/**
 * mongostore/postgres: the same two store APIs on PostgreSQL, through the
 * `pg` driver's Pool. PostgresSessionStore is MongoStore's twin;
 * PostgresStore is scs's pgxstore / bunstore. Everything the stores share
 * (Session, the errors, the option and value types) is exported here too,
 * so a PostgreSQL-only app never loads the MongoDB driver.
 */
import type { Pool } from 'pg';
import { SessionStore, type SessionStoreConfig } from '../session-store.ts';
import { TokenStore, type TokenStoreConfig } from '../token-store.ts';
import type { SessionValues, Storable } from '../values.ts';
import { SessionTable } from './session-table.ts';

export * from '../shared.ts';

/** Configuration of a {@link PostgresSessionStore}. Only `keyPairs` is required. */
export interface PostgresSessionStoreConfig extends SessionStoreConfig {
  /** Table name, a plain identifier. Default `'sessions'`. */
  table?: string | undefined;
  /**
   * The schema the table is in, a plain identifier (e.g. `'auth'` for
   * `auth.sessions`); it must exist. Default: the first schema of the
   * connection's search path (usually `public`).
   */
  schema?: string | undefined;
}

/**
 * Gorilla-style sessions in PostgreSQL, with exactly MongoStore's methods
 * and semantics (see {@link SessionStore}). The table and its indexes are
 * created by `init()`, or once before the first query.
 *
 * @throws SessionOptionsError for bad keys or options, or a table or schema
 * name that is not a plain identifier.
 */
export class PostgresSessionStore<V extends Storable<V> = SessionValues> extends SessionStore<V> {
  constructor(pool: Pool, config: PostgresSessionStoreConfig) {
    super(new SessionTable(pool, config.table ?? 'sessions', { hashIds: false, indexOwners: true, schema: config.schema }), config, ['table', 'schema']);
  }
}

/** Configuration of a {@link PostgresStore}; everything is optional. */
export interface PostgresStoreConfig extends TokenStoreConfig {
  /** Table name, a plain identifier. Default `'tokens'`. */
  table?: string | undefined;
  /** The schema the table is in, a plain identifier; it must exist. Default: the search path's first. */
  schema?: string | undefined;
}

/**
 * scs's token store on PostgreSQL (pgxstore / bunstore parity), with
 * MongoDBStore's methods and semantics (see {@link TokenStore}).
 * @throws SessionOptionsError for a bad option (see {@link TokenStore}), table or schema name.
 */
export class PostgresStore extends TokenStore {
  constructor(pool: Pool, config: PostgresStoreConfig = {}) {
    super(
      new SessionTable(pool, config.table ?? 'tokens', { hashIds: config.hashTokens ?? false, indexOwners: false, schema: config.schema }),
      config,
      ['table', 'schema'],
    );
  }
}

