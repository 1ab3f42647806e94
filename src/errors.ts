/**
 * The errors mongostore throws. Each is a subclass of a standard error, so a
 * caller may match either the specific class or the standard one.
 */

/**
 * A database command failed (network, timeout, server error). `cause` is the
 * driver's error. Thrown by every store method that talks to MongoDB.
 */
export class SessionStoreError extends Error {
  override readonly name = 'SessionStoreError';

  constructor(message: string, options: { cause: unknown }) {
    super(message, options);
  }
}

/**
 * Store or cookie configuration that cannot work: missing or short keys, a
 * cookie name or attribute combination that browsers reject (`SameSite=None`
 * without `Secure`, a `__Host-` cookie with a domain, ...). Thrown by
 * constructors, and by `save` when a session's own options are invalid.
 */
export class SessionOptionsError extends TypeError {
  override readonly name = 'SessionOptionsError';
}

/**
 * Session values that cannot be stored: not JSON-compatible (functions,
 * symbols, bigints, class instances other than Date, cycles) or larger than
 * the store's `maxValuesBytes`. `save` rejects with it before writing anything.
 */
export class SessionValuesError extends TypeError {
  override readonly name = 'SessionValuesError';
}
