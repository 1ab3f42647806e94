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

/** The shape of a session's `values`: string keys, storable values. */
export type SessionValues = Record<string, unknown>;

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
export function encodeValues(values: SessionValues, maxBytes = Number.POSITIVE_INFINITY): string {
  const walk: Walk = { ancestors: new Set(), budget: maxBytes, maxBytes };
  const text = JSON.stringify(toTagged(values, '', walk));
  const bytes = utf8Length(text);
  if (bytes > maxBytes) tooLarge(maxBytes, `${bytes} bytes`);
  return text;
}

/**
 * Decodes text written by {@link encodeValues}.
 * @throws SyntaxError when the text is not JSON.
 */
export function decodeValues(text: string): SessionValues {
  const decoded = fromTagged(JSON.parse(text));
  if (decoded === null || typeof decoded !== 'object' || Array.isArray(decoded)) {
    throw new SyntaxError('stored session values are not an object');
  }
  return decoded as SessionValues;
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
      define(out, key.startsWith('$') ? `$${key}` : key, toTagged(item, `${path}.${key}`, walk));
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
