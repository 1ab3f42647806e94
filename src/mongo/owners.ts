/**
 * The MongoDB backend's queries by owner (`user` + `provider`, served by the
 * owner index): forced logout, the devices page and the session limit.
 * `user` and `provider` reach MongoDB only as strings the owner rule
 * checked (never objects), so they cannot be operators.
 */
import type { Collection } from 'mongodb';
import type { DeviceRecord, LimitResult, SessionLimit } from '../backend.ts';
import { chunksOfBytes, deviceRecordOf, maxDeleteIdsBytes, notReplaced, type SessionDocument } from './documents.ts';

/**
 * The write concern of every delete that ends a session (a sign-out, a
 * forced logout, a device revocation, an eviction by the session limit, a
 * token's delete): acknowledged once a majority of the replica set has it,
 * so a failover cannot roll it back and bring ended sessions back, whatever
 * the app's client says (an app may run `w: 1` for speed), within 10 s
 * (`wtimeoutMS`: a set that lost its majority answers with an error instead
 * of holding the connection for ever; the delete is then applied on the
 * primary but not confirmed). Other writes keep the client's write concern:
 * what a rollback loses there is a change or a new session, never a
 * sign-out (docs/production.md).
 */
export const revocation = { writeConcern: { w: 'majority', wtimeoutMS: 10_000 } } as const;

type Sessions = Collection<SessionDocument>;

/** The owner's live sessions: the filter of every query here. */
function liveOf(user: string, provider: string) {
  return { user, provider, expiresAt: { $gt: new Date() }, ...notReplaced };
}

/** Deletes every live session of the owner. @returns how many. */
export async function deleteOwned(sessions: Sessions, user: string, provider: string): Promise<number> {
  const result = await sessions.deleteMany({ user, provider, expiresAt: { $gt: new Date() } }, revocation);
  return result.deletedCount;
}

/** At most `limit` of the owner's live sessions, newest first, without ids or data. */
export async function listOwned(sessions: Sessions, user: string, provider: string, limit: number): Promise<DeviceRecord[]> {
  const docs = await sessions
    .find(liveOf(user, provider), {
      projection: { _id: 0, handle: 1, createdAt: 1, updatedAt: 1, expiresAt: 1, userAgent: 1, device: 1, signedInAt: 1 },
      sort: { createdAt: -1 },
      limit,
    })
    .toArray();
  return docs.map(deviceRecordOf);
}

/** Deletes the owner's live sessions with (or, `except`, without) this handle. @returns how many. */
export async function deleteOwnedWithHandle(sessions: Sessions, user: string, provider: string, handle: string, except: boolean): Promise<number> {
  const result = await sessions.deleteMany(
    { user, provider, expiresAt: { $gt: new Date() }, handle: except ? { $ne: handle } : handle },
    revocation,
  );
  return result.deletedCount;
}

/** Counts the owner's live sessions. */
export function countOwned(sessions: Sessions, user: string, provider: string): Promise<number> {
  return sessions.countDocuments(liveOf(user, provider));
}

/** Most times the limit's trim runs again after a session it meant to delete had changed. */
const maxLimitPasses = 5;

/**
 * Holds the owner to `limit.max` live sessions after the write that gave
 * it the session stored under `key` (see `SessionBackend.limitOwnedBy`).
 * `'evict-oldest'`: one `find` of the owner's live sessions' ids and last
 * writes, ordered here (newest `updatedAt` first, then the greater `_id`:
 * one fixed order for every caller), then one `deleteMany` of those
 * beyond `max`, still live and of this owner, when there are any (the
 * sign-in's own, when it is among them, in a `deleteOne` of its own); again
 * (at most 5 times in all) when it deleted fewer than it meant to: one
 * changed meanwhile, e.g. a regeneration moved it to an id the `find` did
 * not see. `'refuse'`: one count, and a delete of `key` when the owner has
 * more than `max`.
 */
export async function limitOwned(sessions: Sessions, user: string, provider: string, key: string, limit: SessionLimit): Promise<LimitResult> {
  if (limit.policy === 'refuse') {
    if ((await countOwned(sessions, user, provider)) <= limit.max) return { ended: 0, ownEnded: false, over: false };
    const result = await sessions.deleteOne({ _id: key, user, provider }, revocation);
    return { ended: result.deletedCount, ownEnded: result.deletedCount === 1, over: true };
  }
  let ended = 0;
  let ownEnded = false;
  for (let pass = 1; ; pass++) {
    const live = await sessions.find(liveOf(user, provider), { projection: { _id: 1, updatedAt: 1 } }).toArray();
    live.sort((a, b) => b.updatedAt.getTime() - a.updatedAt.getTime() || (a._id < b._id ? 1 : a._id > b._id ? -1 : 0));
    const beyond = live.slice(limit.max).map((doc) => doc._id);
    let deleted = 0;
    if (beyond.includes(key)) {
      // Apart from the others, to know whether this call ended it (it may have moved meanwhile).
      const own = await sessions.deleteOne({ _id: key, ...liveOf(user, provider) }, revocation);
      ownEnded ||= own.deletedCount === 1;
      deleted += own.deletedCount;
    }
    for (const ids of chunksOfBytes(beyond.filter((id) => id !== key), maxDeleteIdsBytes)) {
      const result = await sessions.deleteMany({ _id: { $in: ids }, ...liveOf(user, provider) }, revocation);
      deleted += result.deletedCount;
    }
    ended += deleted;
    if (deleted === beyond.length || pass >= maxLimitPasses) return { ended, ownEnded, over: false };
  }
}
