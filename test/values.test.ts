import { describe, expect, it } from 'vitest';
import { SessionValuesError } from '../src/errors.ts';
import { decodeSession, decodeValues, encodeValues, maxValuesDepth } from '../src/values.ts';

describe('values encoding', () => {
  it('round-trips Dates and keys that look like tags', () => {
    const values = {
      $date: 1,
      d: new Date(5),
      nested: { $date: new Date(7), $$x: [new Date(9)] },
      plain: { $date: 'not a date' },
    };
    expect(decodeValues(encodeValues(values))).toEqual(values);
  });

  it('drops undefined properties and turns undefined array items into null, like JSON', () => {
    expect(decodeValues(encodeValues({ a: undefined, b: [undefined, 1] }))).toEqual({ b: [null, 1] });
  });

  it('names the path of a value it cannot store', () => {
    expect(() => encodeValues({ a: { b: [1, () => 2] } })).toThrow(/session values\.a\.b\[1\] hold a function/);
    expect(() => encodeValues({ a: new (class Point {})() })).toThrow(SessionValuesError);
    expect(() => encodeValues({ a: Number.POSITIVE_INFINITY })).toThrow(/non-finite/);
  });

  it('accepts objects without a prototype', () => {
    const bare = Object.assign(Object.create(null) as Record<string, unknown>, { x: 1 });
    expect(decodeValues(encodeValues({ bare }))).toEqual({ bare: { x: 1 } });
  });

  it('allows the same object twice when it is not a cycle', () => {
    const shared = { x: 1 };
    expect(decodeValues(encodeValues({ a: shared, b: shared }))).toEqual({ a: { x: 1 }, b: { x: 1 } });
  });

  it('refuses stored text that is not an object', () => {
    expect(() => decodeValues('[1]')).toThrow(SyntaxError);
    expect(() => decodeValues('{')).toThrow(SyntaxError);
  });

  it('refuses deep nesting with SessionValuesError, not a RangeError', () => {
    let deep: unknown = 'bottom';
    for (let i = 0; i < 20_000; i++) deep = { d: deep };
    expect(() => encodeValues({ deep })).toThrow(SessionValuesError);
    let ok: unknown = 1;
    for (let i = 0; i < maxValuesDepth - 1; i++) ok = [ok];
    expect(decodeValues(encodeValues({ ok }))).toEqual({ ok });
  });

  it('refuses a small graph of shared references that expands past the byte limit, without expanding it', () => {
    // 45 objects, each referencing the next twice: 2^45 leaves once written out.
    let node: Record<string, unknown> = { leaf: 'x'.repeat(10) };
    for (let i = 0; i < 45; i++) node = { a: node, b: node };
    expect(() => encodeValues(node, 1024 * 1024)).toThrow(/more than maxValuesBytes \(1048576\)/);
  });

  it('counts the byte limit in UTF-8 bytes of the encoding, exactly at the edge', () => {
    const text = encodeValues({ s: 'é'.repeat(10) });
    const bytes = Buffer.byteLength(text);
    expect(encodeValues({ s: 'é'.repeat(10) }, bytes)).toBe(text);
    expect(() => encodeValues({ s: 'é'.repeat(10) }, bytes - 1)).toThrow(SessionValuesError);
  });

  it('counts every slot of a sparse array, so a huge length is refused at once', () => {
    const cart: string[] = [];
    cart[4e9] = 'apple';
    expect(() => encodeValues({ cart }, 1024 * 1024)).toThrow(SessionValuesError);
  });

  it('stores flashes beside the values under a key no value can take', () => {
    const text = encodeValues({ $flashes: 'mine', flashes: 1 }, Number.POSITIVE_INFINITY, { _flash: ['hi', new Date(3)] });
    expect(decodeSession(text)).toEqual({ values: { $flashes: 'mine', flashes: 1 }, flashes: { _flash: ['hi', new Date(3)] } });
    expect(decodeValues(text)).toEqual({ $flashes: 'mine', flashes: 1 });
  });
});

