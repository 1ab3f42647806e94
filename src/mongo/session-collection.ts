/**
 * The MongoDB implementation of the persistence interface: a collection of
 * `{ _id, data, expiresAt, user?, provider?, createdAt, updatedAt }`.
 *
 * Every read filters `expiresAt > now`, so an expired document is dead before
 * cleanup removes it; updates of live sessions carry the same filter, so they
 * cannot resurrect one. Ids reach MongoDB only as strings checked by the
 * callers (never objects), and session data only as one binary field.
 */
import { Binary, type Collection, type Db, MongoServerError } from 'mongodb';
import {
  errorMessage,
  type LiveChange,
  type Owner,
  once,
  plainBytes,
  runOperation,
  type SessionBackend,
  type StoredSession,
  storageKey,
} from '../backend.ts';
import { SessionOptionsError, SessionStoreError } from '../errors.ts';

/** The stored document. */
export interface SessionDocument {
  _id: string;
  data: Binary;
  expiresAt: Date;
  user?: string;
  provider?: string;
  createdAt: Date;
  updatedAt: Date;
}

/** How the layer is set up; fixed for the life of a store. */
export interface SessionCollectionOptions {
  /** Keep SHA-256(id) as `_id` instead of the id itself. */
  hashIds: boolean;
  /** Make the expiry index a TTL index (real MongoDB only; FerretDB 1.x refuses it). */
  ttlIndex: boolean;
  /** Index `{ user: 1, provider: 1 }` for forced logout. */
  indexOwners: boolean;
}

/** Server error codes for an index that exists with other options. */
const indexConflictCodes = new Set([85, 86]);

export class SessionCollection implements SessionBackend {
  readonly #collection: Collection<SessionDocument>;
  readonly #options: SessionCollectionOptions;
  /**
   * Creates the indexes once per instance, one command per index (FerretDB
   * 1.24 drops the connection on a multi-index command that repeats an
   * existing index). Indexes that already exist are fine; a failed attempt is
   * retried on the next call.
   * @throws SessionStoreError when the server refuses, e.g. an expiry index
   * exists with other options (switching `ttlIndex` needs a manual drop).
   */
  readonly ensureSchema: () => Promise<void>;

  /** @throws SessionOptionsError for a collection name MongoDB would refuse. */
  constructor(db: Db, name: string, options: SessionCollectionOptions) {
    checkCollectionName(name);
    this.#collection = db.collection<SessionDocument>(name);
    this.#options = options;
    this.ensureSchema = once(() => this.#createIndexes());
  }

  /** The live document for `id`, or undefined when missing or expired. One command. */
  async find(id: string, signal?: AbortSignal): Promise<StoredSession | undefined> {
    const doc = await this.#run('find', signal, () =>
      this.#collection.findOne(
        { _id: this.#key(id), expiresAt: { $gt: new Date() } },
        { projection: { data: 1, expiresAt: 1 } },
      ),
    );
    return doc ? { data: plainBytes(doc.data.buffer.subarray(0, doc.data.length())), expiresAt: doc.expiresAt } : undefined;
  }

