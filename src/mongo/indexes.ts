/**
 * The MongoDB backend's collection checks and indexes: the name is checked
 * when the store is built, the indexes created once per store, one command
 * per index (FerretDB 1.24 drops the connection on a multi-index command
 * that repeats an existing index).
 */
import { type Collection, MongoServerError } from 'mongodb';
import { errorMessage } from '../operations.ts';
import { SessionOptionsError, SessionStoreError } from '../errors.ts';
import type { SessionDocument } from './documents.ts';
import type { SessionCollectionOptions } from './session-collection.ts';

/** Server error codes for an index that exists with other options. */
const indexConflictCodes = new Set([85, 86]);

/**
 * Creates the expiry index (a TTL index with `ttlIndex`) and, with
 * `indexOwners`, the owner index; indexes that exist already are fine.
 * @throws SessionStoreError when the server refuses, e.g. an expiry index
 * exists with other options (switching `ttlIndex` needs a manual drop).
 */
export async function createIndexes(collection: Collection<SessionDocument>, settings: SessionCollectionOptions): Promise<void> {
  const expiry = settings.ttlIndex
    ? { name: 'expiresAt_1', expireAfterSeconds: 0 }
    : { name: 'expiresAt_1' };
  const indexes: [Record<string, 1>, { name: string; expireAfterSeconds?: number }][] = [
    [{ expiresAt: 1 }, expiry],
  ];
  if (settings.indexOwners) indexes.push([{ user: 1, provider: 1 }, { name: 'user_1_provider_1' }]);
  for (const [key, options] of indexes) {
    try {
      await collection.createIndex(key, options);
    } catch (error) {
      const conflict = error instanceof MongoServerError && indexConflictCodes.has(Number(error.code));
      throw new SessionStoreError(
        conflict
          ? `index ${options.name} on ${collection.collectionName} exists with other options` +
              ' (ttlIndex changed?); drop it and let the store recreate it'
          : `creating index ${options.name} failed: ${errorMessage(error)}`,
        { cause: error },
      );
    }
  }
}

/**
 * MongoDB's rules for a collection name (non-empty, no `$` or NUL, not in the
 * `system.` namespace), checked when the store is built rather than at the
 * first command.
 */
export function checkCollectionName(name: unknown): void {
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
