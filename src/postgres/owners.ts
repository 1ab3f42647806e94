/**
 * The PostgreSQL backend's statements by owner ("user" + provider, served
 * by the owner index): forced logout, the devices page and the session
 * limit. Every value is a bound parameter.
 *
 * Every statement here that deletes or locks several of an owner's rows
 * locks them first, in token order (`lockedInOrder`): two such statements
 * (a forced logout, a device revocation, the limit's checks) then wait for
 * each other instead of deadlocking. The other statements of the store
 * lock one row at a time.
 */
import type { QueryResult } from 'pg';
import { type DeviceRecord, type LimitResult, maxChainLength, type SessionLimit } from '../backend.ts';
import { deviceColumns, deviceRecordOf, type DeviceRow } from './rows.ts';

/** The session table: its quoted name, and how one statement runs on it (within the store's bounds). */
export interface OwnedRows {
  table: string;
  query: <Row extends object = object>(operation: string, signal: AbortSignal | undefined, text: string, values: unknown[]) => Promise<QueryResult<Row>>;
}

const owned = `"user" = $1 AND provider = $2`;
const live = `${owned} AND expiry > now() AND NOT replaced`;

/**
 * The tokens of the rows `where` selects, locked in token order, as an
 * array: gathered before the statement around it goes on (`ARRAY(...)` is
 * computed once, first), so it takes no row lock in another order.
 */
function lockedInOrder(table: string, where: string): string {
  return `ARRAY(SELECT token FROM ${table} WHERE ${where} ORDER BY token FOR UPDATE)`;
}

/** Most times the limit's check runs again after a row it read changed under it. */
const maxLimitPasses = 5;

/** Deletes every live row of the owner. @returns how many. */
export async function deleteOwned({ table, query }: OwnedRows, user: string, provider: string): Promise<number> {
  const result = await query('deleteOwnedBy', undefined, `DELETE FROM ${table} WHERE token = ANY (${lockedInOrder(table, `${owned} AND expiry > now()`)})`, [
    user,
    provider,
  ]);
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
    `DELETE FROM ${table} WHERE token = ANY (${lockedInOrder(table, `${live} AND handle ${except ? 'IS DISTINCT FROM' : '='} $3`)})`,
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
 * the row `key` (see `SessionBackend.limitOwnedBy`); one statement, again
 * (at most 5 times in all) when a row it read changed before it could
 * lock it (a regeneration moved it to a new token the statement's snapshot
 * does not hold, a sign-out deleted it): only a statement that locked
 * every row it read decides on a true picture.
 * `'evict-oldest'`: the owner's live rows ranked by last write (newest
 * first, then the greater token: one fixed order for every caller), those
 * beyond `max` locked and deleted.
 * `'refuse'`: the row `key` deleted when the owner has more than `max`
 * live rows, counted with the rows locked: two checks of one owner run one
 * after the other, the second counting without the row the first
 * withdrew, so a burst of sign-ins keeps exactly `max` (unless a
 * regeneration moves a session between two checks: then one may withdraw
 * the moved one as well, keeping fewer; MongoDB has no such lock: there a
 * burst may keep fewer).
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
      ? `WITH seen AS (SELECT count(*) AS n FROM ${table} WHERE ${live}),
         held AS (SELECT count(*) AS n FROM unnest(${lockedInOrder(table, live)})),
         settled AS (SELECT (SELECT n FROM held) = (SELECT n FROM seen) AS yes),
         gone AS (DELETE FROM ${table} WHERE token = $3 AND ${owned}
           AND ((SELECT yes FROM settled) OR $5) AND (SELECT n FROM held) > $4 RETURNING token)
         SELECT (SELECT count(*)::integer FROM gone) AS ended, (SELECT yes FROM settled) AS settled, (SELECT n FROM held) > $4 AS over`
      : `WITH ranked AS (
           SELECT token, row_number() OVER (ORDER BY updated_at DESC, token DESC) AS rank FROM ${table} WHERE ${live}),
         victims AS (SELECT token FROM ranked WHERE rank > $4),
         gone AS (DELETE FROM ${table} WHERE token = ANY (${lockedInOrder(table, `token = ANY (ARRAY(SELECT token FROM victims)) AND ${live}`)}) RETURNING token)
         SELECT (SELECT count(*)::integer FROM gone) AS ended, (SELECT count(*) FROM gone) = (SELECT count(*) FROM victims) AS settled,
                EXISTS (SELECT 1 FROM gone WHERE token = $3) AS "ownEnded", EXISTS (SELECT 1 FROM ranked WHERE token = $3 AND rank <= $4) AS "ownKept",
                EXISTS (SELECT 1 FROM ${table} WHERE token = $3 AND (replaced OR expiry > now())) AS "ownThere"`;
  let ended = 0;
  let ownEnded = false;
  for (let pass = 1; ; pass++) {
    const last = pass >= maxLimitPasses;
    const values = limit.policy === 'refuse' ? [user, provider, key, limit.max, last] : [user, provider, key, limit.max];
    const result = await query<LimitRow>('limitOwnedBy', signal, text, values);
    const row = result.rows[0] ?? { ended: 0, settled: true };
    ended += row.ended;
    if (limit.policy === 'refuse') {
      ownEnded ||= row.ended > 0;
      if (!row.settled && !last) continue;
      // Over, and the own row was not there to delete: a regeneration moved it.
      if (row.over === true && !ownEnded) return withdrawMoved({ table, query }, user, provider, key, signal);
      return { ended, ownEnded };
    }
    // Gone afterwards: deleted by this statement, or (not kept by it) already by another.
    ownEnded ||= row.ownEnded === true || (row.ownKept === false && row.ownThere === false);
    if (row.settled || last) return { ended, ownEnded };
  }
}

interface LimitRow {
  ended: number;
  settled: boolean;
  over?: boolean;
  ownEnded?: boolean;
  ownKept?: boolean;
  /** The own row is live or a replaced one (moved on by a regeneration), not deleted or expired. */
  ownThere?: boolean;
}

/**
 * Deletes the row the sign-in's row `key` was regenerated into (following
 * the chain), while it is still this owner's and live: one statement per move.
 */
async function withdrawMoved({ table, query }: OwnedRows, user: string, provider: string, key: string, signal?: AbortSignal): Promise<LimitResult> {
  let current: string | null | undefined = key;
  for (let hop = 0; typeof current === 'string' && hop <= maxChainLength; hop++) {
    const result: { rows: { ended: number; next: string | null }[] } = await query<{ ended: number; next: string | null }>(
      'limitOwnedBy',
      signal,
      `WITH gone AS (DELETE FROM ${table} WHERE token = $3 AND ${live} RETURNING token)
       SELECT (SELECT count(*)::integer FROM gone) AS ended, (SELECT replaced_by FROM ${table} WHERE token = $3) AS next`,
      [user, provider, current],
    );
    const row = result.rows[0];
    if (row !== undefined && row.ended > 0) return { ended: row.ended, ownEnded: true };
    current = row?.next;
  }
  return { ended: 0, ownEnded: false };
}
