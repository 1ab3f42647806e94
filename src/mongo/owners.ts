/**
 * The MongoDB backend's queries by owner (`user` + `provider`, served by the
 * owner index): forced logout, the devices page and the session limit.
 * `user` and `provider` reach MongoDB only as strings the owner rule
 * checked (never objects), so they cannot be operators.
 */
import type { Collection } from 'mongodb';
import { type DeviceRecord, type LimitResult, maxChainLength, type SessionLimit } from '../backend.ts';
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

/** Most times the limit's trim reads again after a session it meant to delete had moved. */
const maxLimitPasses = 5;

/**
 * Holds the owner to `limit.max` live sessions after the write that gave
 * it the session stored under `key` (see `SessionBackend.limitOwnedBy`).
 * `'evict-oldest'`: one `find` of the owner's live sessions' ids and last
 * writes, ordered here (newest `updatedAt` first, then the greater `_id`:
 * one fixed order for every caller), then one `deleteMany` of those
 * beyond `max`, still live and of this owner, when there are any. When it
 * deleted fewer than it meant to, a count of those that moved (a
 * regeneration gave one an id the `find` did not see): when any did, it
 * reads again (at most 5 times in all). When the own session was among
 * those to go, or missing from the read, one more read says whether it is
 * gone (ended) or moved on (it stands).
 * `'refuse'`: one count, and a delete of `key` when the owner has more
 * than `max`; when that deletes nothing because a regeneration moved it,
 * the record it moved to goes instead, while it is still the owner's
 * (two commands per move followed).
 */
export async function limitOwned(sessions: Sessions, user: string, provider: string, key: string, limit: SessionLimit): Promise<LimitResult> {
  if (limit.policy === 'refuse') {
    if ((await countOwned(sessions, user, provider)) <= limit.max) return { ended: 0, ownEnded: false };
    return withdraw(sessions, user, provider, key);
  }
  let ended = 0;
  for (let pass = 1; ; pass++) {
    const live = await sessions.find(liveOf(user, provider), { projection: { _id: 1, updatedAt: 1 } }).toArray();
    live.sort((a, b) => b.updatedAt.getTime() - a.updatedAt.getTime() || (a._id < b._id ? 1 : a._id > b._id ? -1 : 0));
    const beyond = live.slice(limit.max).map((doc) => doc._id);
    let deleted = 0;
    for (const ids of chunksOfBytes(beyond, maxDeleteIdsBytes)) {
      const result = await sessions.deleteMany({ _id: { $in: ids }, ...liveOf(user, provider) }, revocation);
      deleted += result.deletedCount;
    }
    ended += deleted;
    // Those it did not delete are gone already (another sign-in's trim, a sign-out) or moved.
    if (deleted < beyond.length && pass < maxLimitPasses && (await anyMoved(sessions, beyond))) continue;
    const ownKept = live.slice(0, limit.max).some((doc) => doc._id === key);
    return { ended, ownEnded: !ownKept && (await isGone(sessions, key)) };
  }
}

/** Whether any of `keys` is a replaced session now (a regeneration moved it). */
async function anyMoved(sessions: Sessions, keys: string[]): Promise<boolean> {
  for (const ids of chunksOfBytes(keys, maxDeleteIdsBytes)) {
    if ((await sessions.countDocuments({ _id: { $in: ids }, replaced: true }, { limit: 1 })) > 0) return true;
  }
  return false;
}

/** Whether the session `key` is gone (deleted or expired), not live and not moved on by a regeneration. */
async function isGone(sessions: Sessions, key: string): Promise<boolean> {
  const doc = await sessions.findOne({ _id: key }, { projection: { replaced: 1, expiresAt: 1 } });
  return doc === null || (doc.replaced !== true && !(doc.expiresAt.getTime() > Date.now()));
}

/**
 * Deletes the sign-in's session `key`, or, when a regeneration moved it,
 * the session it moved to, while that is still this owner's and live.
 */
async function withdraw(sessions: Sessions, user: string, provider: string, key: string): Promise<LimitResult> {
  let current: string | undefined = key;
  for (let hop = 0; current !== undefined && hop <= maxChainLength; hop++) {
    const result = await sessions.deleteOne({ _id: current, ...liveOf(user, provider) }, revocation);
    if (result.deletedCount === 1) return { ended: 1, ownEnded: true };
    const doc: SessionDocument | null = await sessions.findOne({ _id: current }, { projection: { replacedBy: 1 } });
    current = typeof doc?.replacedBy === 'string' ? doc.replacedBy : undefined;
  }
  return { ended: 0, ownEnded: false };
}
