/**
 * Counting the commands a client sends: MongoDB commands from the driver's
 * command monitoring (`monitorCommands: true`), SQL statements from a
 * recorded `pg` pool. Shared by the tests and the benchmarks.
 */
import type { CommandStartedEvent } from 'mongodb';
import type { Pool } from 'pg';

/** Commands the MongoDB driver sends on its own (handshakes, heartbeats, sessions). */
const driverHousekeeping = new Set([
  'hello',
  'ismaster',
  'isMaster',
  'ping',
  'saslStart',
  'saslContinue',
  'endSessions',
  'killCursors',
]);

/** The commands sent since the last reset, in order, without driver housekeeping. */
export class CommandLog {
  readonly #names: string[] = [];

  /** A `commandStarted` event of the MongoDB driver. */
  record(event: CommandStartedEvent): void {
    if (!driverHousekeeping.has(event.commandName)) this.#names.push(event.commandName);
  }

  /** A command from another source, e.g. a SQL statement's first keyword. */
  add(name: string): void {
    this.#names.push(name);
  }

  /** Names of the commands seen since the last reset, e.g. ['find', 'update']. */
  names(): string[] {
    return [...this.#names];
  }

  reset(): void {
    this.#names.length = 0;
  }

  /** Runs `action` and returns the names of the commands it sent. */
  async during(action: () => Promise<unknown>): Promise<string[]> {
    this.reset();
    await action();
    return this.names();
  }
}

/**
 * Reports every query the pool runs as its first SQL keyword, upper-cased
 * ('SELECT', 'INSERT', ...). `pg` has no query events, so this wraps `query`.
 */
export function recordQueries(pool: Pool, onQuery: (statement: string) => void): void {
  const query = pool.query.bind(pool) as (...args: unknown[]) => unknown;
  pool.query = ((...args: unknown[]) => {
    const text = typeof args[0] === 'string' ? args[0] : '';
    onQuery(text.trimStart().split(/\s/, 1)[0]?.toUpperCase() ?? '');
    return query(...args);
  }) as typeof pool.query;
}
