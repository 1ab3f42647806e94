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

/**
 * Encodes values to text. Object properties that are `undefined` are left
 * out, as JSON.stringify does.
 * @throws SessionValuesError for anything not JSON-compatible: functions,
 * symbols, bigints, non-finite numbers, invalid Dates, class instances other
 * than Date, Map/Set, and cycles.
 */
export function encodeValues(values: SessionValues): string {
  return JSON.stringify(toTagged(values, '', new Set()));
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

function toTagged(value: unknown, path: string, ancestors: Set<object>): unknown {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      if (!Number.isFinite(value)) fail(path, `the non-finite number ${value}`);
      return value;
    case 'object':
      break;
    default:
      fail(path, `a ${typeof value}`);
  }
  if (value === null) return null;
  if (value instanceof Date) {
    const time = value.getTime();
    if (Number.isNaN(time)) fail(path, 'an invalid Date');
    return { [dateTag]: time };
  }
  if (ancestors.has(value)) fail(path, 'a cycle');
  ancestors.add(value);
  try {
    if (Array.isArray(value)) {
      return value.map((item, index) =>
        item === undefined ? null : toTagged(item, `${path}[${index}]`, ancestors),
      );
    }
    const prototype: unknown = Object.getPrototypeOf(value);
    if (prototype !== Object.prototype && prototype !== null) {
      fail(path, 'an object that is not plain (a class instance, Map, Set or changed prototype)');
    }
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) {
      if (item === undefined) continue;
      define(out, key.startsWith('$') ? `$${key}` : key, toTagged(item, `${path}.${key}`, ancestors));
    }
    return out;
  } finally {
    ancestors.delete(value);
  }
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
