/**
 * Merging one request's changes into a session that another request wrote
 * since this one loaded it (a compare-and-set miss). Three texts in the
 * format of values.ts: `base` as this request loaded it, `ours` as this
 * request would write it, `theirs` as stored now.
 *
 * - Values, per top-level key: a key this request changed or removed takes
 *   its value (or stays removed); every other key takes the stored one. So
 *   disjoint changes both survive, and for the same key this request wins.
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
  const merged: Tagged = {};
  for (const key of new Set([...Object.keys(t), ...Object.keys(o), ...Object.keys(b)])) {
    if (key === flashesKey) continue;
    const changedHere = JSON.stringify(o[key]) !== JSON.stringify(b[key]);
    const source = changedHere ? o : t;
    if (Object.hasOwn(source, key)) define(merged, key, source[key]);
  }
  const flashes = mergeFlashes(lists(b[flashesKey]), lists(o[flashesKey]), lists(t[flashesKey]), readFlashKeys);
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
    const loaded = base[key] ?? [];
    const read = readFlashKeys.has(flashKeyOf(key));
    const added = read ? (ours[key] ?? []) : (ours[key] ?? []).slice(loaded.length);
    const kept = read ? withoutPrefix(theirs[key] ?? [], loaded) : (theirs[key] ?? []);
    const list = [...kept, ...added];
    if (list.length > 0) define(merged, key, list);
  }
  return merged;
}

/** `items` less the leading ones equal to `prefix` (those this request read). */
function withoutPrefix(items: unknown[], prefix: unknown[]): unknown[] {
  let same = 0;
  while (same < items.length && same < prefix.length && JSON.stringify(items[same]) === JSON.stringify(prefix[same])) same++;
  return items.slice(same);
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
