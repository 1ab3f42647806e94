/**
 * A session's content entry by entry: each top-level value, and each
 * pending flash, is stored on its own under a field name the store makes,
 * so that a save writes only what its request changed (a delta) and
 * parallel requests that change different keys never conflict.
 *
 * Field names: a value's is `k` + the base64url of its key's UTF-8 bytes; a
 * flash's is `f` + a time-ordered random id. Neither can hold `.`, `$` or
 * NUL, so no caller's key ever reaches a database as a field name or an
 * operator, whatever it is (`$where`, `a.b`, `__proto__`, '').
 */
import type { ContentDelta, LegacyContent, SessionContent } from './backend.ts';
import { randomText } from './random.ts';
import { decodeFlash, decodeSession, decodeValue, encodeParts, type SessionValues } from './values.ts';

/** A pending flash message: its field (its identity, across requests), its key and its value. */
export interface PendingFlash {
  readonly field: string;
  readonly key: string;
  readonly value: unknown;
}

/** A session's content decoded: its values, its pending flashes in order, and the content itself. */
export interface DecodedContent {
  values: SessionValues;
  flashes: PendingFlash[];
  content: SessionContent;
  /** Read from a record of an earlier version: the next write converts it whole. */
  legacy: boolean;
}

/** Empty content. */
export const emptyContent: SessionContent = Object.freeze({ values: new Map(), flashes: new Map() });

/** The field a value's key is stored under. */
export function valueField(key: string): string {
  return fieldsByKey.get(key) ?? remember(fieldsByKey, key, `k${Buffer.from(key, 'utf8').toString('base64url')}`);
}

function keyOfField(field: string): string {
  return keysByField.get(field) ?? remember(keysByField, field, Buffer.from(field.slice(1), 'base64url').toString('utf8'));
}

// An app uses a few keys on every request: each is converted once, not
// twice per request (a read decodes every field, a save encodes every key).
const fieldsByKey = new Map<string, string>();
const keysByField = new Map<string, string>();
/** Most conversions kept each way; a full map starts over, so keys made from data cannot grow it. */
const maxRememberedKeys = 1024;

/** Longest key (or field) remembered: the map holds at most 1,024 short strings, whatever keys an app makes. */
const maxRememberedLength = 128;

function remember(map: Map<string, string>, from: string, to: string): string {
  if (from.length > maxRememberedLength) return to;
  if (map.size >= maxRememberedKeys) map.clear();
  map.set(from, to);
  return to;
}

let flashSequence = 0;

/**
 * A new flash's field: the time and a per-process sequence first, so that
 * fields sort in the order flashes were added (exactly within a process, to
 * the clock across processes), then 48 random bits so that no two requests
 * anywhere make the same one.
 */
export function newFlashField(): string {
  flashSequence = (flashSequence + 1) % 36 ** 4;
  return `f${Date.now().toString(36).padStart(9, '0')}${flashSequence.toString(36).padStart(4, '0')}${randomText(6)}`;
}

/**
 * Encodes values and flashes into content.
 * @throws SessionValuesError for values or flashes that cannot be stored, or
 * that take more than `maxBytes` together.
 */
export function encodeContent(values: SessionValues, flashes: readonly PendingFlash[], maxBytes = Number.POSITIVE_INFINITY): SessionContent {
  const parts = encodeParts(values, flashes.map((flash) => [flash.key, flash.value] as const), maxBytes);
  return {
    values: new Map(parts.values.map(([key, text]) => [valueField(key), text])),
    flashes: new Map(parts.flashes.map((text, index) => [(flashes[index] as PendingFlash).field, text])),
  };
}

/**
 * Decodes stored content (or a legacy record's text, converted).
 * @throws SyntaxError when an entry cannot be decoded.
 */
