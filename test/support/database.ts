/**
 * A per-file database on the run's shared server, with the driver's command
 * monitoring switched on so tests can count the exact commands a call sends.
 */
import { randomBytes } from 'node:crypto';
import { type Db, MongoClient } from 'mongodb';
import { inject } from 'vitest';
import { CommandLog } from './commands.ts';

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