  /** Every live document as `[_id, data]`. One command plus cursor batches. */
  async findAll(signal?: AbortSignal): Promise<Map<string, Uint8Array>> {
    const docs = await this.#run('findAll', signal, () =>
      this.#collection
        .find({ expiresAt: { $gt: new Date() } }, { projection: { data: 1 } })
        .toArray(),
    );
    return new Map(docs.map((doc) => [doc._id, plainBytes(doc.data.buffer.subarray(0, doc.data.length()))]));
  }

  /** Inserts a new document. One command. */
  async insert(id: string, data: Uint8Array, expiresAt: Date, owner: Owner): Promise<void> {
    const now = new Date();
    const doc: SessionDocument = {
      _id: this.#key(id),
      data: new Binary(data),
      expiresAt,
      createdAt: now,
      updatedAt: now,
    };
    if (owner.user !== undefined) doc.user = owner.user;
    if (owner.provider !== undefined) doc.provider = owner.provider;
    await this.#run('insert', undefined, () => this.#collection.insertOne(doc));
  }

  /**
   * Regeneration: inserts `newId`, deletes `oldId` only while it is live, and
   * when that deleted nothing deletes `newId` again. Whatever a concurrent
   * forced logout or delete does between the commands, no document that was
   * dead when this ran stays live under the new id. Two commands when it
   * succeeds, three when the old document was gone.
   */
  async replace(oldId: string, newId: string, data: Uint8Array, expiresAt: Date, owner: Owner): Promise<boolean> {
    await this.insert(newId, data, expiresAt, owner);
    let removed: number;
    try {
      removed = (
        await this.#run('delete', undefined, () =>
          this.#collection.deleteOne({ _id: this.#key(oldId), expiresAt: { $gt: new Date() } }),
        )
      ).deletedCount;
    } catch (error) {
      // Best effort: the caller keeps the old id and will retry under another new one.
      await this.delete(newId).catch(() => {});
      throw error;
    }
    if (removed === 1) return true;
    await this.delete(newId);
    return false;
  }

  /**
   * Updates a document only while it is live; never creates or revives one.
   * Fields left undefined keep their value. One command.
   * @returns false when the document is missing or expired.
   */
  async updateLive(id: string, change: LiveChange): Promise<boolean> {
    const now = new Date();
    const set: Partial<SessionDocument> = { updatedAt: now };
    const unset: Record<string, ''> = {};
    if (change.data !== undefined) set.data = new Binary(change.data);
    if (change.expiresAt !== undefined) set.expiresAt = change.expiresAt;
    if (change.owner !== undefined) {
      for (const field of ['user', 'provider'] as const) {
        const value = change.owner[field];
        if (value === undefined) unset[field] = '';
        else set[field] = value;
      }
    }
    const result = await this.#run('update', undefined, () =>
      this.#collection.updateOne(
        { _id: this.#key(id), expiresAt: { $gt: now } },
        Object.keys(unset).length > 0 ? { $set: set, $unset: unset } : { $set: set },
      ),
    );
    return result.matchedCount === 1;
  }

  /**
   * Inserts, or replaces data and expiry, whether or not the document was
   * live (an expired one comes back to life: scs's commit contract). One command.
   */
  async upsert(id: string, data: Uint8Array, expiresAt: Date, signal?: AbortSignal): Promise<void> {
    const now = new Date();
    await this.#run('upsert', signal, () =>
      this.#collection.updateOne(
        { _id: this.#key(id) },
        {
          $set: { data: new Binary(data), expiresAt, updatedAt: now },
          $setOnInsert: { createdAt: now },
        },
        { upsert: true },
      ),
    );
  }

  /** Deletes the document for `id`, live or not; fine when missing. One command. */
  async delete(id: string, signal?: AbortSignal): Promise<void> {
    await this.#run('delete', signal, () => this.#collection.deleteOne({ _id: this.#key(id) }));
  }

  /**
   * Deletes every live document of an owner (expired ones are left to
   * cleanup, so the count is of sessions actually signed out). One command.
   * @returns how many.
   */
  async deleteOwnedBy(user: string, provider: string): Promise<number> {
    const result = await this.#run('deleteOwnedBy', undefined, () =>
      this.#collection.deleteMany({ user, provider, expiresAt: { $gt: new Date() } }),
    );
    return result.deletedCount;
  }

  /** Counts live documents, served by the expiry index. One command. */
  countLive(): Promise<number> {
    return this.#run('count', undefined, () =>
      this.#collection.countDocuments({ expiresAt: { $gt: new Date() } }),
    );
  }

  /** Deletes expired documents. One command. @returns how many. */
  async deleteExpired(): Promise<number> {
    const result = await this.#run('deleteExpired', undefined, () =>
      this.#collection.deleteMany({ expiresAt: { $lte: new Date() } }),
    );
    return result.deletedCount;
  }

  #key(id: string): string {
    return storageKey(id, this.#options.hashIds);
  }

  async #createIndexes(): Promise<void> {
    const expiry = this.#options.ttlIndex
      ? { name: 'expiresAt_1', expireAfterSeconds: 0 }
      : { name: 'expiresAt_1' };
    const indexes: [Record<string, 1>, { name: string; expireAfterSeconds?: number }][] = [
      [{ expiresAt: 1 }, expiry],
    ];
    if (this.#options.indexOwners) indexes.push([{ user: 1, provider: 1 }, { name: 'user_1_provider_1' }]);
    for (const [key, options] of indexes) {
      try {
        await this.#collection.createIndex(key, options);
      } catch (error) {
        const conflict = error instanceof MongoServerError && indexConflictCodes.has(Number(error.code));
        throw new SessionStoreError(
          conflict
            ? `index ${options.name} on ${this.#collection.collectionName} exists with other options` +
                ' (ttlIndex changed?); drop it and let the store recreate it'
            : `creating index ${options.name} failed: ${errorMessage(error)}`,
          { cause: error },
        );
      }
    }
  }

  #run<T>(operation: string, signal: AbortSignal | undefined, action: () => Promise<T>): Promise<T> {
    return runOperation(operation, signal, this.ensureSchema, action);
  }
}

/**
 * MongoDB's rules for a collection name (non-empty, no `$` or NUL, not in the
 * `system.` namespace), checked when the store is built rather than at the
 * first command.
 */
function checkCollectionName(name: unknown): void {
  if (
    typeof name !== 'string' ||
    name.length === 0 ||
    name.length > 120 ||
    name.includes('$') ||
    name.includes('\0') ||
    name.startsWith('system.') ||
    name.startsWith('.') ||
    name.endsWith('.')
  ) {
    throw new SessionOptionsError(
      `collection must be a MongoDB collection name (1 to 120 characters, no '$' or NUL, not system.*), not ${JSON.stringify(name)}`,
    );
  }
}
