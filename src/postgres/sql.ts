/**
 * SQL fragments of the PostgreSQL backend: write guards and content deltas,
 * with every value a bound parameter and every jsonb key one of the store's
 * own field names (checked by isContentField).
 */
import { type ContentDelta, isContentField, type WriteGuard } from '../backend.ts';

/** The guard of a write as SQL: the owner tenure, and the session's own lifetime when expected. */
export function guardSql({ epoch, expectedLifetime, legacy }: WriteGuard, bind: (value: unknown) => string): string {
  const tenure = `epoch = ${bind(epoch)}${legacy === true ? ' AND entries IS NULL' : ''}`;
  if (expectedLifetime === undefined) return tenure;
  const { lifetime } = expectedLifetime;
  if (lifetime === undefined) return `${tenure} AND max_age IS NULL`;
  return `${tenure} AND max_age = ${bind(lifetime.maxAge)} AND COALESCE(persistent, true) = ${bind(lifetime.persistent)}`;
}

/** A merge delta of one jsonb column as SQL: the entries it unsets removed, the ones it sets added. */
export function mergedSql(column: string, change: ContentDelta['values'], bind: (value: unknown) => string): string {
  for (const field of change.unset) checkField(field);
  return `(COALESCE(${column}, '{}'::jsonb) - ${bind(change.unset)}::text[]) || ${bind(jsonOf(change.set))}::jsonb`;
}

/** Entries as the JSON text of a jsonb object (the field names checked to be the store's). */
export function jsonOf(entries: ReadonlyMap<string, string>): string {
  const fields: Record<string, string> = {};
  for (const [field, text] of entries) fields[checkField(field)] = text;
  return JSON.stringify(fields);
}

function checkField(field: string): string {
  if (!isContentField(field)) throw new TypeError(`not a content field: ${JSON.stringify(field)}`);
  return field;
}

/** A jsonb object's string entries under the store's field names. */
export function entriesOf(fields: Record<string, unknown> | null): Map<string, string> {
  const entries = new Map<string, string>();
  for (const [field, text] of Object.entries(fields ?? {})) {
    if (isContentField(field) && typeof text === 'string') entries.set(field, text);
  }
  return entries;
}
