/**
 * reconnectWhenMonitorHangs: the remedy for the driver's hung polling
 * monitor (pinned in test/server.test.ts), through the same loopback proxy.
 */
import { MongoClient } from 'mongodb';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { MongoStore, reconnectWhenMonitorHangs } from '../../src/index.ts';
import { openTestDatabase, type TestDatabase } from '../support/database.ts';
import { onlyCookie, randomKey, requestWith } from '../support/http.ts';
import { monitorProxy } from '../support/monitor-proxy.ts';

let t: TestDatabase;
beforeAll(async () => {
  t = await openTestDatabase();
});
afterAll(() => t.close());

/** The hang happens on Node only (test/server.test.ts). */
const onNode = typeof process.versions.bun !== 'string' && !('Deno' in globalThis);

it('reconnects a client whose monitor hung (Node), and the store built on it works again; where it does not hang (Bun, Deno), it does not reconnect', async () => {
  const proxy = await monitorProxy(t.uri);
  const client = new MongoClient(proxy.uri, { serverMonitoringMode: 'poll', serverSelectionTimeoutMS: 500, connectTimeoutMS: 500 });
  const reconnects: unknown[] = [];
  const unwatch = reconnectWhenMonitorHangs(client, { onReconnect: (error) => reconnects.push(error) });
  try {
    const store = new MongoStore<{ n: number }>(client.db(t.db.databaseName), { keyPairs: [{ authentication: randomKey() }], cleanupInterval: 0 });
    const req = requestWith();
    const session = await store.get(req, 'sid');
    session.values.n = 1;
    const headers = new Headers();
    await store.save(req, headers, session);
    const cookie = onlyCookie(headers).value;
    await new Promise((resolve) => setTimeout(resolve, 600)); // a requested check runs at once

    proxy.closeOnNextOperation();
    // On Node the monitor hangs: without the watch, every read would fail
    // from here on (test/server.test.ts); on Bun and Deno the read is retried.
    const failed = await store.get(requestWith({ sid: cookie }), 'sid').then(
      () => false,
      () => true,
    );
    expect(failed).toBe(onNode);
    const started = performance.now();
    let loaded;
    for (;;) {
      loaded = await store.get(requestWith({ sid: cookie }), 'sid').catch(() => undefined);
      if (loaded !== undefined || performance.now() - started > 10_000) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(loaded?.values).toEqual({ n: 1 });
    expect(reconnects).toEqual(onNode ? [undefined] : []); // on Node one reconnect, which succeeded
  } finally {
    unwatch();
    await client.close();
    await proxy.close();
  }
});

it('never reconnects a client whose checks end', async () => {
  const client = new MongoClient(t.uri, { heartbeatFrequencyMS: 500 });
  const reconnects: unknown[] = [];
  const unwatch = reconnectWhenMonitorHangs(client, { stuckAfterMs: 300, onReconnect: (error) => reconnects.push(error) });
  try {
    for (const until = performance.now() + 1500; performance.now() < until; ) {
      await client.db(t.db.databaseName).command({ ping: 1 });
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(reconnects).toEqual([]);
  } finally {
    unwatch();
    await client.close();
  }
});

it('times polled checks per server, and never a streaming (awaited) one', async () => {
  const client = new MongoClient('mongodb://127.0.0.1:9/', { serverSelectionTimeoutMS: 100 });
  const reconnects: unknown[] = [];
  const unwatch = reconnectWhenMonitorHangs(client, { stuckAfterMs: 200, onReconnect: (error) => reconnects.push(error) });
  try {
    // A streaming check waits for news up to heartbeatFrequencyMS by design.
    client.emit('serverHeartbeatStarted', { connectionId: 'a:27017', awaited: true });
    await new Promise((resolve) => setTimeout(resolve, 700));
    expect(reconnects).toEqual([]);
    // A polled check of server a that never ends, while server b's checks do.
    client.emit('serverHeartbeatStarted', { connectionId: 'a:27017', awaited: false });
    for (let i = 0; i < 4; i++) {
      client.emit('serverHeartbeatStarted', { connectionId: 'b:27017', awaited: false });
      client.emit('serverHeartbeatSucceeded', { connectionId: 'b:27017', awaited: false } as never);
      await new Promise((resolve) => setTimeout(resolve, 150));
    }
    await vi.waitFor(() => expect(reconnects.length).toBe(1), { timeout: 3000 });
  } finally {
    unwatch();
    await client.close();
  }
});

it('refuses a stuckAfterMs that is not a positive number', () => {
  const client = new MongoClient('mongodb://127.0.0.1:9/');
  for (const stuckAfterMs of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
    expect(() => reconnectWhenMonitorHangs(client, { stuckAfterMs })).toThrow(TypeError);
  }
});
