/**
 * The demo app's entry point. For now it resolves the same MongoDB-compatible
 * server as the tests, proves the connection, prints which server it used and
 * exits; the full demo comes with the Hono integration.
 */
import { MongoClient } from 'mongodb';
import { resolveMongoServer } from '../../test/mongo-server.ts';

const server = await resolveMongoServer();
const client = new MongoClient(server.uri);
try {
  const { ok } = await client.db('admin').command({ ping: 1 });
  console.log(`MongoDB server: ${server.description} (ping ok=${ok})`);
} finally {
  await client.close();
  await server.stop();
}
