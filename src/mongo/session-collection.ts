/**
 * The MongoDB implementation of the persistence interface: a collection of
 * `{ _id, values, flashes, epoch, expiresAt, user?, provider?, createdAt,
 * updatedAt, maxAge?, persistent?, handle, userAgent?, device? }` for
 * sessions (`values` and `flashes` hold one string per entry under the
 * store's field names, see content.ts, so a save `$set`s and `$unset`s just
 * its entries), `{ _id, data, expiresAt }` for tokens, and
 * `{ _id, replaced, replacedBy, expiresAt }` for a regenerated session's
 * old id.
 *
 * Reads fetch by `_id` alone (MongoDB's `_id` fast path, and the only filter
 * FerretDB pushes down) and check the expiry here, so an expired document is
 * dead before cleanup removes it; writes to live sessions filter on the
 * expiry and on `replaced`, so they cannot resurrect one. A replaced
 * document (after regeneration) keeps only `_id`, `replaced: true` and a
 * short expiry. Ids reach MongoDB only as strings checked by the callers
 * (never objects), and session data only as one binary field.
 */
import { Binary, type Collection, type Db, ReadPreference } from 'mongodb';
import { isClientClosed, isDuplicateId } from './driver-errors.ts';
import {
  type ContentDelta,
  type DeviceRecord,
  type FoundSession,
  type LiveChange,
  type LimitResult,
  type LiveWrite,
  maxChainLength,
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
import { applyDelta, sameContent } from '../content.ts';
import { checkCollectionName, createIndexes } from './indexes.ts';
import { countOwned, deleteOwned, deleteOwnedWithHandle, limitOwned, listOwned, revocation } from './owners.ts';
import {
  bytesOf,
  chunksOfBytes,
  contentOf,
  documentOf,
  fieldsOf,
  foundFields,
  foundSessionOf,
  maxDeleteIdsBytes,
  notReplaced,
  type SessionDocument,
  sessionFields,
  withinGuard,
  writeContent,
} from './documents.ts';

export { chunksOfBytes, maxDeleteIdsBytes, type SessionDocument } from './documents.ts';
import type { DatabaseDescription } from '../telemetry.ts';

/** How the layer is set up; fixed for the life of a store. */
export interface SessionCollectionOptions {
  /** Keep SHA-256(id) as `_id` instead of the id itself. */
  hashIds: boolean;
  /** Make the expiry index a TTL index (real MongoDB only; FerretDB 1.x refuses it). */
  ttlIndex: boolean;
  /** Index `{ user: 1, provider: 1 }` for forced logout. */
  indexOwners: boolean;
}



export class SessionCollection implements SessionBackend {
  readonly database: DatabaseDescription;
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
    this.database = { system: 'mongodb', namespace: db.databaseName, collection: name };
    // Reads from the primary whatever the app's client says: a lagging
    // secondary would call a session just created not-found (and the store
    // would clear its cookie) and one just revoked live.
    // Local read concern too: with the client's `majority`, a session just
    // written with `w: 1` would not be visible yet.
    this.#collection = db.collection<SessionDocument>(name, { readPreference: ReadPreference.primary, readConcern: { level: 'local' } });
    this.#options = options;
    this.ensureSchema = once(() => createIndexes(this.#collection, options));
  }

  /**
   * The live session document for `id`, a replaced one, or undefined when
   * missing or expired. One command, by `_id` alone; the expiry is checked here.
   */
  async find(id: string, signal?: AbortSignal): Promise<FoundSession> {
    const doc = await this.#run('find', signal, () =>
      this.#collection.findOne(
        { _id: this.#key(id) },
        { projection: foundFields },
      ),
    );
    return foundSessionOf(doc);
  }

  /** A live token document's data. One command, by `_id` alone. */
  async findData(id: string, signal?: AbortSignal): Promise<Uint8Array | undefined> {
    const doc = await this.#run('find', signal, () =>
      this.#collection.findOne({ _id: this.#key(id) }, { projection: { data: 1, expiresAt: 1, replaced: 1 } }),
    );
    if (doc === null || !(doc.expiresAt.getTime() > Date.now()) || doc.replaced === true || doc.data === undefined) return undefined;
    return bytesOf(doc.data);
  }

  /** Every live document as `[_id, data]`. One command plus cursor batches. */
  async findAll(signal?: AbortSignal): Promise<Map<string, Uint8Array>> {
    const docs = await this.#run('findAll', signal, () =>
      this.#collection
        .find({ expiresAt: { $gt: new Date() }, ...notReplaced }, { projection: { data: 1 } })
        .toArray(),
    );
    return new Map(docs.flatMap((doc) => (doc.data === undefined ? [] : [[doc._id, bytesOf(doc.data)]])));
  }

  /** Inserts a new document. One command. */
  async insert(id: string, record: SessionRecord, signal?: AbortSignal): Promise<void> {
    const doc = documentOf(this.#key(id), record);
    await this.#run('insert', signal, () =>
      this.#collection.insertOne(doc).catch((error: unknown) => {
        // Ids are 256 random bits and inserted once: a duplicate is this
        // very insert, applied by an attempt whose acknowledgement was lost
        // and then retried. It is done, not an error for the app.
        if (!isDuplicateId(error)) throw error;
      }),
    );
  }

  /**
   * Regeneration: inserts `newId`, turns `oldId` into a replaced document
   * naming it only while it is live, not replaced and within the guard, and
   * when that matched nothing deletes `newId` again. Whatever a concurrent
   * forced logout, delete or regeneration does between the commands, no
   * document that was dead (or replaced, or taken over) when this ran stays
   * live under the new id. With `carry`, when the old document held more
   * than this request saw (parallel writes of the same tenure), a third
   * command gives the new one the old content with `carry` applied. Two
   * commands when it succeeds; two more (delete, read) when it does not.
   */
  async replace(
    oldId: string,
    newId: string,
    record: SessionRecord,
    guard: WriteGuard,
    carry: ContentDelta | undefined,
    signal?: AbortSignal,
  ): Promise<LiveWrite> {
    await this.insert(newId, record, signal);
    const now = new Date();
    let before: SessionDocument | null;
    try {
      before = await this.#run('replace', signal, () =>
        this.#collection.findOneAndUpdate(
          { _id: this.#key(oldId), expiresAt: { $gt: now }, ...notReplaced, ...withinGuard(guard) },
          {
            $set: { replaced: true, replacedBy: this.#key(newId), expiresAt: new Date(now.getTime() + replacedRecordMs), updatedAt: now },
            $unset: sessionFields,
          },
          // No projection: FerretDB 1.24's findAndModify refuses one (test/server.test.ts).
          { returnDocument: 'before' },
        ),
      );
    } catch (error) {
      // The retire may have been applied (its reply lost): the new document
      // goes before the error does (best effort, within the caller's bound),
      // so a retry under the same new id inserts it again and then finds the
      // old one retired in its name.
      await this.delete(newId, signal).catch(() => {});
      throw error;
    }
    if (before === null) {
      // One read says why: retired already in this new id's name (this very
      // regeneration, applied by an attempt whose acknowledgement was lost;
      // the store retries under the same new id), or not live within the guard.
      const old = await this.#run('find', signal, () =>
        this.#collection.findOne({ _id: this.#key(oldId) }, { projection: { ...foundFields, replacedBy: 1 } }),
      );
      if (old?.replacedBy === this.#key(newId)) return writeDone;
      await this.delete(newId, signal);
      return writeFailure(foundSessionOf(old), guard);
    }
    if (carry === undefined || before.values === undefined) return writeDone;
    const carried = applyDelta(contentOf(before), carry);
    if (sameContent(carried, record.content)) return writeDone;
    const result = await this.#run('update', signal, () =>
      this.#collection.updateOne(
        { _id: this.#key(newId), expiresAt: { $gt: new Date() }, ...notReplaced },
        { $set: { values: fieldsOf(carried.values), flashes: fieldsOf(carried.flashes) } },
      ),
    );
    return result.matchedCount === 1 ? writeDone : { outcome: 'gone' };
  }

  /**
   * Updates a session document only while it is live, not replaced and
   * within the guard; never creates or revives one. A merge delta `$set`s
   * and `$unset`s exactly its entries. Fields left undefined keep their
   * value. One command; a second (a read) when nothing matched, to say why.
   */
  async updateLive(id: string, change: LiveChange, signal?: AbortSignal): Promise<LiveWrite> {
    const now = new Date();
    const set: Record<string, unknown> = { updatedAt: now };
    const unset: Record<string, ''> = {};
    if (change.content !== undefined) writeContent(change.content, set, unset);
    if (change.expiresAt !== undefined) set.expiresAt = change.expiresAt;
    if (change.lifetime === null) {
      unset.maxAge = '';
      unset.persistent = '';
    } else if (change.lifetime !== undefined) {
      set.maxAge = change.lifetime.maxAge;
      set.persistent = change.lifetime.persistent;
    }
    if (change.handle !== undefined) set.handle = change.handle;
    if (change.owner !== undefined) {
      set.epoch = change.epoch + 1;
      for (const field of ['user', 'provider'] as const) {
        const value = change.owner[field];
        if (value === undefined) unset[field] = '';
        else set[field] = value;
      }
      if (change.signedInAt instanceof Date) set.signedInAt = change.signedInAt;
      else unset.signedInAt = '';
    }
    const result = await this.#run('update', signal, () =>
      this.#collection.updateOne(
        { _id: this.#key(id), expiresAt: { $gt: now }, ...notReplaced, ...withinGuard(change) },
        Object.keys(unset).length > 0 ? { $set: set, $unset: unset } : { $set: set },
      ),
    );
    return result.matchedCount === 1 ? writeDone : this.#whyNotLive(id, change, signal);
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
    await this.#run('delete', signal, () => this.#collection.deleteOne({ _id: this.#key(id) }, revocation));
  }

  /**
   * Deletes the session document and the chain of documents it was
   * regenerated into. One command per document (`findOneAndDelete`).
   */
  async deleteChain(id: string, signal?: AbortSignal): Promise<void> {
    let key: string | undefined = this.#key(id);
    for (let hop = 0; key !== undefined && hop <= maxChainLength; hop++) {
      const current: string = key;
      const doc = await this.#run('delete', signal, () =>
        this.#collection.findOneAndDelete({ _id: current }, revocation),
      );
      key = typeof doc?.replacedBy === 'string' ? doc.replacedBy : undefined;
    }
  }

  /**
   * Deletes every live document of an owner (expired ones are left to
   * cleanup, so the count is of sessions actually signed out). One command.
   * @returns how many.
   */
  deleteOwnedBy(user: string, provider: string): Promise<number> {
    return this.#run('deleteOwnedBy', undefined, () => deleteOwned(this.#collection, user, provider));
  }

  /** At most `limit` of the owner's live sessions, newest first, without ids or data. One command, served by the owner index. */
  listOwnedBy(user: string, provider: string, limit: number): Promise<DeviceRecord[]> {
    return this.#run('listOwnedBy', undefined, () => listOwned(this.#collection, user, provider, limit));
  }

  /** Deletes the owner's live sessions with (or, `except`, without) this handle. One command. */
  deleteOwnedByHandle(user: string, provider: string, handle: string, except: boolean): Promise<number> {
    return this.#run('deleteOwnedByHandle', undefined, () => deleteOwnedWithHandle(this.#collection, user, provider, handle, except));
  }

  /** Counts the owner's live sessions. One command, served by the owner index. */
  countOwnedBy(user: string, provider: string, signal?: AbortSignal): Promise<number> {
    return this.#run('countOwnedBy', signal, () => countOwned(this.#collection, user, provider));
  }

  /** The session limit after a sign-in (owners.ts): a read, and a delete when something goes. */
  limitOwnedBy(user: string, provider: string, id: string, limit: SessionLimit, signal?: AbortSignal): Promise<LimitResult> {
    return this.#run('limitOwnedBy', signal, () => limitOwned(this.#collection, user, provider, this.#key(id), limit));
  }

  /** Counts live documents (not replaced ones), served by the expiry index. One command. */
  countLive(): Promise<number> {
    return this.#run('count', undefined, () =>
      this.#collection.countDocuments({ expiresAt: { $gt: new Date() }, ...notReplaced }),
    );
  }

  /** Counts live documents by `provider` (null: no owner). One `aggregate`, served by the expiry index. */
  async countLiveByProvider(signal?: AbortSignal): Promise<Map<string | null, number>> {
    const groups = await this.#run('countByProvider', signal, () =>
      this.#collection
        .aggregate<{ _id: string | null; count: number }>([
          { $match: { expiresAt: { $gt: new Date() }, ...notReplaced } },
          { $group: { _id: '$provider', count: { $sum: 1 } } },
        ])
        .toArray(),
    );
    return new Map(groups.map((group) => [typeof group._id === 'string' ? group._id : null, group.count]));
  }

  /**
   * Deletes at most `limit` expired documents: a `find` of their ids on the
   * expiry index, then a `deleteMany` of those ids that are still expired
   * (MongoDB's delete has no limit but one). Two commands; none to delete
   * after an empty find, and none once `signal` has aborted (a batch its
   * caller gave up on, e.g. timed out, deletes nothing after its find
   * answers). Ids too many for one command (over
   * {@link maxDeleteIdsBytes}, e.g. a large batch of long tokens) are
   * deleted in several. @returns how many.
   */
  async deleteExpired(limit: number, signal?: AbortSignal): Promise<number> {
    const now = new Date();
    return this.#run('deleteExpired', signal, async () => {
      let deleted = 0;
      try {
        const expired = await this.#collection
          .find({ expiresAt: { $lte: now } }, { projection: { _id: 1 }, limit })
          .toArray();
        for (const ids of chunksOfBytes(expired.map((doc) => doc._id), maxDeleteIdsBytes)) {
          if (signal?.aborted) break;
          const result = await this.#collection.deleteMany({ _id: { $in: ids }, expiresAt: { $lte: now } });
          deleted += result.deletedCount;
        }
      } catch (error) {
        // Closed while the batch ran: nothing left to clean up, and nothing worth an error on the app's console.
        if (!isClientClosed(error)) throw error;
      }
      return deleted;
    });
  }

  #key(id: string): string {
    return storageKey(id, this.#options.hashIds);
  }

  /** After a guarded write matched nothing: another tenure or lifetime, replaced, or gone? */
  async #whyNotLive(id: string, guard: WriteGuard, signal: AbortSignal | undefined): Promise<LiveWrite> {
    return writeFailure(await this.find(id, signal), guard);
  }

  #run<T>(operation: string, signal: AbortSignal | undefined, action: () => Promise<T>): Promise<T> {
    return runOperation(operation, signal, this.ensureSchema, action);
  }
}
