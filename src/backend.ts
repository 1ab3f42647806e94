/**
 * The persistence interface under both store APIs, and the pieces every
 * implementation shares. `SessionStore` (gorilla-style) and `TokenStore`
 * (scs-style) talk only to a `SessionBackend`; MongoDB and PostgreSQL each
 * implement it once.
 */
import { createHash } from 'node:crypto';
import { SessionStoreError } from './errors.ts';
import type { Owner } from './owner.ts';
import type { DatabaseDescription } from './telemetry.ts';

export type { Owner } from './owner.ts';

/**
 * How long a session lives, as its app set it: kept with the record so that
 * a "remember me" lifetime or a browser-session cookie survives the
 * session's later requests.
 */
export interface Lifetime {
  /** Seconds of inactivity after which the record expires (whole seconds). */
  maxAge: number;
  /** False: the cookie is a browser-session cookie (no Max-Age/Expires). */
  persistent: boolean;
}

/** A live record as the stores see it. */
export interface StoredSession {
  readonly state: 'live';
  data: Uint8Array;
  expiresAt: Date;
  /** When the session was first saved; kept across regeneration. */
  createdAt: Date;
  /** The session's own lifetime; undefined for records written without one (token stores). */
  lifetime: Lifetime | undefined;
  /** The session's handle; '' for a record written before handles existed (it gets one on its next write). */
  handle: string;
  /**
   * Moves on every write of the data (compare-and-set): 1 for a new record,
   * 0 for one written before versions existed.
   */
  version: number;
}

/**
 * A record that `replace` moved to a new id a short while ago: its id leads
 * to no session, but a request still holding it is a parallel request of the
 * same browser (which holds the new cookie), not a stale cookie to clear.
 */
export interface ReplacedSession {
  readonly state: 'replaced';
}

/** What `find` gives for an id: a live record, a recent replacement, or nothing. */
export type FoundSession = StoredSession | ReplacedSession | undefined;

/** A session record to write. */
export interface SessionRecord {
  data: Uint8Array;
  expiresAt: Date;
  owner: Owner;
  createdAt: Date;
  /** The session's own lifetime; undefined: the store's default (which then may change). */
  lifetime: Lifetime | undefined;
  /** What identifies the session on a devices page (see devices.ts). */
  device: DeviceFields;
}

/** A session's public handle and what was recorded about its browser. */
export interface DeviceFields {
  /** Random, public, not a credential; new with every id. */
  handle: string;
  /** The User-Agent the session was created with (bounded length). */
  userAgent: string | undefined;
  /** What the store's `describeDevice` hook returned, as JSON text (bounded). */
  details: string | undefined;
}

/** One live session of an owner as a devices page lists it: never its id or values. */
export interface DeviceRecord extends DeviceFields {
  createdAt: Date;
  /** The last write: a changed save or an expiry refresh (reads never move it). */
  lastSeenAt: Date;
  expiresAt: Date;
}

/** What `updateLive` changes; fields left out keep their value. */
export interface LiveChange {
  data?: Uint8Array;
  expiresAt?: Date;
  owner?: Owner;
  /** The session's own lifetime; null: back to the store's default. */
  lifetime?: Lifetime | null;
  /** Gives a record written before handles existed its handle. */
  handle?: string;
  /**
   * Compare-and-set: the write applies only while the record is at this
   * version, and moves it to the next. Set it whenever `data` is written.
   */
  expectedVersion?: number;
}

/**
 * The result of a write that needs the record live: done; a conflict (the
 * record is live at another version than expected: another request wrote
 * it, and `current` is what it holds now, ready to merge into); replaced by
 * a parallel regeneration (its id is a tombstone); or gone (missing,
 * expired, force-expired).
 */
export type LiveWrite =
  | { readonly outcome: 'done' }
  | { readonly outcome: 'conflict'; readonly current: StoredSession }
  | { readonly outcome: 'replaced' }
  | { readonly outcome: 'gone' };

/** The result of a write that matched. */
export const writeDone: LiveWrite = Object.freeze({ outcome: 'done' });

/** How long a replaced id stays recognisable as such, in milliseconds. */
export const replacedRecordMs = 60 * 1000;

/**
 * Session records keyed by id, with data, an expiry and an optional owner.
 * Every read returns live records only (expiry in the future; replaced
 * records are reported as such, never with data); every method is one
 * database command once the schema exists unless it says otherwise, and
 * rejects with SessionStoreError (cause: the driver's error) when the
 * database fails. Methods that take a signal reject with the signal's reason
 * (an AbortError or TimeoutError) when it aborts.
 */
