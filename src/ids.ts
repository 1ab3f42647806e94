/**
 * Session ids: how they are made and what shape one must have before it
 * reaches a database (so it is a plain string, never an operator).
 */
import { randomText } from './random.ts';

/** A new session id: 256 bits from the CSPRNG, base64url (43 characters). */
export function newSessionId(): string {
  return randomText(32);
}

const sessionIdPattern = /^[A-Za-z0-9_-]{43}$/;

/** Whether `id` has the shape of an id {@link newSessionId} makes (so it is a plain string, never an operator). */
export function isSessionId(id: unknown): id is string {
  return typeof id === 'string' && sessionIdPattern.test(id);
}
