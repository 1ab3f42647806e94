/**
 * Counting the commands a client sends, from the driver's command monitoring
 * (`monitorCommands: true`). Shared by the tests and the benchmarks.
 */
import type { CommandStartedEvent } from 'mongodb';

/** Commands the driver sends on its own (handshakes, heartbeats, sessions). */
export const driverHousekeeping = new Set([
  'hello',
  'ismaster',
  'isMaster',
  'ping',
  'saslStart',
  'saslContinue',
  'endSessions',
  'killCursors',
]);

/** The commands a test's calls sent, in order, without driver housekeeping. */
export class CommandLog {
  readonly events: CommandStartedEvent[] = [];

  record(event: CommandStartedEvent): void {
    if (!driverHousekeeping.has(event.commandName)) this.events.push(event);
  }

  /** Names of the commands seen since the last reset, e.g. ['find', 'update']. */
  names(): string[] {
    return this.events.map((event) => event.commandName);
  }

  reset(): void {
    this.events.length = 0;
  }

  /** Runs `action` and returns the names of the commands it sent. */
  async during(action: () => Promise<unknown>): Promise<string[]> {
    this.reset();
    await action();
    return this.names();
  }
}
