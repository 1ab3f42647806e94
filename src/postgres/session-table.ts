/**
 * The PostgreSQL implementation of the persistence interface: one table in
 * the shape of scs's pgxstore, plus the owner columns forced logout needs.
 *
 *   token TEXT PRIMARY KEY, data BYTEA NOT NULL, expiry TIMESTAMPTZ NOT NULL,
 *   "user" TEXT, provider TEXT, created_at, updated_at,
 *   max_age INTEGER, persistent BOOLEAN, replaced BOOLEAN NOT NULL DEFAULT false,
 *   version INTEGER NOT NULL DEFAULT 0, handle TEXT, user_agent TEXT, device TEXT
 *   indexes: (expiry), ("user", provider)
 *
 * Every read filters `expiry > now()`; updates of live sessions carry the
 * same filter and skip replaced rows (a regenerated session's old token,
 * kept briefly with no data and no owner). All values are bound parameters;
 * the table name is checked as an identifier and quoted. Tables created by
 * 0.1.0 gain the seven new columns on the first `init()` (or first query):
 * `ALTER TABLE ... ADD COLUMN IF NOT EXISTS`, no data rewrite.
 */
import type { Pool } from 'pg';
import {
  type DeviceRecord,
  type FoundSession,
  type LiveChange,
  type LiveWrite,
  once,
  plainBytes,
  replacedRecordMs,
  runOperation,
  type SessionBackend,
  type SessionRecord,
  storageKey,
  writeDone,
  writeFailure,
} from '../backend.ts';
import { SessionOptionsError } from '../errors.ts';
import type { DatabaseDescription } from '../telemetry.ts';

/** How the table is set up; fixed for the life of a store. */
export interface SessionTableOptions {
  /** Keep SHA-256(token) instead of the token. */
  hashIds: boolean;
  /** Index ("user", provider) for forced logout. */
  indexOwners: boolean;
}

const identifier = /^[A-Za-z_][A-Za-z0-9_]{0,47}$/;

export class SessionTable implements SessionBackend {
  readonly database: DatabaseDescription;
  readonly #pool: Pool;
  readonly #table: string;
  readonly #name: string;
  readonly #options: SessionTableOptions;
  readonly ensureSchema: () => Promise<void>;

  /** @throws SessionOptionsError for a table name that is not a plain identifier of at most 48 characters. */
  constructor(pool: Pool, table: string, options: SessionTableOptions) {
    if (typeof table !== 'string' || !identifier.test(table)) {
      throw new SessionOptionsError(`table must be a plain SQL identifier of at most 48 characters, not ${JSON.stringify(table)}`);
    }
    this.#pool = pool;
    this.database = { system: 'postgresql', namespace: databaseName(pool), collection: table };
    this.#name = table;
    this.#table = `"${table}"`;
    this.#options = options;
    this.ensureSchema = once(() => this.#createSchema());
  }

  async find(id: string, signal?: AbortSignal): Promise<FoundSession> {
    const result = await this.#query<{
      data: Buffer;
      expiry: Date;
      created_at: Date;
      max_age: number | null;
      persistent: boolean | null;
      replaced: boolean;
      version: number;
      handle: string | null;
    }>(
      'find',
      signal,
      `SELECT data, expiry, created_at, max_age, persistent, replaced, version, handle FROM ${this.#table} WHERE token = $1 AND expiry > now()`,
      [this.#key(id)],
    );
    const row = result.rows[0];
    if (row === undefined) return undefined;
    if (row.replaced) return { state: 'replaced' };
    return {
      state: 'live',
      data: plainBytes(row.data),
      expiresAt: row.expiry,
      createdAt: row.created_at,
      lifetime: row.max_age === null ? undefined : { maxAge: row.max_age, persistent: row.persistent !== false },
      version: row.version,
      handle: row.handle ?? '',
    };
  }

  async findAll(signal?: AbortSignal): Promise<Map<string, Uint8Array>> {
    const result = await this.#query<{ token: string; data: Buffer }>(
      'findAll',
      signal,
      `SELECT token, data FROM ${this.#table} WHERE expiry > now() AND NOT replaced`,
      [],
    );
    return new Map(result.rows.map((row) => [row.token, plainBytes(row.data)]));
  }

