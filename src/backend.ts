/**
 * The persistence interface under both store APIs, and the pieces every
 * implementation shares. `SessionStore` (gorilla-style) and `TokenStore`
 * (scs-style) talk only to a `SessionBackend`; MongoDB and PostgreSQL each
 * implement it once.
 */
import { createHash } from 'node:crypto';
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

/**
 * A session's values and pending flashes as stored: one entry per top-level
 * value and one per flash, each the tagged JSON text of values.ts, so that
 * a save can write just the entries its request changed (see content.ts).
 * The field names are the store's own (`k` + base64url of a value's key,
 * `f` + a flash id: see {@link isContentField}), never a caller's key.
 */
export interface SessionContent {
  /** Value field -> the tagged JSON text of that value. */
  values: ReadonlyMap<string, string>;
  /** Flash field -> the tagged JSON text of `[key, value]`; fields sort in the order the flashes were added. */
  flashes: ReadonlyMap<string, string>;
}

/** Content stored by earlier versions: values and flashes in one tagged JSON text. Read, converted on the next write. */
export interface LegacyContent {
  readonly legacy: Uint8Array;
}

/** A live session record as the session store sees it. */
export interface StoredSession {
  readonly state: 'live';
  content: SessionContent | LegacyContent;
  /** The owner tenure: moves each time the stored owner changes; 0 for a record written before tenures existed. */
  epoch: number;
  expiresAt: Date;
  /** When the session was first saved; kept across regeneration. */
  createdAt: Date;
  /** The session's own lifetime; undefined while it is the store's default. */
  lifetime: Lifetime | undefined;
  /** The session's handle; '' for a record written before handles existed (it gets one on its next write). */
  handle: string;
  /** When its owner signed in; undefined without an owner, or when written before this was recorded. */
  signedInAt: Date | undefined;
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
  content: SessionContent;
  expiresAt: Date;
  owner: Owner;
  /** The owner tenure the record starts in (see {@link StoredSession.epoch}). */
  epoch: number;
  createdAt: Date;
  /** The session's own lifetime; undefined: the store's default (which then may change). */
  lifetime: Lifetime | undefined;
  /** What identifies the session on a devices page (see devices.ts). */
  device: DeviceFields;
  /** When its owner signed in; undefined without an owner. */
  signedInAt: Date | undefined;
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
  /** When its owner signed in; undefined when written before this was recorded. */
  signedInAt: Date | undefined;
}

/**
 * What one request changed of a session's content. `merge`: set and unset
 * exactly these entries, leaving every other one as stored (what parallel
 * requests wrote survives). `replace`: the content becomes exactly the
 * entries in `set` (used when the owner changes from someone, and to
 * convert legacy content); `unset` is then empty.
 */
export interface ContentDelta {
  mode: 'merge' | 'replace';
  values: { set: ReadonlyMap<string, string>; unset: readonly string[] };
  flashes: { set: ReadonlyMap<string, string>; unset: readonly string[] };
}

/**
 * What a write of a live record is guarded by, besides the record being
 * live and not replaced: the owner tenure the request loaded and, with
 * `expectedLifetime`, the session's own lifetime.
 */
export interface WriteGuard {
  /** The owner tenure the request loaded. */
  epoch: number;
  /**
   * Applies only while the stored lifetime is this one (undefined: the
   * default): a refresh computed from it must not outlive a change another
   * request made.
   */
  expectedLifetime?: { lifetime: Lifetime | undefined };
  /** Applies only while the record still holds content of an earlier version (a conversion). */
  legacy?: true;
}

/**
 * A guarded write of a live record (see {@link WriteGuard}). Fields left
 * out keep their value.
 */
export interface LiveChange extends WriteGuard {
  content?: ContentDelta;
  /** A new owner: the tenure moves to `epoch + 1`. */
  owner?: Owner;
  /** With `owner`: when it signed in; null without an owner. */
  signedInAt?: Date | null;
  expiresAt?: Date;
  /** The session's own lifetime; null: back to the store's default. */
  lifetime?: Lifetime | null;
  /** Gives a record written before handles existed its handle. */
  handle?: string;
}

/**
 * The result of a guarded write: done; the record is in another owner
 * tenure than the request loaded (someone signed in or out meanwhile);
 * its own lifetime changed meanwhile (`lifetime`: the stored one now);
 * converted from an earlier version's format by a parallel request;
 * replaced by a parallel regeneration (its id is a tombstone); or gone
 * (missing, expired, force-expired).
 */
export type LiveWrite =
  | { readonly outcome: 'done' }
  | { readonly outcome: 'owner-changed' }
  | { readonly outcome: 'lifetime-changed'; readonly lifetime: Lifetime | undefined }
  | { readonly outcome: 'converted' }
  | { readonly outcome: 'replaced' }
  | { readonly outcome: 'gone' };

/**
 * At most `max` live sessions per owner (store options
 * `maxSessionsPerUser` and `onSessionLimit`): past it, a sign-in ends the
 * least recently used ones (`'evict-oldest'`) or is refused (`'refuse'`).
 */
export interface SessionLimit {
  readonly max: number;
  readonly policy: 'evict-oldest' | 'refuse';
}

/**
 * What {@link SessionBackend.limitOwnedBy} did: how many live records it
 * deleted, and whether the sign-in's own record went with the excess.
 */
export interface LimitResult {
  readonly ended: number;
  readonly ownEnded: boolean;
}

/** The result of a write that matched. */
export const writeDone: LiveWrite = Object.freeze({ outcome: 'done' });

/** How long a replaced id stays recognisable as such, in milliseconds. */
export const replacedRecordMs = 60 * 1000;

