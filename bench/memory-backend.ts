/**
 * A SessionBackend in process memory, for the in-process benches: it keeps
 * the contract (live records only, per-entry content written as deltas,
 * owner-tenure and lifetime guards, tombstones after `replace` that name
 * their successor) so the store does all of its own work, and costs almost
 * nothing itself, so what is measured is the library. Not for production:
 * nothing is shared between processes and nothing survives a restart.
 * Every method runs synchronously (one "command"), so each is atomic.
 */
import {
  type DatabaseDescription,
  type DeviceRecord,
  type FoundSession,
  type LimitResult,
  type LiveChange,
  type LiveWrite,
  type SessionBackend,
  type SessionRecord,
} from '../src/index.ts';
import {
  type ContentDelta,
  maxChainLength,
  replacedRecordMs,
  type SessionContent,
  type SessionLimit,
  type WriteGuard,
  writeDone,
  writeFailure,
} from '../src/backend.ts';
import { applyDelta, emptyContent } from '../src/content.ts';

interface Entry {
  /** A token's data (token stores); undefined for sessions and tombstones. */
  data: Uint8Array | undefined;
  /** A session's values and flashes; undefined for tokens and tombstones. */
  content: SessionContent | undefined;
  epoch: number;
  expiresAt: Date;
  createdAt: Date;
  updatedAt: Date;
  owner: SessionRecord['owner'];
  lifetime: SessionRecord['lifetime'];
  device: SessionRecord['device'] | undefined;
  signedInAt: Date | undefined;
  replaced: boolean;
  /** On a tombstone: the id the session was regenerated into. */
  replacedBy: string | undefined;
}

const noOwner = { user: undefined, provider: undefined };

export class MemoryBackend implements SessionBackend {
  readonly database: DatabaseDescription = { system: 'memory', collection: 'sessions' };
  readonly #entries = new Map<string, Entry>();

  ensureSchema(): Promise<void> {
    return Promise.resolve();
  }