  async insert(id: string, record: SessionRecord, signal?: AbortSignal): Promise<void> {
    await this.#query(
      'insert',
      signal,
      `INSERT INTO ${this.#table} (token, data, expiry, "user", provider, created_at, max_age, persistent, handle, user_agent, device, version)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 1)`,
      [this.#key(id), ...this.#recordValues(record)],
    );
  }

  /**
   * One statement when it succeeds: the old row becomes a replaced row only
   * while live, and the new row is inserted only from what that update
   * returned, atomically. A second (a read) when it did not, to say why.
   */
  async replace(
    oldId: string,
    newId: string,
    record: SessionRecord,
    expectedVersion: number,
    signal?: AbortSignal,
  ): Promise<LiveWrite> {
    const result = await this.#query(
      'replace',
      signal,
      `WITH old AS (
         UPDATE ${this.#table}
         SET replaced = true, data = '\\x', "user" = NULL, provider = NULL, max_age = NULL, persistent = NULL,
             handle = NULL, user_agent = NULL, device = NULL,
             expiry = now() + $12::integer * interval '1 millisecond', updated_at = now()
         WHERE token = $13 AND expiry > now() AND NOT replaced AND version = $14
         RETURNING token)
       INSERT INTO ${this.#table} (token, data, expiry, "user", provider, created_at, max_age, persistent, handle, user_agent, device, version)
       SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 1 FROM old`,
      [this.#key(newId), ...this.#recordValues(record), replacedRecordMs, this.#key(oldId), expectedVersion],
    );
    return result.rowCount === 1 ? writeDone : this.#whyNotLive(oldId, signal);
  }

  async updateLive(id: string, change: LiveChange, signal?: AbortSignal): Promise<LiveWrite> {
    const values: unknown[] = [this.#key(id)];
    const set = ['updated_at = now()'];
    const bind = (column: string, value: unknown) => {
      values.push(value);
      set.push(`${column} = $${values.length}`);
    };
    if (change.data !== undefined) bind('data', buffer(change.data));
    if (change.expiresAt !== undefined) bind('expiry', change.expiresAt);
    if (change.lifetime !== undefined) {
      bind('max_age', change.lifetime?.maxAge ?? null);
      bind('persistent', change.lifetime?.persistent ?? null);
    }
    if (change.owner !== undefined) {
      bind('"user"', change.owner.user ?? null);
      bind('provider', change.owner.provider ?? null);
    }
    if (change.handle !== undefined) bind('handle', change.handle);
    let guard = '';
    if (change.expectedVersion !== undefined) {
      set.push('version = version + 1');
      values.push(change.expectedVersion);
      guard = ` AND version = $${values.length}`;
    }
    const result = await this.#query(
      'update',
      signal,
      `UPDATE ${this.#table} SET ${set.join(', ')} WHERE token = $1 AND expiry > now() AND NOT replaced${guard}`,
      values,
    );
    return result.rowCount === 1 ? writeDone : this.#whyNotLive(id, signal);
  }

  async upsert(id: string, data: Uint8Array, expiresAt: Date, signal?: AbortSignal): Promise<void> {
    // Both data and expiry move on conflict (scs's Bun store forgot the expiry).
    await this.#query(
      'upsert',
      signal,
      `INSERT INTO ${this.#table} (token, data, expiry) VALUES ($1, $2, $3)
       ON CONFLICT (token) DO UPDATE SET data = EXCLUDED.data, expiry = EXCLUDED.expiry, updated_at = now()`,
      [this.#key(id), buffer(data), expiresAt],
    );
  }

  async delete(id: string, signal?: AbortSignal): Promise<void> {
    await this.#query('delete', signal, `DELETE FROM ${this.#table} WHERE token = $1`, [this.#key(id)]);
  }

