/**
 * TokenStore: the token store contract of Go's scs (Find / Commit / Delete /
 * All, their context-aware variants, and a stoppable background cleanup) on
 * any SessionBackend. MongoDBStore (MongoDB) and PostgresStore (PostgreSQL)
 * are this class over their backends.
 */
import { type SessionBackend } from './backend.ts';
import { defaultTimeoutMs } from './operations.ts';
import {
  checkBatchSize,
  checkErrorHandler,
  checkMillisecondsOrZero,
  defaultCleanupBatchSize,
  expiredCleanup,
  runEvery,
} from './cleanup.ts';
import { SessionOptionsError } from './errors.ts';
import { checkKnownKeys } from './options.ts';
import { instrumentBackend } from './instrumented-backend.ts';
import { Telemetry, type TelemetryOptions } from './telemetry.ts';

/** Configuration of a {@link TokenStore}, whatever the backend; everything is optional. */
export interface TokenStoreConfig {
  /** Milliseconds between background deletions of expired tokens. Default 60,000; 0 disables. */
  cleanupInterval?: number | undefined;
  /**
   * Store SHA-256(token) as the key instead of the token (scs's
   * HashTokenInStore), so a database leak does not leak usable tokens.
   * `all()` is then refused. The backend must be built with the same setting.
   * Default false.
   */
  hashTokens?: boolean | undefined;
  /**
   * Longest wait, in milliseconds, for each batch of a cleanup tick; a
   * batch past it ends the tick, reported to `onError` as SessionStoreError
   * (cause: a TimeoutError), and the cleanup goes on, so a command lost on a
   * dead connection cannot stop it for good. `stopCleanup()` waits for the
   * batch in progress, so at most this long. Default 10,000; 0 waits as
   * long as the driver does; at most 2,147,483,647.
   */
  cleanupTimeout?: number | undefined;
  /**
   * OpenTelemetry traces and `db.client.operation.duration` of every call
   * (docs/metrics.md); `activeSessionsInterval` does not apply.
   * By default the global providers of `@opentelemetry/api` when it is
   * installed; `false` turns it off.
   */
  telemetry?: TelemetryOptions | false | undefined;
  /** Most expired tokens one cleanup statement deletes (a tick runs batches until one is short). Default 1,000. */
  cleanupBatchSize?: number | undefined;
  /**
   * Receives each failed cleanup tick. Default: `console.error`. What it
   * throws, or the promise it returns rejects with, is ignored: the cleanup
   * goes on.
   */
  onError?: ((error: unknown) => void) | undefined;
}

/** The optional last argument of every method (scs's CtxStore). */
export interface CallOptions {
  /**
   * Abandons the call: it rejects with `signal.reason` when that is an Error
   * (by default a DOMException named `AbortError`), else with such an
   * AbortError; at once when
   * the signal is already aborted, before any command is sent. A write
   * already sent is not cancelled: it completes or not atomically on the
   * server, possibly after the rejection.
   */
  signal?: AbortSignal | undefined;
}

/** Longest token accepted, in characters. */
export const maxTokenLength = 1024;
const defaultCleanupInterval = 60_000;
const tokenStoreConfigKeys = ['cleanupInterval', 'hashTokens', 'cleanupTimeout', 'telemetry', 'cleanupBatchSize', 'onError'];

/**
 * Opaque tokens mapped to bytes with an expiry. Expired tokens are never
 * returned, even before cleanup removes them. Every method sends one
 * database command; the backend's schema is created before the first.
 *
 * Invalid arguments reject with a TypeError before any command is sent;
 * database failures reject with SessionStoreError (cause: the driver's error).
 */
export class TokenStore {
  readonly #tokens: SessionBackend;
  readonly #hashTokens: boolean;
  readonly #cleanup = new AbortController();
  readonly #cleanupLoop: Promise<void>;

