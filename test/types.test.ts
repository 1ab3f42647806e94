/**
 * What the types promise: a store's values type may be an `interface` or a
 * `type`, must be storable (a Map, Set, bigint or function field does not
 * compile), and flashes are not part of it. Checked by `npm run typecheck`
 * (the @ts-expect-error lines fail it if they stop being errors) and run as
 * a test.
 */
import { MongoClient } from 'mongodb';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { MongoStore, type Session } from '../src/index.ts';
import { PostgresSessionStore } from '../src/postgres/index.ts';
import { randomKey } from './support/http.ts';

interface UserValues {
  user?: string;
  provider?: string;
  visits: number;
  prefs: { theme: 'light' | 'dark'; tags: string[] };
  lastSeen: Date;
}

const db = new MongoClient('mongodb://127.0.0.1:9').db('types');
const keyPairs = [{ authentication: randomKey() }];

describe('store value types', () => {
  it('accepts an interface, not only a type alias', () => {
    const store = new MongoStore<UserValues>(db, { keyPairs });
    expectTypeOf<Session<UserValues>['values']>().toEqualTypeOf<Partial<UserValues>>();
    expect(store).toBeInstanceOf(MongoStore);
  });

  it('refuses values types that cannot be stored, at compile time', () => {
    const refused = [
      // @ts-expect-error a Map is not storable
      () => new MongoStore<{ cache: Map<string, string> }>(db, { keyPairs }),
      // @ts-expect-error a bigint is not storable
      () => new MongoStore<{ balance: bigint }>(db, { keyPairs }),
      // @ts-expect-error a function is not storable
      () => new MongoStore<{ callback: () => void }>(db, { keyPairs }),
      // @ts-expect-error nested: a Set inside an object
      () => new MongoStore<{ prefs: { seen: Set<string> } }>(db, { keyPairs }),
      // @ts-expect-error a class instance with methods is not plain data
      () => new PostgresSessionStore<{ url: URL }>(null as never, { keyPairs }),
    ];
    expect(refused).toHaveLength(5);
  });

  it('refuses an owner that breaks the owner rule, at compile time', () => {
    const refused = [
      // @ts-expect-error user must be a string
      () => new MongoStore<{ user: number; provider: string }>(db, { keyPairs }),
      // @ts-expect-error provider must be a string
      () => new PostgresSessionStore<{ user?: string; provider?: number }>(null as never, { keyPairs }),
      // @ts-expect-error user without provider
      () => new MongoStore<{ user: string }>(db, { keyPairs }),
      // @ts-expect-error provider without user
      () => new MongoStore<{ provider: string; cart: string[] }>(db, { keyPairs }),
    ];
    expect(refused).toHaveLength(4);
    // Both strings (optional, or null while signed out), unknown, or neither: accepted.
    const accepted = [
      new MongoStore<{ user?: string; provider?: string; cart: string[] }>(db, { keyPairs }),
      new MongoStore<{ user: string | null; provider: string | null }>(db, { keyPairs }),
      new MongoStore<{ user: unknown; provider: unknown }>(db, { keyPairs }),
      new MongoStore<{ user: unknown }>(db, { keyPairs }), // unknown: checked at save
      new MongoStore<{ cart: string[] }>(db, { keyPairs }),
      new MongoStore(db, { keyPairs }),
    ];
    expect(accepted).toHaveLength(6);
  });

  it('keeps flashes out of the values type', () => {
    expectTypeOf<keyof Partial<UserValues>>().toEqualTypeOf<keyof UserValues>();
    expectTypeOf<Session<UserValues>['flashes']>().toBeFunction();
  });
});
