/**
 * The PostgreSQL implementation of the persistence interface: one table in
 * the shape of scs's pgxstore, plus the owner columns forced logout needs.
 *
 *   token TEXT PRIMARY KEY, data BYTEA NOT NULL, expiry TIMESTAMPTZ NOT NULL,
 *   "user" TEXT, provider TEXT, created_at, updated_at,
 *   max_age INTEGER, persistent BOOLEAN, replaced BOOLEAN NOT NULL DEFAULT false,
 *   handle TEXT, user_agent TEXT, device TEXT,
 *   entries JSONB, flashes JSONB, epoch INTEGER NOT NULL DEFAULT 0, replaced_by TEXT
 *   indexes: (expiry), ("user", provider)
 *
 * A token's bytes are `data`; a session's values and flashes are `entries`
 * and `flashes`, one jsonb string per entry under the store's field names
 * (see content.ts), so a save changes just its entries:
 * `entries = (entries - $unset) || $set`. Rows of earlier versions hold a
 * session in `data` (entries NULL); their next write converts them.
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
  type ContentDelta,
  type DeviceRecord,
  type FoundSession,
  type LiveChange,
  type LimitResult,
  type LiveWrite,
  maxChainLength,
  plainBytes,
  replacedRecordMs,
  type SessionBackend,
  type SessionLimit,
  type SessionRecord,
  storageKey,
  type WriteGuard,
  writeDone,
  writeFailure,
} from '../backend.ts';
import { once, runOperation } from '../operations.ts';
import { SessionOptionsError } from '../errors.ts';
import { countOwned, deleteOwned, deleteOwnedWithHandle, limitOwned, listOwned, type OwnedRows } from './owners.ts';
import { createSchema } from './schema.ts';
import {
  databaseName,
  foundSessionOf,
  recordColumns,
  recordValues,
  sessionColumns,
  type SessionRow,
} from './rows.ts';
import { guardSql, jsonOf, mergedSql } from './sql.ts';
import type { DatabaseDescription } from '../telemetry.ts';

/** How the table is set up; fixed for the life of a store. */
export interface SessionTableOptions {
  /** Keep SHA-256(token) instead of the token. */
  hashIds: boolean;
  /** Index ("user", provider) for forced logout. */
  indexOwners: boolean;
  /** The schema the table is in; undefined: the first of the search path. */
  schema?: string | undefined;
}

const identifier = /^[A-Za-z_][A-Za-z0-9_]{0,47}$/;

function checkIdentifier(name: unknown, label: string): void {
  if (typeof name !== 'string' || !identifier.test(name)) {
    throw new SessionOptionsError(`${label} must be a plain SQL identifier of at most 48 characters, not ${JSON.stringify(name)}`);
  }
}

export class SessionTable implements SessionBackend {
  readonly database: DatabaseDescription;
  readonly #pool: Pool;
  readonly #table: string;
  readonly #options: SessionTableOptions;
  readonly ensureSchema: () => Promise<void>;
  /** The statements by owner (owners.ts) on this table. */
  readonly #owners: OwnedRows;

  /**
   * @throws SessionOptionsError for a table or schema name that is not a
   * plain identifier of at most 48 characters.
   */
  constructor(pool: Pool, table: string, options: SessionTableOptions) {
    checkIdentifier(table, 'table');
    if (options.schema !== undefined) checkIdentifier(options.schema, 'schema');
    this.#pool = pool;
    const qualified = options.schema === undefined ? table : `${options.schema}.${table}`;
    this.database = { system: 'postgresql', namespace: databaseName(pool), collection: qualified };
    // Both parts checked as plain identifiers above, then quoted.
    this.#table = options.schema === undefined ? `"${table}"` : `"${options.schema}"."${table}"`;
    this.#options = options;
    const quoted = this.#table;
    this.ensureSchema = once(() => createSchema(pool, { name: table, quoted }, options.indexOwners));
    this.#owners = { table: quoted, query: (operation, signal, text, values) => this.#query(operation, signal, text, values) };
  }

