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
    throw new SessionValuesError(`session values user and provider: ${problem}`);
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
  const problem = value === undefined ? 'is missing' : ownerProblem(value);
  if (problem !== undefined) throw new TypeError(`${label} ${problem}`);
}

function ownerField(value: unknown): unknown {
  return value === null ? undefined : value;
}

/** What is wrong with a present owner field, or undefined when it is fine or absent. */
function ownerProblem(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') return `must be strings, not ${value === null ? 'null' : typeof value}`;
  if (value.length === 0 || value.length > maxOwnerLength) {
    return `must be strings of 1 to ${maxOwnerLength} characters`;
  }
  if (value.includes('\0')) return 'must not contain NUL characters';
  if (!value.isWellFormed()) return 'must be well-formed Unicode (no lone surrogates)';
  return undefined;
}
