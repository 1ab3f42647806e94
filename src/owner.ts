/**
 * Who owns a session: the `user` and `provider` that forced logout
 * (`expireSessions`) matches. One rule, checked on both sides: when a session
 * is saved (its values) and when sessions are expired (the arguments), so a
 * session can always be found by the call that names its owner.
 *
 * The rule: `user` and `provider` are either both absent (undefined or null)
 * or both strings of 1 to 256 characters, well-formed Unicode, without NUL.
 * 256 characters keep the owner index's entries far below PostgreSQL's
 * btree limit (about 2.7 KB) and MongoDB's; NUL is refused by PostgreSQL's text.
 */
import { SessionValuesError } from './errors.ts';
import type { SessionValues } from './values.ts';

/** Whose session a record is; both set or both undefined. */
export interface Owner {
  user: string | undefined;
  provider: string | undefined;
}

/** Longest `user` or `provider`, in UTF-16 code units (JavaScript string length). */
export const maxOwnerLength = 256;

/**
 * The owner named by `values.user` and `values.provider`.
 * @throws SessionValuesError when either breaks the rule above, or only one
 * is present (a session nobody could force-expire).
 */
export function ownerOf(values: SessionValues): Owner {
  const user = ownerField(values.user);
  const provider = ownerField(values.provider);
  const problem = ownerProblem(user) ?? ownerProblem(provider);
  if (problem !== undefined) {
    throw new SessionValuesError(`session values: user and provider must each ${problem}`);
  }
  if ((user === undefined) !== (provider === undefined)) {
    throw new SessionValuesError(
      'session values user and provider go together: set both (forced logout matches the pair) or neither',
    );
  }
  return { user: user as string | undefined, provider: provider as string | undefined };
}

/**
 * Checks one argument of `expireSessions` (or another owner-scoped call).
 * @throws TypeError naming `label` when it is not a string that the rule allows.
 */
export function checkOwnerArgument(label: string, value: unknown): asserts value is string {
  if (value === undefined) throw new TypeError(`${label} is missing`);
  const problem = ownerProblem(value);
  if (problem !== undefined) throw new TypeError(`${label} must ${problem}`);
}

function ownerField(value: unknown): unknown {
  return value === null ? undefined : value;
}

/** What a present owner field must do and does not ("be a string, not number"), or undefined when it is fine or absent. */
function ownerProblem(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') return `be a string, not ${value === null ? 'null' : typeof value}`;
  if (value.length === 0 || value.length > maxOwnerLength) {
    return `be a string of 1 to ${maxOwnerLength} characters`;
  }
  if (value.includes('\0')) return 'have no NUL characters';
  if (!value.isWellFormed()) return 'be well-formed Unicode (no lone surrogates)';
  return undefined;
}

/** Most passes of an owner-scoped delete (see {@link inPasses}). */
const maxDeletePasses = 5;

/**
 * Runs an owner-scoped delete until a pass deletes nothing, two passes at
 * least. A regeneration inserts its new record before it retires the old
 * one, so a pass that ran meanwhile may have missed the new record and found
 * the old one already retired (a multi-record delete is not a snapshot on
 * MongoDB, and PostgreSQL's statement snapshot predates the insert): the
 * next pass sees it.
 */
export async function inPasses(pass: () => Promise<number>): Promise<number> {
  let ended = 0;
  for (let count = 1; count <= maxDeletePasses; count++) {
    const deleted = await pass();
    ended += deleted;
    if (count >= 2 && deleted === 0) break;
  }
  return ended;
}

/** Whether two owners are the same user of the same provider (or both none). */
export function sameOwner(a: Owner, b: Owner): boolean {
  return a.user === b.user && a.provider === b.provider;
}
