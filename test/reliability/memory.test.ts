/**
 * 100,000 requests through get/save with distinct Request objects: the
 * per-request registry and the unseal cache stay bounded. Needs --expose-gc
 * (vitest.config.ts passes it to the workers).
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { MongoStore } from '../../src/index.ts';
import { openTestDatabase, type TestDatabase } from '../support/database.ts';
import { onlyCookie, randomKey, requestWith } from '../support/http.ts';

let t: TestDatabase;
beforeAll(async () => {
  t = await openTestDatabase();
});
afterAll(async () => {
  await t.close();
});

function collect(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with --expose-gc');
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

it('keeps the registry and the unseal cache bounded over 100,000 requests', async () => {
  const store = new MongoStore<{ n: number }>(t.db, { keyPairs: [{ authentication: randomKey() }], unsealCacheSize: 100 });
  await store.init();
  // 400 live sessions: four times the cache, so it must evict.
  const pool: string[] = [];
  for (let i = 0; i < 400; i += 50) {
    pool.push(
      ...(await Promise.all(
        Array.from({ length: 50 }, async () => {
          const req = requestWith();
          const session = await store.get(req, 'sid');
          session.values.n = 1;
          const headers = new Headers();
          await store.save(req, headers, session);
          return onlyCookie(headers).value;
        }),
      )),
    );
  }

  // Most requests carry no cookie or a hostile one (no database command);
  // every 100th carries a live session's cookie (one find, unchanged save).
  const run = async (from: number, to: number) => {
    for (let i = from; i < to; i += 100) {
      await Promise.all(
        Array.from({ length: 100 }, async (_, j) => {
          const n = i + j;
          const cookies: Record<string, string> =
            n % 100 === 0 ? { sid: pool[(n / 100) % pool.length] ?? '' } : n % 2 === 0 ? { sid: randomBytes(60).toString('base64url') } : {};
          const req = requestWith(cookies);
          const session = await store.get(req, 'sid');
          if (!session.isNew) await store.save(req, new Headers(), session);
        }),
      );
    }
  };
  await run(0, 10_000); // warm up
  const before = collect();
  await run(10_000, 100_000);
  const after = collect();

  // A request the registry has seen is collected once nothing else holds it.
  const ref = await (async () => {
    const request = requestWith();
    await store.get(request, 'sid');
    return new WeakRef(request);
  })();
  await new Promise((resolve) => setImmediate(resolve));
  collect();

  const growthMb = (after - before) / 1024 / 1024;
  console.log(`memory: 100000 requests, heap ${(before / 1048576).toFixed(1)} MB -> ${(after / 1048576).toFixed(1)} MB (${growthMb.toFixed(2)} MB)`);
  expect(growthMb).toBeLessThan(16);
  expect(ref.deref()).toBeUndefined();
}, 300_000);
