/**
 * A session store's housekeeping: deleting expired sessions. Two ways, on
 * one store:
 * - by default, driven by the store's own writes: after a write, one
 *   bounded batch in the background, at most once per `cleanupInterval`
 *   (the first at the store's first write). No timer: an idle process does
 *   no work and nothing is held open; a store that serves traffic keeps its
 *   expired sessions from piling up.
 * - `startAutoClean(signal, intervalMs)`: a loop for apps that want one
 *   (every batch until one comes back short, each tick); while it runs, the
 *   write-driven batches pause.
 */
import { type SessionBackend } from './backend.ts';
import { withTimeout } from './operations.ts';
import { expiredCleanup, isValidInterval, maxTimerMs, reportSafely, runEvery } from './cleanup.ts';

/** What housekeeping needs of a store; fixed for the life of the store. */
export interface HousekeepingConfig {
  backend: Pick<SessionBackend, 'deleteExpired'>;
  batchSize: number;
  timeoutMs: number;
  /** Milliseconds between write-driven batches; 0: none. */
  intervalMs: number;
  onError: (error: unknown) => void;
  /** Starts a write-driven batch outside the writing request's trace (Telemetry.detached). */
  detached: <T>(call: () => T) => T;
}

/** Deletes a store's expired sessions, after its writes and in an optional loop. */
export class Housekeeping {
  readonly #config: HousekeepingConfig;
  readonly #tick: (stop: AbortSignal) => Promise<number>;
  /** When the last write-driven batch started (`performance.now()`); none yet: never. */
  #lastBatchAt = Number.NEGATIVE_INFINITY;
  #batchRunning = false;
  #loopRunning = false;

  constructor(config: HousekeepingConfig) {
    this.#config = config;
    // Each batch bounded like any call: a command lost on a dead connection
    // must not stop the housekeeping for good.
    this.#tick = expiredCleanup(config.backend, config.batchSize, config.timeoutMs);
  }

  /**
   * Called after each write of the store: starts one batch in the
   * background when the interval has passed since the last one started,
   * none is running, and no loop runs. Never throws and never rejects: a
   * failure goes to `onError`.
   */
  afterWrite(): void {
    const { intervalMs } = this.#config;
    if (intervalMs === 0 || this.#batchRunning || this.#loopRunning) return;
    const now = performance.now();
    if (now - this.#lastBatchAt < intervalMs) return;
    this.#lastBatchAt = now;
    this.#batchRunning = true;
    const { backend, batchSize, timeoutMs, onError, detached } = this.#config;
    // The next batch may start once this one has ended or its bound has
    // passed (`timeoutMs`, or the interval when that is 0): a batch that
    // never settles (a backend that ignores the signal) does not stop them.
    const release = setTimeout(() => (this.#batchRunning = false), timeoutMs > 0 ? timeoutMs : intervalMs);
    (release as { unref?: () => void }).unref?.();
    detached(() => withTimeout('deleteExpired', timeoutMs, (signal) => backend.deleteExpired(batchSize, signal)))
      .catch((error: unknown) => reportSafely(onError, error))
      .finally(() => {
        clearTimeout(release);
        this.#batchRunning = false;
      });
  }

  /** See `SessionStore.startAutoClean`. */
  async loop(signal: AbortSignal, intervalMs: number): Promise<void> {
    if (!(signal instanceof AbortSignal)) throw new TypeError('startAutoClean needs an AbortSignal');
    if (!isValidInterval(intervalMs)) {
      throw new TypeError(`startAutoClean: intervalMs must be a number of milliseconds from 1 to ${maxTimerMs}`);
    }
    if (signal.aborted) return;
    if (this.#loopRunning) {
      throw new Error('startAutoClean: a loop is already running on this store; abort it first');
    }
    this.#loopRunning = true;
    try {
      await runEvery(signal, intervalMs, () => this.#tick(signal), this.#config.onError);
    } finally {
      this.#loopRunning = false;
    }
  }
}
