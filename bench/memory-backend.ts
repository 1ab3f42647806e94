/**
 * A SessionBackend in process memory, for the in-process benches: it keeps
 * the contract (live records only, tombstones after `replace`, versions for
 * compare-and-set) so the store does all of its own work, and costs almost
 * nothing itself, so what is measured is the library. Not for production:
 * nothing is shared between processes and nothing survives a restart.
 */
import {
  type DatabaseDescription,
  type DeviceRecord,
  type FoundSession,
  type LiveChange,
  type LiveWrite,
  type SessionBackend,
  type SessionRecord,
} from '../src/index.ts';
import { writeDone, writeFailure } from '../src/backend.ts';

interface Entry {
  data: Uint8Array | undefined;
  expiresAt: Date;
  createdAt: Date;
  updatedAt: Date;
  owner: SessionRecord['owner'];
  lifetime: SessionRecord['lifetime'];
  device: SessionRecord['device'] | undefined;
  version: number;
  replaced: boolean;
}

const noOwner = { user: undefined, provider: undefined };
const replacedMs = 60_000;

export class MemoryBackend implements SessionBackend {
  readonly database: DatabaseDescription = { system: 'memory', collection: 'sessions' };
  readonly #entries = new Map<string, Entry>();

  ensureSchema(): Promise<void> {
    return Promise.resolve();
  }

  find(id: string): Promise<FoundSession> {
    return Promise.resolve(this.#found(id));
  }

  findAll(): Promise<Map<string, Uint8Array>> {
    const live = new Map<string, Uint8Array>();
    for (const [id, entry] of this.#entries) if (this.#isLive(entry) && entry.data) live.set(id, entry.data);
    return Promise.resolve(live);
  }

  insert(id: string, record: SessionRecord): Promise<void> {
    if (this.#entries.has(id)) return Promise.reject(new Error(`duplicate id ${id}`));
    this.#entries.set(id, this.#entry(record, 1));
    return Promise.resolve();
  }

  replace(oldId: string, newId: string, record: SessionRecord, expectedVersion: number): Promise<LiveWrite> {
    const old = this.#entries.get(oldId);
    if (old === undefined || !this.#isLive(old) || old.version !== expectedVersion) return Promise.resolve(writeFailure(this.#found(oldId)));
    this.#entries.set(newId, this.#entry(record, 1));
    this.#entries.set(oldId, { ...old, data: undefined, owner: noOwner, replaced: true, expiresAt: new Date(Date.now() + replacedMs) });
    return Promise.resolve(writeDone);
  }

  updateLive(id: string, change: LiveChange): Promise<LiveWrite> {
    const entry = this.#entries.get(id);
    if (entry === undefined || !this.#isLive(entry)) return Promise.resolve(writeFailure(this.#found(id)));
    if (change.expectedVersion !== undefined && entry.version !== change.expectedVersion) return Promise.resolve(writeFailure(this.#found(id)));
    if (change.data !== undefined) entry.data = change.data;
    if (change.expiresAt !== undefined) entry.expiresAt = change.expiresAt;
    if (change.owner !== undefined) entry.owner = change.owner;
    if (change.lifetime !== undefined) entry.lifetime = change.lifetime ?? undefined;
    if (change.handle !== undefined && entry.device) entry.device = { ...entry.device, handle: change.handle };
    if (change.expectedVersion !== undefined) entry.version = change.expectedVersion + 1;
    entry.updatedAt = new Date();
    return Promise.resolve(writeDone);
  }

  upsert(id: string, data: Uint8Array, expiresAt: Date): Promise<void> {
    const now = new Date();
    this.#entries.set(id, { data, expiresAt, createdAt: now, updatedAt: now, owner: noOwner, lifetime: undefined, device: undefined, version: 0, replaced: false });
    return Promise.resolve();
  }

  delete(id: string): Promise<void> {
    this.#entries.delete(id);
    return Promise.resolve();
  }

  deleteOwnedBy(user: string, provider: string): Promise<number> {
    return Promise.resolve(this.#deleteWhere((entry) => entry.owner.user === user && entry.owner.provider === provider));
  }

  listOwnedBy(user: string, provider: string): Promise<DeviceRecord[]> {
    const list: DeviceRecord[] = [];
    for (const entry of this.#entries.values()) {
      if (!this.#isLive(entry) || entry.owner.user !== user || entry.owner.provider !== provider || !entry.device) continue;
      list.push({ ...entry.device, createdAt: entry.createdAt, lastSeenAt: entry.updatedAt, expiresAt: entry.expiresAt });
    }
    return Promise.resolve(list.sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime()));
  }

  deleteOwnedByHandle(user: string, provider: string, handle: string, except: boolean): Promise<number> {
    return Promise.resolve(
      this.#deleteWhere(
        (entry) => entry.owner.user === user && entry.owner.provider === provider && (entry.device?.handle === handle) !== except,
      ),
    );
  }

  countLive(): Promise<number> {
    let count = 0;
    for (const entry of this.#entries.values()) if (this.#isLive(entry)) count++;
    return Promise.resolve(count);
  }

  countLiveByProvider(): Promise<Map<string | null, number>> {
    const counts = new Map<string | null, number>();
    for (const entry of this.#entries.values()) {
      if (!this.#isLive(entry)) continue;
      const provider = entry.owner.provider ?? null;
      counts.set(provider, (counts.get(provider) ?? 0) + 1);
    }
    return Promise.resolve(counts);
  }

  deleteExpired(limit: number): Promise<number> {
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

  #entry(record: SessionRecord, version: number): Entry {
    return { ...record, updatedAt: new Date(), version, replaced: false };
  }

  #isLive(entry: Entry): boolean {
    return !entry.replaced && entry.expiresAt.getTime() > Date.now();
  }

  #found(id: string): FoundSession {
    const entry = this.#entries.get(id);
    if (entry === undefined || !(entry.expiresAt.getTime() > Date.now())) return undefined;
    if (entry.replaced || entry.data === undefined) return { state: 'replaced' };
    return {
      state: 'live',
      data: entry.data,
      expiresAt: entry.expiresAt,
      createdAt: entry.createdAt,
      lifetime: entry.lifetime,
      handle: entry.device?.handle ?? '',
      version: entry.version,
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
