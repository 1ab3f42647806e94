/**
 * The documents of the MongoDB backend, and how a session's content and
 * write guards become fields and filters. Every field name built here is
 * the store's own (checked by isContentField), never a caller's key.
 */
import { type Binary, BSON } from 'mongodb';
import {
  type ContentDelta,
  type DeviceRecord,
  type FoundSession,
  isContentField,
  plainBytes,
  type SessionContent,
  type SessionRecord,
  type WriteGuard,
} from '../backend.ts';
import { SessionStoreError } from '../errors.ts';

/** The stored document. */
export interface SessionDocument {
  _id: string;
  /** A token's data, or a session's values and flashes as stored by earlier versions. */
  data?: Binary;
  /** A session's values: field (see content.ts) -> tagged JSON text. */
  values?: Record<string, string>;
  /** A session's pending flashes: field -> tagged JSON text of `[key, value]`. */
  flashes?: Record<string, string>;
  /** The owner tenure; absent on documents of earlier versions (tenure 0). */
  epoch?: number;
  /** On a replaced document: the `_id` of the session it was regenerated into. */
  replacedBy?: string;
  expiresAt: Date;
  user?: string;
  provider?: string;
  createdAt: Date;
  updatedAt: Date;
  /** The session's own lifetime in seconds (session stores only). */
  maxAge?: number;
  /** False for a browser-session cookie (session stores only). */
  persistent?: boolean;
  /** Set when regeneration moved the session to a new id. */
  replaced?: true;
  /** Written by earlier versions (compare-and-set); no longer read, removed on regeneration. */
  version?: number;
  /** The session's public handle (devices page). */
  handle?: string;
  /** The User-Agent it was created with. */
  userAgent?: string;
  /** The app's `describeDevice` result, as JSON text (a string: no caller key becomes a field name). */
  device?: string;
  /** When the owner signed in. */
  signedInAt?: Date;
}

/** The document a new session record is inserted as, under `key`. */
export function documentOf(key: string, record: SessionRecord): SessionDocument {
  const doc: SessionDocument = {
    _id: key,
    values: fieldsOf(record.content.values),
    flashes: fieldsOf(record.content.flashes),
    epoch: record.epoch,
    expiresAt: record.expiresAt,
    createdAt: record.createdAt,
    updatedAt: new Date(),
    handle: record.device.handle,
  };
  if (record.lifetime !== undefined) {
    doc.maxAge = record.lifetime.maxAge;
    doc.persistent = record.lifetime.persistent;
  }
  if (record.device.userAgent !== undefined) doc.userAgent = record.device.userAgent;
  if (record.device.details !== undefined) doc.device = record.device.details;
  if (record.owner.user !== undefined) doc.user = record.owner.user;
  if (record.owner.provider !== undefined) doc.provider = record.owner.provider;
  if (record.signedInAt !== undefined) doc.signedInAt = record.signedInAt;
  return doc;
}

/** The fields `find` reads of a session document. */
export const foundFields = {
  data: 1, values: 1, flashes: 1, epoch: 1, expiresAt: 1, createdAt: 1, maxAge: 1, persistent: 1, replaced: 1, handle: 1, signedInAt: 1,
} as const;

/** What `find` gives for a document read by `_id` (null: none): live, replaced, or nothing (expired, or no content). */
export function foundSessionOf(doc: SessionDocument | null): FoundSession {
  if (doc === null || !(doc.expiresAt.getTime() > Date.now())) return undefined;
  if (doc.replaced === true) return { state: 'replaced' };
  const content = doc.values !== undefined ? contentOf(doc) : doc.data !== undefined ? { legacy: bytesOf(doc.data) } : undefined;
  if (content === undefined) return undefined;
  return {
    state: 'live',
    content,
    epoch: doc.epoch ?? 0,
    expiresAt: doc.expiresAt,
    createdAt: doc.createdAt,
    lifetime: typeof doc.maxAge === 'number' ? { maxAge: doc.maxAge, persistent: doc.persistent !== false } : undefined,
    handle: doc.handle ?? '',
    signedInAt: doc.signedInAt,
  };
}

