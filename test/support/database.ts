/**
 * A per-file database on the run's shared server, with the driver's command
 * monitoring switched on so tests can count the exact commands a call sends.
 */
import { randomBytes } from 'node:crypto';
import { type CommandStartedEvent, type Db, MongoClient } from 'mongodb';
import { inject } from 'vitest';

/** Commands the driver sends on its own (handshakes, heartbeats, sessions). */
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

export interface TestDatabase {
  client: MongoClient;
  db: Db;
  commands: CommandLog;
  uri: string;
  close(): Promise<void>;
}

/** Connects to the run's server and picks a fresh database name. */
export async function openTestDatabase(): Promise<TestDatabase> {
  const uri = inject('mongoUri');
  const client = new MongoClient(uri, { monitorCommands: true });
  const commands = new CommandLog();
  client.on('commandStarted', (event) => commands.record(event));
  await client.connect();
  const db = client.db(`t_${randomBytes(6).toString('hex')}`);
  return {
    client,
    db,
    commands,
    uri,
    close: async () => {
      await db.dropDatabase().catch(() => {});
      await client.close();
    },
  };
}

/** True when the server is FerretDB, which reports itself in buildInfo. */
export async function isFerretDB(db: Db): Promise<boolean> {
  const info = await db.admin().command({ buildInfo: 1 });
  return 'ferretdbVersion' in info;
}
