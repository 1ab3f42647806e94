/**
 * Session values <-> the text stored in MongoDB.
 *
 * The format is JSON with one extension, so that `Date` round-trips: a Date
 * is written as `{"$date": <epoch ms>}`, and every object key a caller wrote
 * that starts with `$` is written with one more `$` in front. A decoded object
 * whose only key is `$date` is therefore always a Date, and every other key
 * comes back exactly as written: `$where`, `a.b`, `__proto__` and
 * `constructor` are plain data (the text is stored as one binary field, so no
 * key ever reaches MongoDB as a field name or operator). Decoding creates own
 * properties only, so no key can reach a prototype.
 */
import { SessionValuesError } from './errors.ts';

/** The shape of a session's `values` when the app gives none: string keys, storable values. */
export type SessionValues = Record<string, unknown>;

/**
 * The compile-time check on a store's values type: every field must be
 * storable (JSON-compatible data and Dates), so a `Map`, `Set`, `bigint`,
 * function or class instance fails to compile rather than at `save`. Works
 * for `interface`s as well as `type` aliases (no index signature needed).
 * `unknown` fields are accepted as they are and checked at `save`. The
 * owner rule too: `user` and `provider`, if declared, are both strings.
 */
export type Storable<T> = StorableObject<T> & OwnerFields<T>;

type StorableObject<T> = { [K in keyof T]: StorableField<T[K]> };

/**
 * The owner rule at compile time, as `save` checks it at run time: a values
 * type that declares `user` or `provider` declares both, as strings
 * (optional, or null while signed out); `unknown` ones are checked at `save`.
 * A type with an index signature is checked at `save` only.
 */
type OwnerFields<T> = string extends keyof T
  ? unknown
  : 'user' extends keyof T
    ? 'provider' extends keyof T
      ? { [K in 'user' | 'provider']?: unknown extends T[K] ? unknown : string | null | undefined }
      : unknown extends T['user' & keyof T]
        ? unknown
        : { provider: string }
    : 'provider' extends keyof T
      ? unknown extends T['provider' & keyof T]
        ? unknown
        : { user: string }
      : unknown;

type StorableField<T> = unknown extends T
  ? T
  : T extends string | number | boolean | null | undefined | Date
    ? T
    : T extends (...args: never[]) => unknown
      ? never
      : T extends ReadonlyMap<unknown, unknown> | ReadonlySet<unknown>
        ? never
        : T extends readonly unknown[]
          ? { [K in keyof T]: StorableField<T[K]> }
          : T extends object
            ? StorableObject<T>
            : never;

/** Flash messages by key, pending until read. */
export type Flashes = Record<string, unknown[]>;

/**
 * The top-level key under which pending flashes are stored beside the
 * values. Every key a caller writes that starts with `$` is stored with one
 * more `$`, so no value key can ever be read back as this one.
 */
export const flashesKey = '$flashes';

/** How a caller's object key is stored: one more `$` in front of a key that starts with `$`. */
function storedKey(key: string): string {
  return key.startsWith('$') ? `$${key}` : key;
}

const dateTag = '$date';

/** Deepest nesting of objects and arrays `encodeValues` accepts. */
export const maxValuesDepth = 100;

/**
 * Encodes values to text. Object properties that are `undefined` are left
 * out, as JSON.stringify does.
 * @param maxBytes the largest encoding accepted, in UTF-8 bytes: the walk
 * keeps a running lower bound of the size and stops as soon as it passes
 * this, so a huge input (or a small graph of shared references that expands
 * exponentially) is refused in time proportional to `maxBytes`.
 * @throws SessionValuesError for anything not JSON-compatible (functions,
 * symbols, bigints, non-finite numbers, invalid Dates, class instances other
 * than Date, Map/Set, cycles), nesting deeper than {@link maxValuesDepth},
 * or an encoding larger than `maxBytes`.
 */
export function encodeValues(
  values: SessionValues,
  maxBytes = Number.POSITIVE_INFINITY,
  flashes: Flashes = {},
): string {
  const walk: Walk = { ancestors: new Set(), budget: maxBytes, maxBytes };
  const tagged = toTagged(values, '', walk) as Record<string, unknown>;
  if (Object.keys(flashes).length > 0) tagged[flashesKey] = toTagged(flashes, ' (flashes)', walk);
  const text = JSON.stringify(tagged);
  const bytes = utf8Length(text);
  if (bytes > maxBytes) tooLarge(maxBytes, `${bytes} bytes`);
  return text;
}

/** A session's values and pending flashes encoded one by one: see {@link encodeParts}. */
export interface EncodedParts {
  /** Each top-level key with the tagged JSON text of its value (undefined values left out). */
  values: [string, string][];
  /** Each flash as the tagged JSON text of `[key, value]`, in order. */
  flashes: string[];
  /** UTF-8 bytes of all the texts together. */
  bytes: number;
}

/**
 * Encodes each top-level value, and each flash, to its own text (the format
 * of {@link encodeValues}), so that a save can store and write them one by
 * one. The budget is for all of them together.
 * @throws SessionValuesError as {@link encodeValues} does, and for a
 * top-level key that is not well-formed Unicode (two such keys could not
 * be told apart once stored).
 */