  /**
   * @throws SessionOptionsError for a cleanupInterval or cleanupTimeout that
   * is neither 0 nor from 1 to 2,147,483,647, a cleanupBatchSize that is not
   * a whole number from 1 to 100,000, an onError that is not a function, or
   * an unknown option (a typo would otherwise silently switch a setting off).
   * @param backendKeys configuration keys the backend's store class adds (e.g. `collection`).
   */
  constructor(backend: SessionBackend, config: TokenStoreConfig = {}, backendKeys: readonly string[] = []) {
    checkKnownKeys(config, [...tokenStoreConfigKeys, ...backendKeys], 'token store configuration');
    const interval = checkMillisecondsOrZero(config.cleanupInterval ?? defaultCleanupInterval, 'cleanupInterval');
    const timeout = checkMillisecondsOrZero(config.cleanupTimeout ?? defaultTimeoutMs, 'cleanupTimeout');
    const batchSize = checkBatchSize(config.cleanupBatchSize ?? defaultCleanupBatchSize, 'cleanupBatchSize');
    this.#hashTokens = config.hashTokens ?? false;
    this.#tokens = instrumentBackend(backend, Telemetry.create(config.telemetry, backend.database));
    const onError = checkErrorHandler(config.onError) ?? ((error) => console.error('mongostore: token cleanup failed:', error));
    const tick = expiredCleanup(this.#tokens, batchSize, timeout);
    this.#cleanupLoop =
      interval === 0
        ? Promise.resolve()
        : runEvery(this.#cleanup.signal, interval, () => tick(this.#cleanup.signal), onError);
  }

  /** Creates the backend's schema now rather than before the first command. */
  init(): Promise<void> {
    return this.#tokens.ensureSchema();
  }

  /** The token's data, or undefined when it is missing or expired (scs `Find`/`FindCtx`). */
  async find(token: string, options?: CallOptions): Promise<Uint8Array | undefined> {
    checkToken(token);
    return this.#tokens.findData(token, options?.signal);
  }

  /**
   * Inserts the token, or replaces its data and expiry; an expired token
   * becomes live again (scs `Commit`/`CommitCtx`). `data` is stored as BSON
   * binary and read back byte for byte.
   * @throws TypeError for a bad token, data that is not a Uint8Array (a
   * Buffer is one), or an expiry that is not a valid Date.
   */
  async commit(token: string, data: Uint8Array, expiry: Date, options?: CallOptions): Promise<void> {
    checkToken(token);
    if (!(data instanceof Uint8Array)) throw new TypeError('data must be a Uint8Array or Buffer');
    if (!(expiry instanceof Date) || Number.isNaN(expiry.getTime())) {
      throw new TypeError('expiry must be a valid Date');
    }
    await this.#tokens.upsert(token, data, expiry, options?.signal);
  }

  /** Deletes the token; no error when it is missing (scs `Delete`/`DeleteCtx`). */
  async delete(token: string, options?: CallOptions): Promise<void> {
    checkToken(token);
    await this.#tokens.delete(token, options?.signal);
  }

  /**
   * Every live token with its data (scs `All`/`AllCtx`).
   * @throws SessionOptionsError (rejects) when `hashTokens` is on: the
   * database holds only hashes, which are not the tokens.
   */
  async all(options?: CallOptions): Promise<Map<string, Uint8Array>> {
    if (this.#hashTokens) {
      throw new SessionOptionsError('all() is unavailable with hashTokens: only SHA-256 hashes of the tokens are stored');
    }
    return this.#tokens.findAll(options?.signal);
  }

  /**
   * Stops the background cleanup (scs `StopCleanup`). Idempotent, and fine
   * when cleanup never ran. Resolves once the batch in progress has
   * finished or been given up (after `cleanupTimeout`; with 0, whenever the
   * database answers); no batch starts after the call (one given up may
   * still reach the database later, and deletes only what is expired then).
   */
  stopCleanup(): Promise<void> {
    this.#cleanup.abort();
    return this.#cleanupLoop;
  }
}

function checkToken(token: unknown): asserts token is string {
  if (typeof token !== 'string' || token.length === 0 || token.length > maxTokenLength) {
    throw new TypeError(`token must be a non-empty string of at most ${maxTokenLength} characters`);
  }
}