/** Most successors `deleteChain` follows: a browser regenerates far less often within a tombstone's minute. */
export const maxChainLength = 16;

const contentField = /^[kf][A-Za-z0-9_-]*$/;

/**
 * Whether `name` is a content field name the store makes (so a backend may
 * use it as a field path or jsonb key: no `.`, `$` or NUL can be in it).
 */
export function isContentField(name: string): boolean {
  return contentField.test(name);
}

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
  /** A token store's live record's data (not a replaced one), or undefined. */
  findData(id: string, signal?: AbortSignal): Promise<Uint8Array | undefined>;
  /** Every live token record as id -> data. */
  findAll(signal?: AbortSignal): Promise<Map<string, Uint8Array>>;
  /** Inserts a new session record. */
  insert(id: string, record: SessionRecord, signal?: AbortSignal): Promise<void>;
  /**
   * Moves a live record to a new id (regeneration): `newId` gets `record`,
   * except that with a `carry` delta its content is the old record's content
   * as stored at that moment with `carry` applied (what parallel requests of
   * the same tenure wrote carries over). `oldId` becomes a short-lived
   * replaced record naming `newId` (no content, no owner) only while it is
   * live, not replaced and within `guard`. When it was not, nothing stays:
   * `newId` is removed again (or never written). Safe in every interleaving
   * with `deleteChain`, `deleteOwnedBy` and another `replace` of `oldId`: a
   * record that was deleted, expired, replaced or taken over by another
   * owner never lives on under a new id. Two commands when it succeeds on
   * MongoDB (three when parallel writes must be carried over), one on
   * PostgreSQL.
   */
  replace(
    oldId: string,
    newId: string,
    record: SessionRecord,
    guard: WriteGuard,
    carry: ContentDelta | undefined,
    signal?: AbortSignal,
  ): Promise<LiveWrite>;
  /** Updates a live record under the guards of {@link LiveChange}; never creates or revives one. */
  updateLive(id: string, change: LiveChange, signal?: AbortSignal): Promise<LiveWrite>;
  /** Inserts, or replaces data and expiry whether or not the record was live. */
  upsert(id: string, data: Uint8Array, expiresAt: Date, signal?: AbortSignal): Promise<void>;
  /** Deletes the record, live or not; fine when missing. */
  delete(id: string, signal?: AbortSignal): Promise<void>;
  /**
   * Deletes the session record and every record it was regenerated into
   * (a replaced record names its successor), at most {@link maxChainLength}:
   * a sign-out wins over a parallel regeneration. One command per record.
   */
  deleteChain(id: string, signal?: AbortSignal): Promise<void>;
  /** Deletes every live record of an owner. @returns how many. */
  deleteOwnedBy(user: string, provider: string): Promise<number>;
  /** At most `limit` of the owner's live records, newest first, without ids or data; served by the owner index. */
  listOwnedBy(user: string, provider: string, limit: number): Promise<DeviceRecord[]>;
  /**
   * Deletes the owner's live records with this handle (`except: false`) or
   * all but it (`except: true`); one command. @returns how many.
   */
  deleteOwnedByHandle(user: string, provider: string, handle: string, except: boolean): Promise<number>;
  /** Counts the owner's live records (not replaced ones); one command, served by the owner index. */
  countOwnedBy(user: string, provider: string, signal?: AbortSignal): Promise<number>;
  /**
   * Holds the owner to `limit.max` live records, right after a write that
   * gave record `id` to it (a sign-in). `'evict-oldest'`: deletes every
   * live record of the owner but the `max` most recently written ones
   * (ties: the greater key stays), `id` too if it is not among them;
   * `ownEnded` when `id` is gone afterwards (deleted by this call, or
   * already by another's), not when it moved on (a regeneration by its
   * browser). `'refuse'`: deletes `id` alone, when the owner has more than
   * `max`, or, when a regeneration moved it meanwhile, the record it moved
   * to while that is still the owner's (`ownEnded` when one went).
   *
   * Why it holds under parallel sign-ins without a lock: each call reads
   * after its own write was acknowledged, so the call that reads last sees
   * every write of the burst and trims the owner to exactly `max`; a call
   * that read earlier saw a subset, and a record beyond the first `max` of
   * a subset (in one fixed order) is beyond them in the whole set too, so
   * it never deletes one the last call keeps (`'refuse'`: a call deletes
   * only its own record, and the last kept record's call saw every kept
   * one, so at most `max` stay; a burst may keep fewer). A record that
   * changed between the read and the delete (a regeneration moved it to a
   * new id the read did not see) makes it run again, at most 5 times. One
   * command on PostgreSQL; on MongoDB a read, and a delete when something
   * goes (more when parallel sign-ins or regenerations meet it).
   */
  limitOwnedBy(user: string, provider: string, id: string, limit: SessionLimit, signal?: AbortSignal): Promise<LimitResult>;
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

/**
 * Why a guarded write matched nothing, from a fresh read of the record:
 * gone, replaced, in another owner tenure, or at another lifetime. A live
 * record that matches every guard again (it changed back between the write
 * and the read) counts as a lifetime change: the caller recomputes and
 * writes once more, a bounded number of times.
 */
export function writeFailure(found: FoundSession, guard: WriteGuard): LiveWrite {
  if (found === undefined) return { outcome: 'gone' };
  if (found.state === 'replaced') return { outcome: 'replaced' };
  if (found.epoch !== guard.epoch) return { outcome: 'owner-changed' };
  if (guard.legacy === true && !('legacy' in found.content)) return { outcome: 'converted' };
  return { outcome: 'lifetime-changed', lifetime: found.lifetime };
}

/** The bytes as a plain Uint8Array (drivers hand out Buffers); a view, no copy. */
export function plainBytes(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

