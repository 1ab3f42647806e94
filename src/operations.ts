/**
 * How a store runs its database calls, whatever the database: within a
 * time bound, after the schema is ready, with driver errors as
 * SessionStoreError, and stopped by an abort signal.
 */
import { SessionStoreError } from './errors.ts';

/** How long a store waits for one database call unless configured otherwise, in milliseconds. */
export const defaultTimeoutMs = 10_000;

/**
 * Runs `call` with a signal that aborts after `timeoutMs` (0: no bound and no
 * signal). A call that gives up on that signal rejects with
 * SessionStoreError naming the operation, its cause the TimeoutError.
 */
export async function withTimeout<T>(
  operation: string,
  timeoutMs: number,
  call: (signal: AbortSignal | undefined) => Promise<T>,
): Promise<T> {
  if (timeoutMs === 0) return call(undefined);
  // A timer cleared when the call settles, rather than AbortSignal.timeout,
  // whose signal the runtime tracks until it is collected: on the hot path
  // that costs more than the rest of a cached read.
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new DOMException('The operation timed out.', 'TimeoutError')), timeoutMs);
  timer.unref?.();
  const { signal } = controller;
  try {
    return await call(signal);
  } catch (error) {
    if (signal.aborted && error === signal.reason) {
      throw new SessionStoreError(`${operation}: the database did not answer within ${timeoutMs} ms`, { cause: error });
    }
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

/** Runs database calls within `timeoutMs` (see {@link withTimeout}). */
export function boundedBy(timeoutMs: number) {
  return <T>(operation: string, call: (signal: AbortSignal | undefined) => Promise<T>): Promise<T> =>
    withTimeout(operation, timeoutMs, call);
}

/**
 * Runs one database operation once `ready` has resolved; driver errors
 * become SessionStoreError (cause kept). With a signal: rejects with the
 * signal's reason when that is an Error (by default a DOMException named
 * AbortError), else with such an AbortError, if it is or becomes aborted. An
 * abandoned operation is not cancelled on the server: a single-record write
 * still completes or not, atomically, possibly after the rejection.
 */
export async function runOperation<T>(
  operation: string,
  signal: AbortSignal | undefined,
  ready: () => Promise<void>,
  action: () => Promise<T>,
): Promise<T> {
  if (signal?.aborted) throw abortError(signal);
  const work = ready()
    .then(action)
    .catch((error: unknown) => {
      if (error instanceof SessionStoreError) throw error;
      throw new SessionStoreError(`${operation} failed: ${errorMessage(error)}`, { cause: error });
    });
  if (signal === undefined) return work;
  work.catch(() => {}); // the caller may stop waiting; never leave it unhandled
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortError(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** Memoizes a one-time setup; a failed attempt is forgotten so the next call retries. */
export function once(setup: () => Promise<void>): () => Promise<void> {
  let pending: Promise<void> | undefined;
  return () => {
    pending ??= setup().catch((error: unknown) => {
      pending = undefined;
      throw error;
    });
    return pending;
  };
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function abortError(signal: AbortSignal): Error {
  return signal.reason instanceof Error
    ? signal.reason
    : new DOMException('This operation was aborted', 'AbortError');
}
