/**
 * Saves retried after a failed write. A write can fail although the
 * database applied it (its acknowledgement lost on the way back, or a
 * timeout). A create or a regeneration that failed is remembered on the
 * session (`tried`): a retried save of the same content writes the same new
 * id and device fields again, and the backends take a duplicate of their
 * own insert as done (backend.ts, `insert`), so the session is not stored
 * twice; a save of other content first deletes what the attempt may have
 * stored, so that never stands for this one.
 */
import type { DeviceFields, SessionBackend, SessionRecord } from './backend.ts';
import { type DeviceDetailsInput, deviceFieldsFor } from './devices.ts';
import { sameContent } from './content.ts';
import { newSessionId } from './ids.ts';
import { lifetimeKey } from './lifetime.ts';
import { sameOwner } from './owner.ts';
import { type Session, sessionState } from './session.ts';
import type { Storable } from './values.ts';

/** What the functions here need of a store's writer. */
export interface RetryConfig {
  backend: Pick<SessionBackend, 'deleteChain'>;
  describeDevice: ((request: Request) => DeviceDetailsInput | undefined) | undefined;
  withTimeout<T>(operation: string, call: (signal: AbortSignal | undefined) => Promise<T>): Promise<T>;
}

/** What a create or a regeneration writes that a retry must match to reuse the attempt's id: the content, the owner, the lifetime. */
export type Written = Pick<SessionRecord, 'content' | 'owner' | 'lifetime'>;

/** The new id and device fields a create or a regeneration of `session` writes now. */
export async function newIdentity<V extends Storable<V>>(
  config: RetryConfig,
  request: Request,
  session: Session<V>,
  written: Written,
): Promise<{ id: string; device: DeviceFields }> {
  const state = session[sessionState];
  if (state.tried !== undefined && !sameWritten(state.tried.written, written)) await forgetTried(config, session);
  state.tried ??= {
    id: newSessionId(),
    device: deviceFieldsFor(request, config.describeDevice),
    written: { content: written.content, owner: written.owner, lifetime: written.lifetime },
  };
  return state.tried;
}

function sameWritten(a: Written, b: Written): boolean {
  return sameContent(a.content, b.content) && sameOwner(a.owner, b.owner) && lifetimeKey(a.lifetime) === lifetimeKey(b.lifetime);
}

/** Deletes what a failed create or regeneration of `session` may have stored after all, and forgets it. */
export async function forgetTried<V extends Storable<V>>(config: RetryConfig, session: Session<V>): Promise<void> {
  const state = session[sessionState];
  const tried = state.tried;
  if (tried === undefined) return;
  await config.withTimeout('delete', (signal) => config.backend.deleteChain(tried.id, signal));
  state.tried = undefined;
}
