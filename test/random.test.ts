import { describe, expect, it } from 'vitest';
import { randomBytesBatched, randomText } from '../src/random.ts';

describe('randomBytesBatched', () => {
  it('gives the bytes asked for, never the same twice, across many refills', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 20_000; i++) {
      const bytes = randomBytesBatched(16);
      expect(bytes.byteLength).toBe(16);
      seen.add(bytes.toString('hex'));
    }
    expect(seen.size).toBe(20_000);
  });

  it('gives bytes that look uniform (none handed out zeroed or repeated)', () => {
    // 1 MiB in draws of mixed sizes, across 256 refills: each byte value
    // expected 4,096 times; a chi-square over 255 degrees of freedom stays
    // far under 400 for uniform bytes (p < 1e-8 to exceed it).
    const counts = new Array<number>(256).fill(0);
    let drawn = 0;
    for (let size = 1; drawn < 1 << 20; size = (size % 97) + 1) {
      const bytes = randomBytesBatched(Math.min(size, (1 << 20) - drawn));
      for (const byte of bytes) counts[byte] = (counts[byte] ?? 0) + 1;
      drawn += bytes.byteLength;
    }
    const expected = drawn / 256;
    const chiSquare = counts.reduce((sum, count) => sum + (count - expected) ** 2 / expected, 0);
    expect(chiSquare).toBeLessThan(400);
  });

  it('hands out copies: changing one changes no later draw', () => {
    const first = randomBytesBatched(64);
    first.fill(0);
    const later = Array.from({ length: 100 }, () => randomBytesBatched(64));
    expect(later.some((bytes) => bytes.every((byte) => byte === 0))).toBe(false);
  });

  it('refuses a count outside 0..4096 with a RangeError', () => {
    for (const count of [-1, 4097, 1.5, Number.NaN]) expect(() => randomBytesBatched(count)).toThrow(RangeError);
    expect(randomBytesBatched(0).byteLength).toBe(0);
    expect(randomBytesBatched(4096).byteLength).toBe(4096);
  });

  it('randomText is base64url of the bytes asked for', () => {
    expect(randomText(32)).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(randomText(16)).toMatch(/^[A-Za-z0-9_-]{22}$/);
  });
});
