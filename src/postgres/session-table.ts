/**
 * The PostgreSQL implementation of the persistence interface: one table in
 * the shape of scs's pgxstore, plus the owner columns forced logout needs.
 *
 *   token TEXT PRIMARY KEY, data BYTEA NOT NULL, expiry TIMESTAMPTZ NOT NULL,
 *   "user" TEXT, provider TEXT, created_at, updated_at
 *   indexes: (expiry), ("user", provider)
 *
 * Every read filters `expiry > now()`; updates of live sessions carry the
 * same filter. All values are bound parameters; the table name is checked as
 * an identifier and quoted.
 */
import type { Pool } from 'pg';
import {
  type LiveChange,
  type Owner,
  once,
  plainBytes,
  runOperation,
  type SessionBackend,
  type StoredSession,
  storageKey,
} from '../backend.ts';
import { SessionOptionsError } from '../errors.ts';

/** How the table is set up; fixed for the life of a store. */
export interface SessionTableOptions {
  /** Keep SHA-256(token) instead of the token. */
  hashIds: boolean;
  /** Index ("user", provider) for forced logout. */
  indexOwners: boolean;
}

const identifier = /^[A-Za-z_][A-Za-z0-9_]{0,47}$/;

export class SessionTable implements SessionBackend {
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
    this.#name = table;
    this.#table = `"${table}"`;
    this.#options = options;
    this.ensureSchema = once(() => this.#createSchema());
  }

  async find(id: string, signal?: AbortSignal): Promise<StoredSession | undefined> {
    const result = await this.#query<{ data: Buffer; expiry: Date }>(
      'find',
      signal,
      `SELECT data, expiry FROM ${this.#table} WHERE token = $1 AND expiry > now()`,
      [this.#key(id)],
    );
    const row = result.rows[0];
    return row ? { data: plainBytes(row.data), expiresAt: row.expiry } : undefined;
  }

  async findAll(signal?: AbortSignal): Promise<Map<string, Uint8Array>> {
    const result = await this.#query<{ token: string; data: Buffer }>(
      'findAll',
      signal,
      `SELECT token, data FROM ${this.#table} WHERE expiry > now()`,
      [],
    );
    return new Map(result.rows.map((row) => [row.token, plainBytes(row.data)]));
  }

  async insert(id: string, data: Uint8Array, expiresAt: Date, owner: Owner): Promise<void> {
    await this.#query(
      'insert',
      undefined,
      `INSERT INTO ${this.#table} (token, data, expiry, "user", provider) VALUES ($1, $2, $3, $4, $5)`,
      [this.#key(id), buffer(data), expiresAt, owner.user ?? null, owner.provider ?? null],
    );
  }

  /**
   * One statement: the old row is deleted only while live, and the new row is
   * inserted only from what that deletion returned, atomically.
   */
  async replace(oldId: string, newId: string, data: Uint8Array, expiresAt: Date, owner: Owner): Promise<boolean> {
    const result = await this.#query(
      'replace',
      undefined,
      `WITH old AS (DELETE FROM ${this.#table} WHERE token = $1 AND expiry > now() RETURNING token)
       INSERT INTO ${this.#table} (token, data, expiry, "user", provider)
       SELECT $2, $3, $4, $5, $6 FROM old`,
      [this.#key(oldId), this.#key(newId), buffer(data), expiresAt, owner.user ?? null, owner.provider ?? null],
    );
    return result.rowCount === 1;
  }

  async updateLive(id: string, change: LiveChange): Promise<boolean> {
    const values: unknown[] = [this.#key(id)];
    const set = ['updated_at = now()'];
    const bind = (column: string, value: unknown) => {
      values.push(value);
      set.push(`${column} = $${values.length}`);
    };
    if (change.data !== undefined) bind('data', buffer(change.data));
    if (change.expiresAt !== undefined) bind('expiry', change.expiresAt);
    if (change.owner !== undefined) {
      bind('"user"', change.owner.user ?? null);
      bind('provider', change.owner.provider ?? null);
    }
    const result = await this.#query(
      'update',
      undefined,
      `UPDATE ${this.#table} SET ${set.join(', ')} WHERE token = $1 AND expiry > now()`,
      values,
    );
    return result.rowCount === 1;
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

  async countLive(): Promise<number> {
    const result = await this.#query<{ count: string }>(
      'count',
      undefined,
      `SELECT count(*) AS count FROM ${this.#table} WHERE expiry > now()`,
      [],
    );
    return Number(result.rows[0]?.count ?? 0);
  }

  async deleteExpired(): Promise<number> {
    const result = await this.#query('deleteExpired', undefined, `DELETE FROM ${this.#table} WHERE expiry <= now()`, []);
    return result.rowCount ?? 0;
  }

  #key(id: string): string {
    return storageKey(id, this.#options.hashIds);
  }

  #query<Row extends object = object>(operation: string, signal: AbortSignal | undefined, text: string, values: unknown[]) {
    return runOperation(operation, signal, this.ensureSchema, () => this.#pool.query<Row>(text, values));
  }

  async #createSchema(): Promise<void> {
    const statements = [
      `CREATE TABLE IF NOT EXISTS ${this.#table} (
         token TEXT PRIMARY KEY,
         data BYTEA NOT NULL,
         expiry TIMESTAMPTZ NOT NULL,
         "user" TEXT,
         provider TEXT,
         created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
         updated_at TIMESTAMPTZ NOT NULL DEFAULT now())`,
      `CREATE INDEX IF NOT EXISTS "${this.#name}_expiry_idx" ON ${this.#table} (expiry)`,
    ];
    if (this.#options.indexOwners) {
      statements.push(`CREATE INDEX IF NOT EXISTS "${this.#name}_owner_idx" ON ${this.#table} ("user", provider)`);
    }
    // One round trip (the simple query protocol runs several statements).
    // Two processes creating the same table at once can collide in the
    // catalog; the second attempt then finds it there.
    await runOperation('create schema', undefined, async () => {}, async () => {
      try {
        await this.#pool.query(statements.join(';\n'));
      } catch (error) {
        const code = (error as { code?: unknown }).code;
        if (code !== '23505' && code !== '42P07') throw error;
        await this.#pool.query(statements.join(';\n'));
      }
    });
  }
}

function buffer(data: Uint8Array): Buffer {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}
