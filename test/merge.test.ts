/** The three-way merge of a session's stored text (src/merge.ts), on its own. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { mergeSessionText } from '../src/merge.ts';
import { decodeSession, encodeValues } from '../src/values.ts';

const text = (values: Record<string, unknown>, flashes: Record<string, unknown[]> = {}) =>
  encodeValues(values, Number.POSITIVE_INFINITY, flashes);
const merge = (base: string, ours: string, theirs: string, read: string[] = []) =>
  decodeSession(mergeSessionText({ base, ours, theirs, readFlashKeys: new Set(read) }));

describe('mergeSessionText', () => {
  it('keeps both sides\' changes to different keys, and this request\'s removals', () => {
    const base = text({ a: 1, b: 1, gone: true, nested: { x: 1 } });
    const ours = text({ a: 2, b: 1, nested: { x: 1 } });
    const theirs = text({ a: 1, b: 3, gone: true, nested: { x: 1, y: 2 }, added: new Date(5) });
    expect(merge(base, ours, theirs).values).toEqual({ a: 2, b: 3, nested: { x: 1, y: 2 }, added: new Date(5) });
  });

  it('gives the same key to this request, and treats keys as plain data ($-keys, __proto__)', () => {
    const hostile = (value: number) => JSON.parse(`{"$where":${value},"__proto__":{"p":${value}}}`) as Record<string, unknown>;
    const merged = merge(text({}), text(hostile(2)), text(hostile(3)));
    expect(merged.values).toEqual(hostile(2));
    expect(Object.getPrototypeOf(merged.values)).toBe(Object.prototype);
  });

  it('flashes: the stored list, less what this request read, plus what it added', () => {
    const base = text({}, { _flash: ['old'] });
    const ours = text({}, { notes: ['mine'] }); // read _flash, added a note
    const theirs = text({}, { _flash: ['old', 'theirs'], notes: ['their note'], $alerts: ['x'] });
    expect(merge(base, ours, theirs, ['_flash']).flashes).toEqual({ _flash: ['theirs'], notes: ['their note', 'mine'], $alerts: ['x'] });
  });

  it('property: changes to disjoint keys on both sides all survive', () => {
    const keys = fc.uniqueArray(fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f', '$x', 'a.b'), { minLength: 2, maxLength: 8 });
    fc.assert(
      fc.property(keys, fc.integer(), fc.integer(), (all, mine, theirsValue) => {
        const half = Math.floor(all.length / 2);
        const [oursKeys, theirsKeys] = [all.slice(0, half), all.slice(half)];
        const base: Record<string, unknown> = Object.fromEntries(all.map((key) => [key, 0]));
        const ours = { ...base, ...Object.fromEntries(oursKeys.map((key) => [key, mine])) };
        const theirs = { ...base, ...Object.fromEntries(theirsKeys.map((key) => [key, theirsValue])) };
        const merged = merge(text(base), text(ours), text(theirs)).values;
        for (const key of oursKeys) expect(merged[key]).toBe(mine);
        for (const key of theirsKeys) expect(merged[key]).toBe(theirsValue);
      }),
      { seed: 20261123, numRuns: 300 },
    );
  });

  it('moves the owner as one pair, and does not merge at all when this request changed the owner', () => {
    const base = text({ user: '111', provider: 'google', cart: 1 });
    // Another request switched the provider; this one only changed the cart: the stored pair stands.
    expect(merge(base, text({ user: '111', provider: 'google', cart: 2 }), text({ user: '111', provider: 'github', cart: 1 })).values).toEqual({
      user: '111',
      provider: 'github',
      cart: 2,
    });
    // This request signed in as someone else: nothing of the previous owner's parallel writes carries over.
    const theirs = text({ user: '111', provider: 'google', cart: 1, mfaVerifiedAt: 5 });
    expect(merge(base, text({ user: '222', provider: 'google' }), theirs).values).toEqual({ user: '222', provider: 'google' });
    // This request signed out (cleared the owner): its values stand, no half-removed pair.
    expect(merge(base, text({ cart: 1 }), text({ user: '333', provider: 'google', cart: 1 })).values).toEqual({ cart: 1 });
  });

  it('flash keys named like Object.prototype members merge as plain keys', () => {
    const base = text({}, {});
    const ours = text({}, { constructor: ['mine'] });
    const theirs = text({}, { constructor: ['theirs'] });
    const merged = merge(base, ours, theirs).flashes;
    expect(merged.constructor).toEqual(['theirs', 'mine']);
  });
});

