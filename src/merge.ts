/**
 * Merging one request's changes into a session that another request wrote
 * since this one loaded it (a compare-and-set miss). Three texts in the
 * format of values.ts: `base` as this request loaded it, `ours` as this
 * request would write it, `theirs` as stored now.
 *
 * - Values, per top-level key: a key this request changed or removed takes
 *   its value (or stays removed); every other key takes the stored one. So
 *   disjoint changes both survive, and for the same key this request wins.
 * - Identity is not mixed: `user` and `provider` move as one pair, and when
 *   this request changed an existing owner (a sign-in as someone else, a
 *   sign-out that clears it) its values replace the stored ones whole, so no
 *   key of the previous owner's parallel requests carries over. A first
 *   sign-in of an anonymous session merges as usual (its cart carries over).
 * - Flashes, per flash key, as lists: the stored list, less the messages
 *   this request read (`flashes(key)`: the ones it loaded), plus the ones it
 *   added. A flash added by one request and read by another is neither lost
 *   nor shown twice.
 */
import { flashesKey } from './values.ts';

export interface MergeInput {
  base: string;
  ours: string;
  theirs: string;
  /** Flash keys this request read (removed with `flashes(key)`) since it loaded `base`. */
  readFlashKeys: ReadonlySet<string>;
}

type Tagged = Record<string, unknown>;

/** The text to write: `theirs` with this request's changes applied. */
export function mergeSessionText({ base, ours, theirs, readFlashKeys }: MergeInput): string {
  const [b, o, t] = [base, ours, theirs].map((text) => JSON.parse(text) as Tagged) as [Tagged, Tagged, Tagged];
  const ownerKeys = ['user', 'provider'];
  const ownerChanged = ownerKeys.some((key) => !same(own(o, key), own(b, key)));
  const hadOwner = ownerKeys.some((key) => own(b, key) !== undefined && own(b, key) !== null);
  const merged: Tagged = {};
  for (const key of new Set([...Object.keys(t), ...Object.keys(o), ...Object.keys(b)])) {
    if (key === flashesKey) continue;
    // The owner pair comes from one side: ours when we changed it, else the stored one.
    const changedHere =
      (ownerChanged && hadOwner) || (ownerKeys.includes(key) ? ownerChanged : !same(own(o, key), own(b, key)));
    const source = changedHere ? o : t;
    if (Object.hasOwn(source, key)) define(merged, key, source[key]);
  }
  const flashes = mergeFlashes(lists(own(b, flashesKey)), lists(own(o, flashesKey)), lists(own(t, flashesKey)), readFlashKeys);
  if (Object.keys(flashes).length > 0) merged[flashesKey] = flashes;
  return JSON.stringify(merged);
}

function mergeFlashes(
  base: Record<string, unknown[]>,
  ours: Record<string, unknown[]>,
  theirs: Record<string, unknown[]>,
  readFlashKeys: ReadonlySet<string>,
): Record<string, unknown[]> {
  const merged: Record<string, unknown[]> = {};
  for (const key of new Set([...Object.keys(theirs), ...Object.keys(ours)])) {
    const loaded = listOf(base, key);
    const read = readFlashKeys.has(flashKeyOf(key));
    const added = read ? listOf(ours, key) : listOf(ours, key).slice(loaded.length);
    const kept = read ? withoutPrefix(listOf(theirs, key), loaded) : listOf(theirs, key);
    const list = [...kept, ...added];
    if (list.length > 0) define(merged, key, list);
  }
  return merged;
}

/** `items` less the leading ones equal to `prefix` (those this request read). */
function withoutPrefix(items: unknown[], prefix: unknown[]): unknown[] {
  let count = 0;
  while (count < items.length && count < prefix.length && same(items[count], prefix[count])) count++;
  return items.slice(count);
}

/** An own property only: a key such as `constructor` is data here, never Object.prototype's. */
function own(record: Tagged, key: string): unknown {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}

function listOf(record: Record<string, unknown[]>, key: string): unknown[] {
  const value = own(record, key);
  return Array.isArray(value) ? value : [];
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function lists(value: unknown): Record<string, unknown[]> {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown[]>) : {};
}

/** The flash key as the caller named it, from its stored form. */
function flashKeyOf(stored: string): string {
  return stored.startsWith('$') ? stored.slice(1) : stored;
}

/** Assigns an own data property, even for the key `__proto__`. */
function define(target: Tagged, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}
