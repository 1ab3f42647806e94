/**
 * Rows of the session table and the records they are: what a read selects
 * and gives, and the values an insert binds.
 */
import type { Pool } from 'pg';
import { type DeviceRecord, type FoundSession, plainBytes, type SessionRecord } from '../backend.ts';
import { entriesOf } from './sql.ts';

/** What `find` selects of a session row. */
export interface SessionRow {
  data: Buffer;
  entries: Record<string, unknown> | null;
  flashes: Record<string, unknown> | null;
  epoch: number;
  expiry: Date;
  created_at: Date;
  max_age: number | null;
  persistent: boolean | null;
  replaced: boolean;
  handle: string | null;
  signed_in_at: Date | null;
}

export const sessionColumns = 'data, entries, flashes, epoch, expiry, created_at, max_age, persistent, replaced, handle, signed_in_at';

/** What `find` gives for the row read (undefined: none live). */
export function foundSessionOf(row: SessionRow | undefined): FoundSession {
  if (row === undefined) return undefined;
  if (row.replaced) return { state: 'replaced' };
  return {
    state: 'live',
    content: row.entries === null ? { legacy: plainBytes(row.data) } : { values: entriesOf(row.entries), flashes: entriesOf(row.flashes) },
    epoch: row.epoch,
    expiresAt: row.expiry,
    createdAt: row.created_at,
    lifetime: row.max_age === null ? undefined : { maxAge: row.max_age, persistent: row.persistent !== false },
    handle: row.handle ?? '',
    signedInAt: row.signed_in_at ?? undefined,
  };
}

/** What `listOwnedBy` selects of a row. */
export interface DeviceRow {
  handle: string | null;
  created_at: Date;
  updated_at: Date;
  expiry: Date;
  user_agent: string | null;
  device: string | null;
  signed_in_at: Date | null;
}

export const deviceColumns = 'handle, created_at, updated_at, expiry, user_agent, device, signed_in_at';

/** A row as a devices page lists it. */
export function deviceRecordOf(row: DeviceRow): DeviceRecord {
  return {
    handle: row.handle ?? '',
    createdAt: row.created_at,
    lastSeenAt: row.updated_at,
    expiresAt: row.expiry,
    userAgent: row.user_agent ?? undefined,
    details: row.device ?? undefined,
    signedInAt: row.signed_in_at ?? undefined,
  };
}

/** The columns a session record fills, bound as $2..$12 by {@link recordValues}. */
export const recordColumns = 'expiry, "user", provider, created_at, max_age, persistent, handle, user_agent, device, epoch, signed_in_at';

/** The bound values $2..$12 of a row, in the order of {@link recordColumns}. */
export function recordValues(record: SessionRecord): unknown[] {
  return [
    record.expiresAt,
    record.owner.user ?? null,
    record.owner.provider ?? null,
    record.createdAt,
    record.lifetime?.maxAge ?? null,
    record.lifetime?.persistent ?? null,
    record.device.handle,
    record.device.userAgent ?? null,
    record.device.details ?? null,
    record.epoch,
    record.signedInAt ?? null,
  ];
}

/** The pool's database name, from its options or its connection string, for telemetry; undefined when neither says. */
export function databaseName(pool: Pool): string | undefined {
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

