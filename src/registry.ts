/**
 * The per-request registry: within one request, a name maps to one Session
 * object. Keyed weakly by the Request, so it never keeps a request alive.
 */

/**
 * What the store accepts as a request: a Fetch `Request`, or anything that
 * wraps one as `raw` (Hono's `c.req`). Both spellings of one request share a
 * registry entry.
 */
export type RequestLike = Request | { readonly raw: Request };

/** The underlying Fetch Request. */
export function toRequest(req: RequestLike): Request {
  return req instanceof Request ? req : req.raw;
}

/** Per-request map from a name to a value, held weakly by the request. */
export class Registry<T> {
  readonly #entries = new WeakMap<Request, Map<string, T>>();

  get(request: Request, name: string): T | undefined {
    return this.#entries.get(request)?.get(name);
  }

  set(request: Request, name: string, value: T): void {
    let names = this.#entries.get(request);
    if (names === undefined) {
      names = new Map();
      this.#entries.set(request, names);
    }
    names.set(name, value);
  }

  /** Removes the entry, but only while it still holds `value`. */
  deleteIf(request: Request, name: string, value: T): void {
    const names = this.#entries.get(request);
    if (names?.get(name) === value) names.delete(name);
  }

  /** Every value registered for the request, in registration order. */
  values(request: Request): T[] {
    return [...(this.#entries.get(request)?.values() ?? [])];
  }
}

/** Whether `name` can name a session (a cookie): a non-empty string; the cookie rules are checked at `save`. */
export function isSessionName(name: unknown): name is string {
  return typeof name === 'string' && name !== '';
}