export function decodeContent(stored: SessionContent | LegacyContent): DecodedContent {
  if ('legacy' in stored) {
    const { values, flashes } = decodeSession(new TextDecoder().decode(stored.legacy));
    // Fields fixed by position, so that every request converts the record
    // the same way (a flash one request read is the same flash in another's
    // conversion), and sorting before any flash added since.
    const pending = Object.entries(flashes)
      .flatMap(([key, list]) => (Array.isArray(list) ? list : []).map((value) => ({ key, value })))
      .map(({ key, value }, index) => ({ field: `f${'0'.repeat(13)}${index.toString(36).padStart(8, '0')}`, key, value }));
    return { values, flashes: pending, content: encodeContent(values, pending), legacy: true };
  }
  const values: SessionValues = {};
  for (const [field, text] of stored.values) {
    Object.defineProperty(values, keyOfField(field), { value: decodeValue(text), enumerable: true, writable: true, configurable: true });
  }
  const flashes = [...stored.flashes]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([field, text]) => {
      const [key, value] = decodeFlash(text);
      return { field, key, value };
    });
  return { values, flashes, content: stored, legacy: false };
}

/**
 * What changed from `loaded` to `now`: with `merge`, the entries set (new or
 * with another text) and unset (gone); with `replace`, all of `now`.
 */
export function deltaOf(loaded: SessionContent, now: SessionContent, mode: ContentDelta['mode']): ContentDelta {
  if (mode === 'replace') {
    return { mode, values: { set: now.values, unset: [] }, flashes: { set: now.flashes, unset: [] } };
  }
  return { mode, values: entryDelta(loaded.values, now.values), flashes: entryDelta(loaded.flashes, now.flashes) };
}

/**
 * The most that encoding this content's values and flashes again can count
 * against a `maxValuesBytes` budget: the texts' UTF-8 bytes plus what the
 * encoder counts for each key. A save whose content is no larger fits in it.
 */
export function contentSize(content: SessionContent): number {
  let bytes = 0;
  // Exactly what the encoder counts for a key (its UTF-16 length): more
  // would raise the budget of a save above what it stored.
  for (const [field, text] of content.values) bytes += Buffer.byteLength(text) + keyOfField(field).length + 3;
  for (const text of content.flashes.values()) bytes += Buffer.byteLength(text) + 5;
  return bytes;
}

/** Whether the delta writes nothing. */
export function isEmptyDelta(delta: ContentDelta): boolean {
  return (
    delta.mode === 'merge' &&
    delta.values.set.size === 0 &&
    delta.values.unset.length === 0 &&
    delta.flashes.set.size === 0 &&
    delta.flashes.unset.length === 0
  );
}

/** `content` with `delta` applied, as a database applies it. */
export function applyDelta(content: SessionContent, delta: ContentDelta): SessionContent {
  if (delta.mode === 'replace') return { values: new Map(delta.values.set), flashes: new Map(delta.flashes.set) };
  return { values: applyEntries(content.values, delta.values), flashes: applyEntries(content.flashes, delta.flashes) };
}

/** Whether two contents hold the same entries. */
export function sameContent(a: SessionContent, b: SessionContent): boolean {
  return sameEntries(a.values, b.values) && sameEntries(a.flashes, b.flashes);
}

function entryDelta(loaded: ReadonlyMap<string, string>, now: ReadonlyMap<string, string>): ContentDelta['values'] {
  const set = new Map<string, string>();
  for (const [field, text] of now) if (loaded.get(field) !== text) set.set(field, text);
  const unset = [...loaded.keys()].filter((field) => !now.has(field));
  return { set, unset };
}

function applyEntries(entries: ReadonlyMap<string, string>, change: ContentDelta['values']): Map<string, string> {
  const result = new Map(entries);
  for (const field of change.unset) result.delete(field);
  for (const [field, text] of change.set) result.set(field, text);
  return result;
}

function sameEntries(a: ReadonlyMap<string, string>, b: ReadonlyMap<string, string>): boolean {
  if (a.size !== b.size) return false;
  for (const [field, text] of a) if (b.get(field) !== text) return false;
  return true;
}
