/**
 * At most N live sessions per owner (store options `maxSessionsPerUser`
 * and `onSessionLimit`). Only a sign-in can take an owner past the limit:
 * a save that gives a session an owner it did not have (a new session
 * saved with one, or an owner change). So only such a save pays for it,
 * every other save sends what it sent before:
 * - `'evict-oldest'`: after the sign-in's write, the owner is trimmed to
 *   its N most recently written sessions (one more command; on MongoDB a
 *   second when something goes; more when parallel sign-ins meet).
 * - `'refuse'`: before the write, a count; at the limit already, the save
 *   writes nothing and resolves `'limited'`. After the write the same trim
 *   keeps the limit when sign-ins race past the count: a sign-in whose own
 *   session would make more than N withdraws it (and resolves `'limited'`).
 *
 * Under parallel sign-ins the trims converge without a lock: see
 * `SessionBackend.limitOwnedBy` for why no excess outlives the saves that
 * caused it.
 */
import type { SessionBackend, SessionLimit } from './backend.ts';
import { reportSafely } from './cleanup.ts';
import { SessionStoreError } from './errors.ts';
import { errorMessage } from './operations.ts';
import type { Owner } from './owner.ts';
import type { Telemetry } from './telemetry.ts';

/** What the limit depends on; fixed for the life of a store. */
export interface LimitConfig {
  /** Undefined: no limit. */
  limit: SessionLimit | undefined;
  backend: SessionBackend;
  telemetry: Telemetry;
  /** Receives a check that failed after its sign-in's write (the store option `onError`). */
  onError: (error: unknown) => void;
  withTimeout<T>(operation: string, call: (signal: AbortSignal | undefined) => Promise<T>): Promise<T>;
}

/** An owner that has both parts: the only kind a limit counts. */
type SignedIn = { user: string; provider: string };

/** A store's session limit. */
export class OwnerLimit {
  readonly #config: LimitConfig;

  constructor(config: LimitConfig) {
    this.#config = config;
  }

  /**
   * The owner a save signs in, when the limit applies to it: a limit is
   * set, and the save gives the session this owner, which it did not have.
   * @param gained the save gives the session its owner: a new session with one, or an owner change.
   */
  signsIn(owner: Owner, gained: boolean): SignedIn | undefined {
    if (this.#config.limit === undefined || !gained || owner.user === undefined || owner.provider === undefined) return undefined;
    return { user: owner.user, provider: owner.provider };
  }

  /**
   * Before a sign-in's write: whether `'refuse'` refuses it, the owner
   * having its limit of live sessions already (one command; none with
   * `'evict-oldest'`). A refusal is counted.
   */
  async refuses(owner: SignedIn): Promise<boolean> {
    const { limit, backend, telemetry } = this.#config;
    if (limit?.policy !== 'refuse') return false;
    const live = await this.#config.withTimeout('countOwnedBy', (signal) => backend.countOwnedBy(owner.user, owner.provider, signal));
    if (live < limit.max) return false;
    telemetry.signInRefused();
    return true;
  }

  /**
   * After the sign-in's write that gave session `id` to `owner`: holds the
   * owner to the limit. Evictions count as revocations (reason
   * `session_limit`), a withdrawn sign-in as a refusal.
   *
   * A check that fails (the database, right after the write) goes to
   * `onError` and the sign-in stands: its write is done, so the save does
   * not reject (a save that rejects has written nothing), and the owner's
   * next sign-in trims again.
   * @returns whether session `id` stands (false: it went with the excess).
   */
  async stands(owner: SignedIn, id: string): Promise<boolean> {
    const { limit, backend, telemetry } = this.#config;
    if (limit === undefined) return true;
    try {
      const result = await this.#config.withTimeout('limitOwnedBy', (signal) =>
        backend.limitOwnedBy(owner.user, owner.provider, id, limit, signal),
      );
      if (limit.policy === 'evict-oldest') {
        telemetry.sessionsRevoked('session_limit', result.ended);
        return !result.ownEnded;
      }
      if (!result.ownEnded) return true;
      telemetry.signInRefused();
      return false;
    } catch (error) {
      reportSafely(
        this.#config.onError,
        // Not the user's name: it may be an e-mail address, and this goes to a log.
        new SessionStoreError(`save: a sign-in stands unchecked against maxSessionsPerUser: ${errorMessage(error)}`, { cause: error }),
      );
      return true;
    }
  }
}
