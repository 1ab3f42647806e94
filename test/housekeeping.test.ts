/**
 * The store's own housekeeping on both backends: by default, a store that
 * writes deletes one bounded batch of expired sessions at most once per
 * `cleanupInterval`, in the background; an idle one sends nothing.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Housekeeping } from '../src/housekeeping.ts';
import { SessionOptionsError, type SessionStoreConfig } from '../src/index.ts';
import type { SessionStore } from '../src/session-store.ts';
import { type Backend, backends } from './support/backends.ts';
import { randomKey, requestWith } from './support/http.ts';

const keyPairs = [{ authentication: randomKey() }];

/** A new session holding one value: one insert. */
async function saveOne(store: SessionStore<{ n: number }>): Promise<void> {
  const req = requestWith();
  const session = await store.get(req, 'sid');
  session.values.n = 1;
  expect(await store.save(req, new Headers(), session)).toBe('created');
}

describe.each(backends)('housekeeping on $name', (backend: Backend) => {
  beforeAll(() => backend.open());
  afterAll(() => backend.close());

  const makeStore = (config: Partial<SessionStoreConfig>) => backend.sessionStore<{ n: number }>({ keyPairs, ...config });

  it('by default, the first write starts a batch that deletes the expired sessions, in the background', async () => {
    // cleanupInterval undefined: the default (the test helper turns it off otherwise).
    const { store, raw } = await makeStore({ cleanupInterval: undefined });
    for (let i = 0; i < 3; i++) await raw.insertExpired(`expired-${i}`);
    await saveOne(store);
    await vi.waitFor(async () => expect(await raw.count()).toBe(1), { timeout: 5000, interval: 50 });
    expect(await raw.countLive()).toBe(1);
  });

  it('one batch of at most cleanupBatchSize per interval: a write within the interval sends only its own command', async () => {
    const { store, raw } = await makeStore({ cleanupInterval: 60_000, cleanupBatchSize: 2 });
    for (let i = 0; i < 5; i++) await raw.insertExpired(`expired-${i}`);
    await saveOne(store);
    await vi.waitFor(async () => expect(await raw.count()).toBe(1 + 3), { timeout: 5000, interval: 50 });
    expect(await backend.during(() => saveOne(store))).toEqual(['insert']);
    await sleep(200);
    expect(await raw.count()).toBe(2 + 3);
  });

  it('the first write after the interval has passed starts the next batch', async () => {
    const { store, raw } = await makeStore({ cleanupInterval: 300 });
    await saveOne(store);
    await raw.insertExpired('expired-later');
    await sleep(400);
    await saveOne(store);
    await vi.waitFor(async () => expect(await raw.count()).toBe(2), { timeout: 5000, interval: 50 });
  });

  it('an idle store sends nothing (no timer), and cleanupInterval: 0 turns the batches off', async () => {
    const idle = await makeStore({ cleanupInterval: 50 });
    await idle.raw.insertExpired('expired');
    expect(await backend.during(() => sleep(300))).toEqual([]);
    expect(await idle.raw.count()).toBe(1);

    const off = await makeStore({ cleanupInterval: 0 });
    await off.raw.insertExpired('expired');
    expect(await backend.during(() => saveOne(off.store).then(() => sleep(300)))).toEqual(['insert']);
    expect(await off.raw.count()).toBe(2);
  });

  it('pauses while a startAutoClean loop runs', async () => {
    const { store, raw } = await makeStore({ cleanupInterval: 50 });
    await raw.insertExpired('expired');
    const stop = new AbortController();
    const loop = store.startAutoClean(stop.signal, 3_600_000);
    expect(await backend.during(() => saveOne(store).then(() => sleep(200)))).toEqual(['insert']);
    stop.abort();
    await loop;
    expect(await raw.count()).toBe(2);
  });

  it('refuses a cleanupInterval that is not 0 or 1 to 2,147,483,647 milliseconds', async () => {
    for (const cleanupInterval of [-1, 2 ** 31, Number.NaN, '60000' as unknown as number]) {
      await expect(makeStore({ cleanupInterval })).rejects.toBeInstanceOf(SessionOptionsError);
    }
  });
});

describe('Housekeeping, on its own', () => {
  const config = (deleteExpired: (limit: number) => Promise<number>, timeoutMs: number, intervalMs: number, errors: unknown[] = []) =>
    new Housekeeping({ backend: { deleteExpired }, batchSize: 10, timeoutMs, intervalMs, onError: (e) => errors.push(e), detached: (call) => call() });

  it('a batch that never settles does not stop the next ones, even with timeoutMs: 0', async () => {
    let calls = 0;
    const housekeeping = config(() => {
      calls += 1;
      return new Promise<number>(() => {}); // a backend that ignores its signal, on a dead connection
    }, 0, 30);
    for (let i = 0; i < 8; i++) {
      housekeeping.afterWrite();
      await sleep(20);
    }
    expect(calls).toBeGreaterThanOrEqual(3);
  });

  it('reports a failed batch to onError and never rejects', async () => {
    const errors: unknown[] = [];
    const housekeeping = config(() => Promise.reject(new Error('down')), 1000, 60_000, errors);
    housekeeping.afterWrite();
    await vi.waitFor(() => expect(errors).toHaveLength(1));
    expect(String(errors[0])).toMatch(/down/);
  });
});
