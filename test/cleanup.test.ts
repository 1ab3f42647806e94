/**
 * The housekeeping loop and its batches, on their own: what every cleanup
 * tick of both stores on both backends is built from.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkBatchSize, checkErrorHandler, deleteInBatches, expiredCleanup, isValidInterval, maxTimerMs, runEvery } from '../src/cleanup.ts';
import { SessionOptionsError, SessionStoreError } from '../src/errors.ts';

/** A table of `expired` records whose batch delete removes at most `limit`. */
function expiredRecords(expired: number) {
  let left = expired;
  const limits: number[] = [];
  return {
    deleteBatch: (limit: number) => {
      limits.push(limit);
      const deleted = Math.min(limit, left);
      left -= deleted;
      return Promise.resolve(deleted);
    },
    left: () => left,
    limits,
  };
}

describe('deleteInBatches', () => {
  it('deletes everything in batches of the size given, stopping at the first short one', async () => {
    await fc.assert(
      fc.asyncProperty(fc.nat(5000), fc.integer({ min: 1, max: 700 }), async (expired, batchSize) => {
        const records = expiredRecords(expired);
        const total = await deleteInBatches(batchSize, records.deleteBatch);
        expect(total).toBe(expired);
        expect(records.left()).toBe(0);
        // A full batch may hide more, so one more is asked; a short one ends the tick.
        expect(records.limits.length).toBe(Math.floor(expired / batchSize) + 1);
        expect(records.limits.every((limit) => limit === batchSize)).toBe(true);
      }),
    );
  });

  it('stops between batches once the signal aborts, after the batch in progress', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 50 }), async (abortDuring) => {
        const records = expiredRecords(1000);
        const controller = new AbortController();
        const total = await deleteInBatches(
          10,
          async (limit) => {
            const deleted = await records.deleteBatch(limit);
            if (records.limits.length === abortDuring) controller.abort();
            return deleted;
          },
          controller.signal,
        );
        expect(records.limits.length).toBe(abortDuring);
        expect(total).toBe(abortDuring * 10);
        expect(records.left()).toBe(1000 - abortDuring * 10);
      }),
    );
  });

  it('rejects with the failed batch’s error, after the batches before it', async () => {
    const records = expiredRecords(100);
    const failure = new Error('lost connection');
    const tick = deleteInBatches(10, async (limit) => {
      if (records.limits.length === 3) throw failure;
      return records.deleteBatch(limit);
    });
    await expect(tick).rejects.toBe(failure);
    expect(records.left()).toBe(70);
  });
});

describe('expiredCleanup', () => {
  it('a batch given up after its timeout does not hold up the next tick, even if it never settles', async () => {
    const calls: number[] = [];
    const backend = {
      // The first batch never settles (a command lost on a dead connection,
      // seen with Bun); as every backend must, the call stops waiting when
      // its signal aborts. The next ones answer.
      deleteExpired: (limit: number, signal?: AbortSignal) => {
        calls.push(limit);
        if (calls.length > 1) return Promise.resolve(3);
        return new Promise<number>((_resolve, reject) => {
          signal?.addEventListener('abort', () => reject(signal.reason as Error), { once: true });
        });
      },
    };
    const tick = expiredCleanup(backend, 10, 30);
    const first: unknown = await tick().catch((error: unknown) => error);
    expect(first).toBeInstanceOf(SessionStoreError);
    expect((first as Error).message).toMatch(/did not answer within 30 ms/);
    expect(await tick()).toBe(3);
    expect(calls).toEqual([10, 10]);
  });
});

describe('runEvery', () => {
  it('reports a failing tick and goes on; after it resolves no tick runs', async () => {
    const controller = new AbortController();
    const reported: unknown[] = [];
    let ticks = 0;
    const loop = runEvery(
      controller.signal,
      5,
      () => {
        ticks += 1;
        return ticks % 2 === 1 ? Promise.reject(new Error(`tick ${ticks}`)) : Promise.resolve();
      },
      (error) => {
        reported.push(error);
        throw new Error('a broken handler does not stop the loop');
      },
    );
    await expect.poll(() => ticks, { timeout: 5000 }).toBeGreaterThanOrEqual(5);
    controller.abort();
    await loop;
    const stoppedAt = ticks;
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(ticks).toBe(stoppedAt);
    expect(reported.length).toBe(Math.ceil(stoppedAt / 2));
    expect(reported[0]).toEqual(new Error('tick 1'));
  });

  it('ignores an error handler that rejects: no unhandled rejection, and the loop goes on', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const controller = new AbortController();
      let reported = 0;
      const rejectingHandler = async () => {
        reported += 1;
        await Promise.resolve();
        throw new Error('the handler failed too');
      };
      // What plain JavaScript, or a looser type, lets a caller pass.
      const onError = rejectingHandler as unknown as (error: unknown) => void;
      const loop = runEvery(controller.signal, 5, () => Promise.reject(new Error('tick failed')), onError);
      await expect.poll(() => reported, { timeout: 5000 }).toBeGreaterThanOrEqual(3);
      controller.abort();
      await loop;
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('waits for the tick in progress before it resolves', async () => {
    const controller = new AbortController();
    let finished = false;
    const loop = runEvery(
      controller.signal,
      1,
      async () => {
        controller.abort();
        await new Promise((resolve) => setTimeout(resolve, 50));
        finished = true;
      },
      () => {},
    );
    await loop;
    expect(finished).toBe(true);
  });
});

describe('the options of a cleanup loop', () => {
  it('intervals and timeouts: more than 0 and at most 2^31 - 1 ms, the longest timer', () => {
    for (const ok of [1, 0.5, 60_000, maxTimerMs]) expect(isValidInterval(ok)).toBe(true);
    for (const bad of [0, -1, maxTimerMs + 1, 30 * 24 * 3600 * 1000, Number.POSITIVE_INFINITY, Number.NaN, '100', null]) {
      expect(isValidInterval(bad)).toBe(false);
    }
  });

  it('onError: a function or absent; anything else is a SessionOptionsError', () => {
    const handler = () => {};
    expect(checkErrorHandler(handler)).toBe(handler);
    expect(checkErrorHandler(undefined)).toBeUndefined();
    for (const bad of ['log', null, 1, {}]) expect(() => checkErrorHandler(bad)).toThrow(SessionOptionsError);
  });
});

describe('checkBatchSize', () => {
  it('accepts whole numbers from 1 to 100,000 and refuses anything else with a SessionOptionsError', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 100_000 }), (size) => {
        expect(checkBatchSize(size, 'cleanupBatchSize')).toBe(size);
      }),
    );
    fc.assert(
      fc.property(
        fc.oneof(
          fc.integer({ max: 0 }),
          fc.integer({ min: 100_001 }),
          fc.double().filter((x) => !Number.isInteger(x)),
          fc.string(),
          fc.constant(null),
          fc.constant(undefined),
        ),
        (size) => {
          expect(() => checkBatchSize(size, 'cleanupBatchSize')).toThrow(SessionOptionsError);
        },
      ),
    );
  });
});