  async find(id: string, signal?: AbortSignal): Promise<FoundSession> {
    const result = await this.#query<SessionRow>(
      'find',
      signal,
      `SELECT ${sessionColumns} FROM ${this.#table} WHERE token = $1 AND expiry > now()`,
      [this.#key(id)],
    );
    return foundSessionOf(result.rows[0]);
  }

  async findData(id: string, signal?: AbortSignal): Promise<Uint8Array | undefined> {
    const result = await this.#query<{ data: Buffer }>(
      'find',
      signal,
      `SELECT data FROM ${this.#table} WHERE token = $1 AND expiry > now() AND NOT replaced`,
      [this.#key(id)],
    );
    const row = result.rows[0];
    return row === undefined ? undefined : plainBytes(row.data);
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
    // ON CONFLICT DO NOTHING: ids are 256 random bits and inserted once, so a
    // row with this token is this very insert, applied by an attempt whose
    // acknowledgement was lost and then retried (the store retries a failed
    // create under the same id): done, not an error for the app.
    await this.#query(
      'insert',
      signal,
      `INSERT INTO ${this.#table} (token, data, ${recordColumns}, entries, flashes)
       VALUES ($1, '\\x', $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13::jsonb, $14::jsonb)
       ON CONFLICT (token) DO NOTHING`,
      [this.#key(id), ...recordValues(record), jsonOf(record.content.values), jsonOf(record.content.flashes)],
    );
  }

  /**
   * One statement when it succeeds: the old row is locked and read within
   * the guard, becomes a replaced row naming the new one, and the new row is
   * inserted from what that returned (with `carry`, the old content with
   * the delta applied), atomically. A second (a read) when it did not, to say why.
   */
  async replace(
    oldId: string,
    newId: string,
    record: SessionRecord,
    guard: WriteGuard,
    carry: ContentDelta | undefined,
    signal?: AbortSignal,
  ): Promise<LiveWrite> {
    const values: unknown[] = [this.#key(newId), ...recordValues(record)];
    const bind = (value: unknown) => `$${values.push(value)}`;
    const entries = carry === undefined ? `${bind(jsonOf(record.content.values))}::jsonb` : mergedSql('prior.entries', carry.values, bind);
    const flashes = carry === undefined ? `${bind(jsonOf(record.content.flashes))}::jsonb` : mergedSql('prior.flashes', carry.flashes, bind);
    const result = await this.#query(
      'replace',
      signal,
      `WITH prior AS (
         SELECT token, entries, flashes FROM ${this.#table}
         WHERE token = ${bind(this.#key(oldId))} AND expiry > now() AND NOT replaced AND ${guardSql(guard, bind)}
         FOR UPDATE),
       old AS (
         UPDATE ${this.#table} AS row
         SET replaced = true, replaced_by = $1, data = '\\x', entries = NULL, flashes = NULL, "user" = NULL, provider = NULL,
             max_age = NULL, persistent = NULL, handle = NULL, user_agent = NULL, device = NULL, signed_in_at = NULL,
             expiry = now() + ${bind(replacedRecordMs)}::integer * interval '1 millisecond', updated_at = now()
         FROM prior WHERE row.token = prior.token
         RETURNING prior.entries, prior.flashes)
       INSERT INTO ${this.#table} (token, data, ${recordColumns}, entries, flashes)
       SELECT $1, '\\x', $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, ${entries}, ${flashes} FROM old AS prior`,
      values,
    );
    if (result.rowCount === 1) return writeDone;
    // One read says why: retired already in this new id's name (this very
    // regeneration, applied by an attempt whose acknowledgement was lost; the
    // store retries under the same new id), or not live within the guard.
    const old = await this.#query<SessionRow & { replaced_by: string | null }>(
      'find',
      signal,
      `SELECT ${sessionColumns}, replaced_by FROM ${this.#table} WHERE token = $1 AND expiry > now()`,
      [this.#key(oldId)],
    );
    const row = old.rows[0];
    return row?.replaced_by === this.#key(newId) ? writeDone : writeFailure(foundSessionOf(row), guard);
  }