/** A session document as a devices page lists it. */
export function deviceRecordOf(doc: SessionDocument): DeviceRecord {
  return {
    handle: doc.handle ?? '',
    createdAt: doc.createdAt,
    lastSeenAt: doc.updatedAt,
    expiresAt: doc.expiresAt,
    userAgent: doc.userAgent,
    details: doc.device,
    signedInAt: doc.signedInAt,
  };
}

/** Matches documents a write may change: live and not replaced. */
export const notReplaced = { replaced: { $exists: false } } as const;

/** Matches a document within the guard: in owner tenure `epoch` (0: a document from before tenures) and at the expected lifetime. */
export function withinGuard({ epoch, expectedLifetime, legacy }: WriteGuard) {
  const lifetime =
    expectedLifetime === undefined
      ? {}
      : expectedLifetime.lifetime === undefined
        ? { maxAge: { $exists: false } }
        : { maxAge: expectedLifetime.lifetime.maxAge, persistent: expectedLifetime.lifetime.persistent };
  return { epoch: epoch === 0 ? { $exists: false } : epoch, ...lifetime, ...(legacy === true ? { values: { $exists: false } } : {}) };
}

/** Every field of a session's state, for a regeneration to clear from the old document. */
export const sessionFields = {
  data: '',
  values: '',
  flashes: '',
  epoch: '',
  user: '',
  provider: '',
  maxAge: '',
  persistent: '',
  version: '',
  handle: '',
  userAgent: '',
  device: '',
  signedInAt: '',
} as const;

/** A document's content, keeping only string entries under the store's field names. */
export function contentOf(doc: Pick<SessionDocument, 'values' | 'flashes'>): SessionContent {
  return { values: entriesOf(doc.values), flashes: entriesOf(doc.flashes) };
}

function entriesOf(fields: Record<string, unknown> | undefined): Map<string, string> {
  const entries = new Map<string, string>();
  for (const [field, text] of Object.entries(fields ?? {})) {
    if (isContentField(field) && typeof text === 'string') entries.set(field, text);
  }
  return entries;
}

/** Entries as a subdocument; the field names are the store's (checked, so none is a path or an operator). */
export function fieldsOf(entries: ReadonlyMap<string, string>): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const [field, text] of entries) fields[checkedField(field)] = text;
  return fields;
}

function checkedField(field: string): string {
  if (!isContentField(field)) throw new SessionStoreError(`not a content field: ${JSON.stringify(field)}`, { cause: undefined });
  return field;
}

/** Adds a content delta to an update's `$set` and `$unset`. */
export function writeContent(delta: ContentDelta, set: Record<string, unknown>, unset: Record<string, ''>): void {
  if (delta.mode === 'replace') {
    set.values = fieldsOf(delta.values.set);
    set.flashes = fieldsOf(delta.flashes.set);
    unset.data = '';
    return;
  }
  for (const [path, change] of [['values', delta.values], ['flashes', delta.flashes]] as const) {
    for (const [field, text] of change.set) set[`${path}.${checkedField(field)}`] = text;
    for (const field of change.unset) unset[`${path}.${checkedField(field)}`] = '';
  }
}

/** The bytes of a BSON Binary as a plain Uint8Array. */
export function bytesOf(data: Binary): Uint8Array {
  return plainBytes(data.buffer.subarray(0, data.length()));
}

/**
 * Most UTF-8 bytes of ids one `deleteMany` carries: well inside the 16 MB a
 * command may have, whatever the batch size and the ids' length.
 */
export const maxDeleteIdsBytes = 4 * 1024 * 1024;

/**
 * `ids` in order, cut into runs whose encoded sizes add up to at most
 * `maxBytes` (an id larger than that on its own makes a run of one); no run
 * is empty. A string counts its UTF-8 bytes; anything else a document of
 * another writer may hold as `_id` (an ObjectId, a number) its BSON size.
 */
export function chunksOfBytes<T>(ids: readonly T[], maxBytes: number): T[][] {
  const chunks: T[][] = [];
  let chunk: T[] = [];
  let bytes = 0;
  for (const id of ids) {
    const size = typeof id === 'string' ? Buffer.byteLength(id) : BSON.calculateObjectSize({ _id: id });
    if (chunk.length > 0 && bytes + size > maxBytes) {
      chunks.push(chunk);
      chunk = [];
      bytes = 0;
    }
    chunk.push(id);
    bytes += size;
  }
  if (chunk.length > 0) chunks.push(chunk);
  return chunks;
}
