/** What the MongoDB backend reads from the driver's errors. */
import { MongoExpiredSessionError, MongoNotConnectedError, MongoServerError, MongoTopologyClosedError } from 'mongodb';

/** MongoDB's duplicate-key error code. */
const duplicateKey = 11000;

/**
 * A duplicate key on `_id` (not on an index the app may have added): for an
 * insert of one of the store's random ids, that insert itself, applied by an
 * attempt whose acknowledgement was lost.
 */
export function isDuplicateId(error: unknown): boolean {
  if (!(error instanceof MongoServerError) || error.code !== duplicateKey) return false;
  const pattern = (error as { keyPattern?: unknown }).keyPattern;
  if (pattern !== null && typeof pattern === 'object') return Object.keys(pattern).join() === '_id';
  const index = /\bindex: (\S+)/.exec(error.message)?.[1];
  // FerretDB 1.24 names no index at all: the store's collections have no
  // other unique index, so the duplicate is taken as the id's.
  return index === undefined || index === '_id_';
}

/** The app closed its client (it is shutting down, or a script ends right after a save). */
export function isClientClosed(error: unknown): boolean {
  return error instanceof MongoTopologyClosedError || error instanceof MongoExpiredSessionError || error instanceof MongoNotConnectedError;
}