  async updateLive(id: string, change: LiveChange, signal?: AbortSignal): Promise<LiveWrite> {
    const values: unknown[] = [this.#key(id)];
    const bind = (value: unknown) => `$${values.push(value)}`;
    const set = ['updated_at = now()'];
    if (change.content !== undefined) {
      const { content } = change;
      if (content.mode === 'replace') {
        set.push(
          `entries = ${bind(jsonOf(content.values.set))}::jsonb`,
          `flashes = ${bind(jsonOf(content.flashes.set))}::jsonb`,
          `data = '\\x'`,
        );
      } else {
        set.push(`entries = ${mergedSql('entries', content.values, bind)}`, `flashes = ${mergedSql('flashes', content.flashes, bind)}`);
      }
    }
    if (change.expiresAt !== undefined) set.push(`expiry = ${bind(change.expiresAt)}`);
    if (change.lifetime !== undefined) {
      set.push(`max_age = ${bind(change.lifetime?.maxAge ?? null)}`, `persistent = ${bind(change.lifetime?.persistent ?? null)}`);
    }
    if (change.owner !== undefined) {
      set.push(
        `"user" = ${bind(change.owner.user ?? null)}`,
        `provider = ${bind(change.owner.provider ?? null)}`,
        `signed_in_at = ${bind(change.signedInAt ?? null)}`,
        'epoch = epoch + 1',
      );
    }
    if (change.handle !== undefined) set.push(`handle = ${bind(change.handle)}`);
    const result = await this.#query(
      'update',
      signal,
      `UPDATE ${this.#table} SET ${set.join(', ')} WHERE token = $1 AND expiry > now() AND NOT replaced AND ${guardSql(change, bind)}`,
      values,
    );
    return result.rowCount === 1 ? writeDone : this.#whyNotLive(id, change, signal);
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

  /** Deletes the session row and the chain of rows it was regenerated into: one statement per row. */
  async deleteChain(id: string, signal?: AbortSignal): Promise<void> {
    let key: string | null | undefined = this.#key(id);
    for (let hop = 0; typeof key === 'string' && hop <= maxChainLength; hop++) {
      const result: { rows: { replaced_by: string | null }[] } = await this.#query<{ replaced_by: string | null }>(
        'delete',
        signal,
        `DELETE FROM ${this.#table} WHERE token = $1 RETURNING replaced_by`,
        [key],
      );
      key = result.rows[0]?.replaced_by;
    }
  }

  deleteOwnedBy(user: string, provider: string): Promise<number> {
    return deleteOwned(this.#owners, user, provider);
  }

  listOwnedBy(user: string, provider: string, limit: number): Promise<DeviceRecord[]> {
    return listOwned(this.#owners, user, provider, limit);
  }

  deleteOwnedByHandle(user: string, provider: string, handle: string, except: boolean): Promise<number> {
    return deleteOwnedWithHandle(this.#owners, user, provider, handle, except);
  }

  countOwnedBy(user: string, provider: string, signal?: AbortSignal): Promise<number> {
    return countOwned(this.#owners, user, provider, signal);
  }

  /** The session limit after a sign-in, in one statement (owners.ts). */
  limitOwnedBy(user: string, provider: string, id: string, limit: SessionLimit, signal?: AbortSignal): Promise<LimitResult> {
    return limitOwned(this.#owners, user, provider, this.#key(id), limit, signal);
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

  /** After a guarded write matched nothing: another tenure or lifetime, replaced, or gone? */
  async #whyNotLive(id: string, guard: WriteGuard, signal: AbortSignal | undefined): Promise<LiveWrite> {
    return writeFailure(await this.find(id, signal), guard);
  }

  #query<Row extends object = object>(operation: string, signal: AbortSignal | undefined, text: string, values: unknown[]) {
    return runOperation(operation, signal, this.ensureSchema, () => this.#pool.query<Row>(text, values));
  }

}

function buffer(data: Uint8Array): Buffer {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}
