/** The one owner rule (src/owner.ts), on its own; the stores' use of it is in session-store.test.ts. */
import { describe, expect, it } from 'vitest';
import { SessionValuesError } from '../src/errors.ts';
import { checkOwnerArgument, maxOwnerLength, ownerOf } from '../src/owner.ts';

describe('the owner rule', () => {
  it('takes both or neither', () => {
    expect(ownerOf({})).toEqual({ user: undefined, provider: undefined });
    expect(ownerOf({ user: null, provider: null, other: 1 })).toEqual({ user: undefined, provider: undefined });
    expect(ownerOf({ user: 'a', provider: 'p' })).toEqual({ user: 'a', provider: 'p' });
    expect(() => ownerOf({ user: 'a' })).toThrow(SessionValuesError);
    expect(() => ownerOf({ provider: 'p', user: null })).toThrow(/go together/);
  });

  it('refuses on save exactly what it refuses as an argument', () => {
    const values = ['', 'x'.repeat(maxOwnerLength + 1), 'a\0b', '\ud800', 7, {}, ['a']];
    for (const value of values) {
      expect(() => ownerOf({ user: value, provider: 'p' })).toThrow(SessionValuesError);
      expect(() => checkOwnerArgument('user', value)).toThrow(TypeError);
    }
    expect(() => checkOwnerArgument('user', undefined)).toThrow(/missing/);
    expect(() => checkOwnerArgument('user', 'x'.repeat(maxOwnerLength))).not.toThrow();
  });
});
