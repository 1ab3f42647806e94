/**
 * One contender's HTTP server, in a process of its own so that its CPU time
 * (process.cpuUsage) and database commands (driver command monitoring) are
 * its alone. Usage: server.ts CONTENDER MONGODB_URI DATABASE [PG_URI]
 * Prints "ready PORT". GET /__bench/reset starts a measurement window and
 * GET /__bench/stats reads it; both are answered before any app code runs.
 */
import { createServer } from 'node:http';
import { getRequestListener } from '@hono/node-server';
import { MongoClient } from 'mongodb';
import pg from 'pg';
import { CommandLog, recordQueries } from '../test/support/commands.ts';
import { contenders } from './contenders.ts';

const [name = '', uri = '', database = '', pgUri = ''] = process.argv.slice(2);
const contender = contenders[name];
if (!contender) throw new Error(`unknown contender ${name}`);

const client = new MongoClient(uri, { monitorCommands: true });
const commands = new CommandLog();
client.on('commandStarted', (event) => commands.record(event));
await client.connect();
let pool: pg.Pool | undefined;
if (contender.usesPostgres) {
  // A schema of its own per run, like the MongoDB database name.
  const admin = new pg.Client({ connectionString: pgUri });
  await admin.connect();
  await admin.query(`CREATE SCHEMA IF NOT EXISTS ${database}`);
  await admin.end();
  pool = new pg.Pool({ connectionString: pgUri, options: `-c search_path=${database}`, max: 32 });
  recordQueries(pool, (statement) => commands.add(statement));
}
const handler = await contender.build({ client, db: client.db(database), pool });
const app = handler.kind === 'fetch' ? getRequestListener(handler.fetch) : handler.listener;

// A library that throws outside a request (e.g. on a database error) must
// not take the server down mid-measurement; the failed requests are counted
// by the load generator.
let crashes = 0;
const survive = (error: unknown) => {
  if (crashes++ === 0) console.error(`${name}: uncaught error (further ones not shown):`, error);
};
process.on('uncaughtException', survive);
process.on('unhandledRejection', survive);

let window = process.cpuUsage();
const server = createServer((req, res) => {
  if (req.url === '/__bench/reset') {
    commands.reset();
    window = process.cpuUsage();
    res.end('ok');
  } else if (req.url === '/__bench/stats') {
    const cpu = process.cpuUsage(window);
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ cpuMicros: cpu.user + cpu.system, commands: commands.names() }));
  } else {
    void app(req, res);
  }
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  console.log(`ready ${typeof address === 'object' && address ? address.port : 0}`);
});
process.once('SIGTERM', () => {
  server.close();
  server.closeAllConnections();
  void client.close().then(() => process.exit(0));
});
