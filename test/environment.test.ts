/**
 * The run is on the runtime and driver it asked for: `npm test` names
 * them in EXPECT_RUNTIME and MONGODB_DRIVER, so a matrix entry that silently
 * ran on something else (plain `bunx` runs vitest on Node) fails here.
 */
import { Binary } from 'mongodb';
import { describe, expect, it } from 'vitest';

function runtime(): string {
  const versions = process.versions as Record<string, string | undefined>;
  if (versions.bun) return `bun ${versions.bun}`;
  if (versions.deno) return `deno ${versions.deno}`;
  return `node ${process.versions.node}`;
}

describe('the test environment', () => {
  it('is the runtime this run asked for (EXPECT_RUNTIME, e.g. "node 22", "bun", "deno")', () => {
    const expected = process.env.EXPECT_RUNTIME;
    if (expected === undefined) {
      expect(runtime()).toMatch(/^(node|bun|deno) \d/);
      return;
    }
    expect(`${runtime()}.`.startsWith(`${expected}${/\d$/.test(expected) ? '.' : ' '}`)).toBe(true);
  });

  it('is driven by the mongodb major this run asked for (MONGODB_DRIVER, default 7)', () => {
    // The bson major travels with the driver's (6.x on bson 6, 7.x on bson 7).
    const bsonMajor: unknown = (new Binary() as unknown as Record<symbol, unknown>)[Symbol.for('@@mdb.bson.version')];
    expect(bsonMajor).toBe(Number(process.env.MONGODB_DRIVER ?? '7'));
  });
});