export function encodeParts(values: SessionValues, flashes: readonly (readonly [string, unknown])[], maxBytes = Number.POSITIVE_INFINITY): EncodedParts {
  const walk: Walk = { ancestors: new Set(), budget: maxBytes, maxBytes };
  const parts: EncodedParts = { values: [], flashes: [], bytes: 0 };
  for (const [key, value] of Object.entries(values)) {
    if (value === undefined) continue;
    if (!key.isWellFormed()) throw new SessionValuesError(`session values: the key ${JSON.stringify(key)} is not well-formed Unicode`);
    spend(walk, key.length + 3);
    const text = JSON.stringify(toTagged(value, `.${key}`, walk));
    parts.values.push([key, text]);
    parts.bytes += utf8Length(text);
  }
  for (const [key, value] of flashes) {
    spend(walk, key.length + 5);
    const text = JSON.stringify([key, toTagged(value, ` (flash ${JSON.stringify(key)})`, walk)]);
    parts.flashes.push(text);
    parts.bytes += utf8Length(text);
  }
  if (parts.bytes > maxBytes) tooLarge(maxBytes, `${parts.bytes} bytes`);
  return parts;
}

/**
 * Decodes one value's text written by {@link encodeParts}.
 * @throws SyntaxError when the text is not JSON.
 */
export function decodeValue(text: string): unknown {
  return fromTagged(JSON.parse(text));
}

/**
 * Decodes one flash's text written by {@link encodeParts}: its key and value.
 * @throws SyntaxError when the text is not a `[key, value]` pair.
 */
export function decodeFlash(text: string): [string, unknown] {
  const parsed: unknown = JSON.parse(text);
  if (!Array.isArray(parsed) || parsed.length !== 2 || typeof parsed[0] !== 'string') {
    throw new SyntaxError('a stored flash is not a [key, value] pair');
  }
  return [parsed[0], fromTagged(parsed[1])];
}

/**
 * Decodes the values in text written by {@link encodeValues} (flashes left out).
 * @throws SyntaxError when the text is not JSON or not an object.
 */
export function decodeValues(text: string): SessionValues {
  return decodeSession(text).values;
}

/**
 * Decodes text written by {@link encodeValues}: the values and the pending flashes.
 * @throws SyntaxError when the text is not JSON or not an object.
 */
export function decodeSession(text: string): { values: SessionValues; flashes: Flashes } {
  const parsed: unknown = JSON.parse(text);
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new SyntaxError('stored session values are not an object');
  }
  const { [flashesKey]: storedFlashes, ...rest } = parsed as Record<string, unknown>;
  const flashes = storedFlashes === undefined ? {} : fromTagged(storedFlashes);
  if (flashes === null || typeof flashes !== 'object' || Array.isArray(flashes)) {
    throw new SyntaxError('stored flashes are not an object');
  }
  return { values: fromTagged(rest) as SessionValues, flashes: flashes as Flashes };
}

/** State of one encoding walk. */
interface Walk {
  /** Objects on the path from the root: a repeat is a cycle. */
  readonly ancestors: Set<object>;
  /** Bytes left before the encoding is surely too large. */
  budget: number;
  readonly maxBytes: number;
}

function toTagged(value: unknown, path: string, walk: Walk): unknown {
  switch (typeof value) {
    case 'string':
      spend(walk, value.length + 2);
      return value;
    case 'boolean':
      spend(walk, 4);
      return value;
    case 'number':
      if (!Number.isFinite(value)) fail(path, `the non-finite number ${value}`);
      spend(walk, 1);
      return value;
    case 'object':
      break;
    default:
      fail(path, `a ${typeof value}`);
  }
  spend(walk, 2); // null, or the brackets of an object or array
  if (value === null) return null;
  if (value instanceof Date) {
    const time = value.getTime();
    if (Number.isNaN(time)) fail(path, 'an invalid Date');
    return { [dateTag]: time };
  }
  if (walk.ancestors.has(value)) fail(path, 'a cycle');
  if (walk.ancestors.size >= maxValuesDepth) fail(path, `nesting deeper than ${maxValuesDepth} levels`);
  walk.ancestors.add(value);
  try {
    if (Array.isArray(value)) {
      spend(walk, value.length); // a comma or null per slot, holes included: a sparse array is no way around the budget
      return value.map((item, index) =>
        item === undefined ? null : toTagged(item, `${path}[${index}]`, walk),
      );
    }
    const prototype: unknown = Object.getPrototypeOf(value);
    if (prototype !== Object.prototype && prototype !== null) {
      fail(path, 'an object that is not plain (a class instance, Map, Set or changed prototype)');
    }
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) {
      if (item === undefined) continue;
      spend(walk, key.length + 3);
      define(out, storedKey(key), toTagged(item, `${path}.${key}`, walk));
    }
    return out;
  } finally {
    walk.ancestors.delete(value);
  }
}

/** Counts at most as many bytes as the JSON text will have (UTF-16 units <= UTF-8 bytes). */
function spend(walk: Walk, bytes: number): void {
  walk.budget -= bytes;
  if (walk.budget < 0) tooLarge(walk.maxBytes, `more than ${walk.maxBytes} bytes`);
}

function tooLarge(maxBytes: number, size: string): never {
  throw new SessionValuesError(`session values take ${size}, more than maxValuesBytes (${maxBytes})`);
}

function utf8Length(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

function fromTagged(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map(fromTagged);
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record);
  if (keys.length === 1 && keys[0] === dateTag && typeof record[dateTag] === 'number') {
    return new Date(record[dateTag]);
  }
  const out: Record<string, unknown> = {};
  for (const key of keys) {
    define(out, key.startsWith('$') ? key.slice(1) : key, fromTagged(record[key]));
  }
  return out;
}

/** Assigns an own data property, even for the key `__proto__`. */
function define(target: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') {
    Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  } else {
    target[key] = value;
  }
}

function fail(path: string, what: string): never {
  throw new SessionValuesError(`session values${path} hold ${what}, which cannot be stored`);
}
