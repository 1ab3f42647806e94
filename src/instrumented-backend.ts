/**
 * A SessionBackend whose every call is observed: one client span and one
 * `db.client.operation.duration` point per call, named by the method. The
 * stores wrap their backend in it when telemetry is on, so neither backend
 * knows about telemetry and a backend of your own is observed the same way.
 */
import type { SessionBackend } from './backend.ts';
import type { Telemetry } from './telemetry.ts';

/** `backend` itself when telemetry is off (nothing spent), else the observing wrapper. */
export function instrumentBackend(backend: SessionBackend, telemetry: Telemetry): SessionBackend {
  if (!telemetry.enabled) return backend;
  const observe = <T>(operation: string, call: () => Promise<T>) => telemetry.databaseCall(operation, call);
  return {
    database: backend.database,
    ensureSchema: () => observe('ensureSchema', () => backend.ensureSchema()),
    find: (id, signal) => observe('find', () => backend.find(id, signal)),
    findData: (id, signal) => observe('find', () => backend.findData(id, signal)),
    findAll: (signal) => observe('findAll', () => backend.findAll(signal)),
    insert: (id, record, signal) => observe('insert', () => backend.insert(id, record, signal)),
    replace: (oldId, newId, record, guard, carry, signal) =>
      observe('replace', () => backend.replace(oldId, newId, record, guard, carry, signal)),
    updateLive: (id, change, signal) => observe('updateLive', () => backend.updateLive(id, change, signal)),
    upsert: (id, data, expiresAt, signal) => observe('upsert', () => backend.upsert(id, data, expiresAt, signal)),
    delete: (id, signal) => observe('delete', () => backend.delete(id, signal)),
    deleteChain: (id, signal) => observe('deleteChain', () => backend.deleteChain(id, signal)),
    deleteOwnedBy: (user, provider) => observe('deleteOwnedBy', () => backend.deleteOwnedBy(user, provider)),
    listOwnedBy: (user, provider, limit) => observe('listOwnedBy', () => backend.listOwnedBy(user, provider, limit)),
    deleteOwnedByHandle: (user, provider, handle, except) =>
      observe('deleteOwnedByHandle', () => backend.deleteOwnedByHandle(user, provider, handle, except)),
    countOwnedBy: (user, provider, signal) => observe('countOwnedBy', () => backend.countOwnedBy(user, provider, signal)),
    limitOwnedBy: (user, provider, id, limit, signal) =>
      observe('limitOwnedBy', () => backend.limitOwnedBy(user, provider, id, limit, signal)),
    countLive: () => observe('countLive', () => backend.countLive()),
    countLiveByProvider: (signal) => observe('countLiveByProvider', () => backend.countLiveByProvider(signal)),
    deleteExpired: (limit, signal) => observe('deleteExpired', () => backend.deleteExpired(limit, signal)),
  };
}
