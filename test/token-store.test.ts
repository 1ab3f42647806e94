/**
 * The scs-style token store's contract, run against every backend:
 * MongoDBStore on MongoDB and PostgresStore on PostgreSQL.
 */
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SessionOptionsError, SessionStoreError, type TokenStoreConfig } from '../src/index.ts';
import type { TokenStore } from '../src/token-store.ts';
import { type Backend, backends } from './support/backends.ts';

describe.each(backends)('TokenStore on $name', (backend: Backend) => {
const stores: TokenStore[] = [];
beforeAll(() => backend.open());
afterAll(async () => {
  await Promise.all(stores.map((store) => store.stopCleanup()));
  await backend.close();
});

const hour = 3_600_000;
const later = () => new Date(Date.now() + hour);
const earlier = () => new Date(Date.now() - 1000);

async function makeStore(config: TokenStoreConfig = {}) {
  const { store, raw } = await backend.tokenStore({ cleanupInterval: 0, ...config });
  stores.push(store);
  return { store, docs: raw };
}

describe('the token contract', () => {
  it('commits and finds data byte for byte, up to 1 MB', async () => {
    const { store } = await makeStore();
    for (const size of [0, 1, 255, 4096, 1024 * 1024]) {
      const data = new Uint8Array(randomBytes(size));
      await store.commit(`token-${size}`, data, later());
      const found = await store.find(`token-${size}`);
      expect(found).toBeInstanceOf(Uint8Array);
      expect(Buffer.from(found ?? []).equals(Buffer.from(data))).toBe(true);
    }
    const buffer = randomBytes(64);
    await store.commit('buffer', buffer, later());
    expect(Buffer.from((await store.find('buffer')) ?? []).equals(buffer)).toBe(true);
  });

  it('returns undefined for a missing or expired token, even before cleanup', async () => {
    const { store, docs } = await makeStore();
    expect(await store.find('missing')).toBeUndefined();
    await store.commit('old', new Uint8Array([1]), earlier());
    expect(await docs.count()).toBe(1);
    expect(await store.find('old')).toBeUndefined();
  });

  it('commit replaces data and expiry, and makes an expired token live again', async () => {
    const { store, docs } = await makeStore();
    await store.commit('t', new Uint8Array([1]), later());
    const expiry = new Date(Date.now() + 2 * hour);
    await store.commit('t', new Uint8Array([2, 2]), expiry);
    expect(await store.find('t')).toEqual(new Uint8Array([2, 2]));
    expect((await docs.record('t'))?.expiresAt).toEqual(expiry);

    await store.commit('t', new Uint8Array([3]), earlier());
    expect(await store.find('t')).toBeUndefined();
    await store.commit('t', new Uint8Array([4]), later());
    expect(await store.find('t')).toEqual(new Uint8Array([4]));
    expect(await docs.count()).toBe(1);
  });

  it('delete removes a token and is fine when it is missing', async () => {
    const { store } = await makeStore();
    await store.commit('t', new Uint8Array([1]), later());
    await store.delete('t');
    expect(await store.find('t')).toBeUndefined();
    await expect(store.delete('t')).resolves.toBeUndefined();
  });

  it('all() returns every live token among expired ones', async () => {
    const { store, docs } = await makeStore();
    const live = new Map<string, Uint8Array>();
    for (let i = 0; i < 1000; i++) live.set(`live-${i}`, new Uint8Array(randomBytes(1 + (i % 50))));
    for (let i = 0; i < 500; i += 50) {
      await Promise.all(Array.from({ length: 50 }, (_, j) => docs.insertExpired(`dead-${i + j}`)));
    }
    const entries = [...live];
    for (let i = 0; i < entries.length; i += 100) {
      await Promise.all(entries.slice(i, i + 100).map(([token, data]) => store.commit(token, data, later())));
    }
    const all = await store.all();
    expect(all.size).toBe(1000);
    for (const [token, data] of live) expect(Buffer.from(all.get(token) ?? []).equals(Buffer.from(data))).toBe(true);
  });

  it('refuses bad tokens, data and expiries with a TypeError, sending no command', async () => {
    const { store, docs } = await makeStore();
    await store.commit('keep', new Uint8Array([1]), later());
    const badTokens: unknown[] = [undefined, null, '', 1, {}, [], { $ne: null }, { $gt: '' }, ['keep'], 'x'.repeat(1025)];
    const calls = (token: unknown) => [
      () => store.find(token as string),
      () => store.commit(token as string, new Uint8Array(), later()),
      () => store.delete(token as string),
    ];
    const badArguments = [
      ...badTokens.flatMap(calls),
      () => store.commit('t', 'text' as never, later()),
      () => store.commit('t', [1, 2] as never, later()),
      () => store.commit('t', new Uint8Array(), 'tomorrow' as never),
      () => store.commit('t', new Uint8Array(), new Date(Number.NaN)),
    ];
    for (const call of badArguments) {
      const commands = await backend.during(async () => {
        await expect(call()).rejects.toBeInstanceOf(TypeError);
      });
      expect(commands).toEqual([]);
    }
    expect(await docs.count()).toBe(1);
  });

  it('hashTokens keeps only SHA-256 of the token and refuses all()', async () => {
    const { store, docs } = await makeStore({ hashTokens: true });
    await store.commit('secret-token', new Uint8Array([7]), later());
    expect(await store.find('secret-token')).toEqual(new Uint8Array([7]));
    expect(await docs.keys()).toEqual([createHash('sha256').update('secret-token').digest('hex')]);
    await expect(store.all()).rejects.toBeInstanceOf(SessionOptionsError);
    await store.delete('secret-token');
    expect(await docs.count()).toBe(0);
  });

  it('rejects with an AbortError, sending nothing, when the signal is already aborted', async () => {
    const { store } = await makeStore();
    const signal = AbortSignal.abort();
    const commands = await backend.during(async () => {
      for (const call of [
        () => store.find('t', { signal }),
        () => store.commit('t', new Uint8Array(), later(), { signal }),
        () => store.delete('t', { signal }),
        () => store.all({ signal }),
      ]) {
        await expect(call()).rejects.toMatchObject({ name: 'AbortError' });
      }
    });
    expect(commands).toEqual([]);
  });

  it('rejects with an AbortError when aborted during a call, and stays consistent', async () => {
    const { store } = await makeStore();
    await store.commit('t', new Uint8Array([1]), later());
    const controller = new AbortController();
    const commit = store.commit('t', new Uint8Array([2]), later(), { signal: controller.signal });
    const find = store.find('t', { signal: controller.signal });
    controller.abort();
    await expect(commit).rejects.toMatchObject({ name: 'AbortError' });
    await expect(find).rejects.toMatchObject({ name: 'AbortError' });
    // The abandoned write happens whole or not at all, and is not cancelled on
    // the server: it may still land after the rejection, so let it settle.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const after = await store.find('t');
    expect([[1], [2]]).toContainEqual([...(after ?? [])]);
    await store.commit('t', new Uint8Array([3]), later());
    expect(await store.find('t')).toEqual(new Uint8Array([3]));
  });

  it('a custom abort reason that is an Error is passed through', async () => {
    const { store } = await makeStore();
    const reason = new Error('shutting down');
    await expect(store.find('t', { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
  });
});

describe('background cleanup', () => {
  it('deletes expired tokens each interval, and nothing after stopCleanup()', async () => {
    const { store, docs } = await makeStore({ cleanupInterval: 20 });
    await store.commit('dead', new Uint8Array([1]), earlier());
    await store.commit('live', new Uint8Array([1]), later());
    await expect.poll(() => docs.count(), { timeout: 5000 }).toBe(1);

    await store.stopCleanup();
    await store.commit('dead-after-stop', new Uint8Array([1]), earlier());
    expect(await backend.during(() => new Promise((resolve) => setTimeout(resolve, 150)))).toEqual([]);
    expect(await docs.count()).toBe(2);
    await store.stopCleanup(); // idempotent
  });

  it('stopCleanup is fine when cleanup never ran', async () => {
    const { store } = await makeStore({ cleanupInterval: 0 });
    await expect(store.stopCleanup()).resolves.toBeUndefined();
  });

  it('defaults to a 60 s interval: no deletion within the first second', async () => {
    const { store, docs } = await makeStore({ cleanupInterval: undefined });
    await store.commit('dead', new Uint8Array([1]), earlier());
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await docs.count()).toBe(1);
    await store.stopCleanup();
  });

  it('reports failed ticks and carries on', async () => {
    const dead = backend.unreachable();
    const errors: unknown[] = [];
    const store = dead.tokens({ cleanupInterval: 5, onError: (e) => errors.push(e) });
    await expect.poll(() => errors.length, { timeout: 5000 }).toBeGreaterThanOrEqual(3);
    await store.stopCleanup();
    expect(errors[0]).toBeInstanceOf(SessionStoreError);
    await dead.close();
  });

  it('deletes in bounded batches of cleanupBatchSize, and keeps live tokens; the first tick one interval after the store starts', async () => {
    const place = `tokens_batches_${Math.random().toString(36).slice(2, 10)}`;
    const { store: writer, raw: docs } = await backend.tokenStore({ cleanupInterval: 0 }, place);
    for (let i = 0; i < 25; i++) await writer.commit(`dead-${i}`, new Uint8Array([1]), earlier());
    await writer.commit('live', new Uint8Array([1]), later());
    // What opening a store on this place sends (its schema check): every
    // command of a cleanup waits for it, so it comes first.
    const opening = await backend.during(() => backend.tokenStore({ cleanupInterval: 0 }, place));
    const interval = 500;
    let firstTickAfter: number | undefined;
    const commands = await backend.during(async () => {
      const started = performance.now();
      // Its loop starts with it.
      const { store } = await backend.tokenStore({ cleanupInterval: interval, cleanupBatchSize: 10 }, place);
      stores.push(store);
      // The end state, however late a loaded machine runs the first tick: its
      // three batches sent (watched in the command log: a read of the
      // database here would be logged too).
      await expect
        .poll(
          () => {
            const sent = backend.sentSoFar().slice(opening.length);
            if (sent.length > 0) firstTickAfter ??= performance.now() - started;
            return sent.filter((kind) => kind === 'delete').length;
          },
          { timeout: 10_000 + interval, interval: 5 },
        )
        .toBeGreaterThanOrEqual(3);
      await store.stopCleanup();
    });
    // Not at once: the first command of a tick came no earlier than one
    // interval after the start (a lower bound, which no load can break).
    expect(firstTickAfter).toBeGreaterThanOrEqual(interval - 5);
    // Nothing but the opening before the first tick; the first tick: batches
    // of 10, 10 and 5, as for the session store (each batch's own bound:
    // test/mongo/session-collection.test.ts and test/postgres/cleanup.test.ts);
    // any later tick finds nothing.
    expect(commands.slice(0, opening.length)).toEqual(opening);
    const cleanup = commands.slice(opening.length);
    if (backend.name === 'MongoDB') {
      expect(cleanup.slice(0, 6)).toEqual(['read', 'delete', 'read', 'delete', 'read', 'delete']);
      expect(cleanup.slice(6).every((kind) => kind === 'read')).toBe(true);
    } else {
      expect(cleanup.length).toBeGreaterThanOrEqual(3);
      expect(cleanup.every((kind) => kind === 'delete')).toBe(true);
    }
    expect(await docs.count()).toBe(1);
    expect(await writer.find('live')).toEqual(new Uint8Array([1]));
  });

  it('refuses a batch size that is not a whole number from 1 to 100,000', async () => {
    for (const cleanupBatchSize of [0, -1, 1.5, 100_001, Number.NaN, '10']) {
      await expect(backend.tokenStore({ cleanupInterval: 0, cleanupBatchSize: cleanupBatchSize as number })).rejects.toThrow(SessionOptionsError);
    }
  });

  it('refuses an interval or timeout that is negative, not a number, or longer than a timer can wait (2^31 - 1 ms)', async () => {
    for (const value of [-1, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 31, 30 * 24 * 3600 * 1000]) {
      await expect(backend.tokenStore({ cleanupInterval: value })).rejects.toThrow(SessionOptionsError);
      await expect(backend.tokenStore({ cleanupInterval: 0, cleanupTimeout: value })).rejects.toThrow(SessionOptionsError);
    }
    const { store } = await makeStore({ cleanupInterval: 2 ** 31 - 1, cleanupTimeout: 2 ** 31 - 1 });
    await store.stopCleanup();
  });

  it('refuses an onError that is not a function, and an unknown option (a typo)', async () => {
    await expect(backend.tokenStore({ cleanupInterval: 0, onError: 'log' as never })).rejects.toThrow(SessionOptionsError);
    const typo = { cleanupInterval: 0, cleanupBatchsize: 5 } as TokenStoreConfig;
    await expect(backend.tokenStore(typo)).rejects.toThrow(/unknown option "cleanupBatchsize"/);
  });

  it('stopCleanup() stops a tick between batches: expired tokens are left, and nothing is sent after', async () => {
    const place = `tokens_stop_${Math.random().toString(36).slice(2, 10)}`;
    const { store: writer, raw: docs } = await backend.tokenStore({ cleanupInterval: 0 }, place);
    const dead = 200;
    for (let i = 0; i < dead; i += 50) {
      await Promise.all(Array.from({ length: 50 }, (_, j) => writer.commit(`dead-${i + j}`, new Uint8Array([1]), earlier())));
    }
    const { store } = await backend.tokenStore({ cleanupInterval: 10, cleanupBatchSize: 1 }, place);
    // 200 batches of one take far longer than this 5 ms poll: the stop lands inside the first tick.
    await expect.poll(() => docs.count(), { timeout: 10_000, interval: 5 }).toBeLessThan(dead);
    await store.stopCleanup();
    const left = await docs.count();
    expect(left).toBeGreaterThan(0);
    expect(await backend.during(() => new Promise((resolve) => setTimeout(resolve, 100)))).toEqual([]);
    expect(await docs.count()).toBe(left);
  });
});
});