  async deleteOwnedBy(user: string, provider: string): Promise<number> {
    const result = await this.#query(
      'deleteOwnedBy',
      undefined,
      `DELETE FROM ${this.#table} WHERE "user" = $1 AND provider = $2 AND expiry > now()`,
      [user, provider],
    );
    return result.rowCount ?? 0;
  }

  async listOwnedBy(user: string, provider: string): Promise<DeviceRecord[]> {
    const result = await this.#query<{
      handle: string | null;
      created_at: Date;
      updated_at: Date;
      expiry: Date;
      user_agent: string | null;
      device: string | null;
    }>(
      'listOwnedBy',
      undefined,
      `SELECT handle, created_at, updated_at, expiry, user_agent, device FROM ${this.#table}
       WHERE "user" = $1 AND provider = $2 AND expiry > now() AND NOT replaced ORDER BY created_at DESC`,
      [user, provider],
    );
    return result.rows.map((row) => ({
      handle: row.handle ?? '',
      createdAt: row.created_at,
      lastSeenAt: row.updated_at,
      expiresAt: row.expiry,
      userAgent: row.user_agent ?? undefined,
      details: row.device ?? undefined,
    }));
  }

  async deleteOwnedByHandle(user: string, provider: string, handle: string, except: boolean): Promise<number> {
    const result = await this.#query(
      'deleteOwnedByHandle',
      undefined,
      `DELETE FROM ${this.#table} WHERE "user" = $1 AND provider = $2 AND expiry > now() AND NOT replaced
       AND handle ${except ? 'IS DISTINCT FROM' : '='} $3`,
      [user, provider, handle],
    );
    return result.rowCount ?? 0;
  }

  async countLive(): Promise<number> {
    const result = await this.#query<{ count: string }>(
      'count',
      undefined,
      `SELECT count(*) AS count FROM ${this.#table} WHERE expiry > now() AND NOT replaced`,
      [],
    );
    return Number(result.rows[0]?.count ?? 0);
  }

  /** Counts live rows by `provider` (null: no owner). One statement. */
  async countLiveByProvider(signal?: AbortSignal): Promise<Map<string | null, number>> {
    const result = await this.#query<{ provider: string | null; count: string }>(
      'countByProvider',
      signal,
      `SELECT provider, count(*) AS count FROM ${this.#table} WHERE expiry > now() AND NOT replaced GROUP BY provider`,
      [],
    );
    return new Map(result.rows.map((row) => [row.provider, Number(row.count)]));
  }

  /**
   * Deletes at most `limit` expired rows, found on the expiry index. One
   * statement. The rows it picks are locked as they are picked (`FOR
   * UPDATE`), so each is still expired when it is deleted; a row another
   * transaction holds (a token being committed anew, a refresh at the
   * expiry, another instance's cleanup) is skipped (`SKIP LOCKED`) and left
   * to a later batch, never waited for: a held lock can neither stall the
   * housekeeping nor pile up blocked statements on the pool. The ids are
   * gathered into an array first (`= ANY (ARRAY(...))`): as `IN (subquery)`
   * the planner may rerun the subquery for every row of a table it thinks
   * tiny, and each rerun, skipping the rows already deleted, returns
   * `limit` more, so one statement would delete every expired row.
   */
  async deleteExpired(limit: number, signal?: AbortSignal): Promise<number> {
    const result = await this.#query(
      'deleteExpired',
      signal,
      `DELETE FROM ${this.#table} WHERE token = ANY (ARRAY(` +
        `SELECT token FROM ${this.#table} WHERE expiry <= now() LIMIT $1 FOR UPDATE SKIP LOCKED))`,
      [limit],
    );
    return result.rowCount ?? 0;
  }

  #key(id: string): string {
    return storageKey(id, this.#options.hashIds);
  }

  /** The bound values $2..$11 of a row: data, expiry, owner, created_at, lifetime, device. */
  #recordValues(record: SessionRecord): unknown[] {
    return [
      buffer(record.data),
      record.expiresAt,
      record.owner.user ?? null,
      record.owner.provider ?? null,
      record.createdAt,
      record.lifetime?.maxAge ?? null,
      record.lifetime?.persistent ?? null,
      record.device.handle,
      record.device.userAgent ?? null,
      record.device.details ?? null,
    ];
  }

  /** After a guarded write matched nothing: another version, replaced, or gone? */
  async #whyNotLive(id: string, signal: AbortSignal | undefined): Promise<LiveWrite> {
    return writeFailure(await this.find(id, signal));
  }

  #query<Row extends object = object>(operation: string, signal: AbortSignal | undefined, text: string, values: unknown[]) {
    return runOperation(operation, signal, this.ensureSchema, () => this.#pool.query<Row>(text, values));
  }

  /**
   * Creates what is missing of the table, its columns and its indexes, and
   * nothing else: DDL takes strong locks (ALTER TABLE an ACCESS EXCLUSIVE
   * one, even with IF NOT EXISTS), so a store starting up against a complete
   * schema only reads the catalog.
   */
  async #createSchema(): Promise<void> {
    await runOperation('create schema', undefined, async () => {}, async () => {
      try {
        await this.#applyMissingSchema();
      } catch (error) {
        // Two processes creating the same table at once can collide in the
        // catalog; the second attempt then finds it there.
        const code = (error as { code?: unknown }).code;
        if (code !== '23505' && code !== '42P07') throw error;
        await this.#applyMissingSchema();
      }
    });
  }

  async #applyMissingSchema(): Promise<void> {
    const { rows } = await this.#pool.query<{ columns: string[] | null; indexes: string[] | null }>(
      `SELECT (SELECT array_agg(attname::text) FROM pg_attribute
                WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped) AS columns,
              (SELECT array_agg(c.relname::text) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                WHERE i.indrelid = to_regclass($1)) AS indexes`,
      [this.#table],
    );
    const columns = new Set(rows[0]?.columns ?? []);
    const indexes = new Set(rows[0]?.indexes ?? []);
    const statements: string[] = [];
    if (columns.size === 0) {
      statements.push(`CREATE TABLE IF NOT EXISTS ${this.#table} (
         token TEXT PRIMARY KEY,
         data BYTEA NOT NULL,
         expiry TIMESTAMPTZ NOT NULL,
         "user" TEXT,
         provider TEXT,
         created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
         updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
         ${addedColumns.map(([name, type]) => `${name} ${type}`).join(',\n         ')})`);
    } else {
      // A table of 0.1.0: nullable or constant-default columns, so PostgreSQL rewrites nothing.
      const missing = addedColumns.filter(([name]) => !columns.has(name));
      if (missing.length > 0) {
        statements.push(`ALTER TABLE ${this.#table} ${missing.map(([name, type]) => `ADD COLUMN IF NOT EXISTS ${name} ${type}`).join(', ')}`);
      }
    }
    const wanted: [string, string][] = [[`${this.#name}_expiry_idx`, '(expiry)']];
    if (this.#options.indexOwners) wanted.push([`${this.#name}_owner_idx`, '("user", provider)']);
    for (const [name, key] of wanted) {
      if (!indexes.has(name)) statements.push(`CREATE INDEX IF NOT EXISTS "${name}" ON ${this.#table} ${key}`);
    }
    // One round trip (the simple query protocol runs several statements).
    if (statements.length > 0) await this.#pool.query(statements.join(';\n'));
  }
}

/** Columns added after 0.1.0, with their types. */
const addedColumns: readonly [string, string][] = [
  ['max_age', 'INTEGER'],
  ['persistent', 'BOOLEAN'],
  ['replaced', 'BOOLEAN NOT NULL DEFAULT false'],
  ['version', 'INTEGER NOT NULL DEFAULT 0'],
  ['handle', 'TEXT'],
  ['user_agent', 'TEXT'],
  ['device', 'TEXT'],
];

function buffer(data: Uint8Array): Buffer {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/** The pool's database name, from its options or its connection string, for telemetry; undefined when neither says. */
function databaseName(pool: Pool): string | undefined {
  const options = (pool as { options?: { database?: unknown; connectionString?: unknown } }).options;
  if (typeof options?.database === 'string') return options.database;
  if (typeof options?.connectionString !== 'string') return undefined;
  try {
    const name = decodeURIComponent(new URL(options.connectionString).pathname.slice(1));
    return name === '' ? undefined : name;
  } catch {
    return undefined;
  }
}
