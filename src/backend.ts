/**
 * The persistence interface under both store APIs, and the pieces every
 * implementation shares. `SessionStore` (gorilla-style) and `TokenStore`
 * (scs-style) talk only to a `SessionBackend`; MongoDB and PostgreSQL each
 * implement it once.
 */
import { createHash } from 'node:crypto';
import { SessionStoreError } from './errors.ts';
import type { Owner } from './owner.ts';

export type { Owner } from './owner.ts';

/** A live record as the stores see it. */
export interface StoredSession {
  data: Uint8Array;
  expiresAt: Date;
}

/** What `updateLive` changes; fields left out keep their value. */
export interface LiveChange {
  data?: Uint8Array;
  expiresAt?: Date;
  owner?: Owner;
}

/**
 * Session records keyed by id, with data, an expiry and an optional owner.
 * Every read returns live records only (expiry in the future); every method
 * is one database command once the schema exists, and rejects with
 * SessionStoreError (cause: the driver's error) when the database fails.
 * Methods that take a signal reject with an AbortError when it aborts.
 */
export interface SessionBackend {
  /** Creates indexes or tables once per instance; retried after a failure. */
  ensureSchema(): Promise<void>;
  /** The live record for `id`, or undefined when missing or expired. */
  find(id: string, signal?: AbortSignal): Promise<StoredSession | undefined>;
  /** Every live record as id -> data. */
  findAll(signal?: AbortSignal): Promise<Map<string, Uint8Array>>;
  /** Inserts a new record. */
  insert(id: string, data: Uint8Array, expiresAt: Date, owner: Owner): Promise<void>;
  /**
   * Moves a live record to a new id (regeneration): inserts `newId`, and
   * removes `oldId` only while it is live. When `oldId` was missing or
   * expired, nothing stays: `newId` is removed too (or never written) and
   * the result is false. Safe in every interleaving with `delete` and
   * `deleteOwnedBy`: a record that was deleted or expired never lives on
   * under the new id. At most three commands (two when it succeeds).
   * @returns true when the record now lives under `newId` only.
   */
  replace(oldId: string, newId: string, data: Uint8Array, expiresAt: Date, owner: Owner): Promise<boolean>;
  /** Updates a live record; never creates or revives one. @returns false when missing or expired. */
  updateLive(id: string, change: LiveChange): Promise<boolean>;
  /** Inserts, or replaces data and expiry whether or not the record was live. */
  upsert(id: string, data: Uint8Array, expiresAt: Date, signal?: AbortSignal): Promise<void>;
  /** Deletes the record, live or not; fine when missing. */
  delete(id: string, signal?: AbortSignal): Promise<void>;
  /** Deletes every live record of an owner. @returns how many. */
  deleteOwnedBy(user: string, provider: string): Promise<number>;
  /** Counts live records. */
  countLive(): Promise<number>;
  /** Deletes expired records. @returns how many. */
  deleteExpired(): Promise<number>;
}

/** The key a record is stored under: the id, or its SHA-256 (hex) with `hashIds`. */
export function storageKey(id: string, hashIds: boolean): string {
  return hashIds ? createHash('sha256').update(id).digest('hex') : id;
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
