/**
 * A database that accepts connections and never answers: `init()` is
 * bounded by `timeoutMs` like every other call (it used to wait the
 * driver's 30 s on MongoDB, and for ever on PostgreSQL).
 */
import { createServer, type Server, type Socket } from 'node:net';
import { MongoClient } from 'mongodb';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { MongoStore, SessionStoreError } from '../../src/index.ts';
import { PostgresSessionStore } from '../../src/postgres/index.ts';
import { randomKey } from '../support/http.ts';

let server: Server;
let port = 0;
const sockets = new Set<Socket>();
beforeAll(async () => {
  server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as { port: number }).port;
});
afterAll(async () => {
  for (const socket of sockets) socket.destroy();
  await new Promise((resolve) => server.close(resolve));
});

const keyPairs = [{ authentication: randomKey() }];

async function rejectsWithin(init: Promise<void>, ms: number): Promise<number> {
  const started = performance.now();
  const error = await init.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(SessionStoreError);
  expect((error as SessionStoreError).message).toMatch(/did not answer within 300 ms/);
  const elapsed = performance.now() - started;
  expect(elapsed).toBeLessThan(ms);
  return elapsed;
}

it('MongoStore: init() rejects after timeoutMs, not after the driver\'s 30 s', async () => {
  const client = new MongoClient(`mongodb://127.0.0.1:${port}/?directConnection=true`);
  try {
    await rejectsWithin(new MongoStore(client.db('x'), { keyPairs, timeoutMs: 300 }).init(), 10_000);
  } finally {
    await client.close(true);
  }
});

it('PostgresSessionStore: init() rejects after timeoutMs', async () => {
  const pool = new pg.Pool({ connectionString: `postgres://user@127.0.0.1:${port}/x` });
  pool.on('error', () => {});
  try {
    await rejectsWithin(new PostgresSessionStore(pool, { keyPairs, timeoutMs: 300 }).init(), 10_000);
  } finally {
    for (const socket of sockets) socket.destroy();
    await pool.end().catch(() => {});
  }
});
