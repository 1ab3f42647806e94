/**
 * The PostgreSQL backend's statements by owner ("user" + provider, served
 * by the owner index): forced logout, the devices page and the session
 * limit. Every value is a bound parameter.
 */
import type { QueryResult } from 'pg';
import type { DeviceRecord, LimitResult, SessionLimit } from '../backend.ts';
import { deviceColumns, deviceRecordOf, type DeviceRow } from './rows.ts';

/** The session table: its quoted name, and how one statement runs on it (within the store's bounds). */
export interface OwnedRows {
  table: string;
  query: <Row extends object = object>(operation: string, signal: AbortSignal | undefined, text: string, values: unknown[]) => Promise<QueryResult<Row>>;
}

const owned = `"user" = $1 AND provider = $2`;
const live = `${owned} AND expiry > now() AND NOT replaced`;

/** Deletes every live row of the owner. @returns how many. */
export async function deleteOwned({ table, query }: OwnedRows, user: string, provider: string): Promise<number> {
  const result = await query('deleteOwnedBy', undefined, `DELETE FROM ${table} WHERE ${owned} AND expiry > now()`, [user, provider]);
  return result.rowCount ?? 0;
}

/** At most `limit` of the owner's live rows, newest first, without tokens or data. */
export async function listOwned({ table, query }: OwnedRows, user: string, provider: string, limit: number): Promise<DeviceRecord[]> {
  const result = await query<DeviceRow>(
    'listOwnedBy',
    undefined,
    `SELECT ${deviceColumns} FROM ${table} WHERE ${live} ORDER BY created_at DESC LIMIT $3`,
    [user, provider, limit],
  );
  return result.rows.map(deviceRecordOf);
}

/** Deletes the owner's live rows with (or, `except`, without) this handle. @returns how many. */
export async function deleteOwnedWithHandle({ table, query }: OwnedRows, user: string, provider: string, handle: string, except: boolean): Promise<number> {
  const result = await query(
    'deleteOwnedByHandle',
    undefined,
    `DELETE FROM ${table} WHERE ${live} AND handle ${except ? 'IS DISTINCT FROM' : '='} $3`,
    [user, provider, handle],
  );
  return result.rowCount ?? 0;
}

/** Counts the owner's live rows. */
export async function countOwned({ table, query }: OwnedRows, user: string, provider: string, signal?: AbortSignal): Promise<number> {
  const result = await query<{ count: number }>('countOwnedBy', signal, `SELECT count(*)::integer AS count FROM ${table} WHERE ${live}`, [
    user,
    provider,
  ]);
  return result.rows[0]?.count ?? 0;
}

/**
 * Holds the owner to `limit.max` live rows after the write that gave it
 * the row `key` (see `SessionBackend.limitOwnedBy`); one statement.
 * `'evict-oldest'`: the owner's live rows ranked by last write (newest
 * first, then the greater token: one fixed order for every caller), those
 * beyond `max` deleted. The victims are gathered into an array first, so
 * the delete locks them in token order, the same for every caller: two
 * trims of one owner do not deadlock.
 * `'refuse'`: the row `key` deleted when the owner has more than `max`
 * live rows, counted with the rows locked (in token order): two checks of
 * one owner run one after the other, the second counting without the row
 * the first withdrew, so a burst of sign-ins keeps exactly `max` (MongoDB
 * has no such lock: there a burst may keep fewer).
 */
export async function limitOwned(
  { table, query }: OwnedRows,
  user: string,
  provider: string,
  key: string,
  limit: SessionLimit,
  signal?: AbortSignal,
): Promise<LimitResult> {
  const text =
    limit.policy === 'refuse'
      ? `WITH held AS (SELECT token FROM ${table} WHERE ${live} ORDER BY token FOR UPDATE),
         gone AS (DELETE FROM ${table} WHERE token = $3 AND ${owned} AND (SELECT count(*) FROM held) > $4 RETURNING token)
         SELECT count(*)::integer AS ended, count(*) > 0 AS "ownEnded" FROM gone`
      : `WITH ranked AS (
           SELECT token, row_number() OVER (ORDER BY updated_at DESC, token DESC) AS rank FROM ${table} WHERE ${live}),
         gone AS (
           DELETE FROM ${table} WHERE token = ANY (ARRAY(SELECT token FROM ranked WHERE rank > $4)) AND ${owned} RETURNING token)
         SELECT (SELECT count(*)::integer FROM gone) AS ended,
                EXISTS (SELECT 1 FROM ranked WHERE token = $3 AND rank > $4) AS "ownEnded"`;
  const result = await query<LimitResult>('limitOwnedBy', signal, text, [user, provider, key, limit.max]);
  return result.rows[0] ?? { ended: 0, ownEnded: false };
}
