/**
 * The housekeeping loop shared by MongoStore.startAutoClean and
 * MongoDBStore's background cleanup.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { type SessionBackend } from './backend.ts';
import { withTimeout } from './operations.ts';
import { SessionOptionsError } from './errors.ts';

/**
 * Runs `tick` every `intervalMs` until `signal` aborts; resolves once the
 * loop has stopped, after any tick in progress has finished, so no tick runs
 * after the promise settles. The first tick runs one interval after the start.
 * A tick that throws is passed to `onError` and the loop goes on. The timer
 * is unreferenced, so the loop never keeps the process alive.
 */
export async function runEvery(
  signal: AbortSignal,
  intervalMs: number,
  tick: () => Promise<unknown>,
  onError: (error: unknown) => void,
): Promise<void> {
  while (!signal.aborted) {
    try {
      await sleep(intervalMs, undefined, { signal, ref: false });
    } catch {
      return; // aborted while waiting
    }
    try {
      await tick();
    } catch (error) {
      reportSafely(onError, error);
    }
  }
}

/** Records deleted per batch by default: one bounded statement (or find and delete) each. */
export const defaultCleanupBatchSize = 1000;

/**
 * One cleanup tick: deletes expired records in batches of `batchSize`
 * (each one call of `deleteBatch`, bounded on its own) until a batch comes
 * back short or `signal` aborts, so no tick ever runs one unbounded
 * statement, however many records have expired. @returns how many in all.
 */
export async function deleteInBatches(
  batchSize: number,
  deleteBatch: (limit: number) => Promise<number>,
  signal?: AbortSignal,
): Promise<number> {
  let total = 0;
  for (;;) {
    const deleted = await deleteBatch(batchSize);
    total += deleted;
    if (deleted < batchSize || signal?.aborted) return total;
  }
}

/**
 * A store's cleanup tick: {@link deleteInBatches} over `backend`, each
 * batch bounded by `timeoutMs` (0: unbounded), stopping between batches
 * once the tick's `stop` signal aborts. A batch given up after its timeout
 * does not hold up the next tick: a command lost on a dead connection may
 * never settle (seen with Bun), and the housekeeping must go on.
 */
export function expiredCleanup(
  backend: Pick<SessionBackend, 'deleteExpired'>,
  batchSize: number,
  timeoutMs: number,
): (stop?: AbortSignal) => Promise<number> {
  const deleteBatch = (limit: number) => withTimeout('deleteExpired', timeoutMs, (signal) => backend.deleteExpired(limit, signal));
  return (stop) => deleteInBatches(batchSize, deleteBatch, stop);
}

/** Checks a batch size: a whole number from 1 to 100,000. */
export function checkBatchSize(value: unknown, label: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 100_000) {
    throw new SessionOptionsError(`${label} must be a whole number from 1 to 100000`);
  }
  return value;
}

/** The longest delay a timer keeps: runtimes run a longer one after 1 ms. */
export const maxTimerMs = 2_147_483_647;

/** Checks an interval or timeout given in milliseconds: more than 0, at most {@link maxTimerMs}. */
export function isValidInterval(intervalMs: unknown): intervalMs is number {
  return typeof intervalMs === 'number' && intervalMs > 0 && intervalMs <= maxTimerMs;
}

/**
 * Checks an interval or timeout option where 0 switches it off: 0, or from
 * 1 to {@link maxTimerMs} milliseconds.
 * @throws SessionOptionsError naming `label` otherwise.
 */
export function checkMillisecondsOrZero(value: unknown, label: string): number {
  if (value !== 0 && !isValidInterval(value)) {
    throw new SessionOptionsError(`${label} must be 0 or a number of milliseconds from 1 to ${maxTimerMs}`);
  }
  return value;
}

/** Checks an `onError` option: a function, or absent. */
export function checkErrorHandler(onError: unknown): ((error: unknown) => void) | undefined {
  if (onError !== undefined && typeof onError !== 'function') {
    throw new SessionOptionsError('onError must be a function');
  }
  return onError as ((error: unknown) => void) | undefined;
}

/** Hands `error` to `onError`; a handler that throws or rejects is ignored. */
export function reportSafely(onError: (error: unknown) => void, error: unknown): void {
  // A broken error handler must not stop the housekeeping, nor, written as
  // an async function, leave an unhandled rejection (which ends a Node process).
  try {
    const returned: unknown = onError(error);
    if (typeof (returned as PromiseLike<unknown> | undefined)?.then === 'function') {
      Promise.resolve(returned).catch(() => {});
    }
  } catch {
    // ignored, as documented
  }
}