  find(id: string, signal?: AbortSignal): Promise<FoundSession> {
    if (signal?.aborted) return aborted(signal);
    return Promise.resolve(this.#found(id));
  }

  findData(id: string, signal?: AbortSignal): Promise<Uint8Array | undefined> {
    if (signal?.aborted) return aborted(signal);
    const entry = this.#entries.get(id);
    return Promise.resolve(entry !== undefined && this.#isLive(entry) ? entry.data : undefined);
  }

  findAll(signal?: AbortSignal): Promise<Map<string, Uint8Array>> {
    if (signal?.aborted) return aborted(signal);
    const live = new Map<string, Uint8Array>();
    for (const [id, entry] of this.#entries) if (this.#isLive(entry) && entry.data) live.set(id, entry.data);
    return Promise.resolve(live);
  }

  insert(id: string, record: SessionRecord, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return aborted(signal);
    if (this.#entries.has(id)) return Promise.reject(new Error(`duplicate id ${id}`));
    this.#entries.set(id, this.#entry(record, record.content));
    return Promise.resolve();
  }

  /**
   * Regeneration, atomically: `oldId` must be live, not replaced and within
   * the guard; then `newId` gets the record (with `carry`: the old content
   * as stored now with `carry` applied) and `oldId` becomes a tombstone
   * naming it. Otherwise nothing is written.
   */
  replace(
    oldId: string,
    newId: string,
    record: SessionRecord,
    guard: WriteGuard,
    carry: ContentDelta | undefined,
    signal?: AbortSignal,
  ): Promise<LiveWrite> {
    if (signal?.aborted) return aborted(signal);
    if (this.#entries.has(newId)) return Promise.reject(new Error(`duplicate id ${newId}`));
    const old = this.#entries.get(oldId);
    if (old === undefined || !this.#isLive(old) || !withinGuard(old, guard)) {
      return Promise.resolve(writeFailure(this.#found(oldId), guard));
    }
    const content = carry !== undefined && old.content !== undefined ? applyDelta(old.content, carry) : record.content;
    this.#entries.set(newId, this.#entry(record, content));
    this.#entries.set(oldId, {
      data: undefined,
      content: undefined,
      epoch: 0,
      expiresAt: new Date(Date.now() + replacedRecordMs),
      createdAt: old.createdAt,
      updatedAt: new Date(),
      owner: noOwner,
      lifetime: undefined,
      device: undefined,
      signedInAt: undefined,
      replaced: true,
      replacedBy: newId,
    });
    return Promise.resolve(writeDone);
  }

  updateLive(id: string, change: LiveChange, signal?: AbortSignal): Promise<LiveWrite> {
    if (signal?.aborted) return aborted(signal);
    const entry = this.#entries.get(id);
    if (entry === undefined || !this.#isLive(entry) || !withinGuard(entry, change)) {
      return Promise.resolve(writeFailure(this.#found(id), change));
    }
    if (change.content !== undefined) {
      entry.content = applyDelta(entry.content ?? emptyContent, change.content);
      if (change.content.mode === 'replace') entry.data = undefined;
    }
    if (change.expiresAt !== undefined) entry.expiresAt = change.expiresAt;
    if (change.lifetime !== undefined) entry.lifetime = change.lifetime ?? undefined;
    if (change.owner !== undefined) {
      entry.owner = change.owner;
      entry.signedInAt = change.signedInAt ?? undefined;
      entry.epoch = change.epoch + 1;
    }
    if (change.handle !== undefined) {
      entry.device = { userAgent: undefined, details: undefined, ...entry.device, handle: change.handle };
    }
    entry.updatedAt = new Date();
    return Promise.resolve(writeDone);
  }

  upsert(id: string, data: Uint8Array, expiresAt: Date, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return aborted(signal);
    const now = new Date();
    const createdAt = this.#entries.get(id)?.createdAt ?? now;
    this.#entries.set(id, {
      data,
      content: undefined,
      epoch: 0,
      expiresAt,
      createdAt,
      updatedAt: now,
      owner: noOwner,
      lifetime: undefined,
      device: undefined,
      signedInAt: undefined,
      replaced: false,
      replacedBy: undefined,
    });
    return Promise.resolve();
  }

  delete(id: string, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return aborted(signal);
    this.#entries.delete(id);
    return Promise.resolve();
  }

  /** Deletes the record and the chain of records it was regenerated into (live or not). */
  deleteChain(id: string, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return aborted(signal);
    let key: string | undefined = id;
    for (let hop = 0; key !== undefined && hop <= maxChainLength; hop++) {
      const entry = this.#entries.get(key);
      this.#entries.delete(key);
      key = entry?.replacedBy;
    }
    return Promise.resolve();
  }

  deleteOwnedBy(user: string, provider: string): Promise<number> {
    return Promise.resolve(this.#deleteWhere((entry) => entry.owner.user === user && entry.owner.provider === provider));
  }

  listOwnedBy(user: string, provider: string, limit: number): Promise<DeviceRecord[]> {
    const list: DeviceRecord[] = [];
    for (const entry of this.#entries.values()) {
      if (!this.#isLive(entry) || entry.owner.user !== user || entry.owner.provider !== provider) continue;
      list.push({
        handle: entry.device?.handle ?? '',
        userAgent: entry.device?.userAgent,
        details: entry.device?.details,
        createdAt: entry.createdAt,
        lastSeenAt: entry.updatedAt,
        expiresAt: entry.expiresAt,
        signedInAt: entry.signedInAt,
      });
    }
    return Promise.resolve(list.sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime()).slice(0, limit));
  }

  deleteOwnedByHandle(user: string, provider: string, handle: string, except: boolean): Promise<number> {
    return Promise.resolve(
      this.#deleteWhere(
        (entry) => entry.owner.user === user && entry.owner.provider === provider && (entry.device?.handle === handle) !== except,
      ),
    );
  }

  countOwnedBy(user: string, provider: string): Promise<number> {
    return Promise.resolve(this.#owned(user, provider).length);
  }

  limitOwnedBy(user: string, provider: string, id: string, limit: SessionLimit): Promise<LimitResult> {
    const owned = this.#owned(user, provider);
    if (limit.policy === 'refuse') {
      if (owned.length <= limit.max) return Promise.resolve({ ended: 0, ownEnded: false });
      const ended = this.#entries.delete(id) ? 1 : 0;
      return Promise.resolve({ ended, ownEnded: ended === 1 });
    }
    owned.sort(([a, x], [b, y]) => y.updatedAt.getTime() - x.updatedAt.getTime() || (a < b ? 1 : a > b ? -1 : 0));
    const beyond = owned.slice(limit.max);
    for (const [key] of beyond) this.#entries.delete(key);
    return Promise.resolve({ ended: beyond.length, ownEnded: beyond.some(([key]) => key === id) });
  }

  /** The owner's live sessions as [id, entry]. */
  #owned(user: string, provider: string): [string, Entry][] {
    return [...this.#entries].filter(([, entry]) => this.#isLive(entry) && entry.owner.user === user && entry.owner.provider === provider);
  }

  countLive(): Promise<number> {
    let count = 0;
    for (const entry of this.#entries.values()) if (this.#isLive(entry)) count++;
    return Promise.resolve(count);
  }

  countLiveByProvider(signal?: AbortSignal): Promise<Map<string | null, number>> {
    if (signal?.aborted) return aborted(signal);
    const counts = new Map<string | null, number>();
    for (const entry of this.#entries.values()) {
      if (!this.#isLive(entry)) continue;
      const provider = entry.owner.provider ?? null;
      counts.set(provider, (counts.get(provider) ?? 0) + 1);
    }
    return Promise.resolve(counts);
  }

  deleteExpired(limit: number, signal?: AbortSignal): Promise<number> {
    if (signal?.aborted) return aborted(signal);
    const now = Date.now();
    let deleted = 0;
    for (const [id, entry] of this.#entries) {
      if (deleted < limit && entry.expiresAt.getTime() <= now) {
        this.#entries.delete(id);
        deleted++;
      }
    }
    return Promise.resolve(deleted);
  }

  #entry(record: SessionRecord, content: SessionContent): Entry {
    return {
      data: undefined,
      content,
      epoch: record.epoch,
      expiresAt: record.expiresAt,
      createdAt: record.createdAt,
      updatedAt: new Date(),
      owner: record.owner,
      lifetime: record.lifetime,
      device: record.device,
      signedInAt: record.signedInAt,
      replaced: false,
      replacedBy: undefined,
    };
  }

  /** Live: not expired and not a tombstone. */
  #isLive(entry: Entry): boolean {
    return !entry.replaced && entry.expiresAt.getTime() > Date.now();
  }

  #found(id: string): FoundSession {
    const entry = this.#entries.get(id);
    if (entry === undefined || !(entry.expiresAt.getTime() > Date.now())) return undefined;
    if (entry.replaced) return { state: 'replaced' };
    const content = entry.content ?? (entry.data === undefined ? undefined : { legacy: entry.data });
    if (content === undefined) return undefined;
    return {
      state: 'live',
      content,
      epoch: entry.epoch,
      expiresAt: entry.expiresAt,
      createdAt: entry.createdAt,
      lifetime: entry.lifetime,
      handle: entry.device?.handle ?? '',
      signedInAt: entry.signedInAt,
    };
  }

  #deleteWhere(matches: (entry: Entry) => boolean): number {
    let deleted = 0;
    for (const [id, entry] of this.#entries) {
      if (this.#isLive(entry) && matches(entry)) {
        this.#entries.delete(id);
        deleted++;
      }
    }
    return deleted;
  }
}

/** Whether a live entry is within a write's guard: the owner tenure and, when expected, the session's own lifetime. */
function withinGuard(entry: Entry, { epoch, expectedLifetime }: WriteGuard): boolean {
  if (entry.epoch !== epoch) return false;
  if (expectedLifetime === undefined) return true;
  const expected = expectedLifetime.lifetime;
  const stored = entry.lifetime;
  if (expected === undefined || stored === undefined) return expected === stored;
  return expected.maxAge === stored.maxAge && expected.persistent === stored.persistent;
}

function aborted<T>(signal: AbortSignal): Promise<T> {
  return Promise.reject(
    signal.reason instanceof Error ? signal.reason : new DOMException('This operation was aborted', 'AbortError'),
  );
}