export interface SessionBackend {
  /** What and where the database is, for telemetry (`db.system.name`, `db.namespace`, `db.collection.name`). */
  readonly database: DatabaseDescription;
  /** Creates indexes or tables once per instance; retried after a failure. */
  ensureSchema(): Promise<void>;
  /** The live record for `id`, a replaced one, or undefined when missing or expired. */
  find(id: string, signal?: AbortSignal): Promise<FoundSession>;
  /** Every live record as id -> data. */
  findAll(signal?: AbortSignal): Promise<Map<string, Uint8Array>>;
  /** Inserts a new record. */
  insert(id: string, record: SessionRecord, signal?: AbortSignal): Promise<void>;
  /**
   * Moves a live record to a new id (regeneration): inserts `newId`, and
   * turns `oldId` into a short-lived replaced record (no data, no owner)
   * only while it is live. When `oldId` was not live, nothing stays: `newId`
   * is removed again (or never written). Safe in every interleaving with
   * `delete`, `deleteOwnedBy` and another `replace` of `oldId`: a record that
   * was deleted, expired or already replaced never lives on under a new id.
   * The old record must be at `expectedVersion` (else a conflict, and
   * nothing changed). The record's `createdAt` is the caller's (the old
   * record's). Two commands when it succeeds (one on PostgreSQL).
   */
  replace(
    oldId: string,
    newId: string,
    record: SessionRecord,
    expectedVersion: number,
    signal?: AbortSignal,
  ): Promise<LiveWrite>;
  /** Updates a live record; never creates or revives one. See {@link LiveChange.expectedVersion}. */
  updateLive(id: string, change: LiveChange, signal?: AbortSignal): Promise<LiveWrite>;
  /** Inserts, or replaces data and expiry whether or not the record was live. */
  upsert(id: string, data: Uint8Array, expiresAt: Date, signal?: AbortSignal): Promise<void>;
  /** Deletes the record, live or not; fine when missing. */
  delete(id: string, signal?: AbortSignal): Promise<void>;
  /** Deletes every live record of an owner. @returns how many. */
  deleteOwnedBy(user: string, provider: string): Promise<number>;
  /** The owner's live records, newest first, without ids or data; served by the owner index. */
  listOwnedBy(user: string, provider: string): Promise<DeviceRecord[]>;
  /**
   * Deletes the owner's live records with this handle (`except: false`) or
   * all but it (`except: true`); one command. @returns how many.
   */
  deleteOwnedByHandle(user: string, provider: string, handle: string, except: boolean): Promise<number>;
  /** Counts live records (not replaced ones). */
  countLive(): Promise<number>;
  /** Counts live records (not replaced ones) by owner provider; null: records without an owner. */
  countLiveByProvider(signal?: AbortSignal): Promise<Map<string | null, number>>;
  /**
   * Deletes at most `limit` expired records (replaced ones included, once
   * their short life is over): one bounded batch, served by the expiry
   * index. With a signal: stops waiting when it aborts, as runOperation,
   * and sends no further command of the batch after that.
   * @returns how many.
   */
  deleteExpired(limit: number, signal?: AbortSignal): Promise<number>;
}

/** The key a record is stored under: the id, or its SHA-256 (hex) with `hashIds`. */
export function storageKey(id: string, hashIds: boolean): string {
  return hashIds ? createHash('sha256').update(id).digest('hex') : id;
}

/** How long a store waits for one database call unless configured otherwise, in milliseconds. */
export const defaultTimeoutMs = 10_000;

/**
 * Runs `call` with a signal that aborts after `timeoutMs` (0: no bound and no
 * signal). A call that gives up on that signal rejects with
 * SessionStoreError naming the operation, its cause the TimeoutError.
 */
export async function withTimeout<T>(
  operation: string,
  timeoutMs: number,
  call: (signal: AbortSignal | undefined) => Promise<T>,
): Promise<T> {
  if (timeoutMs === 0) return call(undefined);
  // A timer cleared when the call settles, rather than AbortSignal.timeout,
  // whose signal the runtime tracks until it is collected: on the hot path
  // that costs more than the rest of a cached read.
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new DOMException('The operation timed out.', 'TimeoutError')), timeoutMs);
  timer.unref?.();
  const { signal } = controller;
  try {
    return await call(signal);
  } catch (error) {
    if (signal.aborted && error === signal.reason) {
      throw new SessionStoreError(`${operation}: the database did not answer within ${timeoutMs} ms`, { cause: error });
    }
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs one database operation once `ready` has resolved; driver errors
 * become SessionStoreError (cause kept). With a signal: rejects with the
 * signal's reason when that is an Error (by default a DOMException named
 * AbortError), else with such an AbortError, if it is or becomes aborted. An
 * abandoned operation is not cancelled on the server: a single-record write
 * still completes or not, atomically, possibly after the rejection.
 */
export async function runOperation<T>(
  operation: string,
  signal: AbortSignal | undefined,
  ready: () => Promise<void>,
  action: () => Promise<T>,
): Promise<T> {
  if (signal?.aborted) throw abortError(signal);
  const work = ready()
    .then(action)
    .catch((error: unknown) => {
      if (error instanceof SessionStoreError) throw error;
      throw new SessionStoreError(`${operation} failed: ${errorMessage(error)}`, { cause: error });
    });
  if (signal === undefined) return work;
  work.catch(() => {}); // the caller may stop waiting; never leave it unhandled
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortError(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/**
 * Why a guarded write matched nothing, from a fresh read of the record:
 * gone, replaced, or live at another version (a conflict).
 */
export function writeFailure(found: FoundSession): LiveWrite {
  if (found === undefined) return { outcome: 'gone' };
  return found.state === 'replaced' ? { outcome: 'replaced' } : { outcome: 'conflict', current: found };
}

/** Memoizes a one-time setup; a failed attempt is forgotten so the next call retries. */
export function once(setup: () => Promise<void>): () => Promise<void> {
  let pending: Promise<void> | undefined;
  return () => {
    pending ??= setup().catch((error: unknown) => {
      pending = undefined;
      throw error;
    });
    return pending;
  };
}

/** The bytes as a plain Uint8Array (drivers hand out Buffers); a view, no copy. */
export function plainBytes(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function abortError(signal: AbortSignal): Error {
  return signal.reason instanceof Error
    ? signal.reason
    : new DOMException('This operation was aborted', 'AbortError');
}
