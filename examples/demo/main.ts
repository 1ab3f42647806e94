/**
 * `npm start`: the demo app on @hono/node-server.
 *
 * Environment: MONGODB_URI (else the same embedded server as the tests),
 * MONGOSTORE_KEYS (see keys.ts), MONGOSTORE_DB (default 'mongostore_demo'),
 * PORT (default 3000; 0 picks a free one), HOST (default 127.0.0.1).
 * The demo's users get new random passwords at every start, printed here
 * (alice is the admin); the app keeps only their scrypt hashes (users.ts).
 * SIGINT and SIGTERM shut down gracefully: stop accepting requests, stop the
 * cleanup loop, close the client, stop an embedded server.
 */
import { serve } from '@hono/node-server';
import { MongoClient } from 'mongodb';
import { MongoStore } from '../../src/index.ts';
import { resolveMongoServer } from '../../servers/mongo.ts';
import { createApp, type DemoValues } from './app.ts';
import { prometheusMetrics } from './telemetry.ts';
import { keyPairsFromEnvironment } from './keys.ts';
import { DemoUsers, newDemoAccounts } from './users.ts';

const keyPairs = keyPairsFromEnvironment(process.env.MONGOSTORE_KEYS, (message) => console.warn(message));
const mongo = await resolveMongoServer();
console.log(`MongoDB server: ${mongo.description}`);
const client = new MongoClient(mongo.uri);
const metrics = prometheusMetrics();
const db = client.db(process.env.MONGOSTORE_DB ?? 'mongostore_demo');
// At most three devices per user: a fourth sign-in signs out the least recently used one,
// or, for a user who chose so on the devices page, is refused (app.ts, DemoLimit).
const maxSessionsPerUser = 3;
const config = { keyPairs, telemetry: { meterProvider: metrics.meterProvider }, maxSessionsPerUser };
const store = new MongoStore<DemoValues>(db, config);
const refusing = new MongoStore<DemoValues>(db, { ...config, onSessionLimit: 'refuse' });
console.log(`Key pair ids (first seals): ${store.keyPairIds.join(', ')}`);
await store.init();

const accounts = newDemoAccounts();
const users = await DemoUsers.create(accounts);
console.log('Demo users (new passwords at every start; the app keeps only their scrypt hashes):');
for (const { name, password, admin } of accounts) {
  console.log(`  ${name.padEnd(6)} password: ${password}${admin ? '  (admin: may see /admin/sessions)' : ''}`);
}

const shutdown = new AbortController();
const cleaning = store.startAutoClean(shutdown.signal, 60_000);
const server = serve(
  { fetch: createApp(store, metrics, users, { max: maxSessionsPerUser, refusing }).fetch, port: Number(process.env.PORT ?? 3000), hostname: process.env.HOST ?? '127.0.0.1' },
  (info) => console.log(`Listening on http://localhost:${info.port}`),
);

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    console.log(`${signal}: shutting down`);
    shutdown.abort();
  });
}
shutdown.signal.addEventListener('abort', () => {
  server.close();
  void cleaning
    .then(() => metrics.shutdown())
    .then(() => client.close())
    .then(() => mongo.stop())
    .then(() => console.log('Stopped.'));
});
