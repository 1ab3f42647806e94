/**
 * The housekeeping loop shared by MongoStore.startAutoClean and
 * MongoDBStore's background cleanup.
 */
import { setTimeout as sleep } from 'node:timers/promises';

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

/** Checks an interval given in milliseconds. */
export function isValidInterval(intervalMs: unknown): intervalMs is number {
  return typeof intervalMs === 'number' && Number.isFinite(intervalMs) && intervalMs > 0;
}

function reportSafely(onError: (error: unknown) => void, error: unknown): void {
  try {
    onError(error);
  } catch {
    // A broken error handler must not stop the housekeeping.
  }
}
